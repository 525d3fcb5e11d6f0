"""Who pays a scenario's bankruptcy loss, in order.

1. **The defaulter's own collateral**: already spent: a set's bankruptcy loss is what its
   close-out cost beyond its equity at the scenario's prices (coin collateral included).
2. **The insurance fund**: ``[waterfall] insurance_fund`` plus the scenario's penalties that
   feed it (``penalty_to_fund`` x the penalties collected in the scenario: liquidation fees
   feed the fund as the liquidations happen); ``fund_used = min(fund, loss)``.
3. **Auto-deleveraging (ADL)**: the rest is spread over the bankrupt positions pro rata to
   their share of the loss (each bankrupt set's loss over its closed positions pro rata to
   the notional closed), giving per instrument and side ``R_g`` and the bankrupt units
   ``Q_g``. Counterparties are the opposite positions in the same instrument, with a profit in
   the scenario, held by netting sets that the scenario did not liquidate and whose traded
   positions are in profit overall. They are ranked (``[waterfall] adl_ranking``):
   ``profit_x_leverage`` by the position's profit per unit of its notional times its set's
   leverage (gross notional over equity, at the scenario's prices), as crypto venues rank;
   ``profit`` by the position's profit; ``leverage`` by its set's leverage; ties in set order.
   Each is reduced at the bankruptcy price, up to its position
   (:func:`riskmodel.waterfall.kernels.adl_fill`), and loses no more than its position's
   profit nor than what is left of its set's profit.
4. **Socialised loss** (``socialisation = "pro_rata_profit"``): what ADL leaves is shared by
   every netting set not liquidated in the scenario with traded positions in profit, in
   proportion to the profit each has left, never beyond it.
5. **Uncovered**: the rest.

``bankruptcy loss = fund used + ADL + socialised + uncovered`` in every scenario. A netting set
with no traded position has no profit: it never pays (coins held as collateral that rise are
not profit of a position).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from riskmodel.waterfall.book import WaterfallBook
from riskmodel.waterfall.kernels import adl_fill
from riskmodel.waterfall.rounds import Outcome
from riskmodel.waterfall.twins import adl_fill_twin

ADL_COLUMNS = ["scenario", "account_id", "netting_set", "member", "instrument_id",
               "position", "amount_reduced", "loss_taken", "loss_per_unit",
               "bankruptcy_price", "profit", "set_profit", "score", "rank"]


@dataclass(frozen=True)
class Groups:
    """What ADL works on: per group (instrument, side of the bankrupt positions) the loss to
    move ``loss`` and the bankrupt units ``units``; the counterparties of each group (CSR
    ``ptr``), best ranked first: their position rows, sets, units, profits and scores."""

    instrument: np.ndarray
    side: np.ndarray
    loss: np.ndarray
    units: np.ndarray
    ptr: np.ndarray
    pos: np.ndarray
    set: np.ndarray
    cand_units: np.ndarray
    profit: np.ndarray
    score: np.ndarray


@dataclass(frozen=True)
class Allocation:
    """A scenario's loss allocation: totals, each set's socialised share and the ADL rows."""

    bankruptcy_loss: float
    penalties_to_fund: float
    fund_available: float
    fund_used: float
    adl_amount: float
    adl_count: int
    socialised: float
    uncovered: float
    socialised_by_set: np.ndarray
    adl: pd.DataFrame
    profit: np.ndarray

    @property
    def fund_left(self) -> float:
        return self.fund_available - self.fund_used


def allocate(book: WaterfallBook, outcome: Outcome, *, fund: float | None = None,
             twin: bool = False) -> Allocation:
    """The waterfall of ``outcome`` (module docstring). ``fund`` replaces ``[waterfall]
    insurance_fund`` (the close-outs do not depend on it); ``twin`` runs the numpy twin of
    the ADL kernel instead of the kernel (same result)."""
    loss, to_fund, available, profit = _ledger(book, outcome, fund)
    used = min(available, loss)
    rest = loss - used
    cap = np.maximum(profit, 0.0)
    groups = _groups(book, outcome, rest, loss, profit)
    cand_loss, reduced, moved = fill(groups, cap, twin=twin)
    adl = float(moved.sum())
    after = max(rest - adl, 0.0)
    socialised_by_set = np.zeros(book.n_sets)
    socialised = 0.0
    pool = float(cap.sum())
    if book.wcfg.socialisation == "pro_rata_profit" and after > 0 and pool > 0:
        socialised = min(after, pool)
        socialised_by_set = cap * (socialised / pool)
    rows = _adl_rows(book, outcome, groups, cand_loss, reduced, profit)
    return Allocation(loss, to_fund, available, used, adl, len(rows), socialised,
                      after - socialised, socialised_by_set, rows, profit)


def fill(groups: Groups, cap: np.ndarray, *, twin: bool = False
         ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """ADL of ``groups``: ``(loss taken, units reduced, loss moved per group)``, by the
    kernel or its numpy twin; ``cap`` (each set's profit left) is updated in place."""
    if twin:
        return adl_fill_twin(groups.loss, groups.units, groups.ptr, groups.set,
                             groups.cand_units, groups.profit, cap)
    n = len(groups.pos)
    out = np.zeros(n), np.zeros(n), np.zeros(len(groups.loss))
    adl_fill(groups.loss, groups.units, groups.ptr, groups.set, groups.cand_units,
             groups.profit, cap, *out)
    return out


def adl_groups(book: WaterfallBook, outcome: Outcome, fund: float | None = None
               ) -> tuple[Groups, np.ndarray]:
    """What the ADL fill of ``outcome`` works on (its groups) and each set's profit cap, as
    :func:`allocate` prepares them (for timing the fill on its own)."""
    loss, _, available, profit = _ledger(book, outcome, fund)
    rest = loss - min(available, loss)
    return _groups(book, outcome, rest, loss, profit), np.maximum(profit, 0.0)


def _ledger(book: WaterfallBook, outcome: Outcome, fund: float | None
            ) -> tuple[float, float, float, np.ndarray]:
    """``(bankruptcy loss, penalties to the fund, fund available, profit)`` of ``outcome``:
    ``profit`` (n_sets,) is each set's P&L on its traded positions, 0 for a set liquidated."""
    state = outcome.state
    w = book.wcfg
    loss = float(state.bankrupt.sum())
    to_fund = float(state.collected.sum()) * w.penalty_to_fund
    available = (w.insurance_fund if fund is None else fund) + to_fund
    tradeable = (~book.view.collateral).astype(np.float64)
    profit = np.asarray(book.by_instrument @ (outcome.unit_pnl * tradeable)).ravel()
    return loss, to_fund, available, np.where(~state.liquidated, profit, 0.0)


def _groups(book: WaterfallBook, outcome: Outcome, rest: float, loss: float,
            profit: np.ndarray) -> Groups:
    """The bankrupt groups and their ranked counterparties (module docstring, step 3)."""
    state = outcome.state
    pos, qty, notional = state.closes()
    bankrupt = state.bankrupt[book.set_of[pos]] > 0
    pos, qty, notional = pos[bankrupt], qty[bankrupt], notional[bankrupt]
    owner = book.set_of[pos]
    total = np.bincount(owner, notional, minlength=book.n_sets)
    weight = np.divide(notional, total[owner], out=np.zeros_like(notional),
                       where=total[owner] > 0)
    share = state.bankrupt[owner] * weight  # each close's part of its set's loss
    key = book.instrument[pos] * 2 + (qty < 0)
    keys, inverse = np.unique(key, return_inverse=True)
    group_loss = np.bincount(inverse, share, minlength=len(keys))
    units = np.bincount(inverse, np.abs(qty), minlength=len(keys))
    to_move = group_loss * (rest / loss) if loss > 0 else group_loss * 0.0
    order = np.lexsort((keys, -to_move))
    keys, to_move, units = keys[order], to_move[order], units[order]
    leverage = _leverage(book, outcome) if len(keys) else np.zeros(0)
    parts = [_counterparties(book, outcome, int(k // 2), -1 if k % 2 == 0 else 1, profit,
                             leverage) for k in keys]
    ptr = np.zeros(len(keys) + 1, dtype=np.int64)
    np.cumsum([len(p[0]) for p in parts], out=ptr[1:])

    def cat(i: int, dtype: type) -> np.ndarray:
        return (np.concatenate([p[i] for p in parts]).astype(dtype) if parts
                else np.zeros(0, dtype=dtype))

    cand = cat(0, np.int64)
    return Groups(keys // 2, np.where(keys % 2 == 0, 1, -1), to_move, units, ptr, cand,
                  book.set_of[cand].astype(np.int64), np.abs(book.quantity[cand]),
                  cat(1, np.float64), cat(2, np.float64))


def _counterparties(book: WaterfallBook, outcome: Outcome, instrument: int, sign: int,
                    profit: np.ndarray, set_leverage: np.ndarray
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(position rows, position profits, scores)`` of the positions of sign ``sign`` in
    ``instrument`` that may be deleveraged, best ranked first."""
    m = book.by_instrument
    sets = m.indices[m.indptr[instrument]:m.indptr[instrument + 1]].astype(np.int64)
    q = m.data[m.indptr[instrument]:m.indptr[instrument + 1]]
    gain = q * outcome.unit_pnl[instrument]
    keep = (np.sign(q) == sign) & (gain > 0) & (profit[sets] > 0)
    sets, q, gain = sets[keep], q[keep], gain[keep]
    pos = book.position_key.get_indexer(sets * book.n_instruments + instrument)
    leverage = set_leverage[sets]
    ranking = book.wcfg.adl_ranking
    if ranking == "profit":
        score = gain
    elif ranking == "leverage":
        score = leverage
    else:  # profit per unit of notional x leverage: the venues' ranking
        notional = np.abs(q * outcome.exposure[instrument])
        score = np.divide(gain, notional, out=np.zeros_like(gain), where=notional > 0) \
            * leverage
    order = np.lexsort((sets, -score))
    return pos[order], gain[order], score[order]


def _leverage(book: WaterfallBook, outcome: Outcome) -> np.ndarray:
    """Gross traded notional over equity of every set at the scenario's final prices
    (infinite where the equity is not positive)."""
    tradeable = ~book.view.collateral
    gross = np.asarray(book.size @ np.where(tradeable, np.abs(outcome.exposure), 0.0)).ravel()
    equity = outcome.equity
    return np.divide(gross, equity, out=np.full(book.n_sets, np.inf), where=equity > 0)


def _adl_rows(book: WaterfallBook, outcome: Outcome, groups: Groups, cand_loss: np.ndarray,
              reduced: np.ndarray, profit: np.ndarray) -> pd.DataFrame:
    """One row per counterparty position reduced (:data:`ADL_COLUMNS`)."""
    hit = np.flatnonzero(cand_loss > 0)
    pos = groups.pos[hit]
    sets = groups.set[hit]
    group = np.searchsorted(groups.ptr, hit, side="right") - 1
    instrument = book.instrument[pos]
    q = book.quantity[pos]
    gap = np.divide(cand_loss[hit], reduced[hit], out=np.zeros(len(hit)),
                    where=reduced[hit] > 0)
    view = book.view
    kinds = view.instruments["kind"].to_numpy()[instrument]
    linear = np.isin(kinds, ("spot", "future", "perpetual"))
    price = outcome.marks.price[view.factor_of[instrument]]
    multiplier = view.instruments["multiplier"].to_numpy(np.float64)[instrument]
    bankruptcy = np.where(linear, price - np.sign(q) * gap / multiplier, np.nan)
    rank = hit - groups.ptr[group] + 1
    return pd.DataFrame({
        "scenario": outcome.scenario.label,
        "account_id": book.account_id[sets], "netting_set": book.netting_set[sets],
        "member": book.members.names[book.members.of_set[sets]],
        "instrument_id": view.market.axis.to_numpy()[instrument],
        "position": q, "amount_reduced": np.sign(q) * reduced[hit],
        "loss_taken": cand_loss[hit], "loss_per_unit": gap, "bankruptcy_price": bankruptcy,
        "profit": groups.profit[hit], "set_profit": profit[sets], "score": groups.score[hit],
        "rank": rank.astype(np.int64)}, columns=ADL_COLUMNS)
