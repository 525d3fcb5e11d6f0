"""From aligned returns to the model scenario set of a run: volatility filtering, then HS, FHS or
Monte Carlo. Shared by ``eod`` and ``scenarios`` (the export), so both see the same scenarios.

Fitting is injected by the composition root (the CLI): a ``VolatilityFitter`` for GARCH
parameters at run time and a ``DependenceFitter`` for the Monte Carlo correlation and copula
degrees of freedom when the parameter set carries none; the engine never imports ``calibration``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import pandas as pd

from riskmodel.config import RunConfig
from riskmodel.errors import InputDataError, ModelError, UsageError
from riskmodel.scenarios.historical import filtered_historical_scenarios, historical_scenarios
from riskmodel.scenarios.scenario_set import ScenarioSet
from riskmodel.scenarios.stressed import with_stressed_observations
from riskmodel.volatility.filters import FilteredFactor, filter_factor
from riskmodel.volatility.params import FactorParams, ParameterSet

# Fits each factor's volatility parameters from its own returns (factor -> Series over dates,
# no NaN, already cut to the sample), resolving ``[calibration.proxies]`` for factors whose own
# fit falls back, as ``calibrate`` does (:func:`calibration.runner.resolve_proxies`).
VolatilityFitter = Callable[[Mapping[str, pd.Series], RunConfig], dict[str, FactorParams]]
# Estimates (correlation (n x n), copula degrees of freedom or None) from standardised
# residuals (DataFrame dates x factors).
DependenceFitter = Callable[[pd.DataFrame], tuple[np.ndarray, "float | None"]]

# Returns beyond the lookback that the volatility filter runs over first, so that the
# standardised residuals in the window do not depend on the recursion's starting value.
FILTER_BURN_IN = 250


def filter_factors(
    returns: pd.DataFrame,
    window: pd.DataFrame,
    factors: list[str],
    config: RunConfig,
    params: ParameterSet | None,
    fitter: VolatilityFitter | None,
) -> dict[str, FilteredFactor]:
    """Filter each factor over its own recent history (at least the window plus a burn-in).

    Plain HS filters nothing. FHS and MC take parameters from ``params`` when given, else fit
    with ``fitter`` (``volatility.model = "garch"``) or use EWMA with the configured lambda.
    """
    if config.method == "hs":
        return {}
    sample_len = max(config.garch_fit_window, len(window) + FILTER_BURN_IN)
    series = {f: returns[f].dropna() for f in factors}
    if params is not None:
        chosen = parameters_for(params, factors)
    elif config.vol_model == "garch":
        if fitter is None:
            raise ModelError("GARCH volatility needs --params or a fitter")
        chosen = fitter({f: s.iloc[-sample_len:] for f, s in series.items()}, config)
    else:
        chosen = {f: FactorParams(model="ewma", decay=config.ewma_lambda) for f in factors}
    return {f: filter_factor(f, series[f], chosen[f], sample_len, cover_from=window.index[0])
            for f in factors}


def parameters_for(params: ParameterSet, factors: list[str]) -> dict[str, FactorParams]:
    """Each factor's parameters from ``params``; a factor it lacks is an input error."""
    missing = [f for f in factors if f not in params.factors]
    if missing:
        raise InputDataError(
            f"{params.source}: parameter set has no entry for factor {missing[0]!r} "
            f"(has: {', '.join(sorted(params.factors))}) (value {missing[0]!r})"
        )
    return {f: params.factors[f] for f in factors}


def volatility_warnings(filtered: Mapping[str, FilteredFactor]) -> list[str]:
    return [f"factor {f}: volatility fallback to {ff.params.model}: {ff.params.fallback}"
            for f, ff in filtered.items() if ff.params.fallback]


