"""The intraday loop: :class:`LiveMargin`, a finished ``eod`` run whose marks, positions and
collateral move with every tick, trade, transfer and funding payment.

Each input is applied at once and returns the events it caused (:mod:`riskmodel.live.events`):

1. its time is read (ISO 8601; a naive time is UTC) and must not go backwards;
2. a **tick** moves one factor of the run (an underlying, or an implied-vol index): the
   instruments it drives are revalued at the engine's kernels and the positions in them
   re-marked, so every set holding them has its exact equity
   (:mod:`riskmodel.live.ledger`); a **trade** changes a position at the current marks (equity
   unchanged) and refreshes its set's requirements at once; a **transfer** moves cash; a
   **funding** payment moves cash between the holders of a perpetual;
3. the touched sets' margin level and status are the policy's rule at their equity against the
   requirements in force (:mod:`riskmodel.live.requirements`);
4. requirements are refreshed through the engine (:func:`riskmodel.engine.margin_book`, the
   run's scenario set at the current marks: :mod:`riskmodel.engine.remark`):

   * ``exact`` (``--exact``, the reference): every touched set, on every tick;
   * default: each factor's requirement mark follows its price when the two are more than
     ``[live] refresh_move`` apart (its instruments repriced there), and every set holding it is
     then *due*; after each input, ``refresh_slice`` due sets are refreshed, lowest margin level
     first; a set whose status against the requirements in force changes is refreshed first
     when due, and an exit from liquidation is published only once the exact current marks
     confirm it (:mod:`riskmodel.live.schedule`). ``flush`` moves every requirement mark to its
     price and refreshes every set;
5. a published status change is an event; a set entering liquidation waits for its orders
   (:mod:`riskmodel.live.orders`);
6. with ``[live] auto_top_up``, isolated sets below ``top_up_trigger`` draw from their
   account's cross set (:mod:`riskmodel.live.topup`).

What the default can miss between refreshes: a set whose requirements at the current marks
would change its status while those in force (priced at marks up to ``refresh_move`` away, or
waiting in the queue behind sets nearer liquidation) do not. Such a change is found when the
set is refreshed; its lag is at most the inputs since the set's previous refresh, which the
statistics (:attr:`LiveMargin.stats`) record for every change a refresh found.
"""

from __future__ import annotations

import time as clock
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from riskmodel.live.checks import (
    PERPETUALS,
    Refused,
    check_horizon,
    check_instrument,
    finite,
    moved,
    set_name,
    utc_time,
)
from riskmodel.live.events import Event, market_event
from riskmodel.live.schedule import issue, publish, refresh, settle
from riskmodel.live.state import LiveState
from riskmodel.live.threads import most_threads, numba_threads


