"""Each netting set's equity, kept exact at the current marks.

``equity = cash + sum over coins of coin balance x coin price + sum over positions of quantity
x per-unit mark P&L`` (:meth:`riskmodel.engine.remark.RemarkedMarket.mark_pnl`, the P&L since
the end-of-day marks). ``cash`` starts at the run's collateral (which already holds the
unrealised P&L at the end-of-day marks) and moves with transfers, funding and top-ups.

A trade is made at the current marks and changes no equity: the new quantity's P&L since the
end-of-day marks is booked against it, in cash for kinds whose P&L accrues in the reporting
currency, and in the coin for inverse contracts and coin-settled options (their P&L is a coin
amount valued at the current price, so what was booked at the entry price moves with the coin).
Each change adds its own amount to the equity of the sets it touches: a tick costs what it
touches, not the book.
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np


class Ledger:
    """Cash, coin balances, position values and equity (module docstring).

    Parameters
    ----------
    cash : ndarray of shape (n_sets,)
        Each set's collateral in the run.
    n_positions : int
        Positions of the run (their mark P&L is 0 at the end-of-day marks).
    """

    def __init__(self, cash: np.ndarray, n_positions: int) -> None:
        self.cash = np.asarray(cash, dtype=np.float64).copy()
        self.equity = self.cash.copy()
        self.value = np.zeros(n_positions)
        # coin balances: per factor, per set (a handful: trades in coin-settled kinds)
        self.coins: dict[int, dict[int, float]] = defaultdict(dict)

    def grow(self, n_sets: int, n_positions: int) -> None:
        """Room for new sets (zero cash) and positions (zero value)."""
        if n_sets > len(self.cash):
            extra = np.zeros(max(n_sets - len(self.cash), len(self.cash) // 4 + 16))
            self.cash = np.concatenate([self.cash, extra])
            self.equity = np.concatenate([self.equity, extra])
        if n_positions > len(self.value):
            extra = np.zeros(max(n_positions - len(self.value), len(self.value) // 4 + 16))
            self.value = np.concatenate([self.value, extra])

    def revalue(self, positions: np.ndarray, sets: np.ndarray, starts: np.ndarray,
                new_value: np.ndarray) -> None:
        """Positions ``positions``, grouped by set (``sets``, each one's first position at
        ``starts``), are now worth ``new_value``."""
        if not len(positions):
            return
        change = new_value - self.value[positions]
        self.value[positions] = new_value
        self.equity[sets] += np.add.reduceat(change, starts)

    def coin_move(self, factor: int, old: float, new: float) -> list[int]:
        """A coin's price moved from ``old`` to ``new``: revalue its balances; returns the sets
        holding it."""
        held = self.coins.get(factor)
        if not held:
            return []
        for s, amount in held.items():
            self.equity[s] += amount * (new - old)
        return list(held)

    def book_entry(self, s: int, factor: int, amount: float, in_coin: bool,
                   price: float) -> None:
        """Book ``amount`` (reporting currency, at the current ``price`` of ``factor``) against
        set ``s``: in cash, or as ``amount / price`` of the coin."""
        if in_coin:
            self.coins[factor][s] = self.coins[factor].get(s, 0.0) + amount / price
        else:
            self.cash[s] += amount

    def pay(self, s: int, amount: float) -> None:
        """A cash payment into set ``s`` (negative: out of it)."""
        self.cash[s] += amount
        self.equity[s] += amount

    def state(self) -> dict[str, np.ndarray]:
        factors = sorted(self.coins)
        rows = [(k, s, a) for k in factors for s, a in sorted(self.coins[k].items())]
        return {"cash": self.cash.copy(), "equity": self.equity.copy(),
                "value": self.value.copy(),
                "coin_factor": np.array([r[0] for r in rows], dtype=np.int64),
                "coin_set": np.array([r[1] for r in rows], dtype=np.int64),
                "coin_amount": np.array([r[2] for r in rows], dtype=np.float64)}

    def restore(self, state: dict[str, np.ndarray]) -> None:
        self.cash = np.asarray(state["cash"], dtype=np.float64).copy()
        self.equity = np.asarray(state["equity"], dtype=np.float64).copy()
        self.value = np.asarray(state["value"], dtype=np.float64).copy()
        self.coins = defaultdict(dict)
        for k, s, a in zip(state["coin_factor"], state["coin_set"], state["coin_amount"]):
            self.coins[int(k)][int(s)] = float(a)
