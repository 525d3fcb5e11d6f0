"""One scenario from its move to its last close-out: rounds of engine decisions, and with
``--cascade`` the price impact of the close-outs until a fixed point.

Round ``r`` at moves ``x_r`` (``x_0`` the scenario's):

1. every instrument whose price or vol moved is repriced (instant P&L); each open set's equity
   is ``equity + realised closes + positions x P&L(x_r)``;
2. sets the round's new marks do not touch keep their decision: at ``x_0`` a set holding
   nothing the scenario moves is where the run left it, so the run's own liquidations
   (computed once, the ``eod`` liquidation stage's orders) apply to it as they are;
3. each touched open set is decided: equity <= 0, closed in full; otherwise a *candidate* for
   the engine when its equity is below ``(1 + band x m)`` times its maintenance margin scaled
   pro rata to the move since its last exact figure (the liquidation map's rule, exact at no
   move; ``m`` the largest price or vol move of its underlyings since then; the last exact
   figure is the run's, the engine's at an earlier round, or the initial margin after a
   partial liquidation, which bounds the maintenance margin from above). The engine
   re-margins every candidate at ``x_r`` (:class:`riskmodel.waterfall.closeout.Liquidator`);
   other sets are not in liquidation;
4. sets in liquidation are closed (partially or in full), paying slippage and penalty.

With ``--cascade`` the closing trades of every close so far (signed notional at the current
prices) move each underlying by the liquidation map's square-root impact
(:meth:`riskmodel.liquidation.map.Cascade.flow_impact`), ``x_{r+1} = x_0 + I(flow)`` (no price
below zero), and the rounds go on until the prices stand still (to 1e-12) or
``[liquidation] cascade_max_rounds`` is reached (a note says so). A set closed in full stays
closed; a set reduced in part is decided again whenever its marks move. A set the partial
liquidation restored is not liquidated again at the same marks for its own slippage.

The band starts at ``[waterfall] screen_band`` and adapts: for the candidates the engine
margined, the slope ``(MM_engine - MM_pro_rata) / (MM_pro_rata x m)`` is measured; when its
largest value passes half the band, the band becomes twice that slope (at most
:data:`MAX_BAND`) and the screen runs again over the sets not yet margined, until no
candidate shows a slope beyond half the band. Option books, whose requirement grows faster
than the price level, widen it; linear books keep it. ``screen_band = inf`` re-margins every
set the scenario moves.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from riskmodel.waterfall.book import WaterfallBook
from riskmodel.waterfall.closeout import Liquidator, Orders, State
from riskmodel.waterfall.remark import Marks
from riskmodel.waterfall.scenarios import NOW, Scenario
from riskmodel.waterfall.slippage import Slippage

PRICE_TOL = 1e-12  # the liquidation map's cascade tolerance
TIE = 1e-9  # equity within this share of the pro-rata requirement always goes to the engine
MAX_BAND = 1e3  # the screen's band widens up to this


@dataclass(eq=False)
class Outcome:
    """A scenario after its last round: the state, the final marks, each instrument's instant
    P&L per unit and signed notional per unit there, and each set's equity there."""

    scenario: Scenario
    state: State
    marks: Marks
    unit_pnl: np.ndarray
    exposure: np.ndarray
    equity: np.ndarray
    rounds: int
    notes: tuple[str, ...]


