"""The ``riskmodel`` program's own process: whether the command runs in it, the garbage
collector's freeze that only such a process may use, and its BLAS threads."""

from __future__ import annotations

import contextlib
import gc
import os
import sys
from collections.abc import Iterator

# True in the ``riskmodel`` program (:func:`console`), whose process ends with the command.
IN_PROGRAM = False

# The variables OpenBLAS (numpy's and scipy's wheels) and MKL read when they are loaded.
BLAS_THREAD_VARIABLES = ("OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def freeze_heap() -> None:
    """In the program only, move every object alive now into the garbage collector's permanent
    generation, which its passes skip. The modules a command imports (pandas', numba's: about
    10^5 objects) live until the process exits, and the full passes over them cost about 0.1 s
    in a venue-size eod run and as much again while the interpreter tears down. Not in a
    caller's own process (tests, notebooks): frozen objects in a reference cycle are never
    freed."""
    if IN_PROGRAM:
        gc.freeze()


@contextlib.contextmanager
def frozen_imports() -> Iterator[None]:
    """In the program only, import a command's modules with the collector off, then
    :func:`freeze_heap` them. Importing leaves next to no garbage, but its 10^5 new objects
    trigger full passes over everything alive (0.05 s in an eod run); and every module the
    command will use, imported here and frozen, is skipped by the full passes that the run's
    own allocations trigger later (0.04 s more while eod draws its page). Elsewhere, plain."""
    if not IN_PROGRAM:
        yield
        return
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        freeze_heap()
        if enabled:
            gc.enable()


def hold_blas_at_one_thread() -> None:
    """Run the program's BLAS on one thread, unless the user chose a count.

    The program's BLAS calls are small (a factor correlation's Cholesky factor, products of
    factor-sized matrices); its parallel work is numba's. OpenBLAS's worker threads then only
    spin after each call, for about 0.1 s each, on the cores numba's threads need: 0.2-0.3 CPU
    seconds of a 100,000-account eod run. The variables hold BLAS libraries not loaded yet
    (the commands import numpy and scipy lazily); threadpoolctl holds those already loaded by
    a caller that imported them before :func:`console`. A count the user set in the
    environment is left as it is.
    """
    if any(name in os.environ for name in BLAS_THREAD_VARIABLES):
        return
    for name in BLAS_THREAD_VARIABLES:
        os.environ[name] = "1"
    if "numpy" not in sys.modules and "scipy" not in sys.modules:
        return  # nothing loaded yet: the variables are enough
    from threadpoolctl import threadpool_limits

    threadpool_limits(1, user_api="blas")  # held for the life of the process