class LiveMargin(LiveState):
    """A finished run margined through the day (module docstring).

    Parameters
    ----------
    run : LoadedRun or path
        The ``eod`` output folder (or :func:`riskmodel.whatif.load_run` of it).
    exact : bool
        Refresh every touched set's requirements on every tick (the reference).
    live : LiveConfig, optional
        The ``[live]`` settings (default: the run's).
    threads : int
        numba threads for each input's own work (1: a tick's and a trade's kernels are small,
        and a parallel region waits for its slowest thread, which on a busy machine costs
        more than the region saves).
    batch_threads : int, optional
        numba threads for the larger kernels: repricing a factor's instruments (its
        requirement mark moves), a refresh slice's tail, and an order batch's repricing at
        the exact marks and liquidation search (default: the process's); ``flush`` uses the
        process's.
    """

    # ------------------------------------------------------------------------- inputs

    def on_tick(self, time: Any, asset: str, price: float, *, source: str = ""
                ) -> list[Event]:
        """A price of ``asset`` (a factor of the run: an underlying or an implied-vol index):
        > 0 for factors with log returns, any finite value for absolute ones. Returns the
        events it caused (all ``on_*`` do; ``source`` is how a refusal names the input, e.g.
        ``ticks.csv line 7``)."""
        return self._input(time, source or "on_tick", self._tick, asset, price)

    def on_trade(self, time: Any, account_id: str, instrument_id: str, quantity: float,
                 netting_set: str | None = None, *, source: str = "") -> list[Event]:
        """A trade of ``quantity`` (signed) of ``instrument_id`` at the current marks, in the
        account's set ``netting_set`` (blank: its cross set ``default``)."""
        return self._input(time, source or "on_trade", self._trade, account_id,
                           instrument_id, quantity, netting_set)

    def on_transfer(self, time: Any, account_id: str, amount: float,
                    netting_set: str | None = None, *, source: str = "") -> list[Event]:
        """Cash into (``amount`` > 0) or out of an account's set (blank: its cross set)."""
        return self._input(time, source or "on_transfer", self._transfer, account_id, amount,
                           netting_set)

    def on_funding(self, time: Any, instrument_id: str, rate: float, *, source: str = ""
                   ) -> list[Event]:
        """A perpetual's funding ``rate`` per unit of notional (``|delta x price|`` at the
        current marks: the face value of an inverse contract): longs pay shorts when positive,
        settled into each holder's cash."""
        return self._input(time, source or "on_funding", self._funding, instrument_id, rate)

    def refuse(self, source: str, why: str) -> list[Event]:
        """An input that could not be read at all (a line that is not JSON): its event."""
        self.n_inputs += 1
        self.stats.count("refused")
        return [market_event(self.now or self.run.market.valuation_time, "refused",
                             f"{source}: {why}")]

    def _input(self, time: Any, source: str, apply: Callable[..., None], *args: Any
               ) -> list[Event]:
        """One input: its time checked, ``apply(t, *args, events)`` with :attr:`threads`
        numba threads; a refused input returns its ``refused`` event."""
        events: list[Event] = []
        self.n_inputs += 1
        try:
            t = self._begin(time, events)
            with numba_threads(self.threads):
                apply(t, *args, events)
        except Refused as why:
            events.append(market_event(self.now or self.run.market.valuation_time, "refused",
                                       f"{source}: {why}"))
            self.stats.count("refused")
        return events

    def _tick(self, t: pd.Timestamp, asset: str, price: float, events: list[Event]) -> None:
        started = clock.perf_counter()
        k = self.market.factor_index.get(str(asset))
        if k is None:
            raise Refused("asset", asset, "not a price column of the run (its factors: "
                          f"{', '.join(self.market.factors)})")
        price = finite("price", price, positive=not self.market.absolute[k])
        accepted = self._jump_filter(k, price, t, events)
        self.asset_time[k], self.stale[k] = t.value / 1e9, False
        if accepted is None:
            return
        touched = self._mark(k, accepted)
        provisional = self.req.status(touched, self.ledger.equity[touched],
                                      self.config.margin.warning_multiple)
        # the tick's exact equity, margin level and status against the requirements in force
        self.stats.tick_latency.append(clock.perf_counter() - started)
        self._follow(k, touched)
        settle(self, t, touched, np.zeros(0, np.int64), events, provisional)
        self.stats.tick_total.append(clock.perf_counter() - started)

    def _trade(self, t: pd.Timestamp, account_id: str, instrument_id: str, quantity: float,
               netting_set: str | None, events: list[Event]) -> None:
        account_id, instrument_id = str(account_id), str(instrument_id)
        i = int(self.run.axis.get_indexer([instrument_id])[0])
        check_instrument(instrument_id, i, self.run.market.unpriced, self.market.is_collateral)
        if account_id not in self.funded:
            raise Refused("account_id", account_id, "not an account of the run's accounts file")
        q = finite("quantity", quantity)
        name = set_name(netting_set)
        kinds = {str(self.market.frame["kind"].iat[i])}
        known = self.book.index.get((account_id, name))
        if known is not None:
            held = self.book.positions_of(known)
            held = held[self.book.qty.view[held] != 0]
            kinds |= set(self.market.frame["kind"].to_numpy()[self.book.instr.view[held]])
        check_horizon(self.config, kinds, self.account_types.get(account_id, ""),
                      self.run.market.model, instrument_id)
        s = self.set_index(account_id, name)
        was_open = self.book.holds(s)
        p, before = self.book.trade(s, i, q)
        self.ledger.grow(self.book.n_sets, self.book.n_positions)
        after = float(self.book.qty.view[p])
        u = float(self.upnl[i])
        self.ledger.value[p] = after * u
        k = int(self.market.factor_of[i])
        # the new quantity's P&L since the eod marks, booked against it: equity unchanged
        self.ledger.book_entry(s, k, -(after - before) * u, bool(self.market.coin_pnl[i]),
                               float(self.market.spot[k]))
        if not was_open and after != 0:
            events.append(self.event(t, s, "set_opened", detail=f"trade in {instrument_id}"))
        forced = np.array([s], dtype=np.int64)
        settle(self, t, forced, forced, events, None)

    def _transfer(self, t: pd.Timestamp, account_id: str, amount: float,
                  netting_set: str | None, events: list[Event]) -> None:
        if str(account_id) not in self.funded:
            raise Refused("account_id", account_id, "not an account of the run's accounts file")
        x = finite("amount", amount)
        s = self.set_index(str(account_id), set_name(netting_set))
        self.ledger.pay(s, x)
        touched = np.array([s], dtype=np.int64)
        settle(self, t, touched, np.zeros(0, np.int64), events, None)

    def _funding(self, t: pd.Timestamp, instrument_id: str, rate: float, events: list[Event]
                 ) -> None:
        i = int(self.run.axis.get_indexer([str(instrument_id)])[0])
        if i < 0 or self.market.frame["kind"].iat[i] not in PERPETUALS:
            raise Refused("instrument_id", instrument_id, "not a perpetual the run priced")
        r = finite("rate", rate)
        k = int(self.market.factor_of[i])
        held = self.book.driven_positions(k)
        held = held[(self.book.instr.view[held] == i) & (self.book.qty.view[held] != 0)]
        sets = self.book.set_of.view[held]
        unit_notional = self.market.unit_notional(i)
        payment = -self.book.qty.view[held] * r * unit_notional
        np.add.at(self.ledger.cash, sets, payment)
        np.add.at(self.ledger.equity, sets, payment)
        settle(self, t, np.unique(sets), np.zeros(0, np.int64), events, None)

    # ----------------------------------------------------------------- flush, snapshot

    def flush(self) -> list[Event]:
        """Every requirement mark moved to its price, every set refreshed there (with the
        process's numba threads), every waiting order sent; returns the events. Afterwards the
        state is the engine's at the current marks."""
        events: list[Event] = []
        t = self.now if self.now is not None else self.run.market.valuation_time
        with numba_threads(most_threads()):
            # every lagging requirement mark to its price, their instruments priced in one call
            self.market.follow_many(self.market.lagging())
            self.reset_view()
            sets = self.open_sets()
            refresh(self, sets, t, kind="flush", tables=True)
            publish(self, sets, t, events, found="flush", exact_marks=True)
            issue(self, t, events)
        self.due[:] = False
        self.schedule.stale = True
        return events

    def snapshot(self) -> pd.DataFrame:
        """The margin table now, with ``eod``'s columns (``margins.parquet``): one row per set
        holding a position, ordered by account and set; requirements (and the distance to
        liquidation) as of each set's last refresh, equity, level, status and call now."""
        sets = self.open_sets()
        accounts, names = self.book.ids()
        account, netting_set = accounts[sets], names[sets]
        order = np.lexsort((netting_set.astype(str), account.astype(str)))
        sets = sets[order]
        return self.req.table(sets, self.ledger.equity[sets], self.req.columns["status"][sets],
                              account[order], netting_set[order])

    def _begin(self, time: Any, events: list[Event]) -> pd.Timestamp:
        """The input's time; raises :class:`Refused` when unreadable or going backwards.
        Reports the assets silent for longer than ``stale_after``."""
        t = utc_time(time)
        if self.now is not None and t < self.now:
            raise Refused("time", time, f"goes backwards (last {self.now.isoformat()})")
        if self.now is None:
            self.asset_time[:] = t.value / 1e9  # silence counts from the first input
        self.now = t
        silent = (t.value / 1e9 - self.asset_time > self.live.stale_after) & ~self.stale
        for k in np.flatnonzero(silent):
            self.stale[k] = True
            since = pd.Timestamp(self.asset_time[k], unit="s", tz="UTC").isoformat()
            events.append(market_event(t, "stale_price", f"{self.market.factors[k]}: no "
                                       f"accepted tick since {since}"))
        return t

    def _jump_filter(self, k: int, price: float, t: pd.Timestamp, events: list[Event]
                     ) -> float | None:
        """The price to apply, or None while a jump is held (:mod:`riskmodel.live.events`)."""
        name = self.market.factors[k]
        last = float(self.market.spot[k])
        held = self.held.pop(k, None)
        if held is not None:
            if moved(price, held) <= self.live.max_jump:
                events.append(market_event(t, "price_jump_confirmed",
                                           f"{name}: {held!r} confirmed by {price!r}"))
                return price
            events.append(market_event(t, "price_jump_discarded",
                                       f"{name}: {held!r} discarded, next tick {price!r}"))
        if moved(price, last) > self.live.max_jump:
            self.held[k] = price
            events.append(market_event(t, "price_jump", f"{name}: {price!r} is "
                                       f"{moved(price, last):.1%} from {last!r}: held until "
                                       "the next tick confirms it"))
            return None
        return price

    def _mark(self, k: int, price: float) -> np.ndarray:
        """Move factor ``k`` to ``price``: revalue what it drives; returns the sets holding an
        open position it drives (or its coin)."""
        market = self.market
        old = float(market.spot[k])
        rows = market.set_mark(k, price)
        self.upnl[rows] = market.mark_pnl(rows)
        held, sets, starts, instrument = self.book.factor_groups(k)
        quantity = self.book.qty.view[held]
        self.ledger.revalue(held, sets, starts, quantity * self.upnl[instrument])
        touched = sets[np.add.reduceat(quantity != 0, starts) > 0] if len(held) else sets
        coin_sets = self.ledger.coin_move(k, old, price)
        if coin_sets:
            touched = np.union1d(touched, np.asarray(coin_sets, dtype=np.int64))
        return touched

    def _follow(self, k: int, touched: np.ndarray) -> None:
        """Factor ``k``'s requirement mark follows its price (its instruments repriced there)
        when they are more than ``refresh_move`` apart (always with ``exact``); the sets
        holding it are then due."""
        market = self.market
        if not (self.exact or moved(float(market.spot[k]), float(market.rmark[k]))
                > self.live.refresh_move):
            return
        with self.batch_work(), self.stats.timed("repricing"):
            market.follow(k)
        self.reset_view()
        self.due[touched] = True
        self.schedule.stale = True
        self.stats.count("requirement_mark_moves")
