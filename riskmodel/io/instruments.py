"""Instrument definitions: ``instrument_id, kind, underlying, multiplier`` (+ option columns).

Linear kinds (``spot``, ``future``, ``perpetual``) are priced here; ``option``,
``inverse_perpetual`` and ``inverse_future`` are part of the file format but are rejected with a
clear message until their pricing lands. An instrument whose ``instrument_id`` is itself a column of
the price file is driven by its own price series (a future with its own settlement prices);
otherwise it is priced at its underlying's price.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from riskmodel.config import INSTRUMENT_KINDS
from riskmodel.io.tables import read_table

LINEAR_KINDS = ("spot", "future", "perpetual")
REQUIRED_COLUMNS = ("instrument_id", "kind", "underlying", "multiplier")


@dataclass(frozen=True)
class Instruments:
    """Validated instruments, one row each: ``instrument_id, kind, underlying, multiplier,
    factor`` (``factor`` is the price-file column that drives it)."""

    path: Path
    frame: pd.DataFrame

    def __len__(self) -> int:
        return len(self.frame)


def load_instruments(path: str | Path, price_assets: Iterable[str]) -> Instruments:
    """Read and validate the instrument file against the assets present in the price file."""
    table = read_table(path, "instruments")
    table.require_columns(REQUIRED_COLUMNS)
    ids = table.text("instrument_id")
    kinds = table.text("kind")
    underlyings = table.text("underlying")
    multipliers = table.numbers("multiplier", what="multiplier")
    assets = set(price_assets)

    seen: dict[str, int] = {}
    factors = np.empty(len(ids), dtype=object)
    for i, (iid, kind, und, mult) in enumerate(zip(ids, kinds, underlyings, multipliers)):
        if iid in seen:
            raise table.fail(
                i, "instrument_id", iid, f"duplicate instrument (also at {table.where(seen[iid])})"
            )
        seen[iid] = i
        if kind not in INSTRUMENT_KINDS:
            raise table.fail(
                i, "kind", kind, f"unknown instrument kind (known: {', '.join(INSTRUMENT_KINDS)})"
            )
        if kind not in LINEAR_KINDS:
            raise table.fail(
                i,
                "kind",
                kind,
                "instrument kind not supported yet by this engine version "
                f"(supported: {', '.join(LINEAR_KINDS)})",
            )
        if mult <= 0:
            raise table.fail(i, "multiplier", float(mult), "multiplier must be > 0")
        if iid in assets:
            factors[i] = iid
        elif und in assets:
            factors[i] = und
        else:
            raise table.fail(i, "underlying", und, "underlying has no prices in the price file")
    frame = pd.DataFrame(
        {
            "instrument_id": ids.astype(str),
            "kind": kinds.astype(str),
            "underlying": underlyings.astype(str),
            "multiplier": multipliers,
            "factor": factors.astype(str),
        }
    )
    return Instruments(table.path, frame)
