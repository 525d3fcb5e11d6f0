"""``riskmodel waterfall``: what happens when margin is not enough (:mod:`riskmodel.waterfall`)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from riskmodel.errors import UsageError

if TYPE_CHECKING:
    from riskmodel.config import WaterfallConfig

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


def _waterfall_config(path: Path | None) -> WaterfallConfig | None:
    """The ``[waterfall]`` section of ``--config`` (None: the run's own)."""
    if path is None:
        return None
    from riskmodel.config import load_config

    if not path.is_file():
        raise UsageError(f"--config {path}: no such file")
    return load_config(path).waterfall


def _progress(quiet: bool) -> Callable[[int, int], None] | None:
    if quiet or not sys.stderr.isatty():
        return None

    def report(done: int, total: int) -> None:
        sys.stderr.write(f"\r  scenarios {done}/{total}")
        if done >= total:
            sys.stderr.write("\n")
        sys.stderr.flush()

    return report


def run(args: argparse.Namespace) -> int:
    """Run the waterfall of ``--run`` and write it under ``--out`` (nothing on failure)."""
    from riskmodel.io.outputs import writable_folder
    from riskmodel.waterfall.run import write_waterfall

    writable_folder(args.out)  # before any work: fail on an unwritable --out now
    if args.scenarios is not None and not args.scenarios.is_file():
        raise UsageError(f"--scenarios {args.scenarios}: no such file")
    manifest = write_waterfall(args.run, args.out, scenarios_file=args.scenarios,
                               waterfall=_waterfall_config(args.config),
                               cascade=args.cascade, progress=_progress(args.quiet))
    if not args.quiet:
        worst = manifest.get("worst") or {}
        cover = manifest["cover"]
        print(f"riskmodel waterfall: {manifest['scenarios']['count']} scenarios on "
              f"{manifest['netting_sets']} netting sets; worst: {worst.get('scenario')!r}, "
              f"bankruptcy loss {worst.get('bankruptcy_loss', 0):,.0f} (fund "
              f"{worst.get('fund_used', 0):,.0f}, ADL {worst.get('adl_amount', 0):,.0f}, "
              f"socialised {worst.get('socialised', 0):,.0f}, uncovered "
              f"{worst.get('uncovered', 0):,.0f}); cover-1 fund "
              f"{cover['cover_1']['fund']:,.0f}, cover-2 {cover['cover_2']['fund']:,.0f}; "
              f"written to {args.out}")
    return 0
