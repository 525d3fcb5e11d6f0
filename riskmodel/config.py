"""Run configuration and margin policy: frozen dataclasses, TOML loading, validation.

Every setting has a documented default (README, "Configuration"). A value out of range, an unknown
key or a wrong type raises :class:`~riskmodel.errors.UsageError` (exit 2) naming the key and value.
Command-line flags override the same key read from ``--config RUN.toml``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from riskmodel.errors import UsageError
from riskmodel.validation import (
    check_choice,
    check_int,
    check_number,
    is_finite_number,
    is_number,
)

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

METHODS = ("fhs", "hs", "mc")
MEASURES = ("es", "var")
VOL_MODELS = ("garch", "ewma")
RETURN_KINDS = ("log", "absolute")
MC_INNOVATIONS = ("t-copula", "gaussian", "bootstrap")
INSTRUMENT_KINDS = (
    "spot",
    "future",
    "perpetual",
    "inverse_perpetual",
    "inverse_future",
    "option",
)


@dataclass(frozen=True)
class RateTable:
    """A rate applied to |notional|, resolved by underlying first, then kind, then default.

    Used for maintenance-floor rates, initial-floor rates and flat rates.
    """

    default: float
    kind: Mapping[str, float] = field(default_factory=dict)
    underlying: Mapping[str, float] = field(default_factory=dict)

    def rate(self, kind: str, underlying: str) -> float:
        if underlying in self.underlying:
            return self.underlying[underlying]
        if kind in self.kind:
            return self.kind[kind]
        return self.default

    def entries(self, name: str) -> list[tuple[str, float]]:
        """``(config key, value)`` of every rate in the table, for validation messages."""
        return [(f"{name}.default", self.default),
                *((f"{name}.kind.{k}", v) for k, v in self.kind.items()),
                *((f"{name}.underlying.{k}", v) for k, v in self.underlying.items())]

    def check_kinds(self, name: str, error: type[Exception] = UsageError) -> None:
        """Every ``kind.*`` key must be a known instrument kind."""
        for k in self.kind:
            if k not in INSTRUMENT_KINDS:
                raise error(
                    f"config: {name}.kind.{k}: unknown instrument kind {k!r} "
                    f"(known: {', '.join(INSTRUMENT_KINDS)})"
                )

    def validate(self, name: str, *, strictly_positive: bool = False,
                 error: type[Exception] = UsageError) -> None:
        """Raise ``error`` unless every rate is a number in [0, 10] (in (0, 10] when
        ``strictly_positive``) and every ``kind.*`` key a known instrument kind."""
        for key, value in self.entries(name):
            check_number(key, value, error=error)
            if not (0.0 <= value <= 10.0) or (strictly_positive and value <= 0.0):
                bound = "in (0, 10]" if strictly_positive else "in [0, 10]"
                raise error(f"config: {key} = {value!r} must be {bound}")
        self.check_kinds(name, error)


class AddonConfigError(UsageError, ValueError):
    """An add-on setting or input out of range; a :class:`ValueError` and a ``UsageError``.

    The message names the field and the offending value.
    """


@dataclass(frozen=True)
class ThresholdTable(RateTable):
    """Concentration thresholds (absolute notional, reporting currency) per position.

    Same lookup as :class:`~riskmodel.config.RateTable` (the inherited ``rate`` method:
    underlying, then instrument kind, then default), but the values are thresholds, not rates:
    each must be ``> 0`` and may be ``math.inf`` (no concentration charge). The default is
    ``math.inf``. (``RateTable.validate`` requires values in [0, 10], which does not fit.)
    """

    default: float = math.inf
    kind: Mapping[str, float] = field(default_factory=dict)
    underlying: Mapping[str, float] = field(default_factory=dict)

    def validate(self, name: str, *, strictly_positive: bool = True,
                 error: type[Exception] = AddonConfigError) -> None:
        """Raise ``error`` unless every threshold is a number in (0, inf] (NaN is not)."""
        for key, value in self.entries(name):
            if not (is_number(value) and value > 0.0):
                raise error(f"config: {key} = {value!r} must be a number > 0 (inf: no threshold)")
        self.check_kinds(name, error)


@dataclass(frozen=True)
class AddonPolicy:
    """Settings of the liquidity and concentration add-ons; validated on construction.

    Attributes
    ----------
    spreads : RateTable
        Full bid-ask spread as a fraction of price (default 0: no liquidity charge).
    concentration_threshold : ThresholdTable
        Threshold ``T`` in absolute notional (default ``math.inf``: no concentration charge).
    concentration_rate : RateTable
        ``rate`` of the concentration formula (default 0).
    concentration_power : float
        ``power`` of the concentration formula, in (1, 10] (default 1.5).
    threshold_adv_multiple : float or None
        When set (> 0) and an ADV is given for the underlying, ``T = multiple x ADV``.

    Raises
    ------
    AddonConfigError
        (a ``ValueError``) naming the field and value when a setting is out of range.
    """

    spreads: RateTable = field(default_factory=lambda: RateTable(default=0.0))
    concentration_threshold: ThresholdTable = field(default_factory=ThresholdTable)
    concentration_rate: RateTable = field(default_factory=lambda: RateTable(default=0.0))
    concentration_power: float = 1.5
    threshold_adv_multiple: float | None = None

    def __post_init__(self) -> None:
        for name in ("spreads", "concentration_rate"):
            table = getattr(self, name)
            if not isinstance(table, RateTable):
                raise AddonConfigError(f"config: addons.{name} = {table!r} must be a RateTable")
            table.validate(f"addons.{name}", error=AddonConfigError)
        if not isinstance(self.concentration_threshold, ThresholdTable):
            raise AddonConfigError("config: addons.concentration_threshold = "
                                   f"{self.concentration_threshold!r} must be a ThresholdTable")
        self.concentration_threshold.validate("addons.concentration_threshold")
        power = self.concentration_power
        if not is_finite_number(power) or not 1.0 < power <= 10.0:
            raise AddonConfigError(
                f"config: addons.concentration_power = {power!r} must be in (1, 10]"
            )
        multiple = self.threshold_adv_multiple
        if multiple is not None and (not is_finite_number(multiple) or multiple <= 0.0):
            raise AddonConfigError(
                f"config: addons.threshold_adv_multiple = {multiple!r} must be a finite "
                "number > 0 (or unset)"
            )


@dataclass(frozen=True)
class MarginPolicy:
    """How the model measure becomes initial margin, maintenance margin and a status.

    ``initial_margin = max(model_margin + addons, initial_floor)`` where ``initial_floor =
    max(min_initial_margin, sum |notional| x initial_floor_rate, maintenance_floor)``;
    ``maintenance_margin = max(mm_ratio x initial_margin, maintenance_floor)`` where
    ``maintenance_floor = sum |notional| x maintenance_rate``.
    """

    mm_ratio: float = 0.75
    warning_multiple: float = 1.2
    min_initial_margin: float = 0.0
    maintenance_rates: RateTable = field(default_factory=lambda: RateTable(default=0.01))
    initial_floor_rates: RateTable = field(default_factory=lambda: RateTable(default=0.01))
    flat_rates: RateTable = field(default_factory=lambda: RateTable(default=0.10))

    def __post_init__(self) -> None:
        check_number("margin.mm_ratio", self.mm_ratio)
        if not 0.0 < self.mm_ratio <= 1.0:
            raise UsageError(f"config: margin.mm_ratio = {self.mm_ratio!r} must be in (0, 1]")
        check_number("margin.warning_multiple", self.warning_multiple)
        if not 1.0 <= self.warning_multiple <= 10.0:
            raise UsageError(
                f"config: margin.warning_multiple = {self.warning_multiple!r} must be in [1, 10]"
            )
        check_number("margin.min_initial_margin", self.min_initial_margin)
        if self.min_initial_margin < 0:
            raise UsageError(
                f"config: margin.min_initial_margin = {self.min_initial_margin!r} must be >= 0"
            )
        # A strictly positive maintenance rate keeps maintenance margin > 0 for every netting
        # set with a position, so margin_level = equity / maintenance_margin is always finite.
        self.maintenance_rates.validate("margin.maintenance_rates", strictly_positive=True)
        self.initial_floor_rates.validate("margin.initial_floor_rates")
        self.flat_rates.validate("margin.flat_rates")


@dataclass(frozen=True)
class CalibrationConfig:
    """How GARCH-family parameters are estimated (``calibrate``, and ``eod`` without --params).

    ``proxies`` maps a factor to the factor whose parameters it borrows when its own fit falls
    back (a coin listed recently, say). ``max_age_days``: ``eod --params`` warns when the
    parameter set is older.
    """

    model: str = "garch"
    dist: str = "normal"
    mean: str = "zero"
    backcast: str = "ewma"
    min_history: int = 500
    max_age_days: float = 35.0
    proxies: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        check_choice("calibration.model", self.model, ("garch", "gjr", "egarch", "auto"))
        check_choice("calibration.dist", self.dist, ("normal", "t", "skewt", "auto"))
        check_choice("calibration.mean", self.mean, ("zero", "constant"))
        check_choice("calibration.backcast", self.backcast, ("ewma", "sample"))
        check_int("calibration.min_history", self.min_history, low=50, high=1_000_000)
        check_number("calibration.max_age_days", self.max_age_days)
        if self.max_age_days <= 0:
            raise UsageError(
                f"config: calibration.max_age_days = {self.max_age_days!r} must be > 0"
            )
        for factor, proxy in self.proxies.items():
            if not isinstance(proxy, str) or not proxy or proxy == factor:
                raise UsageError(f"config: calibration.proxies.{factor} = {proxy!r} must name "
                                 "another factor")


STRESS_MODES = ("report", "max", "blend")


@dataclass(frozen=True)
class StressGrid:
    """SPAN-style hypothetical grid: each factor's price moved by -move..+move in ``steps``
    steps (0 included), plus extreme moves of ``extreme_multiple`` x move counted at
    ``extreme_fraction`` of their loss. ``vol_shifts`` are relative implied-volatility shifts
    crossed with the price moves (they move option prices only)."""

    enabled: bool = True
    move: float = 0.15
    steps: int = 7
    extreme_multiple: float = 2.0
    extreme_fraction: float = 0.35
    vol_shifts: tuple[float, ...] = (-0.25, 0.0, 0.25)
    move_by_underlying: Mapping[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for key, value in [("move", self.move), *(
            (f"move_by_underlying.{k}", v) for k, v in self.move_by_underlying.items()
        )]:
            check_number(f"stress.grid.{key}", value)
            if not 0.0 < value < 1.0:
                raise UsageError(f"config: stress.grid.{key} = {value!r} must be in (0, 1)")
        check_int("stress.grid.steps", self.steps, low=3, high=101)
        if self.steps % 2 == 0:
            raise UsageError(f"config: stress.grid.steps = {self.steps} must be odd (0 included)")
        check_number("stress.grid.extreme_multiple", self.extreme_multiple)
        if not 1.0 <= self.extreme_multiple <= 10.0:
            raise UsageError("config: stress.grid.extreme_multiple = "
                             f"{self.extreme_multiple!r} must be in [1, 10]")
        check_number("stress.grid.extreme_fraction", self.extreme_fraction)
        if not 0.0 <= self.extreme_fraction <= 1.0:
            raise UsageError("config: stress.grid.extreme_fraction = "
                             f"{self.extreme_fraction!r} must be in [0, 1]")
        for v in self.vol_shifts:
            check_number("stress.grid.vol_shifts", v)
            if not -1.0 < v <= 5.0:
                raise UsageError(f"config: stress.grid.vol_shifts value {v!r} must be in (-1, 5]")


@dataclass(frozen=True)
class StressConfig:
    """Stress scenarios and how the worst stress loss enters the margin.

    ``mode``: ``report`` (computed and reported as ``stress_loss``, margin unchanged), ``max``
    (the margin base is ``max(model_margin, weight x stress_loss)``) or ``blend``
    (``(1 - weight) x model_margin + weight x stress_loss``).
    """

    mode: str = "report"
    weight: float = 1.0
    historical: bool = True
    windows_file: str | None = None
    files: tuple[str, ...] = ()
    proxies: Mapping[str, str] = field(default_factory=dict)
    grid: StressGrid = field(default_factory=StressGrid)

    def __post_init__(self) -> None:
        check_choice("stress.mode", self.mode, STRESS_MODES)
        check_number("stress.weight", self.weight)
        if not 0.0 <= self.weight <= 10.0 or (self.mode == "blend" and self.weight > 1.0):
            raise UsageError(f"config: stress.weight = {self.weight!r} must be in [0, 10] "
                             "([0, 1] for blend)")


APC_TOOLS = ("buffer", "stressed_weight", "floor")


@dataclass(frozen=True)
class ProcyclicalityConfig:
    """EMIR Article 28 anti-procyclicality tools (see :mod:`riskmodel.margin.procyclicality`)."""

    tools: tuple[str, ...] = ()
    buffer: float = 0.25
    release_trigger: float = 0.5
    stressed_weight: float = 0.25
    stressed_windows: tuple[str, ...] = ("gfc-2008-10", "covid-2020-03",
                                         "crypto-black-thursday-2020-03-12")
    floor_lookback: int = 2520

    def __post_init__(self) -> None:
        for tool in self.tools:
            check_choice("anti_procyclicality.tools", tool, APC_TOOLS)
        for key, low in (("buffer", 0.25), ("stressed_weight", 0.25)):
            value = getattr(self, key)
            check_number(f"anti_procyclicality.{key}", value)
            if not low <= value < 1.0:
                raise UsageError(f"config: anti_procyclicality.{key} = {value!r} must be in "
                                 f"[{low}, 1) (EMIR Article 28 asks for at least {low:.0%})")
        check_number("anti_procyclicality.release_trigger", self.release_trigger)
        if not 0.0 < self.release_trigger <= 10.0:
            raise UsageError("config: anti_procyclicality.release_trigger = "
                             f"{self.release_trigger!r} must be in (0, 10]")
        check_int("anti_procyclicality.floor_lookback", self.floor_lookback, low=250,
                     high=100_000)


@dataclass(frozen=True)
class ImpliedVolConfig:
    """Implied volatility as a risk factor of options.

    ``factors`` maps an underlying to an implied-vol index column of the price file (VIX for the
    S&P 500, DVOL for bitcoin): its log changes move every option of that underlying by the
    same relative shock (sticky strike). Underlyings without one follow the spot-vol rule
    ``log shock = -rule_beta x (30 / days to expiry) ** rule_power x relative spot move``, the
    shocked vol bounded to ``[rule_floor, rule_cap] x`` today's
    (:mod:`riskmodel.pricing.option_kernels`).
    """

    factors: Mapping[str, str] = field(default_factory=dict)
    rule_beta: float = 1.5
    rule_power: float = 0.3
    rule_floor: float = 0.1
    rule_cap: float = 5.0

    def __post_init__(self) -> None:
        for name in ("rule_beta", "rule_power", "rule_floor", "rule_cap"):
            check_number(f"implied_vol.{name}", getattr(self, name))
        if not 0.0 <= self.rule_beta <= 20.0:
            raise UsageError(f"config: implied_vol.rule_beta = {self.rule_beta!r} must be in "
                             "[0, 20]")
        if not 0.0 <= self.rule_power <= 2.0:
            raise UsageError(f"config: implied_vol.rule_power = {self.rule_power!r} must be in "
                             "[0, 2]")
        if not 0.0 < self.rule_floor <= 1.0 <= self.rule_cap <= 100.0:
            raise UsageError("config: implied_vol.rule_floor and rule_cap must satisfy "
                             f"0 < floor <= 1 <= cap <= 100 (got {self.rule_floor!r}, "
                             f"{self.rule_cap!r})")
        for k, v in self.factors.items():
            if not isinstance(v, str) or not v:
                raise UsageError(f"config: implied_vol.factors.{k} = {v!r} must be a price "
                                 "column name")


@dataclass(frozen=True)
class CollateralConfig:
    """Collateral held in assets other than the reporting currency.

    An accounts row with ``asset`` (a price-file column) and ``amount`` holds that many units;
    its value counts ``amount x price x (1 - haircut)`` towards equity today and is revalued in
    every scenario with the positions. ``reporting_currency`` is the ``asset`` that means cash.
    """

    reporting_currency: str = "USD"
    haircuts: Mapping[str, float] = field(default_factory=dict)
    default_haircut: float = 0.0

    def __post_init__(self) -> None:
        if not isinstance(self.reporting_currency, str) or not self.reporting_currency:
            raise UsageError("config: collateral.reporting_currency = "
                             f"{self.reporting_currency!r} must be a non-empty name")
        for key, value in [("default_haircut", self.default_haircut),
                           *((f"haircuts.{k}", v) for k, v in self.haircuts.items())]:
            check_number(f"collateral.{key}", value)
            if not 0.0 <= value < 1.0:
                raise UsageError(f"config: collateral.{key} = {value!r} must be in [0, 1)")

    def haircut(self, asset: str) -> float:
        return float(self.haircuts.get(asset, self.default_haircut))


@dataclass(frozen=True)
class LiquidationConfig:
    """Liquidation penalty, partial liquidation, the venue liquidation map and cascades.

    ``penalty_rates``: the fee charged on the notional liquidated (rate of ``|notional|``, by
    underlying, kind or default), paid out of the netting set's equity. ``target_margin_level``:
    partial liquidation restores ``equity >= target x initial_margin``. ``include_margin_call``:
    also liquidate sets in ``margin_call`` (a venue that auto-deleverages below initial margin).
    ``map_range`` and ``map_points``: the liquidation map's grid of relative moves, ``map_points``
    evenly spaced moves from ``-map_range`` to ``+map_range``. ``impact_coefficient`` (``Y``) and
    ``impact_adv`` (average daily volume in the reporting currency per underlying; default: the
    ``[addons.adv]`` table): the square-root impact ``Y x sigma_1d x sqrt(|flow| / ADV)`` of a
    cascade round; ``cascade_max_rounds`` bounds the feedback loop.
    """

    penalty_rates: RateTable = field(default_factory=lambda: RateTable(default=0.0))
    target_margin_level: float = 1.0
    include_margin_call: bool = False
    map_range: float = 0.5
    map_points: int = 41
    impact_coefficient: float = 1.0
    impact_adv: Mapping[str, float] = field(default_factory=dict)
    cascade_max_rounds: int = 50

    def __post_init__(self) -> None:
        self.penalty_rates.validate("liquidation.penalty_rates")
        for name in ("target_margin_level", "map_range", "impact_coefficient"):
            check_number(f"liquidation.{name}", getattr(self, name))
        if not 0.1 <= self.target_margin_level <= 10.0:
            raise UsageError("config: liquidation.target_margin_level = "
                             f"{self.target_margin_level!r} must be in [0.1, 10]")
        if not isinstance(self.include_margin_call, bool):
            raise UsageError("config: liquidation.include_margin_call = "
                             f"{self.include_margin_call!r} must be true or false")
        if not 0.0 < self.map_range < 1.0:
            raise UsageError(f"config: liquidation.map_range = {self.map_range!r} must be in "
                             "(0, 1) (a fall of 100% or more is no price)")
        check_int("liquidation.map_points", self.map_points, low=3, high=1001)
        if self.impact_coefficient < 0:
            raise UsageError("config: liquidation.impact_coefficient = "
                             f"{self.impact_coefficient!r} must be >= 0")
        _check_positive_table("liquidation.impact_adv", self.impact_adv)
        check_int("liquidation.cascade_max_rounds", self.cascade_max_rounds, low=1,
                     high=10_000)


def _check_positive_table(name: str, table: Mapping[str, Any]) -> None:
    """Every value of ``[name]`` (underlying = notional) must be a finite number > 0."""
    for key, value in table.items():
        check_number(f"{name}.{key}", value)
        if value <= 0:
            raise UsageError(f"config: {name}.{key} = {value!r} must be > 0")


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


# --- TOML -----------------------------------------------------------------------------------

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
    "addons", "anti_procyclicality", "liquidation", "implied_vol", "collateral",
}
_RATE_TABLES = ("maintenance_rates", "initial_floor_rates", "flat_rates")


def load_config(path: str | Path | None, overrides: Mapping[str, Any] | None = None) -> RunConfig:
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
) -> RunConfig:
    """Build a validated :class:`RunConfig` from parsed TOML and flag overrides.

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
        RunConfig(**kwargs)  # the file's own values are validated even where a flag wins
    return RunConfig(**{**kwargs, **flags})


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
    names = {"default": "default_return", "assets": "asset_returns"}
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
        _check_positive_table("addons.adv", kwargs["addon_adv"])
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
    return {"anti_procyclicality": ProcyclicalityConfig(**section)}


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
    names = {"chunk_size": "chunk_size", "partition_size": "partition_size"}
    return _renamed(_section(raw, "run", set(names), source), names)


