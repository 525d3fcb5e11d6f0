"""Telling the user, once, that numerical kernels are being compiled for their first use.

The engine's kernels are compiled by numba the first time a run needs them and cached on disk
(``__pycache__``, or ``NUMBA_CACHE_DIR``); later runs load them in milliseconds. A fresh
install's first run therefore waits several seconds that later runs do not: :class:`CompileNotice`
says so on standard error when the first compilation starts, and how long the compilations
took at the end, and says nothing when every kernel came from the cache.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from types import TracebackType
from typing import Any

from numba.core import event

__all__ = ["CompileNotice"]


def _stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


class CompileNotice(event.Listener):
    """A context (around a run) that listens to numba's compilations: one line when the first
    starts, one line with the count and the seconds at the end (``say`` writes a line; default
    standard error)."""

    def __init__(self, say: Callable[[str], None] = _stderr) -> None:
        self.say = say
        self.kernels = 0
        self.seconds = 0.0
        self._depth = 0
        self._started = 0.0

    def on_start(self, ev: Any) -> None:
        if self._depth == 0:
            if self.kernels == 0:
                self.say("riskmodel: compiling numerical kernels for their first use (once: "
                         "later runs load them from numba's cache)")
            self.kernels += 1
            self._started = time.perf_counter()
        self._depth += 1

    def on_end(self, ev: Any) -> None:
        self._depth -= 1
        if self._depth == 0:  # a compilation's callees are compiled inside it: count it once
            self.seconds += time.perf_counter() - self._started

    def __enter__(self) -> CompileNotice:
        event.register("numba:compile", self)
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 tb: TracebackType | None) -> None:
        event.unregister("numba:compile", self)
        if self.kernels and kind is None:
            self.say(f"riskmodel: compiled {self.kernels} kernel(s) in {self.seconds:.1f} s "
                     "(cached for later runs)")
