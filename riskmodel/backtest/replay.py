"""Historical replay of the margin engine over static portfolios, one date at a time.

For every backtest date ``t`` (a row of the union calendar, see
:mod:`riskmodel.marketdata.returns`) and every netting set of a static book, the replay charges
the margin an ``eod`` run as of ``t`` charges, with data up to ``t`` only, and measures the loss
the book then realised over its margin period of risk. At each date it builds the priced market
the way ``eod`` does and margins the book with the engine itself:

* **window**: the last ``lookback`` returns common to all factors in use, up to ``t``
  (:func:`~riskmodel.marketdata.returns.common_window`), and the anti-procyclicality floor's
  longer one;
* **volatility**: the parameters in force at ``t`` (fitted on a schedule, refitted every
  ``recalibrate_every`` dates) and their causal filter sliced at ``t``
  (:mod:`riskmodel.backtest.volatility`);
* **priced market**: :func:`riskmodel.engine.price_market` at ``t``'s prices: the model
  scenarios (with the stressed observations of ``stressed_weight``), every instrument repriced
  once per scenario, the floor's scenarios, and, when stress enters the margin (``[stress]
  mode`` ``max`` or ``blend``), the historical windows and user shock files read from the price
  history up to ``t`` (a window that ends after ``t`` contributes its moves up to ``t``, as in
  an ``eod`` run on ``t``: nothing looks ahead) and the grid;
* **margin**: :func:`riskmodel.engine.margin_book`, the function ``eod`` runs on every
  partition: tail kernels, stress, floor, buffer (against the previous backtest date's model
  margin), add-ons, notional floors, policy. Equity does not enter the initial margin;
* **realised loss**: the same positions repriced with one scenario, the realised ``h``-day move
  from ``t`` to ``t + h`` (``h`` rows of the calendar; log factors ``ln(P[t+h] / P[t])``,
  absolute factors ``P[t+h] - P[t]``), through the same
  :func:`~riskmodel.pricing.revaluation.scenario_pnl`; loss = -P&L. Options are revalued at
  ``t + h`` with the time to expiry left then (the calendar time elapsed from ``t`` to
  ``t + h``) and, sticky strike, the index's move. Each netting set takes its own margin
  period of risk (``[horizons.kind]``); a date whose ``t + h`` lies beyond the data is dropped
  for the sets of that horizon.

Options: the rolling straddles of :class:`~riskmodel.backtest.portfolios.RollingStraddle` get
their terms at each ``t``; static option positions are margined as ``eod`` margins them as long
as they have not expired at the last date's ``t + h`` (:func:`check_supported_instruments`).

Nothing here reads files or writes outputs: :mod:`riskmodel.backtest.run` does.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numba
import numpy as np
import pandas as pd

from riskmodel.backtest.portfolios import RollingStraddle
from riskmodel.backtest.volatility import (
    FilterPath,
    VolatilitySchedule,
    causal_filter,
    fit_schedule,
)
from riskmodel.config import RunConfig
from riskmodel.engine import margin_book, price_market
from riskmodel.engine.build import book_factors
from riskmodel.errors import InputDataError, UsageError
from riskmodel.margin.policy import margin_base, per_set_sum
from riskmodel.margin.procyclicality import merge_tool_facts
from riskmodel.margin.tables import set_horizons
from riskmodel.marketdata.returns import MarketData, Universe, common_window
from riskmodel.portfolio.netting import Book
from riskmodel.pricing.revaluation import scenario_pnl, years_to_expiry
from riskmodel.scenarios.model import DependenceFitter, VolatilityFitter
from riskmodel.scenarios.scenario_set import ScenarioSet
from riskmodel.volatility.params import ParameterSet

__all__ = [
    "BACKTEST_COLUMNS",
    "SMALL_WORK",
    "FilterPath",
    "ReplayResult",
    "causal_filter",
    "check_supported_instruments",
    "kernel_threads",
    "realised_shocks",
    "replay",
]

#: Columns of ``backtest.parquet``, in this order.
BACKTEST_COLUMNS = [
    "date", "account_id", "netting_set", "var", "es", "initial_margin", "flat_rate_margin",
    "realized_loss", "exception", "margin_breach", "flat_rate_breach", "gross_notional",
]

#: Positions x scenarios per date below which the replay runs its kernels on one thread.
SMALL_WORK = 2_000_000


@contextmanager
def kernel_threads(n: int | None) -> Iterator[None]:
    """Run the block with ``n`` numba threads (None: unchanged); restores the previous count.

    numba's thread count is per calling thread, so this does not affect other threads.
    """
    if n is None:
        yield
        return
    previous = numba.get_num_threads()
    numba.set_num_threads(max(1, min(int(n), int(getattr(numba.config, "NUMBA_NUM_THREADS", n)))))
    try:
        yield
    finally:
        numba.set_num_threads(previous)


@dataclass
class ReplayResult:
    """The backtest table and what the run needs to report about it.

    Attributes
    ----------
    backtest : DataFrame with :data:`BACKTEST_COLUMNS`, one row per date and netting set
        (dates in order, netting sets in the book's order).
    horizons : dict ``(account_id, netting_set) -> margin period of risk`` in days.
    info : dict with ``volatility`` (per fit: date and per factor model, fallback, filter
        start), ``volatility_fallbacks`` (each fallback with the dates it was in force),
        ``anti_procyclicality`` (rows where each tool bound), ``stress`` (rows where stress
        bound), ``timings_s`` and ``warnings``.
    """

    backtest: pd.DataFrame
    horizons: dict[tuple[str, str], int]
    info: dict[str, Any]


def check_supported_instruments(used: pd.DataFrame, rolled: Sequence[str] = (),
                                last_valuation: pd.Timestamp | None = None) -> None:
    """A static option that expires before the last date it is needed on is refused
    (:class:`InputDataError` naming it and its expiry): its margin and realised loss stop
    being defined at expiry. The options of ``rolled`` (a rolling book, whose terms the replay
    sets at each date) are allowed; ``last_valuation``: the last ``t + h`` of the backtest."""
    static = used[(used["kind"].to_numpy() == "option")
                  & ~used["instrument_id"].isin(list(rolled)).to_numpy()]
    if not len(static) or last_valuation is None:
        return
    left = years_to_expiry(static, pd.Timestamp(last_valuation))
    expired = np.flatnonzero(left <= 0)
    if len(expired):
        row = static.iloc[int(expired[0])]
        raise InputDataError(
            f"instrument {row['instrument_id']!r}: the option expires at "
            f"{pd.Timestamp(row['expiry']).isoformat()}, before the backtest's last valuation "
            f"{pd.Timestamp(last_valuation).isoformat()} (t + h of its last date): end the "
            f"backtest earlier (--end) or backtest an option that lives through it "
            f"(value {str(row['expiry'])!r})")


def realised_shocks(prices: np.ndarray, start: int, horizon: int,
                    return_kinds: Sequence[str]) -> np.ndarray:
    """The realised ``horizon``-row move of each factor from calendar row ``start``.

    Parameters
    ----------
    prices : ndarray of shape (n_dates, n_factors), aligned prices.
    start : int, the row of ``t``; ``start + horizon`` must be a row.
    return_kinds : ``"log"`` or ``"absolute"`` per factor.

    Returns
    -------
    ndarray of shape (n_factors,): ``ln(P[t+h] / P[t])`` or ``P[t+h] - P[t]``.
    """
    p0, p1 = prices[start], prices[start + horizon]
    log = np.asarray([k == "log" for k in return_kinds])
    return np.where(log, np.log(np.where(log, p1 / p0, 1.0)), p1 - p0)


@dataclass
class _History:
    """The factors' aligned history and the price file's (stress windows), cut at a row."""

    market: MarketData
    universe: Universe | None
    factors: list[str]

    @property
    def dates(self) -> pd.DatetimeIndex:
        return self.market.prices.index  # type: ignore[return-value]

    def market_at(self, row: int) -> MarketData:
        m = self.market
        prices = m.prices.iloc[: row + 1]
        return MarketData(prices, m.returns.iloc[:row], self.dates[row], prices.iloc[-1],
                          m.carried, m.return_kinds)

    def universe_at(self, row: int) -> Universe | None:
        u = self.universe
        if u is None:
            return None
        t = self.dates[row]
        return Universe(u.prices.loc[:t], u.returns.loc[:t], u.return_kinds)


class _Replay:
    """The state of one replay: book, horizons, schedule, the arrays filled date by date."""

    def __init__(self, history: _History, book: Book, used: pd.DataFrame, config: RunConfig,
                 rows: np.ndarray, roll: RollingStraddle | None) -> None:
        self.history, self.book, self.used, self.config = history, book, used, config
        self.rows, self.roll = rows, roll
        self.factors = history.factors
        self.returns = history.market.returns[self.factors]
        self.price_arr = history.market.prices[self.factors].to_numpy(np.float64)
        self.kinds = [history.market.return_kinds[f] for f in self.factors]
        set_h = set_horizons(book, used, config)
        self.set_horizon = set_h
        self.groups = {int(h): np.flatnonzero(set_h == h) for h in sorted(set(set_h.tolist()))}
        self.has_options = bool((used["kind"].to_numpy() == "option").any())
        self.floor_on = "floor" in config.anti_procyclicality.tools
        complete = self.returns.notna().all(axis=1).to_numpy()
        # interior gaps are carried over: the rows where every factor has a return are a
        # suffix of the calendar, from returns row `common_start` on
        self.common_start = int(np.argmax(complete)) if complete.any() else len(complete)
        shape = (rows.size, book.n_sets)
        self.var, self.es, self.im = np.zeros(shape), np.zeros(shape), np.zeros(shape)
        self.flat, self.gross, self.loss = np.zeros(shape), np.zeros(shape), np.zeros(shape)
        self.stress_bound = np.zeros(shape, dtype=bool)
        self.valid = np.zeros(shape, dtype=bool)
        self.previous = np.full(book.n_sets, np.nan)  # the last date's model margin (buffer)
        self.apc: list[dict[str, Any]] = []
        self.warnings: list[str] = []
        self.short_window = self.short_floor = 0
        self.timings: dict[str, float] = {}

    def tick(self, name: str, since: float) -> float:
        now = time.perf_counter()
        self.timings[name] = round(self.timings.get(name, 0.0) + now - since, 4)
        return now

    def window_at(self, row: int, lookback: int) -> pd.DataFrame:
        """``common_window`` of the returns dated up to and including ``dates[row]`` (returns
        row j is calendar row j + 1)."""
        if row - lookback >= self.common_start:  # a full window: the last `lookback` rows
            return self.returns.iloc[row - lookback:row]
        # shortened by a late listing (or too short: common_window raises): its own rule
        return common_window(self.returns.iloc[:row], lookback, self.config.min_history)

    def windows_at(self, row: int) -> tuple[pd.DataFrame, pd.DataFrame]:
        window = self.window_at(row, self.config.lookback)
        long = (self.window_at(row, self.config.anti_procyclicality.floor_lookback)
                if self.floor_on else window)
        return window, long

    def date(self, i: int, r: int, schedule: VolatilitySchedule, params: ParameterSet | None,
             dependence_fitter: DependenceFitter | None) -> None:
        """Margin and realised loss of every set whose ``t + h`` is in the data, at row ``r``."""
        config, dates = self.config, self.history.dates
        t = dates[r]
        clock = time.perf_counter()
        live = [h for h in self.groups if r + h <= len(dates) - 1]
        sets = np.sort(np.concatenate([self.groups[h] for h in live]))
        part = self.book if len(sets) == self.book.n_sets else self.book.subset(sets)[0]
        window, long = self.windows_at(r)
        longest = max(config.lookback,
                      config.anti_procyclicality.floor_lookback if self.floor_on else 0)
        filtered = schedule.at(r, t, longest)
        market = self.history.market_at(r)
        terms = self.used if self.roll is None else self.roll.terms_at(self.used, market.spot, t)
        clock = self.tick("windows", clock)
        priced, facts = price_market(
            market, terms, self.factors, window, long if self.floor_on else None, filtered,
            self.history.universe_at(r), config, live, params=params,
            dependence_fitter=dependence_fitter, with_stress=config.stress.mode != "report")
        self.warnings += facts.warnings
        clock = self.tick("pricing", clock)
        result = margin_book(priced, part, config, collateral=np.zeros(part.n_sets),
                             previous=self.previous[sets], detail="figures")
        figures = result.figures
        assert figures is not None
        self.apc.append(result.apc_info)
        for name, target in (("var", self.var), ("es", self.es), ("initial_margin", self.im),
                             ("flat_rate_margin", self.flat), ("gross_notional", self.gross)):
            target[i, sets] = figures[name]
        model = figures["model_margin"]
        self.stress_bound[i, sets] = margin_base(model, figures["stress_loss"],
                                                 config.stress.mode, config.stress.weight) > model
        self.previous[:] = np.nan
        self.previous[sets] = model
        clock = self.tick("margin", clock)
        self._realised(i, r, live, terms, market)
        self.valid[i, sets] = True
        self.tick("realised", clock)
        self.short_window += len(window) < config.lookback
        self.short_floor += self.floor_on and len(long) < config.anti_procyclicality.floor_lookback

    def _realised(self, i: int, r: int, live: list[int], terms: pd.DataFrame,
                  market: MarketData) -> None:
        dates = self.history.dates
        t = dates[r]
        for h in live:
            sets = self.groups[h]
            part = self.book.subset(sets)[0] if len(sets) < self.book.n_sets else self.book
            # options decay over the calendar time that actually elapsed to t + h
            elapsed = ((dates[r + h] - t) / pd.Timedelta(days=1)) if self.has_options else h
            realised = ScenarioSet(
                shocks=realised_shocks(self.price_arr, r, h, self.kinds)[None, :],
                factors=tuple(self.factors), labels=np.array([t.isoformat()]),
                kind="realised", horizon=elapsed)
            unit_pnl = scenario_pnl(terms, realised, market.spot, market.return_kinds, t,
                                    self.config.implied_vol)[:, 0]
            self.loss[i, sets] = -per_set_sum(
                part.quantity * unit_pnl[part.instrument_index], part.indptr)

    def table(self) -> pd.DataFrame:
        keep = self.valid.ravel()
        dates = self.history.dates
        n_dates, n_sets = self.valid.shape
        realized, var = self.loss.ravel()[keep], self.var.ravel()[keep]
        im, flat = self.im.ravel()[keep], self.flat.ravel()[keep]
        return pd.DataFrame({
            "date": np.repeat(dates[self.rows].to_numpy(), n_sets)[keep],
            "account_id": np.tile(self.book.sets["account_id"].to_numpy(dtype=object),
                                  n_dates)[keep],
            "netting_set": np.tile(self.book.sets["netting_set"].to_numpy(dtype=object),
                                   n_dates)[keep],
            "var": var,
            "es": self.es.ravel()[keep],
            "initial_margin": im,
            "flat_rate_margin": flat,
            "realized_loss": realized,
            "exception": realized > var,
            "margin_breach": realized > im,
            "flat_rate_breach": realized > flat,
            "gross_notional": self.gross.ravel()[keep],
        })[BACKTEST_COLUMNS].reset_index(drop=True)


def replay(
    market: MarketData,
    book: Book,
    used: pd.DataFrame,
    config: RunConfig,
    rows: Sequence[int] | np.ndarray,
    *,
    params: ParameterSet | None = None,
    recalibrate_every: int = 0,
    fitter: VolatilityFitter | None = None,
    dependence_fitter: DependenceFitter | None = None,
    progress: Callable[[int, int], None] | None = None,
    threads: int | None = None,
    roll: RollingStraddle | None = None,
    universe: Universe | None = None,
) -> ReplayResult:
    """Replay the margin engine on the calendar rows ``rows`` (see the module docstring).

    Parameters
    ----------
    market : MarketData of the factors in use (the book's and its options' implied-vol
        indices), aligned over the whole price file (its last date is the last date of data:
        realised losses may use prices after the last backtest date).
    book : Book, the static netting sets (:func:`riskmodel.portfolio.netting.net_positions`).
    used : DataFrame indexed by ``instrument_id`` in the book's instrument order, with ``kind,
        underlying, multiplier, factor`` (and the option columns).
    config : RunConfig.
    rows : increasing calendar rows (of ``market.prices``) of the backtest dates. The common
        window at the first must hold ``min_history`` returns (``common_window`` raises
        otherwise).
    params : ParameterSet, optional; the parameters of the first fit.
    recalibrate_every : int; refit on the first backtest date at least this many calendar rows
        after the previous fit, on the returns up to and including it (needs ``fitter``); 0:
        one fit.
    fitter, dependence_fitter : the injected estimators (GARCH, Monte Carlo dependence).
    progress : callable ``progress(done, total)`` over dates, optional.
    threads : int, optional; numba threads of the per-date kernels. Default: 1 when a date's
        work is small (positions x scenarios < :data:`SMALL_WORK`), where launching the
        parallel kernels thousands of times costs more than the work; else numba's setting.
        Results do not depend on it (the kernels are bitwise thread-count invariant).
    roll : RollingStraddle, optional; the book's options roll: their terms at each date are
        ``roll.terms_at(used, prices at t, t)``.
    universe : every asset of the price file aligned over the whole file (stress windows and
        their proxies read it); None: the factors' own history.
    """
    rows = np.asarray(rows, dtype=np.int64)
    if rows.size == 0:
        raise UsageError("no backtest date to evaluate")
    if np.any(np.diff(rows) <= 0):
        raise ValueError("rows must be strictly increasing")
    if recalibrate_every < 0:
        raise UsageError(f"--recalibrate-every = {recalibrate_every} must be >= 0")
    warnings: list[str] = []
    factors = book_factors(used, config, set(market.prices.columns), warnings)
    history = _History(market, universe if universe is not None else Universe(
        market.prices, market.returns, market.return_kinds), factors)
    state = _Replay(history, book, used, config, rows, roll)
    state.warnings += warnings
    clock = time.perf_counter()
    schedule = fit_schedule(state.returns, history.dates, rows, factors, config,
                            state.windows_at, params=params, fitter=fitter,
                            recalibrate_every=recalibrate_every)
    state.warnings += [f"factor {f}: volatility fallback to {p.params.model}: "
                       f"{p.params.fallback}" for paths in schedule.paths
                       for f, p in paths.items() if p.params.fallback]
    state.tick("volatility", clock)
    n_scen = config.scenarios if config.method == "mc" else config.lookback
    if threads is None:  # many small kernels: the parallel launch would cost more than the work
        threads = 1 if len(book.quantity) * n_scen < SMALL_WORK else None
    report_every = max(1, rows.size // 200)
    with kernel_threads(threads):
        for i, r in enumerate(rows):
            state.date(i, int(r), schedule, params, dependence_fitter)
            if progress is not None and ((i + 1) % report_every == 0 or i + 1 == rows.size):
                progress(i + 1, rows.size)
    return ReplayResult(state.table(), _horizons(book, state.set_horizon),
                        _info(state, schedule))


def _horizons(book: Book, set_horizon: np.ndarray) -> dict[tuple[str, str], int]:
    return {(str(a), str(s)): int(h) for a, s, h in
            zip(book.sets["account_id"], book.sets["netting_set"], set_horizon)}


def _info(state: _Replay, schedule: VolatilitySchedule) -> dict[str, Any]:
    config, n_dates = state.config, state.rows.size
    warnings = state.warnings
    if state.short_window:
        warnings.append(f"lookback shortened on {state.short_window} of {n_dates} dates: fewer "
                        f"than {config.lookback} common returns")
    if state.short_floor:
        warnings.append(f"anti-procyclicality floor: lookback shortened on {state.short_floor} "
                        f"of {n_dates} dates: fewer than "
                        f"{config.anti_procyclicality.floor_lookback} common returns")
    apc = merge_tool_facts(state.apc)
    for tool in ("floor", "buffer"):
        if tool in apc:  # counts are of (date, netting set) rows, not of sets
            apc[tool] = {("bound_rows" if k == "bound_sets" else k.replace("_sets", "_rows")): v
                         for k, v in apc[tool].items()}
    if "buffer" in apc:
        apc["buffer"]["previous_run"] = True
        apc["buffer"]["previous"] = "the previous backtest date's model margin"
    return {
        "volatility": schedule.fits,
        "volatility_fallbacks": schedule.fallbacks(),
        "anti_procyclicality": apc,
        "stress": {"mode": config.stress.mode, "weight": config.stress.weight,
                   "bound_rows": int((state.stress_bound & state.valid).sum())},
        "timings_s": state.timings,
        "warnings": list(dict.fromkeys(warnings)),
    }
