"""Partial liquidation: the smallest reduction that restores a netting set's margin, with a
liquidation penalty, computed on a run through the what-if engine.

For every netting set in ``liquidation`` (and, optionally, ``margin_call``), positions are reduced
riskiest first, by their Euler contribution to the model margin (``attribution.parquet``): the
riskiest position is closed by the smallest fraction that brings the set back to its target,
``equity_after >= target x initial_margin_after``; if no fraction of it is enough, it is
closed and the next one is reduced, and so on (coins held as collateral are revalued with the
book but never sold). ``equity_after = equity - penalty``: closing at
the mark realises nothing that variation margin has not already settled, but the venue charges
``penalty = rate x |notional closed|`` (rates per underlying, kind or default, as every rate
table). Every trial margin is the engine's own margin of the reduced book
(:func:`riskmodel.engine.margin_book` with ``detail="initial_margin"``: tail kernels, stress,
anti-procyclicality, add-ons, floors, the policy of the margin table without the table), so
the orders are checked by construction against the engine's margin.

The fraction of the position being reduced is the root of ``g(x) = equity_after(x) - target x
initial_margin_after(x)`` between a short point (``g < 0``) and a restored one (``g >= 0``),
found by the Illinois variant of regula falsi with a bisection step every third iteration (the
margin is piecewise linear in ``x``: regula falsi lands on a linear piece's root at once, the
bisection steps bound the worst case). ``g`` need not be monotone: closing the long leg of a
hedged pair lowers the margin at first and raises it once the short leg stands alone, so a set
still short with the position closed in full may be restored by part of it. The margin is
convex in the positions (ES, stress, add-ons, floors), so ``g`` is concave on ``[0, 1)``: when
the full close is short, :meth:`_Lockstep.interior` samples ``g`` where the secants of its
samples bound it highest, until a sample restores the set (the bracket of its smallest root) or
the bound proves no fraction does. The restored end of the bracket is reported, so the orders
always restore the target exactly, never approximately.

Two ways to run that search, with the same orders bit for bit (tested):

* from :data:`COMPILED_MIN_SETS` sets (an end-of-day run on a stressed day), in compiled code
  (:mod:`riskmodel.liquidation.search_kernels`), every set's whole search on its own, the sets
  shared among the threads; each trial margin is the engine's compiled margin of the reduced
  set (:mod:`riskmodel.engine.trials`, bitwise ``margin_book``'s, tested), and the loss of the
  positions not being reduced is formed once per position and reused by every trial;
* otherwise, and for what the compiled twin does not compose (weighted scenarios, the venue
  rule, tiered floors, a position carrying a concentration charge), in lockstep through
  ``margin_book`` itself: each iteration one margin evaluation of all the sets together. It
  compiles nothing of its own, which a few sets (the demo, the intraday loop's batches) favour.

``quantity_to_close`` carries the position's sign (a long of 10 closing 3.2 reports 3.2; the
closing trade is ``-quantity_to_close``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from riskmodel.config import RateTable, RunConfig
from riskmodel.engine import PricedMarket, margin_book
from riskmodel.engine.trials import trial_inputs, unsupported
from riskmodel.liquidation.search import SearchResult, SearchRows, base_book, compiled_search
from riskmodel.margin.policy import position_rates
from riskmodel.portfolio.netting import ZERO_TOLERANCE, Book
from riskmodel.pricing.revaluation import COLLATERAL_KIND

ORDER_COLUMNS = ["account_id", "netting_set", "instrument_id", "quantity_to_close",
                 "margin_after", "equity_after"]
SET_COLUMNS = ["account_id", "netting_set", "liquidation_penalty", "notional_liquidated",
               "margin_after", "equity_after", "restored"]
MAX_ITERATIONS = 200
# the bracket is closed when it is this narrow (relative to the position) ...
FRACTION_TOL = 1e-13
# ... or when the restored end is within this share of the set's scale of its root
SURPLUS_TOL = 1e-13
# from this many sets the compiled search (its first use compiles it, once); fewer go through
# margin_book in lockstep, which costs more per step but compiles nothing of its own
COMPILED_MIN_SETS = 256


def liquidated_statuses(config: RunConfig) -> tuple[str, ...]:
    """The statuses whose netting sets get liquidation orders (``[liquidation]
    include_margin_call``): eod's liquidation stage, the live loop and the waterfall."""
    return _liquidated(config.liquidation.include_margin_call)


