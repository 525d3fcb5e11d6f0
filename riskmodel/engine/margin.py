"""The engine: one function that margins a netted book against a priced market.

:func:`margin_book` is the only composition of the margin chain. Every path that produces a
margin calls it and differs only in how it builds the priced market and the book: the ``eod``
partitions (local or on Dask), what-if, each step of a partial liquidation, each backtest date,
each study point and the intraday loop.

For each netting set, in this order:

1. its margin period of risk: the longest of its positions' kinds and of its account's type
   (:func:`riskmodel.margin.tables.set_horizons`); the sets of each horizon are margined on
   that horizon's scenarios;
2. the tail kernels over the scenario P&L (:func:`riskmodel.measures.tail_measures`): VaR, ES
   and the Euler contribution of each position, streaming the sets in chunks (with a coarse
   first pass for large books: :func:`riskmodel.measures.api.quantised_screen`);
3. the anti-procyclicality floor's tail over its long-lookback scenarios, when the tool is on
   and the market carries them;
4. the worst stress loss (:func:`riskmodel.engine.stress.book_stress`);
5. the floor and the buffer (:func:`riskmodel.margin.procyclicality.apply_tools`; the buffer
   against ``previous``, the previous run's model margin);
6. the margin policy (add-ons, stress combination, notional floors, initial and maintenance
   margin, status, call; :mod:`riskmodel.margin.tables`), and with ``detail="tables"`` the
   distance to liquidation and the attribution.

Every set is computed independently with a fixed sequence of floating-point operations, so a
book margined whole, in partitions or set by set gives bitwise the same figures.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd

from riskmodel.config import RunConfig
from riskmodel.engine.grid import GRID_COLUMNS, GridTail, grid_measure
from riskmodel.engine.market import PricedMarket
from riskmodel.engine.stress import StressResult, book_stress
from riskmodel.engine.tiers import tiered_equity
from riskmodel.errors import InputDataError
from riskmodel.margin.procyclicality import apply_tools
from riskmodel.margin.tables import (
    TailArrays,
    assemble_margins,
    check_finite,
    initial_margin,
    margin_figures,
    set_horizons,
)
from riskmodel.measures import tail_measures
from riskmodel.portfolio.netting import Book

__all__ = ["SCREEN_MIN_SETS", "BookMargins", "margin_book"]

SCREEN_MIN_SETS = 20_000  # netting sets of one horizon from which the coarse pass pays off
WHOLE_BOOK_SETS = 64  # up to this many sets, a book of several horizons is not split (_measures)


@dataclass(frozen=True, eq=False)
class BookMargins:
    """What :func:`margin_book` returns.

    Attributes
    ----------
    initial_margin : ndarray of shape (n_sets,)
    margins : DataFrame or None
        The margin table (one row per netting set, :data:`riskmodel.margin.tables.
        MARGIN_COLUMNS`) with ``detail="tables"``.
    attribution : DataFrame or None
        One row per position (:data:`riskmodel.margin.tables.ATTRIBUTION_COLUMNS`) with
        ``detail="tables"``.
    apc_info : dict
        How many sets each anti-procyclicality tool bound.
    figures : dict or None
        With ``detail="figures"``, the table's per-set figures column by column
        (:data:`riskmodel.margin.tables.FIGURE_COLUMNS`).
    """

    initial_margin: np.ndarray
    margins: pd.DataFrame | None
    attribution: pd.DataFrame | None
    apc_info: dict[str, Any]
    figures: dict[str, np.ndarray] | None = None


def margin_book(
    market: PricedMarket,
    book: Book,
    config: RunConfig,
    *,
    collateral: np.ndarray,
    previous: np.ndarray | None = None,
    account_types: dict[str, str] | None = None,
    detail: Literal["tables", "figures", "initial_margin"] = "tables",
) -> BookMargins:
    """Margin every netting set of ``book`` against ``market`` under ``config`` (module doc).

    Parameters
    ----------
    market : PricedMarket
    book : Book
        Netted on ``market.axis`` (its ``instrument_index`` are P&L rows).
    config : RunConfig
        The policy: measure, confidence, stress mode, anti-procyclicality tools, add-ons,
        floors, rates and status thresholds.
    collateral : ndarray of shape (n_sets,)
        Each set's equity in the reporting currency.
    previous : ndarray of shape (n_sets,), optional
        The previous run's model margin of each set (NaN where it had none), for the buffer's
        release; None: no previous run.
    account_types : dict, optional
        ``account_id -> type`` for ``[horizons.account_type]``.
    detail : {"tables", "figures", "initial_margin"}
        ``figures``: the margin table's per-set figures only (no ids, distance to liquidation
        or attribution: what a backtest date records); ``initial_margin``: the figure alone
        (what a liquidation step needs). Every figure is bitwise the full table's.

    Raises
    ------
    InputDataError
        A set needs a margin period of risk the market was not priced for.
    ModelError
        A non-finite margin figure.
    """
    collateral = np.asarray(collateral, dtype=np.float64)
    if collateral.shape != (book.n_sets,):
        raise ValueError(f"collateral: shape {collateral.shape}, expected ({book.n_sets},)")
    if config.tiers.collateral:  # coins counted at rates that fall with the amount held
        collateral = tiered_equity(market, book, config, collateral)
    tail, stress, apc_base, apc_info = _measures(market, book, config, previous,
                                                 account_types)
    arrays = market.instrument_arrays
    # --method grid: the rule's own maintenance requirement, and its columns (engine.grid)
    rule = tail if isinstance(tail, GridTail) else None
    maintenance = rule.maintenance if rule is not None else None
    if detail == "initial_margin":
        im = initial_margin(book, arrays, tail, stress.loss, collateral, config,
                            apc_base=apc_base)
        return BookMargins(im, None, None, apc_info)
    if detail == "figures":
        figures = margin_figures(book, arrays, tail, stress.loss, stress.label, collateral,
                                 config, apc_base=apc_base, maintenance=maintenance)
        if rule is not None:
            figures = {**figures, **rule.columns}
        check_finite(figures, book.sets)
        return BookMargins(figures["initial_margin"], None, None, apc_info, figures)
    # checks the table's figures itself (check_finite), before building the frames
    margins, attribution = assemble_margins(book, arrays, tail, stress.loss, stress.label,
                                            collateral, config, apc_base=apc_base,
                                            maintenance=maintenance)
    if rule is not None:
        check_finite({c: rule.columns[c] for c in GRID_COLUMNS}, book.sets)
        margins, attribution = rule.with_columns(margins, attribution)
    return BookMargins(margins["initial_margin"].to_numpy(np.float64), margins, attribution,
                       apc_info)


def _measures(market: PricedMarket, book: Book, config: RunConfig,
              previous: np.ndarray | None, account_types: dict[str, str] | None
              ) -> tuple[TailArrays, StressResult, np.ndarray, dict[str, Any]]:
    """Steps 1-5 of the module docstring: tail results, worst stress loss, the model margin
    after the floor and the buffer, and the tools' facts."""
    set_horizon = set_horizons(book, market.instruments, config, account_types,
                               market.instrument_arrays)
    tail = (GridTail.of_market(market, config, book.n_sets, len(book.quantity))
            if config.method == "grid" else TailArrays.empty(book.n_sets, len(book.quantity)))
    stress = StressResult.none(book.n_sets)
    use_floor = "floor" in config.anti_procyclicality.tools and bool(market.floor)
    floor_margin = np.zeros(book.n_sets) if use_floor else None
    # a small book of several horizons is margined whole at each (every set is computed on
    # its own, so bitwise as split) and each set keeps its horizon's: splitting it cost more
    # than the kernels; the grid rule's results are kept split
    whole = book.n_sets <= WHOLE_BOOK_SETS and config.method != "grid"
    # a set without positions (an account that holds only collateral) has no horizon and no
    # risk: its tail and stress stay zero and the policy gives it zero requirements
    for h in sorted(set(set_horizon[np.diff(book.indptr) > 0].tolist())):
        if h not in market.model:
            raise InputDataError(
                f"a netting set needs the {h}-day horizon, which the priced market does not "
                f"hold (priced: {', '.join(f'{x}d' for x in market.horizons)}): rerun eod "
                "with the positions that need it")
        sets = np.flatnonzero(set_horizon == h)
        # own: the sets of this horizon within ``part``'s results (None: all of them)
        part, rows, own = book, None, None
        if len(sets) < book.n_sets and whole:
            own, rows = sets, np.flatnonzero(set_horizon[book.set_of_position()] == h)
        elif len(sets) < book.n_sets:
            part, rows = book.subset(sets)
        result = _tail(market, part, config, h)
        if own is not None and rows is not None:
            result = _OwnTail.of(result, own, rows)
        tail.put(sets, rows, result)
        if floor_margin is not None:
            floor_margin[sets] = np.maximum(_own(_tail(market, part, config, h, floor=True)
                                                 .model_measure, own), 0.0)
        worst = book_stress(market, part, config, h)
        stress.loss[sets] = _own(worst.loss, own)
        stress.label[sets] = _own(worst.label, own)
    apc_base, apc_info = apply_tools(np.maximum(tail.model_measure, 0.0), floor_margin,
                                     previous, config)
    return tail, stress, apc_base, apc_info


