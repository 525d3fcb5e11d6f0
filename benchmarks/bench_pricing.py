"""Benchmark: the numba option repricing kernel vs a plain numpy reference, in the same process.

Builds a random book (fixed seed): ``--options`` unique options on ``--underlyings`` underlyings
(Black-Scholes and Black-76, calls and puts, a third coin-settled, half with their vol on one of
``--iv-factors`` implied-vol factors and half on the spot-vol rule, a few expiring inside the
2-day horizon) and ``--scenarios`` scenario prices per underlying. After warming the JIT it times,
in ``--repeats`` interleaved rounds (median and fastest round):

* the kernel: ``option_kernels.option_scenario_pnl`` into a preallocated output, with all numba
  threads and with one thread;
* the reference: ``option_twins.option_scenario_pnl``, whole-array numpy with
  ``scipy.special.ndtr``, in blocks of options.

It checks that kernel and reference agree (to 1e-12 of each option's P&L scale) and prints a
table of medians, evaluations (option x scenario revaluations) per second and the speed-up.
Example (the default, full size)::

    python benchmarks/bench_pricing.py --options 2000 --scenarios 10000 --underlyings 50
"""

from __future__ import annotations

import statistics
from typing import Any

import numba
import numpy as np
from _timing import int_options, timed

from riskmodel.pricing import option_kernels, option_twins
from riskmodel.pricing.options import (
    BLACK76,
    BLACK_SCHOLES,
    DEFAULT_RULE_BETA,
    DEFAULT_RULE_CAP,
    DEFAULT_RULE_FLOOR,
    DEFAULT_RULE_P,
    horizon_tau,
)


def build_book(n_opt: int, n_scen: int, n_und: int, n_iv: int, seed: int) -> dict[str, Any]:
    """Kernel arguments (in the kernel's order, without ``out``) for a random book."""
    rng = np.random.default_rng(seed)
    p0_und = rng.uniform(10.0, 50_000.0, n_und)
    daily_vol = rng.uniform(0.01, 0.05, (n_und, 1))
    # 2-day log returns, fat-tailed: unit-variance t(4) draws (variance 2 / sqrt(2)^2) x 2-day vol
    shocks = rng.standard_t(4, (n_und, n_scen)) / np.sqrt(2.0) * daily_vol * np.sqrt(2.0)
    scen_price = p0_und[:, None] * np.exp(shocks)
    row = rng.integers(0, n_und, n_opt).astype(np.int64)
    price0 = p0_und[row]
    tau0 = rng.choice([1.0, 3.0, 7.0, 14.0, 30.0, 60.0, 90.0, 180.0, 365.0], n_opt) / 365.0
    tau0 *= rng.uniform(0.9, 1.1, n_opt)
    return {
        "model": rng.choice([BLACK_SCHOLES, BLACK76], n_opt).astype(np.int64),
        "is_call": rng.random(n_opt) < 0.5,
        "inverse": rng.random(n_opt) < 1 / 3,
        "strike": price0 * np.exp(rng.normal(0.0, 0.25, n_opt)),
        "tau0": tau0,
        "tau_h": horizon_tau(tau0, 2.0),
        "iv0": rng.uniform(0.15, 1.5, n_opt),
        "rate": rng.uniform(0.0, 0.05, n_opt),
        "carry": rng.uniform(0.0, 0.03, n_opt),
        "multiplier": rng.choice([1.0, 10.0, 100.0], n_opt),
        "price0": price0,
        "price_row": row,
        "scen_price": np.ascontiguousarray(scen_price),
        "iv_row": np.where(rng.random(n_opt) < 0.5, rng.integers(0, n_iv, n_opt), -1).astype(
            np.int64
        ),
        "iv_log_shock": rng.normal(0.0, 0.1, (n_iv, n_scen)),
        "rule_beta": np.full(n_opt, DEFAULT_RULE_BETA),
        "rule_p": np.full(n_opt, DEFAULT_RULE_P),
        "rule_floor": DEFAULT_RULE_FLOOR,
        "rule_cap": DEFAULT_RULE_CAP,
    }


def main(argv: list[str] | None = None) -> None:
    args = int_options(__doc__, argv, options=2_000, scenarios=10_000, underlyings=50,
                       iv_factors=10, repeats=5, seed=20240611)

    book = build_book(args.options, args.scenarios, args.underlyings, args.iv_factors, args.seed)
    values: list[Any] = list(book.values())
    n_evals = args.options * args.scenarios
    model = book["model"]
    assert isinstance(model, np.ndarray)
    print(
        f"book: {args.options:,} options x {args.scenarios:,} scenarios on "
        f"{args.underlyings} underlyings ({int((model == BLACK76).sum())} Black-76, "
        f"{int(np.sum(book['inverse']))} coin-settled, {int(np.sum(book['iv_row'] >= 0))} on "
        f"{args.iv_factors} vol factors, {int(np.sum(book['tau_h'] <= 0))} expiring within "
        f"the 2-day horizon)"
    )

    # warm the JIT (or load it from numba's cache) on a tiny slice
    tiny: list[Any] = [v[:4] if isinstance(v, np.ndarray) and v.ndim == 1 else v for v in values]
    option_kernels.option_scenario_pnl(*tiny, np.empty((4, args.scenarios)))  # type: ignore[call-arg]

    threads = numba.get_num_threads()
    print(
        f"numba {numba.__version__}, threading layer {numba.threading_layer()}, "
        f"{threads} threads; repeats {args.repeats}"
    )
    out = np.empty((args.options, args.scenarios))

    def kernel() -> np.ndarray:
        option_kernels.option_scenario_pnl(*values, out)  # type: ignore[call-arg]
        return out

    def kernel_1() -> np.ndarray:
        numba.set_num_threads(1)
        try:
            return kernel()
        finally:
            numba.set_num_threads(threads)

    def ref() -> np.ndarray:
        return option_twins.option_scenario_pnl(*values)

    times: dict[str, list[float]] = {"kernel": [], "kernel_1": [], "ref": []}
    for _ in range(max(1, args.repeats)):
        times["kernel"].append(timed(kernel)[0])
        times["kernel_1"].append(timed(kernel_1)[0])
        t, want = timed(ref)
        times["ref"].append(t)
    med = {k: statistics.median(v) for k, v in times.items()}
    best = {k: min(v) for k, v in times.items()}

    got = kernel()
    multiplier, price0 = book["multiplier"], book["price0"]
    assert isinstance(multiplier, np.ndarray) and isinstance(price0, np.ndarray)
    scale = np.maximum(np.abs(want).max(axis=1), 1e-8 * multiplier * np.abs(price0))
    rel = float((np.abs(got - want).max(axis=1) / scale).max())
    assert rel < 1e-12, rel

    rows = [
        (f"kernel: option_scenario_pnl ({threads} threads)", "kernel"),
        ("kernel: option_scenario_pnl (1 thread)", "kernel_1"),
        ("numpy reference (option_twins, scipy.special.ndtr)", "ref"),
    ]
    print()
    print(f"{'':52s} {'median s':>9s} {'min s':>8s} {'M evals/s':>10s}")
    for name, key in rows:
        print(f"{name:52s} {med[key]:9.3f} {best[key]:8.3f} {n_evals / med[key] / 1e6:10.1f}")
    speedup = med["ref"] / med["kernel"]
    speedup_min = best["ref"] / best["kernel"]
    print(f"{'speed-up (reference / kernel)':52s} {speedup:8.1f}x {speedup_min:7.1f}x")
    print(f"\nagreement: max |kernel - reference| / (option's P&L scale) = {rel:.2g}")


if __name__ == "__main__":
    main()
