"""Wiring of the anti-procyclicality tools into a run (rules in
:mod:`riskmodel.margin.procyclicality`).

* stressed observations: the named windows of ``stressed_windows``, read like the stress stage
  reads them (historical h-day moves, proxies for factors without data), for the model scenario
  set to weight;
* the floor: the run's model with ``floor_lookback``, computed per horizon group;
* the buffer: applied last, against the previous run's model margins when given.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from riskmodel.config import RunConfig
from riskmodel.errors import InputDataError
from riskmodel.margin.procyclicality import buffer_margin, floored_margin
from riskmodel.marketdata.returns import MarketData, Universe
from riskmodel.scenarios.scenario_set import ScenarioSet
from riskmodel.scenarios.stress import load_windows, universe_window_scenarios, windows_file


def stressed_observations(
    universe: Universe, market: MarketData, window: pd.DataFrame, config: RunConfig,
    horizon: int,
) -> tuple[ScenarioSet | None, list[str]]:
    """The stressed windows' h-day moves of the run's factors (None when the tool is off)."""
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
    return universe_window_scenarios(universe, list(market.prices.columns), chosen, window,
                                     horizon, config.stress.proxies)


def read_previous_model_margin(run_dir: str | Path, sets: pd.DataFrame) -> np.ndarray:
    """The previous run's model margin of each netting set in ``sets`` (NaN where absent)."""
    path = Path(run_dir) / "margins.parquet"
    if not path.is_file():
        raise InputDataError(f"--previous-run: {path} not found (value {str(run_dir)!r})")
    prev = pd.read_parquet(path, columns=["account_id", "netting_set", "model_margin"])
    merged = sets.merge(prev, on=["account_id", "netting_set"], how="left")
    return merged["model_margin"].to_numpy(np.float64)


def apply_tools(
    model_margin: np.ndarray,
    floor_margin: np.ndarray | None,
    previous_model_margin: np.ndarray | None,
    config: RunConfig,
) -> tuple[np.ndarray, dict[str, Any]]:
    """The APC-adjusted margin base (before stress, add-ons and floors) and manifest facts."""
    apc = config.anti_procyclicality
    base = model_margin
    info: dict[str, Any] = {"tools": list(apc.tools)}
    if "floor" in apc.tools and floor_margin is not None:
        base, bound = floored_margin(base, floor_margin)
        info["floor"] = {"lookback": apc.floor_lookback, "bound_sets": int(bound.sum())}
    if "buffer" in apc.tools:
        base, released = buffer_margin(base, apc.buffer, previous_model_margin,
                                       apc.release_trigger)
        info["buffer"] = {"buffer": apc.buffer, "release_trigger": apc.release_trigger,
                          "previous_run": previous_model_margin is not None,
                          "applied_sets": int((~released).sum()),
                          "released_sets": int(released.sum())}
    return base, info


def stressed_info(scenarios: Mapping[int, ScenarioSet], config: RunConfig) -> dict[str, Any]:
    """Manifest facts of the stressed-weight tool: stressed scenarios per horizon."""
    if "stressed_weight" not in config.anti_procyclicality.tools:
        return {}
    return {"stressed_weight": {
        "weight": config.anti_procyclicality.stressed_weight,
        "windows": list(config.anti_procyclicality.stressed_windows),
        "stressed_scenarios_by_horizon": {
            str(h): int(s.provenance.get("stressed_observations", 0))
            for h, s in scenarios.items()},
    }}
