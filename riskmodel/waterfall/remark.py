"""The run's market at a scenario's prices: instant P&L, marks and the re-marked priced market.

A scenario moves prices instantly (no time passes: options keep their time to expiry). At the
moved prices ``P1 = P0 (1 + x)`` each option is marked at the implied vol the scenario gives it:
today's vol scaled by the index's move where its underlying's implied-vol index is held by the
scenario, by ``1 + vol_shift`` for the stress grid's shifts, else by the spot-vol rule
(:mod:`riskmodel.pricing.option_kernels`) at the move; its instant P&L is the revaluation at
those marks (:func:`riskmodel.pricing.revaluation.scenario_pnl`, or ``grid_pnl`` for a grid
shift), so equity and marks agree.

Requirements at the scenario's prices are the engine's (:func:`riskmodel.engine.margin_book`)
against the run's priced market *re-marked* there: every instrument whose price or vol moved is
repriced over the run's own scenario sets (model, anti-procyclicality floor, each stress set),
their factor moves applied to the moved prices and vols, as ``eod`` would price a market at
those marks with the same scenarios; the grid is recomputed from the moved prices by the engine
itself. Instruments that did not move keep their stored P&L. This needs the scenario moves a run
stores with its priced market (``state/shocks_*.npy``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from riskmodel.config import RunConfig
from riskmodel.engine.market import ModelPnl, PricedMarket, ScenarioShocks, StressPnl
from riskmodel.errors import InputDataError
from riskmodel.pricing.option_kernels import DAYS_PER_YEAR, RULE_TENOR_DAYS
from riskmodel.pricing.revaluation import (
    COLLATERAL_KIND,
    grid_pnl,
    scenario_pnl,
    unit_greek_array,
    years_to_expiry,
)
from riskmodel.scenarios.scenario_set import ScenarioSet
from riskmodel.waterfall.scenarios import Scenario


class MarketView:
    """The run's priced market and the per-instrument constants re-marking needs (axis order).

    Attributes
    ----------
    factor_of : int ndarray of shape (n_instruments,), each instrument's factor (position in
        ``factors``).
    index_of : int ndarray, each option's implied-vol index factor, -1 where it has none.
    option : bool ndarray; ``iv0`` today's implied vol (NaN for other kinds); ``slope`` the
        spot-vol rule's log vol change per unit relative move (options).
    """

    def __init__(self, market: PricedMarket, config: RunConfig) -> None:
        self.market, self.config = market, config
        self.instruments = market.instruments
        self.factors = [str(f) for f in market.factors["factor"]]
        self.spot = market.factors["price"].to_numpy(np.float64)
        self.return_kinds = dict(zip(self.factors, market.factors["return_kind"]))
        self.time = market.valuation_time
        index = pd.Index(self.factors)
        self.factor_of = index.get_indexer(self.instruments["factor"]).astype(np.int64)
        kinds = self.instruments["kind"].to_numpy()
        self.option = kinds == "option"
        self.collateral = kinds == COLLATERAL_KIND
        n = len(self.instruments)
        self.iv0 = np.full(n, np.nan)
        self.slope = np.zeros(n)
        self.index_of = np.full(n, -1, dtype=np.int64)
        rows = np.flatnonzero(self.option)
        if len(rows):
            opts = self.instruments.iloc[rows]
            self.iv0[rows] = opts["implied_vol"].to_numpy(np.float64)
            iv = config.implied_vol
            days = np.maximum(years_to_expiry(opts, self.time) * DAYS_PER_YEAR, 1.0)
            self.slope[rows] = -iv.rule_beta * (RULE_TENOR_DAYS / days) ** iv.rule_power
            self.index_of[rows] = index.get_indexer(
                [iv.factors.get(u, "") for u in opts["underlying"]])
        self.exposure0 = self._exposure(np.arange(n), self.instruments, self.spot)

    def _exposure(self, cols: np.ndarray, instruments: pd.DataFrame, price: np.ndarray
                  ) -> np.ndarray:
        """Signed ``dV/dP x P`` per unit (the notional the margin tables count; the face of
        inverse contracts, delta-adjusted options; 0 for collateral) of ``instruments`` (the
        rows ``cols``) at the factor prices ``price``."""
        if len(cols) == 0:
            return np.zeros(0)
        spot = pd.Series(price, index=self.factors)
        delta = unit_greek_array(instruments, spot, self.time)[:, 1]
        out = delta * price[self.factor_of[cols]]
        out[self.collateral[cols]] = 0.0
        return out

    def shocks(self, horizon: int) -> ScenarioShocks:
        found = (getattr(self.market, "shocks", None) or {}).get(horizon)
        if found is None:
            raise InputDataError(
                "the run's state holds no scenario moves for the "
                f"{horizon}-day horizon (state/shocks_{horizon}d.npy, written by eod from this "
                "version on): rerun eod to re-margin at a scenario's prices")
        return found


@dataclass(frozen=True, eq=False)
class Marks:
    """Prices and vols at a point of a scenario: relative moves ``x`` per factor (the scenario's
    own, plus any cascade impact) and the scenario's vol treatment."""

    view: MarketView
    scenario: Scenario
    x: np.ndarray

    @property
    def price(self) -> np.ndarray:
        return self.view.spot * (1.0 + self.x)

    def vol_factor(self) -> np.ndarray:
        """Each instrument's implied vol at these marks over today's (1 for other kinds)."""
        v = self.view
        out = np.ones(len(v.factor_of))
        rows = np.flatnonzero(v.option)
        if len(rows) == 0:
            return out
        held = self.held()
        index = v.index_of[rows]
        by_index = (index >= 0) & held[np.maximum(index, 0)]
        rule = np.clip(np.exp(v.slope[rows] * self.x[v.factor_of[rows]]
                              * np.sign(v.spot[v.factor_of[rows]])),
                       self.view.config.implied_vol.rule_floor,
                       self.view.config.implied_vol.rule_cap)
        out[rows] = np.where(by_index, 1.0 + self.x[np.maximum(index, 0)], rule)
        if self.scenario.vol_shift:
            shifted = rows[v.factor_of[rows] == v.factors.index(self.scenario.shift_factor)]
            out[shifted] = 1.0 + self.scenario.vol_shift
        return out

    def held(self) -> np.ndarray:
        """Factors the repricing holds: the scenario's own and every moved one."""
        return self.scenario.held | (self.x != 0.0)

    def changed(self, other: Marks | None = None) -> np.ndarray:
        """Instruments (axis rows) whose price or vol differs from ``other``'s (today's marks
        when None)."""
        v = self.view
        x0 = np.zeros_like(self.x) if other is None else other.x
        vol0 = np.ones(len(v.factor_of)) if other is None else other.vol_factor()
        moved = (self.x != x0)[v.factor_of] | (self.vol_factor() != vol0)
        return np.flatnonzero(moved & ~(v.collateral & (self.x == x0)[v.factor_of]))

    def instruments(self, cols: np.ndarray) -> pd.DataFrame:
        """The rows ``cols`` of the instrument table marked here (price and implied vol)."""
        table = self.view.instruments.iloc[cols].copy()
        if "price" in table.columns:
            table["price"] = self.price[self.view.factor_of[cols]]
        options = self.view.option[cols]
        if options.any():
            table.loc[options, "implied_vol"] = (self.view.iv0[cols]
                                                 * self.vol_factor()[cols])[options]
        return table

    def unit_pnl(self, cols: np.ndarray) -> np.ndarray:
        """Instant P&L per unit of the instruments ``cols`` from today's marks to these, shape
        (n_cols,)."""
        v = self.view
        out = np.zeros(len(cols))
        if len(cols) == 0:
            return out
        table = v.instruments.iloc[cols]
        spot = pd.Series(v.spot, index=v.factors)
        shifted = np.zeros(len(cols), dtype=bool)
        if self.scenario.vol_shift:
            shifted = v.factor_of[cols] == v.factors.index(self.scenario.shift_factor)
            rows = np.flatnonzero(shifted)
            if len(rows):
                moves = self.x[v.factor_of[cols[rows]]][:, None]
                out[rows] = grid_pnl(table.iloc[rows], moves, np.array([self.scenario.vol_shift]),
                                     spot, v.time, 0)[:, 0]
        rows = np.flatnonzero(~shifted)
        if len(rows):
            held = self.held()
            held[v.factor_of[cols[rows]]] = True
            names = [f for f, h in zip(v.factors, held) if h]
            keep = np.flatnonzero(held)
            log = np.array([v.return_kinds[f] == "log" for f in names])
            shocks = np.where(log, np.log1p(self.x[keep]), self.x[keep] * v.spot[keep])
            scen = ScenarioSet(shocks[None, :], tuple(names), np.zeros(1), "waterfall", 0)
            out[rows] = scenario_pnl(table.iloc[rows], scen, spot, v.return_kinds, v.time,
                                     v.config.implied_vol)[:, 0]
        return out

    def exposure(self, cols: np.ndarray) -> np.ndarray:
        """Signed notional per unit (``dV/dP x P``) of the instruments ``cols`` at these
        marks, shape (n_cols,)."""
        return self.view._exposure(cols, self.instruments(cols), self.price)


