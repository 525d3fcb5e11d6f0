"""The state of the intraday loop (:class:`LiveState`): the re-marked market, the book, the
ledger, the requirements in force and the bookkeeping of refreshes and orders, with the helpers
the scheduler (:mod:`riskmodel.live.schedule`), the top-up and the checkpoints use.
:class:`riskmodel.live.LiveMargin` adds the inputs to it."""

from __future__ import annotations

from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import numba
import numpy as np
import pandas as pd

from riskmodel.config import LiveConfig
from riskmodel.engine import PricedMarket
from riskmodel.engine.remark import RemarkedMarket
from riskmodel.liquidation.partial import liquidated_statuses
from riskmodel.live.book import LiveBook
from riskmodel.live.events import Event
from riskmodel.live.ledger import Ledger
from riskmodel.live.orders import ORDER_LOG_COLUMNS, PendingOrders
from riskmodel.live.requirements import STATUS_NAMES, Requirements
from riskmodel.live.stats import LiveStats
from riskmodel.live.threads import numba_threads
from riskmodel.measures.precompile import load_parallel_tail
from riskmodel.portfolio.collateral import previous_margins
from riskmodel.whatif.run import LoadedRun, load_run


class Schedule:
    """The refresh queue of due sets (filled and read by :mod:`riskmodel.live.schedule`): the
    order they are refreshed in, how far it has been read, and whether sets became due since
    it was computed."""

    def __init__(self) -> None:
        self.order = np.zeros(0, dtype=np.int64)
        self.next = 0
        self.stale = True


class LiveState:
    """Everything the live loop knows (parameters as :class:`riskmodel.live.LiveMargin`)."""

    def __init__(self, run: LoadedRun | str | Path, *, exact: bool = False,
                 live: LiveConfig | None = None, threads: int = 1,
                 batch_threads: int | None = None) -> None:
        self.run = run if isinstance(run, LoadedRun) else load_run(run)
        self.config = self.run.config
        self.live = live or self.config.live
        self.exact, self.threads = exact, threads
        self.batch_threads = batch_threads or numba.get_num_threads()
        if self.batch_threads > 1:  # the refresh slices' tail runs in parallel (schedule)
            load_parallel_tail()
        self.market = RemarkedMarket(self.run.market, self.config)
        self.book = LiveBook(self.run.positions, self.run.stored.collateral, self.run.axis,
                             self.market.driven)
        n = self.book.n_sets
        sets = pd.DataFrame({"account_id": self.book.account,
                             "netting_set": self.book.netting_set})
        self.ledger = Ledger(self.run.collateral.of_sets(sets), self.book.n_positions)
        self.req = Requirements(n)
        self._initial_requirements(sets)
        previous = previous_margins(self.run.stored.previous, sets)
        self.previous = np.full(n, np.nan) if previous is None else previous
        self.due = np.zeros(n, dtype=bool)
        self.refreshed_at = np.zeros(n, dtype=np.int64)
        self.prior_refresh = np.zeros(n, dtype=np.int64)
        self.upnl = np.zeros(self.market.n_instruments)  # per-unit P&L since the eod marks
        self.pending = PendingOrders()
        self.schedule = Schedule()
        self.orders: list[pd.DataFrame] = []
        self.liquidated = liquidated_statuses(self.config)
        # sets with orders standing: eod's liquidation stage gave the run's sets theirs
        self.ordered = np.isin(STATUS_NAMES[self.req.columns["status"]], self.liquidated)
        self.account_types = self.run.collateral.account_types
        self.funded = self.run.collateral.funded
        self.now: pd.Timestamp | None = None
        self.asset_time = np.full(len(self.market.factors), np.nan)  # seconds, UTC
        self.stale = np.zeros(len(self.market.factors), dtype=bool)
        self.held: dict[int, float] = {}
        self.n_inputs = 0
        self.stats = LiveStats()
        self._view: PricedMarket | None = None

    def _initial_requirements(self, sets: pd.DataFrame) -> None:
        """The run's margin table as the requirements in force, its statuses as published."""
        margins = pd.read_parquet(self.run.run_dir / "margins.parquet")
        keys = pd.MultiIndex.from_arrays([margins["account_id"].astype(str),
                                          margins["netting_set"].astype(str)])
        rows = keys.get_indexer(pd.MultiIndex.from_frame(sets.astype(str)))
        found = np.flatnonzero(rows >= 0)
        table = margins.iloc[rows[found]]
        self.req.put(found, table)
        codes = {name: i for i, name in enumerate(STATUS_NAMES)}
        self.req.columns["status"][found] = [codes[s] for s in table["status"]]
        if "liquidation_penalty" in table:
            self.req.columns["liquidation_penalty"][found] = \
                table["liquidation_penalty"].to_numpy(np.float64)

    def orders_frame(self) -> pd.DataFrame:
        """Every liquidation order sent so far (``time``, then ``eod``'s columns)."""
        if not self.orders:
            return pd.DataFrame({c: pd.Series(dtype=np.float64 if c in (
                "quantity_to_close", "margin_after", "equity_after") else object)
                for c in ORDER_LOG_COLUMNS})
        return pd.concat(self.orders, ignore_index=True)[ORDER_LOG_COLUMNS]

    def batch_work(self) -> AbstractContextManager[None]:
        """The block runs with :attr:`batch_threads` numba threads."""
        return numba_threads(self.batch_threads)

    def view_market(self) -> PricedMarket:
        """The priced market at the requirement marks (kept until a mark moves)."""
        if self._view is None:
            self._view = self.market.view()
        return self._view

    # ------------------------------------------------------------------------ internals

    def set_index(self, account_id: str, netting_set: str) -> int:
        """The set's number (opened when new), with room for it in every per-set array."""
        s = self.book.set_index(account_id, netting_set)
        self.ensure_room()
        return s

    def reset_view(self) -> None:
        """Forget the market view (a requirement mark moved)."""
        self._view = None

    def ensure_room(self) -> None:
        """Room for every set and position of the book in the per-set and per-position
        arrays."""
        n = self.book.n_sets
        if n > len(self.req):
            self.req.grow(n)
            size = len(self.req)
            self.due = _grown(self.due, size, False)
            self.refreshed_at = _grown(self.refreshed_at, size, 0)
            self.prior_refresh = _grown(self.prior_refresh, size, 0)
            self.previous = _grown(self.previous, size, np.nan)
            self.ordered = _grown(self.ordered, size, False)
        self.ledger.grow(n, self.book.n_positions)

    def open_sets(self) -> np.ndarray:
        """The sets holding an open position (set numbers, increasing)."""
        qty = self.book.qty.view
        return np.flatnonzero(np.bincount(self.book.set_of.view[qty != 0],
                                          minlength=self.book.n_sets) > 0)

    def event(self, t: pd.Timestamp, s: int, kind: str, *, before: int | None = None,
              detail: str = "") -> Event:
        """An event about set ``s``, with its figures now."""
        c = self.req.columns
        equity = float(self.ledger.equity[s])
        mm, im = float(c["maintenance_margin"][s]), float(c["initial_margin"][s])
        level = float(self.req.level(np.array([s]), np.array([equity]))[0])
        return Event(t, self.book.account[s], self.book.netting_set[s], kind,
                     "" if before is None else str(STATUS_NAMES[before]),
                     str(STATUS_NAMES[c["status"][s]]), equity, mm, im, level,
                     max(0.0, im - equity), detail)



def _grown(values: np.ndarray, n: int, fill: Any) -> np.ndarray:
    return np.concatenate([values, np.full(n - len(values), fill, dtype=values.dtype)])
