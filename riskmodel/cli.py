"""Command line: parse arguments, delegate, map errors to exit codes.

This is the composition root: the only module that reaches into both ``riskmodel`` and
``calibration`` (it hands the engine a GARCH fitter when no ``--params`` is given).

Exit codes: 0 success, 2 usage, 3 invalid input data, 4 calibration or model failure,
1 anything unexpected. Errors print one line on stderr, never a traceback (set
``RISKMODEL_DEBUG=1`` to see one for unexpected errors).
"""

from __future__ import annotations

import argparse
import gc
import os
import shutil
import sys
import tempfile
import traceback
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn

from riskmodel import __version__
from riskmodel.errors import RiskModelError, UsageError


def _shared_options(parser: argparse.ArgumentParser) -> None:
    """Options shared by ``eod`` and ``backtest``; each overrides the same key of --config."""
    parser.add_argument("--config", type=Path, help="RUN.toml with policy settings")
    parser.add_argument("--method", choices=["fhs", "mc", "hs"], help="scenario method (fhs)")
    parser.add_argument("--measure", choices=["es", "var"], help="risk measure (es)")
    parser.add_argument("--confidence", type=float, help="confidence level in (0, 1) (0.99)")
    parser.add_argument("--horizon", type=int, metavar="DAYS",
                        help="margin period of risk in days (2)")
    parser.add_argument("--lookback", type=int, metavar="DAYS",
                        help="daily returns in the scenario window (1000)")
    parser.add_argument("--scenarios", type=int, metavar="N",
                        help="Monte Carlo scenarios (10000)")
    parser.add_argument("--seed", type=int, metavar="N", help="random seed (0)")
    parser.add_argument("--quiet", action="store_true", help="no progress output")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="riskmodel",
        description="Portfolio-margin engine: VaR/ES margin over netted portfolios.",
    )
    parser.add_argument("--version", action="version", version=f"riskmodel {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    demo = sub.add_parser("demo", help="run the whole flow on data shipped with arch",
                          description="Build a demo book from arch.data (S&P 500, NASDAQ, WTI), "
                          "write its inputs under DIR/inputs and run the end-of-day margin run "
                          "into DIR.")
    demo.add_argument("--out", required=True, type=Path, metavar="DIR")
    demo.add_argument("--accounts", type=int, default=300, help="number of demo accounts (300)")
    demo.add_argument("--quiet", action="store_true", help="no progress output")

    eod = sub.add_parser("eod", help="end-of-day margin run",
                         description="Margin every netting set as of a date; outputs under DIR.")
    eod.add_argument("--prices", required=True, type=Path, metavar="FILE")
    eod.add_argument("--instruments", required=True, type=Path, metavar="FILE")
    eod.add_argument("--positions", required=True, type=Path, metavar="FILE")
    eod.add_argument("--accounts", required=True, type=Path, metavar="FILE")
    eod.add_argument("--out", required=True, type=Path, metavar="DIR")
    eod.add_argument("--params", type=Path, metavar="PARAMS.json",
                     help="parameter set from `riskmodel calibrate` (default: fit at run time)")
    eod.add_argument("--as-of", metavar="DATE", help="market date (default: last price date)")
    eod.add_argument("--chunk-size", type=int, metavar="N",
                     help="netting sets per tail-kernel chunk (4096)")
    eod.add_argument("--previous-run", type=Path, metavar="DIR",
                     help="previous eod output folder (anti-procyclicality buffer release)")
    eod.add_argument("--engine", choices=["local", "dask"], default="local",
                     help="run the book stage here or on a Dask cluster (local)")
    eod.add_argument("--scheduler", metavar="ADDRESS",
                     help="Dask scheduler to use (default: a LocalCluster of --workers)")
    eod.add_argument("--workers", type=int, metavar="N",
                     help="worker processes of the LocalCluster (2)")
    eod.add_argument("--partition-size", type=int, metavar="N",
                     help="netting sets per partition (run.partition_size, 50000)")
    eod.add_argument("--resume", action="store_true",
                     help="reuse the finished partitions of a killed run with the same inputs")
    _shared_options(eod)

    scen = sub.add_parser("scenarios", help="export the scenario sets a run would use",
                          description="Write the model scenarios (and with --stress the stress "
                          "scenarios) of a run to a Parquet file, one row per scenario and one "
                          "column per factor.")
    scen.add_argument("--prices", required=True, type=Path, metavar="FILE")
    scen.add_argument("--out", required=True, type=Path, metavar="FILE.parquet")
    scen.add_argument("--factors", metavar="A,B,...",
                      help="price columns to include (default: all)")
    scen.add_argument("--params", type=Path, metavar="PARAMS.json")
    scen.add_argument("--as-of", metavar="DATE", help="market date (default: last price date)")
    scen.add_argument("--stress", action="store_true",
                      help="also the named historical windows and user shock files")
    _shared_options(scen)

    whatif = sub.add_parser("whatif", help="margin after hypothetical trades, from a finished run",
                            description="Recompute model, initial and maintenance margin of the "
                            "netting sets the trades touch, from the state an eod run keeps "
                            "under DIR/state (no re-run of the batch).")
    whatif.add_argument("--run", required=True, type=Path, metavar="DIR",
                        help="output folder of `riskmodel eod`")
    whatif.add_argument("--trades", required=True, type=Path, metavar="FILE",
                        help="account_id, instrument_id, quantity [, netting_set] (CSV/Parquet)")
    whatif.add_argument("--out", required=True, type=Path, metavar="FILE.csv")
    whatif.add_argument("--quiet", action="store_true", help="no summary output")

    lmap = sub.add_parser("liquidation-map",
                          help="how many netting sets a price move would liquidate",
                          description="For a grid of instant moves of each underlying and of "
                          "all together, count the netting sets of a finished run that would "
                          "be in margin call and in liquidation, the notional liquidated and "
                          "the penalties; with --cascade, feed the liquidations back into the "
                          "prices (square-root impact) until no new liquidation occurs.")
    lmap.add_argument("--run", required=True, type=Path, metavar="DIR",
                      help="output folder of `riskmodel eod`")
    lmap.add_argument("--out", required=True, type=Path, metavar="DIR")
    lmap.add_argument("--cascade", action="store_true",
                      help="also run a cascade from every move of the grid")
    lmap.add_argument("--quiet", action="store_true", help="no summary output")

    cal = sub.add_parser("calibrate", help="fit GARCH-family parameters per risk factor with arch",
                         description="Estimate each price column's volatility model and the "
                         "dependence of their standardised residuals; write a parameter set for "
                         "`eod --params`.")
    cal.add_argument("--prices", required=True, type=Path, metavar="FILE")
    cal.add_argument("--out", required=True, type=Path, metavar="PARAMS.json")
    cal.add_argument("--config", type=Path,
                     help="RUN.toml ([calibration], [returns], volatility.garch_fit_window)")
    cal.add_argument("--model", choices=["auto", "garch", "gjr", "egarch"],
                     help="volatility model; auto picks by BIC (calibration.model, garch)")
    cal.add_argument("--dist", choices=["auto", "normal", "t", "skewt"],
                     help="innovation distribution; auto picks by BIC (normal)")
    cal.add_argument("--mean", choices=["zero", "constant"], help="mean model (zero)")
    cal.add_argument("--backcast", choices=["ewma", "sample"],
                     help="pre-sample variance rule (ewma)")
    cal.add_argument("--start", metavar="DATE", help="first date of the estimation sample")
    cal.add_argument("--end", metavar="DATE", help="last date of the estimation sample")
    cal.add_argument("--jobs", type=int, default=1, metavar="N", help="processes (1)")
    cal.add_argument("--report", type=Path, metavar="DIR",
                     help="also write a diagnostics report (Markdown and PNG plots) here")
    cal.add_argument("--quiet", action="store_true", help="no progress output")
    bt = sub.add_parser("backtest", help="replay the margin model over history",
                        description="For every date from --start to --end, the margin of each "
                        "netting set with data up to that date only (the eod engine), against "
                        "the loss the same positions realised over the margin period of risk; "
                        "coverage tests, procyclicality and the flat-rate comparison. Without "
                        "--positions, built-in long, short and hedged portfolios of every "
                        "underlying.")
    bt.add_argument("--prices", required=True, type=Path, metavar="FILE")
    bt.add_argument("--instruments", required=True, type=Path, metavar="FILE")
    bt.add_argument("--positions", type=Path, metavar="FILE",
                    help="static portfolios, one per netting set (default: built-in portfolios)")
    bt.add_argument("--out", required=True, type=Path, metavar="DIR")
    bt.add_argument("--start", metavar="DATE",
                    help="first backtest date (default: the first with a full lookback window)")
    bt.add_argument("--end", metavar="DATE", help="last backtest date (default: last price date)")
    bt.add_argument("--params", type=Path, metavar="PARAMS.json",
                    help="parameter set estimated on data up to --start at the latest "
                    "(default: fit GARCH on the data before the first date)")
    bt.add_argument("--recalibrate-every", type=int, metavar="N",
                    help="refit the GARCH parameters every N dates on the data up to that date")
    bt.add_argument("--step", type=int, default=1, metavar="N",
                    help="evaluate every N-th date (1)")
    _shared_options(bt)

    study = sub.add_parser("study", help="backtest a grid of margin parameters",
                           description="Run the backtest for every point of a parameter grid "
                           "(GRID.toml maps RUN.toml keys to lists of values, e.g. confidence "
                           "= [0.975, 0.99]) and tabulate coverage against cost.")
    study.add_argument("--prices", required=True, type=Path, metavar="FILE")
    study.add_argument("--instruments", required=True, type=Path, metavar="FILE")
    study.add_argument("--positions", type=Path, metavar="FILE",
                       help="static portfolios (default: built-in portfolios)")
    study.add_argument("--out", required=True, type=Path, metavar="DIR")
    study.add_argument("--grid", required=True, type=Path, metavar="GRID.toml")
    study.add_argument("--start", metavar="DATE", help="first backtest date")
    study.add_argument("--end", metavar="DATE", help="last backtest date")
    study.add_argument("--step", type=int, default=1, metavar="N",
                       help="evaluate every N-th date (1)")
    _shared_options(study)
    return parser


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


