"""Price history: long (``date, asset, price``) or wide (``date`` then one column per asset).

The layout is detected from the header: a file with an ``asset`` or ``price`` column is long
(and must have exactly ``date, asset, price``), anything else with a ``date`` column is wide.
Dates are ISO 8601, intraday timestamps allowed; time-zone-aware stamps are converted to UTC and
stored naive. Rows may come in any order.
An empty cell means "no price that day" (a coin not yet listed, a closed market); a written
``nan``/``inf`` is an error. Prices must be strictly positive for assets with logarithmic returns.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from riskmodel.errors import InputDataError
from riskmodel.io.tables import Table, read_table


@dataclass(frozen=True)
class PriceHistory:
    """Prices on the union of all assets' dates, as read (gaps are NaN, nothing carried over).

    ``frame``: DatetimeIndex (sorted, unique, naive UTC) x assets, float64. A date on which no
    asset has a price is no date of the calendar: such rows of the file are left out and
    counted in ``blank_dates``.
    """

    path: Path
    frame: pd.DataFrame
    blank_dates: int = 0

    @property
    def assets(self) -> list[str]:
        return [str(c) for c in self.frame.columns]


def parse_dates(table: Table, column: str = "date") -> pd.DatetimeIndex:
    """Parse an ISO 8601 date column; the first unparsable cell raises with its location."""
    raw = table.frame[column]
    if pd.api.types.is_datetime64_any_dtype(raw.dtype):
        parsed = pd.to_datetime(raw, utc=True)
        missing = parsed.isna().to_numpy()
        if missing.any():  # a null timestamp in Parquet
            raise table.fail(int(np.flatnonzero(missing)[0]), column, None, "missing date")
    else:
        text = table.text(column)
        parsed = pd.to_datetime(pd.Series(text), format="ISO8601", errors="coerce", utc=True)
        bad = parsed.isna().to_numpy()
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise table.fail(i, column, text[i], "unparsable date (expected ISO 8601)")
    return pd.DatetimeIndex(parsed).tz_convert(None)


def load_prices(path: str | Path, return_kind: Callable[[str], str]) -> PriceHistory:
    """Read and validate a price file.

    Parameters
    ----------
    path : CSV or Parquet file, long or wide.
    return_kind : maps an asset to ``"log"`` or ``"absolute"``; log assets need prices > 0.
    """
    table = read_table(path, "prices")
    table.require_columns(["date"])
    cols = set(table.frame.columns)
    if cols & {"asset", "price"}:
        # long layout: a missing or extra column is reported as such, not read as a wide file
        table.require_columns(["date", "asset", "price"])
        extra = [c for c in table.frame.columns if c not in ("date", "asset", "price")]
        if extra:
            raise InputDataError(
                f"{table.path}: long price layout takes exactly 'date', 'asset', 'price'; "
                f"unexpected column(s) {', '.join(repr(c) for c in extra)}"
            )
        frame = _long_to_wide(table)
    else:
        frame = _wide(table)
    if frame.shape[1] == 0:
        raise InputDataError(f"{table.path}: no asset columns besides 'date'")
    if frame.shape[0] == 0:
        raise InputDataError(f"{table.path}: no price rows")
    for asset in frame.columns:
        if return_kind(str(asset)) == "log":
            values = frame[asset].to_numpy()
            bad = values <= 0  # NaN compares False: gaps are not errors
            if bad.any():
                i = int(np.flatnonzero(bad)[0])
                raise InputDataError(
                    f"{table.path}: date {frame.index[i].isoformat()}, column {asset!r}: "
                    f"non-positive price for an asset with logarithmic returns "
                    f"(value {float(values[i])!r}); set returns.assets.{asset} = \"absolute\" "
                    f"in the config for series that can go negative"
                )
        if np.isnan(frame[asset].to_numpy()).all():
            raise InputDataError(f"{table.path}: column {asset!r} has no prices at all")
    traded = frame.notna().any(axis=1).to_numpy()
    return PriceHistory(table.path, frame[traded], int((~traded).sum()))


def _wide(table: Table) -> pd.DataFrame:
    dates = parse_dates(table)
    assets = [c for c in table.frame.columns if c != "date"]
    duplicated = dates.duplicated(keep=False)
    if duplicated.any():
        rows = np.flatnonzero(duplicated)[:2]
        raise InputDataError(
            f"{table.where(int(rows[1]))}, column 'date': duplicate date "
            f"{dates[rows[1]].isoformat()} (also at {table.where(int(rows[0]))})"
        )
    data = {a: table.numbers(a, what="price", allow_missing=True) for a in assets}
    frame = pd.DataFrame(data, index=dates, columns=assets, dtype=np.float64)
    frame.index.name = "date"
    return frame.sort_index()


def _long_to_wide(table: Table) -> pd.DataFrame:
    dates = parse_dates(table)
    assets = table.text("asset")
    prices = table.numbers("price", what="price", allow_missing=True)
    keys = pd.DataFrame({"date": dates, "asset": assets})
    duplicated = keys.duplicated(keep=False).to_numpy()
    if duplicated.any():
        rows = np.flatnonzero(duplicated)[:2]
        raise InputDataError(
            f"{table.where(int(rows[1]))}, column 'date': duplicate date "
            f"{dates[rows[1]].isoformat()} for asset {assets[rows[1]]!r} "
            f"(also at {table.where(int(rows[0]))})"
        )
    long = pd.DataFrame({"date": dates, "asset": assets, "price": prices})
    frame = long.pivot(index="date", columns="asset", values="price")
    frame.columns = [str(c) for c in frame.columns]
    frame.columns.name = None
    frame.index.name = "date"
    return frame.sort_index().astype(np.float64)
