"""``riskmodel live``: the intraday loop over a finished run (:mod:`riskmodel.live`)."""

from __future__ import annotations

import argparse
from pathlib import Path

from riskmodel.errors import UsageError

SUMMARY = "follow margin levels through the day: ticks, trades, transfers, funding"
DESCRIPTION = ("Re-mark every netting set of a finished eod run at each price tick, apply "
               "trades, transfers and funding as they come, refresh requirements with the "
               "run's scenario set, and record every status change, margin call and "
               "liquidation order as an event.")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--run", required=True, type=Path, metavar="DIR",
                   help="output folder of `riskmodel eod`")
    p.add_argument("--ticks", required=True, metavar="FILE",
                   help="time, asset, price (CSV/Parquet, or - for JSON lines on stdin)")
    p.add_argument("--trades", metavar="FILE",
                   help="time, account_id, instrument_id, quantity [, netting_set]")
    p.add_argument("--transfers", metavar="FILE", help="time, account_id, amount (signed)")
    p.add_argument("--funding", metavar="FILE", help="time, instrument_id, rate")
    p.add_argument("--out", required=True, type=Path, metavar="DIR",
                   help="output folder: events, margins, liquidation orders, manifest")
    p.add_argument("--config", type=Path, metavar="RUN.toml",
                   help="[live] settings (default: the run's own)")
    p.add_argument("--exact", action="store_true",
                   help="recompute every touched set's requirements on every tick")
    p.add_argument("--resume", action="store_true",
                   help="continue a killed replay from its checkpoint under --out")
    p.add_argument("--quiet", action="store_true", help="no progress and summary output")


def run(args: argparse.Namespace) -> int:
    raise UsageError("riskmodel live: not available in this version")
