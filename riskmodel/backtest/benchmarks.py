"""The realisable flat-rate benchmark of a backtest (:mod:`.statistics.realisable`), on its rows.

A venue that runs a flat rate sets it from the history it has. For each netting set this module
gathers that history: its ``h``-day losses and gross notionals on the calendar rows before the
first backtest date (the fixed positions revalued over each past ``h``-day move, exactly as the
replay values a backtest row: :func:`~riskmodel.backtest.replay.realised_shocks` through
:func:`~riskmodel.pricing.revaluation.scenario_pnl`, notional ``|quantity x dV/dP x price|``
as the engine's), then the backtest rows themselves as their losses become known (a row of
date ``t`` is known from ``t + h``). :func:`realisable_columns` turns that into the schedule of
:func:`~riskmodel.backtest.statistics.realisable.realisable_flat_rates` at the run's confidence
and lookback, re-set every :data:`~riskmodel.backtest.statistics.realisable.DEFAULT_RESET_EVERY`
calendar rows, and adds two columns to the backtest table:

* ``realisable_flat_rate``: the rate in force on the row;
* ``realisable_flat_rate_margin``: ``realisable_flat_rate x gross_notional``.

Rows before a set has ``ceil(1 / (1 - confidence))`` known observations (a short history) are
*warm-up* rows: the venue charges its configured flat rate there (``flat_rate_margin``; the
rate column is then ``flat_rate_margin / gross_notional``).
"""

from __future__ import annotations

import math
from typing import Any, Protocol

import numpy as np
import pandas as pd

from riskmodel.backtest.portfolios import RollingStraddle
from riskmodel.backtest.replay import realised_shocks
from riskmodel.backtest.statistics.realisable import DEFAULT_RESET_EVERY, realisable_flat_rates
from riskmodel.config import RunConfig
from riskmodel.engine.build import book_factors
from riskmodel.margin.policy import per_set_sum
from riskmodel.margin.tables import set_horizons
from riskmodel.marketdata.returns import MarketData
from riskmodel.portfolio.netting import Book
from riskmodel.pricing.revaluation import at_labels, scenario_pnl, unit_greek_array
from riskmodel.scenarios.scenario_set import ScenarioSet

__all__ = ["REALISABLE_COLUMNS", "loss_history", "realisable_columns"]

#: Columns :func:`realisable_columns` adds to the backtest table.
REALISABLE_COLUMNS = ("realisable_flat_rate", "realisable_flat_rate_margin")


class BookPart(Protocol):
    """What the benchmark reads of a prepared backtest book (``run.PreparedBacktest``)."""

    @property
    def market(self) -> MarketData: ...
    @property
    def book(self) -> Book: ...
    @property
    def used(self) -> pd.DataFrame: ...
    @property
    def rows(self) -> np.ndarray: ...
    @property
    def roll(self) -> RollingStraddle | None: ...


def _row_losses(part: BookPart, config: RunConfig, factors: list[str], prices: np.ndarray,
                s: int, groups: dict[int, np.ndarray]) -> list[tuple[int, np.ndarray,
                                                                     np.ndarray]]:
    """Per horizon h with ``s + h`` in the data: (h, loss per set of that horizon, gross
    notional per set) of the fixed positions over the realised move from row ``s``."""
    market, dates = part.market, part.market.prices.index
    t = dates[s]
    spot = market.prices.iloc[s]
    terms = part.used if part.roll is None else part.roll.terms_at(part.used, spot, t)
    unit = np.abs(unit_greek_array(terms, spot, t)[:, 1] * at_labels(spot, terms["factor"]))
    options = bool((terms["kind"].to_numpy() == "option").any())
    kinds = [market.return_kinds[f] for f in factors]
    out = []
    for h, sets in groups.items():
        end = prices[s + h] if s + h < len(dates) else None
        if end is None or not np.isfinite(end).all():
            continue
        elapsed = (dates[s + h] - t) / pd.Timedelta(days=1) if options else h
        realised = ScenarioSet(shocks=realised_shocks(prices, s, h, kinds)[None, :],
                               factors=tuple(factors), labels=np.array([t.isoformat()]),
                               kind="realised", horizon=elapsed)
        pnl = scenario_pnl(terms, realised, spot, market.return_kinds, t,
                           config.implied_vol)[:, 0]
        part_book = part.book.subset(sets)[0] if len(sets) < part.book.n_sets else part.book
        idx = part_book.instrument_index
        loss = -per_set_sum(part_book.quantity * pnl[idx], part_book.indptr)
        gross = per_set_sum(np.abs(part_book.quantity) * unit[idx], part_book.indptr)
        out.append((h, loss, gross))
    return out


