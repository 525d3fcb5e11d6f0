"""The ``riskmodel`` argument parser: one builder per subcommand, each listing only the flags
that command uses, every flag with its help text (defaults in parentheses).

A flag that sets a configuration key overrides the same key of ``--config RUN.toml``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import riskmodel.cli.live as live
import riskmodel.cli.waterfall as waterfall
from riskmodel import __version__

FILES = {
    "prices": "prices, CSV or Parquet: long (date, asset, price) or wide (date, one column "
              "per asset)",
    "instruments": "instruments, CSV or Parquet: instrument_id, kind, underlying, multiplier "
                   "(and the option columns)",
    "positions": "positions, CSV or Parquet: account_id, instrument_id, quantity "
                 "[, netting_set]",
    "accounts": "accounts, CSV or Parquet: account_id, collateral [, netting_set, "
                "account_type, asset, amount]",
}


#: Each subcommand's one-line help and its description (``riskmodel COMMAND --help``).
SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "demo": (
        "run the whole flow on data shipped with arch",
        "Build a demo book from arch.data (S&P 500, NASDAQ, WTI), "
        "write its inputs under DIR/inputs and run the end-of-day margin run "
        "into DIR.",
    ),
    "eod": (
        "end-of-day margin run",
        "Margin every netting set as of a date; outputs under DIR.",
    ),
    "scenarios": (
        "export the scenario sets a run would use",
        "Write the model scenarios (and with --stress the stress "
        "scenarios) of a run to a Parquet file, one row per scenario and one "
        "column per factor.",
    ),
    "whatif": (
        "margin after hypothetical trades, from a finished run",
        "Recompute model, initial and maintenance margin of the "
        "netting sets the trades touch, from the priced market an eod run keeps "
        "under DIR/state (no re-run of the batch).",
    ),
    "liquidation-map": (
        "how many netting sets a price move would liquidate",
        "For a grid of instant moves of each underlying and of all "
        "together, count the netting sets of a finished run that would be in "
        "margin call and in liquidation, the notional liquidated and the "
        "penalties; with --cascade, feed the liquidations back into the prices "
        "(square-root impact) until no new liquidation occurs.",
    ),
    "calibrate": (
        "fit GARCH-family parameters per risk factor with arch",
        "Estimate each price column's volatility model and the "
        "dependence of their standardised residuals; write a parameter set for "
        "`eod --params`.",
    ),
    "backtest": (
        "replay the margin model over history",
        "For every date from --start to --end, the margin of each "
        "netting set with data up to that date only (the eod engine), against "
        "the loss the same positions realised over the margin period of risk; "
        "coverage tests, procyclicality and the flat-rate comparison. Without "
        "--positions, built-in long, short and hedged portfolios of every "
        "underlying.",
    ),
    "study": (
        "backtest a grid of margin parameters",
        "Run the backtest for every point of a parameter grid "
        "(GRID.toml maps RUN.toml keys to lists of values, e.g. confidence "
        "= [0.975, 0.99]) and tabulate coverage against cost.",
    ),
}


def _files(parser: argparse.ArgumentParser, *names: str, optional: tuple[str, ...] = ()
           ) -> None:
    """``--prices``, ``--instruments``, ... with their formats in the help."""
    for name in names:
        parser.add_argument(f"--{name}", required=name not in optional, type=Path,
                            metavar="FILE", help=FILES[name])


def _scenario_options(parser: argparse.ArgumentParser) -> None:
    """How scenarios are generated (each overrides the same key of --config)."""
    parser.add_argument("--config", type=Path, metavar="RUN.toml",
                        help="policy settings; every key and its default in "
                        "data/run.example.toml")
    parser.add_argument("--method", choices=["fhs", "mc", "hs", "grid"],
                        help="scenario method (fhs); grid: the venue rule's scenario-grid "
                        "portfolio margin, configured by [grid]")
    parser.add_argument("--horizon", type=int, metavar="DAYS",
                        help="margin period of risk in days (2)")
    parser.add_argument("--lookback", type=int, metavar="DAYS",
                        help="daily returns in the scenario window (1000)")
    parser.add_argument("--scenarios", type=int, metavar="N",
                        help="Monte Carlo scenarios (10000)")
    parser.add_argument("--seed", type=int, metavar="N", help="Monte Carlo seed (0)")


def _margin_options(parser: argparse.ArgumentParser) -> None:
    """The scenario options and the risk measure: what eod, backtest and study share."""
    _scenario_options(parser)
    parser.add_argument("--measure", choices=["es", "var"], help="risk measure (es)")
    parser.add_argument("--confidence", type=float, metavar="X",
                        help="confidence level in (0, 1) (0.99)")


def _run(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--run", required=True, type=Path, metavar="DIR",
                        help="output folder of `riskmodel eod`")


def _out(parser: argparse.ArgumentParser, metavar: str, what: str) -> None:
    parser.add_argument("--out", required=True, type=Path, metavar=metavar, help=what)


def _quiet(parser: argparse.ArgumentParser, what: str = "progress and summary") -> None:
    parser.add_argument("--quiet", action="store_true", help=f"no {what} output")


def _backtest_dates(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--start", metavar="DATE",
                        help="first backtest date, ISO 8601 (default: the first with a full "
                        "lookback window)")
    parser.add_argument("--end", metavar="DATE",
                        help="last backtest date, ISO 8601 (default: the last price date)")
    parser.add_argument("--step", type=int, default=1, metavar="N",
                        help="evaluate every N-th date of the calendar (1)")


def _demo(p: argparse.ArgumentParser) -> None:
    _out(p, "DIR", "output folder (created; nothing is written there on failure)")
    p.add_argument("--accounts", type=int, default=300, help="number of demo accounts (300)")
    _quiet(p)


def _eod(p: argparse.ArgumentParser) -> None:
    _files(p, "prices", "instruments", "positions", "accounts")
    _out(p, "DIR", "output folder: margins, attribution, factors, state, report.html, "
                   "manifest (written whole or not at all)")
    _valuation(p)
    p.add_argument("--previous-run", type=Path, metavar="DIR",
                   help="previous eod output folder (anti-procyclicality buffer release)")
    _margin_options(p)
    _batch_engine(p.add_argument_group("how the book stage runs"))
    _quiet(p)


def _valuation(p: argparse.ArgumentParser) -> None:
    """The parameter set and the market date of a run."""
    p.add_argument("--params", type=Path, metavar="PARAMS.json",
                   help="parameter set from `riskmodel calibrate` (default: fit at run time)")
    p.add_argument("--as-of", metavar="DATE",
                   help="market date, ISO 8601 (default: the last price date)")


def _batch_engine(group: argparse._ArgumentGroup) -> None:
    """Partitions, Dask and resume; none of them changes a figure."""
    flags: list[tuple[str, str, dict]] = [
        ("--chunk-size", "netting sets per tail-kernel chunk (4096)",
         {"type": int, "metavar": "N"}),
        ("--engine", "run the book stage here or on a Dask cluster (local)",
         {"choices": ["local", "dask"], "default": "local"}),
        ("--scheduler", "Dask scheduler to use (default: a LocalCluster of --workers)",
         {"metavar": "ADDRESS"}),
        ("--workers", "worker processes of the LocalCluster (2)", {"type": int, "metavar": "N"}),
        ("--partition-size", "netting sets per partition (run.partition_size, 50000)",
         {"type": int, "metavar": "N"}),
        ("--resume", "reuse the finished partitions of a killed run with the same inputs",
         {"action": "store_true"}),
    ]
    for name, text, options in flags:
        group.add_argument(name, help=text, **options)


def _scenarios(p: argparse.ArgumentParser) -> None:
    _files(p, "prices")
    _out(p, "FILE.parquet", "the scenario file (Parquet, written atomically)")
    p.add_argument("--factors", metavar="A,B,...", help="price columns to include (default: all)")
    _valuation(p)
    p.add_argument("--stress", action="store_true",
                   help="also the named historical windows and user shock files")
    _scenario_options(p)
    _quiet(p, "summary")


def _whatif(p: argparse.ArgumentParser) -> None:
    _run(p)
    p.add_argument("--trades", required=True, type=Path, metavar="FILE",
                   help="account_id, instrument_id, quantity [, netting_set] (CSV/Parquet)")
    _out(p, "FILE.csv", "one row per touched netting set (.csv or .parquet)")
    _quiet(p, "summary")


def _liquidation_map(p: argparse.ArgumentParser) -> None:
    _run(p)
    _out(p, "DIR", "output folder: map table, heatmap, report, manifest")
    p.add_argument("--cascade", action="store_true",
                   help="also run a cascade from every move of the grid")
    _quiet(p, "summary")


def _calibrate(p: argparse.ArgumentParser) -> None:
    _files(p, "prices")
    _out(p, "PARAMS.json", "the parameter set (JSON, written atomically)")
    p.add_argument("--config", type=Path, metavar="RUN.toml",
                   help="[calibration], [returns], volatility.garch_fit_window")
    p.add_argument("--model", choices=["auto", "garch", "gjr", "egarch"],
                   help="volatility model; auto picks by BIC (calibration.model, garch)")
    p.add_argument("--dist", choices=["auto", "normal", "t", "skewt"],
                   help="innovation distribution; auto picks by BIC (normal)")
    p.add_argument("--mean", choices=["zero", "constant"], help="mean model (zero)")
    p.add_argument("--backcast", choices=["ewma", "sample"],
                   help="pre-sample variance rule (ewma)")
    p.add_argument("--start", metavar="DATE", help="first date of the estimation sample")
    p.add_argument("--end", metavar="DATE", help="last date of the estimation sample")
    p.add_argument("--jobs", type=int, default=1, metavar="N", help="processes (1)")
    p.add_argument("--report", type=Path, metavar="DIR",
                   help="also write a diagnostics report (Markdown, HTML, PNG plots) here")
    _quiet(p)


def _backtest(p: argparse.ArgumentParser) -> None:
    _files(p, "prices", "instruments", "positions", optional=("positions",))
    _out(p, "DIR", "output folder: backtest table, summary, plots, report, manifest")
    _backtest_dates(p)
    p.add_argument("--params", type=Path, metavar="PARAMS.json",
                   help="parameter set estimated on data up to --start at the latest "
                   "(default: fit GARCH on the data before the first date)")
    p.add_argument("--recalibrate-every", type=int, metavar="N",
                   help="refit the GARCH parameters every N dates on the data up to that date "
                   "(default 21 where GARCH is fitted; 0: one fit)")
    _margin_options(p)
    _quiet(p)


def _study(p: argparse.ArgumentParser) -> None:
    _files(p, "prices", "instruments", "positions", optional=("positions",))
    _out(p, "DIR", "output folder: study table and plot")
    p.add_argument("--grid", required=True, type=Path, metavar="GRID.toml",
                   help="RUN.toml keys mapped to lists of values")
    _backtest_dates(p)
    _margin_options(p)
    _quiet(p)


def build_parser() -> argparse.ArgumentParser:
    """The parser of every subcommand."""
    parser = argparse.ArgumentParser(
        prog="riskmodel",
        description="Portfolio-margin engine: VaR/ES margin over netted portfolios.",
    )
    parser.add_argument("--version", action="version", version=f"riskmodel {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    builders = {"demo": _demo, "eod": _eod, "scenarios": _scenarios, "whatif": _whatif,
                "liquidation-map": _liquidation_map, "calibrate": _calibrate,
                "backtest": _backtest, "study": _study}
    for name, (summary, description) in SUBCOMMANDS.items():
        builders[name](sub.add_parser(name, help=summary, description=description))
    # commands that keep their flags beside their code
    for name, module in (("live", live), ("waterfall", waterfall)):
        module.add_arguments(sub.add_parser(name, help=module.SUMMARY,
                                            description=module.DESCRIPTION))
    return parser
