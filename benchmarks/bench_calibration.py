"""Calibration throughput: GARCH(1,1) fits of many factors, in parallel processes.

Sizes: ``--factors`` x ``--days`` simulated GARCH(1,1) return series (seeded, t(6) innovations,
parameters varied per factor). Times ``calibration.runner.fit_all`` with ``--jobs`` processes
against the same fits run one after another in this process (the plain reference), and the full
``calibrate`` (fits + dependence) with ``--jobs``. Reports the median of ``--repeats`` runs.

    python benchmarks/bench_calibration.py --factors 500 --days 2000 --jobs 2
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import pandas as pd

from calibration.estimate import Spec
from calibration.runner import calibrate, fit_all


def simulate(n_factors: int, n_days: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    omega = rng.uniform(0.01, 0.05, n_factors)
    alpha = rng.uniform(0.03, 0.12, n_factors)
    beta = rng.uniform(0.80, 0.95, n_factors) * (1 - alpha)
    z = rng.standard_t(6, (n_days, n_factors)) / np.sqrt(1.5)
    r = np.empty((n_days, n_factors))
    s2 = omega / (1 - alpha - beta)
    for t in range(n_days):
        r[t] = np.sqrt(s2) * z[t]
        s2 = omega + alpha * r[t] ** 2 + beta * s2
    dates = pd.bdate_range("2010-01-01", periods=n_days)
    return pd.DataFrame(r / 100, index=dates, columns=[f"F{i:04d}" for i in range(n_factors)])


def median_time(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--factors", type=int, default=500)
    ap.add_argument("--days", type=int, default=2000)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    returns = simulate(args.factors, args.days)
    spec = Spec(model="garch", dist="normal")
    fit_all(returns.iloc[:, :4], spec)  # warm imports
    serial = median_time(lambda: fit_all(returns, spec, jobs=1), 1)
    parallel = median_time(lambda: fit_all(returns, spec, jobs=args.jobs), args.repeats)
    full = median_time(lambda: calibrate(returns, spec, jobs=args.jobs), args.repeats)
    print(f"calibration, {args.factors} factors x {args.days} days, GARCH(1,1) normal")
    print(f"  reference: one process, fits in sequence   {serial:8.2f} s (1 run)")
    print(f"  fit_all, {args.jobs} processes (median of {args.repeats})   {parallel:8.2f} s")
    print(f"  calibrate incl. dependence, {args.jobs} processes     {full:8.2f} s")
    print(f"  speed-up of fits: {serial / parallel:.2f}x")


if __name__ == "__main__":
    main()
