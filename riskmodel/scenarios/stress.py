"""Stress scenarios: named historical windows, user shock files and the hypothetical grid.

Historical windows (``riskmodel/data/stress/historical_windows.toml``, versioned): every overlapping
h-day move of each factor inside the window, read from the run's own price history (the union
calendar, last price carried over closed days) and applied to today's prices. A factor with no
prices at both ends of a move borrows a proxy's move scaled by the ratio of their current
volatilities (standard deviation of daily returns over the run's window): the proxy is the one named
in ``[stress.proxies]``, else the factor with data in the window whose daily returns are most
correlated with it, in absolute value, over their common history (at least 60 common returns); a
negatively correlated proxy moves it the other way (VIX proxied by the S&P 500 rises when the index
falls); with neither, the factor does not move and the manifest says so.

User shock files (``[stress] files``, CSV or Parquet ``scenario, asset, shock``): for a factor
with log returns ``shock`` is the relative price change (-0.2: the price falls 20%); for a factor
with absolute returns it is the price difference. Listed factors move, others stay; assets the
run does not use are ignored.

The hypothetical grid (SPAN style, see :class:`riskmodel.config.StressGrid`) is evaluated per
factor, as :func:`grid_loss` defines it: each factor's price moves on its own; a netting set's
grid loss is the sum over factors of its worst loss on that factor's scan (no diversification
across underlyings). The engine runs the numba kernel
:func:`riskmodel.measures.stress_kernels.grid_set_loss`, of which :func:`grid_loss` is the numpy
twin (tested bit for bit).
"""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from riskmodel.config import RunConfig, StressGrid
from riskmodel.errors import InputDataError
from riskmodel.io.tables import read_table
from riskmodel.marketdata.returns import Universe
from riskmodel.scenarios.scenario_set import ScenarioSet

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

MIN_PROXY_OVERLAP = 60
WINDOWS_SCHEMA = 1


@dataclass(frozen=True)
class StressWindow:
    name: str
    start: pd.Timestamp
    end: pd.Timestamp
    description: str = ""


def default_windows_file() -> Path | None:
    """The shipped ``riskmodel/data/stress/historical_windows.toml`` (package data, so an
    installed riskmodel has it too), if present."""
    path = Path(__file__).resolve().parents[1] / "data" / "stress" / "historical_windows.toml"
    return path if path.is_file() else None


def load_windows(path: str | Path) -> tuple[list[StressWindow], int]:
    """Read a windows file; returns the windows and the file's ``version``."""
    p = Path(path)
    try:
        raw = tomllib.loads(p.read_text())
    except FileNotFoundError:
        raise InputDataError(f"stress windows file not found: {p}") from None
    except tomllib.TOMLDecodeError as exc:
        raise InputDataError(f"{p}: not valid TOML: {exc}") from None
    if raw.get("schema_version") != WINDOWS_SCHEMA:
        raise InputDataError(f"{p}: column 'schema_version': must be {WINDOWS_SCHEMA} "
                             f"(value {raw.get('schema_version')!r})")
    windows = []
    for i, entry in enumerate(raw.get("windows", [])):
        try:
            w = StressWindow(str(entry["name"]), pd.Timestamp(entry["start"]),
                             pd.Timestamp(entry["end"]), str(entry.get("description", "")))
        except (KeyError, ValueError, TypeError) as exc:
            raise InputDataError(f"{p}: window {i + 1}: invalid entry: {exc} "
                                 f"(value {entry!r})") from None
        if w.end <= w.start:
            raise InputDataError(f"{p}: window {w.name!r}: column 'end': must be after start "
                                 f"(value {entry['end']!r})")
        windows.append(w)
    return windows, int(raw.get("version", 0))


def windows_file(configured: str | None) -> Path | None:
    """The windows file a run uses: the configured one, else the bundled one (or None)."""
    return Path(configured) if configured else default_windows_file()


def universe_window_scenarios(
    universe: Universe, factors: Sequence[str], windows: Sequence[StressWindow],
    window: pd.DataFrame, horizon: int, proxies: Mapping[str, str],
) -> tuple[ScenarioSet | None, list[str]]:
    """:func:`historical_stress` over the whole price file, volatilities from ``window``."""
    return historical_stress(universe.prices, universe.returns, factors, windows, horizon,
                             universe.return_kinds, universe.sigma(window), proxies)


