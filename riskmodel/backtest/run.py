"""The ``riskmodel backtest`` run: load and check the inputs, replay, summarise, write atomically.

Stages:

1. load and validate the price, instrument and (optional) position files with the engine's
   loaders (their errors exit 3);
2. resolve the backtest dates: the rows of the union calendar from ``--start`` to ``--end``,
   every ``--step``-th, less those whose ``t + h`` lies beyond the data; check that the first
   date has a full ``lookback`` window and that a ``--params`` set was estimated on data up to
   that date at the latest (usage errors, exit 2, naming the flag and value);
3. the book: the position file's netting sets, or the built-in portfolios
   (:mod:`riskmodel.backtest.portfolios`) sized at the first date's prices; each built-in
   rolling straddle is a book of its own (:class:`PreparedBacktest` in ``straddles``), with the
   factors an ``eod`` run on it would use (the underlying and its implied-vol index) and so its
   own common window, on the backtest dates from the first with a full ``lookback`` window of
   both (earlier dates are skipped for it, with a warning);
4. :func:`riskmodel.backtest.replay.replay`, once per book; the tables are concatenated
   (per date: the linear built-ins, then the straddles);
5. :func:`riskmodel.backtest.statistics.summarise` plus the run's facts;
6. :func:`write_backtest`: ``backtest.parquet``, ``backtest_summary.json``, the plots and
   ``report.html`` (:func:`riskmodel.report.backtest.write_report`) and ``manifest.json``,
   through :func:`riskmodel.io.outputs.staged_output`: nothing partial under ``--out``.

Volatility parameters (FHS and Monte Carlo): ``--params`` as given; else, with
``volatility.model = "garch"``, fitted by the injected fitter on each factor's last
``max(garch_fit_window, window + 250)`` returns before the first backtest date (the data
before ``--start``), then held fixed; else EWMA with ``ewma_lambda``. ``--recalibrate-every N``
refits on the first backtest date at least ``N`` calendar rows after the previous fit, on the
returns up to and including that date (with ``N = 1`` every date after the first is margined
with the fit a daily ``eod`` without ``--params`` would make).
"""

from __future__ import annotations

import datetime as _dt
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from riskmodel import __version__
from riskmodel.backtest.benchmarks import realisable_columns
from riskmodel.backtest.dates import (
    BacktestWindow,
    candidate_rows,
    check_params,
    first_full_window_row,
)
from riskmodel.backtest.portfolios import (
    RollingStraddle,
    builtin_portfolios,
    reference_instruments,
    straddle_underlyings,
)
from riskmodel.backtest.replay import ReplayResult, check_supported_instruments, replay
from riskmodel.backtest.statistics import summarise
from riskmodel.backtest.statistics.table import validate_backtest_table
from riskmodel.config import RunConfig
from riskmodel.engine.build import book_factors
from riskmodel.errors import InputDataError, UsageError
from riskmodel.io.instruments import Instruments, load_instruments
from riskmodel.io.outputs import staged_output, write_json, write_table
from riskmodel.io.positions import load_positions
from riskmodel.io.prices import PriceHistory, load_prices
from riskmodel.io.tables import sha256_file
from riskmodel.margin.tables import set_horizons
from riskmodel.marketdata.returns import (
    MarketData,
    Universe,
    build_market_data,
    build_universe,
    gap_warnings,
)
from riskmodel.portfolio.netting import Book, net_positions
from riskmodel.report.backtest import write_report
from riskmodel.scenarios.model import DependenceFitter, VolatilityFitter
from riskmodel.volatility.params import ParameterSet

__all__ = [
    "BacktestInputs",
    "BacktestResult",
    "BacktestWindow",
    "LoadedInputs",
    "PreparedBacktest",
    "load_inputs",
    "prepare_backtest",
    "run_backtest",
    "summarise_backtest",
    "write_backtest",
]


@dataclass(frozen=True)
class BacktestInputs:
    """Input files of a backtest (``positions`` None: the built-in portfolios)."""

    prices: Path
    instruments: Path
    positions: Path | None = None
    params: Path | None = None


@dataclass(frozen=True)
class LoadedInputs:
    """The validated input tables (loaded once; a parameter study reuses them)."""

    inputs: BacktestInputs
    history: PriceHistory
    instruments: Instruments
    positions: pd.DataFrame | None


