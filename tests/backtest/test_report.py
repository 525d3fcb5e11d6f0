"""The backtest report: PNG files, a self-contained HTML page with the summary tables."""

import base64
import re

import numpy as np
import pandas as pd
import pytest

from riskmodel.backtest.statistics import summarise
from riskmodel.report.backtest import write_report

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def small_backtest(n_sets=4, n_dates=60, seed=0):
    rng = np.random.default_rng(seed)
    dates = pd.bdate_range("2024-03-01", periods=n_dates)
    frames = []
    for i in range(n_sets):
        sigma = 50 * np.exp(np.cumsum(rng.normal(0, 0.04, n_dates)))
        var = 2.33 * sigma
        loss = sigma * rng.standard_t(3, n_dates)
        notional = np.full(n_dates, 1000.0 * (i + 1))
        frames.append(pd.DataFrame({
            "date": dates, "account_id": 1000 + i, "netting_set": "default",
            "var": var, "es": 1.25 * var, "initial_margin": 1.4 * var,
            "flat_rate_margin": 0.2 * notional, "realized_loss": loss,
            "gross_notional": notional,
        }))
    df = pd.concat(frames, ignore_index=True)
    df["exception"] = df["realized_loss"] > df["var"]
    df["margin_breach"] = df["realized_loss"] > df["initial_margin"]
    df["flat_rate_breach"] = df["realized_loss"] > df["flat_rate_margin"]
    return df


def test_report_writes_pngs_and_a_self_contained_html(tmp_path):
    df = small_backtest()
    summary = summarise(df, 0.99, n_sim=200, seed=0)
    out = tmp_path / "report"
    paths = write_report(df, summary, out, max_portfolios_plotted=2)

    names = [p.name for p in paths]
    assert names == ["margin_pooled.png", "margin_01.png", "margin_02.png",
                     "im_vs_flat_rate.png", "exception_clustering.png", "report.html"]
    pngs = [p for p in paths if p.suffix == ".png"]
    for p in paths:
        assert p.is_file() and p.parent == out
    for p in pngs:
        assert p.read_bytes()[:8] == PNG_MAGIC

    text = (out / "report.html").read_text(encoding="utf-8")
    assert text.startswith("<!DOCTYPE html>")
    # The pooled and the per-netting-set tables, statistics under their names, not keys.
    assert text.count("<table>") >= 2
    assert "Pooled over all netting sets" in text and "Per netting set" in text
    for p in summary["portfolios"]:
        assert f">{p['account_id']}<" in text
    assert "Kupiec p-value (coverage)" in text and "flat-rate equivalent: rate" in text
    assert "kupiec_pvalue" not in text and "timings_s" not in text
    assert summary["pooled"]["traffic_light"] in text
    # two of the four sets plotted: the page names the two left out
    assert "1002 / default" in text and "1003 / default" in text
    # Every image embedded, byte for byte, and no reference to an external file.
    embedded = re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', text)
    assert len(embedded) == len(pngs)
    assert sorted(base64.b64decode(e) for e in embedded) == sorted(p.read_bytes() for p in pngs)
    assert "src=\"http" not in text and ".png\"" not in text


def test_report_with_no_exceptions_and_no_portfolio_plots(tmp_path):
    df = small_backtest(n_sets=2, n_dates=30, seed=1)
    df["var"] = df["realized_loss"].abs().max() * 2  # no exceptions anywhere
    df["es"] = df["var"] * 1.2
    df["initial_margin"] = df["es"]
    df["exception"] = False
    df["margin_breach"] = False
    summary = summarise(df, 0.99, n_sim=0)
    paths = write_report(df, summary, tmp_path, max_portfolios_plotted=0)
    assert [p.name for p in paths] == ["margin_pooled.png", "im_vs_flat_rate.png",
                                       "exception_clustering.png", "report.html"]
    assert "data:image/png;base64" in (tmp_path / "report.html").read_text(encoding="utf-8")


def test_report_rejects_a_summary_of_something_else(tmp_path):
    df = small_backtest(n_sets=1, n_dates=10)
    with pytest.raises(ValueError, match="portfolios"):
        write_report(df, {"pooled": {}}, tmp_path)
