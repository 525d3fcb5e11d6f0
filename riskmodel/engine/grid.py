"""The engine's grid branch: the venue rule (``--method grid``) as a scenario method.

Pricing (:func:`grid_pnl`, called by :func:`riskmodel.engine.build.price_market` in place of
the model scenarios): the options of an (underlying, expiry) listed in ``[grid] svi_file`` take
their vol from its smile (the priced market's ``implied_vol`` then holds it, so greeks and a
stored run see the same vol); every instrument is valued once per grid scenario
(:func:`riskmodel.pricing.grid.grid_values`) and the market's model P&L of every horizon is
the per-unit P&L of the scan and the two basis scenarios (no time passes: the same matrix for
every horizon).

Margining (:func:`grid_measure`, called by :func:`riskmodel.engine.margin_book` in place of the
tail kernels): the scan of each netting set (:mod:`riskmodel.margin.grid_kernels`), the
contingencies (:mod:`riskmodel.margin.grid_rule`), and from them the set's figures in the
places the policy reads: ``var`` and ``es`` = the rule's loss ``W`` (the worst scenario, before
the loss factors), the model measure = the rule's initial requirement, the maintenance base =
its maintenance requirement, each position's ``contribution`` = its share of the initial
requirement (they sum to it). Stress, add-ons, floors, the buffer, status and the distance to
liquidation then apply as for every method. The margin table gains :data:`GRID_COLUMNS` and the
attribution :data:`GRID_POSITION_COLUMNS`, after their own columns.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from riskmodel.config import GridCollateral, GridConfig, RunConfig
from riskmodel.engine.market import ModelPnl, PricedMarket
from riskmodel.errors import InputDataError, ModelError
from riskmodel.io.svi import load_svi
from riskmodel.margin.grid_kernels import grid_rule_losses, grid_rule_losses_serial
from riskmodel.margin.grid_rule import (
    COLLATERAL,
    CONTINGENCIES,
    INVERSE,
    LINEAR,
    OPTION,
    OTHER,
    RuleInstruments,
    contingencies,
    im_loss_factor,
)
from riskmodel.margin.tables import TailArrays
from riskmodel.portfolio.netting import Book
from riskmodel.pricing.grid import grid_options, grid_values
from riskmodel.pricing.revaluation import COLLATERAL_KIND, INVERSE_KINDS, at_labels
from riskmodel.pricing.svi import svi_vol
from riskmodel.scenarios.grid import GridScenarios, basis_shocks, grid_scenarios
from riskmodel.scenarios.scenario_set import ScenarioSet

__all__ = ["GRID_COLUMNS", "GRID_POSITION_COLUMNS", "GridTail", "grid_factors", "grid_measure",
           "grid_pnl", "grid_scenario_losses", "with_smiles"]

#: Margin-table columns of the grid method: the worst scenario (``U: label; ...`` for several
#: underlyings), the basis contingency, the initial loss factor (raised by a depeg), each
#: contingency, and the rule's maintenance and initial requirements.
GRID_COLUMNS = ["grid_scenario", "grid_basis", "grid_im_factor",
                *(f"grid_{c}" for c in CONTINGENCIES), "grid_maintenance", "grid_initial"]
#: Attribution columns: the worst scenario of the position's underlying, the position's loss in
#: it and its share of the maintenance requirement (``contribution`` is its initial share).
GRID_POSITION_COLUMNS = ["grid_scenario", "grid_loss", "grid_maintenance"]
PARALLEL_MIN_SETS = 512  # netting sets from which the scan runs on every thread


# --- pricing ---------------------------------------------------------------------------------


def grid_factors(used: pd.DataFrame, config: RunConfig, assets: set[str]) -> set[str]:
    """The price columns the rule reads beyond the instruments' own factors (none unless
    ``method = "grid"``): each underlying's spot (notionals, oracle confidence) and the
    stablecoin ``peg_asset``, where the price file has them."""
    if config.method != "grid":
        return set()
    wanted = set(used["underlying"]) | {c.underlying for c in config.grid.collateral.values()}
    return {a for a in wanted | {config.grid.peg_asset} if a in assets}


def with_smiles(instruments: pd.DataFrame, spot: pd.Series, valuation_time: pd.Timestamp,
                grid: GridConfig) -> pd.DataFrame:
    """``instruments`` with the ``implied_vol`` of every live option whose (underlying, expiry)
    has a smile in ``grid.svi_file`` taken from it (unchanged without a file)."""
    if not grid.svi_file or not (instruments["kind"] == "option").any():
        return instruments
    smiles = load_svi(grid.svi_file)
    opts = grid_options(instruments, spot, valuation_time, grid)
    frame = instruments.iloc[opts.rows]
    keys = pd.MultiIndex.from_arrays([frame["underlying"].to_numpy(dtype=object),
                                      frame["expiry"]])
    table = smiles.frame.set_index(["underlying", "expiry"])
    at = table.index.get_indexer(keys)
    use = (at >= 0) & (opts.tau > 0)
    if not use.any():
        return instruments
    p = table.iloc[at[use]]
    forward = np.where(np.isnan(p["forward"]), opts.forward[use], p["forward"])
    tau = np.where(np.isnan(p["tau"]), opts.tau[use], p["tau"])
    try:
        vol = svi_vol(opts.strike[use], forward, tau, p["a"], p["b"], p["rho"], p["m"],
                      p["sigma"])
    except ValueError as exc:
        raise InputDataError(f"{Path(grid.svi_file)}: {exc} (value {grid.svi_file!r})"
                             ) from None
    out = instruments.copy()
    column = out["implied_vol"].to_numpy(np.float64).copy()
    column[opts.rows[use]] = vol
    out["implied_vol"] = column
    return out


def grid_pnl(instruments: pd.DataFrame, spot: pd.Series, return_kinds: Any,
             valuation_time: pd.Timestamp, config: RunConfig, horizon: int
             ) -> tuple[ModelPnl, ScenarioSet]:
    """The grid's per-unit P&L of ``instruments`` (smiles already applied, :func:`with_smiles`),
    shape ``(n_instruments, n_scan + 2)``: the scan, then basis up and down; and the scenario
    set it stands for (kind ``grid``: every factor moved by ``ln s``, or ``P (s - 1)`` for
    absolute factors)."""
    grid = config.grid
    scan = grid_scenarios(grid)
    values = grid_values(instruments, spot, valuation_time, grid, scan)
    pnl = np.ascontiguousarray(values[:, 1:] - values[:, :1])
    if not np.isfinite(pnl).all():
        i = int(np.argwhere(~np.isfinite(pnl))[0][0])
        raise ModelError(f"non-finite grid P&L for instrument "
                         f"{instruments['instrument_id'].iat[i]!r}")
    shock = np.concatenate([scan.shock, basis_shocks(grid)])
    factors = tuple(str(f) for f in spot.index)
    moves = np.zeros((len(shock), len(factors)))
    for k, f in enumerate(factors):
        absolute = return_kinds.get(f, "log") == "absolute"
        moves[:, k] = spot.iat[k] * (shock - 1.0) if absolute else np.log(shock)
    labels = np.concatenate([scan.labels, ["basis up", "basis down"]])
    return ModelPnl(pnl), ScenarioSet(moves, factors, labels, "grid", horizon)


# --- the layout the set-level arithmetic reads, once per market ------------------------------


@dataclass(frozen=True, eq=False)
class GridLayout:
    """Per instrument of the market's axis: today's value ``base``, grid underlying code and
    expiry group; per group the static discounts and basis factor; the scan; the rule's
    instrument data; the initial loss factor (with the peg)."""

    scan: GridScenarios
    base: np.ndarray
    und: np.ndarray
    und_names: np.ndarray
    group: np.ndarray
    pos_disc: np.ndarray
    neg_disc: np.ndarray
    basis_factor: np.ndarray
    rule: RuleInstruments
    im_factor: float


def grid_layout(market: PricedMarket, grid: GridConfig) -> GridLayout:
    """The market's :class:`GridLayout`, built on first use."""
    return market.cached(("grid_layout", repr(grid)), lambda: _layout(market, grid))


