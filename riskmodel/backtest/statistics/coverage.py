"""VaR coverage tests: Kupiec POF, Christoffersen independence, conditional coverage, Basel zones.

Conventions (DESIGN.md): losses are positive; ``var`` is a positive number at tail probability
``alpha = 1 - confidence``; an *exception* (hit) on date ``t`` is ``realized_loss_t > var_t``
(strict). Every function here is pure (counts or hit sequences in, numbers out).

* Kupiec (1995) proportion of failures, unconditional coverage, ``phat = x / n``::

      LR_pof = -2 ln[(1 - p)^(n - x) p^x] + 2 ln[(1 - phat)^(n - x) phat^x]  ~  chi2(1)

* Christoffersen (1998) first-order Markov independence, from the transition counts ``n_ij``
  of consecutive hits (``pi01 = n01 / (n00 + n01)``, ``pi11 = n11 / (n10 + n11)``,
  ``pi = (n01 + n11) / (n00 + n01 + n10 + n11)``)::

      LR_ind = -2 ln[(1 - pi)^(n00 + n10) pi^(n01 + n11)]
               + 2 ln[(1 - pi01)^n00 pi01^n01 (1 - pi11)^n10 pi11^n11]  ~  chi2(1)

  and conditional coverage ``LR_cc = LR_pof + LR_ind ~ chi2(2)``; ``0 ln 0 = 0`` throughout.
* Basel (1996) traffic light: with ``X ~ Binomial(n, 1 - confidence)``, green while
  ``P(X <= x) < 95%``, yellow while it is ``< 99.99%``, red otherwise (250 observations at 99%:
  green 0-4, yellow 5-9, red 10 or more).

Independence caveat
-------------------
Kupiec, Christoffersen, the traffic light and Z2 (:mod:`.es_test`) assume that the hits (the
Z2 terms) of different dates are independent under the null. With a margin period of risk of
``h > 1`` days the realised losses over ``t..t+h`` overlap, so even a correct model produces
serially correlated hits and Christoffersen's test rejects more often than its nominal size.
Feed every ``h``-th date (non-overlapping windows) for a test with the nominal size;
:func:`~riskmodel.backtest.statistics.summarise` tests what it is given.

References
----------
* Kupiec, P. (1995). Techniques for verifying the accuracy of risk measurement models. Journal
  of Derivatives 3(2), 73-84.
* Christoffersen, P. (1998). Evaluating interval forecasts. International Economic Review 39(4),
  841-862.
* Basel Committee on Banking Supervision (1996). Supervisory framework for the use of
  "backtesting" in conjunction with the internal models approach to market risk capital
  requirements.
"""

from __future__ import annotations

import math
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike
from scipy import special, stats

from riskmodel.backtest.statistics._validation import complement, valid_counts, valid_rate

__all__ = [
    "TrafficLight",
    "christoffersen_independence",
    "conditional_coverage",
    "independence_lr_from_counts",
    "kupiec_pof",
    "traffic_light",
    "traffic_light_bounds",
    "transition_counts",
]

TrafficLight = Literal["green", "yellow", "red"]

# Basel (1996) zone boundaries on the binomial CDF P(X <= x).
_YELLOW_FROM_CDF = 0.95
_RED_FROM_CDF = 0.9999


def _hits(values: ArrayLike) -> np.ndarray:
    arr = np.asarray(values)
    if arr.ndim != 1:
        raise ValueError(f"hits must be 1-D, got shape {arr.shape}")
    if arr.dtype != np.bool_:
        if not np.isin(arr, (0, 1)).all():
            raise ValueError("hits must be booleans (or 0/1)")
        arr = arr.astype(bool)
    return arr


def kupiec_pof(n_obs: int, exceptions: int, expected_rate: float) -> tuple[float, float]:
    """Kupiec (1995) proportion-of-failures likelihood-ratio test of unconditional coverage.

    With ``n = n_obs``, ``x = exceptions``, ``p = expected_rate`` and ``phat = x / n``::

        LR_pof = -2 ln[(1 - p)^(n - x) p^x] + 2 ln[(1 - phat)^(n - x) phat^x]  ~  chi2(1)

    using ``0 ln 0 = 0``, so ``x = 0`` and ``x = n`` are finite (``LR = -2 n ln(1 - p)`` and
    ``-2 n ln p``).

    Parameters
    ----------
    n_obs : int, number of observations (>= 1).
    exceptions : int, number of exceptions, in ``[0, n_obs]``.
    expected_rate : float, the exception probability under the null, ``1 - confidence``.

    Returns
    -------
    (lr, pvalue) : floats; ``pvalue = P(chi2(1) >= lr)``. Small p-values reject correct coverage
        (too many *or* too few exceptions).
    """
    n, x = valid_counts(n_obs, exceptions)
    p = valid_rate("expected_rate", expected_rate)
    phat = x / n
    log_null = (n - x) * math.log1p(-p) + x * math.log(p)
    log_alt = float(special.xlogy(n - x, 1.0 - phat) + special.xlogy(x, phat))
    lr = max(0.0, -2.0 * (log_null - log_alt))
    return lr, float(stats.chi2.sf(lr, 1))


def transition_counts(hits: ArrayLike) -> tuple[int, int, int, int]:
    """Counts ``(n00, n01, n10, n11)`` of consecutive pairs of a hit sequence.

    ``n_ij`` is the number of dates ``t >= 1`` with ``hit[t-1] == i`` and ``hit[t] == j``.

    Parameters
    ----------
    hits : array of bool, shape (T,), in date order.
    """
    h = _hits(hits).astype(np.int8)
    if h.size < 2:
        return 0, 0, 0, 0
    code = 2 * h[:-1] + h[1:]
    c = np.bincount(code, minlength=4)
    return int(c[0]), int(c[1]), int(c[2]), int(c[3])


