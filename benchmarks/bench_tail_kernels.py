"""Benchmark: numba tail kernels vs a plain numpy/scipy reference, in the same process.

Builds a random book (fixed seed): ``--sets`` netting sets of ``--positions`` positions each,
drawn from ``--instruments`` unique instruments, P&L over ``--scenarios`` scenarios. Then, after
warming the JIT, it times in ``--repeats`` interleaved rounds (median and fastest round):

* the kernel: ``tail_measures`` on the whole book (VaR, ES and Euler contributions to ES);
* the same with the coarse first pass (``screen=quantised_screen(pnl)``, 16-bit codes of the
  P&L), checked bitwise equal to the kernel's results;
* the accumulation-only floor: ``netting_set_max_loss``, which forms every set's loss vector
  exactly as the kernel does but selects nothing, so the selection overhead is visible;
* the reference: scipy.sparse CSR @ dense in chunks of netting sets, then ``np.partition`` per
  row for the VaR and a masked sum for the ES (no contributions). It is timed on the first
  ``--reference-sets`` sets and scaled linearly to the whole book.

It checks that kernel and reference agree on VaR and ES for the sets compared and prints a
table of medians and the speed-up. Example (the default, full size)::

    python benchmarks/bench_tail_kernels.py --sets 100000 --scenarios 10000 --positions 10 \\
        --instruments 500 --repeats 3
"""

from __future__ import annotations

import argparse
import statistics
import time

import numba
import numpy as np
import scipy.sparse as sp
from _timing import timed

from riskmodel.measures import TailResult, tail_measures
from riskmodel.measures.api import quantised_screen
from riskmodel.measures.losses import netting_set_max_loss


def build_book(n_sets: int, n_scen: int, n_pos: int, n_instr: int, seed: int):
    rng = np.random.default_rng(seed)
    vol = rng.uniform(0.005, 0.05, (n_instr, 1))  # per-instrument scenario volatility
    pnl = rng.standard_t(5, (n_instr, n_scen)) * vol * 100.0
    indptr = np.arange(0, (n_sets + 1) * n_pos, n_pos, dtype=np.int64)
    idx = rng.integers(0, n_instr, n_sets * n_pos).astype(np.int64)
    qty = rng.normal(0.0, 10.0, n_sets * n_pos)
    return np.ascontiguousarray(pnl), indptr, idx, qty


def uniform_var_rank(n: int, a: float) -> int:
    """Smallest k with k/n >= a (float64), computed independently of the package."""
    return int(np.flatnonzero(np.arange(1, n + 1) / n >= a)[0]) + 1


