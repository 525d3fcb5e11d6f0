"""Backtest statistics: VaR coverage tests, the ES test Z2, procyclicality and flat-rate benchmarks.

Conventions (DESIGN.md): losses are positive; ``var`` and ``es`` are positive numbers at tail
probability ``alpha = 1 - confidence``; an *exception* (hit) on date ``t`` is
``realized_loss_t > var_t`` (strict), a *margin breach* ``realized_loss_t > initial_margin_t``.

Every function here is pure (arrays in, numbers out) except :func:`summarise`, which turns the
long backtest table (one row per date and netting set) into a JSON-ready summary.

Independence caveat
-------------------
Kupiec, Christoffersen, the traffic light and Z2 assume that the hits (the Z2 terms) of
different dates are independent under the null. With a margin period of risk of ``h > 1`` days
the realised losses over ``t..t+h`` overlap, so even a correct model produces serially correlated
hits and Christoffersen's test rejects more often than its nominal size. Feed every ``h``-th date
(non-overlapping windows) for a test with the nominal size; :func:`summarise` tests what it is
given.

References
----------
* Kupiec, P. (1995). Techniques for verifying the accuracy of risk measurement models. Journal
  of Derivatives 3(2), 73-84.
* Christoffersen, P. (1998). Evaluating interval forecasts. International Economic Review 39(4),
  841-862.
* Basel Committee on Banking Supervision (1996). Supervisory framework for the use of
  "backtesting" in conjunction with the internal models approach to market risk capital
  requirements.
* Acerbi, C. and Szekely, B. (2014). Backtesting expected shortfall. Risk, December 2014.
* CPMI-IOSCO (2015). Public quantitative disclosure standards for central counterparties,
  section 6 (margin); ESMA (2018) Guidelines on EMIR anti-procyclicality margin measures.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Literal, TypedDict

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike
from scipy import special, stats

__all__ = [
    "FlatRateEquivalent",
    "LossSampler",
    "MatchedLossDistribution",
    "acerbi_szekely_z2",
    "christoffersen_independence",
    "conditional_coverage",
    "flat_rate_equivalent",
    "independence_lr_from_counts",
    "kupiec_pof",
    "matched_loss_distribution",
    "max_increase",
    "peak_to_trough",
    "summarise",
    "traffic_light",
    "traffic_light_bounds",
    "transition_counts",
    "z2_critical_value",
    "z2_statistic",
]

TrafficLight = Literal["green", "yellow", "red"]

#: ``simulate(rng, n_sim)`` returns simulated losses of shape ``(n_sim, T)`` drawn under the
#: model's own predictive distributions of the ``T`` dates (the null hypothesis of Z2).
LossSampler = Callable[[np.random.Generator, int], np.ndarray]

REQUIRED_COLUMNS = (
    "date",
    "account_id",
    "netting_set",
    "var",
    "es",
    "initial_margin",
    "flat_rate_margin",
    "realized_loss",
    "gross_notional",
)
# Boolean columns checked against their definition when present.
_FLAG_DEFINITIONS = {
    "exception": "var",
    "margin_breach": "initial_margin",
    "flat_rate_breach": "flat_rate_margin",
}

# Basel (1996) zone boundaries on the binomial CDF P(X <= x).
_YELLOW_FROM_CDF = 0.95
_RED_FROM_CDF = 0.9999


# --------------------------------------------------------------------------------------------
# Validation helpers
# --------------------------------------------------------------------------------------------


def _rate(name: str, value: float) -> float:
    value = float(value)
    if not 0.0 < value < 1.0:
        raise ValueError(f"{name} = {value!r} must be in (0, 1)")
    return value


def _complement(confidence: float) -> float:
    """``1 - confidence`` rounded to 15 significant digits (0.01, not 0.010000000000000009)."""
    return float(f"{1.0 - confidence:.15g}")


def _finite_1d(name: str, values: ArrayLike) -> np.ndarray:
    arr = np.asarray(values, dtype=np.float64)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got shape {arr.shape}")
    if not np.isfinite(arr).all():
        i = int(np.flatnonzero(~np.isfinite(arr))[0])
        raise ValueError(f"{name} must be finite, found {arr[i]} at index {i}")
    return arr


def _hits(values: ArrayLike) -> np.ndarray:
    arr = np.asarray(values)
    if arr.ndim != 1:
        raise ValueError(f"hits must be 1-D, got shape {arr.shape}")
    if arr.dtype != np.bool_:
        if not np.isin(arr, (0, 1)).all():
            raise ValueError("hits must be booleans (or 0/1)")
        arr = arr.astype(bool)
    return arr


def _counts(n_obs: int, exceptions: int) -> tuple[int, int]:
    n, x = int(n_obs), int(exceptions)
    if n != n_obs or x != exceptions:
        raise ValueError(f"n_obs and exceptions must be integers, got {n_obs!r}, {exceptions!r}")
    if n < 1:
        raise ValueError(f"n_obs = {n} must be >= 1")
    if not 0 <= x <= n:
        raise ValueError(f"exceptions = {x} must be in [0, n_obs = {n}]")
    return n, x


# --------------------------------------------------------------------------------------------
# VaR coverage: Kupiec, Christoffersen, traffic light
# --------------------------------------------------------------------------------------------


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
    n, x = _counts(n_obs, exceptions)
    p = _rate("expected_rate", expected_rate)
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
    n, _ = _counts(n_obs, 0)
    p = _complement(_rate("confidence", confidence))
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
    n, x = _counts(n_obs, exceptions)
    p = _complement(_rate("confidence", confidence))
    cdf = 1.0 if x == n else float(stats.binom.cdf(x, n, p))
    if cdf < _YELLOW_FROM_CDF:
        return "green"
    if cdf < _RED_FROM_CDF:
        return "yellow"
    return "red"


# --------------------------------------------------------------------------------------------
# Expected shortfall: Acerbi-Szekely Z2
# --------------------------------------------------------------------------------------------


def _validate_tail(
    realized_loss: ArrayLike | None, var: ArrayLike, es: ArrayLike, alpha: float
) -> tuple[np.ndarray | None, np.ndarray, np.ndarray, float]:
    a = _rate("alpha", alpha)
    v = _finite_1d("var", var)
    e = _finite_1d("es", es)
    if v.shape != e.shape:
        raise ValueError(f"var and es must have the same shape, got {v.shape} and {e.shape}")
    if v.size == 0:
        raise ValueError("Z2 needs at least one observation")
    if (e <= 0).any():
        i = int(np.flatnonzero(e <= 0)[0])
        raise ValueError(f"es must be > 0 for Z2, found {e[i]} at index {i}")
    # ES >= VaR by definition; allow rounding (relative 1e-9) and clip it.
    tol = 1e-9 * np.maximum(np.abs(v), np.abs(e))
    if (e < v - tol).any():
        i = int(np.flatnonzero(e < v - tol)[0])
        raise ValueError(f"es must be >= var, found es={e[i]} < var={v[i]} at index {i}")
    e = np.maximum(e, v)
    loss = None
    if realized_loss is not None:
        loss = _finite_1d("realized_loss", realized_loss)
        if loss.shape != v.shape:
            raise ValueError(
                f"realized_loss must have the shape of var, got {loss.shape} and {v.shape}"
            )
    return loss, v, e, a


def z2_statistic(realized_loss: ArrayLike, var: ArrayLike, es: ArrayLike, alpha: float) -> float:
    """Acerbi and Szekely (2014) Z2 statistic, losses positive.

    In the paper, with P&L ``X_t`` and positive ``VaR_t``, ``ES_t`` at tail probability ``alpha``:
    ``Z2 = sum_t X_t I_t / (T alpha ES_t) + 1`` with ``I_t = 1{X_t + VaR_t < 0}``. With losses
    ``L_t = -X_t``::

        Z2 = 1 - sum_t L_t 1{L_t > VaR_t} / (T alpha ES_t)

    ``E[Z2] = 0`` under the null (the forecast distributions are right in the tail); negative
    values mean the realised tail losses exceed what ES predicted (rejection for large negative
    Z2).

    Parameters
    ----------
    realized_loss, var, es : ndarrays of shape (T,); ``es > 0`` and ``es >= var``.
    alpha : float, the tail probability at which ``var`` and ``es`` were computed.
    """
    loss, v, e, a = _validate_tail(realized_loss, var, es, alpha)
    assert loss is not None
    return float(1.0 - np.sum(np.where(loss > v, loss, 0.0) / e) / (loss.size * a))


def _t_es_ratio(df: np.ndarray, alpha: float) -> np.ndarray:
    """ES / VaR of a zero-location Student-t at tail probability ``alpha``, shape of ``df``."""
    q = stats.t.isf(alpha, df)
    es = (df + q * q) / (df - 1.0) * stats.t.pdf(q, df) / alpha
    return np.asarray(es / q)


@lru_cache(maxsize=32)
def _df_table(alpha: float) -> tuple[np.ndarray, np.ndarray, float, float]:
    """Interpolation table of ``log(df - 1)`` against ``log(ratio - normal ratio)``.

    Both ends are near-linear in these coordinates (``ratio ~ 1 / (df - 1)`` as ``df -> 1``,
    ``ratio - normal ~ c / df`` as ``df -> inf``), so linear interpolation on 4,001 points
    recovers ``df`` to about 1e-7 relative.
    """
    z = float(stats.norm.isf(alpha))
    normal_ratio = float(stats.norm.pdf(z) / (alpha * z))
    u = np.linspace(math.log(1e-3), math.log(1e6), 4001)
    ratio = _t_es_ratio(1.0 + np.exp(u), alpha)
    y = np.log(ratio - normal_ratio)
    if not (np.diff(y) < 0).all():  # pragma: no cover - a property of the t family
        raise RuntimeError("ES/VaR ratio of the Student-t is not monotone on the table")
    return y[::-1].copy(), u[::-1].copy(), normal_ratio, float(ratio[-1])


@dataclass(frozen=True, eq=False)
class MatchedLossDistribution:
    """Per-date loss distributions ``L_t = loc_t + scale_t * Z_t``, ``Z_t ~ t(df_t)`` or N(0, 1).

    Attributes
    ----------
    loc, scale, df : ndarrays of float64, shape (T,); ``df = inf`` means standard normal ``Z``.
    alpha : float, the tail probability the distributions were matched at.

    Use :func:`matched_loss_distribution` to build one; :meth:`sample` is a :data:`LossSampler`.
    """

    loc: np.ndarray
    scale: np.ndarray
    df: np.ndarray
    alpha: float

    def isf(self, prob: np.ndarray, index: np.ndarray) -> np.ndarray:
        """Loss with upper-tail probability ``prob`` on dates ``index`` (arrays of one shape)."""
        df = self.df[index]
        z = np.empty(prob.shape)
        normal = np.isinf(df)
        z[normal] = -special.ndtri(prob[normal])
        z[~normal] = -special.stdtrit(df[~normal], prob[~normal])
        return np.asarray(self.loc[index] + self.scale[index] * z)

    def sample(self, rng: np.random.Generator, n_sim: int) -> np.ndarray:
        """Independent draws of every date's loss, shape (n_sim, T)."""
        n_dates = self.loc.size
        z = rng.standard_normal((n_sim, n_dates))
        fat = ~np.isinf(self.df)
        if fat.any():
            df = self.df[fat]
            z[:, fat] /= np.sqrt(rng.chisquare(df, size=(n_sim, df.size)) / df)
        return np.asarray(self.loc + self.scale * z)


