"""The manifest of an ``eod`` run (``manifest.json``): version, as-of, resolved configuration,
input SHA-256s, parameter set, seed, scenarios, calendar, volatility, counts by status, totals,
capital efficiency, timings and warnings. The run adds its stage facts (stress, engine,
anti-procyclicality, liquidation, state) to it.
"""

from __future__ import annotations

import datetime as _dt
from typing import Any

import pandas as pd

from riskmodel import __version__
from riskmodel.config import RunConfig
from riskmodel.io.tables import sha256_file
from riskmodel.margin.policy import STATUSES
from riskmodel.marketdata.returns import MarketData
from riskmodel.scenarios.scenario_set import ScenarioSet
from riskmodel.volatility.filters import FilteredFactor
from riskmodel.volatility.params import ParameterSet


def eod_manifest(
    files: dict[str, Any],
    config: RunConfig,
    as_of: str | None,
    market: MarketData,
    window: pd.DataFrame,
    scenarios: ScenarioSet,
    params: ParameterSet | None,
    filtered: dict[str, FilteredFactor],
    margins: pd.DataFrame,
    timings: dict[str, float],
    warnings: list[str],
) -> dict[str, Any]:
    """The manifest's common part; ``files``: input name -> path (hashed here)."""
    counts = margins["status"].value_counts()
    parameter_set: dict[str, Any]
    if params is not None:
        parameter_set = {"id": params.id, "source": params.source, "created_at": params.created_at}
    elif filtered:
        fitted = ParameterSet({f: ff.params for f, ff in filtered.items()}, created_at="run")
        parameter_set = {"id": fitted.id, "source": f"fitted at run time ({config.vol_model})"}
    else:
        parameter_set = {"id": None, "source": "none (plain historical simulation)"}
    return {
        "riskmodel_version": __version__,
        "created_at": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "as_of": as_of,
        "market_date": market.market_date.isoformat(),
        "config": config.to_dict(),
        "config_sha256": config.digest(),
        "inputs": {k: {"path": str(v), "sha256": sha256_file(v)} for k, v in files.items()},
        "parameter_set": parameter_set,
        "seed": config.seed,
        "scenarios": {
            "kind": scenarios.kind,
            "count": scenarios.n_scenarios,
            "horizon_days": scenarios.horizon,
            "window_start": window.index[0].isoformat(),
            "window_end": window.index[-1].isoformat(),
            "window_returns": len(window),
            "provenance": {k: v for k, v in scenarios.provenance.items()
                           if isinstance(v, (str, int, float, bool)) or v is None},
        },
        "calendar": {
            "rule": "union of all dates; last price carried over closed dates; "
            "no backfill before listing",
            "carried_prices": market.carried,
            "return_kinds": market.return_kinds,
        },
        "volatility": {
            f: {"model": ff.params.model, "dist": ff.params.dist, "fallback": ff.params.fallback,
                "sigma_1d": ff.sigma_1d, "filter_start": ff.start}
            for f, ff in filtered.items()
        },
        "counts": {
            "netting_sets": len(margins),
            "accounts": int(margins["account_id"].nunique()),
            "by_status": {s: int(counts.get(s, 0)) for s in STATUSES},
        },
        "totals": {
            col: float(margins[col].sum())
            for col in ("gross_notional", "model_margin", "initial_margin", "maintenance_margin",
                        "flat_rate_margin", "equity", "call_amount")
        },
        "capital_efficiency": capital_efficiency(margins),
        "timings_s": timings,
        "warnings": warnings,
    }


def capital_efficiency(margins: pd.DataFrame) -> dict[str, Any]:
    """Initial margin against flat-rate margin, in total and by status.

    ``im_over_flat`` below 1 means the model asks for less collateral than the flat rate would:
    the capital the model frees (``flat - im``) is what a risk committee weighs against coverage.
    """

    def block(frame: pd.DataFrame) -> dict[str, Any]:
        im = float(frame["initial_margin"].sum())
        flat = float(frame["flat_rate_margin"].sum())
        return {"netting_sets": len(frame), "initial_margin": im, "flat_rate_margin": flat,
                "im_over_flat": im / flat if flat > 0 else None,
                "gross_notional": float(frame["gross_notional"].sum()),
                "im_over_gross_notional": (im / float(frame["gross_notional"].sum())
                                           if frame["gross_notional"].sum() > 0 else None)}

    out = block(margins)
    out["by_status"] = {s: block(margins[margins["status"] == s]) for s in STATUSES}
    return out