def _progress(quiet: bool, what: str = "netting sets", label: str = "tail kernels") -> Any:
    """A one-line progress indicator on stderr, only when stderr is a terminal."""
    if quiet or not sys.stderr.isatty():
        return None

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
    """Run-time estimation for `eod` without --params and the backtest's refits (the engine
    never imports calibration): each factor fitted on its sample, proxies resolved as
    `calibrate` resolves them."""

    def fit(samples: Any, config: Any) -> Any:
        # imported on first use: arch costs about 2 s to import, a run on EWMA never needs it
        from calibration.estimate import Spec
        from calibration.runner import fit_samples

        return fit_samples(samples, Spec.from_config(config.calibration, config.ewma_lambda))

    return fit


def cmd_eod(args: argparse.Namespace) -> int:
    from riskmodel.batch.eod import EodInputs, run_eod, write_eod
    from riskmodel.batch.partitions import EngineOptions, work_dir_for
    from riskmodel.volatility.params import load_parameter_set

    _freeze_heap()  # the engine's modules are loaded now
    config, source = _config_with_source(args)
    params = load_parameter_set(args.params) if args.params else None
    inputs = EodInputs(args.prices, args.instruments, args.positions, args.accounts, args.params)
    if (args.scheduler or args.workers) and args.engine != "dask":
        raise UsageError("--scheduler and --workers need --engine dask")
    if Path(args.out).exists() and not Path(args.out).is_dir():
        raise UsageError(f"--out {args.out}: exists and is not a folder")
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
    if not args.quiet:
        _summary(result.manifest, args.out)
    return 0


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
    for w in manifest["warnings"]:
        print(f"  warning: {w}")
    print(f"  outputs in {out}")


