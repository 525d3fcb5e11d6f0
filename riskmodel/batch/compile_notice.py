"""Telling the user, once, that numerical kernels are being compiled for their first use.

The engine's kernels are compiled by numba the first time a run needs them and cached on disk
(``__pycache__``, or ``NUMBA_CACHE_DIR``); later runs load them in milliseconds. A fresh
install's first run therefore waits several seconds that later runs do not: :class:`CompileNotice`
says so on standard error when the first compilation starts, and how many kernels were compiled
and how long that took at the end, and says nothing when every kernel came from the cache.

On a first run it also starts the background compilation of the margin stage's kernels
(:func:`riskmodel.measures.precompile.start_if_cold`), which overlaps the stages before it on a
second CPU; the kernels compiled there are counted in the notice and named as such.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from types import TracebackType

from numba.core import event

from riskmodel.measures.background import CompileCounter, stop
from riskmodel.measures.precompile import start_if_cold

__all__ = ["CompileNotice"]


def _stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


class CompileNotice(CompileCounter):
    """A context (around a run) that listens to numba's compilations: one line when the first
    starts, one line with the count and the seconds at the end (``say`` writes a line; default
    standard error). ``background``: whether a first run may compile the margin stage's kernels
    in a background process."""

    def __init__(self, say: Callable[[str], None] = _stderr, background: bool = True) -> None:
        super().__init__()
        self.say = say
        self.background = background
        self._announced = False

    def first(self) -> None:
        if not self._announced:
            self._announced = True
            self.say("riskmodel: compiling numerical kernels for their first use (once: "
                     "later runs load them from numba's cache)")

    def __enter__(self) -> CompileNotice:
        if self.background and start_if_cold():
            self.first()
        event.register("numba:compile", self)
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 tb: TracebackType | None) -> None:
        event.unregister("numba:compile", self)
        aside, aside_seconds = stop()
        if kind is not None or not (self.kernels or aside):
            return
        total = self.kernels + aside
        where = (f", {aside} of them in {aside_seconds:.1f} s in a background process beside "
                 "the run" if aside else "")
        self.say(f"riskmodel: compiled {total} kernel(s) in {self.seconds + aside_seconds:.1f} s"
                 f"{where} (cached for later runs)")
