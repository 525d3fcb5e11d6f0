"""Run each risk factor's volatility model forward over its returns (fixed parameters, no refit).

The output is what filtered historical simulation needs: every return's conditional variance, the
standardised residuals ``z[t] = (r[t] - mu) / sigma[t]`` and the one-step-ahead variance
``sigma2_next`` (today's volatility for tomorrow), all in unscaled return units.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from riskmodel.volatility.kernels import ewma_variance, garch11_variance
from riskmodel.volatility.params import FactorParams
from riskmodel.volatility.recursions_python import ewma_backcast

# Codes the scenario kernels use for each factor's variance recursion.
MODEL_CODES = {"ewma": 0, "garch": 1}


@dataclass(frozen=True)
class FilteredFactor:
    """One factor filtered through its volatility model.

    Attributes
    ----------
    sigma2 : ndarray of shape (n,)
        Conditional variance of each return, unscaled units.
    std_resid : ndarray of shape (n,)
        Standardised residuals; 0 where the conditional variance is 0 (a constant series).
    sigma2_next : float
        One-step-ahead variance, unscaled.
    """

    asset: str
    params: FactorParams
    sigma2: np.ndarray
    std_resid: np.ndarray
    sigma2_next: float

    @property
    def sigma_1d(self) -> float:
        return float(np.sqrt(self.sigma2_next))

    @property
    def mu(self) -> float:
        return self.params.mu / self.params.return_scale

    @property
    def omega(self) -> float:
        return self.params.omega / self.params.return_scale**2


def filter_factor(asset: str, returns: np.ndarray, params: FactorParams) -> FilteredFactor:
    """Filter ``returns`` (shape (n,), finite) with ``params``; backcast as arch does."""
    scale = params.return_scale
    resid = np.ascontiguousarray(returns * scale - params.mu, dtype=np.float64)
    backcast = ewma_backcast(resid)
    if params.model == "garch":
        sigma2 = garch11_variance(resid, params.omega, params.alpha, params.beta, backcast)
    else:
        sigma2 = ewma_variance(resid, params.lam, backcast)
    sigma2 = sigma2 / scale**2
    resid = resid / scale
    cond = sigma2[:-1]
    z = np.zeros_like(resid)
    positive = cond > 0
    z[positive] = resid[positive] / np.sqrt(cond[positive])
    return FilteredFactor(asset, params, cond, z, float(sigma2[-1]))
