"""Durable state of ``riskmodel live``: an append-only event log and checkpoints, in a work
folder beside ``--out`` (``.NAME.live``), so that a replay killed midway and restarted with
``--resume`` ends with the same events and state as one never killed.

* ``events.jsonl``: one JSON line per event, appended as events happen;
* ``checkpoint-N/`` (``N`` the inputs consumed): ``state.npz`` (every array of the live state,
  read with ``allow_pickle=False``), ``state.json`` (the rest: fingerprint, inputs consumed,
  events logged, clocks, the waiting orders, counters) and ``orders.parquet`` (the orders sent
  so far); ``CURRENT`` names the last complete one (replaced atomically, after the log is
  flushed to disk), older ones are removed.

Everything a later input depends on is in the checkpoint, including the refresh queue's order
and the requirement marks; the scenario P&L is repriced from those marks on restore
(:meth:`riskmodel.engine.remark.RemarkedMarket.restore`, bitwise what it was).
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import pyarrow as pa
from pyarrow import json as pa_json

from riskmodel.errors import InputDataError
from riskmodel.live.events import EVENT_COLUMNS, NUMBER_COLUMNS, Event, events_frame

if TYPE_CHECKING:  # pragma: no cover
    from riskmodel.live.state import LiveState

LOG = "events.jsonl"
CURRENT = "CURRENT"


def work_folder(out: str | Path) -> Path:
    """The work folder of a live run writing to ``out``: a hidden sibling ``.NAME.live``."""
    out = Path(out).absolute()
    return out.parent / f".{out.name}.live"


class EventLog:
    """The append-only event log (one JSON line per event)."""

    def __init__(self, folder: Path, keep: int | None = None) -> None:
        """Open ``folder``'s log, keeping its first ``keep`` events (None: a new log)."""
        self.path = folder / LOG
        if keep is None:
            self.path.write_text("")
            self.count = 0
        else:
            lines = self.path.read_text().splitlines(keepends=True)[:keep]
            if len(lines) < keep:
                raise InputDataError(f"{self.path}: {len(lines)} events logged, the checkpoint "
                                     f"counts {keep}: the work folder is damaged (rerun "
                                     "without --resume)")
            self.path.write_text("".join(lines))
            self.count = keep
        self.file = self.path.open("a")

    def append(self, events: list[Event]) -> None:
        texts: dict[int, str] = {}  # an input's events share one time object: format it once
        for e in events:
            text = texts.get(id(e.time))
            if text is None:
                text = texts[id(e.time)] = e.time.isoformat()
            self.file.write(json.dumps(e.record(text)) + "\n")
        self.count += len(events)

    def sync(self) -> None:
        self.file.flush()
        os.fsync(self.file.fileno())

    def close(self) -> None:
        self.file.close()

    def read(self) -> list[Event]:
        """The log event by event (the reference :meth:`frame` is tested against)."""
        self.file.flush()
        return [Event.from_record(json.loads(line))
                for line in self.path.read_text().splitlines() if line.strip()]

    def frame(self) -> pd.DataFrame:
        """The log as :func:`~riskmodel.live.events.events_frame` gives it (the same frame),
        parsed by Arrow's JSON reader: a crash's half a million events took seconds as
        :class:`Event` objects."""
        self.file.flush()
        if self.count == 0:
            return events_frame([])
        schema = pa.schema([(c, pa.float64() if c in NUMBER_COLUMNS else pa.string())
                            for c in EVENT_COLUMNS])
        table = pa_json.read_json(self.path, read_options=pa_json.ReadOptions(
            block_size=16 << 20), parse_options=pa_json.ParseOptions(explicit_schema=schema))
        frame = table.to_pandas()
        frame["time"] = pd.to_datetime(frame["time"], utc=True, format="ISO8601")
        return frame