def matched_loss_distribution(
    var: ArrayLike, es: ArrayLike, alpha: float
) -> MatchedLossDistribution:
    """The default null distribution of Z2: each date's loss law matched to its (VaR, ES).

    For each date, with ``r = ES / VaR`` and ``r_N = phi(z) / (alpha z)`` the ratio of the
    normal distribution (``z = Phi^-1(1 - alpha)``; 1.1928 at ``alpha = 2.5%``):

    * ``VaR > 0`` and ``r > r_N`` (fatter tail than normal, the usual case): a zero-location
      Student-t ``L = s T_nu``. ``nu`` solves ``ES_nu / VaR_nu = r`` (the ratio of the standard
      t, ``ES_nu = (nu + q^2) / (nu - 1) f_nu(q) / alpha``, ``q = t_nu^-1(1 - alpha)``, falls
      from infinity at ``nu = 1`` to ``r_N``); ``s = VaR / q``. Both VaR and ES are matched
      exactly, except beyond the table (``nu < 1.001``, ratios above about 700: ``nu = 1.001``,
      VaR matched, ES understated; ``nu > 1e6``: treated as normal below).
    * otherwise (thinner tail than normal, ``VaR <= 0``, or ``ES == VaR``): the normal
      location-scale law matching both, ``sigma = (ES - VaR) / (phi(z) / alpha - z)``,
      ``mu = VaR - sigma z`` (``sigma = 0``, a point mass at VaR, when ``ES == VaR``).

    A zero location is the usual margin-model assumption (no drift over the margin period of
    risk); the Student-t family is the one Acerbi and Szekely (2014) use for their power study.

    Parameters
    ----------
    var, es : ndarrays of shape (T,); ``es >= var`` and ``es > 0``.
    alpha : float, tail probability of ``var`` and ``es``.
    """
    _, v, e, a = _validate_tail(None, var, es, alpha)
    y_table, u_table, normal_ratio, ratio_at_max_df = _df_table(a)
    ratio = np.full(v.shape, -np.inf)
    positive = v > 0
    ratio[positive] = e[positive] / v[positive]
    fat = positive & (ratio > ratio_at_max_df)
    loc = np.zeros(v.shape)
    scale = np.zeros(v.shape)
    df = np.full(v.shape, np.inf)
    if fat.any():
        u = np.interp(np.log(ratio[fat] - normal_ratio), y_table, u_table)  # clamps at the ends
        df[fat] = 1.0 + np.exp(u)
        scale[fat] = v[fat] / stats.t.isf(a, df[fat])
    thin = ~fat
    if thin.any():
        z = float(stats.norm.isf(a))
        sigma = (e[thin] - v[thin]) / (stats.norm.pdf(z) / a - z)
        scale[thin] = sigma
        loc[thin] = v[thin] - sigma * z
    for arr in (loc, scale, df):
        arr.flags.writeable = False
    return MatchedLossDistribution(loc=loc, scale=scale, df=df, alpha=a)


