"""Automatic top-up (``[live] auto_top_up``), as venues' auto-add-margin: an isolated netting set
whose margin level (equity over maintenance margin in force) falls below ``top_up_trigger``
draws from the free collateral of its account's cross set (``default``) back to
``top_up_target``: ``min(target x MM - equity, cross equity - cross initial margin)``, never
taking the cross set below its own initial margin. Each transfer is a ``top_up`` event on the
isolated set; the cross set's status is then published with the others the input touched.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from riskmodel.io.positions import DEFAULT_NETTING_SET
from riskmodel.live.events import Event

if TYPE_CHECKING:  # pragma: no cover
    from riskmodel.live.state import LiveState


def top_up(live: LiveState, sets: np.ndarray, t: pd.Timestamp, events: list[Event]
           ) -> np.ndarray:
    """Top up the isolated ones of ``sets`` below the trigger; returns the cross sets drawn
    from."""
    cfg, book, ledger, req = live.live, live.book, live.ledger, live.req
    drawn: list[int] = []
    mm_all, im_all = req.columns["maintenance_margin"], req.columns["initial_margin"]
    for s in (int(x) for x in sets):
        account, name = book.key(s)
        mm = float(mm_all[s])
        if name == DEFAULT_NETTING_SET or mm <= 0:
            continue
        if ledger.equity[s] >= cfg.top_up_trigger * mm:
            continue
        source = book.index.get((account, DEFAULT_NETTING_SET))
        if source is None:
            continue
        free = float(ledger.equity[source] - im_all[source])
        amount = min(cfg.top_up_target * mm - float(ledger.equity[s]), free)
        if not amount > 0:
            continue
        ledger.pay(s, amount)
        ledger.pay(source, -amount)
        drawn.append(source)
        live.stats.count("top_ups")
        events.append(live.event(t, s, "top_up", before=int(req.columns["status"][s]),
                                  detail=f"{amount:.10g} from {account}/{DEFAULT_NETTING_SET}"))
    return np.asarray(sorted(set(drawn)), dtype=np.int64)
