"""Every page but the end-of-day one, rendered from small runs: verdict first, every portfolio
plotted or named as left out, moves as percentages, nothing fetched."""

import re

import numpy as np
import pandas as pd
import pytest
from report_checks import check_page, headline_values

from calibration.diagnostics import write_report as write_calibration
from calibration.studies import Study, efficient, flat_rate_curve, write_study
from riskmodel.backtest.statistics import summarise
from riskmodel.report.backtest import write_report as write_backtest
from riskmodel.report.liquidation_map import write_map_report
from riskmodel.volatility.params import FactorParams, ParameterSet


def _backtest(n_sets, n_dates=40, seed=3):
    rng = np.random.default_rng(seed)
    dates = pd.bdate_range("2024-01-01", periods=n_dates)
    frames = []
    for i in range(n_sets):
        var = np.full(n_dates, 2.33)
        loss = rng.standard_t(4, n_dates)
        frames.append(pd.DataFrame({
            "date": dates, "account_id": f"A{i:02d}", "netting_set": "default", "var": var,
            "es": 1.2 * var, "initial_margin": 1.3 * var, "flat_rate_margin": np.full(n_dates, 5.0),
            "realized_loss": loss, "gross_notional": np.full(n_dates, 50.0)}))
    df = pd.concat(frames, ignore_index=True)
    df["exception"] = df["realized_loss"] > df["var"]
    df["margin_breach"] = df["realized_loss"] > df["initial_margin"]
    df["flat_rate_breach"] = df["realized_loss"] > df["flat_rate_margin"]
    return df


def test_backtest_page_names_every_set_it_does_not_plot(tmp_path):
    df = _backtest(12)
    summary = summarise(df, 0.99, n_sim=0)
    write_backtest(df, summary, tmp_path / "few", max_portfolios_plotted=5)
    html = (tmp_path / "few" / "report.html").read_text(encoding="utf-8")
    check_page(html)
    plotted = re.findall(r'<figcaption class="fig-title">(A\d\d) / default:', html)
    assert len(plotted) == 5
    note = re.search(r"Every netting set is plotted but 7, (.*?)</p>", html, re.S).group(1)
    left = set(re.findall(r"A\d\d", note))
    assert left | set(plotted) == {f"A{i:02d}" for i in range(12)} and not left & set(plotted)
    # the plotted ones have the most margin breaches
    breaches = {p["account_id"]: p["margin_breaches"] for p in summary["portfolios"]}
    assert min(breaches[a] for a in plotted) >= max(breaches[a] for a in left)
    assert summary["pooled"]["traffic_light"] in headline_values(html)


def test_backtest_page_plots_every_set_when_they_fit(tmp_path):
    df = _backtest(3)
    write_backtest(df, summarise(df, 0.99, n_sim=0), tmp_path)
    html = (tmp_path / "report.html").read_text(encoding="utf-8")
    check_page(html)
    assert "(3 of 3 plotted)" in html and "Every netting set is plotted but" not in html


def test_calibration_page_shows_dependence_and_no_python_dict(tmp_path):
    rng = np.random.default_rng(0)
    dates = pd.bdate_range("2020-01-01", periods=400)
    returns = pd.DataFrame(rng.standard_normal((400, 2)) * 0.01, index=dates,
                           columns=["AAA", "BBB"])
    ewma = FactorParams(model="ewma", return_scale=100.0, decay=0.94,
                        fallback="short history: 400 returns < min_history 500")
    pset = ParameterSet(
        {"AAA": ewma, "BBB": ewma}, created_at="2024-01-01T00:00:00+00:00",
        data={"file": "/data/prices.csv", "sha256": "ab" * 32, "start": "2020-01-01",
              "end": "2021-07-14"},
        dependence={"method": "pairwise-complete correlation, Ledoit-Wolf shrinkage",
                    "factors": ["AAA", "BBB"], "correlation": [[1.0, 0.4], [0.4, 1.0]],
                    "shrinkage": 0.05, "n_complete": 400, "copula": {"family": "t", "nu": 7.5}})
    write_calibration(pset, returns, tmp_path / "diag")
    html = (tmp_path / "diag" / "report.html").read_text(encoding="utf-8")
    check_page(html)
    assert "Not estimated: EWMA with decay 0.94" in html and "Converged" not in html
    assert "{&#39;" not in html and "{'" not in html  # no Python dict printed
    assert "prices.csv" in html and "0 of 2 factors fitted" in html
    assert "7.5" in headline_values(html) and "AAA – BBB" in html
    assert len(re.findall(r"<img\b", html)) == 2 * 2 + 2


def _map_table():
    moves = np.linspace(-0.5, 0.5, 41)
    rows = []
    for scope, slope in (("U", 40), ("ALL", 60)):
        for m in moves:
            n_liq = 5 + int(slope * abs(m)) + (10 if m < 0 else 0) * (abs(m) > 0.2)
            rows.append((scope, m, 100 * (1 + m), 3, n_liq, 1, n_liq - 5, 1e6 * n_liq, 10.0))
    return pd.DataFrame(rows, columns=["scope", "move", "price", "n_margin_call",
                                       "n_liquidation", "new_margin_call", "new_liquidation",
                                       "notional_liquidated", "penalties"])


