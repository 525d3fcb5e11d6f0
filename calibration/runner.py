"""Calibrate a whole universe: fit every factor (in parallel processes), resolve proxy fallbacks,
estimate the dependence of the standardised residuals, and assemble the parameter set.

Proxy rule: a factor whose own fit fell back (short history, say) and that has a proxy in
``[calibration.proxies]`` borrows the proxy's dynamics (model, innovations, alpha, gamma, beta)
but keeps its own level: omega is set so that the unconditional variance equals the factor's own
sample variance (variance targeting). The fallback reason records the proxy. A proxy that itself
fell back is not used.
"""

from __future__ import annotations

import datetime as _dt
import math
from collections.abc import Callable, Mapping
from concurrent.futures import ProcessPoolExecutor
from dataclasses import replace
from typing import Any

import numpy as np
import pandas as pd

from calibration.dependence import estimate_dependence
from calibration.estimate import Spec, fit_factor, return_scale
from riskmodel.volatility.filters import filter_factor
from riskmodel.volatility.params import FactorParams, ParameterSet


def _fit_task(task: tuple[str, pd.Series, Spec]) -> tuple[str, FactorParams]:
    name, series, spec = task
    return name, fit_factor(series, spec)


def fit_all(
    returns: pd.DataFrame,
    spec: Spec,
    jobs: int = 1,
    progress: Callable[[int, int], None] | None = None,
) -> dict[str, FactorParams]:
    """Fit each column of ``returns`` (dates x factors, NaN before listing) on its own history."""
    tasks = [(str(c), returns[c].dropna(), spec) for c in returns.columns]
    out: dict[str, FactorParams] = {}
    if jobs <= 1 or len(tasks) <= 1:
        for i, task in enumerate(tasks):
            name, params = _fit_task(task)
            out[name] = params
            if progress:
                progress(i + 1, len(tasks))
        return out
    with ProcessPoolExecutor(max_workers=jobs) as pool:
        chunk = max(1, len(tasks) // (jobs * 8))
        for i, (name, params) in enumerate(pool.map(_fit_task, tasks, chunksize=chunk)):
            out[name] = params
            if progress:
                progress(i + 1, len(tasks))
    return out


def with_proxy(own: FactorParams, proxy_name: str, proxy: FactorParams,
               returns: np.ndarray) -> FactorParams:
    """``proxy``'s dynamics at ``own``'s variance level (see the module docstring)."""
    scale = return_scale(returns)
    var = float(np.var(returns * scale))
    if var <= 0:
        return own
    if proxy.model == "egarch":
        # targets the mean log-variance (an approximation: E[ln s2] <= ln E[s2])
        omega = (1.0 - proxy.beta) * math.log(var)
    else:
        omega = var * (1.0 - proxy.persistence)
    reason = f"{own.fallback}; dynamics of proxy {proxy_name}, own variance level"
    return replace(
        proxy, return_scale=scale, omega=omega, mu=0.0, mean="zero", fallback=reason,
        converged=False,
        backcast_value=None, sample_start=own.sample_start, sample_end=own.sample_end,
        nobs=own.nobs, loglik=None, aic=None, bic=None, last_variance=None,
        last_residual=None, unconditional_vol=math.sqrt(var) / scale, runners_up=(),
        std_errors={},
    )


def resolve_proxies(
    fitted: dict[str, FactorParams], returns: pd.DataFrame, proxies: dict[str, str]
) -> dict[str, FactorParams]:
    out = dict(fitted)
    for name, proxy_name in proxies.items():
        own = fitted.get(name)
        proxy = fitted.get(proxy_name)
        if own is None or own.fallback is None or proxy is None or proxy.fallback is not None:
            continue
        out[name] = with_proxy(own, proxy_name, proxy, returns[name].dropna().to_numpy())
    return out


def fit_samples(samples: Mapping[str, pd.Series], spec: Spec) -> dict[str, FactorParams]:
    """Each factor fitted on its own sample (``factor -> returns``, no NaN), then the proxy
    rule for those whose fit fell back: what ``eod`` and the backtest fit at run time."""
    fitted = {name: fit_factor(series, spec) for name, series in samples.items()}
    frame = pd.DataFrame(dict(samples))
    return resolve_proxies(fitted, frame, dict(spec.proxies))


def standardised_residuals(
    returns: pd.DataFrame, factors: dict[str, FactorParams]
) -> pd.DataFrame:
    """Each factor filtered with its parameters over its own history, on the union of dates."""
    z = {
        name: filter_factor(name, returns[name].dropna(), params).std_resid
        for name, params in factors.items()
    }
    return pd.DataFrame(z).reindex(columns=list(factors))


def calibrate(
    returns: pd.DataFrame,
    spec: Spec,
    *,
    jobs: int = 1,
    data: dict[str, Any] | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> ParameterSet:
    """The full parameter set for the factors in ``returns`` (dates x factors)."""
    fitted = fit_all(returns, spec, jobs=jobs, progress=progress)
    factors = resolve_proxies(fitted, returns, dict(spec.proxies))
    dependence = estimate_dependence(standardised_residuals(returns, factors))
    return ParameterSet(
        factors=factors,
        created_at=_dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        data=data or {},
        dependence=dependence.to_json(),
    )
