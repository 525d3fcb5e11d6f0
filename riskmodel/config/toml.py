"""Reading ``RUN.toml``: one builder per section turns the parsed tables into a RunConfig.

A key that is not known, a section that is not a table or a value out of range raises
:class:`~riskmodel.errors.UsageError` (exit 2) naming the key and value.
"""

from __future__ import annotations

import dataclasses
import math
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import riskmodel.config.policy as policy
from riskmodel.config.addons import AddonPolicy, ThresholdTable
from riskmodel.config.grid import grid_section, tiers_section
from riskmodel.config.live import LiveConfig
from riskmodel.config.rates import RateTable
from riskmodel.config.sections import section as _section
from riskmodel.config.waterfall import WaterfallConfig
from riskmodel.errors import UsageError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

# Top-level keys accepted in RUN.toml and the RunConfig field each maps to.
_TOP_LEVEL = {
    "method": "method",
    "measure": "measure",
    "confidence": "confidence",
    "horizon": "horizon",
    "lookback": "lookback",
    "scenarios": "scenarios",
    "seed": "seed",
    "min_history": "min_history",
}
_SECTIONS = {
    "volatility", "returns", "margin", "run", "calibration", "stress", "monte_carlo", "horizons",
    "addons", "anti_procyclicality", "liquidation", "implied_vol", "collateral", "live",
    "waterfall", "grid", "tiers",
}
_RATE_TABLES = ("maintenance_rates", "initial_floor_rates", "flat_rates")


def load_config(
    path: str | Path | None, overrides: Mapping[str, Any] | None = None
) -> policy.RunConfig:
    """Read ``RUN.toml`` (optional) and apply command-line overrides (non-None values win).

    Parameters
    ----------
    path : path of a TOML file, or None for all defaults.
    overrides : flat mapping of top-level keys (``method``, ``confidence``, ...) from flags.
    """
    return config_from_mapping(read_toml(path), overrides,
                               source=str(path) if path else "defaults")


def read_toml(path: str | Path | None) -> dict[str, Any]:
    """The parsed ``--config`` file ({} for none); a missing or invalid file is a usage error."""
    if path is None:
        return {}
    p = Path(path)
    try:
        with p.open("rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        raise UsageError(f"--config: file not found: {p}") from None
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"--config {p}: not valid TOML: {exc}") from None


def config_from_mapping(
    raw: Mapping[str, Any],
    overrides: Mapping[str, Any] | None = None,
    source: str = "config",
) -> policy.RunConfig:
    """Build a validated :class:`~riskmodel.config.RunConfig` from parsed TOML and flag overrides.

    Parameters
    ----------
    raw : mapping
        The parsed ``RUN.toml``: top-level keys and one table per section.
    overrides : mapping, optional
        Flat top-level keys from command-line flags; a non-None value wins over the file's.
    source : str
        What unknown-key and wrong-shape messages name (the file's path).

    Raises
    ------
    UsageError
        (exit 2) naming the key and the value when anything is unknown or out of range.
    """
    kwargs = _top_level(raw, source)
    for build in _SECTION_BUILDERS:  # in this order: the first bad section is the one reported
        kwargs.update(build(raw, source))
    flags = {k: v for k, v in (overrides or {}).items() if v is not None}
    if flags:
        policy.RunConfig(**kwargs)  # the file's own values are validated even where a flag wins
    return policy.RunConfig(**{**kwargs, **flags})


# --- one builder per section: (parsed TOML, source) -> RunConfig keyword arguments -------------


def _top_level(raw: Mapping[str, Any], source: str) -> dict[str, Any]:
    """The top-level keys (``method``, ``confidence``, ...); an unknown key is an error."""
    kwargs: dict[str, Any] = {}
    for key, value in raw.items():
        if key in _TOP_LEVEL:
            kwargs[_TOP_LEVEL[key]] = value
        elif key not in _SECTIONS:
            raise UsageError(f"{source}: unknown key {key!r}")
    return kwargs


def _volatility(raw: Mapping[str, Any], source: str) -> dict[str, Any]:
    names = {"model": "vol_model", "ewma_lambda": "ewma_lambda",
             "garch_fit_window": "garch_fit_window"}
    return _renamed(_section(raw, "volatility", set(names), source), names)


