"""What the benchmark scripts share: their integer command-line options and their timing loops.

The scripts run as ``python benchmarks/<script>.py``, so this module is imported as ``_timing``
from the script's own folder.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable, Sequence
from typing import TypeVar

T = TypeVar("T")


def int_options(doc: str | None, argv: Sequence[str] | None = None,
                **defaults: int) -> argparse.Namespace:
    """Parse ``--name N`` integer options, one per keyword (``reference_dates=252`` gives
    ``--reference-dates``, default 252); the description is the first line of ``doc``."""
    parser = argparse.ArgumentParser(description=(doc or "").splitlines()[0] if doc else None)
    for name, default in defaults.items():
        parser.add_argument("--" + name.replace("_", "-"), type=int, default=default)
    return parser.parse_args(argv)


def timed(fn: Callable[[], T]) -> tuple[float, T]:
    """Wall-clock seconds of one call of ``fn`` and its result."""
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def repeat_timed(fn: Callable[[], T], repeats: int) -> tuple[list[float], T]:
    """Seconds of each of ``max(1, repeats)`` calls of ``fn``, and the last call's result."""
    times = []
    for _ in range(max(1, repeats)):
        t, out = timed(fn)
        times.append(t)
    return times, out
