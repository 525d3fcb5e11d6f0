"""Parameter studies: the engine's backtest over a grid of margin settings, coverage against cost.

A grid (``GRID.toml``) maps configuration keys of ``RUN.toml`` to lists of values; every
combination (the Cartesian product, in the file's key order) is one grid point, run as a full
backtest (:func:`riskmodel.backtest.run.run_backtest`, the engine's replay) over the same
inputs and dates, and summarised pooled over all portfolios::

    confidence = [0.975, 0.99]
    lookback = [250, 500]
    [volatility]
    ewma_lambda = [0.94, 0.97]
    [anti_procyclicality]
    tools = [[], ["buffer"], ["floor"]]

Keys are the configuration's own (``method``, ``measure``, ``confidence``, ``horizon``,
``lookback``, ``volatility.model``, ``volatility.ewma_lambda``, ``calibration.model`` for the
GARCH family, ``calibration.dist``, ``anti_procyclicality.tools``, ``margin.flat_rates.default``,
...), dotted or as TOML tables; every value is validated by the configuration loader (exit 2
naming the key). Each value of ``anti_procyclicality.tools`` is a list of tools (a single string
is one tool, ``"none"`` or ``[]`` no tool). ``returns.*`` cannot vary (the price file is loaded
once). A grid value overrides the same key of ``--config`` and of the command-line flags.

Columns of the table (one row per grid point): the grid keys, then ``n_portfolios, n_dates,
n_obs, exceptions, exception_rate, expected_rate, kupiec_pvalue, christoffersen_pvalue,
cc_pvalue, traffic_light, es_z2, margin_breaches, margin_breach_rate, mean_initial_margin,
mean_flat_rate_margin, im_over_flat, flat_rate_equivalent, peak_to_trough, max_increase_1d,
max_increase_5d, start, end, runtime_s``. Pooled means: counts summed over netting sets and
Kupiec on the totals (netting sets treated as independent); ``mean_initial_margin`` and
``mean_flat_rate_margin`` per (date, netting set) row and ``im_over_flat`` their ratio (the cost
of the model relative to the flat rate); ``peak_to_trough`` and the increases are of the total
initial margin per date (:func:`riskmodel.backtest.statistics.summarise`).

GARCH fits (``volatility.model = "garch"``) are cached across grid points: a point that differs
only in, say, confidence reuses the fit of the same sample.
"""

from __future__ import annotations

import copy
import datetime as _dt
import itertools
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from riskmodel import __version__
from riskmodel.backtest.run import (
    BacktestInputs,
    BacktestWindow,
    load_inputs,
    run_backtest,
)
from riskmodel.config import RunConfig, config_from_mapping, read_toml
from riskmodel.errors import UsageError
from riskmodel.io.outputs import staged_output, write_json, write_table
from riskmodel.io.tables import sha256_file
from riskmodel.scenarios.model import DependenceFitter, VolatilityFitter
from riskmodel.volatility.params import FactorParams

__all__ = [
    "METRIC_COLUMNS",
    "Study",
    "caching_fitter",
    "grid_points",
    "load_grid",
    "point_config",
    "run_study",
    "write_study",
]

METRIC_COLUMNS = [
    "n_portfolios", "n_dates", "n_obs", "exceptions", "exception_rate", "expected_rate",
    "kupiec_pvalue", "christoffersen_pvalue", "cc_pvalue", "traffic_light", "es_z2",
    "margin_breaches", "margin_breach_rate", "mean_initial_margin", "mean_flat_rate_margin",
    "im_over_flat", "flat_rate_equivalent", "peak_to_trough", "max_increase_1d",
    "max_increase_5d", "start", "end", "runtime_s",
]
_TOOLS_KEY = "anti_procyclicality.tools"
_LIST_KEYS = {_TOOLS_KEY, "anti_procyclicality.stressed_windows", "stress.files",
              "stress.grid.vol_shifts"}


@dataclass
class Study:
    """A finished study: one table row per grid point, notes, and what produced it."""

    table: pd.DataFrame
    grid: dict[str, list[Any]]
    notes: list[str] = field(default_factory=list)
    manifest: dict[str, Any] = field(default_factory=dict)


