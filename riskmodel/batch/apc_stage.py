"""The anti-procyclicality facts of an ``eod`` run that lie outside the engine: the previous
run's model margins (the buffer's input, ``--previous-run``) and the stressed-weight tool's
manifest facts. The tools themselves are applied by the engine
(:func:`riskmodel.margin.procyclicality.apply_tools`, the stressed observations by
:mod:`riskmodel.scenarios.stressed`).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from riskmodel.config import RunConfig
from riskmodel.errors import InputDataError
from riskmodel.scenarios.scenario_set import ScenarioSet


def read_previous_run(run_dir: str | Path) -> pd.DataFrame:
    """``account_id, netting_set, model_margin`` of a previous run's output folder."""
    path = Path(run_dir) / "margins.parquet"
    if not path.is_file():
        raise InputDataError(f"--previous-run: {path} not found (value {str(run_dir)!r})")
    return pd.read_parquet(path, columns=["account_id", "netting_set", "model_margin"])


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
