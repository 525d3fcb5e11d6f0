"""Plain-Python twins of :mod:`riskmodel.volatility.kernels`: the readable reference.

Conventions follow ``arch`` so that a parameter set estimated there filters identically here
(tested to 1e-10): ``sigma2[t]`` is the variance of ``resids[t]`` given information up to t-1,
``sigma2[n]`` the one-step forecast. Before the sample, squared residuals and variances are the
backcast (EGARCH: the log-variance is ``log(backcast)`` and no shock term enters at t = 0; GJR: the
asymmetric term uses half the backcast).

Models (code): EWMA (0) ``s2' = lam s2 + (1 - lam) e^2``; GARCH(1,1) (1)
``s2' = omega + alpha e^2 + beta s2``; GJR-GARCH(1,1,1) (2)
``s2' = omega + (alpha + gamma 1{e < 0}) e^2 + beta s2``; EGARCH(1,1,1) (3)
``ln s2' = omega + alpha (|z| - sqrt(2/pi)) + gamma z + beta ln s2`` with ``z = e / sqrt(s2)``.
"""

from __future__ import annotations

import math

import numpy as np

EWMA, GARCH, GJR, EGARCH = 0, 1, 2, 3
SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)


def ewma_backcast(resids: np.ndarray) -> float:
    """arch's default backcast: exponentially weighted (0.94) mean of the first 75 squares."""
    tau = min(75, resids.shape[0])
    w = 0.94 ** np.arange(tau)
    w = w / w.sum()
    return float(np.sum(resids[:tau] ** 2 * w))


def variance_step_python(code, var, eps, omega, alpha, gamma, beta, lam):
    """Next period's variance from this period's variance ``var`` and shock ``eps``."""
    if code == EWMA:
        return lam * var + (1.0 - lam) * eps * eps
    if code == GARCH:
        return omega + alpha * eps * eps + beta * var
    if code == GJR:
        return omega + (alpha + (gamma if eps < 0 else 0.0)) * eps * eps + beta * var
    z = eps / math.sqrt(var)
    return math.exp(omega + alpha * (abs(z) - SQRT_2_OVER_PI) + gamma * z + beta * math.log(var))


def conditional_variance_python(code, resids, omega, alpha, gamma, beta, lam, backcast):
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
        sigma2[t + 1] = variance_step_python(
            code, sigma2[t], resids[t], omega, alpha, gamma, beta, lam
        )
    return sigma2
