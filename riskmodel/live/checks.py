"""The checks an input passes before the live loop applies it; a failed check refuses the
input with an event naming it (``refused``), and the stream goes on."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from riskmodel.config import RunConfig
from riskmodel.io.positions import DEFAULT_NETTING_SET

PERPETUALS = ("perpetual", "inverse_perpetual")


class Refused(Exception):
    """An input refused: ``column``, ``value`` and why."""

    def __init__(self, column: str, value: Any, why: str) -> None:
        super().__init__(f"{column} = {value!r}: {why}")
        self.column, self.value, self.why = column, value, why


def utc_time(value: Any) -> pd.Timestamp:
    """An ISO 8601 time as a UTC timestamp (a naive one is UTC); :class:`Refused` otherwise."""
    try:
        t = pd.Timestamp(value)
        if pd.isna(t):
            raise ValueError("empty")
    except (ValueError, TypeError) as exc:
        raise Refused("time", value, f"not an ISO 8601 time ({exc})") from None
    return t.tz_localize("UTC") if t.tzinfo is None else t.tz_convert("UTC")


def finite(column: str, value: Any, *, positive: bool = False) -> float:
    """``value`` as a finite float (and > 0 with ``positive``); :class:`Refused` otherwise."""
    try:
        x = float(value)
    except (TypeError, ValueError):
        x = math.nan
    if not math.isfinite(x) or (positive and x <= 0):
        raise Refused(column, value, "must be finite and > 0" if positive else "must be finite")
    return x


def set_name(netting_set: Any) -> str:
    """A trade's or transfer's netting set: blank or absent is the account's cross set."""
    if netting_set is None or (isinstance(netting_set, float) and math.isnan(netting_set)):
        return DEFAULT_NETTING_SET
    return str(netting_set).strip() or DEFAULT_NETTING_SET


def moved(price: float, reference: float) -> float:
    """Relative distance of ``price`` from ``reference`` (absolute when the reference is 0)."""
    return abs(price - reference) / abs(reference) if reference != 0 else abs(price)


def check_instrument(instrument_id: str, row: int, unpriced: Any, is_collateral: np.ndarray
                     ) -> None:
    """A trade's instrument: on the run's axis (``row`` >= 0), not coin collateral."""
    if row < 0:
        raise Refused("instrument_id", instrument_id,
                      "its factor is not priced by the run (a trade cannot add a risk factor)"
                      if instrument_id in unpriced else "not an instrument of the run")
    if is_collateral[row]:
        raise Refused("instrument_id", instrument_id, "coins held as collateral are not traded")


def check_horizon(config: RunConfig, kinds: set[str], account_type: str,
                  priced: Any, instrument_id: str) -> None:
    """The set's margin period of risk after the trade (its kinds' and its account type's
    longest) must be one the run priced."""
    need = max(config.horizon_of_kind(k) for k in kinds)
    need = max(need, int(config.horizons_by_account_type.get(account_type, 0)))
    if need not in priced:
        raise Refused("instrument_id", instrument_id,
                      f"the set would need the {need}-day horizon, which the run did not price")
