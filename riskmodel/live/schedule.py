"""When the live loop refreshes requirements, and what it publishes: the part of
:class:`~riskmodel.live.loop.LiveState` between an input's effect on equity and its events.

After each input (module :mod:`riskmodel.live.loop`, steps 3-6):

* ``exact``: every set the input touched is refreshed at the current marks and its status
  published;
* default: a trade's set is refreshed at once. A touched set whose status against the
  requirements in force changed is refreshed first when it is due; then the status is
  published (an entry into liquidation too: the set waits for its orders), except a move out
  of liquidation (or ``margin_call`` with ``include_margin_call``) that the exact marks have
  not confirmed: such a set joins the sets waiting for orders, whose batch refreshes them at
  the exact current marks and publishes what it finds (a liquidation is never lifted on
  requirements that lag the marks, and its orders go out only where the exact marks keep the
  set in it). Then ``refresh_slice`` due sets are refreshed,
  nearest liquidation first: the sets not in liquidation by margin level, then those in it,
  nearest to leaving it first (the order is computed when sets become due and kept until the
  next time they do, or until its first :data:`QUEUE_PAGE` sets are used up);
* the orders go out when :class:`~riskmodel.live.orders.PendingOrders` says so.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from riskmodel.engine import PricedMarket, margin_book
from riskmodel.live.events import Event
from riskmodel.live.orders import issue_orders, order_detail
from riskmodel.live.requirements import (
    FLAT,
    LIQUIDATION,
    MARGIN_CALL,
    OK,
    STATUS_NAMES,
    WARNING,
)
from riskmodel.live.topup import top_up

if TYPE_CHECKING:  # pragma: no cover
    from riskmodel.live.state import LiveState


#: the refresh queue holds the first this many due sets of its order (recomputed when they
#: are used up): a crash makes tens of thousands of sets due at each requirement mark's move,
#: and sorting them all costs more than the few hundred refreshed before the next move
QUEUE_PAGE = 4096


def take(live: LiveState, n: int) -> np.ndarray:
    """Up to ``n`` due sets, nearest liquidation first."""
    if n <= 0:
        return np.zeros(0, dtype=np.int64)
    queue = live.schedule
    if queue.stale or queue.next >= len(queue.order):
        due = np.flatnonzero(live.due)
        level = live.req.level(due, live.ledger.equity[due])
        # nearest liquidation first: the sets not in liquidation by level, then those in
        # it (their status can only improve), nearest to leaving it first
        inside = live.req.columns["status"][due] == LIQUIDATION
        queue.order = due[first_in_order(np.where(inside, np.inf, level), -level, QUEUE_PAGE)]
        queue.next, queue.stale = 0, False
    picked: list[int] = []
    while len(picked) < n and queue.next < len(queue.order):
        chunk = queue.order[queue.next:queue.next + n - len(picked)]
        queue.next += len(chunk)
        picked.extend(chunk[live.due[chunk]].tolist())
    return np.sort(np.asarray(picked, dtype=np.int64))


def first_in_order(key: np.ndarray, second: np.ndarray, m: int) -> np.ndarray:
    """The first ``m`` positions of ``np.lexsort((second, key))`` (by ``key``, then
    ``second``, then position), without sorting them all: every one of them has a key at most
    the ``m+1``-th smallest, so sorting those alone gives the same first ``m``."""
    if len(key) <= 2 * m:
        return np.lexsort((second, key))[:m]
    kth = np.partition(key, m)[m]
    if kth != kth:  # NaN keys sort last, and none compares: sort them all
        return np.lexsort((second, key))[:m]
    candidates = np.flatnonzero(key <= kth)
    return candidates[np.lexsort((second[candidates], key[candidates]))][:m]


def settle(live: LiveState, t: pd.Timestamp, touched: np.ndarray, forced: np.ndarray,
           events: list[Event], provisional: np.ndarray | None) -> None:
    """The module docstring's steps for the sets an input touched (``forced``: refreshed in
    any case; ``provisional``: their status at the requirements in force, when known)."""
    if live.exact:
        refresh(live, touched, t, kind="tick")
    elif len(forced):
        refresh(live, forced, t, kind="trade")
    if live.live.auto_top_up:
        drawn = top_up(live, touched, t, events)
        if len(drawn):
            touched = np.union1d(touched, drawn)
            provisional = None
    status = live.req.columns["status"]
    if provisional is None or live.exact or len(forced):
        provisional = live.req.status(touched, live.ledger.equity[touched],
                                      live.config.margin.warning_multiple)
    changed = touched[(provisional != status[touched]) | (status[touched] == FLAT)]
    picked = np.zeros(0, dtype=np.int64)
    if not live.exact:
        # the changed sets that are due and a slice of the queue: one engine call
        due = changed[live.due[changed]]
        picked = np.setdiff1d(take(live, live.live.refresh_slice), due)
        if len(due) or len(picked):
            live.stats.count("refreshed_confirm", len(due))
            with live.batch_work():  # a slice's tail is worth a parallel region
                refresh(live, np.concatenate([due, picked]), t, kind="slice")
    publish(live, changed, t, events, found="tick", exact_marks=live.exact)
    publish(live, np.setdiff1d(picked, changed), t, events, found="slice", exact_marks=False)
    if live.pending.due(t, live.live.order_batch, live.live.order_wait):
        issue(live, t, events)


def refresh(live: LiveState, sets: np.ndarray, t: pd.Timestamp, *, kind: str,
            exact_marks: bool = False, tables: bool = False
            ) -> tuple[Any, PricedMarket, np.ndarray] | None:
    """Margin ``sets`` through the engine at the requirement marks (or at the exact current
    marks) and put their rows in force (the figures alone, or with ``tables`` the whole rows
    and the attribution); returns ``(BookMargins, market, sets margined)``."""
    with live.stats.timed(f"refresh_{kind}"):
        return _refresh(live, sets, t, kind, exact_marks, tables)


def _refresh(live: LiveState, sets: np.ndarray, t: pd.Timestamp, kind: str, exact_marks: bool,
             tables: bool) -> tuple[Any, PricedMarket, np.ndarray] | None:
    sets = np.unique(np.asarray(sets, dtype=np.int64))
    positions, indptr = live.book.open_positions(sets)
    counts = np.diff(indptr)
    live.req.clear(sets[counts == 0])
    sets = sets[counts > 0]
    if not len(sets):
        return None
    market, axis = live.view_market(), None
    if exact_marks and len(live.market.lagging()):
        market = live.market.at_marks(np.unique(live.book.instr.view[positions]))
        axis = market.axis
    book, _ = live.book.book(sets, axis, ids=tables)
    result = margin_book(market, book, live.config, collateral=live.ledger.equity[sets],
                         previous=live.previous[sets], account_types=live.account_types,
                         detail="tables" if tables else "figures")
    live.req.put(sets, result.margins if tables else result.figures)
    live.due[sets] = False
    live.prior_refresh[sets] = live.refreshed_at[sets]
    live.refreshed_at[sets] = live.n_inputs
    live.stats.count(f"refreshed_{kind}", len(sets))
    return result, market, sets


def publish(live: LiveState, sets: np.ndarray, t: pd.Timestamp, events: list[Event], *,
            found: str, exact_marks: bool) -> None:
    """Publish the status of ``sets`` against their requirements in force (an exit from
    liquidation only at ``exact_marks``: otherwise the set waits for the orders' batch)."""
    if not len(sets):
        return
    status = live.req.columns["status"]
    _, indptr = live.book.open_positions(sets)
    new = live.req.status(sets, live.ledger.equity[sets], live.config.margin.warning_multiple)
    new[np.diff(indptr) == 0] = FLAT
    names = live.liquidated
    for s, after in zip(sets[new != status[sets]], new[new != status[sets]]):
        s, after = int(s), int(after)
        if (not exact_marks and STATUS_NAMES[status[s]] in names
                and STATUS_NAMES[after] not in names):
            live.pending.add(s, t)  # out of liquidation: the exact marks decide
            continue
        _status_change(live, s, after, t, events, found)


def _status_change(live: LiveState, s: int, after: int, t: pd.Timestamp,
                   events: list[Event], found: str) -> None:
    status = live.req.columns["status"]
    before = int(status[s])
    status[s] = after
    if after == FLAT:
        events.append(live.event(t, s, "set_closed", before=before))
        live.pending.drop(s)
        live.ordered[s] = False
        live.req.columns["liquidation_penalty"][s] = 0.0
        return
    events.append(live.event(t, s, "status_change", before=before))
    live.stats.status_change(str(STATUS_NAMES[after]), found,
                             live.n_inputs - int(live.prior_refresh[s]))
    if after == MARGIN_CALL and before in (OK, WARNING):
        events.append(live.event(t, s, "margin_call", before=before))
    names = live.liquidated
    if STATUS_NAMES[after] in names and STATUS_NAMES[before] not in names:
        live.pending.add(s, t)
    elif STATUS_NAMES[after] not in names:
        live.pending.drop(s)
        live.ordered[s] = False
        live.req.columns["liquidation_penalty"][s] = 0.0


def issue(live: LiveState, t: pd.Timestamp, events: list[Event]) -> None:
    """The waiting sets refreshed at the exact current marks, their statuses published, and
    the orders of those in a liquidated status sent."""
    with live.stats.timed("orders"):
        _issue(live, t, events)


def _issue(live: LiveState, t: pd.Timestamp, events: list[Event]) -> None:
    sets = live.pending.take()
    if not len(sets):
        return
    with live.batch_work():  # the batch's instruments repriced at the exact marks
        done = refresh(live, sets, t, kind="orders", exact_marks=True, tables=True)
    publish(live, sets, t, events, found="orders", exact_marks=True)
    if done is None:
        return
    result, market, margined = done
    status = live.req.columns["status"]
    # the sets in a liquidated status without orders yet (a set whose exit the exact marks
    # did not confirm keeps the orders it has)
    chosen = np.isin(STATUS_NAMES[status[margined]], live.liquidated) & ~live.ordered[margined]
    for s in margined[chosen]:
        live.pending.drop(int(s))  # their orders go out now
    live.ordered[margined[chosen]] = True
    if not chosen.any():
        return
    # the compiled search shares the batch's sets among the batch threads (nogil)
    with live.batch_work(), live.stats.timed("partial_liquidation"):
        orders, per_set = issue_orders(market, live.config, result.margins[chosen],
                                       result.attribution, live.run.stored.previous,
                                       live.account_types)
    live.stats.count("order_batches")
    counts = orders.groupby(["account_id", "netting_set"]).size().to_dict()
    for row in per_set.to_dict("records"):
        s = live.book.index[(str(row["account_id"]), str(row["netting_set"]))]
        live.req.columns["liquidation_penalty"][s] = float(row["liquidation_penalty"])
        n = int(counts.get((row["account_id"], row["netting_set"]), 0))
        events.append(live.event(t, s, "liquidation_orders", before=int(status[s]),
                                 detail=order_detail(pd.Series(row), n)))
    if len(orders):
        logged = orders.copy()
        logged.insert(0, "time", t)
        live.orders.append(logged)
