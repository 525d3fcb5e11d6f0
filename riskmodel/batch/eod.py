"""The end-of-day margin run: inputs -> scenarios -> instrument P&L -> tail measures -> margin.

Stages and what each one guarantees:

1. load and validate every input (errors name file, row or date, column and value);
2. net positions into a sparse netting-set x instrument book;
3. align the used factors' prices (calendar rule in :mod:`riskmodel.marketdata.returns`) and
   filter their volatility with fixed parameters (from ``--params``, or fitted by the caller);
4. build the scenario set (HS, FHS or Monte Carlo), reprice each unique instrument once per
   scenario;
5. stream netting sets through the tail kernels (VaR, ES, Euler contributions);
6. worst loss of each netting set over the stress scenarios;
7. apply the margin policy and assemble the output tables and the manifest;
8. partial liquidation of the sets in ``liquidation``: orders and ``liquidation_penalty``
   (:mod:`riskmodel.batch.liquidation_stage`).

Nothing is written under ``--out`` here: :func:`write_eod` writes a finished result atomically.
With a work folder (the CLI's), the partitions' parts go there, and so do the attribution and
the what-if state once the book is margined, in a thread while the liquidation stage runs
(:mod:`riskmodel.batch.background_writes`); :func:`write_eod` moves them in.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
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
from riskmodel.batch.apc_stage import (
    read_previous_model_margin,
    stressed_info,
    stressed_observations,
)
from riskmodel.batch.background_writes import BackgroundWrites
from riskmodel.batch.collateral import collateral_equity, with_collateral_holdings
from riskmodel.batch.liquidation_stage import liquidated_statuses, liquidation_stage
from riskmodel.batch.model_scenarios import (
    DependenceFitter,
    VolatilityFitter,
    filter_factors,
    model_scenarios,
    volatility_warnings,
)
from riskmodel.batch.partitions import (
    EngineOptions,
    PartFiles,
    fingerprint,
    keep_parts,
    run_partitions,
)
from riskmodel.batch.run_store import STATE_DIR, RunStateData, StressBlock, write_state
from riskmodel.batch.stress_run import stress_scenario_sets
from riskmodel.config import RunConfig
from riskmodel.errors import InputDataError, ModelError
from riskmodel.io.instruments import check_not_expired, load_instruments
from riskmodel.io.outputs import staged_output, write_json, write_table
from riskmodel.io.positions import (
    account_types,
    check_collateral_coverage,
    id_codes,
    load_accounts,
    load_positions,
)
from riskmodel.io.prices import load_prices
from riskmodel.io.tables import sha256_file
from riskmodel.margin.policy import STATUSES, margin_base
from riskmodel.margin.tables import (
    check_finite,
    set_horizons,
)
from riskmodel.margin.whatif import run_state
from riskmodel.marketdata.returns import (
    build_market_data,
    build_universe,
    common_window,
    resolve_market_date,
)
from riskmodel.portfolio.netting import net_positions
from riskmodel.pricing.revaluation import scenario_pnl
from riskmodel.scenarios.scenario_set import ScenarioSet
from riskmodel.volatility.filters import FilteredFactor
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
    horizon, the what-if state (:mod:`riskmodel.batch.run_store`) written under ``state/`` and
    the partial-liquidation orders (``liquidation_orders.parquet``)."""

    margins: pd.DataFrame
    # with a work folder, the attribution stays in its per-partition files until written
    attribution_table: pd.DataFrame | PartFiles
    factors: pd.DataFrame
    manifest: dict[str, Any]
    scenarios: ScenarioSet
    state: RunStateData | None = None
    config_source: dict[str, Any] | None = None
    liquidation_orders: pd.DataFrame | None = None
    engine: EngineOptions | None = None
    partitions: int = 1
    # the state and the attribution, when run_eod started writing them into the work folder
    early_writes: BackgroundWrites | None = None

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
    :func:`riskmodel.batch.run_store.load_config_source`) is stored with the what-if state so
    that :mod:`riskmodel.margin.whatif` rebuilds exactly ``config``; without it the state is
    still written but cannot be loaded for what-if. ``previous_run``: a previous run's output
    folder, whose model margins the anti-procyclicality buffer compares against. ``engine``:
    how the book stage runs (partitions, local or Dask, work folder and resume;
    :mod:`riskmodel.batch.partitions`).
    """
    timer = _Timer()
    warnings: list[str] = []
    if params is not None:
        age = params.age_days()
        if age is not None and age > config.calibration.max_age_days:
            warnings.append(
                f"parameter set {params.id} is {age:.0f} days old "
                f"(calibration.max_age_days = {config.calibration.max_age_days:g}): recalibrate"
            )

    with timer.stage("load"):
        history = load_prices(inputs.prices, config.return_kind)
        instruments = load_instruments(inputs.instruments, history.assets)
        positions = load_positions(inputs.positions, instruments.frame["instrument_id"])
        accounts = load_accounts(inputs.accounts, config.collateral.reporting_currency)
        check_collateral_coverage(positions, accounts)
        # coins held as collateral join the book as positions that are never traded, so every
        # scenario revalues them with everything else (wrong-way risk)
        instruments, positions = with_collateral_holdings(instruments, positions, accounts,
                                                          set(history.assets), config)

    with timer.stage("netting"):
        instr = instruments.frame.set_index("instrument_id", drop=False)
        codes, names = id_codes(positions.frame["instrument_id"])
        used_ids = pd.Index(np.sort(names[np.bincount(codes, minlength=len(names)) > 0]))
        book = net_positions(positions.frame, used_ids)
        del positions  # the rows as read: the netted book replaces them
        if book.n_sets == 0:
            raise InputDataError(f"{inputs.positions}: no non-zero position after netting")
        used = instr.loc[used_ids]
        factors = sorted(set(used["factor"]) | implied_vol_factors(
            used, config, set(history.assets), warnings))
        # What-if trades may open positions in any instrument on a factor the run prices, so
        # those are priced too (file order); the book's own rows are taken out of that matrix.
        priced = instruments.frame[instruments.frame["factor"].isin(factors)]
        used_in_priced = pd.Index(priced["instrument_id"]).get_indexer(used_ids)

    with timer.stage("market_data"):
        market_date = resolve_market_date(history, as_of)
        check_not_expired(instruments, market_date, used_ids)
        market = build_market_data(history, factors, market_date, config.return_kind)
        # every asset of the price file, aligned once: stress windows take moves and proxies
        universe = build_universe(history, market_date, config.return_kind)
        window = common_window(market.returns, config.lookback, config.min_history)
        if len(window) < config.lookback:
            warnings.append(
                f"lookback shortened to {len(window)} common returns (asked {config.lookback}): "
                "a factor's history starts later"
            )

        apc_floor = "floor" in config.anti_procyclicality.tools
        long_window = (common_window(market.returns, config.anti_procyclicality.floor_lookback,
                                     config.min_history) if apc_floor else window)

    with timer.stage("volatility"):
        # the filter must cover the floor's longer window too
        filtered = filter_factors(market.returns, long_window, factors, config, params, fitter)
        warnings += volatility_warnings(filtered)

    # Run-wide stages, once per distinct margin period of risk of the book's netting sets: model
    # scenarios, the P&L of every priced instrument in them, the anti-procyclicality floor's
    # long-lookback P&L and the stress scenarios' P&L. The book stage then reads only these.
    set_horizon = set_horizons(book, used, config, account_types(accounts.frame))
    horizon_counts = {int(h): int(n) for h, n in zip(*np.unique(set_horizon, return_counts=True))}
    scenarios = None
    state_pnl: dict[int, np.ndarray] = {}
    state_weights: dict[int, np.ndarray | None] = {}
    state_stress: dict[int, tuple[np.ndarray, list[str], list[StressBlock]]] = {}
    floor_pnl: dict[int, tuple[np.ndarray, np.ndarray | None]] | None = {} if apc_floor else None
    by_horizon: dict[int, ScenarioSet] = {}
    stress_info: dict[str, Any] = {}
    for h in sorted(horizon_counts):
        cfg = dataclasses.replace(config, horizon=h)
        with timer.stage(f"scenarios_{h}d"):
            stressed, notes = stressed_observations(universe, market, window, cfg, h)
            warnings += notes
            scen_h = model_scenarios(window, filtered, cfg, params, dependence_fitter, warnings,
                                     stressed=stressed)
            by_horizon[h] = scen_h
            if h == config.horizon or scenarios is None:
                scenarios = scen_h
        with timer.stage(f"repricing_{h}d"):
            state_pnl[h] = finite_pnl(scenario_pnl(priced, scen_h, market.spot,
                                                   market.return_kinds, market.market_date,
                                                   config.implied_vol), priced, scen_h)
            state_weights[h] = scen_h.weights
        if floor_pnl is not None:
            with timer.stage(f"apc_floor_{h}d"):
                cfg_long = dataclasses.replace(
                    cfg, lookback=config.anti_procyclicality.floor_lookback)
                scen_long = model_scenarios(long_window, filtered, cfg_long, params,
                                            dependence_fitter, warnings, stressed=stressed)
                floor_pnl[h] = (finite_pnl(scenario_pnl(priced, scen_long, market.spot,
                                                        market.return_kinds,
                                                        market.market_date,
                                                        config.implied_vol), priced, scen_long),
                                scen_long.weights)
        with timer.stage(f"stress_scenarios_{h}d"):
            stress_sets, info_h = stress_scenario_sets(market, window, cfg, universe)
            stress_info = {**info_h, **stress_info,
                           "notes": stress_info.get("notes", []) + info_h["notes"]}
            state_stress[h] = _stress_state(stress_sets, priced, market, config)
    warnings += list(dict.fromkeys(stress_info.get("notes", [])))
    assert scenarios is not None

    factors_out = pd.DataFrame(
        {
            "asset": factors,
            "price": [float(market.spot[f]) for f in factors],
            "vol_model": [filtered[f].params.model if f in filtered else "historical"
                          for f in factors],
            "sigma_1d": [filtered[f].sigma_1d if f in filtered
                         else float(window[f].std(ddof=1)) for f in factors],
        }
    )[FACTOR_COLUMNS]
    sigma_rel = pd.Series(factors_out["sigma_1d"].to_numpy(), index=factors)
    for f in factors:  # price-difference volatility as a relative one, for the distance
        if market.return_kinds[f] == "absolute":
            sigma_rel[f] = sigma_rel[f] / abs(float(market.spot[f]))
    collateral = collateral_equity(accounts, market.spot, config)
    instruments_out = instruments.frame.copy()
    instruments_out["price"] = [float(market.spot[f]) if f in factors else np.nan
                                for f in instruments_out["factor"]]
    pnl_row = np.full(len(instruments_out), -1, dtype=np.int64)
    pnl_row[instruments_out["factor"].isin(factors).to_numpy()] = np.arange(len(priced))
    instruments_out["pnl_row"] = pnl_row
    state = RunStateData(
        instruments=instruments_out.reset_index(drop=True),
        factors=pd.DataFrame({
            "factor": factors,
            "price": factors_out["price"].to_numpy(np.float64),
            "return_kind": [market.return_kinds[f] for f in factors],
            "sigma_1d": factors_out["sigma_1d"].to_numpy(np.float64),
            "sigma_rel": sigma_rel.to_numpy(np.float64),
        }),
        collateral=collateral[["account_id", "netting_set", "collateral",
                               "account_type"]].copy(),
        config_source=config_source or {},
        config_sha256=config.digest(),
        pnl=state_pnl,
        weights=state_weights,
        stress_pnl={h: v[0] for h, v in state_stress.items()},
        stress_labels={h: v[1] for h, v in state_stress.items()},
        stress_blocks={h: v[2] for h, v in state_stress.items()},
        valuation_time=market.market_date.isoformat(),
    )

    with timer.stage("margin"):
        # the book stage, partition by partition, on the book's rows of the priced axis
        run = run_state(Path("."), state, config, _EMPTY_POSITIONS, _EMPTY_MARGINS)
        on_priced = dataclasses.replace(book, instrument_index=np.ascontiguousarray(
            used_in_priced[book.instrument_index].astype(np.int64)))
        previous = (read_previous_model_margin(previous_run, book.sets)
                    if previous_run is not None else None)
        previous_by_set = (pd.Series(previous, index=pd.MultiIndex.from_frame(book.sets))
                           if previous is not None else None)
        options = engine or EngineOptions()
        if options.partition_size is None:
            options = dataclasses.replace(options, partition_size=config.partition_size)
        parts = run_partitions(run, on_priced, options, _fingerprint(inputs, config, as_of,
                                                                     previous_run, options),
                               floor_pnl=floor_pnl, previous=previous_by_set,
                               progress=progress, flag_statuses=liquidated_statuses(config))
        run.screens.clear()  # the float32 copies of the P&L served the partitions only
        # and so did the netted book (ten million positions at venue size): the liquidation
        # stage and the writes that run beside it need only the tables
        del book, on_priced
        margins = parts.margins
        check_finite(margins)

    manifest = _manifest(inputs, config, as_of, market, window, scenarios, params, filtered,
                         margins, timer, warnings)
    manifest["scenarios"]["netting_sets_by_horizon_days"] = {
        str(h): n for h, n in sorted(horizon_counts.items())}
    manifest["anti_procyclicality"] = {**parts.apc_info, **stressed_info(by_horizon, config)}
    model = margins["model_margin"].to_numpy()
    stress_loss = margins["stress_loss"].to_numpy()
    manifest["stress"] = {
        **{k: v for k, v in stress_info.items() if k != "notes"},
        "binding_sets": int(np.sum(
            margin_base(model, stress_loss, config.stress.mode, config.stress.weight) > model
        )),
    }
    manifest["engine"] = {"engine": options.engine, "partition_size": options.partition_size,
                          "partitions": parts.partitions,
                          "partitions_computed": parts.computed,
                          "resumed": parts.computed < parts.partitions}
    manifest["state"] = {"folder": STATE_DIR, "horizons_days": sorted(state_pnl),
                         "priced_instruments": len(priced)}
    early = None
    if options.work_dir is not None:
        # final now: written on the other core while the liquidation stage runs on this one
        early = BackgroundWrites(options.work_dir / "outputs")
        _submit_final_writes(early, state, parts.attribution)
    threads = numba.get_num_threads()
    try:
        if early is not None:
            # leave the writing thread its core: a parallel region waits for its slowest
            # thread, and the stage's hundred small kernel calls each waited for a preempted
            # one (liquidation 0.8 -> 1.3 s at 100,000 accounts on 2 cores; 0.87 s so)
            numba.set_num_threads(max(1, threads - 1))
        with timer.stage("liquidation"):
            penalty, orders, liquidation, notes = liquidation_stage(
                margins, parts.flagged_attribution, state, config)
            margins["liquidation_penalty"] = penalty.to_numpy(np.float64)
            manifest["liquidation"] = liquidation
            manifest["totals"]["liquidation_penalty"] = liquidation["penalties"]
            manifest["warnings"] += notes
    except BaseException:
        if early is not None:
            early.abandon()
        raise
    finally:
        numba.set_num_threads(threads)
    return EodResult(margins, parts.attribution, factors_out, manifest, scenarios, state,
                     config_source, orders, options, parts.partitions, early)


def _submit_final_writes(writes: BackgroundWrites, state: RunStateData | None,
                         attribution: pd.DataFrame | PartFiles) -> None:
    """Start writing the outputs that the liquidation stage leaves as they are: the what-if
    state first (the larger), then the attribution."""
    if state is not None:
        writes.submit(STATE_DIR, write_state, state)
    if isinstance(attribution, PartFiles):
        writes.submit("attribution.parquet", attribution.write_parquet)
    else:
        writes.submit("attribution.parquet", lambda path: write_table(attribution, path))


def finite_pnl(pnl: np.ndarray, priced: pd.DataFrame, scenarios: ScenarioSet) -> np.ndarray:
    """The scenario P&L, checked finite once here (the book stage then skips the scan); a
    non-finite value names the instrument and the scenario (a lognormal option on a price that
    a scenario took to zero or below, say)."""
    bad = ~np.isfinite(pnl)
    if bad.any():
        i, j = (int(x) for x in np.argwhere(bad)[0])
        raise ModelError(f"non-finite scenario P&L for instrument "
                         f"{priced['instrument_id'].iat[i]!r} in {scenarios.kind} scenario "
                         f"{scenarios.labels[j]!r} (value {pnl[i, j]!r})")
    return pnl


_EMPTY_POSITIONS = pd.DataFrame({"account_id": [], "netting_set": [], "instrument_id": [],
                                 "quantity": []})
_EMPTY_MARGINS = pd.DataFrame({"account_id": [], "netting_set": [], "model_margin": [],
                               "initial_margin": []})


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


def implied_vol_factors(used: pd.DataFrame, config: RunConfig, assets: set[str],
                        warnings: list[str]) -> set[str]:
    """The implied-vol index columns (``[implied_vol] factors``) of the book's options'
    underlyings that the price file has; a configured one it lacks is a warning (those options
    follow the spot-vol rule)."""
    out: set[str] = set()
    for underlying in sorted(set(used.loc[used["kind"] == "option", "underlying"])):
        column = config.implied_vol.factors.get(underlying)
        if column is None:
            continue
        if column in assets:
            out.add(column)
        else:
            warnings.append(f"implied_vol.factors.{underlying} = {column!r}: no such column in "
                            "the price file; its options follow the spot-vol rule")
    return out


def _stress_state(stress_sets: list[ScenarioSet], priced: pd.DataFrame, market: Any,
                  config: RunConfig) -> tuple[np.ndarray, list[str], list[StressBlock]]:
    """Per-unit P&L of the priced instruments in the historical and user stress scenarios,
    concatenated in the order the run reduces them, with labels and each set's column range."""
    parts: list[np.ndarray] = []
    labels: list[str] = []
    blocks: list[StressBlock] = []
    start = 0
    for s in stress_sets:
        parts.append(finite_pnl(scenario_pnl(priced, s, market.spot, market.return_kinds,
                                             market.market_date, config.implied_vol),
                                priced, s))
        labels += [str(x) for x in s.labels]
        blocks.append(StressBlock(s.kind, start, start + s.n_scenarios))
        start += s.n_scenarios
    pnl = np.hstack(parts) if parts else np.zeros((len(priced), 0))
    return np.ascontiguousarray(pnl), labels, blocks


