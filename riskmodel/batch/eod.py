"""The end-of-day margin run: inputs -> priced market -> the engine over every netting set.

Stages and what each one guarantees:

1. load and validate every input (errors name file, row or date, column and value);
2. net positions into a sparse netting-set x instrument book;
3. align the used factors' prices (calendar rule in :mod:`riskmodel.marketdata.returns`) and
   filter their volatility with fixed parameters (from ``--params``, or fitted by the caller);
4. price the market (:func:`riskmodel.engine.price_market`): per margin period of risk, the
   scenario set (HS, FHS or Monte Carlo), each unique instrument repriced once per scenario,
   the stress scenarios and the anti-procyclicality floor's;
5. the engine over the book, partition by partition (:mod:`riskmodel.batch.partitions`,
   :func:`riskmodel.engine.margin_book`): tail measures, stress, anti-procyclicality, add-ons,
   policy, status;
6. partial liquidation of the sets in ``liquidation``: orders and ``liquidation_penalty``
   (:mod:`riskmodel.batch.liquidation_stage`, every step through the engine again).

Nothing is written under ``--out`` here: :func:`write_eod` writes a finished result atomically.
With a work folder (the CLI's), the partitions' parts go there, and so do the attribution and
the priced market once the book is margined, in a thread while the liquidation stage runs
(:mod:`riskmodel.batch.background_writes`); :func:`write_eod` adds the margin tables, the
factors and the orders to that thread while it draws the page, then moves them all in.
"""

from __future__ import annotations

import dataclasses
import shutil
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numba
import numpy as np
import pandas as pd

from riskmodel import __version__
from riskmodel.batch.accounts import (
    collateral_only,
    expired_holdings,
    uncovered,
    without_faulty,
)
from riskmodel.batch.apc_stage import read_previous_run, stressed_info
from riskmodel.batch.background_writes import BackgroundWrites
from riskmodel.batch.collateral import collateral_equity, with_collateral_holdings
from riskmodel.batch.compile_notice import CompileNotice
from riskmodel.batch.liquidation_stage import liquidation_stage
from riskmodel.batch.manifest import eod_manifest
from riskmodel.batch.partitions import (
    BookInputs,
    EngineOptions,
    PartFiles,
    PartitionResult,
    fingerprint,
    keep_parts,
    run_partitions,
)
from riskmodel.config import RunConfig
from riskmodel.engine import PricedMarket, price_market
from riskmodel.engine.build import PricingFacts, book_factors, value_as_of
from riskmodel.engine.store import (
    STATE_DIR,
    StoredRun,
    instrument_table,
    priced_rows,
    unpriced_factors,
    write_run,
)
from riskmodel.errors import InputDataError
from riskmodel.io.faults import AccountFaults
from riskmodel.io.instruments import Instruments, load_instruments
from riskmodel.io.outputs import staged_output, write_json, write_table
from riskmodel.io.positions import (
    Accounts,
    Positions,
    id_codes,
    load_accounts,
    load_positions,
)
from riskmodel.io.prices import PriceHistory, load_prices
from riskmodel.io.tables import sha256_file
from riskmodel.liquidation.partial import liquidated_statuses
from riskmodel.margin.policy import margin_base
from riskmodel.margin.tables import check_finite, set_horizons
from riskmodel.portfolio.collateral import CollateralTable, previous_margins
from riskmodel.portfolio.netting import Book, net_positions, with_empty_sets
from riskmodel.scenarios.model import (
    DependenceFitter,
    VolatilityFitter,
)
from riskmodel.scenarios.scenario_set import ScenarioSet
from riskmodel.volatility.params import ParameterSet

FACTOR_COLUMNS = ["asset", "price", "vol_model", "sigma_1d"]


@dataclass(frozen=True)
class EodInputs:
    prices: Path
    instruments: Path
    positions: Path
    accounts: Path
    params: Path | None = None


