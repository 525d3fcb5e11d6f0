"""Distance to liquidation of each netting set of a linear book.

Scope: linear instruments (spot, futures, perpetuals) on log-return factors. A position has a
factor (its underlying price series, ``factor_code``), the current price ``P0`` of that factor, a
multiplier ``m`` and a quantity ``q``. Its delta in currency is ``q x m x P0`` and its P&L for a
relative move ``x`` of its factor is ``q x m x P0 x x`` (see :mod:`riskmodel.pricing.linear`).

Per netting set, with ``E`` the equity (collateral) and ``MM0`` the maintenance margin now:

* ``delta_f`` is the summed delta of the set's positions on factor ``f``; the *dominant
  underlying* is the factor with the largest ``|delta_f|`` (ties: the lowest factor code).
* **Margin at moved prices.** Every margin component of a linear book on log-return factors
  (model margin, stress, notional floors) is proportional to the price level, so the engine uses
  ``MM(x) = MM0 x (1 + w x)``, with ``w`` the share of the set's gross notional
  (``sum |q m P0|``) on the moved underlying(s). For a uniform move of all the set's underlyings,
  or for a set with a single underlying, ``w = 1`` and the rule is exact; for the move of one
  underlying of several it is the first-order (pro-rata) approximation.
* **P&L.** ``P&L(x) = D x`` with ``D`` the summed delta of the moved underlying(s): ``D =
  delta_dominant`` for ``liq_move_dominant``, ``D = sum_f delta_f`` for ``liq_move_uniform``.
* **Liquidation** is reached when ``E + D x = MM0 (1 + w x)``, i.e. at
  ``x* = (MM0 - E) / (D - w MM0)``.

Which move is reported (signed, negative = a fall; ``liq_move_*``):

* ``E <= MM0`` (already at or below maintenance): ``0``.
* Otherwise the surplus ``E + D x - MM(x)`` is positive now and linear in ``x`` with slope
  ``k = D - w MM0``; the adverse direction is the one that lowers it (a fall if ``k > 0``, a rise
  if ``k < 0``), and ``x*`` is the move in that direction that reaches liquidation.
* ``+inf`` where no such move exists: ``k = 0`` (within ``1e-12 x (gross + MM0)``, e.g. an empty
  set, or a set hedged to ``D = 0`` with ``MM0 = 0``), or a fall to ``x* <= -1`` (a price cannot
  go to zero or below). ``+inf`` means the set cannot be liquidated by that move alone.

Note that the adverse direction follows the margin surplus, not the sign of the delta: the
maintenance margin grows with the price level, so a set hedged to ``D = 0`` (or a net long with
``D < w MM0``) is liquidated by a large enough *rise*, ``x* = (E - MM0) / (w MM0 - D)``.

``liq_sigmas_*`` are ``|ln(1 + x)| / sigma_1d[dominant]`` (``sigma_1d`` per factor, one-day, in
log-return units): ``0`` at ``x = 0`` and ``+inf`` at ``x = +inf``, never negative.

``liquidation_price`` is ``P0 x (1 + x)`` of the dominant underlying for a set with a single
underlying (where both moves coincide); it is ``+inf`` where that does not apply: sets on several
underlyings (no single price defines liquidation), empty sets, and sets that the move cannot
liquidate (``liq_move_dominant = +inf``). The output never holds NaN; ``dominant_underlying`` is
``-1`` for an empty set.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
import pandas as pd

COLUMNS = (
    "dominant_underlying",
    "liq_move_dominant",
    "liq_move_uniform",
    "liq_sigmas_dominant",
    "liq_sigmas_uniform",
    "liquidation_price",
)

#: Slope ``|D - w MM0|`` at or below this fraction of ``gross + MM0`` counts as 0 (no move
#: reaches liquidation), so floating dust in a hedged set does not become a finite distance.
SLOPE_TOLERANCE = 1e-12

#: Positions on the same factor must carry the same price to this relative tolerance.
PRICE_TOLERANCE = 1e-12


def _solve_move(
    equity: np.ndarray,
    maintenance_margin: np.ndarray,
    delta: np.ndarray,
    weight: np.ndarray,
    scale: np.ndarray,
) -> np.ndarray:
    """Signed relative move reaching ``E + D x = MM0 (1 + w x)``; all arrays of shape (n_sets,).

    Parameters
    ----------
    equity, maintenance_margin : ndarray of shape (n_sets,), ``E`` and ``MM0``.
    delta : ndarray of shape (n_sets,), ``D``, the delta of the moved underlying(s).
    weight : ndarray of shape (n_sets,), ``w`` in [0, 1].
    scale : ndarray of shape (n_sets,), ``gross + MM0``, for the zero-slope tolerance.

    Returns
    -------
    ndarray of shape (n_sets,): ``0`` at or below maintenance, ``+inf`` if unreachable, else
    ``x* > -1``.
    """
    slope = delta - weight * maintenance_margin
    flat = np.abs(slope) <= SLOPE_TOLERANCE * scale
    with np.errstate(divide="ignore", over="ignore", invalid="ignore"):
        move = (maintenance_margin - equity) / np.where(flat, 1.0, slope)
    move = np.where(flat | (move <= -1.0), np.inf, move)
    return np.where(equity <= maintenance_margin, 0.0, move)


def _run_starts(sorted_values: np.ndarray) -> np.ndarray:
    """Index of the first element of each run of equal values of a sorted array."""
    if len(sorted_values) == 0:
        return np.zeros(0, dtype=np.int64)
    return np.flatnonzero(np.append(True, sorted_values[1:] != sorted_values[:-1]))


def _in_sigmas(move: np.ndarray, sigma: np.ndarray) -> np.ndarray:
    """``|ln(1 + move)| / sigma``, shape (n_sets,); ``+inf`` stays ``+inf``."""
    with np.errstate(divide="ignore", over="ignore"):
        return np.abs(np.log1p(move)) / sigma


class _Pairs(NamedTuple):
    """The (set, factor) pairs of a book, sorted by set then factor, arrays of shape
    (n_pairs,): the set and factor of each pair, its summed delta ``sum q m P0``, its gross
    ``sum |q m P0|`` and its factor's price."""

    set: np.ndarray
    factor: np.ndarray
    delta: np.ndarray
    gross: np.ndarray
    price: np.ndarray