def _grid_underlying(instruments: pd.DataFrame, grid: GridConfig) -> np.ndarray:
    """An instrument's underlying; a coin's ``[grid.collateral]`` underlying where set."""
    und = instruments["underlying"].to_numpy(dtype=object).copy()
    coin = np.flatnonzero(instruments["kind"].to_numpy() == COLLATERAL_KIND)
    for i in coin.tolist():
        c = grid.collateral.get(und[i])
        if c is not None and c.underlying:
            und[i] = c.underlying
    return und


def _layout(market: PricedMarket, grid: GridConfig) -> GridLayout:
    inst, spot = market.instruments, market.spot
    kinds = inst["kind"].to_numpy(dtype=object)
    und_label = _grid_underlying(inst, grid)
    und, und_names = pd.factorize(und_label)
    group = np.full(len(inst), -1, dtype=np.int64)
    pos = neg = factor = np.zeros(0)
    if (kinds == "option").any():
        o = grid_options(inst, spot, market.valuation_time, grid)
        keys = pd.MultiIndex.from_arrays([und[o.rows], inst["expiry"].iloc[o.rows], o.rate])
        code = pd.factorize(keys)[0]
        group[o.rows] = code
        first = np.unique(code, return_index=True)[1]
        tau, rate = o.tau[first], o.rate[first]
        pos = grid.long_discount * np.exp(-tau * (rate * grid.long_rate_scale
                                                  + grid.long_rate_add))
        neg = np.minimum(1.0 / np.exp(-rate * tau), grid.short_discount / np.exp(
            -tau * (rate * grid.short_rate_scale + grid.short_rate_add)))
        factor = grid.basis_add + grid.basis_time * tau
    price = at_labels(spot, inst["factor"])
    known = set(spot.index)
    ref = np.array([spot[u] if u in known else p for u, p in zip(und_label, price)],
                   dtype=np.float64)
    conf = grid.confidence
    none = GridCollateral()  # a coin without [grid.collateral]: no haircut, moved by nothing
    coins = [grid.collateral.get(a, none) if k == COLLATERAL_KIND else none
             for k, a in zip(kinds, inst["underlying"])]
    rule = RuleInstruments(
        kind=_classes(kinds), und=und.astype(np.int64), group=group,
        strike=inst["strike"].to_numpy(np.float64),
        is_call=(inst["option_type"].to_numpy(dtype=object) == "call"),
        multiplier=inst["multiplier"].to_numpy(np.float64), price=price, spot=ref,
        confidence=np.array([conf.get(i, conf.get(f, 1.0)) for i, f in
                             zip(inst["instrument_id"], inst["factor"])], dtype=np.float64),
        spot_confidence=np.array([conf.get(u, 1.0) for u in und_label], dtype=np.float64),
        im_haircut=np.array([c.im_haircut for c in coins], dtype=np.float64),
        mm_haircut=np.array([c.mm_haircut for c in coins], dtype=np.float64),
        coin_confidence=np.array([min(conf.get(f, 1.0), conf.get(u, 1.0)) for f, u in
                                  zip(inst["factor"], und_label)], dtype=np.float64),
    )
    peg = float(spot[grid.peg_asset]) if grid.peg_asset in known else None
    return GridLayout(grid_scenarios(grid), grid_values(inst, spot, market.valuation_time,
                                                       grid)[:, 0],
                      und.astype(np.int64), np.asarray(und_names, dtype=object), group, pos,
                      neg, factor, rule, im_loss_factor(grid, peg))