@dataclass
class EodResult:
    """A finished run: the output tables, the manifest, the model scenarios of the default
    horizon, the priced market stored under ``state/`` (:mod:`riskmodel.engine.store`) and the
    partial-liquidation orders (``liquidation_orders.parquet``)."""

    margins: pd.DataFrame
    # with a work folder, the attribution stays in its per-partition files until written
    attribution_table: pd.DataFrame | PartFiles
    factors: pd.DataFrame
    manifest: dict[str, Any]
    scenarios: ScenarioSet
    state: StoredRun | None = None
    config_source: dict[str, Any] | None = None
    liquidation_orders: pd.DataFrame | None = None
    engine: EngineOptions | None = None
    partitions: int = 1
    # the state and the attribution, when run_eod started writing them into the work folder
    early_writes: BackgroundWrites | None = None
    # --previous-run: the report compares against it
    previous_run: Path | None = None

    @property
    def attribution(self) -> pd.DataFrame:
        """The attribution table (read back from the work folder's parts when it is there:
        before :func:`write_eod`, which removes the folder)."""
        table = self.attribution_table
        return table.read() if isinstance(table, PartFiles) else table


@dataclass
class _Timer:
    stages: dict[str, float] = field(default_factory=dict)

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        start = time.perf_counter()
        yield
        self.stages[name] = round(time.perf_counter() - start, 4)


@dataclass
class _Loaded:
    """The validated inputs: prices, instruments (with coin collateral as instruments), the
    position rows (with coin holdings) and the accounts."""

    history: PriceHistory
    instruments: Instruments
    positions: Positions
    accounts: Accounts
    faults: AccountFaults | None  # with [run] on_account_error = "skip"


@dataclass
class _Netted:
    """The netted book on the run's instrument axis (every instrument on a factor the run
    prices, file order), those instruments indexed by id, the book's own instrument ids and the
    scenario factors."""

    book: Book
    used: pd.DataFrame
    held: pd.Index
    factors: list[str]


def run_eod(
    inputs: EodInputs,
    config: RunConfig,
    *,
    as_of: str | None = None,
    params: ParameterSet | None = None,
    fitter: VolatilityFitter | None = None,
    dependence_fitter: DependenceFitter | None = None,
    progress: Callable[[int, int], None] | None = None,
    config_source: dict[str, Any] | None = None,
    previous_run: str | Path | None = None,
    engine: EngineOptions | None = None,
) -> EodResult:
    """Run the end-of-day margin computation; see the module docstring for the stages.

    ``config_source`` (``raw`` TOML mapping, ``overrides``, ``source``, as returned by
    :func:`riskmodel.engine.store.load_config_source`) is stored with the priced market so that
    what-if rebuilds exactly ``config``; without it the state is still written but cannot be
    loaded. ``previous_run``: a previous run's output folder, whose model margins the
    anti-procyclicality buffer compares against. ``engine``: how the book stage runs
    (partitions, local or Dask, work folder and resume; :mod:`riskmodel.batch.partitions`).
    A first run that compiles the numerical kernels says so on standard error
    (:class:`~riskmodel.batch.compile_notice.CompileNotice`).
    """
    with CompileNotice():
        return _run_eod(inputs, config, as_of, params, fitter, dependence_fitter, progress,
                        config_source, previous_run, engine)


