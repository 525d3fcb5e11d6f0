"""The clearing-house view: each member's stress loss beyond margin, and the default fund that
covers the defaults of the members with the largest ones (cover-N).

In a scenario, a member's *exposure* is what its default would cost beyond the margin held:

    loss_m     = - P&L of all its positions at the scenario's final prices (coin collateral
                 included) + the slippage of closing all its traded positions there
    exposure_m = max(0, loss_m - margin held_m)

over all its netting sets together (the member is one legal entity: its margin covers all its
positions), with ``margin held = min(initial margin, max(equity, 0))`` per set: the initial
margin required, or the collateral where the member holds less (collateral beyond the
requirement can be withdrawn at any time, so it is not counted). The default is of the
member's whole book as the run holds it (the clearing house closes everything), at the
scenario's final prices (after the cascade with ``--cascade``).

Cover-k in a scenario is the sum of the k largest exposures; the fund for cover-k is its
largest value over the scenarios, and that scenario is the *worst* for cover-k
(``[waterfall] cover`` = N; cover-1 and cover-2 are always reported). EMIR Article 42(3)'s
minimum, ``max(largest, second + third)``, is reported beside them.

Each member's share of the cover-N fund is its peak exposure over all scenarios divided by
the sum of every member's peak: members who could cost the fund more pay more, whether or not
they are among the N in the worst scenario (a mutualised fund sized on everyone's uncovered
stress exposure, as clearing houses apportion default-fund contributions).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from riskmodel.waterfall.book import WaterfallBook
from riskmodel.waterfall.closeout import Liquidator
from riskmodel.waterfall.rounds import Outcome

COVER_COLUMNS = ["member", "n_accounts", "n_netting_sets", "initial_margin", "margin_held",
                 "peak_exposure", "peak_scenario", "cover_exposure", "cover_rank", "share",
                 "contribution"]


class FullClose:
    """Slippage of closing every traded position of every set at a scenario's prices,
    recomputed only for the underlyings the scenario moved."""

    def __init__(self, book: WaterfallBook, liquidator: Liquidator) -> None:
        self.book, self.liquidator = book, liquidator
        traded = np.flatnonzero(book.tradeable)
        factor = book.view.factor_of[book.instrument[traded]]
        order = np.argsort(factor, kind="stable")
        self.pos = traded[order]
        self.start = np.searchsorted(factor[order], np.arange(len(book.view.factors) + 1))
        self.by_factor = [self._cost(f, book.view.exposure0) for f in
                          range(len(book.view.factors))]
        self.base = np.sum(self.by_factor, axis=0) if self.by_factor else np.zeros(book.n_sets)

    def _cost(self, factor: int, exposure: np.ndarray) -> np.ndarray:
        pos = self.pos[self.start[factor]:self.start[factor + 1]]
        signed = self.book.quantity[pos] * exposure[self.book.instrument[pos]]
        return self.liquidator.set_slippage(pos, signed)

    def slippage(self, outcome: Outcome) -> np.ndarray:
        """Per set (n_sets,), at the outcome's final prices."""
        out = self.base.copy()
        changed = np.unique(self.book.view.factor_of[outcome.marks.changed()])
        for f in changed.tolist():
            out += self._cost(f, outcome.exposure) - self.by_factor[f]
        return out


@dataclass
class CoverState:
    """Running cover figures over some scenarios (module docstring), mergeable: ``peak`` and
    ``peak_scenario`` per member; ``best[k] = (fund, scenario, members)`` for each cover-k;
    ``worst`` each member's exposure in cover-N's worst scenario; ``art42 = (fund,
    scenario)``. Ties go to the earlier scenario, so merging the states of any split of the
    scenarios gives the state of one pass."""

    peak: np.ndarray
    peak_scenario: np.ndarray
    best: dict[int, tuple[float, int, list[str]]] = field(default_factory=dict)
    worst: np.ndarray | None = None
    art42: tuple[float, int] = (0.0, -1)

    def merge(self, other: CoverState, n: int) -> None:
        """Fold ``other`` (another split of the scenarios) into this state."""
        take = (other.peak > self.peak) | ((other.peak == self.peak) & (other.peak > 0)
                                           & (other.peak_scenario < self.peak_scenario))
        self.peak[take] = other.peak[take]
        self.peak_scenario[take] = other.peak_scenario[take]
        for k, (value, index, members) in other.best.items():
            if k not in self.best or _before((value, index), self.best[k][:2]):
                self.best[k] = (value, index, members)
                if k == n:
                    self.worst = other.worst
        if _before(other.art42, self.art42):
            self.art42 = other.art42