def _rng(seed: int | np.random.Generator | None) -> np.random.Generator:
    return seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)


_TAIL_BATCH = 2**22  # most tail events drawn at once by _simulated_tail_sums


def _simulated_tail_sums(
    dist: MatchedLossDistribution,
    var: np.ndarray,
    es: np.ndarray,
    n_sim: int,
    rng: np.random.Generator,
) -> np.ndarray:
    """``S_j = sum_t L_tj 1{L_tj > VaR_t} / ES_t`` for ``n_sim`` simulated paths, shape (n_sim,).

    Exact and cheap: VaR_t is the ``1 - alpha`` quantile of every matched law, so the tail
    events of the ``T x n_sim`` draws are i.i.d. Bernoulli(alpha); their positions are drawn as
    geometric gaps and only the tail losses are drawn, by inversion ``L = F^-1(1 - alpha V)``,
    ``V ~ U(0, 1]`` (about ``alpha`` of the work of drawing every loss).
    """
    a = dist.alpha
    n_dates = var.size
    total = n_dates * n_sim
    sums = np.zeros(n_sim)
    start = -1  # flat position of the last tail event drawn
    while True:
        # Enough gaps to reach the end with near certainty, at most 4M per batch (memory).
        expect = a * (total - 1 - start)
        batch = int(min(expect + 10.0 * math.sqrt(expect) + 100, _TAIL_BATCH))
        pos = start + np.cumsum(rng.geometric(a, size=batch))
        pos = pos[pos < total]
        if pos.size:
            date, sim = np.divmod(pos, n_sim)
            prob = a * (1.0 - rng.random(pos.size))  # in (0, alpha]
            loss = dist.isf(prob, date)
            contrib = np.where(loss > var[date], loss, 0.0) / es[date]
            sums += np.bincount(sim, weights=contrib, minlength=n_sim)
        if pos.size < batch:
            return sums
        start = int(pos[-1])


