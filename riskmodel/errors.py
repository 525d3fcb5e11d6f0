"""Exception hierarchy; each class maps to one CLI exit code (see DESIGN.md, public contract)."""

from __future__ import annotations


class RiskModelError(Exception):
    """Base class of every error the engine raises on purpose."""

    exit_code = 1


class UsageError(RiskModelError):
    """Bad command-line option or configuration value (exit 2)."""

    exit_code = 2


class InputDataError(RiskModelError):
    """An input file is missing, malformed or inconsistent (exit 3).

    The message names the file, the row or date, the column and the offending value.
    """

    exit_code = 3


class ModelError(RiskModelError):
    """Calibration or model failure (exit 4)."""

    exit_code = 4
