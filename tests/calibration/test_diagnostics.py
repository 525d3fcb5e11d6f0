"""Calibration diagnostics: Ljung-Box against a naive oracle, ARCH sanity, the written report."""

from __future__ import annotations

import html
import math
import re
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from arch.data import nasdaq, sp500
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from scipy import stats

import calibration.diagnostics as diag
import riskmodel.report.calibration as pages
from calibration.diagnostics import innovation_ppf, ljung_box, write_report
from calibration.estimate import Spec
from calibration.runner import calibrate
from riskmodel.volatility.filters import filter_factor
from riskmodel.volatility.params import FactorParams

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
FACTORS = ("S&P 500", "NASDAQ")


# -- Ljung-Box -------------------------------------------------------------------------------


def naive_ljung_box(x: list[float], m: int) -> tuple[float, float]:
    """Textbook Ljung-Box with explicit loops: the oracle."""
    n = len(x)
    mean = sum(x) / n
    c0 = sum((v - mean) ** 2 for v in x)
    q = 0.0
    for k in range(1, m + 1):
        ck = 0.0
        for t in range(k, n):
            ck += (x[t] - mean) * (x[t - k] - mean)
        rho = ck / c0
        q += rho * rho / (n - k)
    q *= n * (n + 2)
    return q, float(stats.chi2.sf(q, m))


def test_ljung_box_matches_naive_loops():
    rng = np.random.default_rng(7)
    x = rng.standard_t(5, size=300) ** 2
    lags = (1, 5, 10, 20)
    got = ljung_box(x, lags)
    assert list(got.index) == list(lags)
    for m in lags:
        q, p = naive_ljung_box(x.tolist(), m)
        assert got.at[m, "Q"] == pytest.approx(q, rel=1e-12)
        assert got.at[m, "p_value"] == pytest.approx(p, rel=1e-9)
        assert got.at[m, "df"] == m


def test_ljung_box_model_df_and_degenerate_inputs():
    rng = np.random.default_rng(1)
    x = rng.normal(size=200)
    adj = ljung_box(x, (1, 2, 10), model_df=2)
    q10, _ = naive_ljung_box(x.tolist(), 10)
    assert adj.at[10, "p_value"] == pytest.approx(stats.chi2.sf(q10, 8), rel=1e-9)
    assert math.isnan(adj.at[1, "p_value"]) and math.isnan(adj.at[2, "p_value"])
    const = ljung_box(np.full(50, 3.0), (5,))
    assert math.isnan(const.at[5, "Q"]) and math.isnan(const.at[5, "p_value"])
    short = ljung_box(x[:5], (5, 10))
    assert short["Q"].isna().all()
    with pytest.raises(ValueError, match="non-finite"):
        ljung_box(np.array([1.0, np.nan, 2.0]), (1,))
    with pytest.raises(ValueError, match="lags"):
        ljung_box(x, (0,))


@settings(max_examples=40, deadline=None)
@given(
    x=arrays(np.float64, st.integers(30, 120),
             elements=st.floats(-1e3, 1e3, allow_nan=False, allow_infinity=False)),
    a=st.floats(0.01, 100.0),
    b=st.floats(-100.0, 100.0),
)
def test_ljung_box_affine_invariant_and_monotone(x, a, b):
    """Q depends only on autocorrelations: unchanged by x -> a x + b; non-decreasing in m."""
    y = a * x + b
    if min(np.ptp(x), np.ptp(y)) < 1e-3 * max(1.0, float(np.max(np.abs(x))), abs(b)):
        return  # (near-)constant, or the shift swamps the spread: all rounding
    q = ljung_box(x, (1, 5, 10))["Q"].to_numpy()
    q2 = ljung_box(y, (1, 5, 10))["Q"].to_numpy()
    np.testing.assert_allclose(q2, q, rtol=1e-6, atol=1e-9)
    assert np.all(q >= 0) and np.all(np.diff(q) >= -1e-12)


