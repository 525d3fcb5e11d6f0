"""The instrument scenario P&L matrix: each row where its instrument is, whatever the order of
kinds in the instrument file (linear, inverse and options interleaved, or options in a block)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from riskmodel.io.instruments import load_instruments
from riskmodel.pricing.revaluation import scenario_pnl
from riskmodel.scenarios.scenario_set import ScenarioSet

AS_OF = pd.Timestamp("2024-06-28 00:00", tz="UTC")
SPOT = pd.Series({"BTC": 60_000.0, "WTI": 80.0})
KINDS = {"BTC": "log", "WTI": "absolute"}

ROWS = [
    {"instrument_id": "BTC", "kind": "spot", "underlying": "BTC", "multiplier": 1.0},
    {"instrument_id": "C1", "kind": "option", "underlying": "BTC", "multiplier": 1.0,
     "strike": 62_000.0, "expiry": "2024-08-30T08:00:00+00:00", "option_type": "call",
     "implied_vol": 0.6},
    {"instrument_id": "BTC-INV", "kind": "inverse_perpetual", "underlying": "BTC",
     "multiplier": 100.0},
    {"instrument_id": "CL", "kind": "future", "underlying": "WTI", "multiplier": 1000.0},
    {"instrument_id": "P1", "kind": "option", "underlying": "WTI", "multiplier": 1000.0,
     "strike": 75.0, "expiry": "2024-09-20T18:00:00+00:00", "option_type": "put",
     "implied_vol": 0.35, "model": "bachelier"},
    {"instrument_id": "C2", "kind": "option", "underlying": "BTC", "multiplier": 1.0,
     "strike": 55_000.0, "expiry": "2024-07-26T08:00:00+00:00", "option_type": "put",
     "implied_vol": 0.7, "settlement": "coin"},
]


def _instruments(tmp_path, rows) -> pd.DataFrame:
    path = tmp_path / "instruments.csv"
    pd.DataFrame(rows).to_csv(path, index=False)
    return load_instruments(path, ["BTC", "WTI"]).frame


def _scenarios(n: int = 64) -> ScenarioSet:
    rng = np.random.default_rng(7)
    shocks = np.column_stack([rng.normal(0, 0.05, n), rng.normal(0, 3.0, n)])
    return ScenarioSet(shocks, ("BTC", "WTI"), np.arange(n), "mc", 2)


@pytest.mark.parametrize("order", [[0, 1, 2, 3, 4, 5], [1, 4, 5, 0, 2, 3], [5, 3, 1, 2, 0, 4]])
def test_rows_follow_the_instrument_file_in_any_order_of_kinds(tmp_path, order):
    scenarios = _scenarios()
    frame = _instruments(tmp_path, [ROWS[k] for k in order])
    pnl = scenario_pnl(frame, scenarios, SPOT, KINDS, AS_OF)
    btc_move = SPOT["BTC"] * np.expm1(scenarios.shocks[:, 0])  # log returns
    wti_move = scenarios.shocks[:, 1]  # price differences
    by_id = dict(zip(frame["instrument_id"], pnl))
    # linear and inverse by hand: multiplier x move, multiplier x move / today's price
    np.testing.assert_array_equal(by_id["BTC"], btc_move)
    np.testing.assert_array_equal(by_id["CL"], 1000.0 * wti_move)
    np.testing.assert_allclose(by_id["BTC-INV"], 100.0 * btc_move / SPOT["BTC"], rtol=1e-15)
    # each option's row as the options alone, in their own block, give it
    options = frame[frame["kind"] == "option"].reset_index(drop=True)
    alone = scenario_pnl(options, scenarios, SPOT, KINDS, AS_OF)
    for iid, row in zip(options["instrument_id"], alone):
        np.testing.assert_array_equal(by_id[iid], row)
    # and one at a time
    for k in range(len(options)):
        single = scenario_pnl(options.iloc[[k]], scenarios, SPOT, KINDS, AS_OF)
        np.testing.assert_array_equal(single[0], alone[k])
    assert np.isfinite(pnl).all() and len({r.tobytes() for r in pnl}) == len(ROWS)
