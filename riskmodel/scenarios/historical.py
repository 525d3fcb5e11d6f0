"""Historical (``hs``) and filtered historical (``fhs``) scenario sets.

HS: the last N daily returns (N = lookback); for horizon h > 1 the N - h + 1 overlapping h-day
returns inside that window (sums of h consecutive daily log returns, or price differences).

FHS: each factor's standardised residuals in the same window, rescaled to today's conditional
volatility; whole days kept together across factors. For h > 1 each scenario replays h consecutive
historical days of residuals through the factor's variance recursion, so volatility reacts within
the path (no square-root-of-time scaling); again N - h + 1 overlapping scenarios. Both are
deterministic: no random numbers are drawn.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from riskmodel.scenarios.kernels import SERIAL_MAX_STEPS, fhs_paths, fhs_paths_serial
from riskmodel.scenarios.scenario_set import ScenarioSet
from riskmodel.volatility.filters import FilteredFactor


def _labels(window: pd.DataFrame, horizon: int) -> np.ndarray:
    return np.asarray(window.index[: len(window) - horizon + 1].strftime("%Y-%m-%dT%H:%M:%S"))


def historical_scenarios(window: pd.DataFrame, horizon: int) -> ScenarioSet:
    """Plain HS over a window of daily returns (dates x factors, no NaN)."""
    r = window.to_numpy(dtype=np.float64)
    n_scen = r.shape[0] - horizon + 1
    shocks = np.zeros((n_scen, r.shape[1]))
    for k in range(horizon):  # fixed summation order: day 0 first
        shocks += r[k : k + n_scen]
    return ScenarioSet(
        shocks=shocks,
        factors=tuple(str(c) for c in window.columns),
        labels=_labels(window, horizon),
        kind="hs",
        horizon=horizon,
        provenance={"window_start": str(window.index[0]), "window_end": str(window.index[-1])},
    )


def filtered_historical_scenarios(
    window: pd.DataFrame, filtered: Mapping[str, FilteredFactor], horizon: int
) -> ScenarioSet:
    """FHS over ``window``'s dates.

    Parameters
    ----------
    window : DataFrame (dates x factors) of daily returns; only its dates and columns are used.
    filtered : factor -> its filter output (standardised residuals covering the window, today's
        variance and the recursion parameters).
    """
    factors = [str(c) for c in window.columns]
    z = np.column_stack([filtered[f].std_resid.loc[window.index].to_numpy() for f in factors])
    ff = [filtered[f] for f in factors]
    rec = np.array([f.params.recursion() for f in ff]).reshape(len(ff), 6)
    steps = (z.shape[0] - horizon + 1) * z.shape[1] * horizon
    kernel = fhs_paths if steps >= SERIAL_MAX_STEPS else fhs_paths_serial
    shocks = kernel(  # type: ignore[call-arg]
        np.ascontiguousarray(z, dtype=np.float64),
        np.array([f.sigma2_next for f in ff]),
        np.array([f.mu for f in ff]),
        rec[:, 0].astype(np.int64),
        *(np.ascontiguousarray(rec[:, k]) for k in range(1, 6)),
        horizon,
    )
    return ScenarioSet(
        shocks=shocks,
        factors=tuple(factors),
        labels=_labels(window, horizon),
        kind="fhs",
        horizon=horizon,
        provenance={"window_start": str(window.index[0]), "window_end": str(window.index[-1])},
    )