def _classes(kinds: np.ndarray) -> np.ndarray:
    out = np.full(len(kinds), OTHER, dtype=np.int8)
    out[np.isin(kinds, ("future", "perpetual"))] = LINEAR
    out[np.isin(kinds, INVERSE_KINDS)] = INVERSE
    out[kinds == "option"] = OPTION
    out[kinds == COLLATERAL_KIND] = COLLATERAL
    return out


# --- margining -------------------------------------------------------------------------------


@dataclass
class GridMeasure:
    """One horizon group's rule figures, shaped like the tail kernels' result (``var, es,
    model_measure`` per set, ``contribution`` per position) plus the maintenance requirement,
    the grid columns per set and per position, and each scenario's loss (with ``totals``)."""

    var: np.ndarray
    es: np.ndarray
    model_measure: np.ndarray
    contribution: np.ndarray
    maintenance: np.ndarray
    columns: dict[str, np.ndarray]
    positions: dict[str, np.ndarray]
    totals: np.ndarray | None = None


def grid_measure(market: PricedMarket, book: Book, config: RunConfig, horizon: int,
                 totals: bool = False) -> GridMeasure:
    """The rule's figures of every set of ``book`` (module docstring) on the horizon's grid."""
    lay = grid_layout(market, config.grid)
    pnl = market.model[horizon].pnl
    if pnl.shape[1] != lay.scan.n + 2:
        raise ModelError(f"the priced market holds {pnl.shape[1]} grid columns, [grid] "
                         f"defines {lay.scan.n + 2}: price the market with the same [grid]")
    n_sets, n_pos = book.n_sets, len(book.quantity)
    worst, basis = np.empty(n_sets), np.empty(n_sets)
    scenario, share = np.empty(n_pos, dtype=np.int64), np.empty(n_pos)
    scan_losses = np.empty((n_sets if totals else 0, lay.scan.n))
    # the thread pool pays off from a few hundred sets (a partition), not for a what-if
    kernel = grid_rule_losses if n_sets >= PARALLEL_MIN_SETS else grid_rule_losses_serial
    kernel(pnl, lay.base, lay.und, lay.group, lay.pos_disc, lay.neg_disc,
                     lay.basis_factor, lay.scan.dampening, lay.scan.skew, book.indptr,
                     book.instrument_index, book.quantity, worst, basis, scenario, share,
                     scan_losses)
    set_of = book.set_of_position()
    cont = contingencies(config.grid, lay.rule, set_of, book.instrument_index, book.quantity)

    def per_set(values: np.ndarray) -> np.ndarray:
        return np.bincount(set_of, weights=values, minlength=n_sets)

    mm_cont = cont["perp_mm"] + cont["option_mm"] + cont["collateral_mm"]
    im_cont = mm_cont + cont["perp_im"] + cont["option_im"] + cont["collateral_im"] \
        + cont["oracle"]
    f, mm_f = lay.im_factor, config.grid.mm_loss_factor
    maintenance = mm_f * worst + per_set(mm_cont)
    initial = f * worst + per_set(im_cont)
    labels = np.append(lay.scan.labels, ["basis", "none"]).astype(object)
    columns = {"grid_scenario": _set_labels(book, lay, scenario, share, labels),
               "grid_basis": basis, "grid_im_factor": np.full(n_sets, f),
               **{f"grid_{c}": per_set(cont[c]) for c in CONTINGENCIES},
               "grid_maintenance": maintenance, "grid_initial": initial}
    positions = {"grid_scenario": labels[scenario], "grid_loss": share,
                 "grid_maintenance": mm_f * share + mm_cont}
    return GridMeasure(worst, worst.copy(), initial, f * share + im_cont, maintenance, columns,
                       positions, scan_losses if totals else None)


