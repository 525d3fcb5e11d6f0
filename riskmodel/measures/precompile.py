"""The margin stage's small-book kernels, compiled in a background process on a first run.

A book of less work than ``SERIAL_MAX_WORK`` positions x scenarios (the demo, a small venue)
runs three kernels in the margin stage: the uniform tail (:func:`~riskmodel.measures.kernels.
tail_uniform_serial`), the worst stress loss and the grid stress loss (``_worst_loss_serial``,
``_grid_serial`` of :mod:`riskmodel.measures.stress_kernels`). Compiling them is more than half
of a first run's compile time, and they depend on nothing the run computes before the margin
stage. :func:`start_if_cold` (called when a run starts) therefore starts
``python -m riskmodel.measures.precompile`` in the background (:mod:`riskmodel.measures.
background`) when they are not in numba's cache yet and a second CPU is there to run it; that
process calls each kernel on a tiny example with the argument types of the engine's calls
(C-contiguous, writable float64 and int64 arrays, a float and a bool), so numba compiles and
caches exactly the specialisations the run will load, and prints how many kernels it compiled
and in how many seconds. The kernels' wrappers wait for it before their first serial call
(:func:`riskmodel.measures.background.wait`).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from numba import config as numba_config
from numba.core import event

from riskmodel.measures.background import CompileCounter, compiled_here, start, usable_cpus

__all__ = ["examples", "load_parallel_tail", "start_if_cold"]


def examples() -> list[tuple[Callable[..., object], tuple[object, ...]]]:
    """Each kernel compiled in the background and a tiny call of it with the engine's argument
    types (3 netting sets, 12 positions, 20 instruments, 2,000 scenarios; 7 grid points)."""
    rng = np.random.default_rng(0)
    pnl = rng.normal(size=(20, 2000))
    indptr = np.array([0, 3, 7, 12], dtype=np.int64)
    index = rng.integers(0, 20, 12).astype(np.int64)
    quantity = rng.normal(size=12)
    grid_pnl = rng.normal(size=(20, 7))
    factor_code = rng.integers(0, 4, 20).astype(np.int64)
    book = (indptr, index, quantity)
    tail, worst, grid = _kernels()
    return [
        (tail, (pnl, *book, 0.99, True, np.empty(3), np.empty(3), np.empty(12))),
        (worst, (pnl, *book, np.empty(3), np.empty(3, dtype=np.int64))),
        (grid, (grid_pnl, np.ones(7), *book, factor_code, np.empty(3))),
    ]


def _kernels() -> list[Callable[..., object]]:
    """The kernels of :func:`examples`."""
    from riskmodel.measures import kernels, stress_kernels

    return [kernels.tail_uniform_serial, stress_kernels._worst_loss_serial,
            stress_kernels._grid_serial]


def _cached(kernel: Callable[..., object]) -> bool:
    """Whether ``kernel`` is compiled in this process or has an entry in numba's cache for
    its current source (true where that cannot be told: then nothing is started)."""
    if compiled_here(kernel):
        return True
    try:
        return bool(kernel._cache._cache_file._load_index())  # type: ignore[attr-defined]
    except Exception:  # numba's cache internals differ: behave as without a background
        return True


def start_if_cold() -> bool:
    """Start the background compilation of :func:`examples`' kernels when one of them is
    neither compiled nor cached, numba compiles at all, and at least two CPUs are usable;
    returns whether it started."""
    if getattr(numba_config, "DISABLE_JIT", False) or usable_cpus() < 2:
        return False
    if all(_cached(kernel) for kernel in _kernels()):
        return False
    start(__name__)
    return True


def load_parallel_tail() -> None:
    """Compile (or load from numba's cache) the parallel uniform tail on :func:`examples`'
    tiny book: a process margining many books too small for it by default, on more than one
    thread, then runs them in parallel (:func:`~riskmodel.measures.kernels.prefer_parallel`;
    the live loop's refresh slices)."""
    from riskmodel.measures import kernels

    kernels.tail_uniform_parallel(*examples()[0][1])


def main() -> None:
    """The background process: compile (and cache) every kernel of :func:`examples`, then
    print ``"<kernels> <seconds>"``."""
    counter = CompileCounter()
    event.register("numba:compile", counter)
    for kernel, args in examples():
        kernel(*args)
    event.unregister("numba:compile", counter)
    print(counter.kernels, f"{counter.seconds:.3f}", flush=True)


if __name__ == "__main__":
    main()
