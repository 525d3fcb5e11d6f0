"""Liquidation orders of the live loop: the orders the ``eod`` liquidation stage would issue for
a set in liquidation at the marks of the moment they go out.

A set whose published status enters ``liquidation`` (and ``margin_call`` with ``[liquidation]
include_margin_call``, as ``eod``) waits for its orders; the waiting sets' orders go out
together, through :func:`riskmodel.liquidation.partial.partial_liquidation` (every trial margin
through the engine, the penalty included), when ``[live] order_batch`` sets wait, when the
orders' clock strikes (every ``[live] order_wait`` seconds of stream time, :func:`batch_time`)
after the first of them started waiting, and on ``flush``: one
call searches every waiting set (in compiled code from one set, :data:`COMPILED_FROM`; the
lockstep path for what the compiled twin does not compose). A set that leaves those
statuses before its orders go out gets none. The loop does not execute the orders: the fills
come back as trades (``on_trade``), the penalty as a transfer.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from riskmodel.config import RunConfig
from riskmodel.engine import PricedMarket
from riskmodel.liquidation.partial import ORDER_COLUMNS, partial_liquidation

ORDER_LOG_COLUMNS = ["time", *ORDER_COLUMNS]
#: a batch's sets go through the compiled search from this many (the same orders as the
#: engine's lockstep path, tested there; a batch is a few dozen sets, far below
#: ``partial.COMPILED_MIN_SETS``, and the lockstep path costs a Python engine call per step)
COMPILED_FROM = 1


def batch_time(since: pd.Timestamp, wait_s: float) -> pd.Timestamp:
    """When the orders of a set that started waiting at ``since`` go out at the latest: the
    first multiple of ``wait_s`` seconds (counted from the Unix epoch, in nanoseconds) after
    ``since``. A clock of its own, rather than ``since + wait_s``, so that every mode and every
    resumed replay sends its batches at the same instants: the default mode then confirms a
    liquidation at the exact marks of the very batch at which ``--exact`` orders it."""
    if wait_s <= 0:
        return since
    step = max(int(round(wait_s * 1e9)), 1)
    return pd.Timestamp((since.value // step + 1) * step, tz=since.tz)


class PendingOrders:
    """The sets waiting for their orders (set number -> stream time it started waiting), in
    the order they started."""

    def __init__(self) -> None:
        self.waiting: dict[int, pd.Timestamp] = {}

    def add(self, s: int, time: pd.Timestamp) -> None:
        self.waiting.setdefault(s, time)

    def drop(self, s: int) -> None:
        self.waiting.pop(s, None)

    def due(self, time: pd.Timestamp, batch: int, wait_s: float) -> bool:
        """Whether the waiting orders go out at ``time``: ``batch`` sets wait, or the clock
        of :func:`batch_time` has struck since the first of them started waiting."""
        if not self.waiting:
            return False
        first = next(iter(self.waiting.values()))
        return len(self.waiting) >= batch or time >= batch_time(first, wait_s)

    def take(self) -> np.ndarray:
        sets = np.fromiter(self.waiting, dtype=np.int64, count=len(self.waiting))
        self.waiting = {}
        return sets

    def state(self) -> dict[str, Any]:
        return {"sets": [int(s) for s in self.waiting],
                "since": [t.isoformat() for t in self.waiting.values()]}

    def restore(self, state: dict[str, Any]) -> None:
        self.waiting = {int(s): pd.Timestamp(t) for s, t in zip(state["sets"], state["since"])}


def issue_orders(market: PricedMarket, config: RunConfig, margins: pd.DataFrame,
                 attribution: pd.DataFrame, previous: pd.DataFrame | None,
                 account_types: dict[str, str]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The orders and per-set results (``liquidation_penalty, notional_liquidated, restored``,
    ...) for the sets of ``margins`` in the liquidated statuses, the engine's tables of those
    sets at ``market``'s marks."""
    policy = config.liquidation
    result = partial_liquidation(
        market, config, margins, attribution, previous=previous, account_types=account_types,
        target=policy.target_margin_level, include_margin_call=policy.include_margin_call,
        penalty=policy.penalty_rates, compiled_min_sets=COMPILED_FROM)
    return result.orders, result.sets


def order_detail(row: pd.Series, n_orders: int) -> str:
    """The ``detail`` of a ``liquidation_orders`` event."""
    restored = "restored" if bool(row["restored"]) else "not restored (closed in full)"
    return (f"{n_orders} order(s), notional {float(row['notional_liquidated']):.6g}, penalty "
            f"{float(row['liquidation_penalty']):.6g}, margin after "
            f"{float(row['margin_after']):.6g}, {restored}")
