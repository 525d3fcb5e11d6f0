"""Instrument definitions: ``instrument_id, kind, underlying, multiplier`` (+ option columns).

Kinds: ``spot``, ``future``, ``perpetual`` (linear: P&L ``multiplier x dP``),
``inverse_perpetual`` and ``inverse_future`` (coin-margined: ``multiplier`` is the face value
in the reporting currency per contract), and ``option`` (European). An instrument whose
``instrument_id`` is itself a column of the price file is driven by its own price series (a
future with its own settlement prices); otherwise it is priced at its underlying's price.

Option columns (required for options, ignored for other kinds):

* ``strike`` (finite; > 0 except under ``bachelier``), ``option_type`` (``call`` or ``put``),
  ``implied_vol`` (> 0; lognormal vol, or the normal vol in price units under ``bachelier``);
* ``expiry``: ISO 8601 timestamp, UTC unless it carries an offset (a date alone is 00:00 UTC;
  crypto options expire at 08:00 UTC, write ``2020-05-29T08:00:00Z``);
* optional ``rate`` and ``carry`` (continuous, default 0), ``settlement`` (``quote``, the
  default, or ``coin``: inverse, premium and P&L in the underlying coin, as Deribit) and
  ``model`` (``black_scholes`` on the spot with ``rate`` and ``carry``; ``black76`` on a
  forward or future, discounted at ``rate``; ``bachelier`` for prices that can go negative;
  default ``black_scholes``, or ``black76`` for coin-settled options, which are quoted on the
  forward).

An option already expired at the valuation time is an input error (checked by ``eod``, which
knows the valuation time: :func:`check_not_expired`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from riskmodel.config import INSTRUMENT_KINDS
from riskmodel.errors import InputDataError
from riskmodel.io.tables import Table, read_table

LINEAR_KINDS = ("spot", "future", "perpetual")
INVERSE_KINDS = ("inverse_perpetual", "inverse_future")
REQUIRED_COLUMNS = ("instrument_id", "kind", "underlying", "multiplier")
OPTION_COLUMNS = ("strike", "expiry", "option_type", "implied_vol")
OPTION_MODELS = ("black_scholes", "black76", "bachelier")
SETTLEMENTS = ("quote", "coin")


@dataclass(frozen=True)
class Instruments:
    """Validated instruments, one row each: ``instrument_id, kind, underlying, multiplier,
    factor`` (``factor`` is the price-file column that drives it) and the option columns
    ``strike, expiry (UTC), option_type, implied_vol, rate, carry, settlement, model`` (NaN or
    empty for other kinds)."""

    path: Path
    frame: pd.DataFrame
    table: Table | None = None

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
    frame = pd.concat([frame, _option_columns(table, kinds)], axis=1)
    return Instruments(table.path, frame, table)


def _option_columns(table: Table, kinds: np.ndarray) -> pd.DataFrame:
    """The option columns, validated on option rows (module docstring)."""
    n = len(kinds)
    rows = np.flatnonzero(kinds == "option")
    strike, vol = np.full(n, np.nan), np.full(n, np.nan)
    rate, carry = np.zeros(n), np.zeros(n)
    option_type, settlement, model = (np.full(n, "", dtype=object) for _ in range(3))
    expiry = np.full(n, pd.NaT, dtype=object)
    if len(rows):
        table.require_columns(OPTION_COLUMNS)
        columns = table.frame.columns

        def text(column: str) -> np.ndarray:
            return (table.text(column, allow_missing=True) if column in columns
                    else np.full(n, "", dtype=object))

        def numbers(column: str) -> np.ndarray:
            return (table.numbers(column, what=column, allow_missing=True) if column in columns
                    else np.full(n, np.nan))

        strike_in, vol_in, rate_in, carry_in = (
            numbers(c) for c in ("strike", "implied_vol", "rate", "carry"))
        type_in, settle_in, model_in, expiry_in = (
            text(c) for c in ("option_type", "settlement", "model", "expiry"))
        # parsed in one call (per row it was most of the load of thousands of options); a
        # row that does not parse is NaT here and is reported by the row loop below
        parsed = _parse_expiries(expiry_in[rows])
    for r, i in enumerate(rows.tolist()):
        if type_in[i].lower() not in ("call", "put"):
            raise table.fail(i, "option_type", type_in[i], "must be call or put")
        settle = settle_in[i].lower() or "quote"
        if settle not in SETTLEMENTS:
            raise table.fail(i, "settlement", settle_in[i],
                             f"must be one of {', '.join(SETTLEMENTS)}")
        chosen = model_in[i].lower() or ("black76" if settle == "coin" else "black_scholes")
        if chosen not in OPTION_MODELS:
            raise table.fail(i, "model", model_in[i],
                             f"must be one of {', '.join(OPTION_MODELS)}")
        if not np.isfinite(strike_in[i]) or (chosen != "bachelier" and strike_in[i] <= 0):
            raise table.fail(i, "strike", float(strike_in[i]),
                             "strike must be a finite number" if chosen == "bachelier"
                             else "strike must be > 0 (only bachelier takes strikes <= 0)")
        if not (np.isfinite(vol_in[i]) and vol_in[i] > 0):
            raise table.fail(i, "implied_vol", float(vol_in[i]),
                             "implied volatility must be > 0")
        for name, given, target in (("rate", rate_in, rate), ("carry", carry_in, carry)):
            if np.isfinite(given[i]) and abs(given[i]) > 1.0:
                raise table.fail(i, name, float(given[i]),
                                 f"{name} is a continuous annual rate: must be in [-1, 1]")
            target[i] = given[i] if np.isfinite(given[i]) else 0.0
        if not expiry_in[i]:
            raise table.fail(i, "expiry", "", "missing expiry")
        stamp = parsed[r]
        if pd.isna(stamp):
            raise table.fail(i, "expiry", expiry_in[i], "not an ISO 8601 timestamp")
        strike[i], vol[i], expiry[i] = strike_in[i], vol_in[i], stamp
        option_type[i], settlement[i], model[i] = type_in[i].lower(), settle, chosen
    return pd.DataFrame({
        "strike": strike, "expiry": pd.to_datetime(pd.Series(expiry), utc=True),
        "option_type": option_type, "implied_vol": vol, "rate": rate, "carry": carry,
        "settlement": settlement, "model": model,
    })


def _parse_expiries(values: np.ndarray) -> list:
    """ISO 8601 timestamps in UTC, ``NaT`` where a value does not parse as one."""
    try:
        return list(pd.to_datetime(pd.Series(values, dtype=object), format="ISO8601",
                                   utc=True, errors="coerce"))
    except (ValueError, TypeError):  # a mixture the vectorised parser refuses: row by row
        out = []
        for value in values:
            try:
                out.append(pd.to_datetime(value, format="ISO8601", utc=True))
            except (ValueError, TypeError):
                out.append(pd.NaT)
        return out


def expired_options(instruments: Instruments, valuation_time: pd.Timestamp,
                    instrument_ids: Iterable[str]) -> list[tuple[str, InputDataError]]:
    """``(instrument_id, error)`` for every option of ``instrument_ids`` that expired at or
    before ``valuation_time`` (UTC), the error naming its row, the expiry and the valuation
    time."""
    frame = instruments.frame
    held = frame["instrument_id"].isin(set(instrument_ids)).to_numpy()
    stamp = pd.Timestamp(valuation_time)
    stamp = stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")
    expired = held & (frame["kind"] == "option").to_numpy() & (
        frame["expiry"] <= stamp).fillna(False).to_numpy(bool)
    out = []
    for i in np.flatnonzero(expired).tolist():
        where = (instruments.table.where(i) if instruments.table is not None
                 else str(instruments.path))
        iid = str(frame["instrument_id"].iat[i])
        out.append((iid, InputDataError(
            f"{where}, column 'expiry': option {iid!r} expired at "
            f"{frame['expiry'].iat[i].isoformat()}, before the valuation time "
            f"{stamp.isoformat()} (value {frame['expiry'].iat[i].isoformat()!r})")))
    return out


def check_not_expired(instruments: Instruments, valuation_time: pd.Timestamp,
                      instrument_ids: Iterable[str]) -> None:
    """An option in ``instrument_ids`` that expired at or before ``valuation_time`` (UTC) is an
    input error naming its row, the expiry and the valuation time."""
    errors = expired_options(instruments, valuation_time, instrument_ids)
    if errors:
        raise errors[0][1]
