"""The priced market: everything the engine reads of the market to margin any book.

A :class:`PricedMarket` is built once per valuation (an ``eod`` run, each backtest date) by
:func:`riskmodel.engine.build.price_market`, stored with a finished run
(:mod:`riskmodel.engine.store`) and read back by what-if, the liquidation map and the intraday
loop. It holds, per margin period of risk ``h`` (days), the per-unit scenario P&L of every priced
instrument (``pnl[h]``, shape ``(n_priced, n_scenarios)``, finite) and the scenario weights,
the per-unit P&L of the historical-window and user stress scenarios (``stress[h]``), the
anti-procyclicality floor's long-lookback P&L when that tool is on (``floor[h]``), the factors'
prices and one-day volatilities, and the valuation time. The grid stress scan is recomputed
from the prices and the configuration (:mod:`riskmodel.engine.stress`).

The value is frozen; what is derived from it on first use (per-instrument lookups of the margin
tables, the grid scan's unit P&L, the coarse copies of the P&L for the tail kernels' first
pass, contiguous stress blocks) is cached inside it and never shipped when it is pickled (a Dask
worker builds its own).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from riskmodel.margin.tables import InstrumentArrays
from riskmodel.measures.api import QuantisedScreen, quantised_screen
from riskmodel.measures.trial_tail import row_bounds
from riskmodel.scenarios.scenario_set import ScenarioSet

FACTOR_COLUMNS = ["factor", "price", "return_kind", "sigma_1d", "sigma_rel"]


@dataclass(frozen=True)
class StressBlock:
    """Columns ``start:stop`` of a horizon's stress P&L that came from one scenario set."""

    kind: str
    start: int
    stop: int


@dataclass(frozen=True, eq=False)
class ModelPnl:
    """Per-unit scenario P&L of the priced instruments, shape ``(n_priced, n_scenarios)``,
    and the scenario weights (None: equally likely)."""

    pnl: np.ndarray
    weights: np.ndarray | None = None


@dataclass(frozen=True, eq=False)
class StressPnl:
    """Per-unit P&L of the historical-window and user stress scenarios, shape ``(n_priced,
    n_stress)``, the label of each column and each scenario set's column range, in the order
    the engine reduces them (windows first, then each user shock file)."""

    pnl: np.ndarray
    labels: np.ndarray
    blocks: tuple[StressBlock, ...] = ()

    @classmethod
    def empty(cls, n_priced: int) -> StressPnl:
        return cls(np.zeros((n_priced, 0)), np.zeros(0, dtype=object))


@dataclass(frozen=True, eq=False)
class ScenarioShocks:
    """The factor moves a horizon's P&L was priced from: the model scenario set, the
    anti-procyclicality floor's (None when the tool is off) and each stress scenario set in
    the order of the horizon's :class:`StressBlock` s. With them the P&L can be repriced at
    other marks (:mod:`riskmodel.engine.remark`: the intraday loop)."""

    model: ScenarioSet
    floor: ScenarioSet | None = None
    stress: tuple[ScenarioSet, ...] = ()