def _flatten(raw: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in raw.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out.update(_flatten(value, f"{name}."))
        else:
            out[name] = value
    return out


def _tools(value: Any) -> list[str]:
    if isinstance(value, str):
        return [] if value in ("", "none") else [value]
    if isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
        return [str(v) for v in value]
    raise UsageError(f"grid: {_TOOLS_KEY} value {value!r} must be a list of tools or one tool "
                     "name")


def load_grid(path: str | Path | Mapping[str, Any]) -> dict[str, list[Any]]:
    """Read a grid: dotted configuration key -> list of values (see the module docstring).

    Parameters
    ----------
    path : GRID.toml, or an already parsed mapping.

    Raises
    ------
    UsageError
        A missing or invalid file, an empty grid, a value that is not a non-empty list, or a
        ``returns.*`` key.
    """
    if isinstance(path, Mapping):
        raw: Mapping[str, Any] = path
        source = "grid"
    else:
        try:
            raw = read_toml(path)
        except UsageError as exc:
            raise UsageError(str(exc).replace("--config", "--grid")) from None
        source = f"--grid {path}"
    flat = _flatten(raw)
    if not flat:
        raise UsageError(f"{source}: the grid is empty (map configuration keys to lists)")
    grid: dict[str, list[Any]] = {}
    for key, values in flat.items():
        if key.split(".")[0] == "returns":
            raise UsageError(f"{source}: {key}: return kinds cannot vary in a study (the price "
                             "file is loaded once)")
        if not isinstance(values, list) or not values:
            raise UsageError(f"{source}: {key} = {values!r} must be a non-empty list of values")
        if key == _TOOLS_KEY:
            values = [_tools(v) for v in values]
        elif key not in _LIST_KEYS and any(isinstance(v, (list, dict)) for v in values):
            raise UsageError(f"{source}: {key} = {values!r}: each value must be a scalar")
        grid[key] = list(values)
    return grid


def grid_points(grid: Mapping[str, Sequence[Any]]) -> list[dict[str, Any]]:
    """Every combination of the grid's values (Cartesian product, first key slowest)."""
    keys = list(grid)
    return [dict(zip(keys, combo)) for combo in itertools.product(*(grid[k] for k in keys))]


def _label(value: Any) -> Any:
    if isinstance(value, (list, tuple)):
        return "+".join(str(v) for v in value) if value else "none"
    return value


def point_config(raw: Mapping[str, Any], overrides: Mapping[str, Any],
                 point: Mapping[str, Any]) -> RunConfig:
    """The configuration of a grid point: ``raw`` (RUN.toml) with the point's keys set.

    Flag ``overrides`` apply except where the point sets the same key (the grid wins).
    """
    merged: dict[str, Any] = copy.deepcopy(dict(raw))
    for key, value in point.items():
        parts = key.split(".")
        node = merged
        for part in parts[:-1]:
            child = node.get(part)
            if not isinstance(child, dict):
                child = {}
                node[part] = child
            node = child
        node[parts[-1]] = list(value) if isinstance(value, (list, tuple)) else value
    flags = {k: v for k, v in overrides.items() if v is not None and k not in point}
    label = ", ".join(f"{k} = {_label(v)!r}" for k, v in point.items())
    return config_from_mapping(merged, flags, source=f"grid point ({label})")


def caching_fitter(fitter: VolatilityFitter) -> VolatilityFitter:
    """``fitter`` with its results kept per (factors and their sample dates, calibration
    settings): the grid points of a study refit the same samples."""
    cache: dict[tuple[Any, ...], dict[str, FactorParams]] = {}

    def fit(samples: Mapping[str, pd.Series], config: RunConfig) -> dict[str, FactorParams]:
        key = (tuple((name, len(r), r.index[0] if len(r) else None,
                      r.index[-1] if len(r) else None) for name, r in samples.items()),
               repr(config.calibration), config.ewma_lambda)
        if key not in cache:
            cache[key] = fitter(samples, config)
        return cache[key]

    return fit


def _default_fitter() -> VolatilityFitter:
    from calibration.estimate import Spec
    from calibration.runner import fit_samples

    def fit(samples: Mapping[str, pd.Series], config: RunConfig) -> dict[str, FactorParams]:
        return fit_samples(samples, Spec.from_config(config.calibration, config.ewma_lambda))

    return fit


def _metrics(summary: Mapping[str, Any], runtime: float) -> dict[str, Any]:
    pooled = summary["pooled"]
    run = summary["run"]
    im = float(pooled["mean_margin"])
    flat = float(pooled["flat_rate"]["mean_margin"])
    return {
        "n_portfolios": pooled["n_portfolios"],
        "n_dates": run["n_dates"],
        "n_obs": pooled["n_obs"],
        "exceptions": pooled["exceptions"],
        "exception_rate": pooled["exception_rate"],
        "expected_rate": pooled["expected_rate"],
        "kupiec_pvalue": pooled["kupiec_pvalue"],
        "christoffersen_pvalue": pooled["christoffersen_pvalue"],
        "cc_pvalue": pooled["cc_pvalue"],
        "traffic_light": pooled["traffic_light"],
        "es_z2": pooled["es_z2"],
        "margin_breaches": pooled["margin_breaches"],
        "margin_breach_rate": pooled["margin_breach_rate"],
        "mean_initial_margin": im,
        "mean_flat_rate_margin": flat,
        "im_over_flat": im / flat if flat > 0 else None,
        "flat_rate_equivalent": pooled["flat_rate_equivalent"]["rate"],
        "peak_to_trough": pooled["peak_to_trough"],
        "max_increase_1d": pooled["max_increase_1d"],
        "max_increase_5d": pooled["max_increase_5d"],
        "start": run["start"],
        "end": run["end"],
        "runtime_s": round(runtime, 3),
    }


def run_study(
    inputs: BacktestInputs,
    raw_config: Mapping[str, Any],
    overrides: Mapping[str, Any],
    grid: Mapping[str, Sequence[Any]],
    window: BacktestWindow,
    *,
    fitter: VolatilityFitter | None = None,
    dependence_fitter: DependenceFitter | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> Study:
    """Backtest every grid point over the same inputs and dates.

    Parameters
    ----------
    inputs : BacktestInputs, the files (positions None: the built-in portfolios).
    raw_config : mapping, the parsed RUN.toml (``{}`` for defaults).
    overrides : mapping, flag overrides (``method``, ``confidence``, ...; None values ignored).
    grid : mapping key -> list of values (:func:`load_grid`).
    window : BacktestWindow, the dates (``recalibrate_every`` applies to every point).
    fitter : VolatilityFitter, optional; GARCH estimation (default: :mod:`calibration.estimate`),
        cached across points.
    dependence_fitter : DependenceFitter, optional; Monte Carlo dependence.
    progress : ``progress(done, total)`` over grid points, optional.

    Returns
    -------
    Study
    """
    points = grid_points(grid)
    configs = [point_config(raw_config, overrides, p) for p in points]  # all validated first
    base = config_from_mapping(raw_config, {k: v for k, v in overrides.items() if v is not None})
    loaded = load_inputs(inputs, base)
    fit = caching_fitter(fitter if fitter is not None else _default_fitter())
    rows: list[dict[str, Any]] = []
    notes: list[str] = []
    for i, (point, cfg) in enumerate(zip(points, configs)):
        clock = time.perf_counter()
        result = run_backtest(inputs, cfg, window, fitter=fit,
                              dependence_fitter=dependence_fitter, loaded=loaded, n_sim=0)
        row = {"point": i + 1, **{k: _label(v) for k, v in point.items()}}
        row.update(_metrics(result.summary, time.perf_counter() - clock))
        rows.append(row)
        label = ", ".join(f"{k} = {_label(v)}" for k, v in point.items())
        notes += [f"point {i + 1} ({label}): {w}" for w in result.summary["warnings"]]
        if progress is not None:
            progress(i + 1, len(points))
    table = pd.DataFrame(rows, columns=["point", *grid, *METRIC_COLUMNS])
    files = {"prices": inputs.prices, "instruments": inputs.instruments}
    if inputs.positions is not None:
        files["positions"] = inputs.positions
    manifest = {
        "riskmodel_version": __version__,
        "command": "study",
        "created_at": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "inputs": {k: {"path": str(v), "sha256": sha256_file(v)} for k, v in files.items()},
        "base_config": base.to_dict(),
        "overrides": {k: v for k, v in overrides.items() if v is not None},
        "grid": {k: [_label(v) for v in values] for k, values in grid.items()},
        "window": {"start": window.start, "end": window.end, "step": window.step,
                   "recalibrate_every": window.recalibrate_every},
        "points": len(points),
        "warnings": notes,
    }
    return Study(table, {k: list(v) for k, v in grid.items()}, notes, manifest)


def _plot(table: pd.DataFrame, grid_keys: Sequence[str], path: Path) -> None:
    """Exception rate and margin-breach rate against cost (mean IM / mean flat-rate margin)."""
    lines = [f"{n}: " + ", ".join(f"{k} = {row[k]}" for k in grid_keys)
             for n, (_, row) in zip(table["point"], table.iterrows())]
    shown = lines[:40]
    legend_h = 0.17 * (len(shown) + (len(lines) > len(shown))) + 0.3
    fig = Figure(figsize=(11, 4.8 + legend_h), layout="constrained")
    FigureCanvasAgg(fig)
    grid = fig.add_gridspec(2, 2, height_ratios=[4.8, legend_h])
    left, right = fig.add_subplot(grid[0, 0]), fig.add_subplot(grid[0, 1])
    text = fig.add_subplot(grid[1, :])
    text.axis("off")
    cost = pd.to_numeric(table["im_over_flat"], errors="coerce").to_numpy(np.float64)
    colour = {"green": "tab:green", "yellow": "goldenrod", "red": "tab:red"}
    for ax, column, title in (
        (left, "exception_rate", "VaR exceptions (loss > VaR) against cost"),
        (right, "margin_breach_rate", "Margin breaches (loss > initial margin) against cost"),
    ):
        y = table[column].to_numpy(np.float64)
        ax.scatter(cost, y, c=[colour.get(t, "0.5") for t in table["traffic_light"]], s=40,
                   zorder=3, edgecolors="black", linewidths=0.5)
        for x_i, y_i, n in zip(cost, y, table["point"]):
            if np.isfinite(x_i) and np.isfinite(y_i):
                ax.annotate(str(n), (x_i, y_i), textcoords="offset points", xytext=(4, 4),
                            fontsize=8)
        for rate in sorted(set(table["expected_rate"])):
            ax.axhline(rate, color="0.4", ls="--", lw=0.8)
            ax.annotate(f"1 - confidence = {rate:.3g}", (0.01, rate),
                        xycoords=("axes fraction", "data"), textcoords="offset points",
                        xytext=(0, 3), fontsize=8, color="0.3")
        ax.set_xlabel("cost: mean initial margin / mean flat-rate margin")
        ax.set_ylabel(column.replace("_", " "))
        ax.set_title(title, fontsize=10)
    if len(lines) > len(shown):
        shown.append(f"... {len(lines) - len(shown)} more points in study.csv")
    text.text(0.0, 1.0, "\n".join(shown), transform=text.transAxes, fontsize=8, va="top",
              ha="left", family="monospace")
    fig.suptitle("Parameter study: coverage against cost (colour: Basel traffic light of the "
                 "pooled VaR exceptions)", fontsize=11)
    fig.savefig(path, format="png", dpi=100)


def write_study(study: Study, out: str | Path) -> Path:
    """Write ``study.csv``, ``study.parquet``, ``study.png`` and ``manifest.json`` atomically."""
    with staged_output(out) as staging:
        write_table(study.table, staging / "study.csv")
        write_table(study.table, staging / "study.parquet")
        _plot(study.table, list(study.grid), staging / "study.png")
        write_json(study.manifest, staging / "manifest.json")
    return Path(out)
