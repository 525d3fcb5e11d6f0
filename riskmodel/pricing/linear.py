"""Repricing of linear instruments (spot, futures, perpetuals), once per unique instrument.

P&L per unit quantity in scenario s: ``multiplier x (P_s - P_0)`` with ``P_s = P_0 exp(shock)`` for
log-return factors and ``P_s = P_0 + shock`` for absolute-return factors. A future without its own
price series is priced at its underlying's price (no basis, no carry). Mark-to-market value of a
position: ``quantity x multiplier x P_0`` for spot; 0 for futures and perpetuals, whose unrealised
P&L is settled into collateral by variation margin. Notional: ``|quantity| x multiplier x P_0``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from riskmodel.scenarios.scenario_set import ScenarioSet


def factor_price_moves(
    scenarios: ScenarioSet, spot: pd.Series, return_kinds: Mapping[str, str]
) -> np.ndarray:
    """Price change of each factor in each scenario, shape (n_factors, n_scenarios)."""
    moves = np.empty((len(scenarios.factors), scenarios.n_scenarios))
    for i, f in enumerate(scenarios.factors):
        p0 = float(spot[f])
        shock = scenarios.shocks[:, i]
        moves[i] = p0 * np.expm1(shock) if return_kinds[f] == "log" else shock
    return moves


def instrument_pnl(
    moves: np.ndarray, factor_index: np.ndarray, multiplier: np.ndarray
) -> np.ndarray:
    """P&L per unit quantity of each instrument, shape (n_instruments, n_scenarios), C order.

    Parameters
    ----------
    moves : ndarray of shape (n_factors, n_scenarios), from :func:`factor_price_moves`.
    factor_index : int ndarray of shape (n_instruments,), the row of ``moves`` driving each one.
    multiplier : ndarray of shape (n_instruments,).
    """
    return np.ascontiguousarray(moves[factor_index] * multiplier[:, None])


def valuation(
    kinds: Sequence[str], multiplier: np.ndarray, price: np.ndarray, quantity: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Per-position ``(market_value, notional)``; all arrays of shape (n_positions,)."""
    exposure = quantity * multiplier * price
    is_spot = np.asarray(kinds) == "spot"
    market_value = np.where(is_spot, exposure, 0.0)
    return market_value, np.abs(exposure)