class _Dominant(NamedTuple):
    """Each set's dominant pair, arrays of shape (n_sets,): its factor (``-1`` for an empty
    set), delta, gross and price (``+inf`` for an empty set)."""

    factor: np.ndarray
    delta: np.ndarray
    gross: np.ndarray
    price: np.ndarray


def _checked_inputs(
    indptr: np.ndarray, quantity: np.ndarray, multiplier: np.ndarray, price: np.ndarray,
    factor_code: np.ndarray, n_factors: int, equity: np.ndarray,
    maintenance_margin: np.ndarray, sigma_1d: np.ndarray,
) -> tuple[np.ndarray, ...]:
    """The arguments of :func:`liquidation_distance` as int64 and float64 arrays, in its order
    (without ``n_factors``), checked; raises its ValueErrors."""
    indptr = np.asarray(indptr, dtype=np.int64)
    quantity = np.asarray(quantity, dtype=np.float64)
    multiplier = np.asarray(multiplier, dtype=np.float64)
    price = np.asarray(price, dtype=np.float64)
    factor_code = np.asarray(factor_code, dtype=np.int64)
    equity = np.asarray(equity, dtype=np.float64)
    maintenance_margin = np.asarray(maintenance_margin, dtype=np.float64)
    sigma_1d = np.asarray(sigma_1d, dtype=np.float64)

    if indptr.ndim != 1 or len(indptr) < 1 or indptr[0] != 0 or np.any(np.diff(indptr) < 0):
        raise ValueError("indptr must be non-decreasing offsets starting at 0")
    n_sets = len(indptr) - 1
    n_positions = int(indptr[-1])
    for name, arr in (("quantity", quantity), ("multiplier", multiplier), ("price", price),
                      ("factor_code", factor_code)):
        if arr.shape != (n_positions,):
            raise ValueError(f"{name} must have shape ({n_positions},), got {arr.shape}")
    for name, arr in (("equity", equity), ("maintenance_margin", maintenance_margin)):
        if arr.shape != (n_sets,):
            raise ValueError(f"{name} must have shape ({n_sets},), got {arr.shape}")
    if sigma_1d.shape != (n_factors,):
        raise ValueError(f"sigma_1d must have shape ({n_factors},), got {sigma_1d.shape}")
    for name, arr in (("quantity", quantity), ("multiplier", multiplier), ("price", price),
                      ("equity", equity), ("maintenance_margin", maintenance_margin)):
        if not np.all(np.isfinite(arr)):
            raise ValueError(f"{name} must be finite")
    if np.any(price <= 0):
        raise ValueError("price must be > 0 (log-return factors)")
    if np.any(maintenance_margin < 0):
        raise ValueError("maintenance_margin must be >= 0")
    if np.any((factor_code < 0) | (factor_code >= n_factors)):
        raise ValueError(f"factor_code must lie in [0, {n_factors})")
    return (indptr, quantity, multiplier, price, factor_code, equity, maintenance_margin,
            sigma_1d)


