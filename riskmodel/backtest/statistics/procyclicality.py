"""Procyclicality of a margin series: peak-to-trough ratio and largest n-day increase.

For a margin series ``M_t`` (``>= 0``, in date order) over a review window:

* peak-to-trough ratio ``max_t M_t / min_t M_t`` (1 for a constant margin, larger for a more
  procyclical one; undefined when the minimum is 0);
* largest ``n``-day increase ``max_t M_{t+n} / M_t - 1``, point to point over ``n``
  observations, as a fraction (CPMI-IOSCO disclosure 6.5 asks for ``n = 1`` and ``5``).

References
----------
* CPMI-IOSCO (2015). Public quantitative disclosure standards for central counterparties,
  section 6 (margin).
* ESMA (2018). Guidelines on EMIR anti-procyclicality margin measures for central
  counterparties.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from riskmodel.backtest.statistics._validation import finite_1d

__all__ = ["max_increase", "peak_to_trough"]


def _margin_series(margin: ArrayLike) -> np.ndarray:
    m = finite_1d("margin", margin)
    if m.size == 0:
        raise ValueError("margin must not be empty")
    if (m < 0).any():
        i = int(np.flatnonzero(m < 0)[0])
        raise ValueError(f"margin must be >= 0, found {m[i]} at index {i}")
    return m


def peak_to_trough(margin: ArrayLike) -> float | None:
    """Peak-to-trough ratio ``max_t M_t / min_t M_t`` of a margin series over its window.

    The procyclicality measure of CPMI-IOSCO's quantitative disclosures and of ESMA's EMIR
    anti-procyclicality guidelines: 1 for a constant margin, larger for a more procyclical one.
    The window is the whole series given (slice it for a review period).

    Parameters
    ----------
    margin : ndarray of shape (T,), ``>= 0``, in date order.

    Returns
    -------
    float, or None when the minimum is 0 (the ratio is unbounded or, all zero, undefined).
    """
    m = _margin_series(margin)
    low = float(m.min())
    if low == 0.0:
        return None
    return float(m.max()) / low


def max_increase(margin: ArrayLike, days: int = 1) -> float | None:
    """Largest relative change ``max_t M_{t+days} / M_t - 1`` over ``days`` observations.

    The "largest n-day increase" of CPMI-IOSCO disclosure 6.5 (e.g. ``days = 1`` and ``5``), as
    a fraction (0.25 = +25%). Point to point over ``days`` rows; a series that only falls gives
    a negative number. Pairs starting at a zero margin (an infinite relative increase) are left
    out.

    Parameters
    ----------
    margin : ndarray of shape (T,), ``>= 0``, in date order.
    days : int, ``>= 1``.

    Returns
    -------
    float, or None when there is no pair (``T <= days``) or every pair starts at zero.
    """
    if int(days) != days or days < 1:
        raise ValueError(f"days = {days!r} must be a positive integer")
    m = _margin_series(margin)
    d = int(days)
    if m.size <= d:
        return None
    base, later = m[:-d], m[d:]
    ok = base > 0
    if not ok.any():
        return None
    return float(np.max(later[ok] / base[ok]) - 1.0)
