"""Stressed observations for the anti-procyclicality tool ``stressed_weight`` (EMIR Article
28(1)(b)): the named stress windows' h-day moves join the model scenario set with a fixed share
of the probability (rules in :mod:`riskmodel.margin.procyclicality`).

The windows are read as the stress stage reads them (:func:`riskmodel.scenarios.stress.
universe_window_scenarios`: every overlapping h-day move inside the window, from the price
history up to the market date, proxies for factors without data), so a run as of a date sees
only the data up to that date.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from riskmodel.config import RunConfig
from riskmodel.errors import InputDataError
from riskmodel.marketdata.returns import Universe
from riskmodel.scenarios.scenario_set import ScenarioSet
from riskmodel.scenarios.stress import load_windows, universe_window_scenarios, windows_file


def stressed_observations(
    universe: Universe, factors: Sequence[str], window: pd.DataFrame, config: RunConfig,
    horizon: int,
) -> tuple[ScenarioSet | None, list[str]]:
    """The stressed windows' h-day moves of ``factors`` (None when the tool is off) and notes."""
    apc = config.anti_procyclicality
    if "stressed_weight" not in apc.tools:
        return None, []
    path = windows_file(config.stress.windows_file)
    if path is None:
        return None, ["anti-procyclicality: no stress windows file for the stressed windows"]
    windows, _ = load_windows(path)
    by_name = {w.name: w for w in windows}
    missing = [n for n in apc.stressed_windows if n not in by_name]
    if missing:
        raise InputDataError(f"{path}: anti_procyclicality.stressed_windows names unknown "
                             f"window {missing[0]!r} (value {missing[0]!r})")
    chosen = [by_name[n] for n in apc.stressed_windows]
    return universe_window_scenarios(universe, list(factors), chosen, window, horizon,
                                     config.stress.proxies)


def with_stressed_observations(
    scenarios: ScenarioSet, stressed: ScenarioSet, stressed_weight: float
) -> ScenarioSet:
    """Append ``stressed`` to ``scenarios`` with ``stressed_weight`` of the probability.

    The ordinary scenarios keep their relative weights and share ``1 - stressed_weight``; the
    stressed ones share ``stressed_weight`` equally.
    """
    if stressed.factors != scenarios.factors:
        raise ValueError("stressed observations must cover the same factors in the same order")
    if not 0.0 < stressed_weight < 1.0:
        raise ValueError(f"stressed_weight = {stressed_weight!r} must be in (0, 1)")
    n, m = scenarios.n_scenarios, stressed.n_scenarios
    base = scenarios.weights if scenarios.weights is not None else np.full(n, 1.0 / n)
    weights = np.concatenate([base * (1.0 - stressed_weight), np.full(m, stressed_weight / m)])
    return ScenarioSet(
        shocks=np.vstack([scenarios.shocks, stressed.shocks]),
        factors=scenarios.factors,
        labels=np.concatenate([scenarios.labels.astype(object), stressed.labels.astype(object)]),
        kind=scenarios.kind,
        horizon=scenarios.horizon,
        weights=weights,
        provenance={**scenarios.provenance, "stressed_observations": m,
                    "stressed_weight": stressed_weight},
    )