def test_liquidation_map_page_prints_moves_and_worst_in_words(tmp_path):
    table = _map_table()
    worst = table.loc[table["n_liquidation"].idxmax()]
    manifest = {"run": "/runs/r1", "netting_sets": 100, "liquidation_now": 5,
                "grid": {"from": -0.5, "to": 0.5, "points": 41},
                "worst": {"scope": str(worst["scope"]), "move": float(worst["move"]),
                          "n_liquidation": int(worst["n_liquidation"])}}
    cascades = pd.DataFrame({"scope": table["scope"], "move": table["move"], "rounds": 2,
                             "liquidated_initial": table["n_liquidation"],
                             "liquidated_final": table["n_liquidation"] + 1,
                             "extra_liquidations": 1, "extra_move_U": -0.004})
    write_map_report(tmp_path, table, manifest, cascades, run_date="2024-05-31")
    html = (tmp_path / "report.html").read_text(encoding="utf-8")
    check_page(html)
    # ALL falls 50%: 5 + 30 + 10 = 45 of 100
    assert "a fall of 50% of all underlyings together puts 45 of 100" in html
    assert "+2.5%" in html and "0.025000000000000022" not in html and "{&#39;" not in html
    assert len(re.findall(r"<img\b", html)) == 3  # heatmap, curves, cascades
    assert (tmp_path / "liquidation_map.png").read_bytes()[:4] == b"\x89PNG"


def test_flat_rate_curve_counts_breaches_as_a_loop_does():
    rng = np.random.default_rng(1)
    frame = pd.DataFrame({"realized_loss": rng.standard_t(3, 500),
                          "gross_notional": rng.uniform(10, 100, 500)})
    frame.loc[7, "gross_notional"] = 0.0
    frame.loc[7, "realized_loss"] = 1.0  # no notional, a loss: breached at every rate
    curve = flat_rate_curve(frame, [0.0123])
    assert 0.0123 in set(curve["rate"])
    for rate, breaches in zip(curve["rate"], curve["breaches"]):
        expected = sum(1 for loss, gross in zip(frame["realized_loss"], frame["gross_notional"])
                       if loss > rate * gross)
        assert breaches == expected
    assert curve["breaches"].iloc[-1] == 1  # the highest rate covers all but that row
    assert curve["mean_margin"].tolist() == pytest.approx(
        (curve["rate"] * frame["gross_notional"].mean()).tolist())


def test_efficient_matches_pairwise_domination():
    rng = np.random.default_rng(2)
    cost, rate = rng.integers(0, 6, 40).astype(float), rng.integers(0, 6, 40).astype(float)
    mask = efficient(cost, rate)
    for i in range(40):
        beaten = any(cost[j] <= cost[i] and rate[j] <= rate[i]
                     and (cost[j] < cost[i] or rate[j] < rate[i]) for j in range(40))
        assert mask[i] == (not beaten)


def test_study_page_marks_the_frontier(tmp_path):
    """Grid points (cost, breach rate): 1 (1.0, 2%), 2 (2.0, 1%), 3 (2.5, 1.5%); flat rates
    (1.5, 5%), (3.0, 1.2%), (5.0, 0%). Point 3 is beaten by point 2; 1 and 2 by nothing."""
    metrics = {"n_portfolios": 4, "n_dates": 100, "n_obs": 400, "exceptions": 5,
               "exception_rate": 0.0125, "expected_rate": 0.01, "kupiec_pvalue": 0.6,
               "christoffersen_pvalue": 0.5, "cc_pvalue": 0.5, "es_z2": 0.1,
               "margin_breaches": 1, "mean_flat_rate_margin": 4.0, "flat_rate_equivalent": 0.05,
               "flat_rate_equivalent_margin": 2.5, "peak_to_trough": 1.5,
               "max_increase_1d": 0.1, "max_increase_5d": 0.2, "start": "2024-01-01",
               "end": "2024-06-01", "runtime_s": 1.0}
    table = pd.DataFrame([
        {"point": 1, "confidence": 0.975, **metrics, "traffic_light": "yellow",
         "margin_breach_rate": 0.02, "mean_initial_margin": 1.0, "im_over_flat": 0.25},
        {"point": 2, "confidence": 0.99, **metrics, "traffic_light": "green",
         "margin_breach_rate": 0.01, "mean_initial_margin": 2.0, "im_over_flat": 0.5},
        {"point": 3, "confidence": 0.995, **metrics, "traffic_light": "green",
         "margin_breach_rate": 0.015, "mean_initial_margin": 2.5, "im_over_flat": 0.625},
    ])
    flat = pd.DataFrame({"point": [1, 1, 1], "rate": [0.03, 0.06, 0.1],
                         "breaches": [20, 5, 0], "breach_rate": [0.05, 0.012, 0.0],
                         "mean_margin": [1.5, 3.0, 5.0]})
    study = Study(table, {"confidence": [0.975, 0.99, 0.995]}, ["point 1 (x): a note"],
                  {"grid": {"confidence": [0.975, 0.99, 0.995]}, "window": {"step": 1}}, flat)
    write_study(study, tmp_path / "study")
    html = (tmp_path / "study" / "report.html").read_text(encoding="utf-8")
    check_page(html)
    verdict = re.search(r'<p class="verdict-text">(.*?)</p>', html, re.S).group(1)
    assert verdict.startswith("2 of 3 grid points are on the frontier")
    assert "1 (confidence = 0.975)" in verdict and "2 (confidence = 0.99)" in verdict
    assert "no: beaten by point 2" in html
    frontier = pd.read_csv(tmp_path / "study" / "frontier.csv")
    assert frontier["efficient"].tolist() == [True, True, False, False, False, True]
    assert (tmp_path / "study" / "study.png").read_bytes()[:4] == b"\x89PNG"
