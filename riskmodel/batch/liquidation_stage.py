"""The liquidation stage of ``eod``: partial-liquidation orders and penalties of the netting sets
in ``liquidation`` (and, with ``[liquidation] include_margin_call``, ``margin_call``).

The orders come from :func:`riskmodel.liquidation.partial_liquidation` on the run's own priced
market, every trial margin through the engine as the run margined the book (the
anti-procyclicality floor's scenarios and the previous run's margins included), so each order's
``margin_after`` is what a what-if of the reduced book (or a re-run of ``eod`` on it) gives.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from riskmodel.config import RunConfig
from riskmodel.engine.store import StoredRun
from riskmodel.liquidation.partial import (
    ORDER_COLUMNS,
    liquidated_statuses,
    partial_liquidation,
)
from riskmodel.portfolio.collateral import CollateralTable


def empty_orders() -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype=object if c in ("account_id", "netting_set",
                                                             "instrument_id") else np.float64)
                         for c in ORDER_COLUMNS})


def liquidation_stage(margins: pd.DataFrame, attribution: pd.DataFrame, run: StoredRun,
                      config: RunConfig, search_threads: int | None = None
                      ) -> tuple[pd.Series, pd.DataFrame, dict[str, Any], list[str]]:
    """``(liquidation_penalty per netting set in margins order, orders, manifest block,
    warnings)``. ``attribution`` needs only the rows of the sets in
    :func:`~riskmodel.liquidation.partial.liquidated_statuses` (the whole table will do);
    ``search_threads`` the compiled search's worker threads (default: numba's count)."""
    policy = config.liquidation
    penalty = pd.Series(0.0, index=margins.index)
    info: dict[str, Any] = {
        "target_margin_level": policy.target_margin_level,
        "include_margin_call": policy.include_margin_call,
        "netting_sets": 0, "restored": 0, "orders": 0,
        "notional_liquidated": 0.0, "penalties": 0.0,
    }
    result = partial_liquidation(
        run.market, config, margins, attribution, previous=run.previous,
        account_types=CollateralTable(run.collateral).account_types,
        target=policy.target_margin_level, include_margin_call=policy.include_margin_call,
        penalty=policy.penalty_rates, search_threads=search_threads,
    )
    sets = result.sets.set_index(["account_id", "netting_set"])
    if len(sets):
        # only the sets of the statuses liquidated can hold a penalty: their keys, not a
        # million (0.3 s at 1,000,000 accounts)
        rows = np.flatnonzero(margins["status"].isin(liquidated_statuses(config)).to_numpy())
        keys = pd.MultiIndex.from_arrays([margins["account_id"].iloc[rows],
                                          margins["netting_set"].iloc[rows]])
        penalty.iloc[rows] = (sets["liquidation_penalty"].reindex(keys).fillna(0.0)
                              .to_numpy(np.float64))
    orders = result.orders if len(result.orders) else empty_orders()
    info.update({
        "netting_sets": len(sets), "restored": int(sets["restored"].sum()) if len(sets) else 0,
        "orders": len(orders),
        "notional_liquidated": float(sets["notional_liquidated"].sum()) if len(sets) else 0.0,
        "penalties": float(penalty.sum()),
    })
    notes = []
    if len(sets) and not sets["restored"].all():
        notes.append(f"{int((~sets['restored']).sum())} netting set(s) cannot be restored to the "
                     "target even when closed entirely (equity after the penalty < 0)")
    return penalty, orders, info, notes