def _correlation(factor: str, other: str, returns: pd.DataFrame) -> float:
    """Correlation of two factors' daily returns over their common history (NaN when they
    share fewer than ``MIN_PROXY_OVERLAP`` returns)."""
    pair = returns[[factor, other]].dropna()
    if len(pair) < MIN_PROXY_OVERLAP:
        return float("nan")
    return float(pair[factor].corr(pair[other]))


def _best_proxy(factor: str, candidates: Sequence[str], returns: pd.DataFrame) -> str | None:
    """The candidate whose returns are most correlated with the factor's, in absolute value
    (an implied-vol index is best proxied by its index, negatively)."""
    best, best_corr = None, -np.inf
    for c in candidates:
        corr = abs(_correlation(factor, c, returns))
        if np.isfinite(corr) and corr > best_corr:
            best, best_corr = c, corr
    return best


def historical_stress(
    prices: pd.DataFrame,
    returns: pd.DataFrame,
    factors: Sequence[str],
    windows: Sequence[StressWindow],
    horizon: int,
    return_kinds: Mapping[str, str],
    sigma: pd.Series,
    proxies: Mapping[str, str],
) -> tuple[ScenarioSet | None, list[str]]:
    """Scenarios for ``factors`` from the named windows (None if no window has data) and notes.

    Parameters
    ----------
    prices : DataFrame (dates x assets), every asset of the price file (proxy candidates too),
        aligned and carried over, up to the market date.
    returns : DataFrame (dates x assets) of daily returns (for proxy selection).
    factors : the factors the scenarios move (columns of ``prices``).
    sigma : Series (assets,), current daily volatility in return units (for proxy scaling).
    """
    universe = [str(c) for c in prices.columns]
    factors = list(factors)
    rows: list[np.ndarray] = []
    labels: list[str] = []
    notes: list[str] = []
    for w in windows:
        span = prices.loc[w.start:w.end]
        if len(span) < horizon + 1:
            continue
        p = span.to_numpy(np.float64)
        start, end = p[:-horizon], p[horizon:]
        all_moves = np.empty_like(start)
        for j, f in enumerate(universe):
            if return_kinds[f] == "log":
                all_moves[:, j] = np.log(end[:, j] / start[:, j])
            else:
                all_moves[:, j] = end[:, j] - start[:, j]
        present_all = np.isfinite(all_moves).all(axis=0)
        if not present_all.any():
            continue
        with_data = [f for f, ok in zip(universe, present_all) if ok]
        columns = [universe.index(f) for f in factors]
        moves = all_moves[:, columns]
        present = present_all[columns]
        for j, f in enumerate(factors):
            if present[j]:
                continue
            proxy = proxies.get(f)
            if proxy not in with_data:
                proxy = _best_proxy(f, with_data, returns)
            if proxy is None:
                moves[:, j] = 0.0
                notes.append(f"stress {w.name}: {f} has no prices in the window and no proxy; "
                             "it does not move")
                continue
            ratio = float(sigma[f] / sigma[proxy]) if sigma[proxy] > 0 else 0.0
            if _correlation(f, proxy, returns) < 0:  # moves the other way
                ratio = -ratio
            moves[:, j] = all_moves[:, universe.index(proxy)] * ratio
            notes.append(f"stress {w.name}: {f} takes {proxy}'s moves x {ratio:.4g} "
                         "(volatility ratio, signed by their correlation)")
        rows.append(moves)
        labels += [f"{w.name}:{d.strftime('%Y-%m-%d')}" for d in span.index[:-horizon]]
    if not rows:
        return None, notes
    if not any(np.any(r != 0) for r in rows):
        notes.append("stress windows: no factor in use has data or a proxy in any window")
    shocks = np.vstack(rows)
    return ScenarioSet(shocks=shocks, factors=tuple(factors), labels=np.asarray(labels),
                       kind="stress-historical", horizon=horizon,
                       provenance={"windows": [w.name for w in windows]}), notes


def user_shocks(
    path: str | Path, factors: Sequence[str], return_kinds: Mapping[str, str], horizon: int
) -> ScenarioSet | None:
    """Scenarios from a shock file (``scenario, asset, shock``); see the module docstring."""
    table = read_table(path, "stress shocks")
    table.require_columns(["scenario", "asset", "shock"])
    names = table.text("scenario")
    assets = table.text("asset")
    shocks = table.numbers("shock", what="shock")
    index = {f: j for j, f in enumerate(factors)}
    order = list(dict.fromkeys(names))
    out = np.zeros((len(order), len(factors)))
    seen: set[tuple[str, str]] = set()
    for i, (name, asset, shock) in enumerate(zip(names, assets, shocks)):
        if (name, asset) in seen:
            raise table.fail(i, "asset", asset, f"duplicate shock in scenario {name!r}")
        seen.add((name, asset))
        if asset not in index:
            continue
        if return_kinds[asset] == "log":
            if shock <= -1.0:
                raise table.fail(i, "shock", float(shock),
                                 "relative price change must be > -1 for a log-return factor")
            out[order.index(name), index[asset]] = np.log1p(shock)
        else:
            out[order.index(name), index[asset]] = shock
    return ScenarioSet(shocks=out, factors=tuple(factors), labels=np.asarray(order),
                       kind="stress-user", horizon=horizon, provenance={"file": str(path)})


