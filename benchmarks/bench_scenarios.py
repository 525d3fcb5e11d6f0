"""Benchmark: Monte Carlo scenario paths vs a plain numpy/scipy reference, in the same process.

Universe (fixed seed): ``--factors`` factors cycling through GARCH, GJR and EGARCH recursions
and normal, Student-t and skew-t marginals (random nu in [4, 12], lambda in [-0.3, 0.3], today's
variance in [0.5, 3] x 1e-4), and a correlation matrix from a 5-factor model plus idiosyncratic
noise (valid by construction). The engine, :func:`monte_carlo_scenarios` with the t copula
(nu = 6), is timed for 2-day and 10-day paths of ``--scenarios`` scenarios, after one warm-up
(JIT), as the median of ``--repeats`` runs:

* cold: the quantile tables are rebuilt in every run (what a daily run with fresh parameters
  pays; the table build alone is shown on its own row);
* warm: the tables come from the cache (a backtest or a rerun with the same parameters).

The reference is the same algorithm vectorised in numpy with scipy: per day, ``z @ L.T``,
chi-square mixing, ``scipy.stats.t.cdf`` and each factor's ppf (``scipy.stats.norm.ppf``,
``arch``'s ``StudentsT.ppf`` / ``SkewStudent.ppf``), then the variance recursions with numpy
masks. It is too slow to run at full size, so it is timed once on ``--reference-scenarios``
(default 1,000) and once on twice as many scenarios, and extrapolated linearly to
``--scenarios``: a fixed per-call cost (the Python loop over factors) plus a per-scenario cost
(every step is element-wise or a product with a fixed n_factors x n_factors matrix). Both
simulate the same model: the table compares their cross-factor mean of the per-factor 1%
quantiles of the standardised shocks (the reference's on its 2x sample, so noisier).

    python benchmarks/bench_scenarios.py --scenarios 10000 --factors 500 --repeats 3
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from typing import TypeVar

import numba
import numpy as np
import pandas as pd
from arch.univariate import SkewStudent, StudentsT
from scipy import stats

from riskmodel.scenarios.monte_carlo import (
    build_quantile_tables,
    clear_table_cache,
    marginal_of,
    monte_carlo_scenarios,
)
from riskmodel.volatility.filters import FilteredFactor
from riskmodel.volatility.params import FactorParams

T = TypeVar("T")
COPULA_NU = 6.0
TARGETS = {2: 0.5, 10: 2.0}  # seconds on 2 cores


def universe(n_factors: int, seed: int = 0) -> tuple[dict[str, FilteredFactor], np.ndarray]:
    """Filtered factors (mixed models and marginals) and a factor-model correlation matrix."""
    rng = np.random.default_rng(seed)
    idx = pd.bdate_range("2024-01-01", periods=5)
    filtered = {}
    for i in range(n_factors):
        model = ("garch", "gjr", "egarch")[i % 3]
        dist = ("normal", "t", "skewt")[(i // 3) % 3]
        nu = float(rng.uniform(4.0, 12.0)) if dist != "normal" else None
        skew = float(rng.uniform(-0.3, 0.3)) if dist == "skewt" else None
        if model == "egarch":
            p = FactorParams(model, 100.0, dist, omega=0.01, alpha=0.12, gamma=-0.06,
                             beta=0.98, nu=nu, skew=skew)
        elif model == "gjr":
            p = FactorParams(model, 100.0, dist, omega=0.02, alpha=0.03, gamma=0.1, beta=0.9,
                             nu=nu, skew=skew)
        else:
            p = FactorParams(model, 100.0, dist, omega=0.02, alpha=0.08, beta=0.9, nu=nu,
                             skew=skew)
        s2 = float(rng.uniform(0.5, 3.0)) * 1e-4
        name = f"F{i:04d}"
        filtered[name] = FilteredFactor(name, p, pd.Series(np.full(5, s2), idx),
                                        pd.Series(np.zeros(5), idx), s2, "benchmark")
    loadings = rng.normal(0.0, 0.5, (n_factors, 5))
    cov = loadings @ loadings.T + np.diag(rng.uniform(0.3, 1.0, n_factors))
    d = np.sqrt(np.diag(cov))
    return filtered, cov / np.outer(d, d)


def _ppf(p: FactorParams) -> Callable[[np.ndarray], np.ndarray]:
    """The factor's standardised quantile function, as arch computes it."""

    def ppf(u: np.ndarray) -> np.ndarray:
        if p.dist == "normal":
            return np.asarray(stats.norm.ppf(u))
        if p.dist == "t":
            return np.asarray(StudentsT().ppf(u, [p.nu]))
        return np.asarray(SkewStudent().ppf(u, [p.nu, p.skew]))

    return ppf


