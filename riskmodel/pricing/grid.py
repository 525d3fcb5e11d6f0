"""Per-unit values of every instrument in the venue rule's scenarios (``--method grid``).

Each instrument is valued once per scenario (never per position), in the reporting currency,
per unit quantity, in ``1 + n + 2`` columns: today, the ``n`` scenarios of the scan
(:func:`riskmodel.scenarios.grid.grid_scenarios`) and the two basis scenarios
(:func:`riskmodel.scenarios.grid.basis_shocks`). A scenario moves every underlying by its price
factor ``s``; no time passes (the rule's scenarios are instantaneous).

* Options: Black-76 on the expiry's forward ``F`` (a ``black76`` option's own price; a
  ``black_scholes`` one's ``P exp((rate - carry) tau)``), discounted at ``max(rate, 0)`` (a
  negative rate counts as zero, as the venue's rule has it), strike, time to expiry from the
  valuation time (ACT/365, to the nanosecond; an expired option is worth its intrinsic value),
  the scenario's shocked vol (:func:`riskmodel.scenarios.grid.vol_multipliers`,
  :func:`riskmodel.scenarios.grid.skew_multipliers`) and the shocked forward ``F_var s +
  F_fix``: within ``settlement_window`` seconds of expiry only the share ``seconds left /
  settlement_window`` of the forward still moves (the settlement price is being averaged in),
  else all of it. ``bachelier`` options take the normal model on the same forward (their vol
  is not floored at ``min_vol_up``). A coin-settled option's premium is held in coin, so its
  value in a scenario is ``V_s - V_0 (s - 1)`` (its P&L ``V_s - V_0 s``).
* Linear kinds (``spot``, ``future``, ``perpetual``): today 0 (variation margin settles them),
  ``multiplier x P x (s - 1)`` in a scenario; inverse kinds ``multiplier x (s - 1)``.
* Coins held as collateral: ``multiplier x P x (s - 1)`` where ``[grid.collateral]`` calls the
  coin risk-cancelling, else 0 in every scenario (its haircuts are contingencies,
  :mod:`riskmodel.margin.grid_rule`).

The static discounts, the dampening and the skew scenarios' sign act on an expiry's value as a
whole and belong to the set-level arithmetic (:mod:`riskmodel.margin.grid_kernels`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from riskmodel.config import GridConfig
from riskmodel.pricing.options import BACHELIER, BLACK76, option_price
from riskmodel.pricing.revaluation import (
    COLLATERAL_KIND,
    INVERSE_KINDS,
    at_labels,
    years_to_expiry,
)
from riskmodel.scenarios.grid import (
    DOWN,
    LINEAR,
    NONE,
    SECONDS_PER_YEAR,
    UP,
    GridScenarios,
    basis_shocks,
    skew_multipliers,
    vol_multipliers,
)

__all__ = ["GridOptions", "grid_options", "grid_values"]


@dataclass(frozen=True)
class GridOptions:
    """The option rows of an instrument table as the rule prices them (one entry each):
    ``rows`` (their positions in the table), forward ``F`` and its moving share ``F_var``
    (``F_fix = F - F_var``), ``strike``, ``seconds`` and ``tau`` (years) to expiry, the
    discount rate ``rate`` (``max(rate, 0)``), ``vol``, ``is_call``, the model code, the
    multiplier and whether the option settles in coin."""

    rows: np.ndarray
    forward: np.ndarray
    moving: np.ndarray
    strike: np.ndarray
    seconds: np.ndarray
    tau: np.ndarray
    rate: np.ndarray
    vol: np.ndarray
    is_call: np.ndarray
    model: np.ndarray
    multiplier: np.ndarray
    coin: np.ndarray


def grid_options(instruments: pd.DataFrame, spot: pd.Series, valuation_time: pd.Timestamp,
                 grid: GridConfig) -> GridOptions:
    """The option rows of ``instruments`` (``spot`` by factor) as the rule prices them."""
    rows = np.flatnonzero(instruments["kind"].to_numpy() == "option")
    opt = instruments.iloc[rows]
    price = at_labels(spot, opt["factor"])
    tau = np.maximum(years_to_expiry(opt, valuation_time), 0.0)
    rate = opt["rate"].to_numpy(np.float64)
    model = opt["model"].to_numpy(dtype=object)
    forward = np.where(model == "black_scholes",
                       price * np.exp((rate - opt["carry"].to_numpy(np.float64)) * tau), price)
    seconds = tau * SECONDS_PER_YEAR
    window = grid.settlement_window
    moving = np.where(seconds < window, forward * seconds / window, forward) if window > 0 \
        else forward
    return GridOptions(
        rows=rows, forward=forward, moving=moving,
        strike=opt["strike"].to_numpy(np.float64), seconds=seconds, tau=tau,
        rate=np.maximum(rate, 0.0), vol=opt["implied_vol"].to_numpy(np.float64),
        is_call=(opt["option_type"].to_numpy(dtype=object) == "call"),
        model=np.where(model == "bachelier", BACHELIER, BLACK76).astype(np.int64),
        multiplier=opt["multiplier"].to_numpy(np.float64),
        coin=(opt["settlement"].to_numpy(dtype=object) == "coin"),
    )


def grid_values(instruments: pd.DataFrame, spot: pd.Series, valuation_time: pd.Timestamp,
                grid: GridConfig, scenarios: GridScenarios | None = None) -> np.ndarray:
    """Per-unit values, shape ``(n_instruments, 1 + n + 2)`` (module docstring); with
    ``scenarios`` None, today's column alone, shape ``(n_instruments, 1)``.

    ``instruments`` indexed in P&L-row order (``kind, underlying, multiplier, factor`` and the
    option columns), ``spot`` by factor, ``valuation_time`` the market date's timestamp.
    """
    if scenarios is None:
        shock = np.ones(1)
        vol = np.zeros(1, dtype=np.int8)
    else:
        up, down = basis_shocks(grid)
        shock = np.concatenate([[1.0], scenarios.shock, [up, down]])
        vol = np.concatenate([[NONE], scenarios.vol, [NONE, NONE]]).astype(np.int8)
    out = np.zeros((len(instruments), len(shock)))
    kinds = instruments["kind"].to_numpy(dtype=object)
    mult = instruments["multiplier"].to_numpy(np.float64)
    price = at_labels(spot, instruments["factor"])
    moved = np.isin(kinds, ("spot", "future", "perpetual"))
    if (kinds == COLLATERAL_KIND).any():
        cancelling = {a for a, c in grid.collateral.items() if c.risk_cancelling}
        moved |= (kinds == COLLATERAL_KIND) & instruments["underlying"].isin(
            cancelling).to_numpy()
    out[moved] = (mult * price)[moved, None] * (shock - 1.0)
    inverse = np.isin(kinds, INVERSE_KINDS)
    out[inverse] = mult[inverse, None] * (shock - 1.0)
    if (kinds == "option").any():
        opts = grid_options(instruments, spot, valuation_time, grid)
        out[opts.rows] = _option_values(opts, grid, shock, vol)
    return out


def _option_values(o: GridOptions, grid: GridConfig, shock: np.ndarray, vol_code: np.ndarray
                   ) -> np.ndarray:
    """Per-unit values of the options ``o`` in each column (``shock``, ``vol_code``)."""
    up, down = vol_multipliers(grid, o.seconds)
    vols = np.empty((len(o.rows), len(shock)))
    with np.errstate(divide="ignore", invalid="ignore"):
        k = np.log(o.strike / o.forward)
    k = np.where(np.isfinite(k), k, 0.0)  # bachelier strikes <= 0: no rotation
    lognormal = o.model != BACHELIER
    for j, code in enumerate(vol_code.tolist()):
        if code == UP:
            v = o.vol * up
            vols[:, j] = np.where(lognormal, np.maximum(grid.min_vol_up, v), v)
        elif code == DOWN:
            vols[:, j] = o.vol * down
        elif code >= LINEAR:
            vols[:, j] = o.vol * skew_multipliers(grid, o.seconds, k, code == LINEAR)
        else:
            vols[:, j] = o.vol
    forward = o.moving[:, None] * shock[None, :] + (o.forward - o.moving)[:, None]
    value = o.multiplier[:, None] * option_price(
        o.model[:, None], o.is_call[:, None], forward, o.strike[:, None], o.tau[:, None], vols,
        o.rate[:, None])
    # a coin premium is revalued with the coin: the P&L is V_s - V_0 s
    value[o.coin] -= value[o.coin, :1] * (shock[None, :] - 1.0)
    return value
