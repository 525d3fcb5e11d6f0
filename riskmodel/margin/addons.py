"""Liquidity and concentration add-ons, per position and per netting set.

All amounts are in the reporting currency and positive (a charge). Every position row of a
:class:`~riskmodel.portfolio.netting.Book` is already the *net* position of one (netting set,
instrument), so both add-ons are charged on the net position: a long and a short in the same
instrument and netting set offset before any add-on is computed. Positions are not aggregated
across netting sets (each set's margin stands alone) nor across instruments sharing an underlying.

Liquidity (close-out) charge
    ``liquidity = spread / 2 x N`` where ``N = |notional|`` and ``spread`` is the *full*
    bid-ask spread as a fraction of price (0.0005 = 5 bp): closing the position crosses half
    the spread.

Concentration charge
    With a threshold ``T > 0`` (absolute notional), ``rate >= 0`` and ``power > 1``::

        concentration = rate x T x ((N / T) ** power - 1)   if N > T
                      = 0                                   if N <= T

    It is 0 at and below the threshold and continuous at ``N = T`` (the bracket is 0 there).
    Above ``T`` it grows faster than linearly: it is convex in ``N`` (``x ** power`` is convex
    for ``power > 1`` and the maximum of two convex functions is convex), its marginal rate
    starts at ``rate x power`` per unit of notional just above ``T`` and keeps rising, and
    doubling a position beyond ``T`` more than doubles the charge
    (``2**p x**p - 1 > 2 (x**p - 1)`` for ``x = N / T > 1`` and ``p > 1``).

    ``T`` is ``threshold_adv_multiple x ADV`` when ``threshold_adv_multiple`` is set and an
    average daily volume (in notional) is given for the position's underlying; otherwise it comes
    from the :class:`ThresholdTable` (underlying, then instrument kind, then default). An
    infinite threshold (the default) switches the charge off.

Rates, spreads and thresholds are looked up per position by underlying, then instrument kind,
then the default, exactly as the margin policy's rate tables
(:func:`riskmodel.margin.policy.position_rates`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

# The settings live with the rest of the configuration (riskmodel.config, which imports nothing
# of riskmodel.margin); they are re-exported here, where the arithmetic that reads them is.
from riskmodel.config import AddonConfigError, AddonPolicy, ThresholdTable
from riskmodel.margin.policy import per_set_sum, position_rates
from riskmodel.validation import is_finite_number

__all__ = [
    "AddonConfigError",
    "AddonPolicy",
    "ThresholdTable",
    "position_addons",
    "set_addons",
]


def position_addons(
    notional_abs: np.ndarray,
    kinds: Sequence[str],
    underlyings: Sequence[str],
    policy: AddonPolicy,
    adv_by_underlying: Mapping[str, float] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Liquidity and concentration charge of each (net) position.

    Parameters
    ----------
    notional_abs : ndarray of shape (n_positions,)
        |notional| of each net position in the reporting currency (a signed value is accepted;
        its absolute value is used). Must be finite.
    kinds, underlyings : sequences of str of length n_positions
        Instrument kind and underlying of each position (the rate-table keys).
    policy : AddonPolicy
    adv_by_underlying : mapping of underlying to average daily volume (notional), optional
        Used only when ``policy.threshold_adv_multiple`` is set; an underlying absent from it
        falls back to ``policy.concentration_threshold``. Each ADV must be finite and > 0.

    Returns
    -------
    liquidity, concentration : ndarray of shape (n_positions,)
        ``spread / 2 x N`` and ``rate x T x ((N / T) ** power - 1)`` if ``N > T`` else 0.

    Raises
    ------
    AddonConfigError
        (a ``ValueError``) on mismatched lengths, a non-finite notional or a bad ADV.
    """
    notional = np.abs(np.asarray(notional_abs, dtype=np.float64))
    if notional.ndim != 1:
        raise AddonConfigError(f"notional_abs: shape {notional.shape} must be (n_positions,)")
    n = notional.shape[0]
    if len(kinds) != n or len(underlyings) != n:
        raise AddonConfigError(
            f"kinds ({len(kinds)}) and underlyings ({len(underlyings)}) must have one entry per "
            f"position ({n})"
        )
    bad = np.flatnonzero(~np.isfinite(notional))
    if bad.size:
        raise AddonConfigError(
            f"notional_abs[{bad[0]}] = {float(notional_abs[bad[0]])!r} must be finite"
        )

    liquidity = 0.5 * position_rates(policy.spreads, kinds, underlyings) * notional

    threshold = position_rates(policy.concentration_threshold, kinds, underlyings)
    multiple = policy.threshold_adv_multiple
    if multiple is not None and adv_by_underlying:
        for key, adv in adv_by_underlying.items():
            if not is_finite_number(adv) or adv <= 0.0:
                raise AddonConfigError(
                    f"adv_by_underlying[{key!r}] = {adv!r} must be a finite number > 0"
                )
        adv_threshold = np.array(
            [multiple * adv_by_underlying[u] if u in adv_by_underlying else np.nan
             for u in underlyings],
            dtype=np.float64,
        )
        has_adv = ~np.isnan(adv_threshold)
        threshold[has_adv] = adv_threshold[has_adv]

    rate = position_rates(policy.concentration_rate, kinds, underlyings)
    concentration = np.zeros(n)
    over = notional > threshold  # False wherever the threshold is inf
    t = threshold[over]
    concentration[over] = rate[over] * t * (
        (notional[over] / t) ** policy.concentration_power - 1.0
    )
    return liquidity, concentration


def set_addons(
    liquidity: np.ndarray, concentration: np.ndarray, indptr: np.ndarray
) -> np.ndarray:
    """Total add-on of each netting set.

    Parameters
    ----------
    liquidity, concentration : ndarray of shape (n_positions,)
        Per-position charges from :func:`position_addons`, in CSR order.
    indptr : int64 ndarray of shape (n_sets + 1,)
        CSR offsets of the positions (:attr:`riskmodel.portfolio.netting.Book.indptr`).

    Returns
    -------
    ndarray of shape (n_sets,)
        ``sum over the set's positions of (liquidity + concentration)``; 0 for an empty set.
    """
    liquidity = np.asarray(liquidity, dtype=np.float64)
    concentration = np.asarray(concentration, dtype=np.float64)
    indptr = np.asarray(indptr)
    if liquidity.ndim != 1 or liquidity.shape != concentration.shape:
        raise AddonConfigError(
            f"liquidity {liquidity.shape} and concentration {concentration.shape} must both "
            "have shape (n_positions,)"
        )
    if indptr.ndim != 1 or indptr.size < 1 or indptr[0] != 0 or indptr[-1] != liquidity.size \
            or np.any(np.diff(indptr) < 0):
        raise AddonConfigError(
            f"indptr must be non-decreasing from 0 to n_positions = {liquidity.size}"
        )
    return per_set_sum(liquidity + concentration, indptr)
