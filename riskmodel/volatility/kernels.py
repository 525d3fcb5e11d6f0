"""numba variance recursions (ndarrays and scalars only); twins in ``recursions_python``.

See :mod:`riskmodel.volatility.recursions_python` for the models, their codes and conventions.
"""

from __future__ import annotations

import math

import numpy as np

from riskmodel.kernel_cache import njit

EWMA, GARCH, GJR, EGARCH = 0, 1, 2, 3
SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)


@njit(cache=True, inline="always")
def variance_step(code, var, eps, omega, alpha, gamma, beta, lam):
    """Next period's variance from this period's variance ``var`` and shock ``eps``."""
    if code == EWMA:
        return lam * var + (1.0 - lam) * eps * eps
    if code == GARCH:
        return omega + alpha * eps * eps + beta * var
    if code == GJR:
        a = alpha + gamma if eps < 0 else alpha
        return omega + a * eps * eps + beta * var
    z = eps / math.sqrt(var)
    return math.exp(omega + alpha * (abs(z) - SQRT_2_OVER_PI) + gamma * z + beta * math.log(var))


@njit(cache=True)
def conditional_variance(code, resids, omega, alpha, gamma, beta, lam, backcast):
    """Conditional variances, shape (n + 1,); the last element is the one-step forecast."""
    n = resids.shape[0]
    sigma2 = np.empty(n + 1)
    if code == EWMA:
        sigma2[0] = backcast
    elif code == EGARCH:
        sigma2[0] = math.exp(omega + beta * math.log(backcast))
    else:
        sigma2[0] = omega + (alpha + 0.5 * gamma + beta) * backcast
    for t in range(n):
        sigma2[t + 1] = variance_step(code, sigma2[t], resids[t], omega, alpha, gamma, beta, lam)
    return sigma2
