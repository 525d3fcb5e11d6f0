"""Plain-Python twins of :mod:`riskmodel.scenarios.kernels` (the readable reference)."""

from __future__ import annotations

import numpy as np

from riskmodel.volatility.recursions_python import variance_step_python


def fhs_paths_python(z, sigma2_next, mu, model_code, omega, alpha, gamma, beta, decay, horizon):
    """Same contract as :func:`riskmodel.scenarios.kernels.fhs_paths`."""
    n_days, n_factors = z.shape
    out = np.empty((n_days - horizon + 1, n_factors))
    for s in range(n_days - horizon + 1):
        for f in range(n_factors):
            var, total = sigma2_next[f], 0.0
            for k in range(horizon):
                eps = np.sqrt(var) * z[s + k, f]
                total += mu[f] + eps
                var = variance_step_python(model_code[f], var, eps, omega[f], alpha[f],
                                           gamma[f], beta[f], decay[f])
            out[s, f] = total
    return out
