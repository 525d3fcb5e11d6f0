"""What the calibration page shows of one factor (:class:`FactorDiagnostics`, computed by
:mod:`calibration.diagnostics`) and the file-name stems of its figures."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from riskmodel.volatility.filters import FilteredFactor
from riskmodel.volatility.params import FactorParams

__all__ = ["FactorDiagnostics", "file_stems"]


@dataclass(frozen=True)
class FactorDiagnostics:
    """The diagnostics of one factor, as the report shows them.

    Attributes
    ----------
    name : str, the factor.
    stem : str, its file-name stem (:func:`file_stems`).
    params : FactorParams, its fitted parameters.
    filtered : FilteredFactor, the filter run with them over the diagnosed returns.
    resid : ndarray, ``r - mu`` on the filtered dates, return units.
    lb_z, lb_r : DataFrame, Ljung-Box tables (index lag; ``Q``, ``df``, ``p_value``) of the
        squared standardised residuals and of the squared returns less the mean.
    qq_theoretical : ndarray, quantiles of the fitted innovation law at the plotting positions
        ``(i - 0.5) / n`` of the ``n`` sorted standardised residuals.
    """

    name: str
    stem: str
    params: FactorParams
    filtered: FilteredFactor
    resid: np.ndarray
    lb_z: pd.DataFrame
    lb_r: pd.DataFrame
    qq_theoretical: np.ndarray


_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def file_stems(names: Sequence[str]) -> dict[str, str]:
    """Safe, distinct file-name stems for factor names.

    Unsafe characters become ``_``; a short hash of the original name is appended when that
    changed the name or when two names would collide on a case-insensitive file system, so a
    stem never depends on the order of the factors.
    """
    base: dict[str, str] = {}
    for name in names:
        s = _UNSAFE.sub("_", name).strip("._")[:80] or "factor"
        base[name] = s
    counts: dict[str, int] = {}
    for s in base.values():
        counts[s.casefold()] = counts.get(s.casefold(), 0) + 1
    out = {}
    for name, s in base.items():
        if s != name or counts[s.casefold()] > 1:
            s = f"{s}-{hashlib.sha1(name.encode()).hexdigest()[:8]}"
        out[name] = s
    return out
