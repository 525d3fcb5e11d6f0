"""A background process that compiles kernels into numba's cache while the run goes on.

On a fresh install the first run spends most of its time compiling numba kernels, one after
another, on one core. The kernels of a later stage do not depend on anything the run computes
before it, so a second process can compile them into numba's on-disk cache (from tiny examples
of the same argument types: :mod:`riskmodel.measures.precompile`) while the main process loads
its inputs and compiles the kernels of the earlier stages; the main process waits for it
(:func:`wait`) right before its first call of one of those kernels, finds them in the cache
and loads them in milliseconds.

One background process at a time, started by :func:`start` and always reaped: by :func:`wait`,
by :func:`stop` at the end of the run (killed first if the run ended before needing it), and
at interpreter exit. It writes only its own kernels' cache files, before the main process
touches them (the main process waits first), and numba replaces cache files atomically; if it
fails, hangs or compiles other argument types than the run's, the main process compiles the
kernels itself, as it would without it: the background process can only save time, never
change a result. :class:`CompileCounter` counts the compilations in either process.
"""

from __future__ import annotations

import atexit
import os
import subprocess
import sys
import time
from typing import Any

import numba
from numba.core import event

__all__ = ["WAIT_SECONDS", "CompileCounter", "compiled_here", "parallel_pays", "start", "stop",
           "usable_cpus", "wait"]

WAIT_SECONDS = 300.0
"""How long the main process waits for the background process before compiling itself."""


class CompileCounter(event.Listener):
    """Counts numba's compilations while registered (a compilation's callees are compiled
    inside it and counted with it): ``kernels`` and their wall ``seconds``; :meth:`first`
    is called when the first one starts."""

    def __init__(self) -> None:
        self.kernels = 0
        self.seconds = 0.0
        self._depth = 0
        self._started = 0.0

    def first(self) -> None:
        """Called when the first compilation starts (nothing here)."""

    def on_start(self, ev: Any) -> None:
        if self._depth == 0:
            if self.kernels == 0:
                self.first()
            self.kernels += 1
            self._started = time.perf_counter()
        self._depth += 1

    def on_end(self, ev: Any) -> None:
        self._depth -= 1
        if self._depth == 0:
            self.seconds += time.perf_counter() - self._started


_running: subprocess.Popen[str] | None = None
_done = (0, 0.0)  # kernels compiled, and their seconds, by the background processes waited for


def usable_cpus() -> int:
    """CPUs this process may run on (its affinity where the platform tells it)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def start(module: str) -> None:
    """Run ``python -m module`` in the background (stdout read by :func:`wait`; stderr
    discarded); nothing if one is running already."""
    global _running
    if _running is not None:
        return
    _running = subprocess.Popen(
        [sys.executable, "-m", module], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL, text=True)


def wait() -> None:
    """Wait for the background process, if one is running (at most :data:`WAIT_SECONDS`, then
    it is killed), and keep the figures it printed (``"<kernels> <seconds>"``)."""
    global _running, _done
    process, _running = _running, None
    if process is None:
        return
    try:
        out, _ = process.communicate(timeout=WAIT_SECONDS)
    except subprocess.TimeoutExpired:
        process.kill()
        process.communicate()
        return
    fields = out.split()
    if process.returncode == 0 and len(fields) == 2:
        _done = (_done[0] + int(fields[0]), _done[1] + float(fields[1]))


def stop() -> tuple[int, float]:
    """End the background work of a run: a process still running is killed (the run no longer
    needs it) and reaped. Returns the kernels compiled, and their seconds, by the background
    processes waited for since the last call."""
    global _running, _done
    process, _running = _running, None
    if process is not None:
        process.kill()
        process.communicate()
    done, _done = _done, (0, 0.0)
    return done


atexit.register(stop)


def compiled_here(kernel: Any) -> bool:
    """Whether numba has compiled (or loaded from its cache) ``kernel`` in this process (false
    for a plain function, with the JIT disabled)."""
    return bool(getattr(kernel, "signatures", None))


def parallel_pays(work: int, serial_max: int, compiled_from: int, kernel: Any) -> bool:
    """Whether ``work`` runs the parallel ``kernel`` rather than its serial twin (the same bits
    either way): from ``serial_max``, or from ``compiled_from`` where the parallel kernel costs
    no compilation (:func:`compiled_here`) and numba may run more than one thread."""
    if work >= serial_max:
        return True
    return work >= compiled_from and numba.get_num_threads() > 1 and compiled_here(kernel)
