"""Run each risk factor's volatility model forward over its returns (fixed parameters, no refit).

The output is what filtered historical simulation needs: every return's conditional variance, the
standardised residuals ``z[t] = (r[t] - mu) / sigma[t]`` and the one-step-ahead variance
``sigma2_next`` (today's volatility for tomorrow), in unscaled return units.

Where the recursion starts: a parameter set from ``calibrate`` records its estimation sample and
the backcast it used; when the returns reach back to that sample's first date, the filter starts
there with that backcast, so it reproduces the calibration's conditional variance exactly and then
runs on through the latest return (daily filtering, no refit). Otherwise it runs over the last
``sample_len`` returns, starting from the backcast rule (arch's EWMA backcast, or the sample
mean of squared residuals).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from riskmodel.volatility.kernels import conditional_variance
from riskmodel.volatility.params import MODEL_CODES, FactorParams
from riskmodel.volatility.recursions_python import ewma_backcast


@dataclass(frozen=True)
class FilteredFactor:
    """One factor filtered through its volatility model.

    Attributes
    ----------
    sigma2 : Series (dates of the filtered returns), conditional variance, unscaled.
    std_resid : Series (same dates), standardised residuals; 0 where the variance is 0.
    sigma2_next : float, one-step-ahead variance, unscaled.
    start : str, how the recursion was started (for the manifest).
    """

    asset: str
    params: FactorParams
    sigma2: pd.Series
    std_resid: pd.Series
    sigma2_next: float
    start: str

    @property
    def sigma_1d(self) -> float:
        return float(np.sqrt(self.sigma2_next))

    @property
    def mu(self) -> float:
        return self.params.mu / self.params.return_scale


def backcast_value(resid: np.ndarray, rule: str) -> float:
    """Pre-sample variance: arch's EWMA backcast, or the sample mean of squared residuals."""
    if rule == "sample":
        return float(np.mean(resid**2))
    return ewma_backcast(resid)


def filter_factor(
    asset: str,
    returns: pd.Series,
    params: FactorParams,
    sample_len: int | None = None,
    cover_from: pd.Timestamp | None = None,
) -> FilteredFactor:
    """Filter ``returns`` (no NaN, sorted dates) with ``params``; see the module docstring.

    ``cover_from``: the filtered range must include this date (the scenario window's start); a
    calibration sample starting later is then not used as the starting point.
    """
    start_date = pd.Timestamp(params.sample_start) if params.sample_start else None
    if (
        start_date is not None
        and params.backcast_value is not None
        and start_date in returns.index
        and (cover_from is None or start_date <= cover_from)
    ):
        series = returns.loc[start_date:]
        backcast = float(params.backcast_value)
        start = f"calibration sample from {start_date.isoformat()}"
    else:
        series = returns.iloc[-sample_len:] if sample_len else returns
        if cover_from is not None and len(series) and series.index[0] > cover_from:
            series = returns.loc[cover_from:]
        backcast = None
        start = f"{params.backcast} backcast over the last {len(series)} returns"
    scale = params.return_scale
    resid = np.ascontiguousarray(series.to_numpy(np.float64) * scale - params.mu)
    if backcast is None:
        backcast = backcast_value(resid, params.backcast)
    if backcast <= 0:  # a constant series: no variance to start from
        backcast = np.finfo(float).tiny
    sigma2 = conditional_variance(
        MODEL_CODES[params.model], resid, params.omega, params.alpha, params.gamma, params.beta,
        params.decay, backcast,
    ) / scale**2
    resid = resid / scale
    cond = sigma2[:-1]
    z = np.zeros_like(resid)
    positive = cond > 0
    z[positive] = resid[positive] / np.sqrt(cond[positive])
    return FilteredFactor(
        asset=asset,
        params=params,
        sigma2=pd.Series(cond, index=series.index),
        std_resid=pd.Series(z, index=series.index),
        sigma2_next=float(sigma2[-1]),
        start=start,
    )