def _z2_pvalue(z2: float, simulated: np.ndarray) -> float:
    # Monte Carlo p-value (1 + #{Z2_sim <= z2}) / (1 + n_sim): never 0, exact size.
    return float((1 + np.count_nonzero(simulated <= z2)) / (1 + simulated.size))


def acerbi_szekely_z2(
    realized_loss: ArrayLike,
    var: ArrayLike,
    es: ArrayLike,
    alpha: float,
    *,
    simulate: LossSampler | None = None,
    n_sim: int = 10_000,
    seed: int | np.random.Generator | None = None,
) -> tuple[float, float]:
    """Acerbi-Szekely (2014) Z2 test of expected shortfall, with a simulated p-value.

    The statistic is :func:`z2_statistic`. Its null distribution is simulated: ``n_sim`` paths
    of ``T`` independent losses are drawn under the model's own predictive laws, each path gives
    ``Z2_j`` with the *forecast* ``var`` and ``es``, and the one-sided p-value is
    ``(1 + #{Z2_j <= Z2}) / (1 + n_sim)`` (small p-value: the realised tail is heavier than ES).

    Parameters
    ----------
    realized_loss, var, es : ndarrays of shape (T,); ``es > 0``, ``es >= var``.
    alpha : float, tail probability of ``var`` and ``es`` (e.g. 0.025 for ES 97.5%).
    simulate : LossSampler, optional
        ``simulate(rng, n)`` returns losses of shape ``(n, T)`` under the null. The model's own
        scenario distribution is the best choice where available; the default is
        :func:`matched_loss_distribution` (a Student-t, or a normal, per date, matched to that
        date's VaR and ES).
    n_sim : int, number of simulated paths (>= 1).
    seed : int, Generator or None, randomness of the simulation.

    Returns
    -------
    (z2, pvalue) : floats.
    """
    loss, v, e, a = _validate_tail(realized_loss, var, es, alpha)
    assert loss is not None
    if int(n_sim) != n_sim or n_sim < 1:
        raise ValueError(f"n_sim = {n_sim!r} must be a positive integer")
    n_sim = int(n_sim)
    z2 = z2_statistic(loss, v, e, a)
    rng = _rng(seed)
    n_dates = v.size
    if simulate is None:
        sums = _simulated_tail_sums(matched_loss_distribution(v, e, a), v, e, n_sim, rng)
    else:
        chunk = max(1, 2**22 // n_dates)
        parts = []
        for lo in range(0, n_sim, chunk):
            n = min(chunk, n_sim - lo)
            draws = np.asarray(simulate(rng, n), dtype=np.float64)
            if draws.shape != (n, n_dates):
                raise ValueError(f"simulate returned shape {draws.shape}, expected {(n, n_dates)}")
            parts.append((np.where(draws > v, draws, 0.0) / e).sum(axis=1))
        sums = np.concatenate(parts)
    simulated = 1.0 - sums / (n_dates * a)
    return z2, _z2_pvalue(z2, simulated)


def z2_critical_value(
    n_obs: int,
    alpha: float,
    level: float = 0.05,
    dist: Literal["normal", "t"] = "normal",
    *,
    df: float | None = None,
    n_sim: int = 100_000,
    seed: int | np.random.Generator | None = None,
) -> float:
    """Simulated ``level`` quantile of Z2 for ``n_obs`` i.i.d. losses of a known law.

    Losses are standard normal (``dist="normal"``) or Student-t with ``df`` degrees of freedom
    (``dist="t"``, ``df > 1``), zero location; Z2 does not depend on the scale. Reject at
    ``level`` when Z2 is below the returned value. Acerbi and Szekely (2014) report about
    -0.70 at 5% (and -1.8 at 0.01%) for ``n_obs = 250``, ``alpha = 2.5%``, nearly the same for
    every Student-t.

    Parameters
    ----------
    n_obs : int, the sample size ``T``.
    alpha : float, tail probability of VaR and ES.
    level : float, significance level in (0, 1).
    dist : {"normal", "t"}.
    df : float, degrees of freedom when ``dist == "t"``.
    n_sim : int, number of simulated samples.
    seed : int, Generator or None.
    """
    n, _ = _counts(n_obs, 0)
    a = _rate("alpha", alpha)
    q = _rate("level", level)
    if dist == "normal":
        nu = math.inf
        var = float(stats.norm.isf(a))
        es = float(stats.norm.pdf(var) / a)
    elif dist == "t":
        if df is None or not df > 1.0:
            raise ValueError(f"df = {df!r} must be > 1 for dist='t' (finite ES)")
        nu = float(df)
        var = float(stats.t.isf(a, nu))
        es = float((nu + var * var) / (nu - 1.0) * stats.t.pdf(var, nu) / a)
    else:
        raise ValueError(f"dist = {dist!r} must be 'normal' or 't'")
    if int(n_sim) != n_sim or n_sim < 1:
        raise ValueError(f"n_sim = {n_sim!r} must be a positive integer")
    law = MatchedLossDistribution(
        loc=np.zeros(n), scale=np.ones(n), df=np.full(n, nu), alpha=a
    )
    v, e = np.full(n, var), np.full(n, es)
    sums = _simulated_tail_sums(law, v, e, int(n_sim), _rng(seed))
    return float(np.quantile(1.0 - sums / (n * a), q))


# --------------------------------------------------------------------------------------------
# Procyclicality and the flat-rate benchmark
# --------------------------------------------------------------------------------------------


def _margin_series(margin: ArrayLike) -> np.ndarray:
    m = _finite_1d("margin", margin)
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


class FlatRateEquivalent(TypedDict):
    """Result of :func:`flat_rate_equivalent` (JSON-ready)."""

    rate: float
    breaches: int
    mean_margin: float


def flat_rate_equivalent(
    realized_loss: ArrayLike, gross_notional: ArrayLike, model_breaches: int
) -> FlatRateEquivalent:
    """Lowest flat rate whose margin ``r * gross_notional`` breaches no more often than the model.

    A breach on date ``t`` is ``L_t > r N_t`` (strict, as for the model margin). With
    ``q_t = L_t / N_t`` for ``N_t > 0``, the breach count
    ``f(r) = b0 + #{t : N_t > 0, q_t > r}`` is non-increasing and right-continuous in ``r``,
    where ``b0`` counts dates with ``N_t = 0`` and ``L_t > 0`` (a zero margin whatever the
    rate: unavoidable breaches). With ``m = model_breaches - b0`` and ``q`` sorted in decreasing
    order, the answer is exact, without a grid:

    * ``r = max(0, q_(m+1))`` (1-based) if ``0 <= m < #{N_t > 0}``: any lower rate breaches on
      at least ``m + 1`` dates. Ties at ``q_(m+1)`` do not breach (strict), so ``breaches`` may
      be below ``model_breaches``;
    * ``r = 0`` if ``m >= #{N_t > 0}``;
    * if ``m < 0`` (more unavoidable breaches than the model's), no rate reaches the target and
      ``r = max(0, max q)`` removes every avoidable breach; ``breaches = b0 > model_breaches``.

    In floating point ``q * N_t`` can round below ``L_t``; the returned rate is then raised by
    a few ulps, to the smallest double whose margin ``rate * N_t`` (as computed) breaches no
    more than the exact rate does.

    Parameters
    ----------
    realized_loss : ndarray of shape (T,), finite.
    gross_notional : ndarray of shape (T,), finite, ``>= 0``.
    model_breaches : int, ``>= 0``, the number of breaches to match (e.g. of the initial margin).

    Returns
    -------
    FlatRateEquivalent
        ``rate``, ``breaches`` (the count at ``rate``) and ``mean_margin = mean_t(rate * N_t)``.
    """
    loss = _finite_1d("realized_loss", realized_loss)
    notional = _finite_1d("gross_notional", gross_notional)
    if loss.shape != notional.shape:
        raise ValueError(
            f"realized_loss and gross_notional shapes differ: {loss.shape}, {notional.shape}"
        )
    if loss.size == 0:
        raise ValueError("flat_rate_equivalent needs at least one observation")
    if (notional < 0).any():
        i = int(np.flatnonzero(notional < 0)[0])
        raise ValueError(f"gross_notional must be >= 0, found {notional[i]} at index {i}")
    if int(model_breaches) != model_breaches or model_breaches < 0:
        raise ValueError(f"model_breaches = {model_breaches!r} must be a non-negative integer")
    live = notional > 0
    unavoidable = int(np.count_nonzero(~live & (loss > 0)))
    q = np.sort(loss[live] / notional[live])[::-1]
    allowance = int(model_breaches) - unavoidable
    if q.size == 0 or allowance >= q.size:
        rate = 0.0
    elif allowance < 0:
        rate = max(0.0, float(q[0]))
    else:
        rate = max(0.0, float(q[allowance]))
    # r = L_t / N_t rounded to a double may give r * N_t < L_t in floating point, a breach
    # the exact rate would not have: step up by ulps until the margin as computed covers it.
    target = max(int(model_breaches), unavoidable)
    breaches = int(np.count_nonzero(loss > rate * notional))
    for _ in range(64):
        if breaches <= target:
            break
        rate = float(np.nextafter(rate, np.inf))
        breaches = int(np.count_nonzero(loss > rate * notional))
    else:  # pragma: no cover - a few ulps always suffice
        raise RuntimeError("flat_rate_equivalent: rounding correction did not converge")
    return FlatRateEquivalent(
        rate=rate, breaches=breaches, mean_margin=float(np.mean(rate * notional))
    )


# --------------------------------------------------------------------------------------------
# Summary of a backtest table
# --------------------------------------------------------------------------------------------


def _json_scalar(value: Any) -> Any:
    """A label as a JSON value: numpy scalars to Python, NaN/NA to None, dates to ISO text."""
    if value is None:
        return None
    if isinstance(value, (pd.Timestamp, np.datetime64)):
        ts = pd.Timestamp(value)
        return ts.date().isoformat() if ts == ts.normalize() else ts.isoformat()
    try:
        if pd.isna(value):
            return None
    except (TypeError, ValueError):
        pass
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, (str, int, float, bool)):
        return value
    return str(value)


