"""What the manifest reports of a live run besides the events: counts of the work done, the
latency of each tick and the lag of the status changes that a refresh found.

A status change is *found* by the tick itself (equity against the requirements in force), by
a trade's refresh, by a slice of due sets, by the orders' refresh or by ``flush``. A change
found by a refresh was hidden by the requirements in force: the set's previous refresh had
the status right, so the engine at the current marks changed it at one of the inputs since;
``lag_inputs`` records how many inputs that is at most (0: found at the input that caused it).
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np


def percentiles_ms(seconds: list[float]) -> dict[str, float | int]:
    """p50, p99 and max of durations, in milliseconds, and how many."""
    if not seconds:
        return {"count": 0, "p50_ms": 0.0, "p99_ms": 0.0, "max_ms": 0.0}
    x = np.asarray(seconds) * 1e3
    return {"count": len(x), "p50_ms": round(float(np.percentile(x, 50)), 4),
            "p99_ms": round(float(np.percentile(x, 99)), 4), "max_ms": round(float(x.max()), 4)}


@dataclass
class LiveStats:
    """Counters, per-tick durations (seconds) and the lag of refresh-found changes."""

    counts: Counter = field(default_factory=Counter)
    seconds: dict[str, float] = field(default_factory=dict)  # wall seconds by kind of work
    tick_latency: list[float] = field(default_factory=list)
    tick_total: list[float] = field(default_factory=list)
    # per change found by a refresh: (status after, found by, inputs since the prior refresh)
    found: list[tuple[str, str, int]] = field(default_factory=list)

    def count(self, name: str, n: int = 1) -> None:
        self.counts[name] += int(n)

    @contextmanager
    def timed(self, name: str) -> Iterator[None]:
        """Add the block's wall seconds to ``seconds[name]``."""
        start = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - start

    def status_change(self, after: str, found: str, lag_inputs: int) -> None:
        self.counts[f"changes_found_by_{found}"] += 1
        if found in ("slice", "flush", "orders"):
            self.found.append((after, found, int(lag_inputs)))

    def lag(self) -> dict[str, Any]:
        """The lag block of the manifest: for the changes a refresh found (all of them, and
        those into liquidation), how many and the most inputs each can be late by."""
        def block(rows: list[tuple[str, str, int]]) -> dict[str, Any]:
            lags = np.array([r[2] for r in rows], dtype=np.int64)
            if not len(lags):
                return {"count": 0, "max_inputs": 0, "p50_inputs": 0, "p99_inputs": 0}
            return {"count": len(lags), "max_inputs": int(lags.max()),
                    "p50_inputs": float(np.percentile(lags, 50)),
                    "p99_inputs": float(np.percentile(lags, 99)),
                    "by": dict(Counter(r[1] for r in rows))}
        return {"all": block(self.found),
                "liquidation": block([r for r in self.found if r[0] == "liquidation"])}

    def state(self) -> dict[str, Any]:
        return {"counts": dict(self.counts), "seconds": dict(self.seconds),
                "tick_latency": self.tick_latency,
                "tick_total": self.tick_total, "found": self.found}

    def restore(self, state: dict[str, Any]) -> None:
        self.counts = Counter(state["counts"])
        self.seconds = dict(state.get("seconds", {}))
        self.tick_latency = list(state["tick_latency"])
        self.tick_total = list(state["tick_total"])
        self.found = [tuple(r) for r in state["found"]]  # type: ignore[misc]
