"""Tiered rates: bracket tables with the cumulative deduction that keeps them continuous.

A table (:class:`riskmodel.config.TierTable`) has brackets starting at ``bounds[k]`` with rate
``rates[k]``; an amount ``A`` in bracket ``k`` is charged

    T(A) = A x rates[k] - D[k],   D[0] = 0,   D[k] = D[k-1] + bounds[k] x (rates[k] - rates[k-1]),

which is ``sum_j rates[j] x (the part of A inside bracket j)``: continuous at every bound, with
the slope of the bracket the amount is in (the venues' "maintenance amount" of risk-limit tiers).

* Maintenance and initial rates by position notional (``[tiers.maintenance.U]``,
  ``[tiers.initial.U]``): a position on ``U`` adds ``T(|notional|)`` to its set's maintenance
  floor (initial floor) in place of ``|notional| x`` its ``[margin]`` rate.
* Collateral rates by amount held (``[tiers.collateral.ASSET]``, rates falling with the amount):
  ``amount`` units of the coin count ``price x T(amount)`` towards equity in place of ``amount x
  price x (1 - haircut)``; the engine lowers the set's equity by the difference
  (:func:`collateral_charge`). The scenarios keep revaluing the holding at the flat multiplier.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from riskmodel.config import TierTable

__all__ = ["collateral_charge", "deductions", "tiered", "tiered_positions"]


def deductions(table: TierTable) -> np.ndarray:
    """The cumulative deduction ``D`` of each bracket (module docstring)."""
    b, r = np.asarray(table.bounds, dtype=np.float64), np.asarray(table.rates, dtype=np.float64)
    steps = np.concatenate([[0.0], b[1:] * np.diff(r)])
    return np.cumsum(steps)


def tiered(amount: np.ndarray, table: TierTable) -> np.ndarray:
    """``T(amount)`` of each (non-negative) amount."""
    a = np.asarray(amount, dtype=np.float64)
    k = np.searchsorted(np.asarray(table.bounds, dtype=np.float64), a, side="right") - 1
    k = np.maximum(k, 0)
    return a * np.asarray(table.rates, dtype=np.float64)[k] - deductions(table)[k]


def tiered_positions(charge: np.ndarray, notional: np.ndarray, underlyings: pd.Categorical,
                     tables: Mapping[str, TierTable]) -> np.ndarray:
    """``charge`` (each position's ``|notional| x rate``) with the positions of every tiered
    underlying charged ``T(|notional|)`` instead."""
    out = np.array(charge, dtype=np.float64, copy=True)
    labels = np.asarray(underlyings, dtype=object)
    for underlying, table in tables.items():
        rows = np.flatnonzero(labels == underlying)
        if len(rows):
            out[rows] = tiered(np.abs(notional[rows]), table)
    return out


def collateral_charge(quantity: np.ndarray, multiplier: np.ndarray, price: np.ndarray,
                      assets: np.ndarray, is_collateral: np.ndarray, indptr: np.ndarray,
                      tables: Mapping[str, TierTable]) -> np.ndarray:
    """Per netting set, the equity the collateral tiers take off: ``sum (amount x multiplier x
    price - price x T(amount))`` over its holdings of tiered coins (negative where a tier
    counts more than the flat haircut does), shape ``(n_sets,)``. Arguments per position."""
    per_position = np.zeros(len(quantity))
    for asset, table in tables.items():
        rows = np.flatnonzero(is_collateral & (assets == asset))
        if len(rows):
            amount = quantity[rows]
            per_position[rows] = (amount * multiplier[rows] * price[rows]
                                  - price[rows] * tiered(amount, table))
    set_of = np.repeat(np.arange(len(indptr) - 1), np.diff(indptr))
    return np.bincount(set_of, weights=per_position, minlength=len(indptr) - 1)