def reference(pnl, indptr, idx, qty, a, n_sets, chunk):
    """VaR and ES of the first n_sets sets with scipy.sparse and np.partition."""
    n = pnl.shape[1]
    k = uniform_var_rank(n, a)
    book = sp.csr_matrix((-qty, idx, indptr), shape=(indptr.size - 1, pnl.shape[0]))
    var, es = np.empty(n_sets), np.empty(n_sets)
    for s0 in range(0, n_sets, chunk):
        s1 = min(n_sets, s0 + chunk)
        losses = book[s0:s1] @ pnl  # (chunk, n_scenarios) dense
        v = np.partition(losses, k - 1, axis=1)[:, k - 1]
        above = losses > v[:, None]
        tail = np.where(above, losses, 0.0).sum(axis=1)
        p_le = (n - above.sum(axis=1)) / n
        var[s0:s1] = v
        es[s0:s1] = (tail / n + v * (p_le - a)) / (1.0 - a)
    return var, es


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sets", type=int, default=100_000)
    ap.add_argument("--scenarios", type=int, default=10_000)
    ap.add_argument("--positions", type=int, default=10, help="positions per netting set")
    ap.add_argument("--instruments", type=int, default=500, help="unique instruments")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--chunk-size", type=int, default=4096, help="netting sets per kernel call")
    ap.add_argument("--confidence", type=float, default=0.99)
    ap.add_argument(
        "--reference-sets",
        type=int,
        default=10_000,
        help="sets the reference is timed on (then scaled to --sets)",
    )
    ap.add_argument(
        "--reference-chunk",
        type=int,
        default=500,
        help="netting sets per dense chunk in the reference",
    )
    ap.add_argument("--seed", type=int, default=20240611)
    args = ap.parse_args(argv)

    a = args.confidence
    t0 = time.perf_counter()
    pnl, indptr, idx, qty = build_book(
        args.sets, args.scenarios, args.positions, args.instruments, args.seed
    )
    print(
        f"book: {args.sets:,} netting sets x {args.scenarios:,} scenarios, "
        f"{args.positions} positions per set from {args.instruments:,} instruments "
        f"(built in {time.perf_counter() - t0:.1f} s); confidence {a}"
    )

    # warm the JIT (or load it from numba's cache) on a tiny slice of the book
    warm = indptr[:9]
    tail_measures(pnl, warm, idx[: warm[-1]], qty[: warm[-1]], a)
    netting_set_max_loss(pnl, warm, idx, qty, np.empty(8))

    print(
        f"numba {numba.__version__}, threading layer {numba.threading_layer()}, "
        f"{numba.get_num_threads()} threads; repeats {args.repeats}, chunk size "
        f"{args.chunk_size}"
    )

    max_out = np.empty(args.sets)
    n_ref = min(args.reference_sets, args.sets)

    def kernel() -> TailResult:
        return tail_measures(pnl, indptr, idx, qty, a, chunk_size=args.chunk_size)

    screen = quantised_screen(pnl)
    assert screen is not None

    def screened() -> TailResult:
        return tail_measures(pnl, indptr, idx, qty, a, chunk_size=args.chunk_size, screen=screen)

    def floor() -> np.ndarray:
        netting_set_max_loss(pnl, indptr, idx, qty, max_out)
        return max_out

    def ref() -> tuple[np.ndarray, np.ndarray]:
        return reference(pnl, indptr, idx, qty, a, n_ref, args.reference_chunk)

    # interleaved rounds, so that a slow spell of a shared machine hits every contender
    times: dict[str, list[float]] = {"kernel": [], "screened": [], "floor": [], "ref": []}
    for _ in range(max(1, args.repeats)):
        t, result = timed(kernel)
        times["kernel"].append(t)
        t, result32 = timed(screened)
        times["screened"].append(t)
        for name in ("var", "es", "contribution"):  # the first pass changes no figure
            np.testing.assert_array_equal(getattr(result32, name), getattr(result, name))
        times["floor"].append(timed(floor)[0])
        t, (ref_var, ref_es) = timed(ref)
        times["ref"].append(t * args.sets / n_ref)  # scaled linearly to the whole book
    med = {k: statistics.median(v) for k, v in times.items()}
    best = {k: min(v) for k, v in times.items()}

    # agreement on the sets both computed
    scale = np.abs(result.es[:n_ref]).max()
    d_var = np.abs(result.var[:n_ref] - ref_var).max()
    d_es = np.abs(result.es[:n_ref] - ref_es).max()
    np.testing.assert_allclose(result.var[:n_ref], ref_var, rtol=1e-12, atol=1e-12 * scale)
    np.testing.assert_allclose(result.es[:n_ref], ref_es, rtol=1e-12, atol=1e-12 * scale)

    per_set = 1e6 / args.sets
    rows = [
        ("kernel: tail_measures (VaR, ES, contributions)", med["kernel"], best["kernel"]),
        ("kernel with the coarse first pass (bitwise the same)", med["screened"],
         best["screened"]),
        ("accumulation-only floor (loss vectors, no selection)", med["floor"], best["floor"]),
        (
            "  selection + contributions (kernel - floor)",
            med["kernel"] - med["floor"],
            best["kernel"] - best["floor"],
        ),
        (
            f"numpy/scipy reference (VaR, ES; {n_ref:,} sets x{args.sets / n_ref:g})",
            med["ref"],
            best["ref"],
        ),
    ]
    print()
    print(f"{'':56s} {'median s':>9s} {'min s':>8s} {'us/set':>8s}")
    for name, t_med, t_min in rows:
        print(f"{name:56s} {t_med:9.3f} {t_min:8.3f} {t_med * per_set:8.2f}")
    speedup, speedup_min = med["ref"] / med["kernel"], best["ref"] / best["kernel"]
    print(f"{'speed-up (reference / kernel)':56s} {speedup:8.1f}x {speedup_min:7.1f}x")
    print(
        f"\nreference timed on the first {n_ref:,} sets and scaled linearly to {args.sets:,}; "
        f"the reference computes no contributions."
    )
    print(
        f"agreement on those sets: max |dVaR| = {d_var:.3g}, max |dES| = {d_es:.3g} "
        f"(largest ES {scale:.4g})"
    )


if __name__ == "__main__":
    main()
