"""What the intraday loop reports: one :class:`Event` per status change, margin call,
liquidation order batch, automatic top-up, held or stale price and refused input.

``events.parquet`` holds them in the order they happened, with the columns of
:data:`EVENT_COLUMNS`. Kinds (column ``event``):

``status_change``
    A netting set's published status changed (``status_before`` -> ``status_after``; the
    figures are the set's after the change).
``margin_call``
    A set entered ``margin_call`` from ``ok`` or ``warning``: ``call_amount`` is initial margin
    less equity.
``liquidation_orders``
    The partial-liquidation orders for a set in liquidation went out (``detail``: how many,
    the notional closed, the penalty, whether the target is restored; the orders themselves are
    in ``liquidation_orders.parquet``).
``top_up``
    ``[live] auto_top_up`` moved collateral into an isolated set from its account's cross set
    (``detail`` names the source and the amount).
``set_opened``, ``set_closed``
    A trade opened a netting set the run did not have, or closed a set's last position.
``price_jump``, ``price_jump_confirmed``, ``price_jump_discarded``
    A tick more than ``[live] max_jump`` from the last accepted price is held; the next tick of
    the asset confirms it (within ``max_jump`` of the held price: that tick is applied) or
    discards it (within ``max_jump`` of the last accepted price).
``stale_price``
    An asset had no accepted tick for more than ``[live] stale_after`` seconds (once per
    silence; ``detail`` says since when).
``refused``
    An input row refused (``detail`` names the file, row or line, column and value); the
    stream goes on.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

EVENT_COLUMNS = ["time", "account_id", "netting_set", "event", "status_before", "status_after",
                 "equity", "maintenance_margin", "initial_margin", "margin_level", "call_amount",
                 "detail"]
EVENT_KINDS = ("status_change", "margin_call", "liquidation_orders", "top_up", "set_opened",
               "set_closed", "price_jump", "price_jump_confirmed", "price_jump_discarded",
               "stale_price", "refused")

NUMBER_COLUMNS = ("equity", "maintenance_margin", "initial_margin", "margin_level",
                  "call_amount")


@dataclass(frozen=True)
class Event:
    """One row of ``events.parquet`` (module docstring). Market and input events have empty
    account and set ids and statuses, and NaN figures."""

    time: pd.Timestamp
    account_id: str
    netting_set: str
    event: str
    status_before: str = ""
    status_after: str = ""
    equity: float = float("nan")
    maintenance_margin: float = float("nan")
    initial_margin: float = float("nan")
    margin_level: float = float("nan")
    call_amount: float = float("nan")
    detail: str = ""

    def record(self, time_text: str | None = None) -> dict[str, Any]:
        """The event as plain JSON values (the event log's line); ``time_text`` is
        ``time.isoformat()`` when the caller has it (an input's events share their time)."""
        row = dict(zip(EVENT_COLUMNS, self.values()))
        row["time"] = self.time.isoformat() if time_text is None else time_text
        for name in NUMBER_COLUMNS:
            value = row[name]
            row[name] = None if value != value else float(value)  # NaN: null
        return row

    def values(self) -> tuple[Any, ...]:
        """The fields in :data:`EVENT_COLUMNS` order (``dataclasses.astuple`` deep-copies
        each field, which a replay's hundreds of thousands of events pay for)."""
        return tuple(getattr(self, c) for c in EVENT_COLUMNS)

    @classmethod
    def from_record(cls, row: dict[str, Any]) -> Event:
        values = {k: row[k] for k in EVENT_COLUMNS}
        values["time"] = pd.Timestamp(values["time"])
        for name in NUMBER_COLUMNS:
            values[name] = float("nan") if values[name] is None else float(values[name])
        return cls(**values)


def market_event(time: pd.Timestamp, kind: str, detail: str) -> Event:
    """An event about an asset or an input row: no account, no set."""
    return Event(time, "", "", kind, detail=detail)


def events_frame(events: list[Event]) -> pd.DataFrame:
    """``events`` as the ``events.parquet`` table (UTC times; empty with its columns)."""
    if not events:
        frame = pd.DataFrame({c: pd.Series(dtype=object) for c in EVENT_COLUMNS})
        for name in NUMBER_COLUMNS:
            frame[name] = frame[name].astype(np.float64)
        frame["time"] = pd.to_datetime(frame["time"], utc=True)
        return frame
    frame = pd.DataFrame([e.values() for e in events], columns=EVENT_COLUMNS)
    frame["time"] = pd.to_datetime(frame["time"], utc=True)
    for name in NUMBER_COLUMNS:
        frame[name] = frame[name].astype(np.float64)
    return frame