def cmd_demo(args: argparse.Namespace) -> int:
    from riskmodel.batch.eod import EodInputs, run_eod, write_eod
    from riskmodel.demo import write_demo_inputs
    from riskmodel.engine.store import load_config_source
    from riskmodel.io.outputs import staged_output

    if args.accounts < 1:
        raise UsageError(f"--accounts = {args.accounts} must be >= 1")
    out = Path(args.out)
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
        write_eod(result, out)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    if not args.quiet:
        _summary(result.manifest, out)
        i = out / "inputs"
        print("  rerun with:  riskmodel eod "
              f"--prices {i}/prices.csv --instruments {i}/instruments.csv "
              f"--positions {i}/positions.csv --accounts {i}/accounts.csv "
              f"--config {i}/run.toml --out {out}/rerun")
    return 0


def cmd_calibrate(args: argparse.Namespace) -> int:
    import dataclasses

    from calibration.estimate import Spec
    from calibration.runner import calibrate
    from riskmodel.config import load_config
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
    if not out.parent.exists():
        raise UsageError(f"--out {out}: folder {out.parent} does not exist")
    history = load_prices(args.prices, config.return_kind)
    end = resolve_market_date(history, args.end)
    market = build_market_data(history, history.assets, end, config.return_kind)
    returns = market.returns
    if args.start is not None:
        start = resolve_market_date(history, args.start)
        returns = returns.loc[start:]
    # each factor is fitted on its own last `garch_fit_window` returns
    returns = returns.apply(
        lambda c: c.dropna().iloc[-config.garch_fit_window:].reindex(returns.index)
    ).dropna(how="all")
    data = {"file": str(args.prices), "sha256": sha256_file(args.prices),
            "start": returns.index[0].isoformat(), "end": end.isoformat(),
            "max_returns_per_factor": config.garch_fit_window,
            "return_kinds": market.return_kinds}
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
    if not args.quiet:
        counts = ", ".join(f"{k} {v['count']}" for k, v in prov["sets"].items())
        print(f"scenarios as of {prov['market_date'][:10]} ({counts}) written to {args.out}")
        for w in prov["warnings"]:
            print(f"  warning: {w}")
    return 0


