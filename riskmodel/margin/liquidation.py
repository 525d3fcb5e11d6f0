"""Partial liquidation: the smallest reduction that restores a netting set's margin, with a
liquidation penalty, computed on a finished run through the what-if engine.

For every netting set in ``liquidation`` (and, optionally, ``margin_call``), positions are reduced
riskiest first, by their Euler contribution to the model margin (``attribution.parquet``): the
riskiest position is closed by the smallest fraction that brings the set back to its target,
``equity_after >= target x initial_margin_after``; if closing it entirely is not enough, it is
closed and the next one is reduced, and so on. ``equity_after = equity - penalty``: closing at
the mark realises nothing that variation margin has not already settled, but the venue charges
``penalty = rate x |notional closed|`` (rates per underlying, kind or default, as every rate
table). Every trial margin is recomputed exactly by :func:`riskmodel.margin.whatif.what_if`, so
the orders are checked by construction against the engine's own margin; the fraction is found by
bisection (60 halvings: far below any quantity increment a venue trades).

``quantity_to_close`` carries the position's sign (a long of 10 closing 3.2 reports 3.2; the
closing trade is ``-quantity_to_close``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from riskmodel.config import RateTable
from riskmodel.margin.policy import position_rates
from riskmodel.margin.whatif import RunState, what_if

ORDER_COLUMNS = ["account_id", "netting_set", "instrument_id", "quantity_to_close",
                 "margin_after", "equity_after"]
BISECTIONS = 60


@dataclass(frozen=True)
class LiquidationResult:
    """``orders`` (one row per position reduced, :data:`ORDER_COLUMNS`) and ``sets`` (one row per
    netting set considered: ``account_id, netting_set, liquidation_penalty,
    notional_liquidated, margin_after, equity_after, restored``)."""

    orders: pd.DataFrame
    sets: pd.DataFrame


def partial_liquidation(
    state: RunState,
    *,
    target: float = 1.0,
    include_margin_call: bool = False,
    penalty: RateTable | None = None,
) -> LiquidationResult:
    """Liquidation orders for the run's under-margined netting sets (module docstring)."""
    if not target > 0:
        raise ValueError(f"target = {target!r} must be > 0")
    penalty = penalty or RateTable(default=0.0)
    margins = pd.read_parquet(state.run_dir / "margins.parquet")
    statuses = {"liquidation", "margin_call"} if include_margin_call else {"liquidation"}
    chosen = margins[margins["status"].isin(statuses)]
    # the Euler contributions rank the positions: riskiest first
    attribution = pd.read_parquet(state.run_dir / "attribution.parquet",
                                  columns=["account_id", "netting_set", "instrument_id",
                                           "contribution"])
    contribution = attribution.set_index(["account_id", "netting_set", "instrument_id"])[
        "contribution"]
    positions = state.positions
    order_rows: list[dict] = []
    set_rows: list[dict] = []
    for _, row in chosen.iterrows():
        key = (row["account_id"], row["netting_set"])
        held = positions.iloc[state.position_rows[key]].copy()
        held["contribution"] = contribution.reindex(pd.MultiIndex.from_arrays(
            [held["account_id"], held["netting_set"], held["instrument_id"]])).to_numpy()
        held = held.sort_values("contribution", ascending=False, kind="stable")
        one = _SetToLiquidate(state, key, held, penalty, float(row["equity"]),
                              float(row["initial_margin"]))
        fractions = one.smallest_reduction(target)
        im, eq, notional = one.outcome(fractions)
        for k in np.flatnonzero(fractions):
            order_rows.append({"account_id": key[0], "netting_set": key[1],
                               "instrument_id": held["instrument_id"].iat[k],
                               "quantity_to_close": fractions[k] * one.quantity[k],
                               "margin_after": im, "equity_after": eq})
        set_rows.append({"account_id": key[0], "netting_set": key[1],
                         "liquidation_penalty": one.equity - eq,
                         "notional_liquidated": notional, "margin_after": im,
                         "equity_after": eq, "restored": bool(eq >= target * im)})
    orders = pd.DataFrame(order_rows, columns=ORDER_COLUMNS)
    sets = pd.DataFrame(set_rows, columns=["account_id", "netting_set", "liquidation_penalty",
                                           "notional_liquidated", "margin_after",
                                           "equity_after", "restored"])
    return LiquidationResult(orders, sets)


class _SetToLiquidate:
    """One netting set's positions, riskiest first, and its margin after closing fractions."""

    def __init__(self, state: RunState, key: tuple[str, str], held: pd.DataFrame,
                 penalty: RateTable, equity: float, initial_margin: float) -> None:
        info = state.instruments.loc[held["instrument_id"]]
        self.state, self.key, self.equity, self.initial_margin = state, key, equity, initial_margin
        self.instrument_id = held["instrument_id"].to_numpy()
        self.quantity = held["quantity"].to_numpy(np.float64)
        self.unit_notional = (info["multiplier"].to_numpy(np.float64)
                              * state.spot.loc[info["factor"]].to_numpy(np.float64))
        self.rates = position_rates(penalty, info["kind"].to_numpy(),
                                    info["underlying"].to_numpy())

    def outcome(self, fractions: np.ndarray) -> tuple[float, float, float]:
        """(initial margin after, equity after the penalty, notional closed)."""
        closed = fractions * self.quantity
        notional = np.abs(closed) * self.unit_notional
        equity = self.equity - float(np.sum(notional * self.rates))
        if not closed.any():
            return self.initial_margin, equity, 0.0
        trades = pd.DataFrame({"account_id": self.key[0], "netting_set": self.key[1],
                               "instrument_id": self.instrument_id, "quantity": -closed})
        after = what_if(self.state, trades[closed != 0]).iloc[0]
        return float(after["initial_margin_after"]), equity, float(np.sum(notional))

    def short(self, fractions: np.ndarray, target: float) -> bool:
        im, equity, _ = self.outcome(fractions)
        return equity < target * im

    def smallest_reduction(self, target: float) -> np.ndarray:
        """Fractions closed per position: riskiest first, bisection on the last one."""
        fractions = np.zeros(len(self.quantity))
        for k in range(len(self.quantity)):
            trial = fractions.copy()
            trial[k] = 1.0
            if self.short(trial, target):  # closing this one is not enough: close it, go on
                fractions = trial
                continue
            lo, hi = 0.0, 1.0
            for _ in range(BISECTIONS):
                mid = 0.5 * (lo + hi)
                trial[k] = mid
                lo, hi = (mid, hi) if self.short(trial, target) else (lo, mid)
            trial[k] = hi
            return trial
        return fractions
