"""numba kernels for Monte Carlo scenario paths (ndarrays and scalars only), with Python twins.

Per simulated day, element-wise independent work (so the result does not depend on the number
of threads):

1. The innovation of each (scenario, factor): for the copulas, the composite quantile map
   ``y -> x = F_f^{-1}(C(y))`` read off a precomputed piecewise-quintic table
   (:func:`eval_table`); for the filtered bootstrap, a gather from the historical residual days.
2. One step of the path: ``eps = sqrt(var) x``, ``total += mu + eps`` and, unless it is the last
   day, ``var = variance_step(...)`` (:func:`riskmodel.volatility.kernels.variance_step`, the
   same recursion the filter and FHS use).

At the end, :func:`gather_shocks` turns the block-major sums into the scenario-major shocks.

Table layout (built by :func:`riskmodel.scenarios.mc_tables.build_quantile_tables`): table k
has two halves, ``half = 1`` for ``y >= 0`` and ``half = 0`` for ``y < 0``, both indexed by
``a = |y|``.

- Body, ``0 <= a < n_body h - shift``: quintic Hermite pieces in ``x`` on the nodes
  ``a_i = i h - shift`` (``0 <= shift < h`` puts a skew-t's density kink on a node);
  ``body[k, half, i, :]`` are the coefficients ``c0..c5`` of ``x = sum_j c_j s^j`` with
  ``s = (a + shift) / h - i`` in ``[0, 1)``.
- Tail, ``t = ln a >= t0``: quintic pieces in ``w = ln|x|`` on a uniform grid in ``t``
  (``tail[k, half, i, :]``), so power-law tails are interpolated almost exactly; beyond the last
  node ``w`` continues linearly in ``t`` (a power law, the exact asymptote when both the copula
  and the marginal are Student's t); ``x = sign exp(w)``.
- ``hp[k, half, :]`` = ``(1/h, shift/h, n_body, t0, 1/h_t, n_tail, w_end, slope, sign)``
  where ``slope`` is ``dw/dt`` at the last tail node times ``h_t`` (per grid step) and
  ``sign`` is the sign of ``x`` in that tail.

A table index ``k < 0`` means the identity map (normal marginal under a Gaussian copula).
"""

from __future__ import annotations

import math

import numpy as np
from numba import prange

from riskmodel.kernel_cache import njit
from riskmodel.volatility.kernels import variance_step
from riskmodel.volatility.recursions_python import variance_step_python

# Columns of hp[k, half, :].
HP_INV_H, HP_OFFSET, HP_N_BODY, HP_T0, HP_INV_HT, HP_N_TAIL, HP_W_END, HP_SLOPE, HP_SIGN = range(9)
N_HP = 9


@njit(cache=True, inline="always")
def _quintic(c, s):
    return c[0] + s * (c[1] + s * (c[2] + s * (c[3] + s * (c[4] + s * c[5]))))


@njit(cache=True, inline="always")
def _eval_one(y, k, body, tail, hp):
    """x for one y through table k (see the module docstring)."""
    half = 1 if y >= 0.0 else 0
    a = abs(y)
    p = hp[k, half]
    u = a * p[0] + p[1]
    if u < p[2]:
        i = int(u)
        return _quintic(body[k, half, i], u - i)
    # tail: interpolate ln|x| in ln a; max() absorbs rounding at the body/tail seam
    s = max((math.log(a) - p[3]) * p[4], 0.0)
    if s < p[5]:
        i = int(s)
        w = _quintic(tail[k, half, i], s - i)
    else:
        w = p[6] + p[7] * (s - p[5])
    return p[8] * math.exp(w)


@njit(cache=True, parallel=True)
def eval_table(y, k, body, tail, hp):
    """Apply table ``k`` to every element of ``y``.

    Parameters
    ----------
    y : ndarray of shape (n,)
    k : int, table index (>= 0).
    body : ndarray of shape (n_tables, 2, n_body_max, 6)
    tail : ndarray of shape (n_tables, 2, n_tail_max, 6)
    hp : ndarray of shape (n_tables, 2, 9)

    Returns
    -------
    ndarray of shape (n,)
    """
    out = np.empty_like(y)
    for i in prange(y.shape[0]):
        out[i] = _eval_one(y[i], k, body, tail, hp)
    return out