def _validate_frame(backtest: pd.DataFrame) -> pd.DataFrame:
    if not isinstance(backtest, pd.DataFrame):
        raise TypeError(f"backtest must be a pandas DataFrame, got {type(backtest).__name__}")
    missing = [c for c in REQUIRED_COLUMNS if c not in backtest.columns]
    if missing:
        raise ValueError(f"backtest is missing columns {missing}")
    if len(backtest) == 0:
        raise ValueError("backtest has no rows")
    keys = ["account_id", "netting_set", "date"]

    def where(mask: np.ndarray) -> str:
        row = backtest.loc[np.asarray(mask)].iloc[0]
        return ", ".join(f"{k}={row[k]!r}" for k in keys)

    numeric = {}
    for col in REQUIRED_COLUMNS[3:]:
        try:
            values = backtest[col].to_numpy(dtype=np.float64, na_value=np.nan)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"backtest column {col!r} must be numeric: {exc}") from None
        bad = ~np.isfinite(values)
        if bad.any():
            hint = (
                " (drop the last horizon dates, whose future is unknown, before summarising)"
                if col == "realized_loss"
                else ""
            )
            raise ValueError(
                f"backtest column {col!r} has {int(bad.sum())} non-finite values, first at "
                f"{where(bad)}: {values[bad][0]}{hint}"
            )
        numeric[col] = values
    if (numeric["gross_notional"] < 0).any():
        bad = numeric["gross_notional"] < 0
        raise ValueError(f"backtest column 'gross_notional' is negative at {where(bad)}")
    if backtest["date"].isna().any():
        raise ValueError(f"backtest column 'date' is missing at {where(backtest['date'].isna())}")
    dup = backtest.duplicated(subset=keys).to_numpy()
    if dup.any():
        raise ValueError(f"backtest has {int(dup.sum())} duplicate rows, first at {where(dup)}")
    loss = numeric["realized_loss"]
    for flag, level in _FLAG_DEFINITIONS.items():
        if flag not in backtest.columns:
            continue
        try:
            given = backtest[flag].to_numpy(dtype=bool)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"backtest column {flag!r} must be boolean: {exc}") from None
        mismatch = given != (loss > numeric[level])
        if mismatch.any():
            raise ValueError(
                f"backtest column {flag!r} disagrees with realized_loss > {level} at "
                f"{where(mismatch)} ({int(mismatch.sum())} rows)"
            )
    frame = pd.DataFrame(numeric, index=backtest.index)
    for k in keys:
        frame[k] = backtest[k].to_numpy()
    return frame