def remarked_market(marks: Marks, cols: np.ndarray) -> PricedMarket:
    """The run's priced market restricted to the instruments ``cols`` (sorted axis rows) and
    re-marked at ``marks`` (module docstring): the market a book holding only those
    instruments is margined against at the scenario's prices."""
    v = marks.view
    market = v.market
    instruments = marks.instruments(cols)
    price = marks.price
    spot = pd.Series(price, index=v.factors)
    changed = np.flatnonzero(np.isin(cols, marks.changed()))
    moved = instruments.iloc[changed]

    def repriced(stored: np.ndarray, scenarios: ScenarioSet) -> np.ndarray:
        rows = stored[cols]
        if len(changed):
            rows[changed] = scenario_pnl(moved, scenarios, spot, v.return_kinds, v.time,
                                         v.config.implied_vol)
        return rows

    model, floor, stress = {}, {}, {}
    for h in market.horizons:
        shocks = v.shocks(h)
        model[h] = ModelPnl(repriced(market.model[h].pnl, shocks.model),
                            market.model[h].weights)
        if h in market.floor and shocks.floor is not None:
            floor[h] = ModelPnl(repriced(market.floor[h].pnl, shocks.floor),
                                market.floor[h].weights)
        if market.stress is not None:
            s = market.stress[h]
            pnl = s.pnl[cols]
            for block, scen in zip(s.blocks, shocks.stress):
                if len(changed):
                    pnl[changed, block.start:block.stop] = scenario_pnl(
                        moved, scen, spot, v.return_kinds, v.time, v.config.implied_vol)
            stress[h] = StressPnl(np.ascontiguousarray(pnl), s.labels, s.blocks)
    factors = market.factors.copy()
    factors["price"] = price
    absolute = (factors["return_kind"] != "log").to_numpy()
    factors["sigma_rel"] = np.where(absolute, factors["sigma_1d"].to_numpy() / np.abs(price),
                                    factors["sigma_1d"].to_numpy())
    return PricedMarket(instruments, factors, v.time, model,
                        stress if market.stress is not None else None, floor, market.unpriced)
