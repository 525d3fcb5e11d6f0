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

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from riskmodel.config import RateTable
from riskmodel.errors import UsageError
from riskmodel.margin.policy import per_set_sum, position_rates
from riskmodel.validation import is_finite_number, is_number

__all__ = [
    "AddonConfigError",
    "AddonPolicy",
    "ThresholdTable",
    "position_addons",
    "set_addons",
]


class AddonConfigError(UsageError, ValueError):
    """An add-on setting or input out of range; a :class:`ValueError` and a ``UsageError``.

    The message names the field and the offending value.
    """


@dataclass(frozen=True)
class ThresholdTable(RateTable):
    """Concentration thresholds (absolute notional, reporting currency) per position.

    Same lookup as :class:`~riskmodel.config.RateTable` (the inherited ``rate`` method:
    underlying, then instrument kind, then default), but the values are thresholds, not rates:
    each must be ``> 0`` and may be ``math.inf`` (no concentration charge). The default is
    ``math.inf``. (``RateTable.validate`` requires values in [0, 10], which does not fit.)
    """

    default: float = math.inf
    kind: Mapping[str, float] = field(default_factory=dict)
    underlying: Mapping[str, float] = field(default_factory=dict)

    def validate(self, name: str, *, strictly_positive: bool = True,
                 error: type[Exception] = AddonConfigError) -> None:
        """Raise ``error`` unless every threshold is a number in (0, inf] (NaN is not)."""
        for key, value in self.entries(name):
            if not (is_number(value) and value > 0.0):
                raise error(f"config: {key} = {value!r} must be a number > 0 (inf: no threshold)")
        self.check_kinds(name, error)


@dataclass(frozen=True)
class AddonPolicy:
    """Settings of the liquidity and concentration add-ons; validated on construction.

    Attributes
    ----------
    spreads : RateTable
        Full bid-ask spread as a fraction of price (default 0: no liquidity charge).
    concentration_threshold : ThresholdTable
        Threshold ``T`` in absolute notional (default ``math.inf``: no concentration charge).
    concentration_rate : RateTable
        ``rate`` of the concentration formula (default 0).
    concentration_power : float
        ``power`` of the concentration formula, in (1, 10] (default 1.5).
    threshold_adv_multiple : float or None
        When set (> 0) and an ADV is given for the underlying, ``T = multiple x ADV``.

    Raises
    ------
    AddonConfigError
        (a ``ValueError``) naming the field and value when a setting is out of range.
    """

    spreads: RateTable = field(default_factory=lambda: RateTable(default=0.0))
    concentration_threshold: ThresholdTable = field(default_factory=ThresholdTable)
    concentration_rate: RateTable = field(default_factory=lambda: RateTable(default=0.0))
    concentration_power: float = 1.5
    threshold_adv_multiple: float | None = None

    def __post_init__(self) -> None:
        for name in ("spreads", "concentration_rate"):
            table = getattr(self, name)
            if not isinstance(table, RateTable):
                raise AddonConfigError(f"config: addons.{name} = {table!r} must be a RateTable")
            table.validate(f"addons.{name}", error=AddonConfigError)
        if not isinstance(self.concentration_threshold, ThresholdTable):
            raise AddonConfigError("config: addons.concentration_threshold = "
                                   f"{self.concentration_threshold!r} must be a ThresholdTable")
        self.concentration_threshold.validate("addons.concentration_threshold")
        power = self.concentration_power
        if not is_finite_number(power) or not 1.0 < power <= 10.0:
            raise AddonConfigError(
                f"config: addons.concentration_power = {power!r} must be in (1, 10]"
            )
        multiple = self.threshold_adv_multiple
        if multiple is not None and (not is_finite_number(multiple) or multiple <= 0.0):
            raise AddonConfigError(
                f"config: addons.threshold_adv_multiple = {multiple!r} must be a finite "
                "number > 0 (or unset)"
            )


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
