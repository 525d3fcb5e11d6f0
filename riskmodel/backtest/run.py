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
   ``report.html`` (:func:`riskmodel.backtest.report.write_report`) and ``manifest.json``,
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
from riskmodel.backtest.portfolios import (
    RollingStraddle,
    builtin_portfolios,
    reference_instruments,
    straddle_underlyings,
)
from riskmodel.backtest.replay import (
    ReplayResult,
    check_supported,
    check_supported_instruments,
    replay,
)
from riskmodel.report.backtest import write_report
from riskmodel.backtest.statistics import summarise
from riskmodel.batch.model_scenarios import DependenceFitter, VolatilityFitter
from riskmodel.config import RunConfig
from riskmodel.errors import InputDataError, UsageError
from riskmodel.io.instruments import Instruments, load_instruments
from riskmodel.io.outputs import staged_output, write_json, write_table
from riskmodel.io.positions import load_positions
from riskmodel.io.prices import PriceHistory, load_prices
from riskmodel.io.tables import sha256_file
from riskmodel.margin.tables import set_horizons
from riskmodel.marketdata.returns import MarketData, build_market_data, iso_span
from riskmodel.portfolio.netting import Book, net_positions
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
class BacktestWindow:
    """Which dates to evaluate and when to refit.

    Attributes
    ----------
    start, end : str or None, ISO 8601 dates (``--start``, ``--end``); a date without a time
        means the whole day. Default: the first date with a full ``lookback`` window, the last
        date of the data.
    step : int, evaluate every ``step``-th calendar row (>= 1).
    recalibrate_every : int or None, refit every this many calendar rows (>= 1).
    """

    start: str | None = None
    end: str | None = None
    step: int = 1
    recalibrate_every: int | None = None

    def __post_init__(self) -> None:
        if isinstance(self.step, bool) or not isinstance(self.step, int) or self.step < 1:
            raise UsageError(f"--step = {self.step!r} must be an integer >= 1")
        n = self.recalibrate_every
        if n is not None and (isinstance(n, bool) or not isinstance(n, int) or n < 1):
            raise UsageError(f"--recalibrate-every = {n!r} must be an integer >= 1")


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


def _parse_date(flag: str, text: str) -> tuple[pd.Timestamp, pd.Timestamp]:
    """``(first instant, last instant)`` a date flag covers: a bare date is the whole day."""
    span = iso_span(text)
    if span is None:
        raise UsageError(f"{flag} {text!r}: unparsable date (expected ISO 8601, e.g. 2020-01-31)")
    return span


def _first_full_window_row(returns: pd.DataFrame, lookback: int) -> int | None:
    """First calendar row whose common window holds ``lookback`` returns (None: never)."""
    valid = returns.notna().all(axis=1).to_numpy()
    if not valid.any():
        return None
    row = int(np.argmax(valid)) + lookback  # returns row j is calendar row j + 1
    return row if row < len(returns) + 1 else None


