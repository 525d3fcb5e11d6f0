"""How one replay's liquidations compare with another's: the default mode against
``--exact`` (``benchmarks/bench_live.py`` and the tests measure it).

A set is *put in liquidation* by a replay at time ``t`` when one of its status changes enters
``liquidation`` then. For each such entry of the reference replay, the other is asked when it
first has the set in liquidation at or after ``t``: at ``t`` itself when the set already is in
liquidation there (it entered earlier, or started the day there), else at its first entry after
``t``; never, when it has none. Statuses run from each set's status at the start (the ``eod``
run's) through the replay's ``status_change`` events (``set_closed``: flat).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

KEY = ["account_id", "netting_set"]


def liquidations_found(reference: pd.DataFrame, other: pd.DataFrame, start: pd.Series
                       ) -> pd.DataFrame:
    """Every entry into liquidation of ``reference`` (an ``events.parquet`` frame) and when
    ``other`` has the set in liquidation at or after it (module docstring).

    Parameters
    ----------
    reference, other : DataFrame
        Events of two replays of the same inputs.
    start : Series
        Each set's status at the start, indexed by ``(account_id, netting_set)``.

    Returns
    -------
    DataFrame
        ``account_id, netting_set, entered, found`` (NaT: never), ``lag_s`` (NaN: never).
    """
    theirs = _timelines(other)
    rows = []
    for key, changes in _timelines(reference).items():
        before = start.get(key, "flat")
        for t, status in changes:
            if status == "liquidation" and before != "liquidation":
                rows.append((*key, t, _first_at_or_after(theirs.get(key, []),
                                                         start.get(key, "flat"), t)))
            before = status
    out = pd.DataFrame(rows, columns=[*KEY, "entered", "found"])
    out["entered"] = pd.to_datetime(out["entered"], utc=True)
    out["found"] = pd.to_datetime(out["found"], utc=True)
    out["lag_s"] = (out["found"] - out["entered"]).dt.total_seconds()
    return out


def _timelines(events: pd.DataFrame) -> dict[tuple[str, str], list[tuple[pd.Timestamp, str]]]:
    """Per set, its status changes in order: ``(time, status after)``."""
    changes = events[events["event"].isin(["status_change", "set_closed"])]
    after = np.where(changes["event"] == "set_closed", "flat", changes["status_after"])
    out: dict[tuple[str, str], list[tuple[pd.Timestamp, str]]] = {}
    for a, s, t, status in zip(changes["account_id"], changes["netting_set"], changes["time"],
                               after):
        out.setdefault((str(a), str(s)), []).append((t, str(status)))
    return out


def _first_at_or_after(changes: list[tuple[pd.Timestamp, str]], status: str,
                       t: pd.Timestamp) -> pd.Timestamp | None:
    for when, after in changes:
        if when > t:
            break
        status = after
    if status == "liquidation":
        return t
    return next((when for when, after in changes if when > t and after == "liquidation"), None)