def _liquidated(include_margin_call: bool) -> tuple[str, ...]:
    return ("liquidation", "margin_call") if include_margin_call else ("liquidation",)


@dataclass(frozen=True)
class LiquidationResult:
    """``orders`` (one row per position reduced, :data:`ORDER_COLUMNS`) and ``sets`` (one row per
    netting set considered, :data:`SET_COLUMNS`)."""

    orders: pd.DataFrame
    sets: pd.DataFrame


@dataclass(frozen=True, eq=False)
class _Engine:
    """What every trial margin needs besides the reduced book: the market, the policy, the
    previous run's model margin of each set (the buffer's input) and the account types."""

    market: PricedMarket
    config: RunConfig
    previous: dict[tuple[str, str], float] | None
    account_types: dict[str, str] | None

    def initial_margin(self, book: Book) -> np.ndarray:
        previous = None
        if self.previous is not None:
            previous = np.array([self.previous.get(k, np.nan) for k in
                                 zip(book.sets["account_id"], book.sets["netting_set"])],
                                dtype=np.float64)
        return margin_book(self.market, book, self.config, collateral=np.zeros(book.n_sets),
                           previous=previous, account_types=self.account_types,
                           detail="initial_margin").initial_margin


def partial_liquidation(
    market: PricedMarket,
    config: RunConfig,
    margins: pd.DataFrame,
    attribution: pd.DataFrame,
    *,
    previous: pd.DataFrame | None = None,
    account_types: dict[str, str] | None = None,
    target: float = 1.0,
    include_margin_call: bool = False,
    penalty: RateTable | None = None,
    compiled_min_sets: int = COMPILED_MIN_SETS,
    search_threads: int | None = None,
) -> LiquidationResult:
    """Liquidation orders for the under-margined netting sets of a margined book (module
    docstring).

    ``margins`` and ``attribution`` are the book's tables as the engine returned them
    (``status, equity, initial_margin`` per set, ``instrument_id, quantity, contribution`` per
    position; the rows of the sets to liquidate suffice); ``previous`` the previous run's
    ``account_id, netting_set, model_margin`` (the buffer's input, as the book was margined).
    ``compiled_min_sets``: from how many sets the compiled search runs (the same orders
    either way; a caller that liquidates a few sets at a time, the live loop, passes fewer);
    ``search_threads``: the compiled search's worker threads (default: numba's thread count).
    """
    if not target > 0:
        raise ValueError(f"target = {target!r} must be > 0")
    penalty = penalty or RateTable(default=0.0)
    chosen = margins.loc[margins["status"].isin(_liquidated(include_margin_call)),
                         ["account_id", "netting_set", "equity", "initial_margin"]]
    if chosen.empty:
        return LiquidationResult(pd.DataFrame(columns=ORDER_COLUMNS),
                                 pd.DataFrame(columns=SET_COLUMNS))
    # the chosen sets' positions, riskiest first within each set (stable: file order on ties)
    held = attribution[["account_id", "netting_set", "instrument_id", "quantity",
                        "contribution"]].merge(chosen, on=["account_id", "netting_set"])
    # coins held as collateral are never traded: they go last and are never reduced
    held["tradeable"] = (market.instruments.loc[held["instrument_id"], "kind"].to_numpy()
                         != COLLATERAL_KIND)
    held = held.sort_values(["account_id", "netting_set", "tradeable", "contribution"],
                            ascending=[True, True, False, False], kind="stable")
    by_key = None
    if previous is not None:
        by_key = dict(zip(zip(previous["account_id"], previous["netting_set"]),
                          previous["model_margin"].to_numpy(np.float64)))
    rows = _search_rows(market, chosen, held, penalty, by_key)
    outcome = SearchResult(np.zeros(len(rows.quantity)), np.zeros((len(rows.keys), 3)),
                           np.ones(len(rows.keys), dtype=np.int64))
    todo = np.arange(len(rows.keys))
    if len(todo) >= compiled_min_sets and unsupported(market, config) is None:
        # the compiled search, for every set whose trial margins the compiled twin composes
        book, to_book = base_book(rows)
        inputs = trial_inputs(market, book, config, previous=rows.previous,
                              account_types=account_types)
        concentrated = inputs.concentrated()
        outcome = compiled_search(rows, target, np.flatnonzero(~concentrated), inputs,
                                  to_book, threads=search_threads)
        todo = np.flatnonzero((outcome.code != 0) | concentrated)
    if len(todo):
        _reference(_Engine(market, config, by_key, account_types), rows, todo, target,
                   outcome)
    return _result(rows, outcome, target)


