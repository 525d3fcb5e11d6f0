"""The run configuration: every setting of one end-of-day run or backtest, and its digest."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from riskmodel.config.addons import AddonPolicy
from riskmodel.config.policy import (
    CalibrationConfig,
    CollateralConfig,
    ImpliedVolConfig,
    LiquidationConfig,
    MarginPolicy,
    ProcyclicalityConfig,
    StressConfig,
)
from riskmodel.config.rates import INSTRUMENT_KINDS
from riskmodel.errors import UsageError
from riskmodel.validation import check_choice, check_int, check_number

METHODS = ("fhs", "hs", "mc")
MEASURES = ("es", "var")
VOL_MODELS = ("garch", "ewma")
RETURN_KINDS = ("log", "absolute")
MC_INNOVATIONS = ("t-copula", "gaussian", "bootstrap")


@dataclass(frozen=True)
class RunConfig:
    """Everything one end-of-day run or backtest needs besides its input files."""

    method: str = "fhs"
    measure: str = "es"
    confidence: float = 0.99
    horizon: int = 2
    lookback: int = 1000
    scenarios: int = 10_000
    seed: int = 0
    vol_model: str = "garch"
    ewma_lambda: float = 0.94
    garch_fit_window: int = 2500
    min_history: int = 250
    default_return: str = "log"
    asset_returns: Mapping[str, str] = field(default_factory=dict)
    chunk_size: int = 4096
    partition_size: int = 50_000
    horizons_by_kind: Mapping[str, int] = field(default_factory=dict)
    horizons_by_account_type: Mapping[str, int] = field(default_factory=dict)
    addons: AddonPolicy = field(default_factory=AddonPolicy)
    addon_adv: Mapping[str, float] = field(default_factory=dict)
    mc_innovations: str = "t-copula"
    mc_antithetic: bool = False
    margin: MarginPolicy = field(default_factory=MarginPolicy)
    calibration: CalibrationConfig = field(default_factory=CalibrationConfig)
    stress: StressConfig = field(default_factory=StressConfig)
    anti_procyclicality: ProcyclicalityConfig = field(default_factory=ProcyclicalityConfig)
    liquidation: LiquidationConfig = field(default_factory=LiquidationConfig)
    implied_vol: ImpliedVolConfig = field(default_factory=ImpliedVolConfig)
    collateral: CollateralConfig = field(default_factory=CollateralConfig)

    def __post_init__(self) -> None:
        check_choice("method", self.method, METHODS)
        check_choice("measure", self.measure, MEASURES)
        check_choice("volatility.model", self.vol_model, VOL_MODELS)
        check_choice("returns.default", self.default_return, RETURN_KINDS)
        check_choice("monte_carlo.innovations", self.mc_innovations, MC_INNOVATIONS)
        if not isinstance(self.mc_antithetic, bool):
            raise UsageError(f"monte_carlo.antithetic = {self.mc_antithetic!r} must be true or "
                             "false")
        if self.mc_antithetic and self.mc_innovations == "bootstrap":
            raise UsageError("monte_carlo.antithetic = true does not apply to bootstrap "
                             "innovations (negating historical days would remove their skew)")
        if self.mc_antithetic and self.scenarios % 2:
            raise UsageError(f"scenarios = {self.scenarios} must be even with "
                             "monte_carlo.antithetic = true (scenarios come in pairs)")
        for asset, kind in self.asset_returns.items():
            check_choice(f"returns.assets.{asset}", kind, RETURN_KINDS)
        check_number("confidence", self.confidence)
        if not 0.0 < self.confidence < 1.0:
            raise UsageError(f"confidence = {self.confidence!r} must be in (0, 1)")
        check_int("horizon", self.horizon, low=1, high=250)
        check_int("lookback", self.lookback, low=2, high=100_000)
        check_int("scenarios", self.scenarios, low=100, high=10_000_000)
        check_int("seed", self.seed, low=0, high=2**63 - 1)
        check_int("volatility.garch_fit_window", self.garch_fit_window, low=100, high=100_000)
        check_int("min_history", self.min_history, low=2, high=100_000)
        check_int("run.chunk_size", self.chunk_size, low=1, high=10_000_000)
        check_int("run.partition_size", self.partition_size, low=1, high=100_000_000)
        check_number("volatility.ewma_lambda", self.ewma_lambda)
        if not 0.0 < self.ewma_lambda < 1.0:
            raise UsageError(
                f"config: volatility.ewma_lambda = {self.ewma_lambda!r} must be in (0, 1)"
            )
        self._check_horizons()

    def _check_horizons(self) -> None:
        """Every horizon is a whole number of days in [1, 250], shorter than the lookback, and
        every ``[horizons.kind]`` key a known instrument kind."""
        for name, h in [("horizon", self.horizon),
                        *((f"horizons.kind.{k}", v) for k, v in self.horizons_by_kind.items()),
                        *((f"horizons.account_type.{k}", v)
                          for k, v in self.horizons_by_account_type.items())]:
            check_int(name, h, low=1, high=250)
            if h >= self.lookback:
                raise UsageError(f"{name} = {h} must be shorter than lookback = {self.lookback}")
        for k in self.horizons_by_kind:
            check_choice("horizons.kind", k, INSTRUMENT_KINDS)

    def horizon_of_kind(self, kind: str) -> int:
        """Margin period of risk of an instrument kind (``[horizons.kind]``, else ``horizon``)."""
        return int(self.horizons_by_kind.get(kind, self.horizon))

    def return_kind(self, asset: str) -> str:
        """``"log"`` or ``"absolute"`` returns for ``asset``."""
        return self.asset_returns.get(asset, self.default_return)

    def to_dict(self) -> dict[str, Any]:
        """The resolved configuration as plain JSON-able data (for the manifest); infinite
        values (an add-on threshold that is off) are written as the string ``"inf"``."""

        def plain(value: Any) -> Any:
            if isinstance(value, float) and not math.isfinite(value):
                return str(value)
            if isinstance(value, Mapping):
                return {str(k): plain(v) for k, v in value.items()}
            if isinstance(value, (list, tuple)):
                return [plain(v) for v in value]
            return value

        return plain(dataclasses.asdict(self))

    def digest(self) -> str:
        """SHA-256 of the resolved configuration, canonical JSON."""
        text = json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()
