"""``[grid]`` and ``[tiers]``: the venue rule (``--method grid``) and the tiered rates.

``[grid]`` configures the rule-based scenario-grid portfolio margin of
:mod:`riskmodel.engine.grid` (README, "Venue rules: the scenario-grid method and tiers"): the spot
moves per underlying, the implied-volatility shocks scaled by time to expiry, the extended moves
with their dampening, the skew shocks, the static discounts, the loss factors and the
contingencies. Its defaults are the shipped profile
``riskmodel/data/profiles/derive_like.toml`` (in the spirit of a large options venue's public
parameters); ``profile = "NAME"`` (a file of ``riskmodel/data/profiles``) or a path reads
another profile's ``[grid]`` table first, and the section's own keys override it.

``[tiers]`` holds bracket tables: maintenance and initial rates that step with each position's
notional (per underlying, continuous through the cumulative deduction) and collateral rates that
step down with the amount of a coin held (per asset). They apply to every method.

Every value is validated on construction; a bad one raises
:class:`~riskmodel.errors.UsageError` (exit 2) naming ``grid.<key>`` or ``tiers.<...>``.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from riskmodel.config.sections import section
from riskmodel.errors import UsageError
from riskmodel.validation import check_choice, check_int, check_number

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

#: Volatility shock of a scenario: none, up, down, or a skew rotation (linear or absolute).
VOL_SHOCKS = ("none", "up", "down", "linear", "abs")

# (key, low, high) of every bounded number of GridConfig: the venue's own admissible ranges
# where it publishes them, else what keeps the arithmetic meaningful
_RANGES: tuple[tuple[str, float, float], ...] = (
    ("spot_range", 0.0, 0.99), ("extended_scale", 0.0, 1e6),
    ("vol_range_up", 0.0, 10.0), ("vol_range_down", 0.0, 10.0),
    ("short_term_power", 0.0, 10.0), ("long_term_power", 0.0, 10.0),
    ("dte_floor_days", 0.0, 400.0), ("min_vol_up", 0.0, 20.0), ("term_days", 1.0, 3650.0),
    ("skew_linear_cap", 0.0, 10.0), ("skew_abs_cap", 0.0, 10.0),
    ("skew_linear_slope", -10.0, 10.0), ("skew_abs_slope", -10.0, 10.0),
    ("skew_min_k_star", 0.0, 10.0), ("skew_width_scale", 0.0, 10.0),
    ("skew_vol_static", 0.0, 10.0), ("skew_vol_scale", -20.0, 20.0),
    ("im_loss_factor", 0.1, 10.0), ("mm_loss_factor", 0.1, 10.0),
    ("long_discount", 0.0, 4.0), ("short_discount", 0.0, 4.0),
    ("long_rate_scale", 0.0, 10.0), ("long_rate_add", 0.0, 10.0),
    ("short_rate_scale", 0.0, 10.0), ("short_rate_add", 0.0, 10.0),
    ("basis_up", 0.0, 2.0), ("basis_down", 0.0, 0.99),
    ("basis_add", 0.0, 20.0), ("basis_time", 0.0, 20.0),
    ("peg_threshold", 0.0, 100.0), ("peg_factor", 0.0, 10.0),
    ("confidence_threshold", 0.0, 1.0), ("confidence_margin", 0.0, 20.0),
    ("mm_perp_rate", 0.0, 3.0), ("im_perp_rate", 0.0, 3.0),
    ("mm_option_rate", 0.0, 2.0), ("im_option_rate", 0.0, 2.0),
    ("settlement_window", 0.0, 86_400.0),
)


@dataclass(frozen=True)
class GridCollateral:
    """How the rule counts a coin held as collateral (``[grid.collateral.ASSET]``).

    ``im_haircut`` and ``mm_haircut``: shares of its value charged to the initial and the
    maintenance requirement (the initial requirement carries both, as the venue's does);
    ``underlying``: the underlying it is margined with (its oracle confidence joins the coin's);
    ``risk_cancelling``: the underlying's spot moves revalue it in every scenario (a covered
    call's coin), else no scenario moves it.
    """

    im_haircut: float = 0.0
    mm_haircut: float = 0.0
    underlying: str = ""
    risk_cancelling: bool = False

    def validate(self, asset: str) -> None:
        for name in ("im_haircut", "mm_haircut"):
            value = getattr(self, name)
            check_number(f"grid.collateral.{asset}.{name}", value)
            if not 0.0 <= value <= 1.0:
                raise UsageError(f"config: grid.collateral.{asset}.{name} = {value!r} must be "
                                 "in [0, 1]")
        if self.im_haircut + self.mm_haircut > 1.0:
            raise UsageError(f"config: grid.collateral.{asset}: im_haircut + mm_haircut = "
                             f"{self.im_haircut + self.mm_haircut!r} must be <= 1")
        if not isinstance(self.underlying, str):
            raise UsageError(f"config: grid.collateral.{asset}.underlying = "
                             f"{self.underlying!r} must be a name")
        if not isinstance(self.risk_cancelling, bool):
            raise UsageError(f"config: grid.collateral.{asset}.risk_cancelling = "
                             f"{self.risk_cancelling!r} must be true or false")
        if self.risk_cancelling and not self.underlying:
            raise UsageError(f"config: grid.collateral.{asset}.risk_cancelling = true needs "
                             "the underlying whose moves revalue it")


@dataclass(frozen=True)
class GridScenario:
    """One explicit scenario of ``[[grid.scenarios]]``: a relative spot ``move`` of every
    underlying, the volatility shock (:data:`VOL_SHOCKS`) and the dampening its P&L is counted
    at (1: in full)."""

    move: float
    vol: str = "none"
    dampening: float = 1.0

    def validate(self, i: int) -> None:
        check_number(f"grid.scenarios[{i}].move", self.move)
        if not -1.0 < self.move <= 100.0:
            raise UsageError(f"config: grid.scenarios[{i}].move = {self.move!r} must be in "
                             "(-1, 100]")
        check_choice(f"grid.scenarios[{i}].vol", self.vol, VOL_SHOCKS)
        check_number(f"grid.scenarios[{i}].dampening", self.dampening)
        if not 0.0 <= self.dampening <= 100.0:  # above 1 amplifies, as the venue allows
            raise UsageError(f"config: grid.scenarios[{i}].dampening = {self.dampening!r} "
                             "must be in [0, 100]")
        if self.vol in ("linear", "abs") and self.move != 0.0:
            raise UsageError(f"config: grid.scenarios[{i}]: a {self.vol} skew scenario moves "
                             f"no price (move = {self.move!r} must be 0)")


@dataclass(frozen=True)
class GridConfig:
    """The scenario-grid rule (module docstring; every key in ``data/run.example.toml``).

    Scenarios: ``spot_steps`` moves from ``-spot_range`` to ``+spot_range`` (0 included), each
    with every volatility shock of ``vol_shocks``; ``extended_moves`` with ``extended_vol``,
    their P&L dampened to ``min(1, spot_range / (extended_scale x |move|))``; the two skew
    rotations when ``skew_shocks``. A non-empty ``scenarios`` list replaces all of them.
    """

    profile: str = ""
    spot_range: float = 0.16
    spot_steps: int = 9
    vol_shocks: tuple[str, ...] = ("up", "down")
    extended_moves: tuple[float, ...] = (-0.66, -0.33, 0.5, 1.0, 2.0, 3.0, 5.0)
    extended_scale: float = 5.0
    extended_vol: str = "up"
    skew_shocks: bool = True
    scenarios: tuple[GridScenario, ...] = ()
    vol_range_up: float = 0.5
    vol_range_down: float = 0.275
    short_term_power: float = 0.3
    long_term_power: float = 0.13
    dte_floor_days: float = 1.0
    min_vol_up: float = 0.45
    term_days: float = 30.0
    skew_linear_cap: float = 0.15
    skew_linear_slope: float = -0.05
    skew_abs_cap: float = 0.15
    skew_abs_slope: float = -0.05
    skew_min_k_star: float = 0.01
    skew_width_scale: float = 4.0
    skew_vol_static: float = 0.6
    skew_vol_scale: float = -0.1
    im_loss_factor: float = 1.0
    mm_loss_factor: float = 0.8
    long_discount: float = 0.95
    long_rate_scale: float = 1.0
    long_rate_add: float = 0.08
    short_discount: float = 1.04
    short_rate_scale: float = 0.5
    short_rate_add: float = 0.08
    basis_up: float = 0.045
    basis_down: float = 0.045
    basis_add: float = 0.5
    basis_time: float = 2.0
    peg_asset: str = ""
    peg_threshold: float = 0.98
    peg_factor: float = 2.0
    confidence_threshold: float = 0.55
    confidence_margin: float = 1.0
    confidence: Mapping[str, float] = field(default_factory=dict)
    mm_perp_rate: float = 0.015
    im_perp_rate: float = 0.005
    mm_option_rate: float = 0.003
    im_option_rate: float = 0.002
    collateral: Mapping[str, GridCollateral] = field(default_factory=dict)
    svi_file: str = ""
    settlement_window: float = 1800.0

    def __post_init__(self) -> None:
        for key, low, high in _RANGES:
            value = getattr(self, key)
            check_number(f"grid.{key}", value)
            if not low <= value <= high:
                raise UsageError(f"config: grid.{key} = {value!r} must be in [{low:g}, "
                                 f"{high:g}]")
        check_int("grid.spot_steps", self.spot_steps, low=1, high=101)
        if self.spot_steps % 2 == 0:
            raise UsageError(f"config: grid.spot_steps = {self.spot_steps} must be odd "
                             "(0 included)")
        for v in self.vol_shocks:
            check_choice("grid.vol_shocks", v, ("none", "up", "down"))
        check_choice("grid.extended_vol", self.extended_vol, ("none", "up", "down"))
        for m in self.extended_moves:
            check_number("grid.extended_moves", m)
            if not -1.0 < m <= 100.0 or m == 0.0:
                raise UsageError(f"config: grid.extended_moves value {m!r} must be in "
                                 "(-1, 100] and not 0")
        for name in ("skew_shocks",):
            if not isinstance(getattr(self, name), bool):
                raise UsageError(f"config: grid.{name} = {getattr(self, name)!r} must be true "
                                 "or false")
        for i, s in enumerate(self.scenarios):
            s.validate(i)
        for key, value in self.confidence.items():
            check_number(f"grid.confidence.{key}", value)
            if not 0.0 <= value <= 1.0:
                raise UsageError(f"config: grid.confidence.{key} = {value!r} must be in [0, 1]")
        for asset, c in self.collateral.items():
            c.validate(asset)
        for name in ("profile", "peg_asset", "svi_file"):
            if not isinstance(getattr(self, name), str):
                raise UsageError(f"config: grid.{name} = {getattr(self, name)!r} must be a "
                                 "string")


@dataclass(frozen=True)
class TierTable:
    """A bracket table: ``rates[k]`` applies to the part of an amount from ``bounds[k]`` up to
    ``bounds[k + 1]`` (the last bracket is open); ``bounds[0] = 0``, strictly increasing.
    :mod:`riskmodel.margin.tiers` charges ``amount x rates[k] - deduction[k]`` in bracket ``k``,
    the cumulative deduction keeping it continuous at every bound."""

    bounds: tuple[float, ...]
    rates: tuple[float, ...]

    def validate(self, name: str, *, low: float, high: float, direction: int) -> None:
        """``direction`` +1: rates may only rise with the amount; -1: only fall."""
        if len(self.bounds) != len(self.rates) or not self.bounds:
            raise UsageError(f"config: {name}: {len(self.bounds)} bounds for "
                             f"{len(self.rates)} rates (one rate per bracket, at least one)")
        for i, (b, r) in enumerate(zip(self.bounds, self.rates)):
            check_number(f"{name}[{i}] bound", b)
            check_number(f"{name}[{i}] rate", r)
            if not low <= r <= high:
                raise UsageError(f"config: {name}[{i}] rate = {r!r} must be in [{low:g}, "
                                 f"{high:g}]")
        if self.bounds[0] != 0:
            raise UsageError(f"config: {name}: the first bound = {self.bounds[0]!r} must be 0")
        for i in range(1, len(self.bounds)):
            if not self.bounds[i] > self.bounds[i - 1]:
                raise UsageError(f"config: {name}: bound {self.bounds[i]!r} must exceed "
                                 f"{self.bounds[i - 1]!r} (strictly increasing)")
            if (self.rates[i] - self.rates[i - 1]) * direction < 0:
                way = "rise" if direction > 0 else "fall"
                raise UsageError(f"config: {name}: rate {self.rates[i]!r} after "
                                 f"{self.rates[i - 1]!r}: rates may only {way} with the "
                                 "amount")


@dataclass(frozen=True)
class TierConfig:
    """``[tiers]``: ``maintenance`` and ``initial`` by underlying (bounds in position notional,
    rates rising with it; they replace the ``[margin]`` floor rates of that underlying's
    positions), ``collateral`` by asset (bounds in the amount of the coin held, collateral
    rates, the share of value counted, falling with it)."""

    maintenance: Mapping[str, TierTable] = field(default_factory=dict)
    initial: Mapping[str, TierTable] = field(default_factory=dict)
    collateral: Mapping[str, TierTable] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for key, table in self.maintenance.items():
            table.validate(f"tiers.maintenance.{key}", low=1e-12, high=10.0, direction=1)
        for key, table in self.initial.items():
            table.validate(f"tiers.initial.{key}", low=0.0, high=10.0, direction=1)
        for key, table in self.collateral.items():
            table.validate(f"tiers.collateral.{key}", low=0.0, high=1.0, direction=-1)


def tier_table(raw: Any, name: str, amount_key: str, source: str) -> TierTable:
    """A :class:`TierTable` from its TOML table ``{amount_key = [...], rate = [...]}``."""
    if not isinstance(raw, Mapping):
        raise UsageError(f"{source}: [{name}] must be a table with {amount_key} and rate")
    for key in raw:
        if key not in (amount_key, "rate"):
            raise UsageError(f"{source}: unknown key {name}.{key}")
    bounds, rates = raw.get(amount_key, []), raw.get("rate", [])
    if not isinstance(bounds, (list, tuple)) or not isinstance(rates, (list, tuple)):
        raise UsageError(f"{source}: {name}.{amount_key} and {name}.rate must be lists")
    return TierTable(tuple(bounds), tuple(rates))


# --- reading [grid] and [tiers] from RUN.toml ------------------------------------------------

#: Where ``profile = "NAME"`` finds ``NAME.toml``: the shipped ``riskmodel/data/profiles``
#: (package data, so an installed riskmodel has them too).
PROFILES = Path(__file__).resolve().parents[1] / "data" / "profiles"
_FIELDS = {f.name for f in fields(GridConfig)}


def profile_path(profile: str) -> Path:
    """The file of ``profile``: a name of ``riskmodel/data/profiles`` or a path to a TOML file."""
    if "/" in profile or "\\" in profile or profile.endswith(".toml"):
        return Path(profile)
    return PROFILES / f"{profile}.toml"


def _table(raw: Mapping[str, Any], name: str, allowed: set[str], source: str) -> dict[str, Any]:
    """``raw``'s table of the last part of the dotted ``name`` (messages name it whole)."""
    return section({name: raw.get(name.rsplit(".", 1)[-1], {})}, name, allowed, source)


def _read_profile(profile: str, source: str) -> dict[str, Any]:
    """The ``[grid]`` table of a profile file (a usage error naming it if unreadable)."""
    path = profile_path(profile)
    try:
        with path.open("rb") as fh:
            raw = tomllib.load(fh)
    except FileNotFoundError:
        raise UsageError(f"{source}: grid.profile = {profile!r}: no such profile ({path})"
                         ) from None
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"{source}: grid.profile {path}: not valid TOML: {exc}") from None
    table = _table(raw, "grid", _FIELDS - {"profile"}, str(path))
    return table


def grid_section(raw: Mapping[str, Any], source: str) -> dict[str, Any]:
    """RunConfig's ``grid`` from ``[grid]`` (the profile's keys first, then the section's)."""
    section = _table(raw, "grid", _FIELDS, source)
    base = _read_profile(section["profile"], source) if section.get("profile") else {}
    merged = {**base, **section}
    for key in ("vol_shocks", "extended_moves"):
        if key in merged:
            merged[key] = tuple(merged[key])
    if "scenarios" in merged:
        merged["scenarios"] = tuple(_scenario(s, i, source)
                                    for i, s in enumerate(merged["scenarios"]))
    if "confidence" in merged:
        merged["confidence"] = dict(_table(merged, "grid.confidence", set(merged["confidence"]),
                                           source))
    if "collateral" in merged:
        assets = _table(merged, "grid.collateral", set(merged["collateral"]), source)
        merged["collateral"] = {a: GridCollateral(**_table(
            assets, f"grid.collateral.{a}",
            {"im_haircut", "mm_haircut", "underlying", "risk_cancelling"}, source))
            for a in assets}
    return {"grid": GridConfig(**merged)}


def _scenario(raw: Any, i: int, source: str) -> GridScenario:
    if not isinstance(raw, Mapping):
        raise UsageError(f"{source}: grid.scenarios[{i}] must be a table (move, vol, "
                         "dampening)")
    for key in raw:
        if key not in ("move", "vol", "dampening"):
            raise UsageError(f"{source}: unknown key grid.scenarios[{i}].{key}")
    if "move" not in raw:
        raise UsageError(f"{source}: grid.scenarios[{i}] needs a move")
    return GridScenario(**raw)


def tiers_section(raw: Mapping[str, Any], source: str) -> dict[str, Any]:
    """RunConfig's ``tiers`` from ``[tiers.maintenance.U]``, ``[tiers.initial.U]`` (``notional,
    rate``) and ``[tiers.collateral.ASSET]`` (``amount, rate``)."""
    section = _table(raw, "tiers", {"maintenance", "initial", "collateral"}, source)
    kwargs: dict[str, Any] = {}
    for key, amount in (("maintenance", "notional"), ("initial", "notional"),
                        ("collateral", "amount")):
        if key in section:
            tables = _table(section, f"tiers.{key}", set(section[key]), source)
            kwargs[key] = {k: tier_table(v, f"tiers.{key}.{k}", amount, source)
                           for k, v in tables.items()}
    return {"tiers": TierConfig(**kwargs)}