@dataclass(frozen=True, eq=False)
class PricedMarket:
    """The market a book is margined against (module docstring).

    Attributes
    ----------
    instruments : DataFrame
        The priced instruments in P&L-row order, indexed by ``instrument_id`` (``kind,
        underlying, multiplier, factor`` and the option columns).
    factors : DataFrame
        ``factor, price, return_kind, sigma_1d, sigma_rel``, sorted by factor: the price at
        the valuation time, the one-day volatility in return units and as a relative move.
    valuation_time : Timestamp
        The market date (options' time to expiry counts from it).
    model : mapping of horizon (days) to :class:`ModelPnl`
        The model scenarios' P&L, one entry per margin period of risk the market serves.
    stress : mapping of horizon to :class:`StressPnl`, or None
        None: stress is not evaluated (``stress_loss`` 0 for every set); the grid is evaluated
        whenever stress is (and ``[stress.grid] enabled``).
    floor : mapping of horizon to :class:`ModelPnl`
        The anti-procyclicality floor's long-lookback scenarios; empty when the tool is off.
    unpriced : mapping of instrument_id to factor
        Instruments known to the run whose factor it did not price (what-if names them).
    shocks : mapping of horizon to :class:`ScenarioShocks`
        The scenario sets behind ``model``, ``floor`` and ``stress`` (empty: a market read
        from a run stored without them, which cannot be re-marked).
    """

    instruments: pd.DataFrame
    factors: pd.DataFrame
    valuation_time: pd.Timestamp
    model: Mapping[int, ModelPnl]
    stress: Mapping[int, StressPnl] | None = None
    floor: Mapping[int, ModelPnl] = field(default_factory=dict)
    unpriced: Mapping[str, str] = field(default_factory=dict)
    shocks: Mapping[int, ScenarioShocks] = field(default_factory=dict)
    _cache: dict[Any, Any] = field(default_factory=dict, repr=False, compare=False)

    def __getstate__(self) -> dict[str, Any]:
        # a worker rebuilds what it needs: the coarse copies alone are a quarter of the P&L's size
        return {**self.__dict__, "_cache": {}}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)

    @property
    def horizons(self) -> list[int]:
        return sorted(self.model)

    @property
    def axis(self) -> pd.Index:
        """``instrument_id`` of each P&L row: the instrument axis books are netted on."""
        return self._cached("axis", lambda: pd.Index(self.instruments["instrument_id"]))

    @property
    def spot(self) -> pd.Series:
        """Price at the valuation time, by factor."""
        return self._cached("spot", lambda: pd.Series(
            self.factors["price"].to_numpy(np.float64), index=self.factors["factor"]))

    @property
    def sigma_rel(self) -> pd.Series:
        """Relative one-day volatility, by factor (the distance to liquidation's unit)."""
        return self._cached("sigma_rel", lambda: pd.Series(
            self.factors["sigma_rel"].to_numpy(np.float64), index=self.factors["factor"]))

    @property
    def instrument_arrays(self) -> InstrumentArrays:
        """The margin tables' per-instrument lookups (axis order, per-unit greeks included),
        computed once: a liquidation margins a hundred small books against the same axis."""
        return self._cached("arrays", lambda: InstrumentArrays.of(
            self.instruments, self.spot, self.valuation_time, self.sigma_rel))

    def screen(self, horizon: int) -> QuantisedScreen | None:
        """The tail kernels' coarse first pass of the horizon's P&L, built on first use."""
        def build() -> QuantisedScreen | None:
            screen = quantised_screen(self.model[horizon].pnl)
            if screen is not None:  # its pass found the rows' bounds: kept beyond the screen
                self._cache.setdefault(("row_bound", horizon), screen.row_bound)
            return screen
        return self._cached(("screen", horizon), build)

    def row_bound(self, horizon: int) -> np.ndarray:
        """Each row's largest ``|P&L|`` in the horizon's model scenarios (the trial kernels'
        bounds), from the coarse first pass's build when there was one, else one pass."""
        def build() -> np.ndarray:
            pnl = np.ascontiguousarray(self.model[horizon].pnl, dtype=np.float64)
            out = np.empty(pnl.shape[0])
            row_bounds(pnl, out)
            return out
        return self._cached(("row_bound", horizon), build)

    def stress_blocks(self, horizon: int) -> list[tuple[np.ndarray, np.ndarray]]:
        """``(C-contiguous P&L block, labels)`` of each stress scenario set of the horizon, in
        the order the engine reduces them (empty without stress)."""
        def blocks() -> list[tuple[np.ndarray, np.ndarray]]:
            if self.stress is None:
                return []
            s = self.stress[horizon]
            return [(np.ascontiguousarray(s.pnl[:, b.start:b.stop]),
                     np.asarray(s.labels[b.start:b.stop], dtype=object)) for b in s.blocks]
        return self._cached(("stress", horizon), blocks)

    def cached(self, key: Any, build: Any) -> Any:
        """A value derived from the market (``build()``), computed once under ``key``."""
        return self._cached(key, build)

    def _cached(self, key: Any, build: Any) -> Any:
        if key not in self._cache:
            self._cache[key] = build()
        return self._cache[key]

    def drop_screens(self) -> None:
        """Free the coarse copies of the P&L (they serve the partitions of a run only)."""
        for key in [k for k in self._cache if isinstance(k, tuple) and k[0] == "screen"]:
            del self._cache[key]
