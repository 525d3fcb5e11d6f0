"""``riskmodel waterfall``: what happens when margin is not enough (:mod:`riskmodel.waterfall`)."""

from __future__ import annotations

import argparse
from pathlib import Path

from riskmodel.errors import UsageError

SUMMARY = "default waterfall: insurance fund, auto-deleveraging, socialised loss, cover-2"
DESCRIPTION = ("For each stress scenario of a finished eod run (or each move of a scenario "
               "file), close out the sets that end in liquidation at slipped prices and "
               "allocate their bankruptcy losses: own collateral, insurance fund, "
               "auto-deleveraging, socialised loss, uncovered; and size the default fund that "
               "covers the members with the largest stress losses beyond margin.")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--run", required=True, type=Path, metavar="DIR",
                   help="output folder of `riskmodel eod`")
    p.add_argument("--out", required=True, type=Path, metavar="DIR",
                   help="output folder: waterfall, adl, cover, report, manifest")
    p.add_argument("--scenarios", type=Path, metavar="FILE",
                   help="moves per underlying (scenario, asset, shock; default: the run's stress "
                   "scenarios and the liquidation map's moves)")
    p.add_argument("--config", type=Path, metavar="RUN.toml",
                   help="[waterfall] settings (default: the run's own)")
    p.add_argument("--cascade", action="store_true",
                   help="close-outs move prices (the cascade model) until a fixed point")
    p.add_argument("--quiet", action="store_true", help="no summary output")


def run(args: argparse.Namespace) -> int:
    raise UsageError("riskmodel waterfall: not available in this version")
