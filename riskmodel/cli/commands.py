"""The commands of the ``riskmodel`` program: each reads its parsed flags, calls the package
that does the work and prints a summary.

This is the composition root: the only place that reaches into both ``riskmodel`` and
``calibration`` (it hands the engine a GARCH fitter when no ``--params`` is given). Heavy
imports happen inside each command, so ``riskmodel --help`` stays fast.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

from riskmodel.cli.process import frozen_imports
from riskmodel.errors import UsageError


def _overrides(args: argparse.Namespace) -> dict[str, Any]:
    overrides = {
        key: getattr(args, key, None)
        for key in ("method", "measure", "confidence", "horizon", "lookback", "scenarios", "seed")
    }
    overrides["chunk_size"] = getattr(args, "chunk_size", None)
    overrides["partition_size"] = getattr(args, "partition_size", None)
    return overrides


def _config(args: argparse.Namespace) -> Any:
    from riskmodel.config import load_config

    return load_config(getattr(args, "config", None), _overrides(args))


def _config_with_source(args: argparse.Namespace) -> tuple[Any, dict[str, Any]]:
    """The run configuration and the raw TOML + overrides it came from (kept for what-if)."""
    from riskmodel.engine.store import load_config_source

    return load_config_source(getattr(args, "config", None), _overrides(args))


def _progress(quiet: bool, what: str = "netting sets", label: str = "tail kernels",
              every_s: float = 5.0) -> Any:
    """Progress of a long stage on stderr (nothing with ``--quiet``): on a terminal a bar
    redrawn in place; elsewhere (a scheduler's log, a notebook) one line every ``every_s``
    seconds, ``riskmodel: STAGE: done/total WHAT, elapsed``, and a last one when the stage
    ends if it logged before, so a stage shorter than ``every_s`` stays silent."""
    if quiet:
        return None
    if not sys.stderr.isatty():
        import time

        start = time.monotonic()
        last = [start]

        def log(done: int, total: int) -> None:
            now = time.monotonic()
            if now - last[0] < every_s and not (done >= total and last[0] > start):
                return
            last[0] = now
            sys.stderr.write(f"riskmodel: {label}: {done:,}/{total:,} {what}, "
                             f"{now - start:,.1f} s elapsed\n")
            sys.stderr.flush()

        return log

    def report(done: int, total: int) -> None:
        width = 30
        filled = int(width * done / max(total, 1))
        sys.stderr.write(f"\r  {label} [{'#' * filled}{'.' * (width - filled)}] "
                         f"{done}/{total} {what}")
        if done >= total:
            sys.stderr.write("\n")
        sys.stderr.flush()

    return report


def dependence_fitter() -> Any:
    """Run-time dependence estimation for Monte Carlo without a parameter set's dependence."""

    def fit(z: Any) -> Any:
        from calibration.dependence import estimate_dependence

        dep = estimate_dependence(z)
        return dep.correlation, dep.copula_nu

    return fit


def garch_fitter() -> Any:
    """Run-time estimation for `eod` without --params and the backtest's refits
    (:func:`calibration.fitters.default_fitter`: arch is imported on the first fit)."""
    from calibration.fitters import default_fitter

    return default_fitter()


def cmd_eod(args: argparse.Namespace) -> int:
    with frozen_imports():
        from riskmodel.batch.eod import EodInputs, run_eod, write_eod
        from riskmodel.batch.partitions import EngineOptions, work_dir_for
        from riskmodel.io.outputs import writable_folder
        from riskmodel.measures.precompile import start_if_cold
        from riskmodel.report import eod as _page  # noqa: F401 - write_eod's, frozen too
        from riskmodel.volatility.params import load_parameter_set

    config, source = _config_with_source(args)
    params = load_parameter_set(args.params) if args.params else None
    inputs = EodInputs(args.prices, args.instruments, args.positions, args.accounts, args.params)
    if (args.scheduler or args.workers) and args.engine != "dask":
        raise UsageError("--scheduler and --workers need --engine dask")
    if Path(args.out).exists() and not Path(args.out).is_dir():
        raise UsageError(f"--out {args.out}: exists and is not a folder")
    writable_folder(args.out)  # before any work: the work folder goes beside it
    start_if_cold()  # a first run: the margin kernels compile beside the loading
    work_dir = work_dir_for(args.out)
    engine = EngineOptions(engine=args.engine, scheduler=args.scheduler, workers=args.workers,
                           work_dir=work_dir, resume=args.resume)
    try:
        result = run_eod(inputs, config, as_of=args.as_of, params=params, fitter=garch_fitter(),
                         dependence_fitter=dependence_fitter(), progress=_progress(args.quiet),
                         config_source=source, previous_run=args.previous_run, engine=engine)
        write_eod(result, args.out)
    except Exception:
        # an error is no kill: its finished partitions would not help a rerun, leave nothing
        shutil.rmtree(work_dir, ignore_errors=True)
        raise
    _warn("eod", result.manifest["warnings"])
    if not args.quiet:
        _summary(result.manifest, args.out)
    return _partial("eod", result.manifest)


def _summary(manifest: dict[str, Any], out: Path) -> None:
    counts = manifest["counts"]
    totals = manifest["totals"]
    by_status = ", ".join(f"{k} {v}" for k, v in counts["by_status"].items())
    im, flat = totals["initial_margin"], totals["flat_rate_margin"]
    print(f"riskmodel eod as of {manifest['market_date'][:10]}: {counts['netting_sets']} netting "
          f"sets in {counts['accounts']} accounts ({manifest['scenarios']['kind']}, "
          f"{manifest['scenarios']['count']} scenarios, {manifest['scenarios']['horizon_days']}-day"
          f" horizon)")
    print(f"  status: {by_status}")
    print(f"  total initial margin {im:,.0f} against flat-rate margin {flat:,.0f} "
          f"({im / flat:.1%} of flat)" if flat else f"  total initial margin {im:,.0f}")
    print(f"  margin calls: {totals['call_amount']:,.0f}")
    print(f"  outputs in {out}")


def _partial(command: str, manifest: dict[str, Any], shown: int = 50) -> int:
    """0, or with accounts left out (``[run] on_account_error = "skip"``) each named on
    stderr (the first ``shown``; all in the manifest) and the exit code of a partial run."""
    from riskmodel.io.faults import PARTIAL_EXIT

    skipped = manifest.get("skipped_accounts") or []
    for entry in skipped[:shown]:
        print(f"riskmodel {command}: account {entry['account_id']!r} left out: "
              f"{entry['error']}", file=sys.stderr)
    if len(skipped) > shown:
        print(f"riskmodel {command}: ... and {len(skipped) - shown:,} more account(s) left out "
              "(manifest.json, skipped_accounts)", file=sys.stderr)
    return PARTIAL_EXIT if skipped else 0


def _warn(command: str, warnings: list[str]) -> None:
    """Warnings go to standard error, one line each, with or without --quiet: a scheduler's
    log must show a carried price or a shortened window even when the summary is off."""
    for w in warnings:
        print(f"riskmodel {command}: warning: {w}", file=sys.stderr)


def cmd_demo(args: argparse.Namespace) -> int:
    with frozen_imports():
        from riskmodel.batch.eod import EodInputs, run_eod, write_eod
        from riskmodel.demo import write_demo_inputs
        from riskmodel.engine.store import load_config_source
        from riskmodel.io.outputs import staged_output, writable_folder
        from riskmodel.measures.precompile import start_if_cold
        from riskmodel.report import eod as _page  # noqa: F401 - write_eod's, frozen too

    if args.accounts < 1:
        raise UsageError(f"--accounts = {args.accounts} must be >= 1")
    out = Path(args.out)
    writable_folder(out)
    start_if_cold()  # a first run: the margin kernels compile beside the inputs' writing
    # Build the inputs and run in a scratch folder first, so that a failure leaves nothing.
    scratch = Path(tempfile.mkdtemp(prefix="riskmodel-demo-"))
    try:
        files = write_demo_inputs(scratch / "inputs", n_accounts=args.accounts)
        config, source = load_config_source(files.config)
        source["source"] = str((out / "inputs" / "run.toml").absolute())
        result = run_eod(EodInputs(files.prices, files.instruments, files.positions,
                                   files.accounts), config, fitter=garch_fitter(),
                         progress=_progress(args.quiet), config_source=source)
        with staged_output(out / "inputs") as staging:
            for f in sorted((scratch / "inputs").iterdir()):
                shutil.copy2(f, staging / f.name)
        inputs_dir = (out / "inputs").absolute()
        for name in ("prices", "instruments", "positions", "accounts"):
            result.manifest["inputs"][name]["path"] = str(inputs_dir / f"{name}.csv")
        # the run read the scratch copies: name the files the user keeps
        result.manifest["warnings"] = [w.replace(str(scratch / "inputs"), str(inputs_dir))
                                       for w in result.manifest["warnings"]]
        write_eod(result, out)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    _warn("demo", result.manifest["warnings"])
    if not args.quiet:
        _summary(result.manifest, out)
        i = out / "inputs"
        print("  rerun with:  riskmodel eod "
              f"--prices {i}/prices.csv --instruments {i}/instruments.csv "
              f"--positions {i}/positions.csv --accounts {i}/accounts.csv "
              f"--config {i}/run.toml --out {out}/rerun")
        print("  the README's backtest:  riskmodel backtest "
              f"--prices {i}/backtest_prices.csv --instruments {i}/backtest_instruments.csv "
              f"--config {i}/backtest.toml --start 2000-01-01 --end 2018-12-31 "
              f"--out {out}/backtest")
    return 0


def cmd_calibrate(args: argparse.Namespace) -> int:
    import dataclasses

    import pandas as pd

    from calibration.estimate import Spec
    from calibration.runner import calibrate
    from riskmodel.config import load_config
    from riskmodel.io.outputs import writable_parent
    from riskmodel.io.prices import load_prices
    from riskmodel.io.tables import sha256_file
    from riskmodel.marketdata.returns import build_market_data, resolve_market_date

    if args.jobs < 1:
        raise UsageError(f"--jobs = {args.jobs} must be >= 1")
    config = load_config(args.config)
    flags = {k: getattr(args, k) for k in ("model", "dist", "mean", "backcast")
             if getattr(args, k) is not None}
    calibration = dataclasses.replace(config.calibration, **flags)
    out = Path(args.out)
    writable_parent(out)
    history = load_prices(args.prices, config.return_kind)
    end = resolve_market_date(history, args.end, "--end")
    # each column on its own dates (a coin's weekends are no gaps of an index's series, nor
    # the index's closed days zero returns of it), as every factor is fitted on its own history
    per_asset = [build_market_data(history, [a], end, config.return_kind, config.price_gaps)
                 for a in history.assets]
    returns = pd.concat([m.returns for m in per_asset], axis=1).sort_index()
    window: int | None = config.garch_fit_window
    if args.start is not None:
        # an explicit --start is honoured: every return from it, however many
        start = resolve_market_date(history, args.start, "--start")
        returns = returns.loc[start:]
        window = None
    else:
        # each factor is fitted on its own last `garch_fit_window` returns
        returns = returns.apply(
            lambda c: c.dropna().iloc[-config.garch_fit_window:].reindex(returns.index)
        ).dropna(how="all")
    data = {"file": str(args.prices), "sha256": sha256_file(args.prices),
            "start": returns.index[0].isoformat(), "end": end.isoformat(),
            "max_returns_per_factor": window,
            "return_kinds": {a: config.return_kind(a) for a in history.assets}}
    spec = Spec.from_config(calibration, config.ewma_lambda)
    pset = calibrate(returns, spec, jobs=args.jobs, data=data,
                     progress=_progress(args.quiet, "factors", "calibrating"))
    if args.report is not None:
        from calibration.diagnostics import write_report

        write_report(pset, returns, args.report)
    pset.write(out)
    if not args.quiet:
        for asset, fp in sorted(pset.factors.items()):
            note = f"  (fallback: {fp.fallback})" if fp.fallback else ""
            print(f"{asset}: {fp.model}/{fp.dist}{note}")
        print(f"parameter set {pset.id} written to {out}")
    return 0


def cmd_scenarios(args: argparse.Namespace) -> int:
    from riskmodel.batch.scenario_export import export_scenarios
    from riskmodel.volatility.params import load_parameter_set

    config = _config(args)
    params = load_parameter_set(args.params) if args.params else None
    factors = [f.strip() for f in args.factors.split(",") if f.strip()] if args.factors else None
    prov = export_scenarios(args.prices, args.out, config, factors=factors, as_of=args.as_of,
                            params=params, fitter=garch_fitter(),
                            dependence_fitter=dependence_fitter(), stress=args.stress)
    _warn("scenarios", prov["warnings"])
    if not args.quiet:
        counts = ", ".join(f"{k} {v['count']}" for k, v in prov["sets"].items())
        print(f"scenarios as of {prov['market_date'][:10]} ({counts}) written to {args.out}")
    return 0


def cmd_whatif(args: argparse.Namespace) -> int:
    from riskmodel.io.outputs import writable_parent
    from riskmodel.whatif import load_run, load_trades, what_if, write_result

    out = Path(args.out)
    if out.suffix not in (".csv", ".parquet"):
        raise UsageError(f"--out {out}: must end in .csv or .parquet")
    writable_parent(out)
    state = load_run(args.run)
    trades = load_trades(args.trades, state)
    result = what_if(state, trades)
    write_result(result, out)
    if not args.quiet:
        sets = "netting set" if len(result) == 1 else "netting sets"
        print(f"riskmodel whatif: {len(result)} {sets} touched; initial margin "
              f"{result['initial_margin_before'].sum():,.0f} -> "
              f"{result['initial_margin_after'].sum():,.0f}; written to {out}")
    return 0


def cmd_liquidation_map(args: argparse.Namespace) -> int:
    from riskmodel.io.outputs import writable_folder
    from riskmodel.liquidation.map_run import write_liquidation_map

    writable_folder(args.out)  # before any work: fail on an unwritable --out now
    manifest = write_liquidation_map(args.run, args.out, cascade=args.cascade)
    if not args.quiet:
        print(f"riskmodel liquidation-map: {manifest['netting_sets']:,} netting sets, "
              f"{manifest['liquidation_now']:,} in liquidation now; worst: "
              f"{manifest['worst']['text']}; written to {args.out}")
    return 0


def cmd_backtest(args: argparse.Namespace) -> int:
    from riskmodel.backtest.run import (
        BacktestInputs,
        BacktestWindow,
        run_backtest,
        write_backtest,
    )
    from riskmodel.io.outputs import writable_folder
    from riskmodel.volatility.params import load_parameter_set

    writable_folder(args.out)  # before any work: fail on an unwritable --out now
    config, source = _config_with_source(args)
    window = BacktestWindow(args.start, args.end, args.step, args.recalibrate_every)
    params = load_parameter_set(args.params) if args.params else None
    inputs = BacktestInputs(args.prices, args.instruments, args.positions, args.params)
    result = run_backtest(inputs, config, window, params=params, fitter=garch_fitter(),
                          dependence_fitter=dependence_fitter(),
                          progress=_progress(args.quiet, "dates", "backtest"),
                          config_source=source)
    write_backtest(result, args.out)
    _warn("backtest", result.summary["warnings"])
    if not args.quiet:
        run, pooled = result.summary["run"], result.summary["pooled"]
        flat = pooled["flat_rate"]["mean_margin"]
        print(f"riskmodel backtest {run['start'][:10]} .. {run['end'][:10]}: {run['n_dates']} "
              f"dates x {run['n_portfolios']} netting sets ({run['method']}, "
              f"{run['confidence']:g}, {'/'.join(map(str, run['horizons_days']))}-day horizon)")
        kupiec = pooled["kupiec_pvalue"]
        print(f"  exceptions {pooled['exceptions']} of {pooled['n_obs']} "
              f"({pooled['exception_rate']:.2%}, expected {pooled['expected_rate']:.2%}); "
              f"Kupiec p {kupiec:.3g}; traffic light {pooled['traffic_light']}")
        print(f"  margin breaches {pooled['margin_breaches']}; mean initial margin "
              f"{pooled['mean_margin']:,.4g} against flat-rate {flat:,.4g}"
              + (f" ({pooled['mean_margin'] / flat:.0%} of flat)" if flat else ""))
        print(f"  outputs in {args.out}")
    return 0


def cmd_study(args: argparse.Namespace) -> int:
    from calibration.studies import load_grid, run_study, write_study
    from riskmodel.backtest.run import BacktestInputs, BacktestWindow
    from riskmodel.config import read_toml
    from riskmodel.io.outputs import writable_folder

    writable_folder(args.out)  # before any work: fail on an unwritable --out now
    raw = read_toml(getattr(args, "config", None))
    grid = load_grid(args.grid)
    window = BacktestWindow(args.start, args.end, args.step)
    inputs = BacktestInputs(args.prices, args.instruments, args.positions)
    study = run_study(inputs, raw, _overrides(args), grid, window, fitter=garch_fitter(),
                      dependence_fitter=dependence_fitter(),
                      progress=_progress(args.quiet, "grid points", "study"))
    write_study(study, args.out)
    _warn("study", list(study.notes))
    if not args.quiet:
        print(f"riskmodel study: {len(study.table)} grid points written to {args.out}")
    return 0
