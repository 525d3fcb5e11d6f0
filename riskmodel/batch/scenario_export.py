"""``riskmodel scenarios``: the scenario sets a run would use, written for inspection.

One Parquet file, one row per scenario: ``set`` (``model`` or a stress kind), ``kind``,
``scenario`` (0-based within its set), ``label``, ``weight`` (probability; empty for stress), then
one column per factor holding its h-day move in the factor's return units (log return, or price
difference for absolute-return factors). The file's key-value metadata ``riskmodel`` holds the
provenance (JSON): market date, config hash, seed, generator, window, stress notes.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from riskmodel import __version__
from riskmodel.config import RunConfig
from riskmodel.engine.build import value_as_of
from riskmodel.errors import InputDataError, UsageError
from riskmodel.io.outputs import writable_parent
from riskmodel.io.prices import load_prices
from riskmodel.scenarios.model import (
    DependenceFitter,
    VolatilityFitter,
    model_scenarios,
)
from riskmodel.scenarios.scenario_set import ScenarioSet
from riskmodel.scenarios.stress import stress_scenario_sets
from riskmodel.scenarios.stressed import stressed_observations
from riskmodel.volatility.params import ParameterSet


def _frame(s: ScenarioSet, set_name: str) -> pd.DataFrame:
    n = s.n_scenarios
    weights = s.weights if s.weights is not None else (
        np.full(n, 1.0 / n) if set_name == "model" else np.full(n, np.nan))
    head = pd.DataFrame({"set": set_name, "kind": s.kind, "scenario": np.arange(n),
                         "label": s.labels.astype(str), "weight": weights})
    return pd.concat([head, pd.DataFrame(s.shocks, columns=list(s.factors))], axis=1)


def export_scenarios(
    prices: Path,
    out: Path,
    config: RunConfig,
    *,
    factors: Sequence[str] | None = None,
    as_of: str | None = None,
    params: ParameterSet | None = None,
    fitter: VolatilityFitter | None = None,
    dependence_fitter: DependenceFitter | None = None,
    stress: bool = False,
) -> dict[str, Any]:
    """Write the scenario file; returns its provenance."""
    if out.suffix.lower() not in (".parquet", ".pq"):
        raise UsageError(f"--out {out}: the scenario export is Parquet (.parquet)")
    writable_parent(out)
    history = load_prices(prices, config.return_kind)
    chosen = list(factors) if factors else history.assets
    unknown = [f for f in chosen if f not in history.assets]
    if unknown:
        raise InputDataError(f"{prices}: --factors: no price column {unknown[0]!r} "
                             f"(value {unknown[0]!r})")
    warnings: list[str] = []
    valuation = value_as_of(history, chosen, as_of, config, params=params, fitter=fitter,
                            warnings=warnings)
    market, window, universe = valuation.market, valuation.window, valuation.universe
    market_date = market.market_date
    # the price file's every asset: stress windows, proxies and the stressed observations
    stressed, notes = stressed_observations(universe, chosen, window, config, config.horizon)
    warnings += notes
    sets = [("model", model_scenarios(window, valuation.filtered, config, params, dependence_fitter,
                                      warnings, stressed=stressed))]
    if stress:
        stress_sets, info = stress_scenario_sets(chosen, market.return_kinds, window, config,
                                                 universe, config.horizon)
        warnings += info["notes"]
        sets += [("stress", s) for s in stress_sets]
    frame = pd.concat([_frame(s, name) for name, s in sets], ignore_index=True)
    provenance = {
        "riskmodel_version": __version__,
        "market_date": market_date.isoformat(),
        "config_sha256": config.digest(),
        "method": config.method,
        "horizon_days": config.horizon,
        "seed": config.seed,
        "window": [window.index[0].isoformat(), window.index[-1].isoformat()],
        "return_kinds": market.return_kinds,
        "sets": {s.kind: {"count": s.n_scenarios, **{k: v for k, v in s.provenance.items()
                                                     if isinstance(v, (str, int, float, list))}}
                 for _, s in sets},
        "parameter_set": params.id if params is not None else None,
        "warnings": warnings,
    }
    table = pa.Table.from_pandas(frame, preserve_index=False)
    meta = dict(table.schema.metadata or {})
    meta[b"riskmodel"] = json.dumps(provenance, default=str).encode()
    tmp = out.with_name(f".{out.name}.tmp")
    pq.write_table(table.replace_schema_metadata(meta), tmp)
    tmp.replace(out)
    return provenance