def grid_moves(grid: StressGrid, underlying: str) -> tuple[np.ndarray, np.ndarray]:
    """Relative price moves of the grid for one underlying and the weight of each.

    Returns ``(moves, weights)``: ``steps`` moves from -move to +move (0 included) at weight 1,
    then the two extreme moves +/- extreme_multiple x move at ``extreme_fraction``.
    """
    move = grid.move_by_underlying.get(underlying, grid.move)
    regular = np.linspace(-move, move, grid.steps)
    extreme = np.array([-grid.extreme_multiple * move, grid.extreme_multiple * move])
    # a price cannot fall below zero: cap extreme falls at -99% for the scan
    extreme = np.maximum(extreme, -0.99)
    moves = np.concatenate([regular, extreme])
    weights = np.concatenate([np.ones(grid.steps), np.full(2, grid.extreme_fraction)])
    return moves, weights


def grid_loss(
    position_grid_pnl: np.ndarray,
    weights: np.ndarray,
    group: np.ndarray,
    set_of_group: np.ndarray,
    n_sets: int,
) -> np.ndarray:
    """Grid stress loss per netting set.

    Parameters
    ----------
    position_grid_pnl : ndarray of shape (n_positions, n_grid), each position's P&L on its own
        factor's scan.
    weights : ndarray of shape (n_grid,), weight of each scan point's loss.
    group : int ndarray of shape (n_positions,), the (netting set, factor) group of each position.
    set_of_group : int ndarray of shape (n_groups,), the netting set of each group.
    n_sets : number of netting sets.

    Returns
    -------
    ndarray of shape (n_sets,): sum over the set's factors of the worst weighted scan loss (>= 0,
    since the scan includes the unchanged price).
    """
    n_groups = len(set_of_group)
    # one bincount per scan point: np.add.at over a million positions is many times slower
    group_pnl = np.column_stack([
        np.bincount(group, weights=position_grid_pnl[:, g], minlength=n_groups)
        for g in range(position_grid_pnl.shape[1])
    ]) if n_groups else np.zeros((0, position_grid_pnl.shape[1]))
    worst = np.max(-group_pnl * weights[None, :], axis=1)
    return np.bincount(set_of_group, weights=worst, minlength=n_sets).astype(np.float64)


def stress_scenario_sets(
    factors: Sequence[str], return_kinds: Mapping[str, str], window: pd.DataFrame,
    config: RunConfig, universe: Universe, horizon: int,
) -> tuple[list[ScenarioSet], dict[str, Any]]:
    """The historical-window and user-shock scenario sets of a run, in the order the engine
    reduces them (windows, then each shock file; the grid is evaluated per position by the
    engine), and their facts (``mode, weight, notes, windows, grid, scenario_sets``).

    ``universe`` holds every asset of the price file up to the market date (proxies and window
    moves are read from it), ``window`` the model window (proxy volatility ratios)."""
    stress = config.stress
    info: dict[str, Any] = {"mode": stress.mode, "weight": stress.weight, "notes": []}
    sets: list[ScenarioSet] = []
    if stress.historical:
        path = windows_file(stress.windows_file)
        if path is None:
            info["notes"].append("no historical stress windows file found")
        else:
            windows, version = load_windows(path)
            hist, notes = universe_window_scenarios(universe, list(factors), windows, window,
                                                    horizon, stress.proxies)
            info["windows"] = {"file": str(path), "version": version,
                               "scenarios": 0 if hist is None else hist.n_scenarios}
            info["notes"] += notes
            if hist is not None:
                sets.append(hist)
    for f in stress.files:
        user = user_shocks(f, list(factors), return_kinds, horizon)
        if user is not None and user.n_scenarios:
            sets.append(user)
    if stress.grid.enabled:
        info["grid"] = {"points_per_factor": stress.grid.steps + 2, "move": stress.grid.move}
    info["scenario_sets"] = {s.kind: s.n_scenarios for s in sets}
    return sets, info
