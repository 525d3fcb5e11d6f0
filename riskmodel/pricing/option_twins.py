"""Plain-numpy twins of the option kernels: the readable reference the kernels are tested against.

Each twin follows the definitions in the docstring of :mod:`riskmodel.pricing.option_kernels`
with whole-array numpy (``scipy.special.ndtr`` for the normal distribution function, through
:func:`riskmodel.pricing.options.option_price`), where the kernels loop per element in parallel.
The twin of the scenario kernel works on blocks of options, so that its temporaries stay small.
"""

from __future__ import annotations

import numpy as np

from riskmodel.pricing.option_kernels import DAYS_PER_YEAR, RULE_TENOR_DAYS
from riskmodel.pricing.options import option_greeks, option_price

__all__ = ["option_greeks", "option_price", "option_scenario_pnl", "scenario_vol"]


def scenario_vol(
    iv0: np.ndarray, tau0: np.ndarray, price0: np.ndarray, prices: np.ndarray,
    iv_row: np.ndarray, iv_log_shock: np.ndarray, rule_beta: np.ndarray, rule_p: np.ndarray,
    rule_floor: float, rule_cap: float,
) -> np.ndarray:
    """Implied vol of each option in each scenario, shape (n_opt, n_scenarios).

    ``prices`` holds each option's scenario underlying prices, shape (n_opt, n_scenarios); the
    other arrays have shape (n_opt,) except ``iv_log_shock`` (n_iv_factors, n_scenarios).
    Index factor where ``iv_row >= 0``: ``iv0 exp(shock)``; otherwise the spot-vol rule
    ``iv0 min(max(exp(-beta (30 / max(days, 1))**p m), floor), cap)`` with
    ``m = (P_s - P_0) / |P_0|`` (0 if ``P_0 == 0``) and ``days = tau0 x 365``.
    """
    days = np.maximum(tau0 * DAYS_PER_YEAR, 1.0)
    slope = -rule_beta * (RULE_TENOR_DAYS / days) ** rule_p
    abs_p0 = np.abs(price0)
    with np.errstate(divide="ignore", invalid="ignore"):
        move = np.where(abs_p0[:, None] > 0.0, (prices - price0[:, None]) / abs_p0[:, None], 0.0)
    factor = np.minimum(np.maximum(np.exp(slope[:, None] * move), rule_floor), rule_cap)
    sigma = iv0[:, None] * factor
    has_factor = iv_row >= 0
    if has_factor.any():
        rows = np.flatnonzero(has_factor)
        sigma[rows] = iv0[rows, None] * np.exp(iv_log_shock[iv_row[rows]])
    return sigma


def option_scenario_pnl(
    model: np.ndarray,
    is_call: np.ndarray,
    inverse: np.ndarray,
    strike: np.ndarray,
    tau0: np.ndarray,
    tau_h: np.ndarray,
    iv0: np.ndarray,
    rate: np.ndarray,
    carry: np.ndarray,
    multiplier: np.ndarray,
    price0: np.ndarray,
    price_row: np.ndarray,
    scen_price: np.ndarray,
    iv_row: np.ndarray,
    iv_log_shock: np.ndarray,
    rule_beta: np.ndarray,
    rule_p: np.ndarray,
    rule_floor: float,
    rule_cap: float,
    block: int = 128,
) -> np.ndarray:
    """Twin of :func:`riskmodel.pricing.option_kernels.option_scenario_pnl`.

    The same arguments (all per-option arrays of shape (n_opt,)) except ``out``; options are
    processed ``block`` at a time. Returns the P&L per unit quantity, shape (n_opt, n_scenarios):
    ``multiplier (V_s - V_0)``, or ``multiplier (V_s - (V_0 / P_0) P_s)`` for coin-settled options.
    """
    n_opt = len(model)
    out = np.empty((n_opt, scen_price.shape[1]))
    for b0 in range(0, n_opt, block):
        sl = slice(b0, min(n_opt, b0 + block))
        m, c, k = model[sl], is_call[sl], strike[sl]
        r, q, p0 = rate[sl], carry[sl], price0[sl]
        v0 = option_price(m, c, p0, k, tau0[sl], iv0[sl], r, q)
        prices = scen_price[price_row[sl]]
        sigma = scenario_vol(iv0[sl], tau0[sl], p0, prices, iv_row[sl], iv_log_shock,
                             rule_beta[sl], rule_p[sl], rule_floor, rule_cap)
        col = (slice(None), None)
        v = option_price(m[col], c[col], prices, k[col], tau_h[sl][col], sigma, r[col], q[col])
        with np.errstate(divide="ignore", invalid="ignore"):
            coin0 = np.where(inverse[sl], v0 / p0, 0.0)
        out[sl] = np.where(
            inverse[sl][col],
            multiplier[sl][col] * (v - coin0[col] * prices),
            multiplier[sl][col] * (v - v0[col]),
        )
    return out