def simulate_garch(n: int, omega: float, alpha: float, beta: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    z = rng.standard_normal(n + 500)
    r = np.empty_like(z)
    s2 = omega / (1.0 - alpha - beta)
    for t in range(z.size):
        r[t] = math.sqrt(s2) * z[t]
        s2 = omega + alpha * r[t] ** 2 + beta * s2
    return r[500:]  # burn-in


def test_ljung_box_detects_arch_and_filter_removes_it():
    # Fixed seeds; across seeds the minimum over the three lags falls below 1e-3 rarely.
    iid = np.random.default_rng(11).standard_normal(2000)
    assert ljung_box(iid**2)["p_value"].min() > 1e-3

    omega, alpha, beta = 0.05, 0.10, 0.85  # percent returns
    r = simulate_garch(3000, omega, alpha, beta, seed=3)
    assert ljung_box(r**2).at[10, "p_value"] < 1e-6

    series = pd.Series(r, index=pd.bdate_range("2010-01-01", periods=r.size))
    true = FactorParams(model="garch", return_scale=1.0, omega=omega, alpha=alpha, beta=beta,
                        backcast="sample")
    z = filter_factor("SIM", series, true).std_resid.to_numpy()
    assert ljung_box(z**2)["p_value"].min() > 1e-3


def test_innovation_ppf_is_arch_standardised():
    q = np.array([0.001, 0.05, 0.5, 0.9, 0.999])
    normal = FactorParams(model="ewma")
    np.testing.assert_allclose(innovation_ppf(normal, q), stats.norm.ppf(q))
    nu = 6.0
    t = FactorParams(model="ewma", dist="t", nu=nu)
    unit_var_t = stats.t.ppf(q, nu) * math.sqrt((nu - 2.0) / nu)
    np.testing.assert_allclose(innovation_ppf(t, q), unit_var_t, rtol=1e-8)
    # Hansen's skew-t with lambda = 0 is the standardised t.
    skewt0 = FactorParams(model="ewma", dist="skewt", nu=nu, skew=0.0)
    np.testing.assert_allclose(innovation_ppf(skewt0, q), unit_var_t, rtol=1e-8)
    left = FactorParams(model="ewma", dist="skewt", nu=nu, skew=-0.3)
    assert innovation_ppf(left, q)[0] < unit_var_t[0]  # negative lambda: heavier left tail


def test_file_stems_safe_and_distinct():
    stems = pages.file_stems(["SPX", "S&P 500", "S P 500", "spx", "../etc", ""])
    assert len(set(s.casefold() for s in stems.values())) == len(stems)
    for s in stems.values():
        assert re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", s), s
    assert pages.file_stems(["NASDAQ"]) == {"NASDAQ": "NASDAQ"}


# -- The report ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def calibrated():
    """Two real index series (arch.data), last 1500 log returns, fitted GARCH(1,1)-t."""
    closes = pd.concat(
        [sp500.load()["Close"].rename(FACTORS[0]), nasdaq.load()["Close"].rename(FACTORS[1])],
        axis=1,
    ).dropna()
    closes.index = pd.DatetimeIndex(closes.index)
    returns = np.log(closes).diff().dropna().iloc[-1500:]
    pset = calibrate(returns, Spec(model="garch", dist="t"))
    return pset, returns


def _check_png(path: Path) -> None:
    data = path.read_bytes()
    assert data[:8] == PNG_MAGIC, path
    assert len(data) > 5_000, (path, len(data))


def test_report_written(calibrated, tmp_path):
    pset, returns = calibrated
    assert set(pset.factors) == set(FACTORS)
    out = tmp_path / "diag"
    t0 = time.perf_counter()
    md_path = write_report(pset, returns, out)
    elapsed = time.perf_counter() - t0
    assert elapsed < 3.0 * len(FACTORS)  # target < 1 s per factor; slack for a loaded machine

    assert md_path == out / "report.md"
    md = md_path.read_text(encoding="utf-8")
    page = (out / "report.html").read_text(encoding="utf-8")
    stems = pages.file_stems(sorted(FACTORS))
    for name in FACTORS:
        assert name in md
        assert html.escape(name) in page
        for kind in ("vol", "qq"):
            png = out / f"{kind}_{stems[name]}.png"
            _check_png(png)
            assert f"({png.name})" in md  # the Markdown links its own PNGs
    assert "garch/t" in md and "Ljung-Box" in md and "LB(10) p z²" in md
    for col in ("std. error", "t-stat", "loglik", "AIC", "BIC"):
        assert col in md and col in page

    # Self-contained HTML: every image inlined, nothing fetched from elsewhere.
    srcs = re.findall(r'<img[^>]*\ssrc="([^"]*)"', page)
    # two per factor, and the overview: volatility levels and the correlation heatmap
    assert len(srcs) == 2 * len(FACTORS) + 2
    assert "Dependence" in page and "degrees of freedom" in page
    assert all(s.startswith("data:image/png;base64,") for s in srcs)
    assert not re.search(r'(src|href)="(?!data:|#)', page)  # in-page anchors only
    assert not re.search(r"https?://", page)
    # Nothing left behind by the staging folder.
    assert [p.name for p in tmp_path.iterdir()] == ["diag"]


def test_report_lb_shows_filter_removed_arch(calibrated):
    pset, returns = calibrated
    for name in FACTORS:
        res = diag._analyse(name, pset.factors[name], returns[name].dropna(), "x")
        assert len(res.filtered.sigma2) == 1500
        assert res.lb_r.at[10, "p_value"] < 1e-6
        assert res.lb_z.at[10, "p_value"] > 1e-3


def test_report_fallback_factor_and_errors(calibrated, tmp_path, monkeypatch):
    pset, returns = calibrated
    # An EWMA fallback (no loglik, no std errors, no unconditional vol) must still render.
    ewma = FactorParams(model="ewma", return_scale=100.0,
                        fallback="short history: 300 returns < min_history 500")
    extra = returns[FACTORS[0]].rename("ALT|coin").copy()
    extra.iloc[:-300] = np.nan
    rets = pd.concat([returns, extra], axis=1)
    pset3 = replace(pset, factors={**pset.factors, "ALT|coin": ewma})
    out = tmp_path / "diag"
    write_report(pset3, rets, out)
    md = (out / "report.md").read_text(encoding="utf-8")
    assert "short history: 300 returns" in md
    assert r"ALT\|coin" in md  # pipes escaped, the tables stay intact
    for line in md.splitlines():
        if line.startswith("| ALT"):
            assert line.count(" | ") == 6  # seven summary columns
    assert len(list(out.glob("*.png"))) == 6

    with pytest.raises(ValueError, match="no returns"):
        write_report(pset3, returns, tmp_path / "missing")

    # A failure half-way leaves the target untouched (staged output).
    before = {p.name: p.stat().st_mtime_ns for p in out.iterdir()}

    def boom(*args, **kwargs):
        raise RuntimeError("plot failed")

    monkeypatch.setattr(pages, "_qq_plot", boom)
    with pytest.raises(RuntimeError, match="plot failed"):
        write_report(pset3, rets, out)
    assert {p.name: p.stat().st_mtime_ns for p in out.iterdir()} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["diag"]
