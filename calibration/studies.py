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
mean_flat_rate_margin, im_over_flat, flat_rate_equivalent, flat_rate_equivalent_margin,
peak_to_trough, max_increase_1d, max_increase_5d, start, end, runtime_s``. Pooled means: counts
summed over netting sets and Kupiec on the totals (netting sets treated as independent);
``mean_initial_margin`` and ``mean_flat_rate_margin`` per (date, netting set) row and
``im_over_flat`` their ratio (the cost
of the model relative to the flat rate); ``peak_to_trough`` and the increases are of the total
initial margin per date (:func:`riskmodel.backtest.statistics.summarise`);
``flat_rate_equivalent`` is the lowest flat rate on gross notional with no more margin breaches
than the model and ``flat_rate_equivalent_margin`` its mean margin (its cost at that coverage).
Then ``peak_initial_margin`` and ``max_jump_1d`` (the peak and largest one-date rise of the
per-date mean initial margin over the sets present: :func:`margin_path`), the realisable flat
rate (:mod:`riskmodel.backtest.benchmarks`: ``realisable_flat_rate_margin``, its breach rate
and ``realisable_flat_rate_equivalent_margin``, its schedule scaled to the model's coverage),
the mean margin over each equivalent pooled (``im_over_flat_rate_equivalent``,
``im_over_realisable_equivalent``) and for the median set (``median_im_over_...``),
``coverage_passes`` ("7 of 8": sets passing Kupiec and Christoffersen at 1%) and
``configuration`` (the point's settings less its confidence).

GARCH fits (``volatility.model = "garch"``) are cached across grid points: a point that differs
only in, say, confidence reuses the fit of the same sample.

The frontier of coverage against cost (:func:`flat_rate_curve`, :func:`efficient`): besides the
grid points, a flat rate ``r`` on gross notional is a margin rule whose cost is ``r`` x the mean
gross notional and whose coverage is the share of (date, netting set) rows with a realised loss
above ``r`` x gross notional, computed on each point's own backtest rows (the realised losses
depend on the horizon); so is the realisable flat rate's schedule scaled by a factor ``r``
(``r = 1``: as it ran). Grid points that differ only in ``confidence`` are one configuration,
whose curve the confidences trace. A point is efficient when no other point, grid or flat rate,
has both a lower-or-equal breach rate and a lower-or-equal mean margin, one of them strictly
lower; ``efficient_peak`` and ``efficient_jump`` say the same with the peak or the largest
one-date rise as the cost.
``write_study`` writes ``report.html`` (:mod:`riskmodel.report.study`) and ``frontier.csv``.
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

from calibration.fitters import default_fitter
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
from riskmodel.report.study import write_study_report
from riskmodel.scenarios.model import DependenceFitter, VolatilityFitter
from riskmodel.volatility.params import FactorParams

__all__ = [
    "METRIC_COLUMNS",
    "Study",
    "caching_fitter",
    "default_fitter",
    "efficient",
    "flat_rate_curve",
    "frontier_table",
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
    "im_over_flat", "flat_rate_equivalent", "flat_rate_equivalent_margin", "peak_to_trough",
    "max_increase_1d", "max_increase_5d", "start", "end", "runtime_s",
    # the cost's peak and jumps, the realisable flat rate beside the model, the per-set view
    "peak_initial_margin", "max_jump_1d", "realisable_flat_rate_margin",
    "realisable_flat_rate_breach_rate", "realisable_flat_rate_equivalent_margin",
    "im_over_flat_rate_equivalent", "im_over_realisable_equivalent",
    "median_im_over_flat_rate_equivalent", "median_im_over_realisable_equivalent",
    "coverage_passes", "configuration",
]
#: The curves' kinds of flat-rate rule (:func:`flat_rate_curve`).
FLAT_KINDS = {"gross_notional": "flat rate",
              "realisable_flat_rate_margin": "realisable flat rate"}
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
    # per grid point, the flat rates' coverage and cost on its rows (:func:`flat_rate_curve`)
    flat_rates: pd.DataFrame | None = None


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


def margin_path(backtest: pd.DataFrame, column: str) -> tuple[float, float]:
    """Peak and largest one-date rise of the per-date mean of ``column`` over the netting sets
    present that date (the cost's path: the unit of the mean margin, whatever the number of
    sets); ``(0, 0)`` for an empty table, rise 0 with a single date."""
    if not len(backtest):
        return 0.0, 0.0
    path = backtest.groupby("date", sort=True)[column].mean().to_numpy(np.float64)
    jump = float(np.max(np.diff(path))) if path.size > 1 else 0.0
    return float(path.max()), max(jump, 0.0)


def _configuration(point: Mapping[str, Any]) -> str:
    """A grid point's settings less its confidence: the points of one configuration trace a
    curve of coverage against cost as the confidence varies."""
    rest = [f"{k} = {_label(v)}" for k, v in point.items() if k != "confidence"]
    return ", ".join(rest) or "all"


def _realisable_metrics(pooled: Mapping[str, Any]) -> dict[str, Any]:
    im = float(pooled["mean_margin"])
    real = pooled.get("realisable_flat_rate") or {}
    real_eq = pooled.get("realisable_flat_rate_equivalent") or {}
    ratios = pooled.get("cost_ratios") or {}
    medians = pooled.get("median_cost_ratios") or {}
    passes = pooled.get("coverage_passes") or {}
    return {
        "realisable_flat_rate_margin": real.get("mean_margin"),
        "realisable_flat_rate_breach_rate": real.get("breach_rate"),
        "realisable_flat_rate_equivalent_margin": real_eq.get("mean_margin"),
        "im_over_flat_rate_equivalent": ratios.get("flat_rate_equivalent"),
        "im_over_realisable_equivalent": (im / real_eq["mean_margin"]
                                          if real_eq.get("mean_margin") else None),
        "median_im_over_flat_rate_equivalent": medians.get("flat_rate_equivalent"),
        "median_im_over_realisable_equivalent": medians.get(
            "realisable_flat_rate_equivalent"),
        "coverage_passes": (f"{passes['both']} of {passes['of']}" if passes else None),
    }


def _metrics(summary: Mapping[str, Any], runtime: float,
             backtest: pd.DataFrame | None = None) -> dict[str, Any]:
    pooled = summary["pooled"]
    run = summary["run"]
    im = float(pooled["mean_margin"])
    flat = float(pooled["flat_rate"]["mean_margin"])
    peak, jump = (margin_path(backtest, "initial_margin") if backtest is not None
                  else (None, None))
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
        "flat_rate_equivalent_margin": pooled["flat_rate_equivalent"]["mean_margin"],
        "peak_to_trough": pooled["peak_to_trough"],
        "max_increase_1d": pooled["max_increase_1d"],
        "max_increase_5d": pooled["max_increase_5d"],
        "start": run["start"],
        "end": run["end"],
        "runtime_s": round(runtime, 3),
        "peak_initial_margin": peak,
        "max_jump_1d": jump,
        **_realisable_metrics(pooled),
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
    fit = caching_fitter(fitter if fitter is not None else default_fitter())
    rows: list[dict[str, Any]] = []
    notes: list[str] = []
    curves: list[pd.DataFrame] = []
    for i, (point, cfg) in enumerate(zip(points, configs)):
        clock = time.perf_counter()
        result = run_backtest(inputs, cfg, window, fitter=fit,
                              dependence_fitter=dependence_fitter, loaded=loaded, n_sim=0)
        row = {"point": i + 1, **{k: _label(v) for k, v in point.items()}}
        row.update(_metrics(result.summary, time.perf_counter() - clock, result.backtest))
        row["configuration"] = _configuration(point)
        rows.append(row)
        for rule in FLAT_KINDS:  # both flat-rate rules, on this point's own rows
            if rule in result.backtest.columns:
                curves.append(flat_rate_curve(result.backtest, base=rule).assign(point=i + 1))
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
    return Study(table, {k: list(v) for k, v in grid.items()}, notes, manifest,
                 pd.concat(curves, ignore_index=True) if curves else None)


def flat_rate_curve(backtest: pd.DataFrame, rates: Sequence[float | None] = (),
                    points: int = 40, *, base: str = "gross_notional") -> pd.DataFrame:
    """Coverage and cost of flat rates on gross notional over a backtest's rows.

    A row (date, netting set) is breached at rate ``r`` when its realised loss exceeds
    ``r x gross_notional``, i.e. when its *needed rate* ``loss / gross_notional`` exceeds
    ``r`` (a row with no notional and a loss is breached at every rate).

    With ``base = "realisable_flat_rate_margin"`` the same for the realisable flat rate
    (:mod:`riskmodel.backtest.benchmarks`) scaled by a constant factor ``r`` (its margin
    ``r x realisable_flat_rate_margin``; ``r = 1`` is the schedule itself).

    Parameters
    ----------
    backtest : DataFrame with ``realized_loss`` and ``base``, one row per date and netting
        set (and ``date`` for the path columns).
    rates : rates to include exactly (None ignored), e.g. the flat-rate equivalent.
    points : number of rates sampled, at the needed-rate quantiles of breach rates from 0.02%
        to 25% (log-spaced), plus the smallest rate with no breach.
    base : the column the rate multiplies.

    Returns
    -------
    DataFrame ``rate, breaches, breach_rate, mean_margin, peak_margin, max_jump_1d, kind`` by
    increasing rate, where ``mean_margin = rate x mean base`` (per row, as the model's mean
    margin), ``peak_margin`` and ``max_jump_1d`` are ``rate`` times the peak and largest
    one-date rise of the per-date mean base (:func:`margin_path`; 0 without ``date``) and
    ``kind`` names the rule (:data:`FLAT_KINDS`).
    """
    loss = backtest["realized_loss"].to_numpy(np.float64)
    gross = backtest[base].to_numpy(np.float64)
    n = loss.size
    need = np.where(gross > 0, loss / np.where(gross > 0, gross, 1.0),
                    np.where(loss > 0, np.inf, 0.0))
    ordered = np.sort(need)
    finite = ordered[np.isfinite(ordered)]
    sampled = np.quantile(finite, 1.0 - np.geomspace(2e-4, 0.25, points)) if finite.size \
        else np.zeros(0)
    top = finite[-1:] if finite.size else np.zeros(1)
    extra = np.array([r for r in rates if r is not None and np.isfinite(r)], np.float64)
    if base != "gross_notional":
        extra = np.append(extra, 1.0)  # the schedule as it ran
    grid = np.unique(np.maximum(np.concatenate([sampled, top, extra]), 0.0))
    breaches = n - np.searchsorted(ordered, grid, side="right")
    peak, jump = margin_path(backtest, base) if "date" in backtest.columns else (0.0, 0.0)
    return pd.DataFrame({"rate": grid, "breaches": breaches.astype(np.int64),
                         "breach_rate": breaches / max(n, 1),
                         "mean_margin": grid * (float(gross.mean()) if n else 0.0),
                         "peak_margin": grid * peak, "max_jump_1d": grid * jump,
                         "kind": FLAT_KINDS.get(base, base)})


def efficient(cost: np.ndarray, breach_rate: np.ndarray) -> np.ndarray:
    """Boolean mask of the points no other point beats on both cost and breach rate.

    A point is beaten when another has cost <= and breach rate <= with at least one strictly
    lower; O(n^2), n being grid points plus sampled flat rates (hundreds).
    """
    c = np.asarray(cost, np.float64)[:, None]
    b = np.asarray(breach_rate, np.float64)[:, None]
    no_worse = (c.T <= c) & (b.T <= b)
    better = (c.T < c) | (b.T < b)
    return ~np.any(no_worse & better, axis=1)


def _grid_rows(table: pd.DataFrame) -> pd.DataFrame:
    def column(name: str, default: Any = np.nan) -> np.ndarray:
        return (table[name].to_numpy() if name in table.columns
                else np.full(len(table), default, dtype=object))

    return pd.DataFrame({
        "kind": "grid", "point": table["point"].to_numpy(), "points": "", "rate": np.nan,
        "mean_margin": table["mean_initial_margin"].to_numpy(np.float64),
        "breach_rate": table["margin_breach_rate"].to_numpy(np.float64),
        "peak_margin": pd.to_numeric(pd.Series(column("peak_initial_margin")),
                                     errors="coerce").to_numpy(np.float64),
        "max_jump_1d": pd.to_numeric(pd.Series(column("max_jump_1d")),
                                     errors="coerce").to_numpy(np.float64),
        "confidence": pd.to_numeric(pd.Series(column("confidence")),
                                    errors="coerce").to_numpy(np.float64),
        "configuration": column("configuration", "")})


def frontier_table(table: pd.DataFrame, flat_rates: pd.DataFrame | None) -> pd.DataFrame:
    """Every grid point and every sampled flat rate as (cost, coverage), efficient ones marked.

    Columns: ``kind`` (``grid``, ``flat rate`` or ``realisable flat rate``), ``point`` (the
    grid point; for a flat rate, the first point whose rows it was computed on), ``points``
    (for a flat rate, every point with the same curve), ``rate`` (a flat rate; for the
    realisable one, the factor on its schedule), ``mean_margin``, ``breach_rate``,
    ``peak_margin`` and ``max_jump_1d`` (the cost's peak and largest one-date rise, per-date
    means over the sets), ``confidence`` and ``configuration`` (grid points: the curve of one
    configuration as the confidence varies), ``efficient`` (no other row has both a lower or
    equal breach rate and a lower or equal mean margin, one of them strictly lower), and
    ``efficient_peak`` and ``efficient_jump`` (the same with the peak or the largest rise as
    the cost; NaN costs are never efficient there).
    """
    frames = [_grid_rows(table)]
    if flat_rates is not None and len(flat_rates):
        flat_rates = flat_rates if "kind" in flat_rates.columns else \
            flat_rates.assign(kind="flat rate")
        for kind, rules in flat_rates.groupby("kind", sort=False):
            curves: dict[bytes, list[int]] = {}
            for point, curve in rules.groupby("point", sort=True):
                key = curve[["rate", "breach_rate"]].round(12).to_numpy().tobytes()
                curves.setdefault(key, []).append(int(point))
            for points in curves.values():
                curve = rules[rules["point"] == points[0]]
                frames.append(pd.DataFrame({
                    "kind": kind, "point": points[0],
                    "points": ", ".join(map(str, points)), "rate": curve["rate"].to_numpy(),
                    "mean_margin": curve["mean_margin"].to_numpy(),
                    "breach_rate": curve["breach_rate"].to_numpy(),
                    "peak_margin": curve.get("peak_margin", pd.Series(np.nan, curve.index)
                                             ).to_numpy(np.float64),
                    "max_jump_1d": curve.get("max_jump_1d", pd.Series(np.nan, curve.index)
                                             ).to_numpy(np.float64)}))
    out = pd.concat(frames, ignore_index=True)
    rate = out["breach_rate"].to_numpy(np.float64)
    out["efficient"] = efficient(out["mean_margin"].to_numpy(), rate)
    for cost, name in (("peak_margin", "efficient_peak"), ("max_jump_1d", "efficient_jump")):
        values = out[cost].to_numpy(np.float64)
        known = np.isfinite(values)
        mask = np.zeros(len(out), dtype=bool)
        mask[known] = efficient(values[known], rate[known])
        out[name] = mask
    return out


def write_study(study: Study, out: str | Path) -> Path:
    """Write ``study.csv``, ``study.parquet``, ``frontier.csv``, ``study.png`` (the frontier),
    ``report.html`` and ``manifest.json`` atomically."""
    frontier = frontier_table(study.table, study.flat_rates)
    with staged_output(out) as staging:
        write_table(study.table, staging / "study.csv")
        write_table(study.table, staging / "study.parquet")
        write_table(frontier, staging / "frontier.csv")
        write_study_report(staging, study.table, list(study.grid), frontier, study.manifest,
                           study.notes)
        write_json(study.manifest, staging / "manifest.json")
    return Path(out)
