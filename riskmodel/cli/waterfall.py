"""``riskmodel waterfall``: what happens when margin is not enough (:mod:`riskmodel.waterfall`)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from riskmodel.errors import UsageError

SUMMARY = "default waterfall: insurance fund, auto-deleveraging, socialised loss, cover-2"
DESCRIPTION = (
    "For each stress scenario of a finished eod run (or each move of a scenario file), close "
    "out the netting sets the engine puts in liquidation at slipped prices and allocate their "
    "bankruptcy losses: own collateral, insurance fund, auto-deleveraging, socialised loss, "
    "uncovered; and size the default fund that covers the members with the largest stress "
    "losses beyond margin (cover-N).")


_FLAGS: tuple[tuple[str, dict[str, Any]], ...] = (
    ("--run", {"required": True, "type": Path, "metavar": "DIR",
               "help": "output folder of `riskmodel eod`"}),
    ("--out", {"required": True, "type": Path, "metavar": "DIR",
               "help": "output folder: waterfall, adl, cover, report, manifest"}),
    ("--scenarios", {"type": Path, "metavar": "FILE",
                     "help": "moves per underlying (scenario, asset, shock; default: the run's "
                     "stress scenarios and the liquidation map's moves)"}),
    ("--config", {"type": Path, "metavar": "RUN.toml",
                  "help": "[waterfall] settings (default: the run's own)"}),
    ("--cascade", {"action": "store_true",
                   "help": "close-outs move prices (the cascade model) until a fixed point"}),
    ("--quiet", {"action": "store_true", "help": "no summary output"}),
)


def add_arguments(p: argparse.ArgumentParser) -> None:
    for flag, options in _FLAGS:
        p.add_argument(flag, **options)


def run(args: argparse.Namespace) -> int:
    """Run the waterfall of ``--run`` and write it under ``--out`` (nothing on failure)."""
    from riskmodel.cli.commands import _progress
    from riskmodel.config import load_config
    from riskmodel.io.outputs import writable_folder
    from riskmodel.waterfall.run import write_waterfall

    writable_folder(args.out)  # before any work: fail on an unwritable --out now
    for flag, path in (("--scenarios", args.scenarios), ("--config", args.config)):
        if path is not None and not path.is_file():
            raise UsageError(f"{flag} {path}: no such file")
    # --config brings [waterfall] only: the run's market was priced under its own policy
    waterfall = load_config(args.config).waterfall if args.config is not None else None
    manifest = write_waterfall(args.run, args.out, scenarios_file=args.scenarios,
                               waterfall=waterfall, cascade=args.cascade,
                               progress=_progress(args.quiet, "scenarios", "waterfall"))
    if not args.quiet:
        worst = manifest.get("worst") or {}
        cover = manifest["cover"]
        print(f"riskmodel waterfall: {manifest['scenarios']['count']} scenarios on "
              f"{manifest['netting_sets']} netting sets; worst: {worst.get('scenario')!r}, "
              f"bankruptcy loss {worst.get('bankruptcy_loss', 0):,.0f} (fund "
              f"{worst.get('fund_used', 0):,.0f}, ADL {worst.get('adl_amount', 0):,.0f}, "
              f"socialised {worst.get('socialised', 0):,.0f}, uncovered "
              f"{worst.get('uncovered', 0):,.0f}); cover-1 fund "
              f"{cover['cover_1']['fund']:,.0f}, cover-2 fund {cover['cover_2']['fund']:,.0f}; "
              f"written to {args.out}")
    return 0