class ScenarioRunner:
    """Runs scenarios on one book; the run's own liquidations are computed once."""

    def __init__(self, book: WaterfallBook, cascade: bool = False) -> None:
        self.book, self.cascade = book, cascade
        self.slippage = Slippage.of(book.config, book.view.factors,
                                    book.cascade.sigma)
        self.liquidator = Liquidator(book, self.slippage)
        self.baseline = self._baseline()

    def _baseline(self) -> Orders:
        """The run's liquidations at today's marks: its sets in liquidation (the run's own
        statuses), closed as the liquidation stage closes them."""
        b = self.book
        state = State.start(b)
        n = len(b.view.factors)
        marks = Marks(b.view, Scenario(NOW, NOW, np.zeros(n), np.zeros(n, bool)), np.zeros(n))
        sets = np.flatnonzero(b.liquidated0)
        return self._orders(state, marks, sets, b.equity0, b.view.exposure0)

    def _orders(self, state: State, marks: Marks, sets: np.ndarray, equity: np.ndarray,
                exposure: np.ndarray) -> Orders:
        """Orders for ``sets`` in liquidation at ``marks``: in full where equity <= 0 or
        ``closeout = "full"``, else the liquidation stage's partial orders."""
        broke = sets[equity[sets] <= 0]
        rest = sets[equity[sets] > 0]
        if self.book.wcfg.closeout == "full":
            return self.liquidator.full(state, sets, exposure)
        return Orders.join(self.liquidator.full(state, broke, exposure),
                           self.liquidator.partial(state, marks, rest, equity))

    def run(self, scenario: Scenario) -> Outcome:
        """Every round of ``scenario`` (module docstring)."""
        b = self.book
        state = State.start(b)
        x0 = scenario.moves.astype(np.float64)
        x = x0.copy()
        notes: dict[str, None] = {}
        rounds = 0
        while True:
            marks = Marks(b.view, scenario, x)
            previous = state.marks[-1] if state.marks else None
            state.marks.append(marks)
            unit_pnl, exposure, equity = self._round(state, marks, previous, len(state.marks) - 1)
            if not self.cascade:
                break
            impact, found = b.cascade.flow_impact(self._flow(state, exposure))
            notes.update(dict.fromkeys(found))
            x_next = np.maximum(x0 + impact, -1.0 + 1e-12)
            if np.max(np.abs(x_next - x), initial=0.0) <= PRICE_TOL:
                break
            if rounds >= b.config.liquidation.cascade_max_rounds:
                notes[f"{scenario.label}: the cascade had not converged after "
                      f"{rounds} rounds ([liquidation] cascade_max_rounds)"] = None
                break
            rounds += 1
            x = x_next
        return Outcome(scenario, state, marks, unit_pnl, exposure, equity, rounds, tuple(notes))

    def _round(self, state: State, marks: Marks, previous: Marks | None, r: int
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        b = self.book
        moved = marks.changed()
        unit_pnl = np.zeros(b.n_instruments)
        unit_pnl[moved] = marks.unit_pnl(moved)
        exposure = b.view.exposure0.copy()
        exposure[moved] = marks.exposure(moved)
        equity = self._equity(state, unit_pnl, moved)
        changed = moved if previous is None else marks.changed(previous)
        touched = b.sets_holding(changed)
        touched = touched[~state.closed_full[touched]]
        if r == 0:  # untouched sets: the run's own liquidations, as they are
            idle = np.setdiff1d(np.flatnonzero(b.liquidated0), touched)
            self.liquidator.close(state, self.baseline.of_sets(b, idle), unit_pnl, exposure,
                                  equity)
        broke = touched[equity[touched] <= 0]
        liquidated = self._decide(state, marks, r, touched[equity[touched] > 0], equity)
        sets = np.concatenate([broke, liquidated])
        orders = self._orders(state, marks, np.sort(sets), equity, exposure)
        self.liquidator.close(state, orders, unit_pnl, exposure, equity)
        return unit_pnl, exposure, equity

    def _equity(self, state: State, unit_pnl: np.ndarray, moved: np.ndarray) -> np.ndarray:
        """Each set's equity at the marks: the run's, the closes realised so far, and the P&L
        of what it holds now."""
        b = self.book
        held = np.zeros(b.n_sets)
        if len(moved):
            held = np.asarray(b.by_instrument[:, moved] @ unit_pnl[moved]).ravel()
        if state.modified:  # positions closed since: their change of quantity
            mask = np.zeros(len(state.q), bool)
            for rows in state.modified:
                mask[rows] = True
            pos = np.flatnonzero(mask)
            change = (state.q[pos] - b.quantity[pos]) * unit_pnl[b.instrument[pos]]
            held = held + np.bincount(b.set_of[pos], change, minlength=b.n_sets)
        return b.equity0 + state.realised + held

    def _decide(self, state: State, marks: Marks, r: int, sets: np.ndarray,
                equity: np.ndarray) -> np.ndarray:
        """The sets among ``sets`` (equity > 0) in liquidation at ``marks``: the screen's
        candidates, margined by the engine. The band widens to twice the largest slope the
        engine shows over the pro-rata rule, and the screen runs again on the sets not yet
        margined, until no candidate shows a slope beyond half the band."""
        band = self.book.wcfg.screen_band
        done = np.zeros(len(sets), bool)
        out = []
        while True:
            chosen, mm_pro_rata, size = self._screen(state, marks, sets[~done], equity, band)
            if len(chosen) == 0:
                break
            liquidated, mm = self.liquidator.statuses(state, marks, chosen, equity)
            done[np.isin(sets, chosen)] = True
            out.append(chosen[liquidated])
            slope = _slope(mm, mm_pro_rata, size)
            state.max_slope = max(state.max_slope, slope)
            state.mm_ref[chosen] = mm
            state.ref_round[chosen] = r
            if not slope > band / 2 or band >= MAX_BAND:
                break
            band = min(2.0 * slope, MAX_BAND)
        state.band = max(state.band, band)
        return np.concatenate(out) if out else np.zeros(0, np.int64)

    def _screen(self, state: State, marks: Marks, sets: np.ndarray, equity: np.ndarray,
                band: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(candidates, their pro-rata maintenance margin, their move size)`` among
        ``sets`` (module docstring)."""
        b = self.book
        keep = np.zeros(len(sets), bool)
        mm = np.zeros(len(sets))
        size = np.zeros(len(sets))
        for ref in np.unique(state.ref_round[sets]):
            at = np.flatnonzero(state.ref_round[sets] == ref)
            grp = sets[at]
            since = state.marks[ref] if ref >= 0 else None
            x_ref = np.zeros_like(marks.x) if since is None else since.x
            share = b.share[grp]
            scale = (1.0 + share @ marks.x) / (1.0 + share @ x_ref)
            mm[at] = state.mm_ref[grp] * scale
            size[at] = _move_size(b, marks, since, grp)
            keep[at] = equity[grp] < mm[at] * (1.0 + band * size[at]) * (1.0 + TIE)
        return sets[keep], mm[keep], size[keep]

    def _flow(self, state: State, exposure: np.ndarray) -> np.ndarray:
        """Signed notional of every closing trade so far at the current prices, per factor
        (selling a long is negative)."""
        b = self.book
        pos, qty, _ = state.closes()
        instr = b.instrument[pos]
        return np.bincount(b.view.factor_of[instr], -qty * exposure[instr],
                           minlength=len(b.view.factors)).astype(np.float64)


def _slope(mm: np.ndarray, mm_pro_rata: np.ndarray, size: np.ndarray) -> float:
    """The largest ``(MM_engine - MM_pro_rata) / (MM_pro_rata x size)`` (0 if none)."""
    ok = (size > 1e-6) & (mm_pro_rata > 0)
    if not ok.any():
        return 0.0
    return max(float(((mm[ok] - mm_pro_rata[ok]) / (mm_pro_rata[ok] * size[ok])).max()), 0.0)


def _move_size(book: WaterfallBook, marks: Marks, since: Marks | None, sets: np.ndarray
               ) -> np.ndarray:
    """Largest relative move of price or implied vol on each set's underlyings since the
    marks ``since`` (today's when None), shape (len(sets),)."""
    v = book.view
    x_ref = np.zeros_like(marks.x) if since is None else since.x
    per_factor = np.abs(marks.x - x_ref)
    options = np.flatnonzero(v.option)
    if len(options):
        ref = np.ones(len(v.option)) if since is None else since.vol_factor()
        change = np.abs(marks.vol_factor()[options] / ref[options] - 1.0)
        np.maximum.at(per_factor, v.factor_of[options], change)
    if not per_factor.any():
        return np.zeros(len(sets))
    weighted = book.pattern[sets].multiply(per_factor[None, :])
    return np.asarray(weighted.max(axis=1).todense()).ravel()