def save(live: LiveState, folder: Path, meta: dict[str, Any], log: EventLog) -> None:
    """Write a checkpoint of ``live`` (and ``meta``: fingerprint, inputs consumed) into the
    work ``folder``; the log is on disk first, then ``CURRENT`` moves to the new one."""
    log.sync()
    name = f"checkpoint-{meta['inputs']}"
    target = folder / name
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir()
    arrays, rest = state_of(live)
    savez: Any = np.savez  # its stub reads a key named allow_pickle as the flag
    savez(target / "state.npz", **arrays)
    (target / "state.json").write_text(json.dumps({**rest, **meta, "events": log.count}))
    live.orders_frame().to_parquet(target / "orders.parquet", index=False)
    for f in ("state.npz", "state.json", "orders.parquet"):
        with (target / f).open("rb") as fh:
            os.fsync(fh.fileno())
    pointer = folder / (CURRENT + ".tmp")
    pointer.write_text(name)
    os.replace(pointer, folder / CURRENT)
    for old in folder.glob("checkpoint-*"):
        if old.name != name:
            shutil.rmtree(old, ignore_errors=True)


def load(folder: Path) -> tuple[dict[str, np.ndarray], dict[str, Any], pd.DataFrame] | None:
    """The last complete checkpoint of the work ``folder`` (None when there is none)."""
    pointer = folder / CURRENT
    if not pointer.is_file():
        return None
    target = folder / pointer.read_text().strip()
    with np.load(target / "state.npz", allow_pickle=False) as data:
        arrays = {k: data[k] for k in data.files}
    meta = json.loads((target / "state.json").read_text())
    return arrays, meta, pd.read_parquet(target / "orders.parquet")


def state_of(live: LiveState) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Every array of ``live``'s state, and the rest as JSON values."""
    book, n0 = live.book, live.book.base_positions
    arrays: dict[str, np.ndarray] = {
        **{f"market_{k}": v for k, v in live.market.state().items()},
        **{f"ledger_{k}": v for k, v in live.ledger.state().items()},
        **live.req.state(),
        "qty": book.qty.view.copy(),
        "new_set_of": book.set_of.view[n0:].copy(), "new_instr": book.instr.view[n0:].copy(),
        "due": live.due, "refreshed_at": live.refreshed_at,
        "prior_refresh": live.prior_refresh, "previous": live.previous, "upnl": live.upnl,
        "ordered": live.ordered,
        "asset_time": live.asset_time, "stale": live.stale,
        "queue": live.schedule.order,
    }
    rest = {
        "new_sets": [list(book.key(s)) for s in range(book.base_sets, book.n_sets)],
        "now": None if live.now is None else live.now.isoformat(),
        "held": {str(k): v for k, v in live.held.items()},
        "n_inputs": live.n_inputs, "queue_next": live.schedule.next,
        "queue_stale": live.schedule.stale, "pending": live.pending.state(),
        "stats": live.stats.state(),
    }
    return arrays, rest


def restore(live: LiveState, arrays: dict[str, np.ndarray], rest: dict[str, Any],
            orders: pd.DataFrame) -> None:
    """Return a freshly built ``live`` (same run, same settings) to a checkpoint's state."""
    book = live.book
    for account, name in rest["new_sets"]:
        live.set_index(str(account), str(name))
    for s, i in zip(arrays["new_set_of"], arrays["new_instr"]):
        book.trade(int(s), int(i), 0.0)
    book.qty.view[:] = arrays["qty"]
    live.ensure_room()
    live.market.restore({k[len("market_"):]: v for k, v in arrays.items()
                         if k.startswith("market_")})
    live.ledger.restore({k[len("ledger_"):]: v for k, v in arrays.items()
                         if k.startswith("ledger_")})
    live.req.restore(arrays)
    for name in ("due", "refreshed_at", "prior_refresh", "previous", "upnl", "asset_time",
                 "stale", "ordered"):
        setattr(live, name, arrays[name].copy())
    live.schedule.order = arrays["queue"].copy()
    live.schedule.next, live.schedule.stale = int(rest["queue_next"]), bool(rest["queue_stale"])
    live.now = None if rest["now"] is None else pd.Timestamp(rest["now"])
    live.held = {int(k): float(v) for k, v in rest["held"].items()}
    live.n_inputs = int(rest["n_inputs"])
    live.pending.restore(rest["pending"])
    live.stats.restore(rest["stats"])
    live.orders = [orders] if len(orders) else []
    live.reset_view()
