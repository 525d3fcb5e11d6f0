"""numba variance recursions (ndarrays and scalars only); twins in ``recursions_python``."""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True)
def garch11_variance(
    resids: np.ndarray, omega: float, alpha: float, beta: float, backcast: float
) -> np.ndarray:
    """GARCH(1,1) conditional variance, shape (n + 1,); see the twin for the conventions."""
    n = resids.shape[0]
    sigma2 = np.empty(n + 1)
    prev_sq = backcast
    prev_var = backcast
    for t in range(n + 1):
        sigma2[t] = omega + alpha * prev_sq + beta * prev_var
        if t < n:
            prev_sq = resids[t] * resids[t]
            prev_var = sigma2[t]
    return sigma2


@njit(cache=True)
def ewma_variance(resids: np.ndarray, lam: float, backcast: float) -> np.ndarray:
    """EWMA conditional variance, shape (n + 1,); see the twin for the conventions."""
    n = resids.shape[0]
    sigma2 = np.empty(n + 1)
    sigma2[0] = backcast
    for t in range(1, n + 1):
        sigma2[t] = lam * sigma2[t - 1] + (1.0 - lam) * resids[t - 1] * resids[t - 1]
    return sigma2