def _margin(raw: Mapping[str, Any], source: str) -> dict[str, Any]:
    section = _section(raw, "margin", {"mm_ratio", "warning_multiple", "min_initial_margin",
                                       *_RATE_TABLES}, source)
    defaults = MarginPolicy()
    for table in _RATE_TABLES:
        if table in section:
            section[table] = _rate_table(section[table], getattr(defaults, table), table, source)
    return {"margin": MarginPolicy(**section)}


def _calibration(raw: Mapping[str, Any], source: str) -> dict[str, Any]:
    section = _section(raw, "calibration", {"model", "dist", "mean", "backcast", "min_history",
                                            "max_age_days", "proxies"}, source)
    _mapping(section, "proxies", "calibration", "factor = proxy", source)
    return {"calibration": CalibrationConfig(**section)}


def _stress(raw: Mapping[str, Any], source: str) -> dict[str, Any]:
    section = _section(raw, "stress", {"mode", "weight", "historical", "windows_file", "files",
                                       "proxies", "grid"}, source)
    if "grid" in section:
        grid = _section(section, "grid", {"enabled", "move", "steps", "extreme_multiple",
                                          "extreme_fraction", "vol_shifts",
                                          "move_by_underlying"}, source)
        if "vol_shifts" in grid:
            grid["vol_shifts"] = tuple(grid["vol_shifts"])
        section["grid"] = StressGrid(**grid)
    if "files" in section:
        section["files"] = tuple(section["files"])
    return {"stress": StressConfig(**section)}


