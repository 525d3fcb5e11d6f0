"""A stored priced market re-marked at current prices: the intraday loop's market.

An ``eod`` run stores, per margin period of risk, the per-unit scenario P&L of every priced
instrument at the end-of-day marks and the scenario sets it was priced from
(:class:`~riskmodel.engine.market.ScenarioShocks`: the factor moves of the model, floor and
stress scenarios). :class:`RemarkedMarket` keeps the day's scenario set and moves the marks:

* :meth:`~RemarkedMarket.set_mark` moves one factor's current price (an underlying, or an
  implied-vol index: every option of the underlyings it drives then carries ``iv0 x X / X0``,
  the sticky-strike rule the scenarios use) and revalues the options it drives at the current
  marks (:func:`riskmodel.pricing.options.option_price`, the engine's kernel, as
  :func:`riskmodel.pricing.revaluation.unit_greek_array` values them);
* :meth:`~RemarkedMarket.mark_pnl` is each instrument's P&L per unit since the end-of-day
  marks, in the engine's conventions: ``multiplier x (P - P0)`` for linear kinds (and coins
  held as collateral), ``multiplier x (P / P0 - 1)`` for inverse contracts (the coin P&L at the
  current price), ``V - V0`` for quote-settled options and ``V - (V0 / P0) P`` for
  coin-settled ones; an option's implied vol moves only with its implied-vol index (sticky
  strike; the spot-vol rule describes scenarios, not marks);
* each factor also has a *requirement mark*, the price its instruments' scenario P&L was last
  priced at; :meth:`~RemarkedMarket.follow` moves it to the current price and reprices the
  scenario P&L of every instrument the factor drives: the stored shocks applied to the
  current prices by :func:`riskmodel.pricing.revaluation.scenario_pnl` (options fully
  repriced at the horizon; the stress grid's scan by :func:`riskmodel.engine.stress.
  grid_unit_pnl`). Each row is priced on its own, so a row repriced alone is bitwise the row of
  the whole matrix priced at the same marks (tested);
* :meth:`~RemarkedMarket.view` is the :class:`PricedMarket` at the requirement marks, which
  :func:`riskmodel.engine.margin_book` margins books against; :meth:`~RemarkedMarket.at_marks`
  prices a few instruments afresh at the current marks into a market of their own (what a
  refresh at the exact marks needs while other factors' requirement marks lag).

The valuation time stays the run's: options' time to expiry, and so their decay over the
margin period of risk, counts from the market date all day. Re-marking changes nothing else of
the run (volatilities, scenario set, configuration): the requirements are the engine's function
of the book at the current marks with the run's scenario set, which is what an ``eod`` re-run
gives on a price history scaled (log factors) or shifted (absolute ones) to end at those marks.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from riskmodel.config import RunConfig
from riskmodel.engine.build import finite_pnl
from riskmodel.engine.market import ModelPnl, PricedMarket, StressPnl
from riskmodel.engine.stress import grid_unit_pnl
from riskmodel.errors import InputDataError
from riskmodel.pricing.options import option_price
from riskmodel.pricing.revaluation import (
    COLLATERAL_KIND,
    INVERSE_KINDS,
    model_codes,
    scenario_pnl,
    unit_greek_array,
    years_to_expiry,
)
from riskmodel.scenarios.scenario_set import ScenarioSet

__all__ = ["RemarkedMarket", "mark_pnl"]

# how the P&L of a kind accrues: in the reporting currency, or in the coin (inverse
# contracts and coin-settled options: the coin P&L valued at the current price)
_LINEAR, _INVERSE, _OPTION, _COIN_OPTION = 0, 1, 2, 3


def mark_pnl(kind: np.ndarray, multiplier: np.ndarray, p0: np.ndarray, price: np.ndarray,
             value0: np.ndarray, value: np.ndarray) -> np.ndarray:
    """Per-unit P&L of instruments whose factor moved from ``p0`` to ``price`` (module
    docstring), shape (n,).

    Parameters
    ----------
    kind : int ndarray of shape (n,)
        0 linear, 1 inverse, 2 quote-settled option, 3 coin-settled option.
    multiplier, p0, price : ndarray of shape (n,)
    value0, value : ndarray of shape (n,)
        Per-unit value (multiplier included) at ``p0`` and at ``price`` (options' premium).
    """
    out = multiplier * (price - p0)
    inverse = kind == _INVERSE
    out[inverse] = multiplier[inverse] * (price[inverse] / p0[inverse] - 1.0)
    option = kind == _OPTION
    out[option] = value[option] - value0[option]
    coin = kind == _COIN_OPTION
    out[coin] = value[coin] - value0[coin] / p0[coin] * price[coin]
    return out


@dataclasses.dataclass
class _Rows:
    """The per-unit scenario P&L of one horizon at the requirement marks: model, floor (or
    None), the stress matrix and each stress block's contiguous copy (kept in step), the
    grid scan and its weights."""

    model: np.ndarray
    floor: np.ndarray | None
    stress: np.ndarray
    blocks: list[np.ndarray]
    grid: np.ndarray
    grid_weights: np.ndarray


class RemarkedMarket:
    """A run's priced market with marks that move (module docstring).

    Parameters
    ----------
    market : PricedMarket
        The run's, with its scenario shocks (:attr:`PricedMarket.shocks`).
    config : RunConfig
        The run's configuration (implied-vol factors, the stress grid).

    Attributes
    ----------
    factors : list of str, the run's factors (a tick names one of them).
    spot, rmark : ndarray of shape (n_factors,), the current marks and the requirement marks.
    value : ndarray of shape (n_instruments,), each option's per-unit value (multiplier
        included) at the current marks (the value column of
        :func:`riskmodel.pricing.revaluation.unit_greeks`; other kinds' P&L needs none).
    driven : list of int ndarray, per factor the instrument rows it moves (its own
        instruments and the options whose implied-vol index it is).

    Raises
    ------
    InputDataError
        The market has no scenario shocks (a run stored by an older version).
    """

    def __init__(self, market: PricedMarket, config: RunConfig) -> None:
        if any(h not in market.shocks for h in market.horizons):
            raise InputDataError(
                "the run's state holds no scenario shocks (written by an older version): "
                "rerun eod to margin it intraday")
        self.base, self.config = market, config
        frame = market.instruments.copy()
        self.factors = list(market.factors["factor"])
        self.factor_index = {f: i for i, f in enumerate(self.factors)}
        self.return_kinds = dict(zip(market.factors["factor"], market.factors["return_kind"]))
        self.absolute = market.factors["return_kind"].to_numpy() == "absolute"
        self.sigma_1d = market.factors["sigma_1d"].to_numpy(np.float64)
        self.spot0 = market.factors["price"].to_numpy(np.float64).copy()
        self.spot = self.spot0.copy()
        self.rmark = self.spot0.copy()
        # when each factor's requirement mark last moved (restore reprices in that order)
        self.followed = np.zeros(len(self.factors), dtype=np.int64)
        self.factor_of = np.array([self.factor_index[f] for f in frame["factor"]], np.int64)
        kinds = frame["kind"].to_numpy(dtype=object)
        is_option = kinds == "option"
        self.iv_of = np.array(
            [self.factor_index.get(config.implied_vol.factors.get(u, ""), -1) if opt else -1
             for u, opt in zip(frame["underlying"], is_option)], dtype=np.int64)
        settlement = (frame["settlement"].to_numpy(dtype=object) if "settlement" in frame
                      else np.full(len(frame), "quote", dtype=object))
        coin = is_option & (settlement == "coin")
        self.kind = np.where(np.isin(kinds, INVERSE_KINDS), _INVERSE,
                             np.where(coin, _COIN_OPTION, np.where(is_option, _OPTION, _LINEAR)))
        #: whose P&L accrues in the coin (a trade books its entry in the coin, not in cash)
        self.coin_pnl = np.isin(self.kind, (_INVERSE, _COIN_OPTION))
        self.is_collateral = kinds == COLLATERAL_KIND
        self.multiplier = frame["multiplier"].to_numpy(np.float64)
        self.iv0 = (frame["implied_vol"].to_numpy(np.float64).copy() if is_option.any()
                    else np.full(len(frame), np.nan))
        if "expiry" in frame.columns:  # parsed once: every revaluation reads the expiries
            frame["expiry"] = pd.to_datetime(frame["expiry"], utc=True)
        self.frame = frame
        self._arrays = market.instrument_arrays
        self.unit_r = self._arrays.unit.copy()
        self.value0 = self._arrays.unit[:, 0].copy()
        self.value = self.value0.copy()
        self._options = self._option_arrays(frame, is_option, market.valuation_time)
        self.driven = [np.flatnonzero((self.factor_of == k) | (self.iv_of == k))
                       for k in range(len(self.factors))]
        self.rows = {h: self._copy_rows(h) for h in market.horizons}
        # at_marks's rows and the marks (own factor, implied-vol index) they were priced at
        self._exact: dict[int, _Rows] = {}
        self._exact_at = np.full((len(frame), 2), np.nan)
        self._buffers: dict[Any, np.ndarray] = {}  # at_marks's gathers
        self._first_option = int(np.flatnonzero(is_option)[0]) if is_option.any() else -1
        self._grid_code = pd.factorize(frame["factor"].to_numpy())[0].astype(np.int64)
        self._check_shocks()

    def _check_shocks(self) -> None:
        """The stored shocks must give the stored P&L at the end-of-day marks (checked on one
        instrument of each kind): a run whose P&L came from elsewhere cannot be re-marked."""
        _, first = np.unique(self.kind * 2 + self.is_collateral, return_index=True)
        rows = np.sort(first)
        sub = self._frame_at(rows, self.spot0)
        for h in self.base.horizons:
            priced = self._price(sub, self.spot_series(self.spot0), h).model
            stored = self.base.model[h].pnl[rows]
            scale = np.maximum(np.abs(stored).max(axis=1, keepdims=True), 1e-300)
            bad = np.flatnonzero((np.abs(priced - stored) > 1e-9 * scale).any(axis=1))
            if len(bad):
                raise InputDataError(
                    f"instrument {sub['instrument_id'].iat[bad[0]]!r}: the run's {h}-day "
                    "scenario P&L is not what its stored scenario shocks give at its marks "
                    f"(method {self.config.method!r}): the run cannot be re-marked")

    @staticmethod
    def _option_arrays(frame: pd.DataFrame, is_option: np.ndarray,
                       valuation_time: pd.Timestamp) -> dict[str, np.ndarray]:
        """What the option kernels read of each option, once (position in the options: the
        ``at`` array, -1 for other kinds)."""
        rows = np.flatnonzero(is_option)
        at = np.full(len(frame), -1, dtype=np.int64)
        at[rows] = np.arange(len(rows))
        if not len(rows):
            return {"at": at}
        opts = frame.iloc[rows]
        return {"at": at, "model": model_codes(opts),
                "call": (opts["option_type"] == "call").to_numpy(),
                "strike": opts["strike"].to_numpy(np.float64),
                "tau": years_to_expiry(opts, valuation_time),
                "rate": opts["rate"].to_numpy(np.float64),
                "carry": opts["carry"].to_numpy(np.float64)}

    def _copy_rows(self, h: int) -> _Rows:
        market = self.base
        stress = (market.stress[h] if market.stress is not None
                  else StressPnl.empty(len(self.frame)))
        grid, weights = (grid_unit_pnl(market.instruments, market.spot, market.valuation_time,
                                       self.config, h)
                         if market.stress is not None and self.config.stress.grid.enabled
                         else (np.zeros((len(self.frame), 0)), np.zeros(0)))
        return _Rows(market.model[h].pnl.copy(),
                     market.floor[h].pnl.copy() if h in market.floor else None,
                     np.ascontiguousarray(stress.pnl, dtype=np.float64).copy(),
                     [np.ascontiguousarray(stress.pnl[:, b.start:b.stop]) for b in stress.blocks],
                     np.ascontiguousarray(grid, dtype=np.float64),
                     np.ascontiguousarray(weights, dtype=np.float64))

    # ----------------------------------------------------------------------------- marks

    @property
    def n_instruments(self) -> int:
        return len(self.frame)

    def spot_series(self, spot: np.ndarray) -> pd.Series:
        """Marks ``spot`` (one per factor) by factor."""
        return pd.Series(spot, index=self.factors)

    def set_mark(self, factor: int, price: float) -> np.ndarray:
        """Move factor ``factor`` (its position in :attr:`factors`) to ``price``; returns the
        instrument rows it drives (the options among them revalued)."""
        self.spot[factor] = price
        rows = self.driven[factor]
        options = rows[self._options["at"][rows] >= 0]
        if len(options):
            o, at = self._options, self._options["at"][options]
            premium = option_price(o["model"][at], o["call"][at],
                                   self.spot[self.factor_of[options]], o["strike"][at],
                                   o["tau"][at], self.implied_vol(options, self.spot),
                                   o["rate"][at], o["carry"][at])
            self.value[options] = self.multiplier[options] * premium
        return rows

    def implied_vol(self, rows: np.ndarray, spot: np.ndarray) -> np.ndarray:
        """Each option row's implied vol at the marks ``spot``: ``iv0 x X / X0`` when an
        implied-vol index ``X`` moves it, else ``iv0`` (NaN for other kinds)."""
        iv = self.iv0[rows].copy()
        index = self.iv_of[rows]
        moved = index >= 0
        iv[moved] = iv[moved] * spot[index[moved]] / self.spot0[index[moved]]
        return iv

    def _frame_at(self, rows: np.ndarray, spot: np.ndarray) -> pd.DataFrame:
        """The instrument rows with their price and implied vol at the marks ``spot``."""
        sub = self.frame.iloc[rows].copy()
        sub["price"] = spot[self.factor_of[rows]]
        if "implied_vol" in sub.columns:
            sub["implied_vol"] = self.implied_vol(rows, spot)
        return sub

    def _greeks(self, rows: np.ndarray, spot: np.ndarray) -> np.ndarray:
        return unit_greek_array(self._frame_at(rows, spot), self.spot_series(spot),
                                self.base.valuation_time)

    def mark_pnl(self, rows: np.ndarray) -> np.ndarray:
        """Per-unit P&L of instrument ``rows`` since the end-of-day marks (module docstring)."""
        f = self.factor_of[rows]
        return mark_pnl(self.kind[rows], self.multiplier[rows], self.spot0[f], self.spot[f],
                        self.value0[rows], self.value[rows])

    def unit_notional(self, row: int) -> float:
        """Notional per unit of instrument ``row`` at the current marks, ``|dV/dP x P|`` (the
        face value of an inverse contract, ``multiplier x P`` of a linear one)."""
        unit = self._greeks(np.array([row]), self.spot)
        return float(abs(unit[0, 1] * self.spot[self.factor_of[row]]))

    # ------------------------------------------------------------------ requirement marks

    def lagging(self) -> np.ndarray:
        """The factors whose requirement mark is not their current price."""
        return np.flatnonzero(self.rmark != self.spot)

    def follow(self, factor: int) -> None:
        """Move ``factor``'s requirement mark to its current price and reprice the scenario
        P&L of every instrument it drives there."""
        self.follow_many(np.array([factor], dtype=np.int64))

    def follow_many(self, factors: np.ndarray) -> None:
        """:meth:`follow` for each of ``factors``, in that order, their instruments repriced in
        one call (each row is priced on its own, at its factors' final marks: bitwise the rows
        of following them one by one, which :meth:`restore` does); none: nothing."""
        factors = np.asarray(factors, dtype=np.int64)
        if not len(factors):
            return
        self.rmark[factors] = self.spot[factors]
        self.followed[factors] = self.followed.max() + 1 + np.arange(len(factors))
        rows = np.unique(np.concatenate([self.driven[k] for k in factors]))
        if len(rows):
            self._price_rows(rows, self.rmark)

    def _price_rows(self, rows: np.ndarray, marks: np.ndarray) -> None:
        sub = self._frame_at(rows, marks)
        series = self.spot_series(marks)
        for h in self.base.horizons:
            self._write_rows(self.rows[h], rows, sub, series, h)
        self.unit_r[rows] = unit_greek_array(sub, series, self.base.valuation_time)

    def _write_rows(self, target: _Rows, rows: np.ndarray, sub: pd.DataFrame, spot: pd.Series,
                    h: int) -> None:
        """Price the instruments ``sub`` (rows ``rows``) at the marks ``spot`` on horizon ``h``
        into ``target``: model, floor, stress (and its blocks' copies, where kept), grid."""
        priced = self._price(sub, spot, h)
        target.model[rows] = priced.model
        if target.floor is not None and priced.floor is not None:
            target.floor[rows] = priced.floor
        target.stress[rows] = priced.stress
        blocks = self.base.stress[h].blocks if self.base.stress is not None else ()
        for block, b in zip(target.blocks, blocks):
            block[rows] = priced.stress[:, b.start:b.stop]
        if target.grid.shape[1]:
            target.grid[rows] = self._grid_rows(sub, spot, h)

    def _price(self, sub: pd.DataFrame, spot: pd.Series, h: int) -> _Rows:
        """The scenario P&L of the instruments ``sub`` at the marks ``spot`` (grid apart)."""
        shocks = self.base.shocks[h]
        needed = sorted(set(sub["factor"]) | {self.config.implied_vol.factors[u] for u in
                                              sub.loc[sub["kind"] == "option", "underlying"]
                                              if u in self.config.implied_vol.factors})
        stress = [self._priced(sub, s, needed, spot) for s in shocks.stress]
        return _Rows(self._priced(sub, shocks.model, needed, spot),
                     None if shocks.floor is None else self._priced(sub, shocks.floor, needed,
                                                                    spot),
                     np.hstack(stress) if stress else np.zeros((len(sub), 0)), [],
                     np.zeros((len(sub), 0)), np.zeros(0))

    def _priced(self, sub: pd.DataFrame, scen: ScenarioSet, needed: Sequence[str],
                spot: pd.Series) -> np.ndarray:
        """``sub``'s per-unit P&L in ``scen`` at the marks ``spot``: the scenario set cut to the
        factors the rows need (each factor's moves are computed on their own, so the rows are
        those of the whole set)."""
        columns = [scen.factors.index(f) for f in needed if f in scen.factors]
        cut = ScenarioSet(np.ascontiguousarray(scen.shocks[:, columns]),
                          tuple(scen.factors[c] for c in columns), scen.labels, scen.kind,
                          scen.horizon, scen.weights)
        return finite_pnl(scenario_pnl(sub, cut, spot, self.return_kinds,
                                       self.base.valuation_time, self.config.implied_vol),
                          sub, cut)

    def _grid_rows(self, sub: pd.DataFrame, spot: pd.Series, h: int) -> np.ndarray:
        # the scan crosses price moves with vol shifts whenever the market holds an option:
        # rows without one are priced beside an option row so that their scan is the same
        pad = self._first_option >= 0 and not (sub["kind"] == "option").any()
        if pad:
            first = np.array([self._first_option])
            sub = pd.concat([sub, self._frame_at(first, spot.to_numpy(np.float64))])
        unit, _ = grid_unit_pnl(sub, spot, self.base.valuation_time, self.config, h)
        return unit[:len(sub) - 1] if pad else unit

    # ------------------------------------------------------------------------------ views

    def _factor_table(self, marks: np.ndarray) -> pd.DataFrame:
        factors = self.base.factors.copy()
        factors["price"] = marks
        # the distance to liquidation's unit: price differences relative to the price
        factors["sigma_rel"] = np.where(self.absolute, self.sigma_1d / np.abs(marks),
                                        self.sigma_1d)
        return factors

    def view(self) -> PricedMarket:
        """The priced market at the requirement marks, sharing this object's arrays (valid
        until :meth:`follow` moves a mark)."""
        base, marks = self.base, self.rmark
        factors = self._factor_table(marks)
        instruments = self._frame_at(np.arange(self.n_instruments), marks)
        model = {h: ModelPnl(self.rows[h].model, base.model[h].weights) for h in base.horizons}
        floor = {h: ModelPnl(r.floor, base.floor[h].weights)
                 for h, r in self.rows.items() if r.floor is not None}
        stress = None if base.stress is None else {
            h: dataclasses.replace(base.stress[h], pnl=self.rows[h].stress)
            for h in base.horizons}
        market = PricedMarket(instruments, factors, base.valuation_time, model, stress, floor,
                              base.unpriced, base.shocks)
        arrays = dataclasses.replace(self._arrays, unit=self.unit_r.copy(),
                                     price=marks[self.factor_of],
                                     sigma_rel=factors["sigma_rel"].to_numpy(np.float64))
        # what the engine derives from a market, from this object's arrays: the margin
        # tables' lookups, the stress blocks and the grid scan (the values a fresh market
        # derives, tested), so that a view costs no repricing
        market.cached("arrays", lambda: arrays)
        market.cached("axis", lambda: base.axis)
        for h, r in self.rows.items():
            if base.stress is not None:
                labels, blocks = base.stress[h].labels, base.stress[h].blocks
                market.cached(("stress", h), lambda r=r, labels=labels, blocks=blocks: [
                    (block, np.asarray(labels[b.start:b.stop], dtype=object))
                    for block, b in zip(r.blocks, blocks)])
            if r.grid.shape[1]:
                market.cached(("grid", h), lambda r=r: (r.grid, r.grid_weights,
                                                        self._grid_code))
        return market

    def at_marks(self, rows: np.ndarray) -> PricedMarket:
        """The instruments ``rows`` (sorted) priced at the current marks, as a market of their
        own (its axis: those instruments in this order), as :func:`riskmodel.engine.
        price_market` would price them there. Rows priced by an earlier call are reused while
        their factor and implied-vol index have not moved (pricing is a function of the marks
        alone, so a reused row is the row priced again). Its P&L arrays are buffers of this
        object: the market is valid until the next call."""
        rows = np.asarray(rows, dtype=np.int64)
        base, marks = self.base, self.spot
        own = marks[self.factor_of[rows]]
        index = self.iv_of[rows]
        iv = np.where(index >= 0, marks[np.maximum(index, 0)], np.nan)
        known = self._exact_at[rows]
        fresh = (known[:, 0] == own) & ((index < 0) | (known[:, 1] == iv))
        # rows whose requirement marks are the current marks (their factor's mark followed
        # its price, and neither moved since): the requirement rows are those rows priced here
        rmark_iv = np.where(index >= 0, self.rmark[np.maximum(index, 0)], np.nan)
        same = ~fresh & (self.rmark[self.factor_of[rows]] == own) & (
            (index < 0) | (rmark_iv == iv))
        if same.any():
            self._copy_requirement_rows(rows[same])
            self._exact_at[rows[same], 0] = own[same]
            self._exact_at[rows[same], 1] = iv[same]
            fresh |= same
        stale = rows[~fresh]
        series = self.spot_series(marks)
        if len(stale):
            sub = self._frame_at(stale, marks)
            for h in base.horizons:
                self._write_rows(self._exact_rows(h), stale, sub, series, h)
            self._exact_at[stale, 0] = own[~fresh]
            self._exact_at[stale, 1] = iv[~fresh]
        model, floor, stress = {}, {}, {}
        for h in base.horizons:
            cache = self._exact_rows(h)
            model[h] = ModelPnl(self._gathered(("model", h), cache.model, rows),
                                base.model[h].weights)
            if cache.floor is not None and h in base.floor:
                floor[h] = ModelPnl(self._gathered(("floor", h), cache.floor, rows),
                                    base.floor[h].weights)
            if base.stress is not None:
                stress[h] = dataclasses.replace(
                    base.stress[h], pnl=self._gathered(("stress", h), cache.stress, rows))
        frame = self._frame_at(rows, marks)
        market = PricedMarket(frame, self._factor_table(marks), base.valuation_time, model,
                              stress if base.stress is not None else None, floor,
                              base.unpriced, base.shocks)
        if (frame["kind"] == "option").any():
            # the grid scan of the rows, as the engine derives it from this market (its
            # factor codes in this market's order); a market without an option scans no vol
            # shift, which the cached rows (priced beside an option) do: the engine's then
            code = pd.factorize(frame["factor"].to_numpy())[0].astype(np.int64)
            for h in base.horizons:
                cache = self._exact_rows(h)
                if cache.grid.shape[1]:
                    market.cached(("grid", h), lambda g=cache.grid, w=cache.grid_weights: (
                        np.ascontiguousarray(g[rows]), w, code))
        return market

    def _copy_requirement_rows(self, rows: np.ndarray) -> None:
        """Rows of the requirement marks into :meth:`at_marks`' rows (where the two marks
        agree)."""
        for h in self.base.horizons:
            source, target = self.rows[h], self._exact_rows(h)
            target.model[rows] = source.model[rows]
            if target.floor is not None and source.floor is not None:
                target.floor[rows] = source.floor[rows]
            target.stress[rows] = source.stress[rows]
            if target.grid.shape[1]:
                target.grid[rows] = source.grid[rows]

    def _gathered(self, key: Any, source: np.ndarray, rows: np.ndarray) -> np.ndarray:
        """``source[rows]`` (C-contiguous) in a buffer kept for ``key`` between calls, so
        valid until the next :meth:`at_marks`: an order batch gathers ~100 MB of rows, and
        fresh memory costs its page faults on top of the copy."""
        buffer = self._buffers.get(key)
        if buffer is None or len(buffer) < len(rows):
            grown = 0 if buffer is None else len(buffer) + len(buffer) // 4
            buffer = self._buffers[key] = np.empty((max(len(rows), grown), source.shape[1]))
        out = buffer[:len(rows)]
        # rows are in range: mode "clip" skips the bounds check's buffered copy into ``out``
        np.take(source, rows, axis=0, out=out, mode="clip")
        return out

    def _exact_rows(self, h: int) -> _Rows:
        """The rows :meth:`at_marks` priced, by horizon (allocated on first use)."""
        if h not in self._exact:
            r = self.rows[h]
            self._exact[h] = _Rows(np.empty_like(r.model),
                                   None if r.floor is None else np.empty_like(r.floor),
                                   np.empty_like(r.stress), [], np.empty_like(r.grid),
                                   r.grid_weights)
        return self._exact[h]

    # ------------------------------------------------------------------------ checkpoints

    def state(self) -> dict[str, np.ndarray]:
        """What restores this object exactly (:meth:`restore`): the marks, the requirement
        marks, the order they moved in and the per-unit values at the current marks."""
        return {"spot": self.spot.copy(), "rmark": self.rmark.copy(),
                "followed": self.followed.copy(), "value": self.value.copy()}

    def restore(self, state: dict[str, Any]) -> None:
        """Return to ``state``. Each factor whose requirement mark moved has its
        instruments repriced there, one factor at a time in the order the marks last moved, so
        that every row is priced last at the marks of its factor and implied-vol index it had
        (each row is priced on its own, whatever rows it is priced with, :meth:`follow_many`):
        bitwise what it was."""
        rmark = np.asarray(state["rmark"], dtype=np.float64)
        followed = np.asarray(state["followed"], dtype=np.int64)
        self.rmark = self.spot0.copy()
        for k in sorted(np.flatnonzero(followed > 0), key=lambda k: followed[k]):
            self.spot[k] = rmark[k]
            self.follow(int(k))
        self.followed = followed.copy()
        self.spot = np.asarray(state["spot"], dtype=np.float64).copy()
        self.value = np.asarray(state["value"], dtype=np.float64).copy()