def _dependence(
    window: pd.DataFrame,
    filtered: Mapping[str, FilteredFactor],
    params: ParameterSet | None,
    dependence_fitter: DependenceFitter | None,
    warnings: list[str],
) -> tuple[np.ndarray, float | None, str]:
    """Correlation and copula nu for the window's factors: from the parameter set when it
    covers them, else estimated on the window's standardised residuals."""
    factors = [str(c) for c in window.columns]
    dep = params.dependence if params is not None else None
    if params is not None and dep and set(factors) <= set(dep.get("factors", [])):
        idx = [dep["factors"].index(f) for f in factors]
        corr = np.asarray(dep["correlation"], dtype=np.float64)[np.ix_(idx, idx)]
        nu = (dep.get("copula") or {}).get("nu")
        return corr, nu, f"parameter set {params.id}"
    z = pd.DataFrame({f: filtered[f].std_resid.loc[window.index] for f in factors})
    if dependence_fitter is None:
        warnings.append("Monte Carlo: no dependence in the parameter set and no estimator: "
                        "sample correlation of the window's residuals, Gaussian copula")
        corr = np.corrcoef(z.to_numpy().T).reshape(len(factors), len(factors))
        # fewer days than factors leaves it singular: shrink towards the identity until it
        # has a Cholesky factor
        shrink = 0.0
        while np.linalg.eigvalsh(corr).min() < 1e-8 and shrink < 1.0:
            shrink = min(1.0, shrink + 0.05)
            corr = (1 - shrink) * np.corrcoef(z.to_numpy().T).reshape(corr.shape) + \
                shrink * np.eye(len(factors))
        return corr, None, "sample"
    corr, nu = dependence_fitter(z)
    return corr, nu, "estimated on the window's standardised residuals"


def model_scenarios(
    window: pd.DataFrame,
    filtered: Mapping[str, FilteredFactor],
    config: RunConfig,
    params: ParameterSet | None,
    dependence_fitter: DependenceFitter | None,
    warnings: list[str],
    stressed: ScenarioSet | None = None,
) -> ScenarioSet:
    """The run's model scenario set (``config.method``); appends notes to ``warnings``.

    ``stressed``: the stressed observations of the anti-procyclicality tool ``stressed_weight``
    (historical h-day moves of the stressed windows, as the stress stage builds them); when the
    tool is on they join the set with their configured share of the probability.
    """
    if config.method == "grid":  # priced by riskmodel.engine.grid, from prices, not a window
        raise UsageError("method 'grid' has no model scenario set: its scenarios are the "
                         "[grid] rule's price moves and vol shocks of each underlying")
    if config.method == "hs":
        scenarios = historical_scenarios(window, config.horizon)
    elif config.method == "fhs":
        scenarios = filtered_historical_scenarios(window, filtered, config.horizon)
    else:
        from riskmodel.scenarios.monte_carlo import monte_carlo_scenarios

        corr, nu, source = _dependence(window, filtered, params, dependence_fitter, warnings)
        innovations = config.mc_innovations
        if innovations == "t-copula" and nu is None:
            warnings.append("Monte Carlo: no copula degrees of freedom; Gaussian copula used")
            innovations = "gaussian"
        factors = [str(c) for c in window.columns]
        std_resid = pd.DataFrame({f: filtered[f].std_resid.loc[window.index] for f in factors})
        scenarios = monte_carlo_scenarios(
            filtered, factors, corr, config.horizon, config.scenarios, config.seed,
            innovations=innovations, copula_nu=nu, antithetic=config.mc_antithetic,
            std_resid=std_resid,
        )
        prov: dict[str, Any] = dict(scenarios.provenance)
        prov["dependence_source"] = source
        scenarios = ScenarioSet(scenarios.shocks, scenarios.factors, scenarios.labels,
                                scenarios.kind, scenarios.horizon, scenarios.weights, prov)
    if "stressed_weight" in config.anti_procyclicality.tools:
        if stressed is None or stressed.n_scenarios == 0:
            warnings.append("anti-procyclicality stressed_weight: no stressed observations in "
                            "the price history for the configured windows; not applied")
        else:
            scenarios = with_stressed_observations(
                scenarios, stressed, config.anti_procyclicality.stressed_weight)
    if scenarios.n_scenarios * (1.0 - config.confidence) < 1.0:
        warnings.append(
            f"only {scenarios.n_scenarios} scenarios at confidence {config.confidence}: "
            "fewer than one scenario lies beyond VaR; VaR and ES are the worst scenario"
        )
    return scenarios