def _run_eod(inputs: EodInputs, config: RunConfig, as_of: str | None,
             params: ParameterSet | None, fitter: VolatilityFitter | None,
             dependence_fitter: DependenceFitter | None,
             progress: Callable[[int, int], None] | None, config_source: dict[str, Any] | None,
             previous_run: str | Path | None, engine: EngineOptions | None) -> EodResult:
    """:func:`run_eod` (same arguments)."""
    timer = _Timer()
    warnings: list[str] = []
    with timer.stage("load"):
        loaded = _load(inputs, config)
    with timer.stage("netting"):
        netted = _net(loaded, inputs, config, warnings)
    valuation = value_as_of(loaded.history, netted.factors, as_of, config, params=params,
                            fitter=fitter, warnings=warnings, stage=timer.stage)
    # an option held must not have expired by the market date (or its holders are left out)
    expired_holdings(netted.book, loaded.instruments, valuation.market.market_date,
                     netted.used.index, loaded.faults)
    netted.book = without_faulty(netted.book, loaded.faults)
    filtered = valuation.filtered
    accounts = CollateralTable(
        collateral_equity(loaded.accounts, valuation.market.spot, config)[
            ["account_id", "netting_set", "collateral", "account_type"]].copy())
    horizon_counts = _horizon_counts(
        set_horizons(netted.book, netted.used, config, accounts.account_types))
    table = instrument_table(loaded.instruments.frame, netted.factors, valuation.market.spot)
    market, facts = price_market(
        valuation.market, priced_rows(table), netted.factors, valuation.window,
        valuation.long_window, filtered, valuation.universe, config, sorted(horizon_counts),
        params=params, dependence_fitter=dependence_fitter, unpriced=unpriced_factors(table),
        stage=timer.stage)
    warnings += facts.warnings
    warnings += list(dict.fromkeys(facts.stress.get("notes", [])))
    previous = read_previous_run(previous_run) if previous_run is not None else None
    state = StoredRun(market, table, accounts.table, config_source or {}, config.digest(),
                      previous)
    options = engine or EngineOptions()
    if options.partition_size is None:
        options = dataclasses.replace(options, partition_size=config.partition_size)
    with timer.stage("margin"):
        parts = run_partitions(
            market, config, netted.book,
            BookInputs(accounts.of_sets(netted.book.sets),
                       previous_margins(previous, netted.book.sets), accounts.account_types),
            options, _fingerprint(inputs, config, as_of, previous_run, options),
            progress=progress, flag_statuses=liquidated_statuses(config))
    with parts.settled_on_error():  # the last partition's parts may still be being written
        market.drop_screens()  # the coarse copies of the P&L served the partitions only
        check_finite(parts.margins)
        # the netted book (ten million positions at venue size): the liquidation stage and
        # the writes that run beside it need only the tables
        del netted
        # the manifest's scenario set: the default horizon's, else the shortest the book needs
        scenarios = facts.scenarios[config.horizon if config.horizon in facts.scenarios
                                    else min(facts.scenarios)]
        manifest = eod_manifest(_input_files(inputs), config, as_of, valuation.market,
                                valuation.window, scenarios, params, filtered, parts.margins,
                                timer.stages, warnings)
        _stage_facts(manifest, config, facts, parts, horizon_counts, options, market)
        if loaded.faults is not None:
            _skipped(manifest, loaded.faults)
        previous_folder = Path(previous_run) if previous_run is not None else None
        result = EodResult(parts.margins, parts.attribution, _factors_out(market, filtered),
                           manifest, scenarios, state, config_source, None, options,
                           parts.partitions, previous_run=previous_folder)
        _liquidate(result, parts, config, timer)
    return result


def _load(inputs: EodInputs, config: RunConfig) -> _Loaded:
    faults = AccountFaults() if config.on_account_error == "skip" else None
    history = load_prices(inputs.prices, config.return_kind)
    instruments = load_instruments(inputs.instruments, history.assets)
    positions = load_positions(inputs.positions, instruments.frame["instrument_id"], faults)
    accounts = load_accounts(inputs.accounts, config.collateral.reporting_currency, faults)
    # coins held as collateral join the book as positions that are never traded, so every
    # scenario revalues them with everything else (wrong-way risk)
    instruments, positions = with_collateral_holdings(instruments, positions, accounts,
                                                      set(history.assets), config, faults)
    if faults is not None and len(faults):  # a bad row in one file leaves the account out
        positions = dataclasses.replace(positions, frame=positions.frame[
            ~faults.mask(positions.frame["account_id"])])
        accounts = dataclasses.replace(accounts, frame=accounts.frame[
            ~faults.mask(accounts.frame["account_id"])].reset_index(drop=True))
    return _Loaded(history, instruments, positions, accounts, faults)


def _net(loaded: _Loaded, inputs: EodInputs, config: RunConfig, warnings: list[str]
         ) -> _Netted:
    """The netted book, re-indexed onto the run's instrument axis: what-if trades may open
    positions in any instrument on a factor the run prices, so those are all priced (file
    order) and the book's rows are taken out of that matrix. Accounts that hold only
    collateral join it as sets without positions."""
    frame = loaded.instruments.frame
    rows = loaded.positions.frame
    codes, names = id_codes(rows["instrument_id"])
    held = pd.Index(np.sort(names[np.bincount(codes, minlength=len(names)) > 0]))
    book = net_positions(rows, held)
    uncovered(book, loaded.positions, loaded.accounts, loaded.faults)
    book = without_faulty(book, loaded.faults)
    # the rows as read, and the file's table behind them (ten million rows at venue size): the
    # book replaces them; empty copies, as a slice would keep its parent's memory alive
    table = loaded.positions.table
    loaded.positions = dataclasses.replace(
        loaded.positions, frame=rows.iloc[:0].copy(),
        table=dataclasses.replace(table, frame=table.frame.iloc[:0].copy(), null_masks={}))
    del rows, table
    if book.n_sets == 0:
        raise InputDataError(f"{inputs.positions}: no non-zero position after netting")
    instruments = frame.set_index("instrument_id", drop=False)
    factors = book_factors(instruments.loc[held], config, set(loaded.history.assets), warnings)
    axis = pd.Index(frame.loc[frame["factor"].isin(factors), "instrument_id"])
    on_axis = axis.get_indexer(held)
    book = dataclasses.replace(book, instrument_index=np.ascontiguousarray(
        on_axis[book.instrument_index].astype(np.int64)))
    book = with_empty_sets(book, collateral_only(book, loaded.accounts))
    return _Netted(book, instruments.loc[axis], held, factors)