def _search_rows(market: PricedMarket, chosen: pd.DataFrame, held: pd.DataFrame,
                 penalty: RateTable, by_key: dict[tuple[str, str], float] | None
                 ) -> SearchRows:
    """The chosen sets (in their order) and their positions in search order, with the
    notional per unit and the penalty rate of each (as the margin tables count notional:
    ``|dV/dP x price|``, the face value for inverse contracts, delta-adjusted for options)."""
    keys = chosen[["account_id", "netting_set"]].reset_index(drop=True)
    code = pd.MultiIndex.from_frame(keys).get_indexer(
        pd.MultiIndex.from_frame(held[["account_id", "netting_set"]]))
    order = np.argsort(code, kind="stable")  # chosen order, search order within each set
    held = held.iloc[order]
    code = code[order]
    arrays = market.instrument_arrays
    ids = held["instrument_id"].to_numpy(dtype=object)
    index = market.axis.get_indexer(ids)
    counts = np.bincount(code, minlength=len(keys))
    set_ptr = np.zeros(len(keys) + 1, dtype=np.int64)
    np.cumsum(counts, out=set_ptr[1:])
    previous = np.full(len(keys), np.nan)
    if by_key is not None:
        previous = np.array([by_key.get(k, np.nan) for k in zip(keys["account_id"],
                                                                 keys["netting_set"])],
                            dtype=np.float64)
    return SearchRows(
        keys=keys, set_ptr=set_ptr, instrument_id=ids, index=index.astype(np.int64),
        quantity=held["quantity"].to_numpy(np.float64),
        unit_notional=np.abs(arrays.unit[index, 1] * arrays.price[index]),
        rate=position_rates(penalty, *arrays.per_position(index)),
        equity=chosen["equity"].to_numpy(np.float64),
        initial_margin=chosen["initial_margin"].to_numpy(np.float64),
        n_tradeable=np.bincount(code, weights=held["tradeable"].to_numpy(np.float64),
                                minlength=len(keys)).astype(np.int64),
        previous=previous)


def _reference(engine: _Engine, rows: SearchRows, todo: np.ndarray, target: float,
               outcome: SearchResult) -> None:
    """The lockstep search through :func:`riskmodel.engine.margin_book` itself for the sets
    ``todo``, written into ``outcome``: a few sets, or those the compiled path does not
    serve."""
    # a set without positions (a negative balance alone) has nothing to close
    sets = [_SetToLiquidate(rows, s) for s in todo]
    _Lockstep(engine, sets, target).run()
    for s, done in zip(todo, sets):
        outcome.fractions[rows.set_ptr[s]:rows.set_ptr[s + 1]] = done.fractions
        outcome.figures[s] = (done.margin_after, done.equity_after, done.notional)
        outcome.code[s] = 0