def _returns(raw: Mapping[str, Any], source: str) -> dict[str, Any]:
    names = {"default": "default_return", "assets": "asset_returns", "gaps": "price_gaps"}
    section = _section(raw, "returns", set(names), source)
    _mapping(section, "assets", "returns", "asset = kind", source)
    return _renamed(section, names)


def _addons(raw: Mapping[str, Any], source: str) -> dict[str, Any]:
    """``[addons]``: the :class:`AddonPolicy` and, from ``[addons.adv]``, ``addon_adv``."""
    section = _section(raw, "addons", {"spreads", "concentration_threshold",
                                       "concentration_rate", "concentration_power",
                                       "threshold_adv_multiple", "adv"}, source)
    kwargs: dict[str, Any] = {}
    if "adv" in section:
        _mapping(section, "adv", "addons", "underlying = notional", source)
        kwargs["addon_adv"] = section.pop("adv")
        policy.check_positive_table("addons.adv", kwargs["addon_adv"])
    kwargs["addons"] = _addon_policy(section, source)
    return kwargs


def _addon_policy(raw: Mapping[str, Any], source: str) -> AddonPolicy:
    """Build the add-on policy from ``[addons]`` (validated there; exit 2 when out of range)."""
    kwargs: dict[str, Any] = {}
    for name in ("spreads", "concentration_rate"):
        if name in raw:
            kwargs[name] = _rate_table(raw[name], RateTable(default=0.0), name, source,
                                        section="addons")
    if "concentration_threshold" in raw:
        t = _rate_table(raw["concentration_threshold"], RateTable(default=math.inf),
                        "concentration_threshold", source, section="addons")
        kwargs["concentration_threshold"] = ThresholdTable(t.default, t.kind, t.underlying)
    for name in ("concentration_power", "threshold_adv_multiple"):
        if name in raw:
            kwargs[name] = raw[name]
    return AddonPolicy(**kwargs)


def _anti_procyclicality(raw: Mapping[str, Any], source: str) -> dict[str, Any]:
    section = _section(raw, "anti_procyclicality", {"tools", "buffer", "release_trigger",
                                                    "stressed_weight", "stressed_windows",
                                                    "floor_lookback"}, source)
    for key in ("tools", "stressed_windows"):
        if key in section:
            section[key] = tuple(section[key])
    return {"anti_procyclicality": policy.ProcyclicalityConfig(**section)}


def _horizons(raw: Mapping[str, Any], source: str) -> dict[str, Any]:
    names = {"kind": "horizons_by_kind", "account_type": "horizons_by_account_type"}
    section = _section(raw, "horizons", set(names), source)
    for key in names:
        _mapping(section, key, "horizons", f"{key} = days", source)
    return _renamed(section, names)


def _monte_carlo(raw: Mapping[str, Any], source: str) -> dict[str, Any]:
    names = {"innovations": "mc_innovations", "antithetic": "mc_antithetic"}
    return _renamed(_section(raw, "monte_carlo", set(names), source), names)


def _run(raw: Mapping[str, Any], source: str) -> dict[str, Any]:
    names = {"chunk_size": "chunk_size", "partition_size": "partition_size",
             "on_account_error": "on_account_error"}
    return _renamed(_section(raw, "run", set(names), source), names)


def _margin(raw: Mapping[str, Any], source: str) -> dict[str, Any]:
    section = _section(raw, "margin", {"mm_ratio", "warning_multiple", "min_initial_margin",
                                       *_RATE_TABLES}, source)
    defaults = policy.MarginPolicy()
    for table in _RATE_TABLES:
        if table in section:
            section[table] = _rate_table(section[table], getattr(defaults, table), table, source)
    return {"margin": policy.MarginPolicy(**section)}


def _calibration(raw: Mapping[str, Any], source: str) -> dict[str, Any]:
    section = _section(raw, "calibration", {"model", "dist", "mean", "backcast", "min_history",
                                            "max_age_days", "proxies"}, source)
    _mapping(section, "proxies", "calibration", "factor = proxy", source)
    return {"calibration": policy.CalibrationConfig(**section)}