def _before(a: tuple[float, int], b: tuple[float, int]) -> bool:
    """Whether ``a = (value, scenario)`` beats ``b``: larger, or equal and earlier."""
    if b[1] < 0:
        return a[1] >= 0
    return a[0] > b[0] or (a[0] == b[0] and 0 <= a[1] < b[1])


class CoverTracker:
    """Adds scenarios to a :class:`CoverState` and turns it into the outputs."""

    def __init__(self, book: WaterfallBook, full_close: FullClose, n: int) -> None:
        self.book, self.full_close, self.n = book, full_close, n
        m = book.members
        margin = np.minimum(book.im0, np.maximum(book.equity0, 0.0))
        self.held = np.bincount(m.of_set, margin, minlength=m.n_members)
        self.ks = sorted({1, 2, 3, n})

    def start(self) -> CoverState:
        m = self.book.members.n_members
        return CoverState(np.zeros(m), np.full(m, -1, dtype=np.int64))

    def add(self, state: CoverState, index: int, outcome: Outcome) -> dict[str, float]:
        """Record scenario ``index``; returns its ``cover_1, cover_2`` (and ``cover_N``)."""
        exposure = self.exposures(outcome)
        better = exposure > state.peak
        state.peak[better] = exposure[better]
        state.peak_scenario[better] = index
        k = min(max(self.ks), len(exposure))
        top = (np.argpartition(-exposure, k - 1)[:k] if 0 < k < len(exposure)
               else np.arange(len(exposure)))
        top = top[np.lexsort((top, -exposure[top]))]
        names = self.book.members.names
        for n in self.ks:
            value = float(exposure[top[:n]].sum())
            if n not in state.best or _before((value, index), state.best[n][:2]):
                state.best[n] = (value, index, [str(names[i]) for i in top[:n]
                                                if exposure[i] > 0])
                if n == self.n:
                    state.worst = exposure.copy()
        art = max(float(exposure[top[:1]].sum()), float(exposure[top[1:3]].sum()))
        if _before((art, index), state.art42):
            state.art42 = (art, index)
        return {f"cover_{n}": float(exposure[top[:n]].sum()) for n in sorted({1, 2, self.n})}

    def exposures(self, outcome: Outcome) -> np.ndarray:
        """Each member's exposure in the outcome's scenario, shape (n_members,)."""
        b = self.book
        pnl = np.asarray(b.by_instrument @ outcome.unit_pnl).ravel()
        loss = -pnl + self.full_close.slippage(outcome)
        member_loss = np.bincount(b.members.of_set, loss, minlength=b.members.n_members)
        return np.maximum(member_loss - self.held, 0.0)

    def table(self, state: CoverState, labels: list[str]) -> pd.DataFrame:
        """One row per member (:data:`COVER_COLUMNS`), largest contribution first."""
        b = self.book
        m = b.members
        fund = state.best.get(self.n, (0.0, -1, []))[0]
        total = float(state.peak.sum())
        share = state.peak / total if total > 0 else np.zeros(m.n_members)
        cover = state.worst if state.worst is not None else np.zeros(m.n_members)
        rank = np.empty(m.n_members, dtype=np.int64)
        rank[np.lexsort((np.arange(m.n_members), -cover))] = np.arange(1, m.n_members + 1)
        accounts = pd.Series(b.account_id).groupby(m.of_set).nunique()
        table = pd.DataFrame({
            "member": m.names.astype(str),
            "n_accounts": accounts.reindex(range(m.n_members), fill_value=0).to_numpy(),
            "n_netting_sets": np.bincount(m.of_set, minlength=m.n_members),
            "initial_margin": np.bincount(m.of_set, b.im0, minlength=m.n_members),
            "margin_held": self.held, "peak_exposure": state.peak,
            "peak_scenario": [labels[i] if i >= 0 else "" for i in state.peak_scenario],
            "cover_exposure": cover, "cover_rank": rank, "share": share,
            "contribution": share * fund})
        return table.sort_values(["contribution", "cover_rank"], ascending=[False, True],
                                 kind="stable").reset_index(drop=True)[COVER_COLUMNS]

    def summary(self, state: CoverState, labels: list[str]) -> dict[str, object]:
        """The manifest's ``cover`` block: each cover-k fund, its worst scenario and the
        members defaulting in it; EMIR Article 42(3)'s minimum; the share rule."""
        out: dict[str, object] = {"n": self.n}
        for n in sorted({1, 2, self.n}):
            value, index, members = state.best.get(n, (0.0, -1, []))
            out[f"cover_{n}"] = {"fund": value, "scenario": labels[index] if index >= 0
                                 else None, "members": members}
        value, index = state.art42
        out["emir_art42_minimum"] = {"fund": value,
                                     "scenario": labels[index] if index >= 0 else None}
        out["share_rule"] = ("each member's peak exposure over all scenarios / the sum of "
                             "every member's peak")
        return out