def _pairs(indptr: np.ndarray, quantity: np.ndarray, multiplier: np.ndarray, price: np.ndarray,
           factor_code: np.ndarray, n_factors: int) -> _Pairs:
    """Aggregate the positions (shape (n_positions,)) per (set, factor) pair; raises ValueError
    where positions of one pair carry different prices."""
    n_sets = len(indptr) - 1
    set_of = np.repeat(np.arange(n_sets, dtype=np.int64), np.diff(indptr))
    pairs, pair_of = np.unique(set_of * n_factors + factor_code, return_inverse=True)
    pair_of = pair_of.reshape(-1)
    exposure = quantity * multiplier * price
    pair_delta = np.bincount(pair_of, weights=exposure, minlength=len(pairs))
    pair_gross = np.bincount(pair_of, weights=np.abs(exposure), minlength=len(pairs))
    pair_price = np.empty(len(pairs))
    pair_price[pair_of] = price
    if np.any(np.abs(price - pair_price[pair_of]) > PRICE_TOLERANCE * price):
        raise ValueError("positions on the same factor within a set have different prices")
    return _Pairs(pairs // n_factors, pairs % n_factors, pair_delta, pair_gross, pair_price)


def _dominant(pairs: _Pairs, n_sets: int) -> _Dominant:
    """Dominant pair of each set: largest ``|delta|``, ties to the lowest factor code."""
    # The pairs are sorted by set then factor, so it is the set's first pair at its largest
    # |delta| (linear scans; a lexsort of the pairs cost most of this function).
    n_pairs = len(pairs.set)
    abs_delta = np.abs(pairs.delta)
    set_starts = _run_starts(pairs.set)
    sets_present = pairs.set[set_starts]
    largest = np.zeros(n_pairs)
    if n_pairs:
        largest = np.repeat(np.maximum.reduceat(abs_delta, set_starts),
                            np.diff(np.append(set_starts, n_pairs)))
    at_largest = np.flatnonzero(abs_delta == largest)
    dominant_pair = at_largest[_run_starts(pairs.set[at_largest])]
    dominant = np.full(n_sets, -1, dtype=np.int64)
    dom_delta = np.zeros(n_sets)
    dom_gross = np.zeros(n_sets)
    dom_price = np.full(n_sets, np.inf)
    dominant[sets_present] = pairs.factor[dominant_pair]
    dom_delta[sets_present] = pairs.delta[dominant_pair]
    dom_gross[sets_present] = pairs.gross[dominant_pair]
    dom_price[sets_present] = pairs.price[dominant_pair]
    return _Dominant(dominant, dom_delta, dom_gross, dom_price)


def _dominant_sigma(sigma_1d: np.ndarray, dominant: np.ndarray, has_positions: np.ndarray
                    ) -> np.ndarray:
    """One-day sigma of each set's dominant factor, shape (n_sets,) (1 for an empty set);
    raises ValueError where it is not finite and > 0."""
    dom_sigma = np.ones(len(dominant))
    dom_sigma[has_positions] = sigma_1d[dominant[has_positions]]
    if not np.all(np.isfinite(dom_sigma) & (dom_sigma > 0)):
        raise ValueError("sigma_1d must be finite and > 0 for every dominant factor")
    return dom_sigma


def liquidation_distance(*args: Any, **kwargs: Any) -> pd.DataFrame:
    """:func:`distance_columns` as a table (same arguments, same columns)."""
    return pd.DataFrame(distance_columns(*args, **kwargs), columns=list(COLUMNS))


def distance_columns(
    indptr: np.ndarray,
    quantity: np.ndarray,
    multiplier: np.ndarray,
    price: np.ndarray,
    factor_code: np.ndarray,
    n_factors: int,
    equity: np.ndarray,
    maintenance_margin: np.ndarray,
    sigma_1d: np.ndarray,
) -> dict[str, np.ndarray]:
    """Distance to liquidation of each netting set (see the module docstring for the rules),
    column by column: the margin tables build one frame of every column (a small book's
    frames cost more than its arithmetic).

    Parameters
    ----------
    indptr : int ndarray of shape (n_sets + 1,), CSR offsets of the positions (``Book.indptr``).
    quantity : ndarray of shape (n_positions,), signed quantity of each position.
    multiplier : ndarray of shape (n_positions,), contract multiplier of each position.
    price : ndarray of shape (n_positions,), current price ``P0 > 0`` of each position's factor
        (positions on the same factor must agree).
    factor_code : int ndarray of shape (n_positions,), factor of each position, in
        ``[0, n_factors)``.
    n_factors : int, size of the factor axis.
    equity : ndarray of shape (n_sets,), equity (collateral) of each set.
    maintenance_margin : ndarray of shape (n_sets,), current maintenance margin ``MM0 >= 0``.
    sigma_1d : ndarray of shape (n_factors,), one-day volatility of each factor in log-return
        units; must be finite and > 0 for every dominant factor.

    Returns
    -------
    dict of :data:`COLUMNS` to arrays of shape (n_sets,) (in ``indptr`` order):
    ``dominant_underlying`` (int64,
    ``-1`` for an empty set), ``liq_move_dominant``, ``liq_move_uniform`` (signed relative
    moves, ``0`` or ``+inf`` per the rules), ``liq_sigmas_dominant``, ``liq_sigmas_uniform``
    (>= 0 or ``+inf``) and ``liquidation_price`` (``+inf`` unless the set has one underlying).
    No value is NaN.

    Raises
    ------
    ValueError
        On inconsistent shapes, non-finite inputs, ``price <= 0``, ``MM0 < 0``, factor codes out
        of range, different prices for one factor within a set, or an invalid sigma of a
        dominant factor.
    """
    (indptr, quantity, multiplier, price, factor_code, equity, maintenance_margin,
     sigma_1d) = _checked_inputs(indptr, quantity, multiplier, price, factor_code, n_factors,
                                 equity, maintenance_margin, sigma_1d)
    n_sets = len(indptr) - 1
    pairs = _pairs(indptr, quantity, multiplier, price, factor_code, n_factors)
    set_delta = np.bincount(pairs.set, weights=pairs.delta, minlength=n_sets)
    set_gross = np.bincount(pairs.set, weights=pairs.gross, minlength=n_sets)
    n_underlyings = np.bincount(pairs.set, minlength=n_sets)
    dom = _dominant(pairs, n_sets)

    dom_sigma = _dominant_sigma(sigma_1d, dom.factor, n_underlyings > 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        dom_weight = np.where(set_gross > 0, dom.gross / np.where(set_gross > 0, set_gross, 1.0),
                              0.0)
    all_weight = np.where(set_gross > 0, 1.0, 0.0)
    scale = set_gross + maintenance_margin

    move_dominant = _solve_move(equity, maintenance_margin, dom.delta, dom_weight, scale)
    move_uniform = _solve_move(equity, maintenance_margin, set_delta, all_weight, scale)

    single = n_underlyings == 1
    with np.errstate(over="ignore", invalid="ignore"):
        liq_price = np.where(single & np.isfinite(move_dominant),
                             dom.price * (1.0 + move_dominant), np.inf)

    return {
        "dominant_underlying": dom.factor,
        "liq_move_dominant": move_dominant,
        "liq_move_uniform": move_uniform,
        "liq_sigmas_dominant": _in_sigmas(move_dominant, dom_sigma),
        "liq_sigmas_uniform": _in_sigmas(move_uniform, dom_sigma),
        "liquidation_price": liq_price,
    }
