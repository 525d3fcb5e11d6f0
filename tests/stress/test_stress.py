"""Stress scenarios: named historical windows, the hypothetical grid and user shocks, checked
against hand calculations on the demo's real S&P 500 / NASDAQ / WTI prices."""

import numpy as np
import pandas as pd
import pytest

from riskmodel.batch.eod import EodInputs, run_eod
from riskmodel.config import RunConfig, StressConfig, StressGrid
from riskmodel.demo import demo_prices
from riskmodel.measures.stress_kernels import grid_set_loss, worst_loss, worst_loss_python
from riskmodel.scenarios.stress import default_windows_file, grid_loss, load_windows

INSTRUMENTS = [("ES", "future", "SPX", 50.0), ("NQ", "future", "NASDAQ", 20.0),
               ("CL", "future", "WTI", 1000.0)]


@pytest.fixture(scope="module")
def prices() -> pd.DataFrame:
    return demo_prices()  # wide, string dates, empty cells where WTI has no fixing


def _inputs(folder, prices, positions, accounts) -> EodInputs:
    folder.mkdir(parents=True, exist_ok=True)
    prices.to_csv(folder / "prices.csv")
    pd.DataFrame(INSTRUMENTS, columns=["instrument_id", "kind", "underlying", "multiplier"]) \
        .to_csv(folder / "instruments.csv", index=False)
    pd.DataFrame(positions, columns=["account_id", "instrument_id", "quantity"]) \
        .to_csv(folder / "positions.csv", index=False)
    pd.DataFrame(accounts, columns=["account_id", "collateral"]) \
        .to_csv(folder / "accounts.csv", index=False)
    return EodInputs(folder / "prices.csv", folder / "instruments.csv",
                     folder / "positions.csv", folder / "accounts.csv")


def test_windows_file_is_valid_and_versioned():
    windows, version = load_windows(default_windows_file())
    assert version >= 1
    names = {w.name for w in windows}
    assert {"gfc-2008-10", "covid-2020-03", "crypto-black-thursday-2020-03-12",
            "crypto-china-ban-2021-05-19", "ftx-2022-11-09"} <= names


def test_named_window_applies_october_2008_moves(tmp_path, prices):
    """Each 2-day scenario of the 2008 window is the S&P 500's own 2-day log move, applied to
    today's price; the worst is the largest 2-day fall in the window, by hand."""
    inputs = _inputs(tmp_path, prices, [("long", "ES", 2.0)], [("long", 1e6)])
    config = RunConfig(method="hs", horizon=2, lookback=500,
                       stress=StressConfig(grid=StressGrid(enabled=False)))
    result = run_eod(inputs, config)
    spx = prices["SPX"].astype(float)
    spx.index = pd.DatetimeIndex(spx.index)
    # the union calendar carries SPX over WTI-only dates; SPX's own dates give the same moves
    # because a carried price does not move
    span = spx.ffill().loc["2008-09-29":"2008-10-28"].to_numpy()
    two_day = np.log(span[2:] / span[:-2])
    p0 = spx.iloc[-1]
    expected = -2.0 * 50.0 * p0 * np.expm1(two_day.min())
    m = result.margins.iloc[0]
    np.testing.assert_allclose(m["stress_loss"], expected, rtol=1e-12)
    assert m["stress_scenario"].startswith("gfc-2008-10:2008-10-")
    assert result.manifest["stress"]["scenario_sets"]["stress-historical"] > 0


def test_grid_loss_matches_hand_calculation(tmp_path, prices):
    inputs = _inputs(tmp_path, prices, [("a", "ES", 2.0), ("a", "NQ", -1.0)], [("a", 1e6)])
    grid = StressGrid(move=0.15, steps=7, extreme_multiple=3.0, extreme_fraction=0.35,
                      move_by_underlying={"NASDAQ": 0.2})
    config = RunConfig(method="hs", horizon=1, lookback=500,
                       stress=StressConfig(historical=False, grid=grid))
    result = run_eod(inputs, config)
    spx, ndx = float(prices["SPX"].iloc[-1]), float(prices["NASDAQ"].iloc[-1])
    # long 2 ES: worst of a 15% fall (weight 1) and a 45% fall counted at 35% (15.75%)
    long_es = 2 * 50 * spx * max(0.15, 0.35 * 0.45)
    # short 1 NQ with a 20% scan: worst of a 20% rise and a 60% rise at 35% (21%)
    short_nq = 1 * 20 * ndx * max(0.20, 0.35 * 0.60)
    m = result.margins.iloc[0]
    np.testing.assert_allclose(m["stress_loss"], long_es + short_nq, rtol=1e-12)
    assert m["stress_scenario"] == "grid"


