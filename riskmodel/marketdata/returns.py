"""Calendar alignment and returns.

Calendar rule (mixing 24/7 crypto with business-day assets): prices are aligned on the union of
all dates of the price file (a row of the file without any price is dropped when it is read:
no asset traded that day). A blank price inside a factor's history (a closed market, a holiday,
a feed's gap) is governed by ``[returns] gaps``: ``carry`` (default)
carries the last price over, so its return that day is zero (the run warns with the count per
factor), ``drop`` leaves the date out for every factor, ``error`` refuses the file naming the
date and column. Dates before a factor's first price stay empty (not yet listed) and are never
filled backwards. A horizon of h days means h rows of that calendar.

Returns are logarithmic by default; factors configured as ``absolute`` use price differences
(for series that can go negative, such as some commodity futures).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from riskmodel.errors import InputDataError, UsageError
from riskmodel.io.prices import PriceHistory


@dataclass(frozen=True)
class MarketData:
    """Aligned prices and returns of the factors a run uses, up to the market date.

    Attributes
    ----------
    prices : DataFrame (dates x factors), union calendar, last price carried over gaps.
    returns : DataFrame (dates[1:] x factors), NaN before a factor's listing.
    spot : Series (factors,), prices on the market date.
    carried : dict factor -> number of prices carried over closed dates.
    """

    prices: pd.DataFrame
    returns: pd.DataFrame
    market_date: pd.Timestamp
    spot: pd.Series
    carried: dict[str, int]
    return_kinds: dict[str, str]


def iso_span(text: str) -> tuple[pd.Timestamp, pd.Timestamp] | None:
    """``(first instant, last instant)`` an ISO 8601 date or timestamp covers, naive UTC: a date
    without a time is the whole UTC day. None when ``text`` is not ISO 8601."""
    try:
        # ISO 8601 only: pd.Timestamp would also read "01/02/2024", month or day first
        stamp = pd.to_datetime(text, format="ISO8601")
    except (ValueError, TypeError):
        stamp = pd.NaT
    if stamp is pd.NaT:  # an empty string parses to NaT rather than failing
        return None
    if stamp.tzinfo is not None:
        stamp = stamp.tz_convert("UTC").tz_localize(None)
    end = stamp
    if re.fullmatch(r"\d{4}-?\d{2}-?\d{2}", text.strip()):
        end = stamp + pd.Timedelta(days=1) - pd.Timedelta(1, "ns")
    return pd.Timestamp(stamp), pd.Timestamp(end)


def resolve_market_date(history: PriceHistory, as_of: str | None, flag: str = "--as-of"
                        ) -> pd.Timestamp:
    """The last price stamp on or before ``as_of`` (default: the last date in the file).

    A date without a time (``2024-03-28``) means the whole UTC day, so an intraday stamp on that
    day (``2024-03-28T16:00Z``) is the market date, not the previous day's. Text that is not an
    ISO 8601 date is a usage error naming ``flag``; a date outside the data is an input error.
    """
    index = history.frame.index
    if as_of is None:
        return pd.Timestamp(index[-1])
    span = iso_span(as_of)
    if span is None:
        raise UsageError(f"{flag} {as_of!r}: unparsable date (expected ISO 8601, e.g. "
                         "2024-12-31 or 2024-12-31T16:00:00Z)")
    stamp, end = span
    if end < index[0] or stamp > index[-1]:
        raise InputDataError(
            f"{history.path}: {flag} date {stamp.isoformat()} is outside the data "
            f"({index[0].isoformat()} .. {index[-1].isoformat()}) (value {as_of!r})"
        )
    return pd.Timestamp(index[index <= end][-1])


def align(
    history: PriceHistory,
    factors: Sequence[str],
    market_date: pd.Timestamp,
    return_kind: Callable[[str], str],
    gaps: str = "carry",
) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, int]]:
    """Prices of ``factors`` up to ``market_date`` on the price file's calendar, daily
    returns, and the count of blank prices carried over per factor.

    ``gaps``: what a blank price inside a factor's history (after its first price) becomes:
    ``carry`` (the last price, so a zero return that day), ``drop`` (the date leaves the
    calendar for every factor) or ``error`` (an input error naming the date and column).
    Dates before a factor's first price stay empty (not yet listed).
    """
    raw = history.frame.loc[:market_date, list(factors)]
    listed = raw.notna().cummax()
    blank = listed & raw.isna()
    if gaps == "error" and blank.to_numpy().any():
        row, col = (int(x[0]) for x in np.nonzero(blank.to_numpy()))
        raise InputDataError(
            f"{history.path}: date {raw.index[row].isoformat()}, column {factors[col]!r}: "
            "blank price inside the series ([returns] gaps = \"error\"; \"carry\" carries the "
            "last price over, \"drop\" leaves the date out) (value nan)")
    if gaps == "drop":
        raw = raw[~blank.any(axis=1).to_numpy()]
        listed, blank = listed.loc[raw.index], blank.loc[raw.index]
    prices = raw.ffill()
    carried = {f: int(blank[f].sum()) for f in factors}
    returns = pd.DataFrame(index=prices.index[1:], columns=list(factors), dtype=np.float64)
    for f in factors:
        p = prices[f].to_numpy()
        returns[f] = np.log(p[1:] / p[:-1]) if return_kind(f) == "log" else p[1:] - p[:-1]
    return prices, returns, carried


def gap_warnings(history: PriceHistory, carried: dict[str, int], gaps: str) -> list[str]:
    """What a run says about the calendar: blank prices carried over, per factor, and dates
    of the file without any price (left out)."""
    out = []
    counts = {f: n for f, n in carried.items() if n}
    if counts and gaps == "carry":
        listing = ", ".join(f"{f} {n:,}" for f, n in sorted(counts.items()))
        out.append(f"{history.path}: blank prices carried over from the day before (zero "
                   f"returns): {listing}; set [returns] gaps = \"drop\" to leave those dates "
                   "out, or \"error\" to refuse them")
    if history.blank_dates:
        out.append(f"{history.path}: {history.blank_dates:,} date(s) without any price left "
                   "out of the calendar")
    return out


@dataclass(frozen=True)
class Universe:
    """Every asset of the price file aligned up to the market date, with daily returns: the
    pool stress windows read their moves and proxies from (not only the book's factors)."""

    prices: pd.DataFrame
    returns: pd.DataFrame
    return_kinds: dict[str, str]

    def sigma(self, window: pd.DataFrame) -> pd.Series:
        """Each asset's daily volatility over ``window``'s dates (proxy scaling)."""
        return self.returns.loc[window.index].std(ddof=1)


def build_universe(
    history: PriceHistory, market_date: pd.Timestamp, return_kind: Callable[[str], str]
) -> Universe:
    prices, returns, _ = align(history, history.assets, market_date, return_kind)
    return Universe(prices, returns, {a: return_kind(a) for a in history.assets})


def build_market_data(
    history: PriceHistory,
    factors: Sequence[str],
    market_date: pd.Timestamp,
    return_kind: Callable[[str], str],
    gaps: str = "carry",
) -> MarketData:
    """Align the used factors' prices up to ``market_date`` (``gaps``: :func:`align`) and
    compute their returns."""
    prices, returns, carried = align(history, factors, market_date, return_kind, gaps)
    last = prices.iloc[-1]
    for f in factors:
        if not np.isfinite(last[f]):
            raise InputDataError(
                f"{history.path}: column {f!r} has no price on or before the market date "
                f"{market_date.isoformat()} (value nan)"
            )
    kinds = {f: return_kind(f) for f in factors}
    return MarketData(prices, returns, market_date, last.astype(np.float64), carried, kinds)


def common_window(returns: pd.DataFrame, lookback: int, min_history: int) -> pd.DataFrame:
    """The last ``lookback`` returns on which every factor has a return.

    A factor listed recently shortens the window for all (so each scenario is one whole
    historical day across factors); fewer than ``min_history`` common returns is an error.
    """
    valid = returns.notna().all(axis=1).to_numpy()
    # Interior gaps were carried over, so only leading NaNs remain: the common history is a
    # suffix of the calendar.
    start = int(np.argmax(valid)) if valid.any() else len(valid)
    common = returns.iloc[start:]
    window = common.iloc[-lookback:] if lookback < len(common) else common
    if len(window) < min_history:
        first = {f: returns[f].first_valid_index() for f in returns.columns}
        if all(v is None for v in first.values()):
            end = returns.index[-1].isoformat() if len(returns) else "the market date"
            raise InputDataError(
                f"no daily returns up to {end}: the market date is the first price date "
                f"(min_history = {min_history}) (value 0)"
            )
        latest = max(first, key=lambda f: (first[f] is not None, first[f] or pd.Timestamp.min))
        raise InputDataError(
            f"only {len(window)} daily returns are common to all factors in use "
            f"(min_history = {min_history}); the shortest history is {latest!r}, "
            f"first return {first[latest]} (value {len(window)})"
        )
    return window