def _stress(raw: Mapping[str, Any], source: str) -> dict[str, Any]:
    section = _section(raw, "stress", {"mode", "weight", "historical", "windows_file", "files",
                                       "proxies", "grid"}, source)
    if "grid" in section:
        grid = _section(section, "grid", {"enabled", "move", "steps", "extreme_multiple",
                                          "extreme_fraction", "vol_shifts",
                                          "move_by_underlying"}, source)
        if "vol_shifts" in grid:
            grid["vol_shifts"] = tuple(grid["vol_shifts"])
        section["grid"] = policy.StressGrid(**grid)
    if "files" in section:
        section["files"] = tuple(section["files"])
    return {"stress": policy.StressConfig(**section)}


def _liquidation(raw: Mapping[str, Any], source: str) -> dict[str, Any]:
    section = _section(raw, "liquidation", {"penalty_rates", "target_margin_level",
                                            "include_margin_call", "map_range", "map_points",
                                            "impact_coefficient", "impact_adv",
                                            "cascade_max_rounds"}, source)
    if "penalty_rates" in section:
        section["penalty_rates"] = _rate_table(section["penalty_rates"], RateTable(default=0.0),
                                               "penalty_rates", source, section="liquidation")
    _mapping(section, "impact_adv", "liquidation", "underlying = notional", source)
    return {"liquidation": policy.LiquidationConfig(**section)}


def _implied_vol(raw: Mapping[str, Any], source: str) -> dict[str, Any]:
    section = _section(raw, "implied_vol", {"factors", "rule_beta", "rule_power", "rule_floor",
                                            "rule_cap"}, source)
    _mapping(section, "factors", "implied_vol", "underlying = implied-vol column", source)
    return {"implied_vol": policy.ImpliedVolConfig(**section)}


def _collateral(raw: Mapping[str, Any], source: str) -> dict[str, Any]:
    section = _section(raw, "collateral", {"reporting_currency", "haircuts", "default_haircut"},
                       source)
    _mapping(section, "haircuts", "collateral", "asset = haircut", source)
    return {"collateral": policy.CollateralConfig(**section)}


def _dataclass_section(name: str, cls: type) -> Any:
    """The builder of a section whose keys are the fields of ``cls`` one to one (tables become
    plain dicts), so a section's settings are added in its own module alone."""
    fields = {f.name for f in dataclasses.fields(cls)}

    def build(raw: Mapping[str, Any], source: str) -> dict[str, Any]:
        section = _section(raw, name, fields, source)
        for key, value in list(section.items()):
            if isinstance(value, Mapping):
                section[key] = dict(value)
        return {name: cls(**section)}

    return build


_SECTION_BUILDERS = (
    _volatility, _returns, _addons, _anti_procyclicality, _horizons, _monte_carlo, _run, _margin,
    _calibration, _stress, _liquidation, _implied_vol, _collateral,
    _dataclass_section("live", LiveConfig), _dataclass_section("waterfall", WaterfallConfig),
    grid_section, tiers_section,  # nested tables (profiles, scenarios): riskmodel.config.grid
)


# --- helpers ---------------------------------------------------------------------------------


def _renamed(section: Mapping[str, Any], names: Mapping[str, str]) -> dict[str, Any]:
    """``section`` with each key replaced by the RunConfig field ``names`` maps it to."""
    return {names[key]: value for key, value in section.items()}


def _mapping(section: dict[str, Any], key: str, name: str, shape: str, source: str) -> None:
    """``section[key]`` (when present) must be a TOML table; stored as a plain dict."""
    if key in section:
        if not isinstance(section[key], Mapping):
            raise UsageError(f"{source}: [{name}.{key}] must be a table of {shape}")
        section[key] = dict(section[key])


def _rate_table(raw: Any, default: RateTable, name: str, source: str,
                section: str = "margin") -> RateTable:
    if not isinstance(raw, Mapping):
        raise UsageError(f"{source}: [{section}.{name}] must be a table")
    for key in raw:
        if key not in ("default", "kind", "underlying"):
            raise UsageError(f"{source}: unknown key {section}.{name}.{key}")
    return RateTable(
        default=raw.get("default", default.default),
        kind=dict(raw.get("kind", {})),
        underlying=dict(raw.get("underlying", {})),
    )
