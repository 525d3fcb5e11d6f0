"""Historical replay of the margin engine over static portfolios, one date at a time.

For every backtest date ``t`` (a row of the union calendar, see
:mod:`riskmodel.marketdata.returns`) and every netting set of a static book, the replay computes
what an ``eod`` run on ``t`` would have computed, with data up to ``t`` only, and the loss the
book then realised over its margin period of risk:

* **window**: the last ``lookback`` returns common to all factors in use, up to ``t``
  (:func:`~riskmodel.marketdata.returns.common_window` on the returns up to ``t``; one window
  for the whole book, as in ``eod``);
* **volatility** (FHS, MC): each factor is filtered once over its whole history with fixed
  parameters (:func:`~riskmodel.volatility.filters.filter_factor`, numba recursion) and the
  result is sliced at ``t``: the conditional variances and standardised residuals up to ``t``
  and ``sigma2_next``, the variance for ``t + 1`` known at ``t``. The recursion is causal, so
  the slice equals a filter stopped at ``t``. Where the recursion starts (:func:`causal_filter`):
  at the parameter set's own calibration sample with its stored backcast when that sample
  covers the first scenario window (what ``eod --params`` does), otherwise at the factor's first
  return with a backcast computed from the returns *before the first backtest date* only.
  Parameters are those given, or fitted (by the injected fitter) on the returns before the
  first backtest date, and refitted every ``recalibrate_every`` calendar rows on the returns up
  to and including the refit date;
* **scenarios**: :func:`riskmodel.batch.model_scenarios.model_scenarios`, the engine's own;
* **repricing**: :func:`riskmodel.pricing.revaluation.scenario_pnl` (the engine's one entry
  point: linear, inverse and option kinds) at ``t``'s prices, once per instrument per scenario
  and reused by every netting set; notional is ``|quantity x delta x price|``
  (:func:`~riskmodel.pricing.revaluation.unit_greeks`) as in ``eod``. Static option positions
  are not replayed (they expire during a backtest): :func:`check_supported_instruments`. The
  options of a rolling book (``roll``, the built-in straddles of
  :class:`~riskmodel.backtest.portfolios.RollingStraddle`) get their terms at each ``t``
  (strike, expiry, implied vol) and are repriced like any option of an ``eod`` book, their
  implied-vol index (``[implied_vol] factors``, :func:`riskmodel.batch.eod.implied_vol_factors`)
  joining the factors, the window and the scenarios as in ``eod``;
* **tail**: :func:`riskmodel.measures.tail_measures` over all netting sets at once (a second
  tail over ``floor_lookback`` for the anti-procyclicality floor);
* **margin**: after the loop, for all (date, netting set) rows at once, the engine's policy:
  :func:`~riskmodel.batch.apc_stage.apply_tools` (floor; buffer against the previous backtest
  date's model margin), :func:`~riskmodel.margin.addons.position_addons` /
  :func:`~riskmodel.margin.addons.set_addons` and :func:`~riskmodel.margin.policy.apply_policy`
  as :func:`riskmodel.margin.tables.assemble_margins` uses them. Stress does not enter the
  margin base (stress windows may lie after ``t``: look-ahead), and equity is irrelevant;
* **realised loss**: the same positions repriced with one scenario, the realised ``h``-day move
  from ``t`` to ``t + h`` (``h`` rows of the calendar; log factors ``ln(P[t+h] / P[t])``,
  absolute factors ``P[t+h] - P[t]``), through the same ``scenario_pnl``; loss = -P&L. Options
  are revalued at ``t + h`` with the time to expiry left then (the calendar time elapsed from
  ``t`` to ``t + h``, not the ``h`` days of the margin's scenarios) and, sticky strike, the
  index's move: a straddle marked at the index level of ``t`` is revalued at that of
  ``t + h``. Each netting set takes its own margin period of risk (``[horizons.kind]``); a date
  whose ``t + h`` lies beyond the data is dropped for the sets of that horizon.

Nothing here reads files or writes outputs: :mod:`riskmodel.backtest.run` does.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Literal

import numba
import numpy as np
import pandas as pd

from riskmodel.backtest.portfolios import RollingStraddle
from riskmodel.batch.apc_stage import apply_tools
from riskmodel.batch.eod import implied_vol_factors
from riskmodel.batch.model_scenarios import (
    FILTER_BURN_IN,
    DependenceFitter,
    VolatilityFitter,
    model_scenarios,
)
from riskmodel.config import RunConfig
from riskmodel.errors import InputDataError, ModelError, UsageError
from riskmodel.margin.addons import position_addons, set_addons
from riskmodel.margin.policy import apply_policy, per_set_sum
from riskmodel.margin.tables import set_horizons
from riskmodel.marketdata.returns import MarketData, common_window
from riskmodel.measures import tail_measures
from riskmodel.portfolio.netting import Book
from riskmodel.pricing.revaluation import INVERSE_KINDS, scenario_pnl, unit_greeks
from riskmodel.scenarios.scenario_set import ScenarioSet
from riskmodel.volatility.filters import FilteredFactor, backcast_value, filter_factor
from riskmodel.volatility.params import FactorParams, ParameterSet

__all__ = [
    "BACKTEST_COLUMNS",
    "SMALL_WORK",
    "FilterPath",
    "ReplayResult",
    "causal_filter",
    "check_supported",
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


# --------------------------------------------------------------------------------------------
# Volatility: one causal filter pass per factor and parameter set, sliced per date
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FilterPath:
    """One factor filtered over its history with fixed parameters; :meth:`at` slices it.

    Attributes
    ----------
    asset : str
    params : FactorParams, the parameters (as given or fitted).
    sigma2 : Series (dates of the filtered returns), conditional variance of each return.
    std_resid : Series (same dates), standardised residuals.
    forecast : ndarray of shape (n + 1,), ``sigma2`` followed by the one-step forecast after
        the last return: ``forecast[j + 1]`` is the variance for the day after date ``j``.
    start : str, how the recursion was started (for the manifest).
    """

    asset: str
    params: FactorParams
    sigma2: pd.Series
    std_resid: pd.Series
    forecast: np.ndarray
    start: str

    def at(self, date: pd.Timestamp, keep: int | None = None) -> FilteredFactor:
        """What :func:`~riskmodel.volatility.filters.filter_factor` stopped at ``date`` gives.

        ``keep``: only the last ``keep`` filtered returns up to ``date`` (the scenario
        generators read the window's dates only; a shorter series is cheaper to index).
        """
        index = self.sigma2.index
        j = int(index.searchsorted(date))
        if j >= len(index) or index[j] != date:
            raise ModelError(f"factor {self.asset!r}: no filtered return on {date.isoformat()}")
        first = 0 if keep is None else max(0, j + 1 - keep)
        return FilteredFactor(
            asset=self.asset,
            params=self.params,
            sigma2=self.sigma2.iloc[first : j + 1],
            std_resid=self.std_resid.iloc[first : j + 1],
            sigma2_next=float(self.forecast[j + 1]),
            start=self.start,
        )


def causal_filter(
    asset: str,
    returns: pd.Series,
    params: FactorParams,
    cover_from: pd.Timestamp,
    first_date: pd.Timestamp,
) -> FilterPath:
    """Filter a factor's whole history without looking beyond ``first_date`` for its start.

    Parameters
    ----------
    asset : str
    returns : Series of the factor's daily returns (its own history, no NaN, sorted dates),
        possibly running past the backtest dates: the recursion is causal.
    params : FactorParams
    cover_from : Timestamp, the first date the filtered range must include (the start of the
        first scenario window, or of the floor's longer window).
    first_date : Timestamp, the first backtest date.

    Returns
    -------
    FilterPath

    Notes
    -----
    When ``params`` carries its calibration sample (``sample_start``, ``backcast_value``) and that
    sample starts on or before ``cover_from``, the recursion starts there with the stored
    backcast: :func:`~riskmodel.volatility.filters.filter_factor`'s own rule, which reproduces the
    calibration's conditional variance. Otherwise it starts at the factor's first return and the
    backcast (``params.backcast`` rule: arch's EWMA of the first 75 squared residuals, or the
    mean squared residual) is computed from the returns strictly before ``first_date``, never
    from later data.
    """
    sample_start = pd.Timestamp(params.sample_start) if params.sample_start else None
    if (
        sample_start is not None
        and params.backcast_value is not None
        and sample_start in returns.index
        and sample_start <= cover_from
    ):
        ff = filter_factor(asset, returns, params, cover_from=cover_from)
        start = ff.start
    else:
        before = returns.loc[returns.index < first_date]
        if len(before) == 0:
            raise ModelError(f"factor {asset!r}: no return before the first backtest date "
                             f"{first_date.isoformat()} to start its volatility filter from")
        resid = before.to_numpy(np.float64) * params.return_scale - params.mu
        value = max(backcast_value(resid, params.backcast), float(np.finfo(float).tiny))
        pinned = dataclasses.replace(params, sample_start=returns.index[0].isoformat(),
                                     backcast_value=value)
        ff = filter_factor(asset, returns, pinned, cover_from=cover_from)
        start = (f"{params.backcast} backcast of the {len(before)} returns before "
                 f"{first_date.isoformat()}, filtered from {returns.index[0].isoformat()}")
    forecast = np.append(ff.sigma2.to_numpy(np.float64), ff.sigma2_next)
    return FilterPath(asset, params, ff.sigma2, ff.std_resid, forecast, start)


@dataclass
class _VolatilitySchedule:
    """Per factor, the filter paths in force from each calendar row on (fit or refit rows)."""

    from_rows: list[int] = field(default_factory=list)
    paths: list[dict[str, FilterPath]] = field(default_factory=list)

    def at(self, row: int, date: pd.Timestamp, keep: int | None = None
           ) -> dict[str, FilteredFactor]:
        k = int(np.searchsorted(np.asarray(self.from_rows), row, side="right")) - 1
        return {f: p.at(date, keep) for f, p in self.paths[k].items()}


# --------------------------------------------------------------------------------------------
# The replay
# --------------------------------------------------------------------------------------------

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
        start), ``anti_procyclicality`` (rows where each tool bound), ``timings_s`` and
        ``warnings``.
    """

    backtest: pd.DataFrame
    horizons: dict[tuple[str, str], int]
    info: dict[str, Any]


def check_supported(config: RunConfig) -> list[str]:
    """Raise :class:`UsageError` for settings a backtest cannot replay; notes for the others."""
    notes: list[str] = []
    if "stressed_weight" in config.anti_procyclicality.tools:
        raise UsageError(
            "anti_procyclicality.tools: 'stressed_weight' is not supported by backtest (its "
            "stressed windows may lie after the backtest date: look-ahead); use 'buffer' or "
            "'floor'"
        )
    if config.stress.mode != "report":
        notes.append(f"stress.mode = {config.stress.mode!r} is not applied in a backtest: the "
                     "margin base is the model margin alone (stress windows may lie after the "
                     "backtest date)")
    return notes


def check_supported_instruments(used: pd.DataFrame, rolled: Sequence[str] = ()) -> None:
    """Static options are not replayed: raise :class:`InputDataError` naming the first one.

    A static option position expires during a long backtest (its margin and realised loss stop
    being defined at expiry), and rolling it would need a chain the inputs do not hold. The
    options of ``rolled`` (instrument ids of a rolling book, whose terms the replay sets at
    each date) are allowed.
    """
    options = used[(used["kind"].to_numpy() == "option")
                   & ~used["instrument_id"].isin(list(rolled)).to_numpy()]
    if len(options):
        raise InputDataError(
            f"instrument {options['instrument_id'].iat[0]!r}: kind 'option' is not supported by "
            "backtest (static option positions expire during the backtest); backtest the "
            "linear and inverse instruments, or run without --positions for the built-in "
            "rolling straddles (value 'option')")


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


def _sample_len(config: RunConfig, window_len: int) -> int:
    # as eod's filter_factors: the window (or the floor's) plus a burn-in, at least the fit window
    return max(config.garch_fit_window, window_len + FILTER_BURN_IN)


def replay(
    market: MarketData,
    book: Book,
    used: pd.DataFrame,
    config: RunConfig,
    rows: Sequence[int] | np.ndarray,
    *,
    params: ParameterSet | None = None,
    recalibrate_every: int | None = None,
    fitter: VolatilityFitter | None = None,
    dependence_fitter: DependenceFitter | None = None,
    progress: Callable[[int, int], None] | None = None,
    threads: int | None = None,
    roll: RollingStraddle | None = None,
) -> ReplayResult:
    """Replay the margin engine on the calendar rows ``rows`` (see the module docstring).

    Parameters
    ----------
    market : MarketData of the factors in use, aligned over the whole price file (its last date
        is the last date of data: realised losses may use prices after the last backtest date).
    book : Book, the static netting sets (:func:`riskmodel.portfolio.netting.net_positions`).
    used : DataFrame indexed by ``instrument_id`` in the book's instrument order, with ``kind,
        underlying, multiplier, factor``.
    config : RunConfig.
    rows : increasing calendar rows (of ``market.prices``) of the backtest dates. The common
        window at the first must hold ``min_history`` returns (``common_window`` raises
        otherwise).
    params : ParameterSet, optional; fixed parameters (refitted per ``recalibrate_every``).
    recalibrate_every : int, optional; refit on the first backtest date at least this many
        calendar rows after the previous fit, on the returns up to and including it (needs
        ``fitter``).
    fitter : VolatilityFitter, optional; required for GARCH without ``params`` and for refits.
    dependence_fitter : DependenceFitter, optional; Monte Carlo dependence at run time.
    progress : callable ``progress(done, total)`` over dates, optional.
    threads : int, optional; numba threads of the per-date kernels. Default: 1 when a date's
        work is small (positions x scenarios < :data:`SMALL_WORK`), where launching the
        parallel kernels thousands of times costs more than the work (a tiny kernel call takes
        microseconds on one thread, milliseconds through a busy thread pool); else numba's
        setting. Results do not depend on it (the kernels are bitwise thread-count invariant).
    roll : RollingStraddle, optional; the book's options roll: their terms at each date are
        ``roll.terms_at(used, prices at t, t)``.

    Returns
    -------
    ReplayResult
    """
    notes = check_supported(config)
    rows = np.asarray(rows, dtype=np.int64)
    if rows.size == 0:
        raise UsageError("no backtest date to evaluate")
    if np.any(np.diff(rows) <= 0):
        raise ValueError("rows must be strictly increasing")
    if recalibrate_every is not None and recalibrate_every < 1:
        raise UsageError(f"--recalibrate-every = {recalibrate_every} must be >= 1")
    timings: dict[str, float] = {}

    def tick(name: str, since: float) -> float:
        now = time.perf_counter()
        timings[name] = round(timings.get(name, 0.0) + now - since, 4)
        return now

    clock = time.perf_counter()
    warnings: list[str] = list(notes)
    check_supported_instruments(used, () if roll is None else roll.instrument_ids)
    has_options = bool((used["kind"].to_numpy() == "option").any())
    # the implied-vol indices of the options' underlyings are factors too, as in eod
    factors = sorted(set(used["factor"]) | implied_vol_factors(
        used, config, set(market.prices.columns), warnings))
    prices_frame = market.prices[factors]
    returns = market.returns[factors]
    dates = prices_frame.index
    price_arr = prices_frame.to_numpy(np.float64)
    kinds_f = [market.return_kinds[f] for f in factors]
    last_row = len(dates) - 1

    set_h = set_horizons(book, used, config)
    groups = {int(h): np.flatnonzero(set_h == h) for h in sorted(set(set_h.tolist()))}
    parts = {h: (book.subset(s)[0] if len(s) < book.n_sets else book) for h, s in groups.items()}
    factor_row = pd.Index(factors).get_indexer(used["factor"])
    pos_kinds = used["kind"].to_numpy()[book.instrument_index]
    pos_underlyings = used["underlying"].to_numpy()[book.instrument_index]
    pos_factor = factor_row[book.instrument_index]
    apc_floor = "floor" in config.anti_procyclicality.tools
    measure: Literal["es", "var"] = "es" if config.measure == "es" else "var"

    # a linear contract's delta is its multiplier whatever the price: compute it once
    varying = has_options or np.isin(used["kind"].to_numpy(), INVERSE_KINDS).any()
    fixed_delta = (None if varying else
                   unit_greeks(used, prices_frame.iloc[int(rows[0])], dates[int(rows[0])])
                   ["delta"].to_numpy(np.float64))

    longest = max(config.lookback, config.anti_procyclicality.floor_lookback if apc_floor else 0)

    # Interior gaps are carried over, so the rows where every factor has a return are a suffix
    # of the calendar, from returns row `common_start` on.
    complete = returns.notna().all(axis=1).to_numpy()
    common_start = int(np.argmax(complete)) if complete.any() else len(complete)

    def window_at(row: int, lookback: int) -> pd.DataFrame:
        """``common_window`` of the returns dated up to and including ``dates[row]`` (returns
        row j is calendar row j + 1)."""
        if row - lookback >= common_start:  # a full window: the last `lookback` rows
            return returns.iloc[row - lookback:row]
        # shortened by a late listing (or too short: common_window raises): its own rule
        return common_window(returns.iloc[:row], lookback, config.min_history)

    def windows_at(row: int) -> tuple[pd.DataFrame, pd.DataFrame]:
        window = window_at(row, config.lookback)
        long = (window_at(row, config.anti_procyclicality.floor_lookback) if apc_floor
                else window)
        return window, long

    # ---- volatility: fit (or take) parameters, filter once per factor and parameter set ----
    schedule = _VolatilitySchedule()
    fits: list[dict[str, Any]] = []
    first_date = dates[rows[0]]
    if config.method != "hs":
        if recalibrate_every is not None and fitter is None:
            raise ModelError("--recalibrate-every needs a GARCH fitter")
        fit_rows = [int(rows[0])]
        if recalibrate_every is not None:
            for r in rows[1:]:
                if r - fit_rows[-1] >= recalibrate_every:
                    fit_rows.append(int(r))
        for k, r in enumerate(fit_rows):
            window, long = windows_at(r)
            sample_len = _sample_len(config, len(long))
            refit = k > 0
            chosen: dict[str, FactorParams] = {}
            for f in factors:
                series = returns[f].dropna()
                if params is not None and not refit:
                    if f not in params.factors:
                        raise InputDataError(
                            f"{params.source}: parameter set has no entry for factor {f!r} "
                            f"(has: {', '.join(sorted(params.factors))}) (value {f!r})")
                    chosen[f] = params.factors[f]
                elif config.vol_model == "garch" or refit:
                    if fitter is None:
                        raise ModelError("GARCH volatility needs --params or a fitter")
                    # the first fit: data before the first date; a refit: up to its date
                    upto = series.loc[: dates[r]] if refit else series.loc[series.index < dates[r]]
                    chosen[f] = fitter(upto.iloc[-sample_len:], config)
                else:
                    chosen[f] = FactorParams(model="ewma", decay=config.ewma_lambda)
            paths = {f: causal_filter(f, returns[f].dropna(), chosen[f], long.index[0],
                                      first_date) for f in factors}
            schedule.from_rows.append(r)
            schedule.paths.append(paths)
            fits.append({
                "date": dates[r].isoformat(),
                "source": ("parameter set" if params is not None and not refit
                           else "fitted" if config.vol_model == "garch" or refit
                           else f"ewma lambda {config.ewma_lambda}"),
                "factors": {f: {"model": p.params.model, "dist": p.params.dist,
                                "fallback": p.params.fallback,
                                "sample_start": p.params.sample_start,
                                "sample_end": p.params.sample_end,
                                "filter_start": p.start} for f, p in paths.items()},
            })
            warnings += [f"factor {f}: volatility fallback to {p.params.model}: "
                         f"{p.params.fallback}" for f, p in paths.items() if p.params.fallback]
    clock = tick("volatility", clock)

    # ---- the loop over dates ----
    n_dates, n_sets, n_pos = rows.size, book.n_sets, len(book.quantity)
    var = np.zeros((n_dates, n_sets))
    es = np.zeros((n_dates, n_sets))
    model = np.zeros((n_dates, n_sets))
    floor = np.zeros((n_dates, n_sets)) if apc_floor else None
    loss = np.zeros((n_dates, n_sets))
    valid = np.zeros((n_dates, n_sets), dtype=bool)
    notional = np.zeros((n_dates, n_pos))
    report_every = max(1, n_dates // 200)
    short_window = short_floor = 0  # dates whose window is shorter than asked
    n_scen = config.scenarios if config.method == "mc" else longest
    if threads is None:  # many small kernels: the parallel launch would cost more than the work
        threads = 1 if n_pos * n_scen < SMALL_WORK else None
    with kernel_threads(threads):
        for i, r in enumerate(rows):
            r = int(r)
            t = dates[r]
            window, long = windows_at(r)
            # each factor's last `longest` returns up to t hold every window date (the common
            # history is a suffix of the calendar)
            filtered = schedule.at(r, t, longest) if config.method != "hs" else {}
            spot = prices_frame.iloc[r]
            terms = used if roll is None else roll.terms_at(used, spot, t)
            delta = (fixed_delta if fixed_delta is not None else
                     unit_greeks(terms, spot, t)["delta"].to_numpy(np.float64))
            notional[i] = np.abs(book.quantity * delta[book.instrument_index]
                                 * price_arr[r, pos_factor])
            clock = tick("windows", clock)
            for h, sets in groups.items():
                if r + h > last_row:
                    continue  # the realised loss is not in the data
                part = parts[h]
                cfg = config if h == config.horizon else dataclasses.replace(config, horizon=h)
                scen = model_scenarios(window, filtered, cfg, params, dependence_fitter, warnings)
                clock = tick("scenarios", clock)
                pnl = scenario_pnl(terms, scen, spot, market.return_kinds, t, config.implied_vol)
                clock = tick("repricing", clock)
                tail = tail_measures(pnl, part.indptr, part.instrument_index, part.quantity,
                                     config.confidence, measure=measure, weights=scen.weights,
                                     chunk_size=config.chunk_size)
                var[i, sets] = tail.var
                es[i, sets] = tail.es
                model[i, sets] = tail.model_measure
                clock = tick("tail", clock)
                if floor is not None:
                    cfg_long = dataclasses.replace(cfg, lookback=config.anti_procyclicality
                                                   .floor_lookback)
                    scen_long = model_scenarios(long, filtered, cfg_long, params,
                                                dependence_fitter, warnings)
                    pnl_long = scenario_pnl(terms, scen_long, spot, market.return_kinds, t,
                                            config.implied_vol)
                    long_tail = tail_measures(pnl_long, part.indptr, part.instrument_index,
                                              part.quantity, config.confidence, measure=measure,
                                              weights=scen_long.weights,
                                              chunk_size=config.chunk_size)
                    floor[i, sets] = np.maximum(long_tail.model_measure, 0.0)
                    clock = tick("apc_floor", clock)
                # options decay over the calendar time that actually elapsed to t + h
                elapsed = ((dates[r + h] - t) / pd.Timedelta(days=1)) if has_options else h
                realised = ScenarioSet(
                    shocks=realised_shocks(price_arr, r, h, kinds_f)[None, :],
                    factors=tuple(factors), labels=np.array([t.isoformat()]), kind="realised",
                    horizon=elapsed)
                unit_pnl = scenario_pnl(terms, realised, spot, market.return_kinds, t,
                                        config.implied_vol)[:, 0]
                loss[i, sets] = -per_set_sum(part.quantity * unit_pnl[part.instrument_index],
                                             part.indptr)
                valid[i, sets] = True
                clock = tick("realised", clock)
            short_window += len(window) < config.lookback
            short_floor += apc_floor and len(long) < config.anti_procyclicality.floor_lookback
            if progress is not None and ((i + 1) % report_every == 0 or i + 1 == n_dates):
                progress(i + 1, n_dates)

    if short_window:
        warnings.append(f"lookback shortened on {short_window} of {n_dates} dates: fewer than "
                        f"{config.lookback} common returns")
    if short_floor:
        warnings.append(f"anti-procyclicality floor: lookback shortened on {short_floor} of "
                        f"{n_dates} dates: fewer than {config.anti_procyclicality.floor_lookback}"
                        " common returns")

    # ---- the margin policy, for every (date, netting set) row at once ----
    model_margin = np.maximum(model, 0.0).ravel()
    previous = np.full((n_dates, n_sets), np.nan)
    previous[1:] = np.maximum(model[:-1], 0.0)
    previous[1:][~valid[:-1]] = np.nan
    apc_base, apc_info = apply_tools(model_margin, None if floor is None else floor.ravel(),
                                     previous.ravel(), config)
    stride = np.arange(n_dates, dtype=np.int64)[:, None] * n_pos
    indptr = np.append((book.indptr[:-1][None, :] + stride).ravel(), n_dates * n_pos)
    kinds_all = np.tile(pos_kinds, n_dates).tolist()
    unders_all = np.tile(pos_underlyings, n_dates).tolist()
    notional_all = notional.ravel()
    liquidity, concentration = position_addons(notional_all, kinds_all, unders_all,
                                               config.addons, config.addon_adv)
    policy = apply_policy(model_margin, set_addons(liquidity, concentration, indptr),
                          notional_all, kinds_all, unders_all, indptr, np.zeros(n_dates * n_sets),
                          config.margin, base=apc_base)
    gross = per_set_sum(notional_all, indptr)
    clock = tick("policy", clock)

    keep = valid.ravel()
    realized = loss.ravel()[keep]
    im = policy["initial_margin"].to_numpy(np.float64)[keep]
    flat = policy["flat_rate_margin"].to_numpy(np.float64)[keep]
    var_k = var.ravel()[keep]
    frame = pd.DataFrame({
        "date": np.repeat(dates[rows].to_numpy(), n_sets)[keep],
        "account_id": np.tile(book.sets["account_id"].to_numpy(dtype=object), n_dates)[keep],
        "netting_set": np.tile(book.sets["netting_set"].to_numpy(dtype=object), n_dates)[keep],
        "var": var_k,
        "es": es.ravel()[keep],
        "initial_margin": im,
        "flat_rate_margin": flat,
        "realized_loss": realized,
        "exception": realized > var_k,
        "margin_breach": realized > im,
        "flat_rate_breach": realized > flat,
        "gross_notional": gross[keep],
    })[BACKTEST_COLUMNS]
    horizons = {(str(a), str(s)): int(h) for a, s, h in
                zip(book.sets["account_id"], book.sets["netting_set"], set_h)}
    for tool in ("floor", "buffer"):
        if tool in apc_info:  # counts are of (date, netting set) rows, not of sets
            apc_info[tool] = {("bound_rows" if k == "bound_sets" else
                               k.replace("_sets", "_rows")): v
                              for k, v in apc_info[tool].items()}
    if "buffer" in apc_info:
        apc_info["buffer"]["previous"] = "the previous backtest date's model margin"
    info = {
        "volatility": fits,
        "anti_procyclicality": apc_info,
        "timings_s": timings,
        "warnings": list(dict.fromkeys(warnings)),
    }
    return ReplayResult(frame.reset_index(drop=True), horizons, info)

