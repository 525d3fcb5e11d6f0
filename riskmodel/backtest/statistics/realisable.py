"""The realisable flat rate: a flat rate on gross notional that a venue could actually have run.

The hindsight benchmark (:func:`~riskmodel.backtest.statistics.flat_rate_equivalent`) picks its
rate knowing every loss of the backtest. A venue cannot: it sets a rate from the history it
has and keeps it until the next review. The realisable flat rate is that schedule, per netting
set, at the model's own confidence ``a``:

* *observations*: the set's ``h``-day losses per unit of gross notional, ``q_s = L_s / N_s``
  (``N_s > 0``), each known from the date ``s + h`` on (``known_at``);
* *re-set dates*: the set's first date, then every ``reset_every``-th of its dates;
* *the rate set on a re-set date* ``tau``: the ``a``-quantile, by the VaR definition (the
  smallest ``l`` with ``#{q <= l} / n >= a``: ``numpy.quantile(..., method="inverted_cdf")``),
  of the last ``lookback`` observations known at ``tau`` (``known_at <= tau``), floored at 0; it
  holds on every date up to the next re-set date;
* *warm-up*: with fewer than ``min_obs`` observations known (default ``ceil(1 / (1 - a))``,
  so that at least one lies at or beyond the quantile) no rate is set (``warm`` False): the
  caller charges the venue's configured flat rate on those dates.

Coverage-equivalent (:func:`realisable_equivalent`): the schedule scaled by the smallest
constant factor ``k`` whose margin ``k x rate_t x N_t`` breaches no more often than the model;
its mean margin is what the realisable rule costs at the model's coverage. It is
:func:`~riskmodel.backtest.statistics.flat_rate_equivalent` with the schedule's margin in place
of the notional, so it is exact (an order statistic of ``L_t / margin_t``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from riskmodel.backtest.statistics._validation import complement, finite_1d, valid_rate
from riskmodel.backtest.statistics.flat_rate import FlatRateEquivalent, flat_rate_equivalent

__all__ = [
    "DEFAULT_RESET_EVERY",
    "RealisableRates",
    "realisable_equivalent",
    "realisable_flat_rates",
]

#: Dates between two re-sets of the realisable flat rate: a monthly review of business days
#: (the GARCH recalibration's default schedule).
DEFAULT_RESET_EVERY = 21


@dataclass(frozen=True)
class RealisableRates:
    """The realisable schedule of one netting set on its dates.

    Attributes
    ----------
    rate : ndarray of shape (n_dates,), the rate in force (0 where ``warm`` is False).
    warm : ndarray of bool, shape (n_dates,), whether a rate was set from history.
    reset : ndarray of bool, shape (n_dates,), the re-set dates.
    n_window : ndarray of int, shape (n_dates,), observations behind the rate in force.
    """

    rate: np.ndarray
    warm: np.ndarray
    reset: np.ndarray
    n_window: np.ndarray


def _sorted_times(name: str, values: ArrayLike) -> np.ndarray:
    arr = np.asarray(values)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got shape {arr.shape}")
    if arr.size > 1 and np.any(arr[1:] < arr[:-1]):
        raise ValueError(f"{name} must be sorted in increasing order")
    return arr


def realisable_flat_rates(
    known_at: ArrayLike,
    loss: ArrayLike,
    notional: ArrayLike,
    dates: ArrayLike,
    *,
    confidence: float,
    lookback: int,
    reset_every: int = DEFAULT_RESET_EVERY,
    min_obs: int | None = None,
) -> RealisableRates:
    """The realisable flat rate of one netting set on each of its dates (module docstring).

    Parameters
    ----------
    known_at : ndarray of shape (n_obs,), sorted: when each observation's loss is known
        (``s + h``), datetime64 or numbers comparable with ``dates``.
    loss, notional : ndarray of shape (n_obs,), finite, ``notional >= 0``: the ``h``-day loss
        (positive) and the gross notional at its start; observations with no notional are
        left out.
    dates : ndarray of shape (n_dates,), sorted: the dates the rate is charged on.
    confidence : float in (0, 1), the quantile level (the model's).
    lookback : int >= 1, the most recent known observations used.
    reset_every : int >= 1, re-set on every ``reset_every``-th date (the first included).
    min_obs : int >= 1, optional; fewest observations to set a rate (default
        ``ceil(1 / (1 - confidence))``).

    Returns
    -------
    RealisableRates
    """
    a = valid_rate("confidence", confidence)
    for name, value in (("lookback", lookback), ("reset_every", reset_every)):
        if int(value) != value or value < 1:
            raise ValueError(f"{name} = {value!r} must be an integer >= 1")
    need = math.ceil(1.0 / complement(a) - 1e-9) if min_obs is None else int(min_obs)
    if need < 1:
        raise ValueError(f"min_obs = {min_obs!r} must be >= 1")
    known = _sorted_times("known_at", known_at)
    when = _sorted_times("dates", dates)
    los = finite_1d("loss", loss)
    nominal = finite_1d("notional", notional)
    if not known.shape == los.shape == nominal.shape:
        raise ValueError(f"known_at, loss and notional shapes differ: {known.shape}, "
                         f"{los.shape}, {nominal.shape}")
    if (nominal < 0).any():
        raise ValueError("notional must be >= 0")
    live = nominal > 0
    known, q = known[live], los[live] / nominal[live]
    n = when.size
    starts = np.arange(0, n, int(reset_every))
    # observations known on each re-set date: a prefix of the sorted known_at
    stops = np.searchsorted(known, when[starts], side="right")
    held_rate, held_n = np.zeros(starts.size), np.zeros(starts.size, dtype=np.int64)
    for k, stop in enumerate(stops):  # one quantile per re-set date
        window = q[max(0, int(stop) - int(lookback)):int(stop)]
        held_n[k] = window.size
        if window.size >= need:
            held_rate[k] = max(0.0, float(np.quantile(window, a, method="inverted_cdf")))
    # each date holds the rate of the last re-set on or before it
    segment = np.repeat(np.arange(starts.size), np.diff(np.append(starts, n)))
    reset = np.zeros(n, dtype=bool)
    reset[starts] = True
    held_warm = held_n >= need
    rate, warm, n_window = held_rate[segment], held_warm[segment], held_n[segment]
    return RealisableRates(rate, warm, reset, n_window)


def realisable_equivalent(
    realized_loss: ArrayLike, realisable_margin: ArrayLike, model_breaches: int
) -> FlatRateEquivalent:
    """The realisable schedule scaled to the model's coverage (module docstring).

    Parameters
    ----------
    realized_loss : ndarray of shape (T,), finite.
    realisable_margin : ndarray of shape (T,), finite, ``>= 0``: the schedule's margin
        ``rate_t x N_t`` (warm-up dates: the configured flat rate's margin).
    model_breaches : int >= 0, the breaches to match.

    Returns
    -------
    FlatRateEquivalent
        ``rate`` is the scale factor ``k``; ``breaches`` its breach count and
        ``mean_margin = mean_t(k x realisable_margin_t)``.
    """
    return flat_rate_equivalent(realized_loss, realisable_margin, model_breaches)
