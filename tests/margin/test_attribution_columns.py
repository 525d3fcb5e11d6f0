"""The attribution table owns its columns: built without pandas' copy into one block, it must
still share no memory with the book or the margin figures it was formed from, so that a caller
that changes those arrays afterwards (the live book does, trade by trade) leaves it as it was."""

from __future__ import annotations

import numpy as np
import pandas as pd
from grid_inputs import grid_market, instrument_frame

from riskmodel.config import config_from_mapping
from riskmodel.engine import margin_book
from riskmodel.portfolio.netting import net_positions


def test_attribution_shares_no_memory_with_the_book():
    marks = {"BTC": 60_000.0, "ETH": 3_000.0}
    nan = np.nan
    inst = instrument_frame([("BTC-PERP", "future", "BTC", 1.0, nan, pd.NaT, "", nan, 0.0, ""),
                             ("ETH-PERP", "future", "ETH", 1.0, nan, pd.NaT, "", nan, 0.0, "")],
                            marks)
    config = config_from_mapping({"method": "hs", "horizon": 1, "lookback": 10,
                                  "min_history": 5, "volatility": {"model": "ewma"}})
    market = grid_market(marks, inst, config, pd.Timestamp("2024-03-01"))
    book = net_positions(pd.DataFrame({"account_id": ["A", "A", "B"],
                                       "netting_set": ["default"] * 3,
                                       "instrument_id": ["BTC-PERP", "ETH-PERP", "ETH-PERP"],
                                       "quantity": [2.0, -10.0, 5.0]}), market.axis)
    result = margin_book(market, book, config, collateral=np.array([50_000.0, 9_000.0]))
    attribution = result.attribution
    before = attribution.copy(deep=True)
    for name in attribution.columns:
        column = attribution[name].to_numpy()
        if column.dtype.kind == "f":
            assert not np.shares_memory(column, book.quantity), name
    book.quantity[:] = 0.0  # the caller changes its book afterwards
    pd.testing.assert_frame_equal(attribution, before)
    assert (attribution["quantity"] != 0).all()