def independence_lr_from_counts(n00: int, n01: int, n10: int, n11: int) -> tuple[float, float]:
    """Christoffersen (1998) first-order Markov independence LR from transition counts.

    With ``pi01 = n01 / (n00 + n01)``, ``pi11 = n11 / (n10 + n11)`` and
    ``pi = (n01 + n11) / (n00 + n01 + n10 + n11)``::

        LR_ind = -2 ln[(1 - pi)^(n00 + n10) pi^(n01 + n11)]
                 + 2 ln[(1 - pi01)^n00 pi01^n01 (1 - pi11)^n10 pi11^n11]  ~  chi2(1)

    with ``0 ln 0 = 0``. When a kind of transition never occurs (no hits at all, hits only, no
    pair starting from a hit) the two likelihoods coincide: ``LR = 0``, ``pvalue = 1``. Counts
    summed over several independent sequences give the pooled test (no transition is counted
    across two sequences).

    Returns
    -------
    (lr, pvalue) : floats.

    Raises
    ------
    ValueError
        If the counts are negative or all zero (fewer than two observations: no transition).
    """
    counts = (n00, n01, n10, n11)
    if any(int(c) != c or c < 0 for c in counts):
        raise ValueError(f"transition counts must be non-negative integers, got {counts}")
    total = n00 + n01 + n10 + n11
    if total == 0:
        raise ValueError("the independence test needs at least two observations (one transition)")
    xlogy = special.xlogy
    pi = (n01 + n11) / total
    log_null = xlogy(n00 + n10, 1.0 - pi) + xlogy(n01 + n11, pi)
    log_alt = 0.0
    if n00 + n01 > 0:
        pi01 = n01 / (n00 + n01)
        log_alt += xlogy(n00, 1.0 - pi01) + xlogy(n01, pi01)
    if n10 + n11 > 0:
        pi11 = n11 / (n10 + n11)
        log_alt += xlogy(n10, 1.0 - pi11) + xlogy(n11, pi11)
    lr = max(0.0, float(-2.0 * (log_null - log_alt)))
    return lr, float(stats.chi2.sf(lr, 1))


def christoffersen_independence(hits: ArrayLike) -> tuple[float, float]:
    """Christoffersen (1998) independence test of a hit sequence against first-order clustering.

    See :func:`independence_lr_from_counts` for the formula; the counts come from
    :func:`transition_counts`.

    Parameters
    ----------
    hits : array of bool, shape (T,), ``T >= 2``, in date order.

    Returns
    -------
    (lr, pvalue) : floats; ``(0.0, 1.0)`` when a kind of transition never occurs (e.g. no hits).
    """
    return independence_lr_from_counts(*transition_counts(hits))


def conditional_coverage(hits: ArrayLike, expected_rate: float) -> tuple[float, float]:
    """Christoffersen (1998) conditional coverage: ``LR_cc = LR_pof + LR_ind ~ chi2(2)``.

    ``LR_pof`` is Kupiec's statistic on all ``T`` observations and ``LR_ind`` the independence
    statistic on the ``T - 1`` transitions (the usual decomposition; Christoffersen's exact
    ``LR_cc`` conditions ``LR_pof`` on the first observation too, which differs by one term).

    Parameters
    ----------
    hits : array of bool, shape (T,), ``T >= 2``, in date order.
    expected_rate : float, exception probability under the null.

    Returns
    -------
    (lr, pvalue) : floats.
    """
    h = _hits(hits)
    lr_pof, _ = kupiec_pof(h.size, int(h.sum()), expected_rate)
    lr_ind, _ = christoffersen_independence(h)
    lr = lr_pof + lr_ind
    return lr, float(stats.chi2.sf(lr, 2))


def traffic_light_bounds(n_obs: int, confidence: float) -> tuple[int, int]:
    """First exception counts of the yellow and red zones, scaled to ``n_obs`` observations.

    Basel Committee (1996): the yellow zone starts at the smallest ``x`` with binomial
    ``P(X <= x) >= 95%``, the red zone at the smallest ``x`` with ``P(X <= x) >= 99.99%``,
    ``X ~ Binomial(n_obs, 1 - confidence)``. For 250 observations at 99%: yellow from 5, red
    from 10.

    Returns
    -------
    (yellow_from, red_from) : ints.
    """
    n, _ = valid_counts(n_obs, 0)
    p = complement(valid_rate("confidence", confidence))
    cdf = stats.binom.cdf(np.arange(n + 1), n, p)
    cdf[-1] = 1.0
    return int(np.argmax(cdf >= _YELLOW_FROM_CDF)), int(np.argmax(cdf >= _RED_FROM_CDF))


def traffic_light(n_obs: int, exceptions: int, confidence: float) -> TrafficLight:
    """Basel (1996) traffic-light zone of a VaR backtest, scaled to the sample size.

    ``green`` while ``P(X <= exceptions) < 95%``, ``yellow`` while it is ``< 99.99%``, ``red``
    otherwise, with ``X ~ Binomial(n_obs, 1 - confidence)``. At 250 observations and 99%:
    green 0-4, yellow 5-9, red 10 or more (the published table).

    Parameters
    ----------
    n_obs : int, number of observations (>= 1).
    exceptions : int, in ``[0, n_obs]``.
    confidence : float, the VaR confidence level.
    """
    n, x = valid_counts(n_obs, exceptions)
    p = complement(valid_rate("confidence", confidence))
    cdf = 1.0 if x == n else float(stats.binom.cdf(x, n, p))
    if cdf < _YELLOW_FROM_CDF:
        return "green"
    if cdf < _RED_FROM_CDF:
        return "yellow"
    return "red"