def _set_labels(book: Book, lay: GridLayout, scenario: np.ndarray, share: np.ndarray,
                labels: np.ndarray) -> np.ndarray:
    """Each set's worst scenario: its label; over several underlyings, ``U: label (+ other
    underlyings)`` for the underlying of the position losing most (each position's own is in
    the attribution)."""
    out = np.full(book.n_sets, "", dtype=object)
    held = np.flatnonzero(np.diff(book.indptr) > 0)
    if not len(held):
        return out
    starts = book.indptr[held]
    set_of = np.repeat(np.arange(len(held)), np.diff(book.indptr)[held])
    top = np.maximum.reduceat(share, starts)
    position = np.arange(len(share))
    pick = np.minimum.reduceat(np.where(share == top[set_of], position, len(share)), starts)
    und = lay.und[book.instrument_index]
    several = np.minimum.reduceat(und, starts) != np.maximum.reduceat(und, starts)
    text = labels[scenario[pick]]
    if several.any():
        names = lay.und_names[und[pick[several]]]
        text[several] = [f"{u}: {t} (+ other underlyings)" for u, t in
                         zip(names.tolist(), text[several].tolist())]
    out[held] = text
    return out


@dataclass
class GridTail(TailArrays):
    """:class:`~riskmodel.margin.tables.TailArrays` of a grid book: also the maintenance
    requirement and the grid columns, filled horizon group by horizon group."""

    maintenance: np.ndarray = field(default_factory=lambda: np.zeros(0))
    columns: dict[str, np.ndarray] = field(default_factory=dict)
    positions: dict[str, np.ndarray] = field(default_factory=dict)

    @classmethod
    def empty(cls, n_sets: int, n_positions: int) -> GridTail:
        def blank(name: str, n: int) -> np.ndarray:
            return np.full(n, "", dtype=object) if name == "grid_scenario" else np.zeros(n)

        return cls(np.zeros(n_sets), np.zeros(n_sets), np.zeros(n_sets),
                   np.zeros(n_positions), np.zeros(n_sets),
                   {c: blank(c, n_sets) for c in GRID_COLUMNS},
                   {c: blank(c, n_positions) for c in GRID_POSITION_COLUMNS})

    @classmethod
    def of_market(cls, market: PricedMarket, config: RunConfig, n_sets: int,
                  n_positions: int) -> GridTail:
        """:meth:`empty`, with the market's initial loss factor for sets without positions."""
        out = cls.empty(n_sets, n_positions)
        out.columns["grid_im_factor"][:] = grid_layout(market, config.grid).im_factor
        return out

    def put(self, sets: np.ndarray, rows: np.ndarray | None, part: Any) -> None:
        super().put(sets, rows, part)
        self.maintenance[sets] = part.maintenance
        for c, v in part.columns.items():
            self.columns[c][sets] = v
        for c, v in part.positions.items():
            if rows is None:
                self.positions[c][:] = v
            else:
                self.positions[c][rows] = v

    def with_columns(self, margins: pd.DataFrame, attribution: pd.DataFrame
                     ) -> tuple[pd.DataFrame, pd.DataFrame]:
        """The tables with the grid columns appended."""
        return (margins.assign(**self.columns)[[*margins.columns, *GRID_COLUMNS]],
                attribution.assign(**self.positions)[[*attribution.columns,
                                                      *GRID_POSITION_COLUMNS]])


def grid_scenario_losses(market: PricedMarket, book: Book, config: RunConfig,
                         horizon: int | None = None) -> pd.DataFrame:
    """Each set's loss in every scenario of the scan (summed over its underlyings; one column
    per scenario label, losses positive): what explains a set's rule loss scenario by
    scenario. Small books only (the matrix is ``n_sets x n_scan``)."""
    h = horizon if horizon is not None else market.horizons[0]
    measure = grid_measure(market, book, config, h, totals=True)
    lay = grid_layout(market, config.grid)
    assert measure.totals is not None
    frame = pd.DataFrame(measure.totals, columns=list(lay.scan.labels))
    return pd.concat([book.sets.reset_index(drop=True), frame], axis=1)