def loss_history(part: BookPart, config: RunConfig, lookback: int) -> pd.DataFrame:
    """Each netting set's ``h``-day losses on the ``lookback + h - 1`` calendar rows before
    the first backtest row (fewer where the factors' prices start later).

    Returns
    -------
    DataFrame ``account_id, netting_set, date, known_at, realized_loss, gross_notional``, one
    row per set and start row ``s`` (``known_at`` the date of ``s + h``), by set then date.
    """
    market = part.market
    factors = book_factors(part.used, config, set(market.prices.columns), [])
    prices = market.prices[factors].to_numpy(np.float64)
    set_h = set_horizons(part.book, part.used, config)
    groups = {int(h): np.flatnonzero(set_h == h) for h in sorted(set(set_h.tolist()))}
    first = int(part.rows[0])
    log = np.array([market.return_kinds[f] == "log" for f in factors])
    dates = market.prices.index
    sets: list[np.ndarray] = []
    starts: list[np.ndarray] = []
    ends: list[np.ndarray] = []
    losses: list[np.ndarray] = []
    notionals: list[np.ndarray] = []
    for s in range(max(0, first - lookback - max(groups) + 1), first):
        start = prices[s]
        if not np.isfinite(start).all() or (start[log] <= 0).any():
            continue  # a factor not yet listed: no loss to learn from
        for h, loss, gross in _row_losses(part, config, factors, prices, s, groups):
            sets.append(groups[h])
            starts.append(np.full(len(loss), s))
            ends.append(np.full(len(loss), s + h))
            losses.append(loss)
            notionals.append(gross)

    def joined(parts: list[np.ndarray], dtype: Any) -> np.ndarray:
        return np.concatenate(parts) if parts else np.zeros(0, dtype=dtype)

    which = joined(sets, np.int64)
    out = pd.DataFrame({
        "account_id": part.book.sets["account_id"].to_numpy()[which],
        "netting_set": part.book.sets["netting_set"].to_numpy()[which],
        "date": dates[joined(starts, np.int64)], "known_at": dates[joined(ends, np.int64)],
        "realized_loss": joined(losses, np.float64),
        "gross_notional": joined(notionals, np.float64)})
    return out.sort_values(["account_id", "netting_set", "date"], kind="stable",
                           ignore_index=True)


def _keys(account: Any, netting_set: Any) -> pd.MultiIndex:
    return pd.MultiIndex.from_arrays([pd.Index(account).astype(str),
                                      pd.Index(netting_set).astype(str)])


def _known_at(part: BookPart, frame: pd.DataFrame, horizons: dict[tuple[str, str], int]
              ) -> np.ndarray:
    """When each backtest row's loss is known: the date ``h`` calendar rows after its own."""
    dates = part.market.prices.index
    row = dates.get_indexer(pd.DatetimeIndex(frame["date"]))
    h = pd.Series(horizons, dtype=np.int64)
    h.index = _keys(h.index.get_level_values(0), h.index.get_level_values(1))
    ahead = h.to_numpy()[h.index.get_indexer(_keys(frame["account_id"],
                                                     frame["netting_set"]))]
    return dates[np.minimum(row + ahead, len(dates) - 1)].to_numpy()


def realisable_columns(frame: pd.DataFrame, parts: list[BookPart],
                       horizons: dict[tuple[str, str], int], config: RunConfig, *,
                       step: int = 1, reset_every: int = DEFAULT_RESET_EVERY
                       ) -> tuple[pd.DataFrame, dict[str, Any]]:
    """The backtest table with :data:`REALISABLE_COLUMNS` added, and the benchmark's facts.

    Parameters
    ----------
    frame : the backtest table (one row per date and netting set of ``parts``).
    parts : the prepared books whose rows ``frame`` holds (each set in exactly one).
    horizons : ``(account_id, netting_set) -> h`` in calendar rows.
    config : the run's configuration (confidence, lookback).
    step : the backtest's ``--step``: the rate is re-set every ``ceil(reset_every / step)``
        backtest dates, i.e. every ``reset_every`` calendar rows.
    reset_every : calendar rows between two re-sets.
    """
    every = max(1, math.ceil(reset_every / step))
    rate = np.zeros(len(frame))
    warm = np.zeros(len(frame), dtype=bool)
    n_history = 0
    for part in parts:
        history = loss_history(part, config, config.lookback)
        n_history += len(history)
        mine = _keys(frame["account_id"], frame["netting_set"]).isin(
            _keys(part.book.sets["account_id"], part.book.sets["netting_set"]))
        rows = frame[mine]
        known = _known_at(part, rows, horizons)
        by_set = history.groupby(["account_id", "netting_set"], sort=False)
        past = {(str(a), str(s)): g for (a, s), g in by_set}
        where = np.flatnonzero(mine)
        for (a, s), idx in rows.groupby(["account_id", "netting_set"], sort=False).indices.items():
            local = idx[np.argsort(rows["date"].to_numpy()[idx], kind="stable")]
            own = rows.iloc[local]
            before = past.get((str(a), str(s)), history.iloc[:0])
            schedule = realisable_flat_rates(
                np.concatenate([before["known_at"].to_numpy("datetime64[ns]"), known[local]]),
                np.concatenate([before["realized_loss"].to_numpy(np.float64),
                                own["realized_loss"].to_numpy(np.float64)]),
                np.concatenate([before["gross_notional"].to_numpy(np.float64),
                                own["gross_notional"].to_numpy(np.float64)]),
                own["date"].to_numpy("datetime64[ns]"),
                confidence=config.confidence, lookback=config.lookback, reset_every=every)
            order = where[local]
            rate[order], warm[order] = schedule.rate, schedule.warm
    gross = frame["gross_notional"].to_numpy(np.float64)
    flat = frame["flat_rate_margin"].to_numpy(np.float64)
    margin = np.where(warm, rate * gross, flat)
    out = frame.copy()
    out["realisable_flat_rate"] = np.where(warm, rate, np.where(gross > 0, flat / np.where(
        gross > 0, gross, 1.0), 0.0))
    out["realisable_flat_rate_margin"] = margin
    facts = {"confidence": config.confidence, "lookback": config.lookback,
             "reset_every_rows": reset_every, "reset_every_dates": every,
             "history_rows": n_history, "warmup_rows": int((~warm).sum())}
    return out, facts