def cmd_whatif(args: argparse.Namespace) -> int:
    from riskmodel.whatif import load_run, load_trades, what_if, write_result

    out = Path(args.out)
    if out.suffix not in (".csv", ".parquet"):
        raise UsageError(f"--out {out}: must end in .csv or .parquet")
    if not out.absolute().parent.is_dir():
        raise UsageError(f"--out {out}: folder {out.absolute().parent} does not exist")
    state = load_run(args.run)
    trades = load_trades(args.trades, state)
    result = what_if(state, trades)
    write_result(result, out)
    if not args.quiet:
        print(f"riskmodel whatif: {len(result)} netting sets touched; initial margin "
              f"{result['initial_margin_before'].sum():,.0f} -> "
              f"{result['initial_margin_after'].sum():,.0f}; written to {out}")
    return 0


def cmd_liquidation_map(args: argparse.Namespace) -> int:
    from riskmodel.liquidation.map_run import write_liquidation_map

    manifest = write_liquidation_map(args.run, args.out, cascade=args.cascade)
    if not args.quiet:
        worst = manifest["worst"]
        print(f"riskmodel liquidation-map: {manifest['netting_sets']} netting sets, "
              f"{manifest['liquidation_now']} in liquidation now; worst: "
              f"{worst['n_liquidation']} at {worst['move']:+.1%} of {worst['scope']}; "
              f"written to {args.out}")
    return 0


def cmd_backtest(args: argparse.Namespace) -> int:
    from riskmodel.backtest.run import (
        BacktestInputs,
        BacktestWindow,
        run_backtest,
        write_backtest,
    )
    from riskmodel.volatility.params import load_parameter_set

    config, source = _config_with_source(args)
    window = BacktestWindow(args.start, args.end, args.step, args.recalibrate_every)
    params = load_parameter_set(args.params) if args.params else None
    inputs = BacktestInputs(args.prices, args.instruments, args.positions, args.params)
    result = run_backtest(inputs, config, window, params=params, fitter=garch_fitter(),
                          dependence_fitter=dependence_fitter(),
                          progress=_progress(args.quiet, "dates", "backtest"),
                          config_source=source)
    write_backtest(result, args.out)
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
        for w in result.summary["warnings"]:
            print(f"  warning: {w}")
        print(f"  outputs in {args.out}")
    return 0


def cmd_study(args: argparse.Namespace) -> int:
    from calibration.studies import load_grid, run_study, write_study
    from riskmodel.backtest.run import BacktestInputs, BacktestWindow
    from riskmodel.config import read_toml

    raw = read_toml(getattr(args, "config", None))
    grid = load_grid(args.grid)
    window = BacktestWindow(args.start, args.end, args.step)
    inputs = BacktestInputs(args.prices, args.instruments, args.positions)
    study = run_study(inputs, raw, _overrides(args), grid, window, fitter=garch_fitter(),
                      dependence_fitter=dependence_fitter(),
                      progress=_progress(args.quiet, "grid points", "study"))
    write_study(study, args.out)
    if not args.quiet:
        print(f"riskmodel study: {len(study.table)} grid points written to {args.out}")
        for note in study.notes:
            print(f"  warning: {note}")
    return 0


COMMANDS = {"eod": cmd_eod, "demo": cmd_demo, "calibrate": cmd_calibrate,
            "scenarios": cmd_scenarios, "whatif": cmd_whatif,
            "liquidation-map": cmd_liquidation_map, "backtest": cmd_backtest,
            "study": cmd_study}


# True in the ``riskmodel`` program (:func:`console`), whose process ends with the command.
_IN_PROGRAM = False


def _freeze_heap() -> None:
    """In the program only, move every object alive now into the garbage collector's permanent
    generation, which its passes skip. The modules a command imports (pandas', numba's: about
    10^5 objects) live until the process exits, and the full passes over them cost about 0.1 s
    in a venue-size eod run and as much again while the interpreter tears down. Not in a
    caller's own process (tests, notebooks): frozen objects in a reference cycle are never
    freed."""
    if _IN_PROGRAM:
        gc.freeze()


def console() -> NoReturn:
    """The ``riskmodel`` console script: :func:`main` in a process that ends with it."""
    global _IN_PROGRAM
    _IN_PROGRAM = True
    code = main()
    _freeze_heap()  # nothing is collected any more: skip the passes of the teardown
    sys.exit(code)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except RiskModelError as exc:
        print(f"riskmodel {args.command}: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print(f"riskmodel {args.command}: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # noqa: BLE001 - the last line of defence maps to exit 1
        if os.environ.get("RISKMODEL_DEBUG"):
            traceback.print_exc()
        print(f"riskmodel {args.command}: unexpected error: {type(exc).__name__}: {exc}",
              file=sys.stderr)
        return 1


if __name__ == "__main__":  # pragma: no cover
    console()
