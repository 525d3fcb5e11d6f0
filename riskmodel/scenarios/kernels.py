"""numba kernels for historical scenario generation (ndarrays and scalars only).

:func:`fhs_paths` runs on every thread; :func:`fhs_paths_serial`, the same arithmetic on one,
serves windows below ``SERIAL_MAX_STEPS`` steps, so a small run compiles no parallel region.
"""

from __future__ import annotations

import numpy as np
from numba import prange

from riskmodel.kernel_cache import njit
from riskmodel.volatility.kernels import variance_step

SERIAL_MAX_STEPS = 2**22
"""Below this many simulated steps (scenarios x factors x horizon) :func:`fhs_paths_serial` runs:
a parallel region saves at most milliseconds there, and compiling one costs a first run a
second."""


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
    out = np.empty((z.shape[0] - horizon + 1, z.shape[1]))
    for s in prange(out.shape[0]):
        _fhs_scenario(np.int64(s), z, sigma2_next, mu, model_code, omega, alpha, gamma, beta,
                      decay, horizon, out)
    return out


@njit(cache=True)
def fhs_paths_serial(z, sigma2_next, mu, model_code, omega, alpha, gamma, beta, decay, horizon):
    """:func:`fhs_paths` on one thread (same arguments, same bits): a small window compiles no
    parallel region."""
    out = np.empty((z.shape[0] - horizon + 1, z.shape[1]))
    for s in range(out.shape[0]):
        _fhs_scenario(s, z, sigma2_next, mu, model_code, omega, alpha, gamma, beta, decay,
                      horizon, out)
    return out


@njit(cache=True, inline="always")
def _fhs_scenario(s, z, sigma2_next, mu, model_code, omega, alpha, gamma, beta, decay, horizon,
                  out):
    """Scenario ``s`` of :func:`fhs_paths`: row ``s`` of ``out``."""
    for f in range(z.shape[1]):
        var = sigma2_next[f]
        total = 0.0
        for k in range(horizon):
            eps = np.sqrt(var) * z[s + k, f]
            total += mu[f] + eps
            if k + 1 < horizon:
                var = variance_step(model_code[f], var, eps, omega[f], alpha[f], gamma[f],
                                    beta[f], decay[f])
        out[s, f] = total
