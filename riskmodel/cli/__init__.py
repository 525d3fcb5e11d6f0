"""Command line: parse arguments, delegate, map errors to exit codes.

The parser is :mod:`riskmodel.cli.parser`, the commands :mod:`riskmodel.cli.commands` (the
composition root: the only module that reaches into both ``riskmodel`` and ``calibration``).

Exit codes: 0 success, 2 usage, 3 invalid input data, 4 calibration or model failure,
1 anything unexpected. Errors print one line on stderr, never a traceback (set
``RISKMODEL_DEBUG=1`` to see one for unexpected errors).
"""

from __future__ import annotations

import os
import sys
import traceback
from collections.abc import Sequence
from typing import NoReturn

import riskmodel.cli.live as live
import riskmodel.cli.process as process
import riskmodel.cli.waterfall as waterfall
from riskmodel.cli.commands import (
    cmd_backtest,
    cmd_calibrate,
    cmd_demo,
    cmd_eod,
    cmd_liquidation_map,
    cmd_scenarios,
    cmd_study,
    cmd_whatif,
    dependence_fitter,
    garch_fitter,
)
from riskmodel.cli.parser import build_parser
from riskmodel.cli.process import freeze_heap
from riskmodel.errors import RiskModelError

__all__ = ["build_parser", "console", "dependence_fitter", "freeze_heap", "garch_fitter",
           "main"]

COMMANDS = {"eod": cmd_eod, "demo": cmd_demo, "calibrate": cmd_calibrate,
            "scenarios": cmd_scenarios, "whatif": cmd_whatif,
            "liquidation-map": cmd_liquidation_map, "backtest": cmd_backtest,
            "study": cmd_study, "live": live.run, "waterfall": waterfall.run}


def console() -> NoReturn:
    """The ``riskmodel`` console script: :func:`main` in a process that ends with it."""
    process.IN_PROGRAM = True
    process.hold_blas_at_one_thread()
    code = main()
    freeze_heap()  # nothing is collected any more: skip the passes of the teardown
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
