"""``liquidations_found`` on hand-built event frames whose answers are worked out by hand."""

from __future__ import annotations

import numpy as np
import pandas as pd

from riskmodel.live.compare import liquidations_found

T0 = pd.Timestamp("2026-01-05T14:00:00Z")


def _events(rows):
    """``(seconds, account, event, status_after)`` rows as an events frame."""
    return pd.DataFrame({
        "time": [T0 + pd.Timedelta(seconds=s) for s, *_ in rows],
        "account_id": [a for _, a, *_ in rows], "netting_set": "default",
        "event": [e for _, _, e, _ in rows], "status_after": [st for *_, st in rows]})


def test_each_entry_is_found_then_later_or_never():
    start = pd.Series({("A", "default"): "margin_call", ("B", "default"): "ok",
                       ("C", "default"): "ok", ("D", "default"): "warning",
                       ("E", "default"): "liquidation"})
    reference = _events([
        (1, "A", "status_change", "liquidation"),   # the other entered at 0 s: found at 1
        (1, "B", "status_change", "liquidation"),   # the other enters at 4 s
        (2, "C", "status_change", "liquidation"),   # the other never does
        (5, "A", "status_change", "margin_call"),
        (7, "A", "status_change", "liquidation"),   # the other left at 6, back at 9
        (8, "D", "status_change", "liquidation"),   # the other closed the set at 8: never
        (3, "E", "status_change", "liquidation"),   # no entry: E starts the day there
    ])
    other = _events([
        (0, "A", "status_change", "liquidation"),
        (4, "B", "status_change", "liquidation"),
        (6, "A", "status_change", "margin_call"),
        (9, "A", "status_change", "liquidation"),
        (2, "C", "status_change", "margin_call"),
        (8, "D", "set_closed", ""),
    ])
    found = liquidations_found(reference, other, start)
    got = {(a, t.second): (None if pd.isna(f) else f.second)
           for a, t, f in zip(found["account_id"], found["entered"], found["found"])}
    assert got == {("A", 1): 1, ("B", 1): 4, ("C", 2): None, ("A", 7): 9, ("D", 8): None}
    lag = dict(zip(zip(found["account_id"], found["entered"].dt.second), found["lag_s"]))
    assert lag[("A", 1)] == 0.0 and lag[("B", 1)] == 3.0 and lag[("A", 7)] == 2.0
    assert np.isnan(lag[("C", 2)]) and np.isnan(lag[("D", 8)])
