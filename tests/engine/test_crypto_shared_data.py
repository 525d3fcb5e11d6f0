"""Real crypto closes from ../shared/data (24/7 calendar, short histories, fat tails).

The data may not be redistributed, so it is never copied into the project: these tests skip
when the folder is absent.
"""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from engine_inputs import write_inputs

from riskmodel.batch.eod import EodInputs, run_eod
from riskmodel.config import RunConfig

SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "data"
CLOSES = SHARED / "crypto_daily_close.csv"

pytestmark = pytest.mark.skipif(not CLOSES.exists(), reason="../shared/data is not present")

INSTRUMENTS = [
    ("BTC-PERP", "perpetual", "BTC", 1.0),
    ("ETH-PERP", "perpetual", "ETH", 1.0),
    ("SOL-PERP", "perpetual", "SOL", 1.0),
    ("DOGE-PERP", "perpetual", "DOGE", 1.0),
    ("BTC", "spot", "BTC", 1.0),
]


def _inputs(tmp_path, positions, accounts) -> EodInputs:
    folder = tmp_path / "in"
    folder.mkdir()
    pd.DataFrame(INSTRUMENTS, columns=["instrument_id", "kind", "underlying", "multiplier"]) \
        .to_csv(folder / "instruments.csv", index=False)
    pd.DataFrame(positions, columns=["account_id", "instrument_id", "quantity"]) \
        .to_csv(folder / "positions.csv", index=False)
    pd.DataFrame(accounts, columns=["account_id", "collateral"]) \
        .to_csv(folder / "accounts.csv", index=False)
    return EodInputs(CLOSES, folder / "instruments.csv", folder / "positions.csv",
                     folder / "accounts.csv")


def test_crypto_perpetuals_fhs(tmp_path):
    inputs = _inputs(
        tmp_path,
        [("whale", "BTC-PERP", 10.0), ("whale", "ETH-PERP", -50.0),
         ("basis", "BTC", 2.0), ("basis", "BTC-PERP", -2.0),
         ("degen", "DOGE-PERP", 1e6), ("sol", "SOL-PERP", 500.0)],
        [("whale", 200_000.0), ("basis", 1_000.0), ("degen", 10_000.0), ("sol", 50_000.0)],
    )
    result = run_eod(inputs, RunConfig(method="fhs", vol_model="ewma", horizon=1, lookback=2000))
    m = result.margins.set_index("account_id")
    numeric = m.select_dtypes("number")
    assert not np.isnan(numeric.to_numpy()).any()
    # spot BTC against the BTC perpetual on the same factor: no model risk, the floor binds
    assert m.loc["basis", "model_margin"] == 0.0
    assert m.loc["basis", "initial_margin"] == m.loc["basis", "maintenance_floor"] > 0
    assert result.manifest["market_date"].startswith("2025-02-20")
    # SOL (listed 2020-04-10) has fewer than 2000 returns: the window is shortened, and says so
    assert 1700 < result.scenarios.n_scenarios < 2000
    assert any("lookback shortened" in w for w in result.manifest["warnings"])


def test_crypto_hs_matches_definition(tmp_path):
    closes = pd.read_csv(CLOSES, index_col="date", parse_dates=True)
    inputs = _inputs(tmp_path, [("a", "BTC-PERP", 3.0)], [("a", 1e5)])
    result = run_eod(inputs, RunConfig(method="hs", horizon=1, lookback=365))
    btc = closes["BTC"].dropna()
    r = np.log(btc / btc.shift(1)).dropna().iloc[-365:].to_numpy()
    losses = -3.0 * btc.iloc[-1] * np.expm1(r)
    var = np.quantile(losses, 0.99, method="inverted_cdf")
    np.testing.assert_allclose(result.margins["var"].iat[0], var, rtol=1e-9)


def test_btc_24_7_calendar_carries_no_prices(tmp_path):
    # a 24/7 market has a bar every calendar day: nothing is carried over
    closes = pd.read_csv(CLOSES, index_col="date", parse_dates=True)[["BTC"]].dropna()
    inputs = write_inputs(tmp_path, closes, [("BTC-PERP", "perpetual", "BTC", 1.0)],
                          [("a", "BTC-PERP", 1.0)], [("a", 1e5)])
    result = run_eod(inputs, RunConfig(method="hs", horizon=1, lookback=500))
    assert result.manifest["calendar"]["carried_prices"]["BTC"] == 0


def test_crypto_stress_windows_and_proxy_rule(tmp_path):
    """SOL did not trade on 2020-03-12: it takes its best-correlated coin's move, scaled by
    their volatility ratio; on 2022-11-09 (FTX) it has its own -55% move."""
    inputs = _inputs(tmp_path, [("sol", "SOL-PERP", 100.0)], [("sol", 1e4)])
    result = run_eod(inputs, RunConfig(method="hs", horizon=1, lookback=800))
    notes = result.manifest["warnings"]
    assert any(n.startswith("stress crypto-black-thursday-2020-03-12: SOL takes") for n in notes)
    closes = pd.read_csv(CLOSES, index_col="date", parse_dates=True)
    sol = closes["SOL"]
    ftx = np.log(sol.loc["2022-11-09"] / sol.loc["2022-11-08"])
    m = result.margins.iloc[0]
    # the worst 1-day move for a long SOL book is at least FTX's own move, applied to today
    assert m["stress_loss"] >= -100.0 * sol.iloc[-1] * np.expm1(ftx) * (1 - 1e-12)