def _check_params(params: ParameterSet, factors: list[str], first: pd.Timestamp,
                  flag_start: str | None) -> None:
    """A parameter set must be estimated on data up to the first backtest date at the latest."""
    where = f"--start {flag_start}" if flag_start else "the first backtest date"
    ends: list[tuple[str, str]] = []
    if params.data.get("end"):
        ends.append(("its data", str(params.data["end"])))
    ends += [(f"factor {f!r}", fp.sample_end) for f, fp in sorted(params.factors.items())
             if f in factors and fp.sample_end]
    for what, end in ends:
        try:
            stamp = pd.Timestamp(end)
        except ValueError:
            raise InputDataError(f"{params.source}: {what}: unparsable sample end "
                                 f"(value {end!r})") from None
        if stamp.tzinfo is not None:
            stamp = stamp.tz_convert("UTC").tz_localize(None)
        if stamp > first:
            raise UsageError(
                f"--params {params.source}: {what} was estimated on data up to "
                f"{stamp.isoformat()}, after the first backtest date {first.isoformat()} "
                f"({where}): that is look-ahead; calibrate with --end on or before the start "
                f"(value {end!r})"
            )
    missing = [f for f in factors if f not in params.factors]
    if missing:
        raise InputDataError(
            f"{params.source}: parameter set has no entry for factor {missing[0]!r} "
            f"(has: {', '.join(sorted(params.factors))}) (value {missing[0]!r})"
        )


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
    if window.recalibrate_every is not None:
        if config.method == "hs":
            raise UsageError(f"--recalibrate-every {window.recalibrate_every}: method 'hs' "
                             "filters no volatility, there is nothing to refit")
        if config.vol_model != "garch":
            raise UsageError(f"--recalibrate-every {window.recalibrate_every}: refits GARCH "
                             f"parameters, but volatility.model = {config.vol_model!r}")
    check_supported(config)
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
    check_supported_instruments(used)
    factors = sorted(set(used["factor"]))
    history = loaded.history
    market = build_market_data(history, factors, history.frame.index[-1], config.return_kind)
    dates = market.prices.index

    earliest = _first_full_window_row(market.returns, config.lookback)
    if earliest is None:
        raise UsageError(
            f"--lookback {config.lookback}: the price file never has {config.lookback} daily "
            f"returns common to the factors in use ({', '.join(factors)})")
    first_row, last_row = earliest, len(dates) - 1
    if window.start is not None:
        start, _ = _parse_date("--start", window.start)
        if window.end is not None:
            end_first, _ = _parse_date("--end", window.end)
            if start > end_first:
                raise UsageError(f"--start {window.start} is after --end {window.end}")
        if start > dates[-1]:
            raise UsageError(f"--start {window.start}: after the last date of the data "
                             f"({dates[-1].isoformat()})")
        first_row = int(np.count_nonzero(dates < start))  # sorted: first date >= start
        if first_row < earliest:
            raise UsageError(
                f"--start {window.start}: too little history before it for --lookback "
                f"{config.lookback}: the first date with {config.lookback} daily returns "
                f"common to all factors in use is {dates[earliest].date().isoformat()} "
                f"(start there or later, or lower the lookback)")
    if window.end is not None:
        _, end_last = _parse_date("--end", window.end)
        if end_last < dates[0]:
            raise UsageError(f"--end {window.end}: before the first date of the data "
                             f"({dates[0].isoformat()})")
        last_row = int(np.count_nonzero(dates <= end_last)) - 1
        if last_row < first_row:
            raise UsageError(
                f"--end {window.end}: no date of the data between "
                f"{dates[first_row].isoformat()} and it"
                + ("" if window.start else f" (the first date with a full --lookback "
                   f"{config.lookback} window)"))
    candidates = np.arange(first_row, last_row + 1, window.step, dtype=np.int64)
    first = dates[candidates[0]]
    builtin = positions is None
    notes: list[str] = []
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
        _check_params(params, checked if config.method != "hs" else [], first, window.start)

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
    straddles = tuple(p for p in (_prepare_straddle(history, config, u, iv, candidates, notes)
                                  for u, iv in pairs) if p is not None)
    return PreparedBacktest(market, book, used, rows, builtin, horizons,
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
                               config.return_kind)
    dates = market.prices.index
    template = RollingStraddle(underlying, iv_factor, quantity=1.0)
    used = template.instruments()
    horizons = set_horizons(net_positions(template.positions(), used.index), used, config)
    horizon = int(horizons.max())
    earliest = _first_full_window_row(market.returns, config.lookback)
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
        "recalibrate_every": window.recalibrate_every,
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
    out["anti_procyclicality"] = result.info["anti_procyclicality"]
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
                              params=params, recalibrate_every=window.recalibrate_every,
                              fitter=fitter, dependence_fitter=dependence_fitter,
                              progress=step if progress is not None else None, roll=part.roll))
        done += int(part.rows.size)
    result = _merge_replays(results, [p.book.sets["netting_set"].tolist() for p in books])
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
    for k, r in enumerate(results):
        horizons.update(r.horizons)
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
    info = {**results[0].info, "volatility": volatility, "anti_procyclicality": apc,
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
            "recalibrate_every": window.recalibrate_every,
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
        "stress": "not in the margin base (stress windows may lie after the backtest date)",
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
            write_report(result.backtest, result.summary, staging)
        result.manifest["timings_s"]["write"] = round(time.perf_counter() - start, 4)
        write_json(result.manifest, staging / "manifest.json")
    return Path(out)
