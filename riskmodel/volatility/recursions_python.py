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


def _ewma_step(var, eps, omega, alpha, gamma, beta, lam):
    """EWMA: ``s2' = lam s2 + (1 - lam) e^2``."""
    memory = lam * var
    news = (1.0 - lam) * eps * eps
    return memory + news


def _garch_step(var, eps, omega, alpha, gamma, beta, lam):
    """GARCH(1,1): ``s2' = omega + alpha e^2 + beta s2``."""
    arch_term = alpha * eps * eps
    garch_term = beta * var
    return omega + arch_term + garch_term


def _gjr_step(var, eps, omega, alpha, gamma, beta, lam):
    """GJR-GARCH(1,1,1): ``s2' = omega + (alpha + gamma 1{e < 0}) e^2 + beta s2``."""
    leverage = gamma if eps < 0 else 0.0
    arch_term = (alpha + leverage) * eps * eps
    garch_term = beta * var
    return omega + arch_term + garch_term


def _egarch_step(var, eps, omega, alpha, gamma, beta, lam):
    """EGARCH(1,1,1): ``ln s2' = omega + alpha (|z| - sqrt(2/pi)) + gamma z + beta ln s2``."""
    z = eps / math.sqrt(var)
    size_term = alpha * (abs(z) - SQRT_2_OVER_PI)
    sign_term = gamma * z
    memory = beta * math.log(var)
    return math.exp(omega + size_term + sign_term + memory)


_STEPS = {EWMA: _ewma_step, GARCH: _garch_step, GJR: _gjr_step, EGARCH: _egarch_step}


def variance_step_python(code, var, eps, omega, alpha, gamma, beta, lam):
    """Next period's variance from this period's variance ``var`` and shock ``eps``.

    ``code`` picks the model (module docstring); the parameters a model does not use are
    ignored. The terms are summed left to right, in the order the formulas are written.
    """
    return _STEPS[int(code)](var, eps, omega, alpha, gamma, beta, lam)


def initial_variance_python(code, omega, alpha, gamma, beta, backcast):
    """Variance of the first residual, given only the backcast (module docstring)."""
    if code == EWMA:
        return backcast
    if code == EGARCH:  # no shock term at t = 0
        return math.exp(omega + beta * math.log(backcast))
    # before the sample, squared residuals and variances are the backcast (GJR: half of it in
    # the asymmetric term)
    return omega + (alpha + 0.5 * gamma + beta) * backcast


def conditional_variance_python(code, resids, omega, alpha, gamma, beta, lam, backcast):
    """Conditional variances, shape (n + 1,); the last element is the one-step forecast.

    ``sigma2[0]`` from the backcast, then ``sigma2[t + 1] = step(sigma2[t], resids[t])``.
    """
    sigma2 = [initial_variance_python(code, omega, alpha, gamma, beta, backcast)]
    for eps in resids:
        sigma2.append(variance_step_python(code, sigma2[-1], eps, omega, alpha, gamma, beta, lam))
    return np.array(sigma2, dtype=np.float64)
