"""The scenario grid of the venue rule (``--method grid``): which moves, and how each shocks
implied volatility.

Every underlying is scanned on its own (a netting set's rule loss is the sum over its
underlyings of the worst scenario of each: no diversification across underlyings). A scenario
moves the underlying's price by a factor ``s = 1 + move`` and shocks the implied volatility of
its options, by expiry:

* ``up``: ``vol x (1 + vol_range_up x M)``, at least ``min_vol_up``; ``down``: ``vol x max(0,
  1 - vol_range_down x M)``; ``none``: unchanged. ``M = (term_days / max(days to expiry,
  dte_floor_days)) ** power``, ``power`` = ``short_term_power`` up to ``term_days`` to expiry,
  else ``long_term_power``: short-dated vols move most;
* ``linear`` and ``abs`` (skew rotations, no price move): ``vol x max(0, 1 + c)`` with ``c =
  clip(k x cap / k*, -cap, cap)``, ``k = ln(K / F)`` (``abs``: ``|k|``), ``cap =
  skew_*_slope x sqrt(tau) + skew_*_cap`` and ``k* = max(skew_min_k_star, sqrt(tau) x
  skew_width_scale x (skew_vol_static + sqrt(tau) x skew_vol_scale))``, the log-moneyness
  where the smile flattens.

The scan (:func:`grid_scenarios`): ``spot_steps`` moves from ``-spot_range`` to ``+spot_range``
(0 included) with every shock of ``vol_shocks``, then the extended moves with
``extended_vol``, their P&L counted at ``min(1, spot_range / (extended_scale x |move|))`` (a
linear book then loses ``spot_range / extended_scale`` of its notional at most: the extended
moves are there for the options' convexity), then the two skew rotations; or the explicit
``[[grid.scenarios]]``. Two more scenarios serve the basis contingency: ``+basis_up`` and
``-basis_down`` without a vol shock (:func:`basis_shocks`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from riskmodel.config import GridConfig

__all__ = ["NONE", "UP", "DOWN", "LINEAR", "ABS", "GridScenarios", "basis_shocks",
           "grid_scenarios", "skew_multipliers", "vol_multipliers"]

NONE, UP, DOWN, LINEAR, ABS = 0, 1, 2, 3, 4
VOL_CODES = {"none": NONE, "up": UP, "down": DOWN, "linear": LINEAR, "abs": ABS}
SECONDS_PER_DAY = 86_400.0
SECONDS_PER_YEAR = 365.0 * SECONDS_PER_DAY


@dataclass(frozen=True)
class GridScenarios:
    """The scan, one entry per scenario.

    Attributes
    ----------
    shock : ndarray of shape (n,), the price factor ``s = 1 + move``
    vol : int8 ndarray of shape (n,), the vol shock code (``NONE, UP, DOWN, LINEAR, ABS``)
    dampening : ndarray of shape (n,), the share of the scenario's P&L counted
    kind : ndarray of shape (n,), ``regular``, ``extended`` or ``skew``
    labels : ndarray of shape (n,), e.g. ``-16% vol up``, ``+500% vol up x0.064``
    """

    shock: np.ndarray
    vol: np.ndarray
    dampening: np.ndarray
    kind: np.ndarray
    labels: np.ndarray

    @property
    def n(self) -> int:
        """How many scenarios the scan has."""
        return int(self.shock.shape[0])

    @property
    def skew(self) -> np.ndarray:
        """Whether each scenario is a skew rotation (its expiry P&L counts as a loss)."""
        return self.vol >= LINEAR


def grid_scenarios(grid: GridConfig) -> GridScenarios:
    """The scan of ``grid`` (module docstring), in that order."""
    rows: list[tuple[float, str, float, str]] = []  # move, vol, dampening, kind
    if grid.scenarios:
        for s in grid.scenarios:
            kind = "skew" if s.vol in ("linear", "abs") else (
                "regular" if s.dampening == 1.0 else "extended")
            rows.append((s.move, s.vol, s.dampening, kind))
    else:
        half = grid.spot_steps // 2
        for i in range(half, -half - 1, -1):
            move = grid.spot_range * i / half if half else 0.0
            rows += [(move, v, 1.0, "regular") for v in grid.vol_shocks]
        for move in grid.extended_moves:
            damp = (min(1.0, grid.spot_range / (grid.extended_scale * abs(move)))
                    if grid.extended_scale > 0 else 1.0)
            rows.append((move, grid.extended_vol, damp, "extended"))
        if grid.skew_shocks:
            rows += [(0.0, "linear", 1.0, "skew"), (0.0, "abs", 1.0, "skew")]
    moves = np.array([r[0] for r in rows], dtype=np.float64)
    return GridScenarios(
        shock=1.0 + moves,
        vol=np.array([VOL_CODES[r[1]] for r in rows], dtype=np.int8),
        dampening=np.array([r[2] for r in rows], dtype=np.float64),
        kind=np.array([r[3] for r in rows], dtype=object),
        labels=np.array([_label(*r) for r in rows], dtype=object),
    )


def _label(move: float, vol: str, damp: float, kind: str) -> str:
    if kind == "skew":
        return f"skew {vol}"
    text = f"{100 * move:+.4g}%" + ("" if vol == "none" else f" vol {vol}")
    return text if damp == 1.0 else f"{text} x{damp:.4g}"


def basis_shocks(grid: GridConfig) -> tuple[float, float]:
    """The basis contingency's two price factors, ``(1 + basis_up, 1 - basis_down)``."""
    return 1.0 + grid.basis_up, 1.0 - grid.basis_down


def vol_multipliers(grid: GridConfig, seconds: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """The ``up`` and ``down`` vol multipliers of options ``seconds`` from expiry."""
    sec = np.asarray(seconds, dtype=np.float64)
    term = grid.term_days * SECONDS_PER_DAY
    # a floor of one second keeps an expiring option's shock finite with dte_floor_days = 0
    ratio = term / np.maximum(np.maximum(sec, grid.dte_floor_days * SECONDS_PER_DAY), 1.0)
    power = np.where(sec <= term, grid.short_term_power, grid.long_term_power)
    m = ratio ** power
    return 1.0 + grid.vol_range_up * m, np.maximum(0.0, 1.0 - grid.vol_range_down * m)


def skew_multipliers(grid: GridConfig, seconds: ArrayLike, log_moneyness: ArrayLike,
                     linear: bool) -> np.ndarray:
    """``max(0, 1 + c)`` of the ``linear`` (else ``abs``) skew rotation (module docstring)."""
    root = np.sqrt(np.maximum(np.asarray(seconds, dtype=np.float64), 0.0) / SECONDS_PER_YEAR)
    k = np.asarray(log_moneyness, dtype=np.float64)
    if linear:
        cap = grid.skew_linear_slope * root + grid.skew_linear_cap
    else:
        cap, k = grid.skew_abs_slope * root + grid.skew_abs_cap, np.abs(k)
    k_star = np.maximum(grid.skew_min_k_star, root * grid.skew_width_scale
                        * (grid.skew_vol_static + root * grid.skew_vol_scale))
    with np.errstate(divide="ignore", invalid="ignore"):
        scaled = np.where(k == 0.0, 0.0, k * cap / k_star)
    c = np.where(k >= 0.0, np.minimum(cap, scaled), np.maximum(-cap, scaled))
    return np.maximum(0.0, 1.0 + c)
