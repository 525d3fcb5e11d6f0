"""Small validators shared by the configuration, the add-on settings and the parameter sets.

Every ``check_*`` takes ``key`` (the name its message gives the value: a configuration key, a
parameter name), the ``value`` and the keyword ``error``, the exception class to raise: by
default :class:`~riskmodel.errors.UsageError` (exit 2), as a configuration value does; a
parameter set passes ``ValueError``, which its loader reports as an input error (exit 3). The
message always reads ``"{key} = {value!r} must be ..."``.

This module imports nothing of riskmodel but :mod:`riskmodel.errors`, so that every layer (the
configuration, the volatility parameters, the margin arithmetic, calibration) may use it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from riskmodel.errors import UsageError

__all__ = ["check_choice", "check_int", "check_number", "is_finite_number", "is_number"]


def is_number(value: object) -> bool:
    """Whether ``value`` is an ``int`` or ``float`` (NaN and infinities included), not a bool."""
    return not isinstance(value, bool) and isinstance(value, (int, float))


def is_finite_number(value: object) -> bool:
    """Whether ``value`` is an ``int`` or a finite ``float``, not a bool."""
    return is_number(value) and math.isfinite(value)  # type: ignore[arg-type]


def check_number(key: str, value: object, *, error: type[Exception] = UsageError) -> None:
    """Raise ``error``: ``... must be a finite number`` unless :func:`is_finite_number`."""
    if not is_finite_number(value):
        raise error(f"{key} = {value!r} must be a finite number")


def check_int(
    key: str, value: object, *, low: int, high: int, error: type[Exception] = UsageError
) -> None:
    """Raise ``error`` unless ``value`` is an ``int`` (not a bool) with ``low <= value <= high``:
    ``... must be an integer`` or ``... must be between {low} and {high}``."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise error(f"{key} = {value!r} must be an integer")
    if not low <= value <= high:
        raise error(f"{key} = {value!r} must be between {low} and {high}")


def check_choice(
    key: str, value: object, allowed: Sequence[str], *, error: type[Exception] = UsageError
) -> None:
    """Raise ``error`` unless ``value`` is in ``allowed``: ``... must be one of: a, b, c`` (the
    choices in the order given)."""
    if value not in allowed:
        raise error(f"{key} = {value!r} must be one of: {', '.join(allowed)}")