def test_user_shock_file(tmp_path, prices):
    shocks = tmp_path / "shocks.csv"
    pd.DataFrame({"scenario": ["crash", "crash", "oil-spike"], "asset": ["SPX", "WTI", "WTI"],
                  "shock": [-0.25, -10.0, 15.0]}).to_csv(shocks, index=False)
    inputs = _inputs(tmp_path / "in", prices,
                     [("eq", "ES", 1.0), ("oil", "CL", -2.0)], [("eq", 1e6), ("oil", 1e6)])
    config = RunConfig(method="hs", horizon=1, lookback=500, stress=StressConfig(
        historical=False, grid=StressGrid(enabled=False), files=(str(shocks),)),
        asset_returns={"WTI": "absolute"})
    m = run_eod(inputs, config).margins.set_index("account_id")
    spx = float(prices["SPX"].iloc[-1])
    np.testing.assert_allclose(m.loc["eq", "stress_loss"], 50 * spx * 0.25, rtol=1e-12)
    assert m.loc["eq", "stress_scenario"] == "crash"
    # short 2 CL (1000 barrels each) and oil up 15 USD (absolute returns): 30,000
    np.testing.assert_allclose(m.loc["oil", "stress_loss"], 2 * 1000 * 15.0, rtol=1e-12)
    assert m.loc["oil", "stress_scenario"] == "oil-spike"


@pytest.mark.parametrize("mode, weight", [("max", 1.0), ("blend", 0.5)])
def test_stress_enters_the_margin(tmp_path, prices, mode, weight):
    inputs = _inputs(tmp_path, prices, [("a", "ES", 1.0)], [("a", 1e6)])
    base = dict(method="hs", horizon=1, lookback=500)
    report = run_eod(inputs, RunConfig(**base)).margins.iloc[0]
    stressed = run_eod(inputs, RunConfig(**base, stress=StressConfig(mode=mode, weight=weight))
                       ).margins.iloc[0]
    assert report["stress_loss"] == stressed["stress_loss"] > report["model_margin"]
    expected = (max(report["model_margin"], weight * report["stress_loss"]) if mode == "max"
                else (1 - weight) * report["model_margin"] + weight * report["stress_loss"])
    np.testing.assert_allclose(stressed["initial_margin"], max(expected,
                               report["initial_margin"]), rtol=1e-12)
    assert stressed["model_margin"] == report["model_margin"]


def test_worst_loss_kernel_equals_twin():
    rng = np.random.default_rng(0)
    pnl = rng.normal(size=(30, 17))
    indptr = np.array([0, 3, 3 + 5, 8 + 1, 9 + 4], dtype=np.int64)
    idx = rng.integers(0, 30, 13).astype(np.int64)
    q = rng.normal(size=13)
    worst, arg = np.empty(4), np.empty(4, dtype=np.int64)
    worst_loss(pnl, indptr, idx, q, worst, arg)
    w2, a2 = worst_loss_python(pnl, indptr, idx, q)
    np.testing.assert_allclose(worst, w2, rtol=1e-14)
    np.testing.assert_array_equal(arg, a2)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_grid_kernel_equals_the_numpy_twin_bit_for_bit(seed):
    """The numba grid reduction against :func:`grid_loss` (bincount per scan point), on random
    books where sets hold several positions on the same factor, empty sets included."""
    rng = np.random.default_rng(seed)
    n_instr, n_grid, n_sets = 40, 27, 300
    unit = rng.normal(0.0, 50.0, (n_instr, n_grid))
    weights = np.where(rng.uniform(size=n_grid) < 0.2, 0.35, 1.0)
    factor_code = rng.integers(0, 7, n_instr).astype(np.int64)
    sizes = rng.integers(0, 9, n_sets)
    indptr = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
    index = rng.integers(0, n_instr, indptr[-1]).astype(np.int64)
    quantity = rng.normal(0.0, 3.0, indptr[-1])
    got = np.empty(n_sets)
    grid_set_loss(unit, weights, indptr, index, quantity, factor_code, got)
    set_of_position = np.repeat(np.arange(n_sets), sizes)
    key = set_of_position * 7 + factor_code[index]
    group_keys, codes = np.unique(key, return_inverse=True)
    want = grid_loss(quantity[:, None] * unit[index], weights, codes.astype(np.int64),
                     group_keys // 7, n_sets)
    assert np.array_equal(got, want)
    assert np.all(got[sizes == 0] == 0.0)
