"""Small validators shared by the configuration, the add-on settings and the parameter sets.

Each check names the key and the offending value in its message and raises ``error``: by
default :class:`~riskmodel.errors.UsageError` (exit 2), as a configuration value does; a
parameter set passes ``ValueError``, which its loader reports as an input error (exit 3).

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
    """Raise ``error`` unless ``value`` is a finite number (a bool is not one).

    Parameters
    ----------
    key : str
        The name the message gives the value (a configuration key, a parameter name).
    value : object
        The value to check.
    error : exception class, default UsageError
        What to raise: ``error(f"{key} = {value!r} must be a finite number")``.
    """
    if not is_finite_number(value):
        raise error(f"{key} = {value!r} must be a finite number")


def check_int(
    key: str, value: object, *, low: int, high: int, error: type[Exception] = UsageError
) -> None:
    """Raise ``error`` unless ``value`` is an integer (not a bool) in ``[low, high]``.

    Parameters
    ----------
    key : str
        The name the message gives the value.
    value : object
        The value to check.
    low, high : int
        The inclusive bounds.
    error : exception class, default UsageError
        What to raise; the message says ``must be an integer`` or ``must be between low and
        high``.
    """
    if isinstance(value, bool) or not isinstance(value, int):
        raise error(f"{key} = {value!r} must be an integer")
    if not low <= value <= high:
        raise error(f"{key} = {value!r} must be between {low} and {high}")


def check_choice(
    key: str, value: object, allowed: Sequence[str], *, error: type[Exception] = UsageError
) -> None:
    """Raise ``error`` unless ``value`` is one of ``allowed``.

    Parameters
    ----------
    key : str
        The name the message gives the value.
    value : object
        The value to check.
    allowed : sequence of str
        The accepted values, listed in the message in this order.
    error : exception class, default UsageError
        What to raise: ``error(f"{key} = {value!r} must be one of: a, b, ...")``.
    """
    if value not in allowed:
        raise error(f"{key} = {value!r} must be one of: {', '.join(allowed)}")
