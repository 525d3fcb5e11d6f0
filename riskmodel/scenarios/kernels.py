"""numba kernels for historical scenario generation (ndarrays and scalars only)."""

from __future__ import annotations

import numpy as np
from numba import njit, prange


@njit(cache=True, parallel=True)
def fhs_paths(z, sigma2_next, mu, model_code, omega, alpha, beta, lam, horizon):
    """Filtered historical h-day moves: overlapping blocks of whole historical days.

    Scenario s replays the standardised residuals of days s, s+1, ..., s+h-1 (all factors on the
    same day, so cross-asset dependence survives), starting from today's variance and updating
    each factor's variance after every simulated day (``model_code`` 1: GARCH(1,1) with
    ``omega, alpha, beta``; 0: EWMA with ``lam``).

    Parameters
    ----------
    z : ndarray of shape (n_days, n_factors), standardised residuals.
    sigma2_next, mu, omega, alpha, beta, lam : ndarray of shape (n_factors,), unscaled units.
    model_code : int64 ndarray of shape (n_factors,).
    horizon : int, h >= 1.

    Returns
    -------
    ndarray of shape (n_days - h + 1, n_factors): the sum of the h simulated daily returns.
    """
    n_days, n_factors = z.shape
    n_scen = n_days - horizon + 1
    out = np.empty((n_scen, n_factors))
    for s in prange(n_scen):
        for f in range(n_factors):
            var = sigma2_next[f]
            total = 0.0
            for k in range(horizon):
                eps = np.sqrt(var) * z[s + k, f]
                total += mu[f] + eps
                if model_code[f] == 1:
                    var = omega[f] + alpha[f] * eps * eps + beta[f] * var
                else:
                    var = lam[f] * var + (1.0 - lam[f]) * eps * eps
            out[s, f] = total
    return out