def reference(filtered: dict[str, FilteredFactor], corr: np.ndarray, horizon: int,
              n: int, seed: int) -> np.ndarray:
    """The same paths in plain numpy/scipy (own random numbers). Shape (n, n_factors)."""
    rng = np.random.default_rng(seed)
    ff = list(filtered.values())
    n_f = len(ff)
    chol = np.linalg.cholesky(corr)
    rec = np.array([f.params.recursion() for f in ff])
    code = rec[:, 0].astype(int)
    omega, alpha, gamma, beta = rec[:, 1], rec[:, 2], rec[:, 3], rec[:, 4]
    mu = np.array([f.mu for f in ff])
    var = np.broadcast_to(np.array([f.sigma2_next for f in ff]), (n, n_f)).copy()
    total = np.zeros((n, n_f))
    ppfs = [_ppf(f.params) for f in ff]
    tiny = np.finfo(float).eps
    for _ in range(horizon):
        g = rng.standard_normal((n, n_f)) @ chol.T
        w = np.sqrt(COPULA_NU / rng.chisquare(COPULA_NU, n))
        u = np.clip(stats.t.cdf(g * w[:, None], COPULA_NU), tiny, 1 - tiny)
        x = np.empty_like(u)
        for j in range(n_f):
            x[:, j] = ppfs[j](u[:, j])
        eps = np.sqrt(var) * x
        total += mu + eps
        e2 = eps * eps
        garch = omega + alpha * e2 + beta * var
        gjr = garch + gamma * e2 * (eps < 0)
        zz = eps / np.sqrt(var)
        egarch = np.exp(omega + alpha * (np.abs(zz) - np.sqrt(2 / np.pi)) + gamma * zz
                        + beta * np.log(var))
        var = np.where(code == 1, garch, np.where(code == 2, gjr, egarch))
    return total


def timed(fn: Callable[[], T], repeats: int) -> tuple[float, T]:
    """Median wall time of ``repeats`` calls, and the last result."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), out


def q01(shocks: np.ndarray, filtered: dict[str, FilteredFactor], horizon: int) -> float:
    """Mean over factors of the 1% quantile of shock / sqrt(h sigma2_next)."""
    s2 = np.array([f.sigma2_next for f in filtered.values()])
    return float(np.mean(np.quantile(shocks / np.sqrt(horizon * s2), 0.01, axis=0)))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scenarios", type=int, default=10_000)
    ap.add_argument("--factors", type=int, default=500)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--reference-scenarios", type=int, default=1_000)
    args = ap.parse_args()
    filtered, corr = universe(args.factors)
    names = list(filtered)
    n, n_ref = args.scenarios, min(args.reference_scenarios, args.scenarios // 2)

    def engine(h: int, cold: bool) -> np.ndarray:
        if cold:
            clear_table_cache()
        return monte_carlo_scenarios(filtered, names, corr, h, n, 1,
                                     copula_nu=COPULA_NU).shocks

    engine(2, True)  # warm-up: JIT (cached on disk after the first run ever) and imports
    marginals = list(dict.fromkeys(marginal_of(f.params) for f in filtered.values()))

    def tables() -> None:
        clear_table_cache()
        build_quantile_tables(COPULA_NU, marginals)

    t_tables, _ = timed(tables, args.repeats)
    rows = []
    for h in (2, 10):
        cold, shocks = timed(lambda: engine(h, True), args.repeats)  # noqa: B023
        warm, _ = timed(lambda: engine(h, False), args.repeats)  # noqa: B023
        t1, _ = timed(lambda: reference(filtered, corr, h, n_ref, 2), 1)  # noqa: B023
        t2, ref_shocks = timed(lambda: reference(filtered, corr, h, 2 * n_ref, 2), 1)  # noqa: B023
        per_scenario = (t2 - t1) / n_ref
        ref = t1 + per_scenario * (n - n_ref)
        rows.append((h, cold, warm, ref, q01(shocks, filtered, h),
                     q01(ref_shocks, filtered, h)))

    print(f"Monte Carlo scenarios: {n:,} scenarios x {args.factors} factors, t copula "
          f"(nu = {COPULA_NU:g}), GARCH/GJR/EGARCH x normal/t/skew-t; "
          f"{numba.get_num_threads()} numba threads; median of {args.repeats} after a warm-up")
    print(f"quantile tables alone ({len(marginals)} distinct marginals, cold): "
          f"{t_tables:.3f} s")
    print(f"reference timed on {n_ref:,} and {2 * n_ref:,} scenarios (1 run each), extrapolated "
          f"linearly to {n:,}")
    print()
    head = (f"{'horizon':>7} {'engine cold':>12} {'engine warm':>12} {'target':>7} "
            f"{'reference':>10} {'speed-up':>9} {'q01 engine':>11} {'q01 ref':>8}")
    print(head)
    print("-" * len(head))
    for h, cold, warm, ref, qe, qr in rows:
        print(f"{h:>5} d {cold:>10.3f} s {warm:>10.3f} s {TARGETS[h]:>5.1f} s "
              f"{ref:>8.2f} s {ref / cold:>8.1f}x {qe:>11.3f} {qr:>8.3f}")


if __name__ == "__main__":
    main()