def _split_key(key: Hashable) -> tuple[Any, Any]:
    """Split a ``(account_id, netting_set)`` group key."""
    assert isinstance(key, tuple) and len(key) == 2
    return key[0], key[1]


def _coverage_block(
    n_obs: int, exceptions: int, counts: tuple[int, int, int, int], confidence: float
) -> dict[str, Any]:
    p = _complement(confidence)
    lr_pof, p_pof = kupiec_pof(n_obs, exceptions, p)
    if sum(counts) > 0:
        lr_ind, p_ind = independence_lr_from_counts(*counts)
        p_ind_out: float | None = p_ind
        p_cc: float | None = float(stats.chi2.sf(lr_pof + lr_ind, 2))
    else:
        p_ind_out = p_cc = None
    return {
        "n_obs": n_obs,
        "exceptions": exceptions,
        "exception_rate": exceptions / n_obs,
        "expected_rate": p,
        "kupiec_pvalue": p_pof,
        "christoffersen_pvalue": p_ind_out,
        "cc_pvalue": p_cc,
        "traffic_light": traffic_light(n_obs, exceptions, confidence),
    }


def _margin_block(
    loss: np.ndarray,
    margin: np.ndarray,
    flat: np.ndarray,
    notional: np.ndarray,
    series: np.ndarray,
) -> dict[str, Any]:
    n = loss.size
    margin_breaches = int(np.count_nonzero(loss > margin))
    flat_breaches = int(np.count_nonzero(loss > flat))
    return {
        "margin_breaches": margin_breaches,
        "margin_breach_rate": margin_breaches / n,
        "mean_margin": float(np.mean(margin)),
        "peak_to_trough": peak_to_trough(series),
        "max_increase_1d": max_increase(series, 1),
        "max_increase_5d": max_increase(series, 5),
        "flat_rate": {
            "breaches": flat_breaches,
            "breach_rate": flat_breaches / n,
            "mean_margin": float(np.mean(flat)),
        },
        "flat_rate_equivalent": dict(flat_rate_equivalent(loss, notional, margin_breaches)),
    }


