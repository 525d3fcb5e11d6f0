"""``riskmodel live``: the intraday loop over a finished run (:mod:`riskmodel.live`)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from riskmodel.errors import UsageError

if TYPE_CHECKING:
    from riskmodel.config import LiveConfig

SUMMARY = "follow margin levels through the day: ticks, trades, transfers, funding"
DESCRIPTION = ("Re-mark every netting set of a finished eod run at each price tick, apply "
               "trades, transfers and funding as they come, refresh requirements with the "
               "run's scenario set, and record every status change, margin call and "
               "liquidation order as an event.")


#: the input files: flag, required, columns (CSV or Parquet, or - for JSON lines on stdin)
INPUTS = (("--ticks", True, "time, asset, price"),
          ("--trades", False, "time, account_id, instrument_id, quantity [, netting_set]"),
          ("--transfers", False, "time, account_id, amount (signed) [, netting_set]"),
          ("--funding", False, "time, instrument_id, rate"))


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--run", required=True, type=Path, metavar="DIR",
                   help="output folder of `riskmodel eod`")
    for flag, required, columns in INPUTS:
        p.add_argument(flag, required=required, metavar="FILE",
                       help=f"{columns} (CSV/Parquet, or - for JSON lines on stdin)")
    p.add_argument("--out", required=True, type=Path, metavar="DIR",
                   help="output folder: events, margins, liquidation orders, manifest")
    p.add_argument("--config", type=Path, metavar="RUN.toml",
                   help="[live] settings (default: the run's own)")
    p.add_argument("--exact", action="store_true",
                   help="recompute every touched set's requirements on every tick")
    p.add_argument("--resume", action="store_true",
                   help="continue a killed replay from its checkpoint (kept beside --out)")
    p.add_argument("--quiet", action="store_true", help="no progress and summary output")


def _live_config(path: Path | None) -> LiveConfig | None:
    """The ``[live]`` section of ``--config`` (None: the run's own)."""
    if path is None:
        return None
    from riskmodel.config import load_config

    if not path.is_file():
        raise UsageError(f"--config {path}: no such file")
    return load_config(path).live


def _progress(quiet: bool) -> Callable[[int], None] | None:
    if quiet or not sys.stderr.isatty():
        return None

    def report(done: int) -> None:
        sys.stderr.write(f"\r  inputs {done:,}")
        sys.stderr.flush()

    return report


def run(args: argparse.Namespace) -> int:
    """Replay the inputs over ``--run`` and write the outputs under ``--out`` (nothing on
    failure)."""
    from riskmodel.io.outputs import writable_folder
    from riskmodel.live.replay import LiveInputs, replay, summary

    writable_folder(args.out)  # before any work: the work folder goes beside it
    inputs = LiveInputs(args.ticks, args.trades, args.transfers, args.funding)
    result = replay(args.run, inputs, args.out, exact=args.exact,
                    live=_live_config(args.config), resume=args.resume,
                    progress=_progress(args.quiet))
    if not args.quiet:
        if sys.stderr.isatty():
            sys.stderr.write("\n")
        print(summary(result.manifest) + f"; written to {args.out}")
    return 0