def _own(values: np.ndarray, own: np.ndarray | None) -> np.ndarray:
    return values if own is None else values[own]


@dataclass(frozen=True, eq=False)
class _OwnTail:
    """The tail results of some sets (and of their positions) out of a whole book's, as
    :meth:`TailArrays.put` takes them."""

    var: np.ndarray
    es: np.ndarray
    model_measure: np.ndarray
    contribution: np.ndarray

    @classmethod
    def of(cls, result: Any, own: np.ndarray, rows: np.ndarray) -> _OwnTail:
        """The sets ``own`` of ``result`` and the positions ``rows``."""
        var, es, measure = (np.asarray(getattr(result, c))[own]
                            for c in ("var", "es", "model_measure"))
        return cls(var, es, measure, np.asarray(result.contribution)[rows])


def _tail(market: PricedMarket, part: Book, config: RunConfig, h: int, floor: bool = False
          ) -> Any:
    """The tail kernels of ``part`` (one horizon) on the model scenarios, or on the floor's;
    with ``--method grid`` the venue rule's scan and contingencies instead (engine.grid)."""
    if config.method == "grid" and not floor:
        return grid_measure(market, part, config, h)
    scenarios = market.floor[h] if floor else market.model[h]
    # the coarse first pass costs a copy of the matrix: worth it for a partition, not for a
    # what-if or a liquidation step (bitwise the same results either way)
    screen = (market.screen(h) if not floor and part.n_sets >= SCREEN_MIN_SETS else None)
    return tail_measures(
        scenarios.pnl, part.indptr, part.instrument_index, part.quantity, config.confidence,
        measure="es" if config.measure == "es" else "var", weights=scenarios.weights,
        chunk_size=config.chunk_size, pnl_checked=True, screen=screen,
    )
