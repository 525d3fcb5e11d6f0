"""The waterfall's scenarios: instant moves of the run's factors.

A :class:`Scenario` is a relative price move of every factor of the run (0: still) and how the
implied vols of options follow it:

* ``held``: the factors the scenario's repricing holds besides those it moves. An implied-vol
  index held still keeps its options' vols; an option whose index is not held follows the
  spot-vol rule (:mod:`riskmodel.pricing.revaluation`), as the liquidation map's moves do;
* ``vol_shift`` (the stress grid): every option on ``shift_factor`` has its implied vol
  scaled by ``1 + vol_shift`` (the grid's scan, :func:`riskmodel.pricing.revaluation.grid_pnl`).

Where they come from (``[waterfall] sources``, or ``--scenarios FILE``):

* ``now``: no move (always first; today's liquidations and their losses);
* ``stress``: every scenario of the run's historical-window and user stress sets at the run's
  longest margin period of risk (the moves the run stored with its priced market);
* ``map``: the liquidation map's moves (``[liquidation] map_points`` from ``-map_range`` to
  ``+map_range``) of each underlying alone and of all together;
* ``grid``: the stress grid's price points of each underlying crossed with its implied-vol
  shifts (underlyings with options), and its price points the map does not already hold;
* a file (``scenario, asset, shock``, CSV or Parquet): per scenario, the relative price change
  of each asset listed (log-return factors; -0.2 is a 20% fall) or its price difference
  (absolute-return factors), as ``[stress] files`` reads them; assets not listed stay still.

Scenarios with the same moves and vol treatment are run once (the first label is kept).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from riskmodel.config import RunConfig
from riskmodel.engine.market import PricedMarket
from riskmodel.errors import InputDataError, UsageError
from riskmodel.io.tables import read_table
from riskmodel.liquidation.map import ALL, move_grid
from riskmodel.scenarios.stress import grid_moves

NOW = "now"


@dataclass(frozen=True, eq=False)
class Scenario:
    """One instant move (module docstring).

    Attributes
    ----------
    label : str
    source : str, ``now``, ``stress-historical``, ``stress-user``, ``map``, ``grid`` or ``file``.
    moves : ndarray of shape (n_factors,), relative price move of each factor of the run: the
        price becomes ``P0 (1 + move)`` (the liquidation map's convention, absolute-return
        factors included).
    held : ndarray of bool, shape (n_factors,), factors held in the repricing (see above).
    scope : str, the map's or grid's underlying (``ALL``), else "".
    move : float, the map's or grid's move, else NaN.
    vol_shift : float, relative implied-vol shift of ``shift_factor``'s options (grid), or 0.
    shift_factor : str, the grid's underlying when ``vol_shift`` is not 0, else "".
    """

    label: str
    source: str
    moves: np.ndarray
    held: np.ndarray
    scope: str = ""
    move: float = float("nan")
    vol_shift: float = 0.0
    shift_factor: str = ""

    def key(self) -> tuple[object, ...]:
        """What makes two scenarios the same run (moves to 1e-12, held factors, vol shift)."""
        return (tuple(np.round(self.moves, 12)), tuple(self.held), round(self.vol_shift, 12),
                self.shift_factor if self.vol_shift else "")


@dataclass(frozen=True)
class Universe:
    """What scenarios are built on: the run's factors, their prices and return kinds, the
    underlyings some position is priced on, and those with options."""

    factors: list[str]
    spot: np.ndarray
    return_kinds: dict[str, str]
    underlyings: list[str]
    with_options: list[str] = field(default_factory=list)

    def index(self, factor: str) -> int:
        return self.factors.index(factor)

    def relative(self, shocks: np.ndarray) -> np.ndarray:
        """Shocks in return units (log return, or price difference for absolute factors),
        shape (..., n_factors), as relative price moves."""
        absolute = np.array([self.return_kinds[f] != "log" for f in self.factors])
        return np.where(absolute, shocks / self.spot, np.expm1(shocks))


def default_scenarios(market: PricedMarket, universe: Universe, config: RunConfig
                      ) -> list[Scenario]:
    """``now`` and the sources of ``[waterfall] sources`` (module docstring), duplicates
    dropped."""
    sources = config.waterfall.sources
    out = [_now(universe)]
    if "stress" in sources:
        out += stress_scenarios(market, universe)
    grid = move_grid(config)
    if "map" in sources:
        out += map_scenarios(universe, grid)
    if "grid" in sources:
        out += grid_scenarios(universe, config, grid if "map" in sources else np.zeros(0))
    return unique(out)


def _now(universe: Universe) -> Scenario:
    n = len(universe.factors)
    return Scenario(NOW, NOW, np.zeros(n), np.zeros(n, dtype=bool))


def unique(scenarios: Sequence[Scenario]) -> list[Scenario]:
    seen: set[tuple[object, ...]] = set()
    out = []
    for s in scenarios:
        k = s.key()
        if k not in seen:
            seen.add(k)
            out.append(s)
    return out


def stress_scenarios(market: PricedMarket, universe: Universe) -> list[Scenario]:
    """Every scenario of the run's historical-window and user stress sets at its longest
    margin period of risk, from the moves stored with the priced market."""
    shocks = getattr(market, "shocks", None) or {}
    if not market.horizons:
        return []
    h = max(market.horizons)
    if h not in shocks:
        raise InputDataError(
            "the run's state holds no scenario moves (state/shocks_*.npy: written by eod from "
            "this version on): rerun eod, or pass --scenarios FILE")
    out = []
    for s in shocks[h].stress:
        full = np.zeros((s.n_scenarios, len(universe.factors)))
        held = np.zeros(len(universe.factors), dtype=bool)
        for j, f in enumerate(s.factors):
            if f in universe.factors:
                full[:, universe.index(f)] = s.shocks[:, j]
                held[universe.index(f)] = True
        relative = universe.relative(full)
        out += [Scenario(str(label), s.kind, relative[i], held)
                for i, label in enumerate(s.labels)]
    return out


def map_scenarios(universe: Universe, grid: np.ndarray) -> list[Scenario]:
    """The liquidation map's moves of each underlying and of all together (0 left out)."""
    out = []
    n = len(universe.factors)
    for scope in [*universe.underlyings, ALL]:
        targets = universe.underlyings if scope == ALL else [scope]
        on = np.isin(universe.factors, targets)
        for x in grid:
            if x == 0.0:
                continue
            out.append(Scenario(f"map {scope} {x:+.1%}", "map", np.where(on, x, 0.0),
                                np.zeros(n, dtype=bool), scope=scope, move=float(x)))
    return out