@dataclass(frozen=True)
class PreparedBacktest:
    """What the replay needs: aligned market data, the book, the dates.

    ``straddles``: the built-in rolling straddles, one prepared book each (``roll`` set, its
    own market data and dates, no ``straddles`` of its own); ``notes``: warnings of the
    preparation (straddles left out or starting late).
    """

    market: MarketData
    book: Book
    used: pd.DataFrame
    rows: np.ndarray
    builtin: bool
    horizons: np.ndarray
    universe: Universe | None = None  # every asset of the price file: stress windows, proxies
    roll: RollingStraddle | None = None
    straddles: tuple[PreparedBacktest, ...] = ()
    notes: tuple[str, ...] = ()

    @property
    def n_sets(self) -> int:
        """Netting sets of this book and its straddles."""
        return self.book.n_sets + sum(p.book.n_sets for p in self.straddles)


@dataclass
class BacktestResult:
    """A finished backtest: the table, its summary and the manifest."""

    backtest: pd.DataFrame
    summary: dict[str, Any]
    manifest: dict[str, Any]
    replay: ReplayResult | None = field(default=None, repr=False)


def load_inputs(inputs: BacktestInputs, config: RunConfig) -> LoadedInputs:
    """Read and validate the input files (errors: :class:`InputDataError`, exit 3)."""
    history = load_prices(inputs.prices, config.return_kind)
    instruments = load_instruments(inputs.instruments, history.assets)
    positions = None
    if inputs.positions is not None:
        positions = load_positions(inputs.positions, instruments.frame["instrument_id"]).frame
    return LoadedInputs(inputs, history, instruments, positions)


def prepare_backtest(
    loaded: LoadedInputs,
    config: RunConfig,
    window: BacktestWindow,
    params: ParameterSet | None = None,
) -> PreparedBacktest:
    """Resolve dates, check them against the data and build the book (see module docstring)."""
    if config.lookback < config.min_history:
        raise UsageError(f"--lookback = {config.lookback} is below min_history = "
                         f"{config.min_history}: every window would be rejected; lower "
                         "min_history in the config")
    window.refit_every(config)  # a schedule with nothing to refit is a usage error
    instruments = loaded.instruments.frame
    positions = loaded.positions
    if positions is not None:
        used_ids = pd.Index(sorted(set(positions["instrument_id"])))
    else:
        reference = reference_instruments(instruments)
        if reference.empty:
            raise InputDataError(f"{loaded.inputs.instruments}: no spot, future, perpetual or "
                                 "inverse instrument to build the built-in portfolios from")
        used_ids = pd.Index(sorted(reference["instrument_id"]))
    used = instruments.set_index("instrument_id", drop=False).loc[used_ids]
    history = loaded.history
    notes: list[str] = []
    # the book's factors and its options' implied-vol indices, as eod prices them
    factors = book_factors(used, config, set(history.assets), notes)
    market = build_market_data(history, factors, history.frame.index[-1], config.return_kind,
                               config.price_gaps)
    notes += gap_warnings(history, market.carried, config.price_gaps)
    dates = market.prices.index

    candidates = candidate_rows(market.returns, dates, config, window, factors)
    first = dates[candidates[0]]
    builtin = positions is None
    pairs = (straddle_underlyings(instruments, config.implied_vol.factors, history.assets,
                                  config.return_kind, notes) if builtin else [])
    if params is not None and config.method != "hs":
        for u, iv in list(pairs):
            if iv not in params.factors:
                notes.append(f"built-in portfolios: no straddle_{u}: the parameter set "
                             f"{params.source} has no entry for its implied-vol index {iv!r}")
                pairs.remove((u, iv))
    if params is not None:
        checked = sorted(set(factors) | {iv for _, iv in pairs})
        check_params(params, checked if config.method != "hs" else [], first, window.start)

    if builtin:
        positions = builtin_portfolios(instruments, market.prices.iloc[int(candidates[0])])
    book = net_positions(positions, used_ids)
    if book.n_sets == 0:
        raise InputDataError(f"{loaded.inputs.positions}: no non-zero position after netting")
    horizons = set_horizons(book, used, config)
    rows = candidates[candidates + int(horizons.min()) <= len(dates) - 1]
    if rows.size == 0:
        raise UsageError(
            f"--end {window.end or dates[-1].date().isoformat()}: no backtest date has its "
            f"{int(horizons.min())}-day realised loss in the data (the data ends "
            f"{dates[-1].isoformat()})")
    # a static option must live through the last t + h it is valued at
    check_supported_instruments(used, last_valuation=dates[min(
        int(rows[-1]) + int(horizons.max()), len(dates) - 1)])
    straddles = tuple(p for p in (_prepare_straddle(history, config, u, iv, candidates, notes)
                                  for u, iv in pairs) if p is not None)
    universe = build_universe(history, dates[-1], config.return_kind)
    return PreparedBacktest(market, book, used, rows, builtin, horizons, universe=universe,
                            straddles=straddles, notes=tuple(notes))


