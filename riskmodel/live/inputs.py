"""The inputs of ``riskmodel live``: ticks, trades, transfers and funding, read from CSV or
Parquet files (by extension) or as JSON lines on standard input (``-``), merged into one
stream in time order.

Columns (a missing one is an input error, exit 3, naming the file):

* ticks ``time, asset, price``; trades ``time, account_id, instrument_id, quantity[,
  netting_set]``; transfers ``time, account_id, amount[, netting_set]``; funding ``time,
  instrument_id, rate``.

A row's values are checked when it is applied (:class:`riskmodel.live.LiveMargin`): a bad one
is refused with an event naming the file and the line (CSV, header = line 1) or row (Parquet,
first row = 1), and the stream goes on. Files are merged by time; rows of the same time go in
the order ticks, funding, trades, transfers, then file order. A row whose time cannot be read
or goes back from the row before it keeps its place in its file (the loop then refuses it).

On standard input every line is one JSON object with the columns of its kind; a line may say
its kind (``"type": "tick" | "trade" | "transfer" | "funding"``), else it is of the flag's
kind, so one stream can carry all of them. Lines are applied as they arrive.
"""

from __future__ import annotations

import hashlib
import heapq
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import numpy as np
import pandas as pd

from riskmodel.io.tables import read_table

COLUMNS = {"tick": ("time", "asset", "price"),
           "trade": ("time", "account_id", "instrument_id", "quantity"),
           "transfer": ("time", "account_id", "amount"),
           "funding": ("time", "instrument_id", "rate")}
OPTIONAL = {"trade": ("netting_set",), "transfer": ("netting_set",)}
#: rows of the same time: ticks first (a trade then happens at the new marks)
PRIORITY = {"tick": 0, "funding": 1, "trade": 2, "transfer": 3}
STDIN = "-"


@dataclass(frozen=True)
class Record:
    """One input: its kind, its values in the order of :data:`COLUMNS` (then the optional
    columns) and where it came from (``ticks.csv line 7``)."""

    kind: str
    values: tuple[Any, ...]
    source: str


def apply(live: Any, record: Record) -> list[Any]:
    """Feed ``record`` to ``live`` (a :class:`~riskmodel.live.LiveMargin`); its events."""
    if record.kind == "refused":  # a line that is no input at all
        return live.refuse(record.source, record.values[0])  # type: ignore[no-any-return]
    method = {"tick": live.on_tick, "trade": live.on_trade, "transfer": live.on_transfer,
              "funding": live.on_funding}[record.kind]
    return method(*record.values, source=record.source)  # type: ignore[no-any-return]


def _values(kind: str, get: Any) -> tuple[Any, ...]:
    return tuple(get(c) for c in (*COLUMNS[kind], *OPTIONAL.get(kind, ())))


def _ordering(times: Iterable[Any]) -> list[int]:
    """Each row's merge time (ns): its own, or the row before's when unreadable or earlier."""
    out: list[int] = []
    last = -(2 ** 63)
    for t in times:
        try:
            stamp = pd.Timestamp(t)
            ns = last if pd.isna(stamp) else int(
                (stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp).value)
        except (ValueError, TypeError):
            ns = last
        last = max(last, ns)
        out.append(last)
    return out


def file_records(path: str | Path, kind: str) -> Iterator[tuple[tuple[int, int, int], Record]]:
    """The rows of a CSV or Parquet input file, with their merge keys."""
    table = read_table(path, f"{kind}s")
    table.require_columns(list(COLUMNS[kind]))
    frame = table.frame
    columns = {c: frame[c].to_numpy(dtype=object) if c in frame.columns
               else np.full(len(frame), None, dtype=object)
               for c in (*COLUMNS[kind], *OPTIONAL.get(kind, ()))}
    keys = _ordering(columns["time"])
    priority = PRIORITY[kind]
    for row, key in enumerate(keys):
        values = _values(kind, lambda c, row=row: _plain(columns[c][row]))
        yield (key, priority, row), Record(kind, values, table.where(row))


def _plain(value: Any) -> Any:
    """A cell as a plain Python value (None for a missing one)."""
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return None
    return value.item() if isinstance(value, np.generic) else value


class StdinRecords:
    """JSON lines from a stream, in arrival order, with a running SHA-256 of their bytes."""

    def __init__(self, stream: IO[str], kind: str) -> None:
        self.stream, self.kind = stream, kind
        self.digest = hashlib.sha256()
        self.lines = 0

    def __iter__(self) -> Iterator[tuple[tuple[int, int, int], Record]]:
        last = -(2 ** 63)
        for text in self.stream:
            self.digest.update(text.encode())
            self.lines += 1
            if not text.strip():
                continue
            source = f"stdin line {self.lines}"
            try:
                row = json.loads(text)
                if not isinstance(row, dict):
                    raise ValueError("not a JSON object")
            except ValueError as exc:
                yield (last, 9, self.lines), Record("refused", (f"not a JSON object: {exc}",),
                                                    source)
                continue
            kind = str(row.get("type", self.kind))
            if kind not in COLUMNS:
                yield (last, 9, self.lines), Record("refused", (f"type = {kind!r}: not one "
                                                                f"of {', '.join(COLUMNS)}",),
                                                    source)
                continue
            last = _ordering([row.get("time")])[0] if row.get("time") is not None else last
            yield (last, PRIORITY[kind], self.lines), Record(kind, _values(kind, row.get),
                                                             source)


def merged(sources: list[Iterable[tuple[tuple[int, int, int], Record]]]
           ) -> Iterator[Record]:
    """The records of every source in time order (module docstring): by time, kind, source
    (the order given) and row."""
    def tagged(n: int, source: Iterable[tuple[tuple[int, int, int], Record]]
               ) -> Iterator[tuple[tuple[int, int, int, int], Record]]:
        for key, record in source:
            yield (key[0], key[1], n, key[2]), record

    for _, record in heapq.merge(*(tagged(n, s) for n, s in enumerate(sources)),
                                 key=lambda item: item[0]):
        yield record
