"""The run configuration: one frozen dataclass per section (margin, calibration, stress,
anti-procyclicality, implied volatility, collateral, liquidation), each validated on construction,
and :class:`RunConfig`, which holds them with the run's own settings and gives its digest.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from riskmodel.config.addons import AddonPolicy
from riskmodel.config.grid import GridConfig, TierConfig
from riskmodel.config.live import LiveConfig
from riskmodel.config.rates import INSTRUMENT_KINDS, RateTable
from riskmodel.config.waterfall import WaterfallConfig
from riskmodel.errors import UsageError
from riskmodel.validation import check_choice, check_int, check_number


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
        check_positive_table("liquidation.impact_adv", self.impact_adv)
        check_int("liquidation.cascade_max_rounds", self.cascade_max_rounds, low=1,
                     high=10_000)


def check_positive_table(name: str, table: Mapping[str, Any]) -> None:
    """Every value of ``[name]`` (underlying = notional) must be a finite number > 0.

    Raises :class:`~riskmodel.errors.UsageError` naming ``name.key`` and the value.
    """
    for key, value in table.items():
        check_number(f"{name}.{key}", value)
        if value <= 0:
            raise UsageError(f"config: {name}.{key} = {value!r} must be > 0")


METHODS = ("fhs", "hs", "mc", "grid")  # grid: the venue rule, riskmodel.engine.grid
MEASURES = ("es", "var")
VOL_MODELS = ("garch", "ewma")
RETURN_KINDS = ("log", "absolute")
PRICE_GAPS = ("carry", "drop", "error")  # a blank price inside a factor's history
ACCOUNT_ERRORS = ("fail", "skip")  # an account whose inputs are bad
MC_INNOVATIONS = ("t-copula", "gaussian", "bootstrap")


@dataclass(frozen=True)
class RunConfig:
    """Everything one end-of-day run or backtest needs besides its input files."""

    # the scenario set and the measure (the flags of eod, backtest and study)
    method: str = "fhs"  # fhs | hs | mc | grid
    measure: str = "es"  # es | var
    confidence: float = 0.99
    horizon: int = 2  # margin period of risk, days
    lookback: int = 1000  # daily returns in the window
    scenarios: int = 10_000  # Monte Carlo paths
    seed: int = 0
    # [volatility]: the filter the scenarios are scaled by
    vol_model: str = "garch"  # garch | ewma
    ewma_lambda: float = 0.94
    garch_fit_window: int = 2500  # returns a factor is fitted and filtered on
    min_history: int = 250  # fewest common returns accepted
    default_return: str = "log"
    asset_returns: Mapping[str, str] = field(default_factory=dict)
    price_gaps: str = "carry"  # [returns] gaps: carry | drop | error
    chunk_size: int = 4096
    partition_size: int = 50_000
    on_account_error: str = "fail"  # [run]: fail | skip
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
    live: LiveConfig = field(default_factory=LiveConfig)
    waterfall: WaterfallConfig = field(default_factory=WaterfallConfig)
    grid: GridConfig = field(default_factory=GridConfig)  # [grid]: --method grid's rule
    tiers: TierConfig = field(default_factory=TierConfig)  # [tiers]: bracket tables

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
        check_choice("returns.gaps", self.price_gaps, PRICE_GAPS)
        check_choice("run.on_account_error", self.on_account_error, ACCOUNT_ERRORS)
        model_tools = {"floor", "stressed_weight"} & set(self.anti_procyclicality.tools)
        if self.method == "grid" and model_tools:  # the rule has no scenario window
            raise UsageError(f"method = 'grid' takes no anti_procyclicality tool "
                             f"{sorted(model_tools)[0]!r} (a model's window; the buffer applies)")
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
