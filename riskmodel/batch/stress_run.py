"""The stress stage of a run: every stress scenario set against the book, worst loss per set.

Scenario construction is in :mod:`riskmodel.scenarios.stress`; this module prices the scenarios
for the run's instruments and reduces them to one ``stress_loss`` per netting set: the largest of
the worst historical-window loss, the worst user-shock loss and the grid loss (never below 0).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from riskmodel.config import RunConfig
from riskmodel.marketdata.returns import MarketData, Universe
from riskmodel.measures.stress_kernels import grid_set_loss, worst_loss
from riskmodel.portfolio.netting import Book
from riskmodel.pricing.revaluation import grid_pnl, scenario_pnl
from riskmodel.scenarios.scenario_set import ScenarioSet
from riskmodel.scenarios.stress import (
    grid_moves,
    load_windows,
    universe_window_scenarios,
    user_shocks,
    windows_file,
)


@dataclass
class StressResult:
    """``loss`` and ``label`` have shape (n_sets,); ``sets`` are the scenario sets used."""

    loss: np.ndarray
    label: np.ndarray
    sets: list[ScenarioSet] = field(default_factory=list)
    info: dict[str, Any] = field(default_factory=dict)


def _worst(scenarios: ScenarioSet, book: Book, used: pd.DataFrame, market: MarketData,
           config: RunConfig) -> tuple[np.ndarray, np.ndarray]:
    pnl = scenario_pnl(used, scenarios, market.spot, market.return_kinds, market.market_date,
                       config.implied_vol)
    worst = np.empty(book.n_sets)
    arg = np.empty(book.n_sets, dtype=np.int64)
    worst_loss(pnl, book.indptr, book.instrument_index, book.quantity, worst, arg)
    return worst, scenarios.labels[arg]


def grid_unit_pnl(used: pd.DataFrame, market: MarketData, config: RunConfig,
                  horizon: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-unit P&L of each row of ``used`` on its own underlying's scan: every price move of
    the grid with every implied-vol shift (the shifts move options only; move-major), and the
    weight of each point. Shape (n_instruments, n_points); it depends on no book."""
    grid = config.stress.grid
    factor_of_instr = used["factor"].to_numpy()
    factors = sorted(set(factor_of_instr))
    scans = {f: grid_moves(grid, f) for f in factors}
    shifts = np.asarray(grid.vol_shifts, dtype=np.float64)
    if not (used["kind"] == "option").any():
        shifts = np.zeros(1)  # no option: the vol shifts change nothing
    weights = np.repeat(scans[factors[0]][1], len(shifts))
    moves = np.vstack([np.repeat(scans[f][0], len(shifts)) for f in factor_of_instr])
    unit = grid_pnl(used, moves, np.tile(shifts, len(scans[factors[0]][0])), market.spot,
                    market.market_date, horizon)
    return unit, weights


def _grid(book: Book, used: pd.DataFrame, market: MarketData, config: RunConfig,
          unit: tuple[np.ndarray, np.ndarray] | None = None) -> np.ndarray:
    """Each position scanned on its own underlying (:func:`grid_unit_pnl`, or ``unit`` when
    the caller holds it), worst weighted loss per (set, underlying), summed over the set's
    underlyings."""
    unit_pnl, weights = unit if unit is not None else grid_unit_pnl(used, market, config,
                                                                    config.horizon)
    factor_code, _ = pd.factorize(used["factor"].to_numpy())
    out = np.empty(book.n_sets)
    grid_set_loss(np.ascontiguousarray(unit_pnl, dtype=np.float64),
                  np.ascontiguousarray(weights, dtype=np.float64), book.indptr,
                  book.instrument_index, book.quantity, factor_code.astype(np.int64), out)
    return out


def stress_scenario_sets(market: MarketData, window: pd.DataFrame, config: RunConfig,
                         universe: Universe) -> tuple[list[ScenarioSet], dict[str, Any]]:
    """The historical-window and user-shock scenario sets of a run (the grid is evaluated per
    position, :func:`_grid`) and the manifest facts (``mode, weight, notes, windows,
    scenario_sets``)."""
    stress = config.stress
    info: dict[str, Any] = {"mode": stress.mode, "weight": stress.weight, "notes": []}
    sets: list[ScenarioSet] = []
    if stress.historical:
        path = windows_file(stress.windows_file)
        if path is None:
            info["notes"].append("no historical stress windows file found")
        else:
            windows, version = load_windows(path)
            hist, notes = universe_window_scenarios(universe, list(market.prices.columns),
                                                    windows, window, config.horizon,
                                                    stress.proxies)
            info["windows"] = {"file": str(path), "version": version,
                               "scenarios": 0 if hist is None else hist.n_scenarios}
            info["notes"] += notes
            if hist is not None:
                sets.append(hist)
    for f in stress.files:
        user = user_shocks(f, list(market.prices.columns), market.return_kinds, config.horizon)
        if user is not None and user.n_scenarios:
            sets.append(user)
    if stress.grid.enabled:
        info["grid"] = {"points_per_factor": stress.grid.steps + 2, "move": stress.grid.move}
    info["scenario_sets"] = {s.kind: s.n_scenarios for s in sets}
    return sets, info


def evaluate_stress(book: Book, used: pd.DataFrame, market: MarketData, window: pd.DataFrame,
                    config: RunConfig, universe: Universe) -> StressResult:
    """Worst stress loss of every netting set; see the module docstring."""
    sets, info = stress_scenario_sets(market, window, config, universe)
    candidates = [_worst(s, book, used, market, config) for s in sets]
    if config.stress.grid.enabled:
        g = _grid(book, used, market, config)
        candidates.append((g, np.full(book.n_sets, "grid", dtype=object)))
    loss = np.zeros(book.n_sets)
    label = np.full(book.n_sets, "", dtype=object)
    for worst, lab in candidates:
        better = worst > loss
        loss = np.where(better, worst, loss)
        label = np.where(better, lab, label)
    return StressResult(loss, label, sets, info)
