"""Which dates a backtest evaluates, and whether a parameter set may be used on them.

The dates are rows of the union calendar from ``--start`` to ``--end``, every ``--step``-th,
from the first with a full ``lookback`` window of returns common to the factors in use; a
parameter set must be estimated on data up to the first date at the latest (look-ahead
otherwise). Bad flags are usage errors (exit 2) naming the flag and its value.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from riskmodel.config import RunConfig
from riskmodel.errors import InputDataError, UsageError
from riskmodel.marketdata.returns import iso_span
from riskmodel.volatility.params import ParameterSet

#: Calendar rows between refits of the GARCH parameters when ``--recalibrate-every`` is not
#: given: about a month of business days.
DEFAULT_RECALIBRATE_EVERY = 21


@dataclass(frozen=True)
class BacktestWindow:
    """Which dates to evaluate and when to refit.

    Attributes
    ----------
    start, end : str or None, ISO 8601 dates (``--start``, ``--end``); a date without a time
        means the whole day. Default: the first date with a full ``lookback`` window, the last
        date of the data.
    step : int, evaluate every ``step``-th calendar row (>= 1).
    recalibrate_every : int or None, refit every this many calendar rows (0: one fit; None:
        :data:`DEFAULT_RECALIBRATE_EVERY` where parameters are fitted, see :meth:`refit_every`).
    """

    start: str | None = None
    end: str | None = None
    step: int = 1
    recalibrate_every: int | None = None

    def __post_init__(self) -> None:
        if isinstance(self.step, bool) or not isinstance(self.step, int) or self.step < 1:
            raise UsageError(f"--step = {self.step!r} must be an integer >= 1")
        n = self.recalibrate_every
        if n is not None and (isinstance(n, bool) or not isinstance(n, int) or n < 0):
            raise UsageError(f"--recalibrate-every = {n!r} must be an integer >= 0")

    def refit_every(self, config: RunConfig) -> int:
        """The refit schedule in calendar rows (0: one fit). By default the GARCH parameters are
        refitted every :data:`DEFAULT_RECALIBRATE_EVERY` rows, as a venue recalibrates; HS
        filters nothing and EWMA fits nothing, so they never refit. A schedule asked for where
        there is nothing to refit is a usage error."""
        n = self.recalibrate_every
        fits = config.method != "hs" and config.vol_model == "garch"
        if n is None:
            return DEFAULT_RECALIBRATE_EVERY if fits else 0
        if n > 0 and config.method == "hs":
            raise UsageError(f"--recalibrate-every {n}: method 'hs' filters no volatility, "
                             "there is nothing to refit")
        if n > 0 and config.vol_model != "garch":
            raise UsageError(f"--recalibrate-every {n}: refits GARCH parameters, but "
                             f"volatility.model = {config.vol_model!r}")
        return n


def _parse_date(flag: str, text: str) -> tuple[pd.Timestamp, pd.Timestamp]:
    """``(first instant, last instant)`` a date flag covers: a bare date is the whole day."""
    span = iso_span(text)
    if span is None:
        raise UsageError(f"{flag} {text!r}: unparsable date (expected ISO 8601, e.g. 2020-01-31)")
    return span


def first_full_window_row(returns: pd.DataFrame, lookback: int) -> int | None:
    """First calendar row whose common window holds ``lookback`` returns (None: never)."""
    valid = returns.notna().all(axis=1).to_numpy()
    if not valid.any():
        return None
    row = int(np.argmax(valid)) + lookback  # returns row j is calendar row j + 1
    return row if row < len(returns) + 1 else None


def check_params(params: ParameterSet, factors: list[str], first: pd.Timestamp,
                  flag_start: str | None) -> None:
    """A parameter set must be estimated on data up to the first backtest date at the latest
    (look-ahead otherwise: an input error, as in every command that takes ``--params``) and
    hold every factor."""
    where = f"--start {flag_start}" if flag_start else "the first backtest date"
    params.check_as_of(first.to_pydatetime(), factors, math.inf,
                       date_name=f"the first backtest date ({where})")
    missing = [f for f in factors if f not in params.factors]
    if missing:
        raise InputDataError(
            f"{params.source}: parameter set has no entry for factor {missing[0]!r} "
            f"(has: {', '.join(sorted(params.factors))}) (value {missing[0]!r})"
        )


def candidate_rows(returns: pd.DataFrame, dates: pd.DatetimeIndex, config: RunConfig,
                   window: BacktestWindow, factors: list[str]) -> np.ndarray:
    """The calendar rows from ``--start`` (default: the first with a full ``lookback`` window)
    to ``--end`` (default: the last date), every ``--step``-th."""
    earliest = first_full_window_row(returns, config.lookback)
    if earliest is None:
        raise UsageError(
            f"--lookback {config.lookback}: the price file never has {config.lookback} daily "
            f"returns common to the factors in use ({', '.join(factors)})")
    first_row, last_row = earliest, len(dates) - 1
    if window.start is not None:
        start, _ = _parse_date("--start", window.start)
        if window.end is not None:
            end_first, _ = _parse_date("--end", window.end)
            if start > end_first:
                raise UsageError(f"--start {window.start} is after --end {window.end}")
        if start > dates[-1]:
            raise UsageError(f"--start {window.start}: after the last date of the data "
                             f"({dates[-1].isoformat()})")
        first_row = int(np.count_nonzero(dates < start))  # sorted: first date >= start
        if first_row < earliest:
            raise UsageError(
                f"--start {window.start}: too little history before it for --lookback "
                f"{config.lookback}: the first date with {config.lookback} daily returns "
                f"common to all factors in use is {dates[earliest].date().isoformat()} "
                f"(start there or later, or lower the lookback)")
    if window.end is not None:
        _, end_last = _parse_date("--end", window.end)
        if end_last < dates[0]:
            raise UsageError(f"--end {window.end}: before the first date of the data "
                             f"({dates[0].isoformat()})")
        last_row = int(np.count_nonzero(dates <= end_last)) - 1
        if last_row < first_row:
            raise UsageError(
                f"--end {window.end}: no date of the data between "
                f"{dates[first_row].isoformat()} and it"
                + ("" if window.start else f" (the first date with a full --lookback "
                   f"{config.lookback} window)"))
    return np.arange(first_row, last_row + 1, window.step, dtype=np.int64)
