"""GARCH(1,1) estimation with arch, per risk factor, with documented fallbacks to EWMA.

Returns are scaled by a power of ten so their standard deviation lies in [0.5, 5) (percent for
typical daily log returns, whose standard deviation is 0.5% to 5%) because arch's optimiser works
best there; the scale is recorded and the parameters are stored in scaled units (see
:mod:`riskmodel.volatility.params`).

Fallback to EWMA (never silent: the reason is stored in ``fallback`` and every run's manifest
repeats it): fewer returns than ``min_history``; a constant series; the optimiser did not converge;
a non-stationary fit (alpha + beta >= 1).
"""

from __future__ import annotations

import math
import warnings

import numpy as np
from arch import arch_model

from riskmodel.volatility.params import FactorParams


def return_scale(returns: np.ndarray) -> float:
    """Power of ten that brings the sample standard deviation into [0.5, 5)."""
    std = float(np.std(returns))
    if std <= 0 or not math.isfinite(std):
        return 1.0
    return float(10.0 ** (-math.floor(math.log10(std / 0.5))))


def ewma_fallback(returns: np.ndarray, lam: float, reason: str) -> FactorParams:
    return FactorParams(
        model="ewma", return_scale=return_scale(returns), lam=lam, fallback=reason
    )


def fit_garch11(
    returns: np.ndarray, *, min_history: int = 250, ewma_lambda: float = 0.94
) -> FactorParams:
    """Fit a zero-mean GARCH(1,1) with normal innovations to ``returns`` (shape (n,)).

    Zero mean is the margin convention: a fitted drift would shrink the losses of long books.
    """
    n = returns.shape[0]
    if n < min_history:
        return ewma_fallback(returns, ewma_lambda, f"short history: {n} returns < {min_history}")
    if float(np.std(returns)) == 0.0:
        return ewma_fallback(returns, ewma_lambda, "constant series: zero variance")
    scale = return_scale(returns)
    model = arch_model(returns * scale, mean="Zero", vol="GARCH", p=1, q=1, dist="normal",
                       rescale=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = model.fit(disp="off", show_warning=False)
    if result.convergence_flag != 0:
        return ewma_fallback(
            returns, ewma_lambda, f"GARCH did not converge (flag {result.convergence_flag})"
        )
    omega, alpha, beta = (float(result.params[k]) for k in ("omega", "alpha[1]", "beta[1]"))
    if alpha + beta >= 1.0:
        return ewma_fallback(
            returns, ewma_lambda, f"GARCH non-stationary: alpha + beta = {alpha + beta:.6f} >= 1"
        )
    if omega <= 0.0:
        return ewma_fallback(returns, ewma_lambda, f"GARCH omega = {omega!r} <= 0")
    return FactorParams(
        model="garch",
        return_scale=scale,
        omega=omega,
        alpha=alpha,
        beta=beta,
        extra={"loglik": float(result.loglikelihood), "nobs": int(n)},
    )
