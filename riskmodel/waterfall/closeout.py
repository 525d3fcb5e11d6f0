"""Liquidation decisions and close-outs at a scenario's prices, through the engine.

Which sets end in liquidation at the scenario's marks, and what the ``eod`` liquidation stage
would close there, come from the engine on the run's market re-marked at those marks
(:func:`riskmodel.waterfall.remark.remarked_market`): :func:`riskmodel.engine.margin_book`
gives each candidate's status (``equity(x) < maintenance margin(x)``), and
:func:`riskmodel.liquidation.partial.partial_liquidation` the orders of those in liquidation
(``[waterfall] closeout = "partial"``). A set whose equity at the marks is zero or below is in
liquidation whatever its requirement and no reduction restores it (equity after any
penalty stays below ``target x IM >= 0``): it is closed in full without asking the engine,
which is what ``partial_liquidation`` would order.

A close at marks ``x`` realises the positions' P&L at ``x``, then costs the close-out
slippage (:mod:`riskmodel.waterfall.slippage`) and the penalty (``[liquidation]
penalty_rates`` on the notional closed at ``x``, as the liquidation stage charges it). The
penalty is collected only from what the set has left after slippage; what slippage takes
beyond the set's equity is its **bankruptcy loss**::

    bankruptcy = max(0, slippage - equity(x))
    collected  = min(penalty, max(0, equity(x) - slippage))
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from riskmodel.engine import PricedMarket, margin_book
from riskmodel.liquidation.partial import liquidated_statuses, partial_liquidation
from riskmodel.portfolio.collateral import previous_margins
from riskmodel.portfolio.netting import Book, net_positions
from riskmodel.waterfall.book import WaterfallBook
from riskmodel.waterfall.remark import Marks, remarked_market
from riskmodel.waterfall.slippage import Slippage


@dataclass
class Orders:
    """Closes decided at one set of marks: position rows, quantity closed (signed as the
    position), the penalty charged per set (``penalty[set]``), the sets closed in full and
    the initial margin after of the sets reduced in part (``margin_after[set]``)."""

    pos: np.ndarray
    qty: np.ndarray
    penalty: dict[int, float]
    full: np.ndarray
    margin_after: dict[int, float] = field(default_factory=dict)

    @classmethod
    def empty(cls) -> Orders:
        return cls(np.zeros(0, np.int64), np.zeros(0), {}, np.zeros(0, np.int64))

    def of_sets(self, book: WaterfallBook, sets: np.ndarray) -> Orders:
        """The orders of ``sets`` only."""
        keep = np.isin(book.set_of[self.pos], sets)
        chosen = set(sets.tolist())
        return Orders(self.pos[keep], self.qty[keep],
                      {s: p for s, p in self.penalty.items() if s in chosen},
                      self.full[np.isin(self.full, sets)],
                      {s: m for s, m in self.margin_after.items() if s in chosen})

    @classmethod
    def join(cls, first: Orders, second: Orders) -> Orders:
        return cls(np.concatenate([first.pos, second.pos]),
                   np.concatenate([first.qty, second.qty]),
                   {**first.penalty, **second.penalty}, np.concatenate([first.full, second.full]),
                   {**first.margin_after, **second.margin_after})


@dataclass
class State:
    """One scenario's book as its close-outs change it (per set unless said)."""

    q: np.ndarray  # current quantity per position
    realised: np.ndarray
    liquidated: np.ndarray
    closed_full: np.ndarray
    reduced: np.ndarray  # closed at least in part
    penalty: np.ndarray  # charged
    collected: np.ndarray
    slippage: np.ndarray
    bankrupt: np.ndarray
    notional: np.ndarray
    mm_ref: np.ndarray  # the last exact maintenance margin, at the marks of round ref_round
    ref_round: np.ndarray
    marks: list[Marks] = field(default_factory=list)  # per round
    close_pos: list[np.ndarray] = field(default_factory=list)
    close_qty: list[np.ndarray] = field(default_factory=list)
    close_notional: list[np.ndarray] = field(default_factory=list)
    modified: list[np.ndarray] = field(default_factory=list)
    engine_sets: int = 0
    max_slope: float = 0.0
    band: float = 0.0  # the widest screen band a round used

    @classmethod
    def start(cls, book: WaterfallBook) -> State:
        n = book.n_sets
        z = np.zeros(n)
        return cls(book.quantity.copy(), z.copy(), np.zeros(n, bool), np.zeros(n, bool),
                   np.zeros(n, bool), z.copy(), z.copy(), z.copy(), z.copy(), z.copy(),
                   book.mm0.copy(), np.full(n, -1, dtype=np.int64))

    def closes(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Every close so far: position rows, quantities, notionals at their close marks."""
        if not self.close_pos:
            return np.zeros(0, np.int64), np.zeros(0), np.zeros(0)
        return (np.concatenate(self.close_pos), np.concatenate(self.close_qty),
                np.concatenate(self.close_notional))


class Liquidator:
    """The engine's decisions and orders at given marks, and their accounting."""

    def __init__(self, book: WaterfallBook, slippage: Slippage) -> None:
        self.book, self.slippage = book, slippage
        self._market: tuple[Marks, np.ndarray, PricedMarket] | None = None

    # --- the engine --------------------------------------------------------------------------

    def sub_book(self, state: State, marks: Marks, sets: np.ndarray
                 ) -> tuple[Book, PricedMarket, np.ndarray]:
        """``(book, market, the netting set of each of the book's sets)``: the open positions of
        ``sets`` netted on the axis of the market re-marked at ``marks`` that serves them (one
        per marks, rebuilt when it lacks an instrument they hold)."""
        b = self.book
        pos = b.positions_of(sets)
        pos = pos[state.q[pos] != 0]
        market = self.market(marks, np.unique(b.instrument[pos]))
        rows = pd.DataFrame({"account_id": b.account_id[b.set_of[pos]],
                             "netting_set": b.netting_set[b.set_of[pos]],
                             "instrument_id": b.view.market.axis.to_numpy()[b.instrument[pos]],
                             "quantity": state.q[pos]})
        sub = net_positions(rows, market.axis)
        keys = pd.MultiIndex.from_arrays([sub.sets["account_id"].astype(str),
                                          sub.sets["netting_set"].astype(str)])
        return sub, market, b.set_key.get_indexer(keys).astype(np.int64)

    def market(self, marks: Marks, cols: np.ndarray) -> PricedMarket:
        """The market re-marked at ``marks`` over (at least) the instruments ``cols``: the
        last one built for these marks when it holds them all (its axis may hold more)."""
        cached = self._market
        if cached is not None and cached[0] is marks and np.isin(cols, cached[1]).all():
            return cached[2]
        if cached is not None and cached[0] is marks:  # grow it: the round's sets share it
            cols = np.union1d(cols, cached[1])
        market = remarked_market(marks, cols)
        self._market = (marks, cols, market)
        return market

    def margins(self, market: PricedMarket, sub: Book, equity: np.ndarray, detail: str):
        b = self.book
        return margin_book(market, sub, b.config, collateral=equity,
                           previous=previous_margins(b.run.previous, sub.sets),
                           account_types=b.account_types, detail=detail)  # type: ignore[arg-type]

    def statuses(self, state: State, marks: Marks, sets: np.ndarray, equity: np.ndarray
                 ) -> tuple[np.ndarray, np.ndarray]:
        """``(in liquidation, maintenance margin)`` of ``sets`` at ``marks``, by the engine."""
        if len(sets) == 0:
            return np.zeros(0, bool), np.zeros(0)
        sub, market, idx = self.sub_book(state, marks, sets)
        figures = self.margins(market, sub, equity[idx], "figures").figures
        assert figures is not None
        state.engine_sets += len(idx)
        where = pd.Index(idx).get_indexer(sets)
        status = np.asarray(figures["status"], dtype=object)[where]
        liquidated = np.isin(status, liquidated_statuses(self.book.config))
        return liquidated, np.asarray(figures["maintenance_margin"], np.float64)[where]

    def partial(self, state: State, marks: Marks, sets: np.ndarray, equity: np.ndarray
                ) -> Orders:
        """The liquidation stage's orders for ``sets`` (in liquidation at ``marks``, equity
        > 0): partial liquidation on the re-marked market."""
        if len(sets) == 0:
            return Orders.empty()
        b = self.book
        sub, market, idx = self.sub_book(state, marks, sets)
        tables = self.margins(market, sub, equity[idx], "tables")
        policy = b.config.liquidation
        result = partial_liquidation(
            market, b.config, tables.margins, tables.attribution, previous=b.run.previous,
            account_types=b.account_types, target=policy.target_margin_level,
            include_margin_call=policy.include_margin_call, penalty=policy.penalty_rates)
        orders, per_set = result.orders, result.sets
        owner = b.set_key.get_indexer(pd.MultiIndex.from_arrays(
            [orders["account_id"].astype(str), orders["netting_set"].astype(str)]))
        instrument = b.view.market.axis.get_indexer(orders["instrument_id"])
        pos = b.position_key.get_indexer(owner.astype(np.int64) * b.n_instruments
                                         + instrument)
        qty = orders["quantity_to_close"].to_numpy(np.float64)
        owners = b.set_key.get_indexer(pd.MultiIndex.from_arrays(
            [per_set["account_id"].astype(str), per_set["netting_set"].astype(str)]))
        penalty = dict(zip(owners.tolist(), per_set["liquidation_penalty"].astype(float)))
        after = dict(zip(owners.tolist(), per_set["margin_after"].astype(float)))
        left = state.q.copy()
        left[pos] -= qty
        full = np.array([s for s in sets.tolist() if _flat(b, left, s)], dtype=np.int64)
        return Orders(pos.astype(np.int64), qty, penalty, full, after)

    def full(self, state: State, sets: np.ndarray, exposure: np.ndarray) -> Orders:
        """Close every traded position of ``sets`` in full; the penalty as the liquidation
        stage charges it (rate x |notional| at the marks of ``exposure``)."""
        b = self.book
        pos = b.positions_of(sets)
        pos = pos[b.tradeable[pos] & (state.q[pos] != 0)]
        qty = state.q[pos]
        charge = np.abs(qty * exposure[b.instrument[pos]]) * b.rate[b.instrument[pos]]
        total = np.bincount(b.set_of[pos], charge, minlength=b.n_sets)
        return Orders(pos, qty, {int(s): float(total[s]) for s in sets}, sets.astype(np.int64))

    # --- accounting --------------------------------------------------------------------------

    def close(self, state: State, orders: Orders, unit_pnl: np.ndarray, exposure: np.ndarray,
              equity: np.ndarray) -> None:
        """Apply ``orders`` at marks where each instrument's instant P&L per unit is
        ``unit_pnl`` and its signed notional per unit ``exposure`` (module docstring)."""
        b = self.book
        sets = np.array(sorted(set(orders.penalty) | set(b.set_of[orders.pos].tolist())),
                        dtype=np.int64)
        if len(sets) == 0:
            return
        pos, qty = orders.pos, orders.qty
        instr = b.instrument[pos]
        signed = qty * exposure[instr]
        slip = self.set_slippage(pos, signed)
        pnl = np.bincount(b.set_of[pos], qty * unit_pnl[instr], minlength=b.n_sets)
        eq = equity[sets]
        s = slip[sets]
        charged = np.array([orders.penalty.get(int(k), 0.0) for k in sets])
        collected = np.minimum(charged, np.maximum(eq - s, 0.0))
        state.bankrupt[sets] += np.maximum(s - eq, 0.0)
        state.realised[sets] += pnl[sets] - s - collected
        state.penalty[sets] += charged
        state.collected[sets] += collected
        state.slippage[sets] += s
        state.notional[sets] += np.bincount(b.set_of[pos], np.abs(signed),
                                            minlength=b.n_sets)[sets]
        state.q[pos] -= qty
        state.liquidated[sets] = True
        state.closed_full[orders.full] = True
        state.reduced[sets] = True
        if orders.margin_after:  # a restored set's requirement now: its initial margin
            # after (>= its maintenance margin), the reference of the screen from here on
            reduced = np.array(list(orders.margin_after), dtype=np.int64)
            state.mm_ref[reduced] = list(orders.margin_after.values())
            state.ref_round[reduced] = len(state.marks) - 1
        state.modified.append(pos)
        state.close_pos.append(pos)
        state.close_qty.append(qty)
        state.close_notional.append(np.abs(signed))

    def set_slippage(self, pos: np.ndarray, signed: np.ndarray) -> np.ndarray:
        """Slippage per netting set (n_sets,) of closing the signed notionals ``signed`` of
        the positions ``pos`` (a positive notional is sold)."""
        b = self.book
        n_factors = len(b.view.factors)
        entry = b.set_of[pos].astype(np.int64) * n_factors + b.view.factor_of[b.instrument[pos]]
        keys, inverse = np.unique(entry, return_inverse=True)
        sells = np.bincount(inverse, np.maximum(signed, 0.0), minlength=len(keys))
        buys = np.bincount(inverse, np.maximum(-signed, 0.0), minlength=len(keys))
        cost = self.slippage.cost(keys % n_factors, sells, buys)
        return np.bincount(keys // n_factors, cost, minlength=b.n_sets)


def _flat(book: WaterfallBook, q: np.ndarray, s: int) -> bool:
    pos = np.arange(book.indptr[s], book.indptr[s + 1])
    return not np.any((q[pos] != 0) & book.tradeable[pos])
