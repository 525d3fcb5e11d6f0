"""Plain-Python twins of the variance recursions in :mod:`riskmodel.volatility.kernels`.

They are the readable reference: the numba kernels must return the same numbers. Conventions follow
``arch`` so that a parameter set estimated there filters identically here:
``sigma2[t]`` is the variance of ``resids[t]`` given information up to ``t-1``; the pre-sample
squared residual and variance are both the backcast; ``sigma2[n]`` is the one-step forecast.
"""

from __future__ import annotations

import numpy as np


def ewma_backcast(resids: np.ndarray) -> float:
    """arch's default backcast: exponentially weighted (0.94) mean of the first 75 squares."""
    tau = min(75, resids.shape[0])
    w = 0.94 ** np.arange(tau)
    w = w / w.sum()
    return float(np.sum(resids[:tau] ** 2 * w))


def garch11_variance_python(
    resids: np.ndarray, omega: float, alpha: float, beta: float, backcast: float
) -> np.ndarray:
    """GARCH(1,1): ``sigma2[t] = omega + alpha * resids[t-1]**2 + beta * sigma2[t-1]``.

    Returns an array of shape (n + 1,); the last element is the forecast for the next period.
    """
    n = resids.shape[0]
    sigma2 = np.empty(n + 1)
    prev_sq, prev_var = backcast, backcast
    for t in range(n + 1):
        sigma2[t] = omega + alpha * prev_sq + beta * prev_var
        if t < n:
            prev_sq, prev_var = resids[t] * resids[t], sigma2[t]
    return sigma2


def ewma_variance_python(resids: np.ndarray, lam: float, backcast: float) -> np.ndarray:
    """RiskMetrics EWMA: ``sigma2[t] = lam * sigma2[t-1] + (1 - lam) * resids[t-1]**2``.

    ``sigma2[0]`` is the backcast. Returns shape (n + 1,), the last element the forecast.
    """
    n = resids.shape[0]
    sigma2 = np.empty(n + 1)
    sigma2[0] = backcast
    for t in range(1, n + 1):
        sigma2[t] = lam * sigma2[t - 1] + (1.0 - lam) * resids[t - 1] * resids[t - 1]
    return sigma2
