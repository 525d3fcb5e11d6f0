"""The Acerbi-Szekely (2014) ES test: Z2, its matched null law, p-values and critical values.

Conventions (DESIGN.md): losses are positive; ``var`` and ``es`` are positive numbers at tail
probability ``alpha``. With P&L ``X_t`` the paper's statistic is
``Z2 = sum_t X_t I_t / (T alpha ES_t) + 1``, ``I_t = 1{X_t + VaR_t < 0}``; with losses
``L_t = -X_t``::

    Z2 = 1 - sum_t L_t 1{L_t > VaR_t} / (T alpha ES_t)

``E[Z2] = 0`` under the null (the forecast distributions are right in the tail); the test
rejects for large negative Z2 (realised tail losses beyond what ES predicted).

The null distribution is simulated (:func:`acerbi_szekely_z2`): by default each date's loss law
is matched to its (VaR, ES) (:func:`matched_loss_distribution`: a zero-location Student-t, or a
normal where the tail is thinner than normal), and only the tail events are drawn
(:func:`_simulated_tail_sums`: VaR is the ``1 - alpha`` quantile of every matched law, so the
tail events are i.i.d. Bernoulli(alpha)). The one-sided Monte Carlo p-value is
``(1 + #{Z2_j <= Z2}) / (1 + n_sim)``. Z2 assumes independent terms across dates: see the
independence caveat of :mod:`.coverage`.

References
----------
* Acerbi, C. and Szekely, B. (2014). Backtesting expected shortfall. Risk, December 2014.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike
from scipy import special, stats

from riskmodel.backtest.statistics._validation import finite_1d, valid_counts, valid_rate

__all__ = [
    "LossSampler",
    "MatchedLossDistribution",
    "acerbi_szekely_z2",
    "matched_loss_distribution",
    "null_tail_sums",
    "z2_critical_value",
    "z2_pvalue",
    "z2_statistic",
]

#: ``simulate(rng, n_sim)`` returns simulated losses of shape ``(n_sim, T)`` drawn under the
#: model's own predictive distributions of the ``T`` dates (the null hypothesis of Z2).
LossSampler = Callable[[np.random.Generator, int], np.ndarray]


def _validate_tail(
    realized_loss: ArrayLike | None, var: ArrayLike, es: ArrayLike, alpha: float
) -> tuple[np.ndarray | None, np.ndarray, np.ndarray, float]:
    a = valid_rate("alpha", alpha)
    v = finite_1d("var", var)
    e = finite_1d("es", es)
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
        loss = finite_1d("realized_loss", realized_loss)
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


def null_tail_sums(
    var: ArrayLike, es: ArrayLike, alpha: float, n_sim: int, rng: np.random.Generator
) -> np.ndarray:
    """Tail sums ``S_j`` of ``n_sim`` paths under the default null, shape (n_sim,).

    ``S_j = sum_t L_tj 1{L_tj > VaR_t} / ES_t`` with the losses drawn from
    :func:`matched_loss_distribution` (the default null of :func:`acerbi_szekely_z2`); the
    simulated statistic is ``Z2_j = 1 - S_j / (T alpha)``. Sums of independent sequences add
    up: the pooled null of several netting sets is the sum of their ``S``.

    Parameters
    ----------
    var, es : ndarrays of shape (T,); ``es > 0`` and ``es >= var``.
    alpha : float, tail probability of ``var`` and ``es``.
    n_sim : int, number of simulated paths (>= 1).
    rng : Generator, randomness of the simulation.
    """
    _, v, e, a = _validate_tail(None, var, es, alpha)
    return _simulated_tail_sums(matched_loss_distribution(v, e, a), v, e, n_sim, rng)


def z2_pvalue(z2: float, simulated: np.ndarray) -> float:
    """One-sided Monte Carlo p-value ``(1 + #{Z2_j <= z2}) / (1 + n_sim)``: never 0, exact size.

    Parameters
    ----------
    z2 : float, the observed statistic.
    simulated : ndarray of shape (n_sim,), the statistic on paths simulated under the null.
    """
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
    return z2, z2_pvalue(z2, simulated)


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
    n, _ = valid_counts(n_obs, 0)
    a = valid_rate("alpha", alpha)
    q = valid_rate("level", level)
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
