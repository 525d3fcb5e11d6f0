"""Argument checks shared by the backtest statistics: rates, counts and finite series."""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

__all__ = ["complement", "finite_1d", "valid_counts", "valid_rate"]


def valid_rate(name: str, value: float) -> float:
    """``value`` as a float, checked to lie in the open interval (0, 1)."""
    value = float(value)
    if not 0.0 < value < 1.0:
        raise ValueError(f"{name} = {value!r} must be in (0, 1)")
    return value


def complement(confidence: float) -> float:
    """``1 - confidence`` rounded to 15 significant digits (0.01, not 0.010000000000000009)."""
    return float(f"{1.0 - confidence:.15g}")


def finite_1d(name: str, values: ArrayLike) -> np.ndarray:
    """``values`` as a one-dimensional float64 array, checked to be finite."""
    arr = np.asarray(values, dtype=np.float64)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got shape {arr.shape}")
    if not np.isfinite(arr).all():
        i = int(np.flatnonzero(~np.isfinite(arr))[0])
        raise ValueError(f"{name} must be finite, found {arr[i]} at index {i}")
    return arr


def valid_counts(n_obs: int, exceptions: int) -> tuple[int, int]:
    """``(n_obs, exceptions)`` as ints, checked: ``n_obs >= 1`` and ``0 <= exceptions <= n_obs``."""
    n, x = int(n_obs), int(exceptions)
    if n != n_obs or x != exceptions:
        raise ValueError(f"n_obs and exceptions must be integers, got {n_obs!r}, {exceptions!r}")
    if n < 1:
        raise ValueError(f"n_obs = {n} must be >= 1")
    if not 0 <= x <= n:
        raise ValueError(f"exceptions = {x} must be in [0, n_obs = {n}]")
    return n, x