@njit(cache=True, inline="always")
def _advance(x, b, f, s, sigma2, var, total, mu, model_code, omega, alpha, gamma, beta, decay,
             first, update_var):
    """One day of one scenario path: shock ``sqrt(v) x``, add the return, update the variance.

    Shared by every kind of innovation so the path arithmetic is written once.
    """
    v = sigma2[f] if first else var[b, f, s]
    eps = math.sqrt(v) * x
    if first:
        total[b, f, s] = mu[f] + eps
    else:
        total[b, f, s] += mu[f] + eps
    if update_var:
        var[b, f, s] = variance_step(model_code[f], v, eps, omega[f], alpha[f], gamma[f],
                                     beta[f], decay[f])


@njit(cache=True, parallel=True)
def copula_day(g, w, table_of, body, tail, hp, sigma2, var, total, mu, model_code, omega, alpha,
               gamma, beta, decay, first, update_var):
    """One simulated day for copula innovations, in place on ``var`` and ``total``.

    ``x[b, f, s] = table_of[f](g[b, f, s] * w[b, s])`` (the identity where ``table_of[f] < 0``),
    then ``eps = sqrt(v) x`` with ``v`` today's variance, ``total += mu + eps`` and, if
    ``update_var``, ``var = variance_step(v, eps)``.

    Parameters
    ----------
    g : ndarray of shape (n_blocks, n_factors, block_size), correlated standard normals.
    w : ndarray of shape (n_blocks, block_size), the t copula's mixing factor
        ``sqrt(nu / chi2_nu)`` of each scenario-day (ones for the Gaussian copula).
    table_of : int64 ndarray of shape (n_factors,), each factor's table (-1: identity).
    body, tail, hp : the quantile tables (module docstring).
    sigma2 : ndarray of shape (n_factors,), the first day's variance.
    var, total : ndarray of shape (n_blocks, n_factors, block_size), updated in place: the
        variance of the next day's shock, and the sum of the returns so far. On the first day
        ``var`` is not read and ``total`` is overwritten; ``var`` is not touched at all when
        ``first`` and not ``update_var`` (it may then be any 3-d array).
    mu, omega, alpha, gamma, beta, decay : ndarray of shape (n_factors,), unscaled units.
    model_code : int64 ndarray of shape (n_factors,).
    first : bool, the first simulated day.
    update_var : bool, False on the last day (the next variance is not needed).
    """
    n_blocks, n_factors, n_b = g.shape
    for task in prange(n_blocks * n_factors):
        b = task // n_factors
        f = task - b * n_factors
        k = table_of[f]
        for s in range(n_b):
            y = g[b, f, s] * w[b, s]
            x = y if k < 0 else _eval_one(y, k, body, tail, hp)
            _advance(x, b, f, s, sigma2, var, total, mu, model_code, omega, alpha, gamma, beta,
                     decay, first, update_var)


@njit(cache=True, parallel=True)
def bootstrap_day(zt, idx, sigma2, var, total, mu, model_code, omega, alpha, gamma, beta, decay,
                  first, update_var):
    """One simulated day of the filtered bootstrap, in place on ``var`` and ``total``.

    ``x[b, f, s] = zt[f, idx[b, s]]``: every factor of a scenario-day takes the same historical
    day, so the cross-sectional dependence of that day is kept.

    Parameters
    ----------
    zt : ndarray of shape (n_factors, n_days), standardised residuals (factor-major, so that a
        factor's history stays in cache).
    idx : int64 ndarray of shape (n_blocks, block_size), the historical day of each scenario.
    sigma2, var, total, mu, ..., update_var : as in :func:`copula_day`.
    """
    n_blocks, n_factors, n_b = total.shape
    for task in prange(n_blocks * n_factors):
        b = task // n_factors
        f = task - b * n_factors
        for s in range(n_b):
            _advance(zt[f, idx[b, s]], b, f, s, sigma2, var, total, mu, model_code, omega,
                     alpha, gamma, beta, decay, first, update_var)


_TILE = 64


