"""numba kernels for Monte Carlo scenario paths (ndarrays and scalars only), with Python twins.

Two jobs, both per simulated day and both element-wise independent (so the result does not
depend on the number of threads):

1. The innovation of each (scenario, factor): for the copulas, the composite quantile map
   ``y -> x = F_f^{-1}(C(y))`` read off a precomputed piecewise-quintic table
   (:func:`eval_table`); for the filtered bootstrap, a gather from the historical residual days.
2. One step of the path: ``eps = sqrt(var) x``, ``total += mu + eps`` and, unless it is the last
   day, ``var = variance_step(...)`` (:func:`riskmodel.volatility.kernels.variance_step`, the
   same recursion the filter and FHS use).

Table layout (built by :func:`riskmodel.scenarios.monte_carlo.build_quantile_tables`): table k
has two halves, ``half = 1`` for ``y >= 0`` and ``half = 0`` for ``y < 0``, both indexed by
``a = |y|``.

- Body, ``0 <= a < n_body h``: quintic Hermite pieces in ``x``, uniform spacing ``h``;
  ``body[k, half, i, :]`` are the coefficients ``c0..c5`` of ``x = sum_j c_j s^j`` with
  ``s = a / h - i`` in ``[0, 1)``.
- Tail, ``t = ln a >= t0``: quintic pieces in ``w = ln|x|`` on a uniform grid in ``t``
  (``tail[k, half, i, :]``), so power-law tails are interpolated almost exactly; beyond the last
  node ``w`` continues linearly in ``t`` (a power law, the exact asymptote when both the copula
  and the marginal are Student's t); ``x = sign exp(w)``.
- ``hp[k, half, :]`` = ``(1/h, n_body, t0, 1/h_t, n_tail, w_end, slope, sign)`` where ``slope``
  is ``dw/dt`` at the last tail node times ``h_t`` (per grid step) and ``sign`` is the sign of
  ``x`` in that tail.

A table index ``k < 0`` means the identity map (normal marginal under a Gaussian copula).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

from riskmodel.volatility.kernels import variance_step
from riskmodel.volatility.recursions_python import variance_step_python

# Columns of hp[k, half, :].
HP_INV_H, HP_N_BODY, HP_T0, HP_INV_HT, HP_N_TAIL, HP_W_END, HP_SLOPE, HP_SIGN = range(8)
N_HP = 8


@njit(cache=True, inline="always")
def _quintic(c, s):
    return c[0] + s * (c[1] + s * (c[2] + s * (c[3] + s * (c[4] + s * c[5]))))


@njit(cache=True, inline="always")
def _eval_one(y, k, body, tail, hp):
    """x for one y through table k (see the module docstring)."""
    half = 1 if y >= 0.0 else 0
    a = abs(y)
    p = hp[k, half]
    u = a * p[0]
    if u < p[1]:
        i = int(u)
        return _quintic(body[k, half, i], u - i)
    # tail: interpolate ln|x| in ln a; max() absorbs rounding at the body/tail seam
    s = max((math.log(a) - p[2]) * p[3], 0.0)
    if s < p[4]:
        i = int(s)
        w = _quintic(tail[k, half, i], s - i)
    else:
        w = p[5] + p[6] * (s - p[4])
    return p[7] * math.exp(w)


@njit(cache=True, parallel=True)
def eval_table(y, k, body, tail, hp):
    """Apply table ``k`` to every element of ``y``.

    Parameters
    ----------
    y : ndarray of shape (n,)
    k : int, table index (>= 0).
    body : ndarray of shape (n_tables, 2, n_body_max, 6)
    tail : ndarray of shape (n_tables, 2, n_tail_max, 6)
    hp : ndarray of shape (n_tables, 2, 8)

    Returns
    -------
    ndarray of shape (n,)
    """
    out = np.empty_like(y)
    for i in prange(y.shape[0]):
        out[i] = _eval_one(y[i], k, body, tail, hp)
    return out


@njit(cache=True, parallel=True)
def copula_day(g, w, table_of, body, tail, hp, var, total, mu, model_code, omega, alpha, gamma,
               beta, decay, update_var):
    """One simulated day for copula innovations, in place on ``var`` and ``total``.

    ``x[b, f, s] = table_of[f](g[b, f, s] * w[b, s])`` (the identity where ``table_of[f] < 0``),
    then ``eps = sqrt(var) x``, ``total += mu + eps`` and, if ``update_var``, the variance
    recursion.

    Parameters
    ----------
    g : ndarray of shape (n_blocks, n_factors, block_size), correlated standard normals.
    w : ndarray of shape (n_blocks, block_size), the t copula's mixing factor
        ``sqrt(nu / chi2_nu)`` of each scenario-day (ones for the Gaussian copula).
    table_of : int64 ndarray of shape (n_factors,), each factor's table (-1: identity).
    body, tail, hp : the quantile tables (module docstring).
    var, total : ndarray of shape (n_blocks, n_factors, block_size), updated in place: the
        variance of this day's shock, and the sum of the returns so far.
    mu, omega, alpha, gamma, beta, decay : ndarray of shape (n_factors,), unscaled units.
    model_code : int64 ndarray of shape (n_factors,).
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
            v = var[b, f, s]
            eps = math.sqrt(v) * x
            total[b, f, s] += mu[f] + eps
            if update_var:
                var[b, f, s] = variance_step(model_code[f], v, eps, omega[f], alpha[f],
                                             gamma[f], beta[f], decay[f])


