"""Stress losses of a book against a priced market: the worst loss per netting set over the
historical-window and user stress scenarios, and the grid scan.

Scenario construction is in :mod:`riskmodel.scenarios.stress`; the priced market holds each
scenario set's per-unit P&L (:class:`~riskmodel.engine.market.StressPnl`). The sets are
reduced in the run's order (historical windows, each user shock file, then the grid): a later
set wins only when strictly worse, and ``stress_loss`` is never below 0. The grid is evaluated
per position on its own underlying's scan (:func:`riskmodel.scenarios.stress.grid_loss`
defines it; the kernel :func:`riskmodel.measures.stress_kernels.grid_set_loss` computes it),
from the market's prices and the configuration.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from riskmodel.config import RunConfig
from riskmodel.engine.market import PricedMarket
from riskmodel.measures.stress_kernels import grid_set_loss, worst_loss
from riskmodel.portfolio.netting import Book
from riskmodel.pricing.revaluation import grid_pnl
from riskmodel.scenarios.stress import grid_moves

GRID_LABEL = "grid"


@dataclass
class StressResult:
    """Worst stress ``loss`` (>= 0) and the ``label`` of its scenario, shape (n_sets,)."""

    loss: np.ndarray
    label: np.ndarray

    @classmethod
    def none(cls, n_sets: int) -> StressResult:
        return cls(np.zeros(n_sets), np.full(n_sets, "", dtype=object))


def grid_unit_pnl(instruments: pd.DataFrame, spot: pd.Series, valuation_time: pd.Timestamp,
                  config: RunConfig, horizon: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-unit P&L of each row of ``instruments`` on its own underlying's scan: every price
    move of the grid with every implied-vol shift (the shifts move options only; move-major),
    and the weight of each point. Shape (n_instruments, n_points); it depends on no book."""
    grid = config.stress.grid
    factor_of_instr = instruments["factor"].to_numpy()
    factors = sorted(set(factor_of_instr))
    scans = {f: grid_moves(grid, f) for f in factors}
    shifts = np.asarray(grid.vol_shifts, dtype=np.float64)
    if not (instruments["kind"] == "option").any():
        shifts = np.zeros(1)  # no option: the vol shifts change nothing
    weights = np.repeat(scans[factors[0]][1], len(shifts))
    moves = np.vstack([np.repeat(scans[f][0], len(shifts)) for f in factor_of_instr])
    unit = grid_pnl(instruments, moves, np.tile(shifts, len(scans[factors[0]][0])), spot,
                    valuation_time, horizon)
    return unit, weights


def _grid_units(market: PricedMarket, config: RunConfig, horizon: int
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The scan of every priced instrument (contiguous), its weights and each instrument's
    factor code, once per market and horizon."""
    def build() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        unit, weights = grid_unit_pnl(market.instruments, market.spot, market.valuation_time,
                                      config, horizon)
        factor_code, _ = pd.factorize(market.instruments["factor"].to_numpy())
        return (np.ascontiguousarray(unit, dtype=np.float64),
                np.ascontiguousarray(weights, dtype=np.float64), factor_code.astype(np.int64))
    return market.cached(("grid", horizon), build)


def book_stress(market: PricedMarket, book: Book, config: RunConfig, horizon: int
                ) -> StressResult:
    """Worst stress loss and its label per netting set of ``book`` (all of one horizon), reduced
    as the module docstring says; zero everywhere when the market carries no stress."""
    n = book.n_sets
    if market.stress is None:
        return StressResult.none(n)
    candidates: list[tuple[np.ndarray, np.ndarray]] = []
    for pnl, labels in market.stress_blocks(horizon):
        if pnl.shape[1] == 0:
            continue
        worst = np.empty(n)
        arg = np.empty(n, dtype=np.int64)
        worst_loss(pnl, book.indptr, book.instrument_index, book.quantity, worst, arg)
        candidates.append((worst, labels[arg]))
    if config.stress.grid.enabled:
        unit, weights, factor_code = _grid_units(market, config, horizon)
        grid = np.empty(n)
        grid_set_loss(unit, weights, book.indptr, book.instrument_index, book.quantity,
                      factor_code, grid)
        candidates.append((grid, np.full(n, GRID_LABEL, dtype=object)))
    result = StressResult.none(n)
    for worst, label in candidates:
        better = worst > result.loss
        result.loss = np.where(better, worst, result.loss)
        result.label = np.where(better, label, result.label)
    return result
