"""numba kernels for historical scenario generation (ndarrays and scalars only)."""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from riskmodel.volatility.kernels import variance_step


@njit(cache=True, parallel=True)
def fhs_paths(z, sigma2_next, mu, model_code, omega, alpha, gamma, beta, decay, horizon):
    """Filtered historical h-day moves: overlapping blocks of whole historical days.

    Scenario s replays the standardised residuals of days s, s+1, ..., s+h-1 (all factors on the
    same day, so cross-asset dependence survives), starting from today's variance and updating
    each factor's variance after every simulated day with its own recursion
    (:func:`riskmodel.volatility.kernels.variance_step`).

    Parameters
    ----------
    z : ndarray of shape (n_days, n_factors), standardised residuals.
    sigma2_next, mu, omega, alpha, gamma, beta, decay : ndarray of shape (n_factors,),
        unscaled units (see ``FactorParams.recursion``).
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
                if k + 1 < horizon:
                    var = variance_step(model_code[f], var, eps, omega[f], alpha[f], gamma[f],
                                        beta[f], decay[f])
            out[s, f] = total
    return out