class _SetToLiquidate:
    """One netting set's positions, riskiest first, the fractions closed so far and the
    outcome (margin, equity, notional closed) at those fractions."""

    def __init__(self, rows: SearchRows, s: int) -> None:
        r0, r1 = rows.set_ptr[s], rows.set_ptr[s + 1]
        self.key = (rows.keys["account_id"].iat[s], rows.keys["netting_set"].iat[s])
        self.equity, self.initial_margin = float(rows.equity[s]), float(rows.initial_margin[s])
        self.instrument_id = rows.instrument_id[r0:r1]
        self.quantity = rows.quantity[r0:r1]
        self.unit_notional = rows.unit_notional[r0:r1]
        self.rates = rows.rate[r0:r1]
        self.n_tradeable = int(rows.n_tradeable[s])
        # the positions as the engine's netting orders them (by instrument id)
        self.book_order = np.argsort(self.instrument_id.astype(str), kind="stable")
        self.index = rows.index[r0:r1][self.book_order]
        self.fractions = np.zeros(len(self.quantity))
        equity, initial_margin = self.equity, self.initial_margin
        self.margin_after, self.equity_after, self.notional = initial_margin, equity, 0.0
        self.scale = max(abs(equity), initial_margin, 1.0)

    def closed_notional(self, fractions: np.ndarray) -> float:
        return float(np.sum(np.abs(fractions * self.quantity) * self.unit_notional))

    def equity_at(self, fractions: np.ndarray) -> float:
        notional = np.abs(fractions * self.quantity) * self.unit_notional
        return self.equity - float(np.sum(notional * self.rates))

    def remaining(self, fractions: np.ndarray) -> np.ndarray:
        return self.quantity * (1.0 - fractions)

    def keep(self, fractions: np.ndarray, margin: float) -> None:
        self.fractions = fractions.copy()
        self.margin_after, self.equity_after = margin, self.equity_at(fractions)
        self.notional = self.closed_notional(fractions)