@njit(cache=True, parallel=True)
def gather_shocks(total, n_scenarios):
    """Scenario-major copy of the block-major sums: ``out[b * block + s, f] = total[b, f, s]``.

    Parameters
    ----------
    total : ndarray of shape (n_blocks, n_factors, block_size)
    n_scenarios : int, rows kept (the last block may be cut short).

    Returns
    -------
    ndarray of shape (n_scenarios, n_factors)
    """
    n_blocks, n_factors, n_b = total.shape
    out = np.empty((n_scenarios, n_factors))
    n_s_tiles = (n_b + _TILE - 1) // _TILE
    for task in prange(n_blocks * n_s_tiles):
        b = task // n_s_tiles
        s0 = (task - b * n_s_tiles) * _TILE
        s1 = min(s0 + _TILE, n_b, n_scenarios - b * n_b)
        # tiles of 64 x 64 keep both the reads and the writes in cache
        for f0 in range(0, n_factors, _TILE):
            f1 = min(f0 + _TILE, n_factors)
            for s in range(s0, s1):
                row = b * n_b + s
                for f in range(f0, f1):
                    out[row, f] = total[b, f, s]
    return out


# ----------------------------------------------------------------------------------------------
# Plain-Python twins: the readable reference (slow; for tests on small arrays).


def _eval_one_python(y, k, body, tail, hp):
    half = 1 if y >= 0.0 else 0
    a = abs(y)
    inv_h, offset, n_body, t0, inv_ht, n_tail, w_end, slope, sign = hp[k, half]
    u = a * inv_h + offset
    if u < n_body:
        i = int(u)
        c, s = body[k, half, i], u - i
        return c[0] + s * (c[1] + s * (c[2] + s * (c[3] + s * (c[4] + s * c[5]))))
    s = max((math.log(a) - t0) * inv_ht, 0.0)
    if s < n_tail:
        i = int(s)
        c, s = tail[k, half, i], s - i
        w = c[0] + s * (c[1] + s * (c[2] + s * (c[3] + s * (c[4] + s * c[5]))))
    else:
        w = w_end + slope * (s - n_tail)
    return sign * math.exp(w)


def eval_table_python(y, k, body, tail, hp):
    """Same contract as :func:`eval_table`."""
    return np.array([_eval_one_python(float(v), k, body, tail, hp) for v in y])


def _advance_python(x, b, f, s, sigma2, var, total, mu, model_code, omega, alpha, gamma, beta,
                    decay, first, update_var):
    """Twin of :func:`_advance`: one day of one scenario path."""
    v = sigma2[f] if first else var[b, f, s]
    eps = math.sqrt(v) * x
    total[b, f, s] = (0.0 if first else total[b, f, s]) + (mu[f] + eps)
    if update_var:
        var[b, f, s] = variance_step_python(model_code[f], v, eps, omega[f], alpha[f], gamma[f],
                                            beta[f], decay[f])


def copula_day_python(g, w, table_of, body, tail, hp, sigma2, var, total, mu, model_code, omega,
                      alpha, gamma, beta, decay, first, update_var):
    """Same contract as :func:`copula_day`."""
    n_blocks, n_factors, n_b = g.shape
    for b in range(n_blocks):
        for f in range(n_factors):
            k = table_of[f]
            for s in range(n_b):
                y = g[b, f, s] * w[b, s]
                x = y if k < 0 else _eval_one_python(y, k, body, tail, hp)
                _advance_python(x, b, f, s, sigma2, var, total, mu, model_code, omega, alpha,
                                gamma, beta, decay, first, update_var)


def bootstrap_day_python(zt, idx, sigma2, var, total, mu, model_code, omega, alpha, gamma, beta,
                         decay, first, update_var):
    """Same contract as :func:`bootstrap_day`."""
    n_blocks, n_factors, n_b = total.shape
    for b in range(n_blocks):
        for f in range(n_factors):
            for s in range(n_b):
                x = zt[f, idx[b, s]]
                _advance_python(x, b, f, s, sigma2, var, total, mu, model_code, omega, alpha,
                                gamma, beta, decay, first, update_var)


def gather_shocks_python(total, n_scenarios):
    """Same contract as :func:`gather_shocks`."""
    n_blocks, n_factors, n_b = total.shape
    return np.ascontiguousarray(total.transpose(0, 2, 1).reshape(-1, n_factors)[:n_scenarios])
