"""Plain-Python twins of :mod:`riskmodel.scenarios.kernels` (the readable reference)."""

from __future__ import annotations

import numpy as np


def fhs_paths_python(z, sigma2_next, mu, model_code, omega, alpha, beta, lam, horizon):
    """Same contract as :func:`riskmodel.scenarios.kernels.fhs_paths`."""
    n_days, n_factors = z.shape
    out = np.empty((n_days - horizon + 1, n_factors))
    for s in range(n_days - horizon + 1):
        for f in range(n_factors):
            var, total = sigma2_next[f], 0.0
            for k in range(horizon):
                eps = np.sqrt(var) * z[s + k, f]
                total += mu[f] + eps
                if model_code[f] == 1:
                    var = omega[f] + alpha[f] * eps**2 + beta[f] * var
                else:
                    var = lam[f] * var + (1.0 - lam[f]) * eps**2
            out[s, f] = total
    return out
