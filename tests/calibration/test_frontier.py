"""The study's frontier: both flat-rate rules' curves, the cost's peak and jumps, the
configurations traced over confidence, efficiency on each cost (brute force)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from calibration.studies import (
    efficient,
    flat_rate_curve,
    frontier_table,
    margin_path,
    run_study,
)
from riskmodel.backtest.run import BacktestInputs, BacktestWindow, run_backtest
from riskmodel.config import config_from_mapping


def _rows() -> pd.DataFrame:
    # two sets over three dates; per-date mean schedule: (2 + 4) / 2 = 3, (6 + 2) / 2 = 4,
    # 1 (one set only): peak 4, largest rise 1
    return pd.DataFrame({
        "date": pd.to_datetime(["2024-01-01", "2024-01-01", "2024-01-02", "2024-01-02",
                                "2024-01-03"]),
        "realized_loss": [3.0, -1.0, 5.0, 1.0, 0.5],
        "gross_notional": [10.0, 20.0, 10.0, 20.0, 10.0],
        "realisable_flat_rate_margin": [2.0, 4.0, 6.0, 2.0, 1.0]})


def test_margin_path_by_hand():
    assert margin_path(_rows(), "realisable_flat_rate_margin") == (4.0, 1.0)
    # notional per date 15, 15, 10: peak 15, no rise
    assert margin_path(_rows(), "gross_notional") == (15.0, 0.0)


def test_realisable_curve_counts_breaches_as_a_loop_does():
    frame = _rows()
    curve = flat_rate_curve(frame, base="realisable_flat_rate_margin", points=10)
    assert set(curve["kind"]) == {"realisable flat rate"}
    assert 1.0 in set(curve["rate"])  # the schedule as it ran
    for k, breaches, peak, jump in zip(curve["rate"], curve["breaches"], curve["peak_margin"],
                                       curve["max_jump_1d"]):
        expected = sum(loss > k * m for loss, m in zip(frame["realized_loss"],
                                                      frame["realisable_flat_rate_margin"]))
        assert breaches == expected
        assert peak == pytest.approx(4.0 * k) and jump == pytest.approx(k)
    # as run (k = 1): 3 > 2 and 1 > 2? no; 5 > 6? no: one breach, mean margin 3
    ran = curve[curve["rate"] == 1.0].iloc[0]
    assert ran["breaches"] == 1 and ran["mean_margin"] == pytest.approx(3.0)


def test_frontier_marks_each_cost_by_brute_force():
    table = pd.DataFrame({
        "point": [1, 2, 3], "confidence": [0.98, 0.99, 0.99],
        "configuration": ["a", "a", "b"], "mean_initial_margin": [1.0, 2.0, 1.5],
        "margin_breach_rate": [0.02, 0.01, 0.03], "peak_initial_margin": [5.0, 4.0, 9.0],
        "max_jump_1d": [1.0, 2.0, 0.5]})
    flat = pd.DataFrame({"point": 1, "rate": [0.05, 0.1], "breaches": [4, 1],
                         "breach_rate": [0.04, 0.005], "mean_margin": [1.2, 2.5],
                         "peak_margin": [3.0, 6.0], "max_jump_1d": [0.2, 0.4],
                         "kind": "flat rate"})
    real = flat.assign(kind="realisable flat rate", rate=[1.0, 1.5],
                       breach_rate=[0.015, 0.008], mean_margin=[1.8, 2.7])
    frontier = frontier_table(table, pd.concat([flat, real], ignore_index=True))
    assert frontier["kind"].tolist() == ["grid"] * 3 + ["flat rate"] * 2 + \
        ["realisable flat rate"] * 2
    assert frontier["configuration"].iloc[:3].tolist() == ["a", "a", "b"]
    rate = frontier["breach_rate"].to_numpy()
    for cost, name in (("mean_margin", "efficient"), ("peak_margin", "efficient_peak"),
                       ("max_jump_1d", "efficient_jump")):
        c = frontier[cost].to_numpy()
        for i in range(len(frontier)):
            beaten = any(c[j] <= c[i] and rate[j] <= rate[i] and (c[j] < c[i] or rate[j] < rate[i])
                         for j in range(len(frontier)))
            assert frontier[name].iat[i] == (not beaten), (name, i)
    # point 3 (1.5, 3%) is beaten on mean cost by point 1 (1.0, 2%)
    assert not frontier["efficient"].iat[2] and frontier["efficient"].iat[0]
    assert (efficient(frontier["mean_margin"].to_numpy(), rate) == frontier["efficient"]).all()


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("frontier")
    rng = np.random.default_rng(11)
    n = 520
    dates = pd.bdate_range("2019-01-01", periods=n)
    vol = 0.01 * np.exp(np.cumsum(rng.normal(0, 0.05, size=(n, 2)), axis=0))
    prices = pd.DataFrame(50.0 * np.exp(np.cumsum(rng.standard_t(4, (n, 2)) * vol, axis=0)),
                          columns=["XX", "YY"], index=dates.strftime("%Y-%m-%d"))
    prices.index.name = "date"
    prices.to_csv(folder / "prices.csv")
    pd.DataFrame({"instrument_id": ["XX", "YY"], "kind": "spot", "underlying": ["XX", "YY"],
                  "multiplier": 1.0}).to_csv(folder / "instruments.csv", index=False)
    return BacktestInputs(folder / "prices.csv", folder / "instruments.csv")


def test_study_traces_configurations_over_confidence_with_both_flat_rates(files):
    raw = {"method": "hs", "horizon": 1, "lookback": 200, "min_history": 200}
    grid = {"confidence": [0.97, 0.99], "measure": ["var", "es"]}
    window = BacktestWindow("2020-01-01", None, 2)
    study = run_study(files, raw, {}, grid, window)
    table = study.table
    # one configuration per measure, traced over the two confidences
    assert table.groupby("configuration")["confidence"].apply(sorted).to_dict() == {
        "measure = es": [0.97, 0.99], "measure = var": [0.97, 0.99]}
    direct = run_backtest(files, config_from_mapping({**raw, "confidence": 0.99,
                                                      "measure": "es"}), window, n_sim=0)
    pooled = direct.summary["pooled"]
    row = table[(table["confidence"] == 0.99) & (table["measure"] == "es")].iloc[0]
    assert row["realisable_flat_rate_margin"] == pytest.approx(
        pooled["realisable_flat_rate"]["mean_margin"], rel=1e-12)
    assert row["im_over_realisable_equivalent"] == pytest.approx(
        pooled["mean_margin"] / pooled["realisable_flat_rate_equivalent"]["mean_margin"])
    assert (row["peak_initial_margin"], row["max_jump_1d"]) == pytest.approx(
        margin_path(direct.backtest, "initial_margin"))
    assert row["coverage_passes"].endswith("of 5")
    frontier = frontier_table(table, study.flat_rates)
    assert {"grid", "flat rate", "realisable flat rate"} <= set(frontier["kind"])
    # the realisable schedule depends on the confidence, the flat rate on the rows only
    assert frontier.loc[frontier["kind"] == "flat rate", "points"].nunique() == 1
    assert frontier.loc[frontier["kind"] == "realisable flat rate", "points"].nunique() == 2
