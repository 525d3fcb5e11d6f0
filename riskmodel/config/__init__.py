"""Run configuration and margin policy: frozen dataclasses, TOML loading, validation.

Every setting has a documented default (README, "Configuration"). A value out of range, an unknown
key or a wrong type raises :class:`~riskmodel.errors.UsageError` (exit 2) naming the key and value.
Command-line flags override the same key read from ``--config RUN.toml``.

Configuration is a value the rest of the engine reads: this package imports nothing of riskmodel
but :mod:`riskmodel.errors` and :mod:`riskmodel.validation` (``tests/config`` checks it). Its
modules, in the order they build on each other:

* :mod:`~riskmodel.config.rates`: :class:`RateTable` and the instrument kinds;
* :mod:`~riskmodel.config.addons`: the add-on settings (:class:`AddonPolicy`), whose arithmetic is
  :mod:`riskmodel.margin.addons`;
* :mod:`~riskmodel.config.live`, :mod:`~riskmodel.config.waterfall`: sections whose keys are
  their dataclass's fields one to one (read by a generic builder);
* :mod:`~riskmodel.config.grid`: ``[grid]`` (the venue rule of ``--method grid``, its profiles)
  and ``[tiers]`` (bracket tables), with their readers (:mod:`~riskmodel.config.sections` reads
  one table);
* :mod:`~riskmodel.config.policy`: one frozen dataclass per section (margin, calibration, ...)
  and :class:`RunConfig`, all of them, with its digest;
* :mod:`~riskmodel.config.toml`: reading ``RUN.toml`` (:func:`load_config`).
"""

from riskmodel.config.addons import AddonConfigError, AddonPolicy, ThresholdTable
from riskmodel.config.grid import GridCollateral, GridConfig, GridScenario, TierConfig, TierTable
from riskmodel.config.live import LiveConfig
from riskmodel.config.policy import (
    APC_TOOLS,
    MC_INNOVATIONS,
    MEASURES,
    METHODS,
    RETURN_KINDS,
    STRESS_MODES,
    VOL_MODELS,
    CalibrationConfig,
    CollateralConfig,
    ImpliedVolConfig,
    LiquidationConfig,
    MarginPolicy,
    ProcyclicalityConfig,
    RunConfig,
    StressConfig,
    StressGrid,
)
from riskmodel.config.rates import INSTRUMENT_KINDS, RateTable
from riskmodel.config.toml import config_from_mapping, load_config, read_toml
from riskmodel.config.waterfall import WaterfallConfig

__all__ = [
    "APC_TOOLS",
    "INSTRUMENT_KINDS",
    "MC_INNOVATIONS",
    "MEASURES",
    "METHODS",
    "RETURN_KINDS",
    "STRESS_MODES",
    "VOL_MODELS",
    "AddonConfigError",
    "AddonPolicy",
    "CalibrationConfig",
    "CollateralConfig",
    "GridCollateral",
    "GridConfig",
    "GridScenario",
    "ImpliedVolConfig",
    "LiquidationConfig",
    "LiveConfig",
    "MarginPolicy",
    "ProcyclicalityConfig",
    "RateTable",
    "RunConfig",
    "StressConfig",
    "StressGrid",
    "ThresholdTable",
    "TierConfig",
    "TierTable",
    "WaterfallConfig",
    "config_from_mapping",
    "load_config",
    "read_toml",
]