def _manifest(
    inputs: EodInputs,
    config: RunConfig,
    as_of: str | None,
    market: Any,
    window: pd.DataFrame,
    scenarios: ScenarioSet,
    params: ParameterSet | None,
    filtered: dict[str, FilteredFactor],
    margins: pd.DataFrame,
    timer: _Timer,
    warnings: list[str],
) -> dict[str, Any]:
    files = {
        "prices": inputs.prices,
        "instruments": inputs.instruments,
        "positions": inputs.positions,
        "accounts": inputs.accounts,
    }
    if inputs.params is not None:
        files["params"] = inputs.params
    counts = margins["status"].value_counts()
    parameter_set: dict[str, Any]
    if params is not None:
        parameter_set = {"id": params.id, "source": params.source, "created_at": params.created_at}
    elif filtered:
        fitted = ParameterSet({f: ff.params for f, ff in filtered.items()}, created_at="run")
        parameter_set = {"id": fitted.id, "source": f"fitted at run time ({config.vol_model})"}
    else:
        parameter_set = {"id": None, "source": "none (plain historical simulation)"}
    return {
        "riskmodel_version": __version__,
        "created_at": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "as_of": as_of,
        "market_date": market.market_date.isoformat(),
        "config": config.to_dict(),
        "config_sha256": config.digest(),
        "inputs": {k: {"path": str(v), "sha256": sha256_file(v)} for k, v in files.items()},
        "parameter_set": parameter_set,
        "seed": config.seed,
        "scenarios": {
            "kind": scenarios.kind,
            "count": scenarios.n_scenarios,
            "horizon_days": scenarios.horizon,
            "window_start": window.index[0].isoformat(),
            "window_end": window.index[-1].isoformat(),
            "window_returns": len(window),
            "provenance": {k: v for k, v in scenarios.provenance.items()
                           if isinstance(v, (str, int, float, bool)) or v is None},
        },
        "calendar": {
            "rule": "union of all dates; last price carried over closed dates; "
            "no backfill before listing",
            "carried_prices": market.carried,
            "return_kinds": market.return_kinds,
        },
        "volatility": {
            f: {"model": ff.params.model, "dist": ff.params.dist, "fallback": ff.params.fallback,
                "sigma_1d": ff.sigma_1d, "filter_start": ff.start}
            for f, ff in filtered.items()
        },
        "counts": {
            "netting_sets": len(margins),
            "accounts": int(margins["account_id"].nunique()),
            "by_status": {s: int(counts.get(s, 0)) for s in STATUSES},
        },
        "totals": {
            col: float(margins[col].sum())
            for col in ("gross_notional", "model_margin", "initial_margin", "maintenance_margin",
                        "flat_rate_margin", "equity", "call_amount")
        },
        "capital_efficiency": capital_efficiency(margins),
        "timings_s": timer.stages,
        "warnings": warnings,
    }


