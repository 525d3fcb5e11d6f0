"""The backtest charges what eod charges: on every date, the initial margin of each netting set
equals that of an ``eod --as-of`` the date with the same positions and configuration.

The reference is the production run itself: ``eod`` on each date from the files (with
``--previous-run`` the eod of the previous backtest date where the buffer needs it). The book
holds linear contracts, an inverse perpetual and European options (a short put, a long call,
a covered call); the configurations cover HS, FHS and Monte Carlo with a fixed seed, stress in
``max`` and ``blend`` (named historical windows, a user shock file and the grid), liquidity and
concentration add-ons, and the anti-procyclicality floor, buffer and stressed weight.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from riskmodel.backtest.run import BacktestInputs, BacktestWindow, run_backtest
from riskmodel.batch.eod import EodInputs, run_eod, write_eod
from riskmodel.config import config_from_mapping, read_toml
from riskmodel.demo import INSTRUMENTS, demo_prices

KEY = ["account_id", "netting_set"]
COLUMNS = ("var", "es", "initial_margin", "flat_rate_margin", "gross_notional")

OPTIONS = pd.DataFrame({
    "instrument_id": ["SPX-C1150", "SPX-P1050"], "kind": ["option", "option"],
    "underlying": ["SPX", "SPX"], "multiplier": [1.0, 1.0], "strike": [1150.0, 1050.0],
    "expiry": ["2010-12-17T21:00:00Z"] * 2, "option_type": ["call", "put"],
    "implied_vol": [0.22, 0.28],
})
POSITIONS = pd.DataFrame({
    "account_id": ["A", "A", "B", "B", "C", "D", "D", "F", "F", "G", "G", "H", "H"],
    "instrument_id": ["ES", "NQ", "SPX", "SPX-PERP", "CL", "WTI-PERP", "CL", "NDX-INV", "NQ",
                      "SPX-P1050", "SPX-C1150", "SPX", "SPX-C1150"],
    "quantity": [2.0, -3.0, 10.0, -4.0, 1.0, -5.0, 2.0, -300.0, 1.0, -20.0, 5.0, 30.0, -30.0],
    "netting_set": ["", "", "", "", "", "iso", "", "", "", "", "", "", ""],
})
ACCOUNTS = pd.DataFrame({"account_id": ["A", "B", "C", "D", "D", "F", "G", "H"],
                         "collateral": [1e5, 2e4, 3e4, 1e4, 5e3, 1e4, 4e3, 2e4],
                         "netting_set": ["", "", "", "", "iso", "", "", ""]})
SHOCKS = pd.DataFrame({"scenario": ["crash", "crash", "crash", "oil"],
                       "asset": ["SPX", "NASDAQ", "WTI", "WTI"],
                       "shock": [-0.2, -0.25, -15.0, 20.0]})
BASE_TOML = """
[returns.assets]
WTI = "absolute"
[horizons.kind]
perpetual = 1
[addons.spreads]
default = 0.0002
[addons.concentration_threshold]
default = 200000.0
[addons.concentration_rate]
default = 0.01
"""
CASES = {
    "hs-stress-max-stressed-weight": """
method = "hs"
lookback = 250
[stress]
mode = "max"
weight = 0.5
files = ["{shocks}"]
[anti_procyclicality]
tools = ["stressed_weight"]
""",
    "fhs-stress-blend-floor": """
method = "fhs"
lookback = 250
[volatility]
model = "ewma"
garch_fit_window = 100000
[stress]
mode = "blend"
weight = 0.3
[anti_procyclicality]
tools = ["floor"]
floor_lookback = 1000
""",
    "mc-stress-max-buffer-floor": """
method = "mc"
lookback = 250
scenarios = 2000
seed = 7
[volatility]
model = "ewma"
garch_fit_window = 100000
[stress]
mode = "max"
files = ["{shocks}"]
[anti_procyclicality]
tools = ["buffer", "floor"]
floor_lookback = 600
""",
}


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("equals-eod")
    out = {name: folder / f"{name}.csv" for name in
           ("prices", "instruments", "positions", "accounts", "shocks")}
    demo_prices()[["SPX", "NASDAQ", "WTI"]].dropna(how="all").to_csv(out["prices"])
    pd.concat([INSTRUMENTS, OPTIONS], ignore_index=True).to_csv(out["instruments"], index=False)
    POSITIONS.to_csv(out["positions"], index=False)
    ACCOUNTS.to_csv(out["accounts"], index=False)
    SHOCKS.to_csv(out["shocks"], index=False)
    return out


def _eod(files, config, date, folder: Path, previous: Path | None = None) -> pd.DataFrame:
    result = run_eod(EodInputs(files["prices"], files["instruments"], files["positions"],
                               files["accounts"]), config,
                     as_of=pd.Timestamp(date).isoformat(), previous_run=previous)
    write_eod(result, folder)
    return result.margins.set_index(KEY).sort_index()


@pytest.mark.parametrize("case", sorted(CASES))
def test_backtest_initial_margin_equals_eod_on_each_date(case, files, tmp_path):
    toml = tmp_path / "run.toml"
    # top-level keys first: TOML puts a key after a table header into that table
    toml.write_text(CASES[case].replace("{shocks}", str(files["shocks"])) + BASE_TOML)
    config = config_from_mapping(read_toml(toml))
    result = run_backtest(BacktestInputs(files["prices"], files["instruments"],
                                         files["positions"]),
                          config, BacktestWindow("2010-01-04", "2010-01-22"), n_sim=0)
    frame = result.backtest
    dates = sorted(frame["date"].unique())
    assert len(dates) >= 10
    buffered = "buffer" in config.anti_procyclicality.tools
    checked = [1, len(dates) - 1] if buffered else [0, len(dates) // 2, len(dates) - 1]
    bound = {"stress": 0, "tool": 0}
    for k in checked:
        previous = None
        if buffered:  # the buffer compares with the previous backtest date's model margin
            previous = tmp_path / f"eod-{k - 1}"
            _eod(files, config, dates[k - 1], previous)
        expected = _eod(files, config, dates[k], tmp_path / f"eod-{k}", previous)
        got = frame[frame["date"] == dates[k]].set_index(KEY).sort_index()
        assert list(got.index) == list(expected.index) and len(got) == 8
        for column in COLUMNS:
            np.testing.assert_allclose(got[column].to_numpy(), expected[column].to_numpy(),
                                       rtol=1e-9, atol=0, err_msg=f"{case}: {column} on "
                                       f"{pd.Timestamp(dates[k]).date()}")
        bound["stress"] += int((expected["stress_loss"] * config.stress.weight
                                > expected["model_margin"]).sum())
        bound["tool"] += int((expected["initial_margin"] > expected["model_margin"]
                              + expected["addons"] + 1e-9).sum())
    # the policy tools under test are not idle: stress binds somewhere, and the options and
    # the inverse perpetual carry margin
    assert bound["stress"] > 0 and bound["tool"] > 0
    assert (frame.loc[frame["account_id"].isin(["F", "G", "H"]), "initial_margin"] > 0).all()
    summary = result.summary
    assert summary["stress"]["mode"] == config.stress.mode
    assert summary["stress"]["bound_rows"] > 0
