"""numba's thread count for a block of the live loop's work.

A tick's kernels are small, and a parallel region waits for its slowest thread: on a busy
machine a preempted thread costs more than the region saves, so an input's own work runs on one
thread; a refresh slice, repricing a factor's instruments, an order batch and ``flush`` use
more (:class:`riskmodel.live.LiveMargin`'s ``threads`` and ``batch_threads``).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import numba


def most_threads() -> int:
    """The most numba threads this process may use (``NUMBA_NUM_THREADS``)."""
    return int(getattr(numba.config, "NUMBA_NUM_THREADS", numba.get_num_threads()))


@contextmanager
def numba_threads(n: int) -> Iterator[None]:
    """numba's thread count for the calling thread set to ``n`` (at most numba's) for the
    block; restored after it."""
    current = numba.get_num_threads()
    numba.set_num_threads(max(1, min(n, most_threads())))
    try:
        yield
    finally:
        numba.set_num_threads(current)