class _Lockstep:
    """Advances every set's reduction together; one margin evaluation per step for all."""

    def __init__(self, engine: _Engine, sets: list[_SetToLiquidate], target: float) -> None:
        self.engine, self.sets, self.target = engine, sets, target

    def margins(self, trials: dict[int, np.ndarray]) -> dict[int, float]:
        """Initial margin of each set ``i`` with its positions reduced by ``trials[i]``: the
        engine's margin of the reduced book, netted as ``net_positions`` nets it (positions by
        instrument id, those netting to zero dropped)."""
        keys, index, quantity = [], [], []
        for i, f in trials.items():
            s = self.sets[i]
            q = s.remaining(f)[s.book_order]
            kept = (np.abs(q) > ZERO_TOLERANCE * np.abs(q)) & (q != 0)
            if kept.any():
                keys.append(s.key)
                index.append(s.index[kept])
                quantity.append(q[kept])
        found: dict[tuple[str, str], float] = {}
        if keys:
            indptr = np.zeros(len(keys) + 1, dtype=np.int64)
            np.cumsum([len(q) for q in quantity], out=indptr[1:])
            instrument_index = np.concatenate(index).astype(np.int64)
            book = Book(sets=pd.DataFrame(keys, columns=["account_id", "netting_set"]),
                        positions=pd.DataFrame({"instrument_index": instrument_index}),
                        indptr=indptr, instrument_index=instrument_index,
                        quantity=np.concatenate(quantity))
            found = dict(zip(keys, self.engine.initial_margin(book)))
        # a set closed entirely is absent from the book: it needs no margin
        return {i: found.get(self.sets[i].key, 0.0) for i in trials}

    def surplus(self, i: int, fractions: np.ndarray, margin: float) -> float:
        return self.sets[i].equity_at(fractions) - self.target * margin

    def run(self) -> None:
        current = {i: self.surplus(i, s.fractions, s.initial_margin)
                   for i, s in enumerate(self.sets)}
        active = [i for i, g in current.items() if g < 0 and self.sets[i].n_tradeable > 0]
        k = 0
        while active:
            # close position k in full: sets still short keep it closed and go on to k + 1
            trials = {}
            for i in active:
                trials[i] = self.sets[i].fractions.copy()
                trials[i][k] = 1.0
            full = self.margins(trials)
            brackets: dict[int, _Bracket] = {}
            short = {}
            for i in active:
                g1 = self.surplus(i, trials[i], full[i])
                if g1 < 0:
                    short[i] = g1
                else:
                    brackets[i] = _Bracket(0.0, 1.0, current[i], g1, g1, full[i])
            # closing k in full is not enough, but part of it may be (a hedge leg, a floor)
            found = self.interior(k, {i: current[i] for i in short})
            brackets.update(found)
            still_short = []
            for i, g1 in short.items():
                if i in found:
                    continue
                self.sets[i].keep(trials[i], full[i])
                current[i] = g1
                if k + 1 < self.sets[i].n_tradeable:
                    still_short.append(i)
            self.solve(k, brackets)
            active = still_short
            k += 1

    def interior(self, k: int, surplus_at_zero: dict[int, float]) -> dict[int, _Bracket]:
        """For sets still short with position ``k`` closed in full: a bracket ``g(lo) < 0 <=
        g(hi)`` inside ``(0, 1)`` where one exists, else none (the full close stands).

        The margin is convex in the positions (ES, stress worst loss, add-ons and floors are;
        VaR is not, for which this is a heuristic), so ``g`` is concave on ``[0, 1)`` (a full
        close may jump: a kind, and its horizon, leaves the set) and not monotone where
        closing part of a position unhedges the rest. The secant through two neighbouring
        samples of a concave function lies above it outside them: each step samples the
        highest point of that upper bound (the middle of a gap the samples do not bound yet),
        all sets together, until a sample restores the set or the bound is below zero."""
        samples = {i: ([0.0], [g0]) for i, g0 in surplus_at_zero.items()}
        found: dict[int, _Bracket] = {}
        for _ in range(MAX_ITERATIONS):
            trials = {}
            for i, (xs, gs) in list(samples.items()):
                x = _highest_bound(xs, gs)
                if x is None:  # no fraction restores it
                    del samples[i]
                    continue
                trials[i] = self.sets[i].fractions.copy()
                trials[i][k] = x
            if not trials:
                break
            margins = self.margins(trials)
            for i, trial in trials.items():
                x, g = trial[k], self.surplus(i, trial, margins[i])
                xs, gs = samples[i]
                j = int(np.searchsorted(xs, x))
                if g >= 0:  # every sample left of x is short: the smallest root is in between
                    found[i] = _Bracket(xs[j - 1], x, gs[j - 1], g, g, margins[i])
                    del samples[i]
                else:
                    xs.insert(j, x)
                    gs.insert(j, g)
        return found

    def solve(self, k: int, brackets: dict[int, _Bracket]) -> None:
        """Illinois regula falsi on position ``k``'s fraction, all bracketed sets together."""
        for it in range(MAX_ITERATIONS):
            open_ = {i: b for i, b in brackets.items()
                     if b.hi - b.lo > FRACTION_TOL
                     and b.surplus_hi > SURPLUS_TOL * self.sets[i].scale}
            if not open_:
                break
            trials = {}
            for i, b in open_.items():
                x = 0.5 * (b.lo + b.hi) if it % 3 == 2 else b.secant()
                trials[i] = self.sets[i].fractions.copy()
                trials[i][k] = x if b.lo < x < b.hi else 0.5 * (b.lo + b.hi)
            margins = self.margins(trials)
            for i, b in open_.items():
                b.update(trials[i][k], self.surplus(i, trials[i], margins[i]), margins[i])
        for i, b in brackets.items():
            fractions = self.sets[i].fractions.copy()
            fractions[k] = b.hi
            self.sets[i].keep(fractions, b.margin_hi)