def _prepare_straddle(history: PriceHistory, config: RunConfig, underlying: str,
                      iv_factor: str, candidates: np.ndarray, notes: list[str]
                      ) -> PreparedBacktest | None:
    """The book of one built-in rolling straddle on the backtest dates ``candidates`` (calendar
    rows; the calendar is the price file's, whatever the factors): the market data of the
    underlying and its index, the dates from the first with a full ``lookback`` window of both
    and a realised loss in the data, each leg of unit notional at the first of them. None (with
    a note) when no date qualifies."""
    name = f"straddle_{underlying}"
    market = build_market_data(history, [underlying, iv_factor], history.frame.index[-1],
                               config.return_kind, config.price_gaps)
    dates = market.prices.index
    template = RollingStraddle(underlying, iv_factor, quantity=1.0)
    used = template.instruments()
    horizons = set_horizons(net_positions(template.positions(), used.index), used, config)
    horizon = int(horizons.max())
    earliest = first_full_window_row(market.returns, config.lookback)
    rows = candidates[(candidates >= (earliest if earliest is not None else len(dates)))
                      & (candidates + horizon <= len(dates) - 1)]
    if rows.size == 0:
        notes.append(f"built-in portfolios: no {name}: no backtest date has {config.lookback} "
                     f"daily returns common to {underlying!r} and its implied-vol index "
                     f"{iv_factor!r} and a realised loss in the data")
        return None
    if rows[0] > candidates[0]:
        notes.append(f"built-in portfolios: {name} starts on {dates[int(rows[0])].isoformat()}, "
                     f"the first backtest date with {config.lookback} daily returns common to "
                     f"{underlying!r} and its implied-vol index {iv_factor!r}")
    # a full window of log returns: the price at its end is positive
    price = float(market.prices[underlying].iat[int(rows[0])])
    roll = replace(template, quantity=1.0 / price)
    book = net_positions(roll.positions(), used.index)
    return PreparedBacktest(market, book, used, rows, True, horizons, roll=roll)


def _non_overlapping(frame: pd.DataFrame, horizons: dict[tuple[str, str], int], step: int,
                     confidence: float, n_sim: int, seed: int) -> dict[str, Any] | None:
    """Pooled statistics on every ``ceil(h / step)``-th date of each set (independent windows)."""
    spacing = {k: math.ceil(h / step) for k, h in horizons.items()}
    if max(spacing.values()) <= 1:
        return None
    order = {d: i for i, d in enumerate(np.sort(frame["date"].unique()))}
    position = frame["date"].map(order).to_numpy()
    every = np.array([spacing[(str(a), str(s))] for a, s in
                      zip(frame["account_id"], frame["netting_set"])])
    sub = frame[position % every == 0]
    return {
        "note": "hits of overlapping h-day loss windows are serially correlated even under a "
                "correct model; these statistics keep every ceil(h / step)-th date of each "
                "netting set, whose loss windows do not overlap",
        "every_nth_date": {f"{a}/{s}": n for (a, s), n in spacing.items()},
        "pooled": summarise(sub, confidence, n_sim=n_sim, seed=seed)["pooled"],
    }


