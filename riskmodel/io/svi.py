"""SVI smile files (``[grid] svi_file``): one raw-SVI parameter set per (underlying, expiry).

CSV or Parquet with ``underlying, expiry, a, b, rho, m, sigma`` and optionally ``forward`` (the
forward the smile was fitted on; default: each option's own forward) and ``tau`` (the smile's
years to expiry; default: each option's). ``expiry`` is an ISO 8601 timestamp as in the
instruments file. The grid method values the options of a listed (underlying, expiry) on the
smile (:func:`riskmodel.pricing.svi.svi_vol`) instead of their ``implied_vol``.

A bad row is an input error naming the file, the line or row, the column and the value: a
missing or non-finite number, ``b < 0``, ``|rho| >= 1``, ``sigma <= 0``, ``a + b sigma < 0``
(no variance at the smile's minimum), a forward or ``tau`` that is not positive, an expiry that
does not parse, a duplicate (underlying, expiry).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from riskmodel.io.tables import read_table

PARAMETERS = ("a", "b", "rho", "m", "sigma")


@dataclass(frozen=True)
class SviSmiles:
    """The smiles of a file, one row per (underlying, expiry): ``underlying, expiry`` (UTC),
    ``a, b, rho, m, sigma, forward, tau`` (NaN where the file leaves them to the option)."""

    path: Path
    frame: pd.DataFrame


def load_svi(path: str | Path) -> SviSmiles:
    """Read and validate an SVI smile file (module docstring)."""
    table = read_table(path, "SVI smiles")
    table.require_columns(("underlying", "expiry", *PARAMETERS))
    n = len(table.frame)
    values = {c: table.numbers(c, what=c) for c in PARAMETERS}
    for c in ("forward", "tau"):
        values[c] = (table.numbers(c, what=c, allow_missing=True)
                     if c in table.frame.columns else np.full(n, np.nan))
    underlying = table.text("underlying")
    raw_expiry = table.text("expiry")
    expiry = pd.to_datetime(pd.Series(raw_expiry, dtype=object), format="ISO8601", utc=True,
                            errors="coerce")
    checks = (
        ("expiry", expiry.isna().to_numpy(), raw_expiry, "not an ISO 8601 timestamp"),
        ("b", values["b"] < 0, values["b"], "b must be >= 0"),
        ("rho", ~(np.abs(values["rho"]) < 1), values["rho"], "rho must be in (-1, 1)"),
        ("sigma", ~(values["sigma"] > 0), values["sigma"], "sigma must be > 0"),
        ("a", values["a"] + values["b"] * values["sigma"] < 0, values["a"],
         "a + b sigma must be >= 0 (a variance at the smile's minimum)"),
        ("forward", values["forward"] <= 0, values["forward"], "forward must be > 0"),
        ("tau", values["tau"] <= 0, values["tau"], "tau must be > 0 (years)"),
    )
    for column, bad, shown, problem in checks:
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            value = shown[i]
            raise table.fail(i, column, value if isinstance(value, str) else float(value),
                             problem)
    frame = pd.DataFrame({"underlying": underlying.astype(str), "expiry": expiry, **values})
    duplicated = frame.duplicated(["underlying", "expiry"]).to_numpy()
    if duplicated.any():
        i = int(np.flatnonzero(duplicated)[0])
        raise table.fail(i, "expiry", raw_expiry[i],
                         f"a second smile for underlying {underlying[i]!r} and this expiry")
    return SviSmiles(table.path, frame)