def _highest_bound(xs: list[float], gs: list[float]) -> float | None:
    """Where to sample next a concave ``g`` on ``[0, 1)`` known at ``xs`` (sorted, from 0; all
    samples short): the highest point of the upper bound the samples give (on each gap, the
    lower of the secants of its two neighbouring pairs of samples, extended over it), or the
    middle of a gap that no secant bounds yet; ``None`` once the bound is below zero
    everywhere (no fraction restores the set) or the gap to sample is too narrow."""
    n = len(xs)
    ends = [*xs[1:], 1.0]
    best, where = -np.inf, None
    for i in range(n):
        a, b = xs[i], ends[i]
        lines = []  # (slope, value at a)
        if i >= 1:
            slope = (gs[i] - gs[i - 1]) / (xs[i] - xs[i - 1])
            lines.append((slope, gs[i]))
        if i + 2 < n:
            slope = (gs[i + 2] - gs[i + 1]) / (xs[i + 2] - xs[i + 1])
            lines.append((slope, gs[i + 1] + slope * (a - xs[i + 1])))
        if b - a <= FRACTION_TOL:
            continue
        if not lines:
            return 0.5 * (a + b)
        points = [a, b]
        if len(lines) == 2 and lines[0][0] != lines[1][0]:
            cross = a + (lines[1][1] - lines[0][1]) / (lines[0][0] - lines[1][0])
            if a < cross < b:
                points.append(cross)
        for x in points:
            bound = min(v + s * (x - a) for s, v in lines)
            if bound > best:
                best, where = bound, (x, a, b)
    if where is None or best < 0:
        return None
    x, a, b = where
    # an end of the gap is a sample (or the full close): sample inside instead
    if x - a <= 1e-9 * (b - a) or b - x <= 1e-9 * (b - a):
        x = 0.5 * (a + b)
    return x


@dataclass
class _Bracket:
    """``g(lo) < 0 <= g(hi)``; ``weight_lo`` and ``weight_hi`` are the Illinois-weighted
    surpluses the secant uses, ``surplus_hi`` the true one at ``hi``."""

    lo: float
    hi: float
    weight_lo: float
    weight_hi: float
    surplus_hi: float
    margin_hi: float
    side: int = 0  # the end moved last: -1 lo, +1 hi

    def secant(self) -> float:
        return self.hi - self.weight_hi * (self.hi - self.lo) / (self.weight_hi - self.weight_lo)

    def update(self, x: float, g: float, margin: float) -> None:
        if g >= 0:
            if self.side > 0:  # hi moved twice: the lo end is stuck, halve its weight
                self.weight_lo *= 0.5
            self.hi, self.weight_hi, self.surplus_hi, self.margin_hi, self.side = \
                x, g, g, margin, 1
        else:
            if self.side < 0:
                self.weight_hi *= 0.5
            self.lo, self.weight_lo, self.side = x, g, -1


def _result(rows: SearchRows, outcome: SearchResult, target: float) -> LiquidationResult:
    """The orders (one per position reduced, sets in their order, riskiest first) and the sets'
    outcomes."""
    set_of = np.repeat(np.arange(len(rows.keys)), np.diff(rows.set_ptr))
    closed = np.flatnonzero(outcome.fractions != 0)
    margin_after, equity_after, notional = outcome.figures.T
    account = rows.keys["account_id"].to_numpy(dtype=object)
    netting_set = rows.keys["netting_set"].to_numpy(dtype=object)
    orders = pd.DataFrame(columns=ORDER_COLUMNS)
    if len(closed):
        owner = set_of[closed]
        orders = pd.DataFrame({
            "account_id": account[owner], "netting_set": netting_set[owner],
            "instrument_id": rows.instrument_id[closed],
            "quantity_to_close": outcome.fractions[closed] * rows.quantity[closed],
            "margin_after": margin_after[owner], "equity_after": equity_after[owner]},
            columns=ORDER_COLUMNS)
    sets = pd.DataFrame({
        "account_id": account, "netting_set": netting_set,
        "liquidation_penalty": rows.equity - equity_after, "notional_liquidated": notional,
        "margin_after": margin_after, "equity_after": equity_after,
        "restored": equity_after >= target * margin_after}, columns=SET_COLUMNS)
    return LiquidationResult(orders, sets)