def _skipped(manifest: dict[str, Any], faults: AccountFaults) -> None:
    """The accounts left out (``[run] on_account_error = "skip"``): every one with its first
    problem in the manifest, and a warning that counts them."""
    manifest["skipped_accounts"] = faults.report()
    if len(faults):
        manifest["warnings"].append(
            f"{len(faults):,} account(s) left out of the run for bad inputs "
            "([run] on_account_error = \"skip\"; each with its error in the manifest's "
            "skipped_accounts)")


def _horizon_counts(set_horizon: np.ndarray) -> dict[int, int]:
    """Netting sets per margin period of risk (a set without positions has none)."""
    held = set_horizon[set_horizon > 0]
    return {int(h): int(n) for h, n in zip(*np.unique(held, return_counts=True))}


def _factors_out(market: PricedMarket, filtered: dict[str, Any]) -> pd.DataFrame:
    """``factors.csv``: per risk factor, its price, volatility model and one-day volatility."""
    factors = market.factors
    return pd.DataFrame({
        "asset": factors["factor"].to_numpy(),
        "price": factors["price"].to_numpy(np.float64),
        "vol_model": [filtered[f].params.model if f in filtered else "historical"
                      for f in factors["factor"]],
        "sigma_1d": factors["sigma_1d"].to_numpy(np.float64),
    })[FACTOR_COLUMNS]


def _input_files(inputs: EodInputs) -> dict[str, Path]:
    files = {"prices": inputs.prices, "instruments": inputs.instruments,
             "positions": inputs.positions, "accounts": inputs.accounts}
    if inputs.params is not None:
        files["params"] = inputs.params
    return files


def _stage_facts(manifest: dict[str, Any], config: RunConfig, facts: PricingFacts,
                 parts: PartitionResult, horizon_counts: dict[int, int],
                 options: EngineOptions, market: PricedMarket) -> None:
    """The manifest's facts of the pricing and the book stage."""
    manifest["scenarios"]["netting_sets_by_horizon_days"] = {
        str(h): n for h, n in sorted(horizon_counts.items())}
    manifest["anti_procyclicality"] = {**parts.apc_info,
                                       **stressed_info(facts.scenarios, config)}
    margins = parts.margins
    model = margins["model_margin"].to_numpy()
    binding = margin_base(model, margins["stress_loss"].to_numpy(), config.stress.mode,
                          config.stress.weight) > model
    manifest["stress"] = {**{k: v for k, v in facts.stress.items() if k != "notes"},
                          "binding_sets": int(np.sum(binding))}
    manifest["engine"] = {"engine": options.engine, "partition_size": options.partition_size,
                          "partitions": parts.partitions,
                          "partitions_computed": parts.computed,
                          "resumed": parts.computed < parts.partitions}
    manifest["state"] = {"folder": STATE_DIR, "horizons_days": market.horizons,
                         "priced_instruments": len(market.instruments)}


