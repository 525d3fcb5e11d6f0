"""The EMIR Article 28 tools inside a run, against independent computations on S&P 500 data."""

import json

import numpy as np
from engine_inputs import write_inputs

from riskmodel.batch.eod import run_eod, write_eod
from riskmodel.config import (
    MarginPolicy,
    ProcyclicalityConfig,
    RateTable,
    RunConfig,
    StressConfig,
    StressGrid,
)

INSTRUMENTS = [("ES", "future", "SPX", 50.0)]
NO_STRESS = StressConfig(historical=False, grid=StressGrid(enabled=False))


def _weighted_var_es(losses, weights, a):
    """Sort-based weighted VaR/ES from the DESIGN.md definitions (independent of the kernels)."""
    order = np.argsort(losses, kind="stable")
    loss, w = losses[order], weights[order] / weights.sum()
    cum = np.cumsum(w)
    i = int(np.argmax(cum >= a - 1e-12))
    var = loss[i]
    tail = w[loss > var] @ loss[loss > var]
    es = (tail + var * (w[loss <= var].sum() - a)) / (1 - a)
    return var, es


def test_stressed_observations_get_a_quarter_of_the_weight(tmp_path, index_closes):
    prices = index_closes.loc[:"2018-12-31"]
    inputs = write_inputs(tmp_path, prices, INSTRUMENTS, [("a", "ES", 1.0)], [("a", 1e6)])
    apc = ProcyclicalityConfig(tools=("stressed_weight",), stressed_windows=("gfc-2008-10",))
    result = run_eod(inputs, RunConfig(method="hs", horizon=1, lookback=500, stress=NO_STRESS,
                                       anti_procyclicality=apc))
    spx = prices["SPX"]
    p0 = spx.iloc[-1]
    normal = np.log(spx / spx.shift(1)).dropna().iloc[-500:].to_numpy()
    gfc = spx.loc["2008-09-29":"2008-10-28"].to_numpy()
    stressed = np.log(gfc[1:] / gfc[:-1])
    losses = -50.0 * p0 * np.expm1(np.concatenate([normal, stressed]))
    weights = np.concatenate([np.full(500, 0.75 / 500), np.full(len(stressed),
                                                              0.25 / len(stressed))])
    var, es = _weighted_var_es(losses, weights, 0.99)
    m = result.margins.iloc[0]
    np.testing.assert_allclose([m["var"], m["es"]], [var, es], rtol=1e-9)
    info = result.manifest["anti_procyclicality"]["stressed_weight"]
    assert info["stressed_scenarios_by_horizon"] == {"1": len(stressed)}


def test_ten_year_floor(tmp_path, index_closes):
    prices = index_closes.loc[:"2018-12-31"]
    inputs = write_inputs(tmp_path, prices, INSTRUMENTS, [("a", "ES", 1.0)], [("a", 1e6)])
    apc = ProcyclicalityConfig(tools=("floor",), floor_lookback=2520)
    result = run_eod(inputs, RunConfig(method="hs", horizon=1, lookback=250, stress=NO_STRESS,
                                       anti_procyclicality=apc))
    spx = prices["SPX"]
    losses = -50.0 * spx.iloc[-1] * np.expm1(np.log(spx / spx.shift(1)).dropna()
                                             .iloc[-2520:].to_numpy())
    _, es_long = _weighted_var_es(losses, np.ones(len(losses)), 0.99)
    m = result.margins.iloc[0]
    # calm 2018 window: the ten-year ES (with 2008-2011 in it) binds
    assert es_long > m["model_margin"]
    np.testing.assert_allclose(m["initial_margin"], es_long, rtol=1e-9)
    assert result.manifest["anti_procyclicality"]["floor"]["bound_sets"] == 1


def test_buffer_is_released_only_when_margin_rises_sharply(tmp_path, index_closes):
    prices = index_closes.loc[:"2018-12-31"]
    apc = ProcyclicalityConfig(tools=("buffer",), buffer=0.25, release_trigger=0.5)
    config = RunConfig(method="hs", horizon=1, lookback=500, stress=NO_STRESS,
                       anti_procyclicality=apc,
                       margin=MarginPolicy(initial_floor_rates=RateTable(default=0.0)))

    def run(qty, folder, previous=None):
        inputs = write_inputs(tmp_path / folder, prices, INSTRUMENTS, [("a", "ES", qty)],
                              [("a", 1e6)])
        return run_eod(inputs, config, previous_run=previous)

    first = run(1.0, "day1")
    write_eod(first, tmp_path / "out1")
    m1 = first.margins.iloc[0]
    np.testing.assert_allclose(m1["initial_margin"], 1.25 * m1["model_margin"], rtol=1e-12)
    # +20%: below the trigger, the buffer stays
    small = run(1.2, "day2", previous=tmp_path / "out1").margins.iloc[0]
    np.testing.assert_allclose(small["initial_margin"], 1.25 * small["model_margin"], rtol=1e-12)
    # doubled position: model margin +100% > 50%, the buffer is released that day
    big = run(2.0, "day3", previous=tmp_path / "out1")
    m3 = big.margins.iloc[0]
    np.testing.assert_allclose(m3["initial_margin"], m3["model_margin"], rtol=1e-12)
    assert big.manifest["anti_procyclicality"]["buffer"]["released_sets"] == 1
    json.dumps(big.manifest)  # the manifest stays plain JSON