def _liquidation(raw: Mapping[str, Any], source: str) -> dict[str, Any]:
    section = _section(raw, "liquidation", {"penalty_rates", "target_margin_level",
                                            "include_margin_call", "map_range", "map_points",
                                            "impact_coefficient", "impact_adv",
                                            "cascade_max_rounds"}, source)
    if "penalty_rates" in section:
        section["penalty_rates"] = _rate_table(section["penalty_rates"], RateTable(default=0.0),
                                               "penalty_rates", source, section="liquidation")
    _mapping(section, "impact_adv", "liquidation", "underlying = notional", source)
    return {"liquidation": LiquidationConfig(**section)}


def _implied_vol(raw: Mapping[str, Any], source: str) -> dict[str, Any]:
    section = _section(raw, "implied_vol", {"factors", "rule_beta", "rule_power", "rule_floor",
                                            "rule_cap"}, source)
    _mapping(section, "factors", "implied_vol", "underlying = implied-vol column", source)
    return {"implied_vol": ImpliedVolConfig(**section)}


def _collateral(raw: Mapping[str, Any], source: str) -> dict[str, Any]:
    section = _section(raw, "collateral", {"reporting_currency", "haircuts", "default_haircut"},
                       source)
    _mapping(section, "haircuts", "collateral", "asset = haircut", source)
    return {"collateral": CollateralConfig(**section)}


_SECTION_BUILDERS = (
    _volatility, _returns, _addons, _anti_procyclicality, _horizons, _monte_carlo, _run, _margin,
    _calibration, _stress, _liquidation, _implied_vol, _collateral,
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


def _section(raw: Mapping[str, Any], name: str, allowed: set[str], source: str) -> dict[str, Any]:
    section = raw.get(name, {})
    if not isinstance(section, Mapping):
        raise UsageError(f"{source}: [{name}] must be a table")
    for key in section:
        if key not in allowed:
            raise UsageError(f"{source}: unknown key {name}.{key}")
    return dict(section)


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