def _liquidate(result: EodResult, parts: PartitionResult, config: RunConfig, timer: _Timer
               ) -> None:
    """The liquidation stage, with the final writes started beside it (work folder only)."""
    options = result.engine
    assert options is not None and result.state is not None
    if options.work_dir is not None:
        # final now: written on the other core while the liquidation stage runs on this one
        result.early_writes = BackgroundWrites(options.work_dir / "outputs")
        _submit_final_writes(result.early_writes, result.state, parts.attribution)
    threads = numba.get_num_threads()
    try:
        if result.early_writes is not None:
            # leave the writing thread its core: a parallel region waits for its slowest
            # thread, and the stage's hundred small kernel calls each waited for a preempted
            # one (liquidation 0.8 -> 1.3 s at 100,000 accounts on 2 cores; 0.87 s so). The
            # search's workers take its sets in slices, so it keeps every thread: once the
            # writes are done, both cores search (10% of 100,000 sets in liquidation: the
            # stage 3.06 -> 1.5 s)
            numba.set_num_threads(max(1, threads - 1))
        with timer.stage("liquidation"):
            penalty, orders, liquidation, notes = liquidation_stage(
                result.margins, parts.flagged_attribution, result.state, config,
                search_threads=threads)
            result.margins["liquidation_penalty"] = penalty.to_numpy(np.float64)
            result.liquidation_orders = orders
            result.manifest["liquidation"] = liquidation
            result.manifest["totals"]["liquidation_penalty"] = liquidation["penalties"]
            result.manifest["warnings"] += notes
    except BaseException:
        if result.early_writes is not None:
            result.early_writes.abandon()
        raise
    finally:
        numba.set_num_threads(threads)


def _write_table_at(path: Path, table: pd.DataFrame) -> None:
    """``write_table`` with the path first, as :meth:`BackgroundWrites.submit` calls it."""
    write_table(table, path)


def _submit_final_writes(writes: BackgroundWrites, state: StoredRun | None,
                         attribution: pd.DataFrame | PartFiles) -> None:
    """Start writing the outputs that the liquidation stage leaves as they are: the
    attribution first, which the page reads back, then the priced market (the larger), which
    is then written while the page is drawn."""
    if isinstance(attribution, PartFiles):
        writes.submit("attribution.parquet", attribution.write_parquet)
    else:
        writes.submit("attribution.parquet", lambda path: write_table(attribution, path))
    if state is not None:
        writes.submit(STATE_DIR, write_run, state)


def _fingerprint(inputs: EodInputs, config: RunConfig, as_of: str | None,
                 previous_run: str | Path | None, options: EngineOptions) -> str:
    """What makes two runs' partitions interchangeable (resume): inputs, configuration, as-of,
    previous run, partition size and version."""
    files = {k: sha256_file(v) for k, v in vars(inputs).items() if v is not None}
    previous = (sha256_file(Path(previous_run) / "margins.parquet")
                if previous_run is not None else None)
    return fingerprint({"inputs": files, "config": config.digest(), "as_of": as_of,
                        "previous": previous, "partition_size": options.partition_size,
                        "version": __version__})


def write_eod(result: EodResult, out: str | Path) -> Path:
    """Write the outputs of DESIGN.md under ``out``, atomically; returns the folder."""
    start = time.perf_counter()
    with staged_output(out) as staging:
        writes = result.early_writes
        if writes is None:  # run_eod had no work folder: start them now, beside the tables
            writes = BackgroundWrites(staging / ".background")
            _submit_final_writes(writes, result.state, result.attribution_table)
        timings = result.manifest["timings_s"]
        try:
            # the tables on the writing thread too, while this one draws the page
            tables = {"margins.parquet": result.margins, "margins.csv": result.margins,
                      "factors.csv": result.factors}
            if result.liquidation_orders is not None:
                tables["liquidation_orders.parquet"] = result.liquidation_orders
            for name, table in tables.items():
                writes.submit(name, _write_table_at, table)
            from riskmodel.report.eod import write_eod_report  # the page's modules, here only

            clock = time.perf_counter()
            write_eod_report(staging, result, previous_run=result.previous_run,
                             attribution=writes.written("attribution.parquet"))
            timings["report"] = round(time.perf_counter() - clock, 4)
        except BaseException:
            writes.abandon()
            raise
        writes.move_into(staging)  # re-raises a failed write: no manifest, nothing moved in
        shutil.rmtree(staging / ".background", ignore_errors=True)
        timings["background_write"] = round(sum(writes.seconds.values()), 4)
        # the manifest last, so that the write time counts the wait for the background too
        timings["write"] = round(time.perf_counter() - start, 4)
        write_json(result.manifest, staging / "manifest.json")
        engine = result.engine
        if engine is not None and engine.engine == "dask" and engine.work_dir is not None:
            keep_parts(engine.work_dir, staging, result.partitions)
    if result.engine is not None and result.engine.work_dir is not None:
        # finished: the partitions of the work folder are no longer needed to resume
        shutil.rmtree(result.engine.work_dir, ignore_errors=True)
    return Path(out)