def summarise(
    backtest: pd.DataFrame,
    confidence: float,
    measure_alpha: float | None = None,
    *,
    n_sim: int = 2_000,
    seed: int | np.random.Generator | None = 0,
) -> dict[str, Any]:
    """JSON-ready summary of a backtest table, per netting set and pooled.

    Parameters
    ----------
    backtest : DataFrame, one row per date and netting set, with columns ``date, account_id,
        netting_set, var, es, initial_margin, flat_rate_margin, realized_loss, gross_notional``
        and optionally ``exception, margin_breach, flat_rate_breach``, which must equal
        ``realized_loss > var``, ``> initial_margin`` and ``> flat_rate_margin``. Rows whose
        ``realized_loss`` is unknown (NaN: the last horizon dates) must have been dropped.
    confidence : float, the VaR confidence level; ``expected_rate = 1 - confidence``.
    measure_alpha : float, optional
        Tail probability at which the ``var`` and ``es`` columns were computed, for Z2 (both
        at the same level); default ``1 - confidence``.
    n_sim : int, simulated paths of the Z2 p-value (0: no p-value, ``es_z2_pvalue`` None).
    seed : int, Generator or None; the default 0 makes the summary reproducible.

    Returns
    -------
    dict with keys

    ``settings``
        ``confidence, measure_alpha, n_sim, seed`` (seed None unless an int was given).
    ``portfolios``
        one dict per ``(account_id, netting_set)``, sorted by that key: ``account_id,
        netting_set, start, end, n_obs, exceptions, exception_rate, expected_rate,
        kupiec_pvalue, christoffersen_pvalue, cc_pvalue, traffic_light, es_z2, es_z2_pvalue,
        margin_breaches, margin_breach_rate, mean_margin, peak_to_trough, max_increase_1d,
        max_increase_5d, flat_rate: {breaches, breach_rate, mean_margin},
        flat_rate_equivalent: {rate, breaches, mean_margin}``.
    ``pooled``
        the same statistics over all netting sets plus ``n_portfolios``:

        * counts are sums; Kupiec and the traffic light use total exceptions over total
          observations (netting sets treated as independent);
        * Christoffersen uses the transition counts summed over netting sets (no transition
          across two sets) and ``cc`` = pooled ``LR_pof`` + pooled ``LR_ind``, chi2(2);
        * Z2 is computed over all rows (``T`` = total observations) of the netting sets where
          it is defined, its null simulated by summing independent per-set simulations;
        * ``mean_margin`` and the flat-rate means are means over all rows (per netting set and
          date, like the per-set values); the flat-rate equivalent is one rate for all sets,
          matched to the total margin breaches;
        * procyclicality (peak-to-trough, max increases) is of the total initial margin per
          date, summed over the netting sets present on that date.

    Undefined statistics are None, never NaN: Christoffersen and cc with fewer than 2
    observations; Z2 where some ``es <= 0``; ``es_z2_pvalue`` when ``n_sim == 0``;
    peak-to-trough when the minimum margin is 0; max increases with no pair of dates.

    Raises
    ------
    ValueError
        Missing columns, no rows, non-finite numbers (in particular NaN ``realized_loss``),
        negative ``gross_notional``, duplicate ``(account_id, netting_set, date)``, a flag
        column that disagrees with its definition, or ``es < var`` (beyond rounding).
    """
    conf = _rate("confidence", confidence)
    # 1 - 0.99 is 0.010000000000000009 in binary; report the decimal the user meant.
    a = _rate("measure_alpha", _complement(conf) if measure_alpha is None else measure_alpha)
    if int(n_sim) != n_sim or n_sim < 0:
        raise ValueError(f"n_sim = {n_sim!r} must be a non-negative integer")
    n_sim = int(n_sim)
    frame = _validate_frame(backtest)
    # Row order of the input must not change a single bit of the result.
    frame = frame.sort_values(["account_id", "netting_set", "date"], kind="stable")
    frame = frame.reset_index(drop=True)
    seed_seq = np.random.SeedSequence(
        seed.integers(2**63) if isinstance(seed, np.random.Generator) else seed
    )

    groups = list(frame.groupby(["account_id", "netting_set"], sort=True, dropna=False))
    child_seeds = seed_seq.spawn(len(groups))
    portfolios: list[dict[str, Any]] = []
    pooled_counts = np.zeros(4, dtype=np.int64)
    z2_sum = 0.0  # sum over defined sets of sum_t L_t I_t / ES_t
    z2_obs = 0
    z2_sims = np.zeros(n_sim)
    for (key, g), child in zip(groups, child_seeds):
        g = g.sort_values("date", kind="stable")
        loss = g["realized_loss"].to_numpy()
        var = g["var"].to_numpy()
        es = g["es"].to_numpy()
        hits = loss > var
        counts = transition_counts(hits)
        pooled_counts += counts
        account_id, netting_set = _split_key(key)
        entry: dict[str, Any] = {
            "account_id": _json_scalar(account_id),
            "netting_set": _json_scalar(netting_set),
            "start": _json_scalar(g["date"].iloc[0]),
            "end": _json_scalar(g["date"].iloc[-1]),
        }
        entry.update(_coverage_block(loss.size, int(hits.sum()), counts, conf))
        z2: float | None = None
        z2_p: float | None = None
        if (es > 0).all():
            z2 = z2_statistic(loss, var, es, a)
            z2_sum += (1.0 - z2) * loss.size * a
            z2_obs += loss.size
            if n_sim:
                _, v, e, _ = _validate_tail(None, var, es, a)
                law = matched_loss_distribution(v, e, a)
                sums = _simulated_tail_sums(law, v, e, n_sim, np.random.default_rng(child))
                z2_sims += sums
                z2_p = _z2_pvalue(z2, 1.0 - sums / (loss.size * a))
        entry["es_z2"] = z2
        entry["es_z2_pvalue"] = z2_p
        entry.update(
            _margin_block(
                loss,
                g["initial_margin"].to_numpy(),
                g["flat_rate_margin"].to_numpy(),
                g["gross_notional"].to_numpy(),
                g["initial_margin"].to_numpy(),
            )
        )
        portfolios.append(entry)

    n_total = len(frame)
    pooled: dict[str, Any] = {"n_portfolios": len(groups)}
    pooled.update(
        _coverage_block(
            n_total,
            int(np.count_nonzero(frame["realized_loss"].to_numpy() > frame["var"].to_numpy())),
            (int(pooled_counts[0]), int(pooled_counts[1]), int(pooled_counts[2]),
             int(pooled_counts[3])),
            conf,
        )
    )
    pooled_z2: float | None = None
    pooled_z2_p: float | None = None
    if z2_obs:
        pooled_z2 = 1.0 - z2_sum / (z2_obs * a)
        if n_sim:
            pooled_z2_p = _z2_pvalue(pooled_z2, 1.0 - z2_sims / (z2_obs * a))
    pooled["es_z2"] = pooled_z2
    pooled["es_z2_pvalue"] = pooled_z2_p
    total_margin = frame.groupby("date", sort=True)["initial_margin"].sum().to_numpy()
    pooled.update(
        _margin_block(
            frame["realized_loss"].to_numpy(),
            frame["initial_margin"].to_numpy(),
            frame["flat_rate_margin"].to_numpy(),
            frame["gross_notional"].to_numpy(),
            total_margin,
        )
    )
    settings = {
        "confidence": conf,
        "measure_alpha": a,
        "n_sim": n_sim,
        "seed": seed if isinstance(seed, int) else None,
    }
    return {"settings": settings, "portfolios": portfolios, "pooled": pooled}