def grid_scenarios(universe: Universe, config: RunConfig, map_moves: np.ndarray
                   ) -> list[Scenario]:
    """The stress grid's points of each underlying: price moves crossed with the implied-vol
    shifts where it has options; price moves alone only where the map lacks them."""
    grid = config.stress.grid
    if not grid.enabled:
        return []
    out = []
    n = len(universe.factors)
    for f in universe.underlyings:
        points, _ = grid_moves(grid, f)
        shifts = grid.vol_shifts if f in universe.with_options else (0.0,)
        j = universe.index(f)
        for m in points:
            for v in shifts:
                if v == 0.0 and (m == 0.0 or np.isclose(map_moves, m, atol=1e-12).any()):
                    continue
                moves = np.zeros(n)
                moves[j] = m
                out.append(Scenario(f"grid {f} {m:+.1%} vol {v:+.0%}", "grid", moves,
                                    np.zeros(n, dtype=bool), scope=f, move=float(m),
                                    vol_shift=float(v), shift_factor=f if v else ""))
    return out


def file_scenarios(path: str | Path, universe: Universe) -> list[Scenario]:
    """Scenarios of a moves file (``scenario, asset, shock``; module docstring). An asset
    that is not a price column of the run, a repeated (scenario, asset) or a fall of 100% or
    more of a log-return factor is an input error naming the row."""
    path = Path(path)
    if not path.is_file():
        raise UsageError(f"--scenarios {path}: no such file")
    table = read_table(path, "waterfall scenarios")
    table.require_columns(["scenario", "asset", "shock"])
    names = table.text("scenario")
    assets = table.text("asset")
    shocks = table.numbers("shock", what="shock")
    order = list(dict.fromkeys(names))
    n = len(universe.factors)
    moves = np.zeros((len(order), n))
    held = np.zeros((len(order), n), dtype=bool)
    seen: dict[tuple[str, str], int] = {}
    for i, (name, asset, shock) in enumerate(zip(names, assets, shocks)):
        if asset not in universe.factors:
            raise table.fail(i, "asset", asset, "not a price column of the run (its factors: "
                             f"{', '.join(universe.factors)})")
        if (name, asset) in seen:
            raise table.fail(i, "asset", asset, f"scenario {name!r} moves it twice (also at "
                             f"{table.where(seen[(name, asset)])})")
        seen[(name, asset)] = i
        j = universe.index(asset)
        if universe.return_kinds[asset] == "log":
            if not shock > -1.0:
                raise table.fail(i, "shock", float(shock), "a relative price change must be "
                                 "> -1 for a log-return factor")
            moves[order.index(name), j] = shock
        else:
            moves[order.index(name), j] = shock / universe.spot[j]
        held[order.index(name), j] = True
    if not order:
        raise InputDataError(f"{path}: no scenario")
    return [_now(universe)] + unique([Scenario(str(name), "file", moves[k], held[k])
                                      for k, name in enumerate(order)])


def universe_of(market: PricedMarket, underlyings: Sequence[str]) -> Universe:
    """The scenario universe of a run: its factors, prices, return kinds, the underlyings its
    positions are priced on and those of them with options in the run."""
    factors = market.factors
    names = [str(f) for f in factors["factor"]]
    instruments = market.instruments
    with_options = sorted(set(instruments.loc[instruments["kind"] == "option", "factor"])
                          & set(underlyings))
    return Universe(names, factors["price"].to_numpy(np.float64),
                    dict(zip(names, factors["return_kind"])), list(underlyings), with_options)


def describe(scenarios: Sequence[Scenario]) -> pd.DataFrame:
    """``scenario, source, scope, move, vol_shift`` of each scenario, in run order."""
    return pd.DataFrame({
        "scenario": [s.label for s in scenarios], "source": [s.source for s in scenarios],
        "scope": [s.scope for s in scenarios],
        "move": np.array([s.move for s in scenarios], dtype=np.float64),
        "vol_shift": np.array([s.vol_shift for s in scenarios], dtype=np.float64)})