def summarise_backtest(
    result: ReplayResult,
    config: RunConfig,
    window: BacktestWindow,
    *,
    n_sim: int = 2_000,
    facts: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """``backtest_summary.json``: run facts, :func:`summarise` and, when the loss windows of
    consecutive dates overlap, the pooled statistics on non-overlapping dates."""
    frame = result.backtest
    stats = summarise(frame, config.confidence, n_sim=n_sim, seed=config.seed)
    dates = frame["date"]
    run: dict[str, Any] = {
        "method": config.method,
        "measure": config.measure,
        "confidence": config.confidence,
        "horizon": config.horizon,
        "horizons_days": sorted(set(result.horizons.values())),
        "lookback": config.lookback,
        "start": pd.Timestamp(dates.min()).isoformat(),
        "end": pd.Timestamp(dates.max()).isoformat(),
        "n_dates": int(dates.nunique()),
        "n_portfolios": len(result.horizons),
        "n_rows": len(frame),
        "step": window.step,
        "recalibrate_every": window.refit_every(config),
        "volatility_model": None if config.method == "hs" else config.vol_model,
        "ewma_lambda": config.ewma_lambda,
        "anti_procyclicality_tools": list(config.anti_procyclicality.tools),
        **(facts or {}),
    }
    out: dict[str, Any] = {"run": run, **stats}
    overlap = _non_overlapping(frame, result.horizons, window.step, config.confidence, n_sim,
                               config.seed)
    if overlap is not None:
        out["non_overlapping"] = overlap
    out["volatility"] = {"recalibrate_every": window.refit_every(config),
                         "fits": [{"date": f["date"], "source": f["source"]}
                                  for f in result.info["volatility"]],
                         "fallbacks": result.info.get("volatility_fallbacks", [])}
    out["anti_procyclicality"] = result.info["anti_procyclicality"]
    out["stress"] = result.info.get("stress", {})
    if "realisable_flat_rate" in result.info:  # the benchmark's definition (benchmarks.py)
        out["benchmarks"] = {"realisable_flat_rate": result.info["realisable_flat_rate"]}
    out["warnings"] = result.info["warnings"]
    return out


def run_backtest(
    inputs: BacktestInputs,
    config: RunConfig,
    window: BacktestWindow,
    *,
    params: ParameterSet | None = None,
    fitter: VolatilityFitter | None = None,
    dependence_fitter: DependenceFitter | None = None,
    progress: Callable[[int, int], None] | None = None,
    config_source: dict[str, Any] | None = None,
    loaded: LoadedInputs | None = None,
    n_sim: int = 2_000,
) -> BacktestResult:
    """Run a backtest in memory (see the module docstring); :func:`write_backtest` writes it.

    Parameters
    ----------
    inputs : BacktestInputs, the files (hashed into the manifest).
    config : RunConfig.
    window : BacktestWindow, dates, step and refit schedule.
    params : ParameterSet, optional (``--params``).
    fitter, dependence_fitter : the injected estimators (the CLI passes calibration's).
    progress : ``progress(done, total)`` over dates, optional.
    config_source : the raw TOML and overrides (``load_config_source``), for the manifest.
    loaded : LoadedInputs, optional; inputs already loaded (parameter studies).
    n_sim : int, simulated paths of the Z2 p-value (0: none).

    Returns
    -------
    BacktestResult
    """
    timings: dict[str, float] = {}
    clock = time.perf_counter()
    if loaded is None:
        loaded = load_inputs(inputs, config)
    timings["load"] = round(time.perf_counter() - clock, 4)
    clock = time.perf_counter()
    prepared = prepare_backtest(loaded, config, window, params)
    timings["prepare"] = round(time.perf_counter() - clock, 4)
    if params is not None and config.method == "hs":
        note = "--params is not used by method 'hs' (no volatility filter)"
    else:
        note = None
    books = (prepared, *prepared.straddles)
    total = sum(int(p.rows.size) for p in books)
    results: list[ReplayResult] = []
    done = 0
    for part in books:
        def step(k: int, _n: int, offset: int = done) -> None:
            if progress is not None:
                progress(offset + k, total)

        results.append(replay(part.market, part.book, part.used, config, part.rows,
                              params=params, recalibrate_every=window.refit_every(config),
                              fitter=fitter, dependence_fitter=dependence_fitter,
                              progress=step if progress is not None else None, roll=part.roll,
                              universe=prepared.universe))
        done += int(part.rows.size)
    result = _merge_replays(results, [p.book.sets["netting_set"].tolist() for p in books])
    # the flat rate a venue could have run, from the history it had at each date
    clock = time.perf_counter()
    result.backtest, result.info["realisable_flat_rate"] = realisable_columns(
        result.backtest, list(books), result.horizons, config, step=window.step)
    timings["benchmark"] = round(time.perf_counter() - clock, 4)
    result.info["warnings"].extend(prepared.notes)
    if note:
        result.info["warnings"].append(note)
    timings.update({f"replay_{k}": v for k, v in result.info["timings_s"].items()})
    clock = time.perf_counter()
    facts = {"portfolios": "built-in" if prepared.builtin else "positions file",
             "parameter_set": params.id if params is not None else None}
    summary = summarise_backtest(result, config, window, n_sim=n_sim, facts=facts)
    timings["summary"] = round(time.perf_counter() - clock, 4)
    summary["run"]["timings_s"] = timings
    manifest = _manifest(inputs, config, config_source, window, prepared, params, result,
                         timings)
    return BacktestResult(result.backtest, summary, manifest, result)


def _merge_replays(results: list[ReplayResult], names: list[list[str]]) -> ReplayResult:
    """One result from the replays of several books (the linear built-ins or the positions
    file's book first, then each straddle): rows ordered by date, the first book's sets first
    on each date; volatility fits of the later books labelled with their netting sets; the
    anti-procyclicality row counts and the timings summed; warnings in order, once each."""
    if len(results) == 1:
        return results[0]
    frame = pd.concat([r.backtest for r in results], ignore_index=True)
    frame = frame.sort_values("date", kind="stable").reset_index(drop=True)
    horizons: dict[tuple[str, str], int] = {}
    timings: dict[str, float] = {}
    volatility: list[dict[str, Any]] = []
    apc: dict[str, Any] = {}
    warnings: list[str] = []
    fallbacks: list[dict[str, Any]] = []
    stress = dict(results[0].info["stress"])
    for k, r in enumerate(results):
        horizons.update(r.horizons)
        fallbacks += [f if k == 0 else {"netting_sets": names[k], **f}
                      for f in r.info["volatility_fallbacks"]]
        if k:
            stress["bound_rows"] += r.info["stress"]["bound_rows"]
        for key, value in r.info["timings_s"].items():
            timings[key] = round(timings.get(key, 0.0) + value, 4)
        volatility += [fit if k == 0 else {"netting_sets": names[k], **fit}
                       for fit in r.info["volatility"]]
        for tool, facts in r.info["anti_procyclicality"].items():
            if not isinstance(facts, dict) or tool not in apc:
                apc.setdefault(tool, facts)
                continue
            apc[tool] = {key: (value + facts[key] if key.endswith("_rows") else value)
                         for key, value in apc[tool].items()}
        warnings += r.info["warnings"]
    info = {**results[0].info, "volatility": volatility, "volatility_fallbacks": fallbacks,
            "stress": stress, "anti_procyclicality": apc,
            "timings_s": timings, "warnings": list(dict.fromkeys(warnings))}
    return ReplayResult(frame, horizons, info)


def _manifest(
    inputs: BacktestInputs,
    config: RunConfig,
    config_source: dict[str, Any] | None,
    window: BacktestWindow,
    prepared: PreparedBacktest,
    params: ParameterSet | None,
    result: ReplayResult,
    timings: dict[str, float],
) -> dict[str, Any]:
    files: dict[str, Path] = {"prices": inputs.prices, "instruments": inputs.instruments}
    if inputs.positions is not None:
        files["positions"] = inputs.positions
    if inputs.params is not None:
        files["params"] = inputs.params
    if config_source and config_source.get("source") not in (None, "defaults"):
        source = Path(str(config_source["source"]))
        if source.is_file():
            files["config"] = source
    dates = prepared.market.prices.index[prepared.rows]
    frame = result.backtest
    return {
        "riskmodel_version": __version__,
        "command": "backtest",
        "created_at": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "config": config.to_dict(),
        "config_sha256": config.digest(),
        "config_source": config_source,
        "inputs": {k: {"path": str(v), "sha256": sha256_file(v)} for k, v in files.items()},
        "parameter_set": ({"id": params.id, "source": params.source,
                           "created_at": params.created_at} if params is not None else None),
        "seed": config.seed,
        "window": {
            "start_flag": window.start, "end_flag": window.end, "step": window.step,
            "recalibrate_every": window.refit_every(config),
            "first_date": dates[0].isoformat(), "last_date": dates[-1].isoformat(),
            "dates_evaluated": int(len(dates)),
            "last_price_date": prepared.market.prices.index[-1].isoformat(),
        },
        "portfolios": "built-in" if prepared.builtin else "positions file",
        "counts": {"netting_sets": prepared.n_sets, "rows": len(frame),
                   "dates": int(frame["date"].nunique())},
        "calendar": {
            "rule": "union of all dates; last price carried over closed dates; "
            "no backfill before listing",
            "carried_prices": prepared.market.carried,
            "return_kinds": prepared.market.return_kinds,
        },
        "volatility": result.info["volatility"],
        "stress": result.info.get("stress", {}),
        "anti_procyclicality": result.info["anti_procyclicality"],
        "timings_s": timings,
        "warnings": result.info["warnings"],
    }


def write_backtest(result: BacktestResult, out: str | Path, *, report: bool = True) -> Path:
    """Write ``backtest.parquet``, ``backtest_summary.json``, plots, ``report.html`` and
    ``manifest.json`` under ``out``, atomically (nothing partial on failure)."""
    start = time.perf_counter()
    with staged_output(out) as staging:
        write_table(result.backtest, staging / "backtest.parquet")
        write_json(result.summary, staging / "backtest_summary.json")
        if report:
            write_report(validate_backtest_table(result.backtest), result.summary, staging)
        result.manifest["timings_s"]["write"] = round(time.perf_counter() - start, 4)
        write_json(result.manifest, staging / "manifest.json")
    return Path(out)