def capital_efficiency(margins: pd.DataFrame) -> dict[str, Any]:
    """Initial margin against flat-rate margin, in total and by status.

    ``im_over_flat`` below 1 means the model asks for less collateral than the flat rate would:
    the capital the model frees (``flat - im``) is what a risk committee weighs against coverage.
    """

    def block(frame: pd.DataFrame) -> dict[str, Any]:
        im = float(frame["initial_margin"].sum())
        flat = float(frame["flat_rate_margin"].sum())
        return {"netting_sets": len(frame), "initial_margin": im, "flat_rate_margin": flat,
                "im_over_flat": im / flat if flat > 0 else None,
                "gross_notional": float(frame["gross_notional"].sum()),
                "im_over_gross_notional": (im / float(frame["gross_notional"].sum())
                                           if frame["gross_notional"].sum() > 0 else None)}

    out = block(margins)
    out["by_status"] = {s: block(margins[margins["status"] == s]) for s in STATUSES}
    return out


def write_eod(result: EodResult, out: str | Path) -> Path:
    """Write the outputs of DESIGN.md under ``out``, atomically; returns the folder."""
    start = time.perf_counter()
    with staged_output(out) as staging:
        writes = result.early_writes
        if writes is None:  # run_eod had no work folder: start them now, beside the tables
            writes = BackgroundWrites(staging / ".background")
            _submit_final_writes(writes, result.state, result.attribution_table)
        try:
            write_table(result.margins, staging / "margins.parquet")
            write_table(result.margins, staging / "margins.csv")
            write_table(result.factors, staging / "factors.csv")
            if result.liquidation_orders is not None:
                write_table(result.liquidation_orders, staging / "liquidation_orders.parquet")
        except BaseException:
            writes.abandon()
            raise
        writes.move_into(staging)  # re-raises a failed write: no manifest, nothing moved in
        shutil.rmtree(staging / ".background", ignore_errors=True)
        timings = result.manifest["timings_s"]
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