@njit(cache=True, parallel=True)
def bootstrap_day(zt, idx, var, total, mu, model_code, omega, alpha, gamma, beta, decay,
                  update_var):
    """One simulated day of the filtered bootstrap, in place on ``var`` and ``total``.

    ``x[b, f, s] = zt[f, idx[b, s]]``: every factor of a scenario-day takes the same historical
    day, so the cross-sectional dependence of that day is kept.

    Parameters
    ----------
    zt : ndarray of shape (n_factors, n_days), standardised residuals (factor-major, so that a
        factor's history stays in cache).
    idx : int64 ndarray of shape (n_blocks, block_size), the historical day of each scenario.
    var, total, mu, ..., update_var : as in :func:`copula_day`.
    """
    n_blocks, n_factors, n_b = var.shape
    for task in prange(n_blocks * n_factors):
        b = task // n_factors
        f = task - b * n_factors
        for s in range(n_b):
            x = zt[f, idx[b, s]]
            v = var[b, f, s]
            eps = math.sqrt(v) * x
            total[b, f, s] += mu[f] + eps
            if update_var:
                var[b, f, s] = variance_step(model_code[f], v, eps, omega[f], alpha[f],
                                             gamma[f], beta[f], decay[f])


# ----------------------------------------------------------------------------------------------
# Plain-Python twins: the readable reference (slow; for tests on small arrays).


def _eval_one_python(y, k, body, tail, hp):
    half = 1 if y >= 0.0 else 0
    a = abs(y)
    inv_h, n_body, t0, inv_ht, n_tail, w_end, slope, sign = hp[k, half]
    u = a * inv_h
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


def copula_day_python(g, w, table_of, body, tail, hp, var, total, mu, model_code, omega, alpha,
                      gamma, beta, decay, update_var):
    """Same contract as :func:`copula_day`."""
    n_blocks, n_factors, n_b = g.shape
    for b in range(n_blocks):
        for f in range(n_factors):
            k = table_of[f]
            for s in range(n_b):
                y = g[b, f, s] * w[b, s]
                x = y if k < 0 else _eval_one_python(y, k, body, tail, hp)
                v = var[b, f, s]
                eps = math.sqrt(v) * x
                total[b, f, s] += mu[f] + eps
                if update_var:
                    var[b, f, s] = variance_step_python(model_code[f], v, eps, omega[f],
                                                        alpha[f], gamma[f], beta[f], decay[f])


def bootstrap_day_python(zt, idx, var, total, mu, model_code, omega, alpha, gamma, beta, decay,
                         update_var):
    """Same contract as :func:`bootstrap_day`."""
    n_blocks, n_factors, n_b = var.shape
    for b in range(n_blocks):
        for f in range(n_factors):
            for s in range(n_b):
                x = zt[f, idx[b, s]]
                v = var[b, f, s]
                eps = math.sqrt(v) * x
                total[b, f, s] += mu[f] + eps
                if update_var:
                    var[b, f, s] = variance_step_python(model_code[f], v, eps, omega[f],
                                                        alpha[f], gamma[f], beta[f], decay[f])
