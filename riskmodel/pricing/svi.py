"""SVI implied-volatility smiles: one raw-SVI parameter set per (underlying, expiry).

Raw SVI (Gatheral 2004) gives the total implied variance at log-moneyness ``k = ln(K / F)``:

    w(k) = a + b (rho (k - m) + sqrt((k - m)^2 + sigma^2)),      vol(K) = sqrt(w(k) / tau).

Two guards keep the wings of a fitted smile from running away, as the venue that margins with
these smiles does (its public code; the form is ours): ``k`` is clamped to ``+-k_scale x
sqrt(a + b sigma)`` (``sqrt(a + b sigma)`` is the smile's own total volatility near its
minimum, so the clamp scales with the smile's width; ``k_scale`` 4) and ``w`` is capped at
``max_total_variance`` (25, a total volatility of 500%). A strike of 0 has vol 0.
``tau`` is the smile's own time to expiry in years (the time it was fitted for).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

__all__ = ["K_SCALE", "MAX_TOTAL_VARIANCE", "svi_total_variance", "svi_vol"]

K_SCALE = 4.0
MAX_TOTAL_VARIANCE = 25.0


def svi_total_variance(k: ArrayLike, a: ArrayLike, b: ArrayLike, rho: ArrayLike, m: ArrayLike,
                       sigma: ArrayLike) -> np.ndarray:
    """Raw SVI total variance ``w(k)`` (module docstring), broadcast like a ufunc."""
    d = np.asarray(k, dtype=np.float64) - np.asarray(m, dtype=np.float64)
    sig = np.asarray(sigma, dtype=np.float64)
    return np.asarray(a, dtype=np.float64) + np.asarray(b, dtype=np.float64) * (
        np.asarray(rho, dtype=np.float64) * d + np.sqrt(d * d + sig * sig))


def svi_vol(strike: ArrayLike, forward: ArrayLike, tau: ArrayLike, a: ArrayLike, b: ArrayLike,
            rho: ArrayLike, m: ArrayLike, sigma: ArrayLike, *, k_scale: float = K_SCALE,
            max_total_variance: float = MAX_TOTAL_VARIANCE) -> np.ndarray:
    """Implied volatility of each strike on its smile (module docstring).

    Parameters
    ----------
    strike, forward : array_like, > 0 (a strike of 0 gives 0)
    tau : array_like, the smile's years to expiry, > 0
    a, b, rho, m, sigma : array_like, the raw SVI parameters

    Returns
    -------
    ndarray of the broadcast shape. ``ValueError`` where the smile is not a variance (``a +
    b sigma < 0`` or ``w < 0``), or ``tau`` or the forward is not positive.
    """
    strike, forward, tau = (np.asarray(x, dtype=np.float64) for x in (strike, forward, tau))
    width = np.asarray(a, dtype=np.float64) + np.asarray(b, dtype=np.float64) * np.asarray(
        sigma, dtype=np.float64)
    if np.any(width < 0) or np.any(~(forward > 0)) or np.any(~(tau > 0)):
        raise ValueError("SVI smile: a + b sigma, the forward and tau must be positive")
    bound = k_scale * np.sqrt(width)
    with np.errstate(divide="ignore"):
        k = np.clip(np.log(strike / forward), -bound, bound)
    w = svi_total_variance(k, a, b, rho, m, sigma)
    if np.any(w < 0):
        raise ValueError("SVI smile: negative total variance")
    vol = np.sqrt(np.minimum(w, max_total_variance) / tau)
    return np.where(strike > 0, vol, 0.0)
