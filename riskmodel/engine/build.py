"""Price the market: from a valuation's window, volatilities and prices to a
:class:`~riskmodel.engine.market.PricedMarket`.

``eod`` and the backtest both call :func:`price_market`; they differ only in how they reach its
inputs (``eod`` filters volatility as of its market date; the backtest slices one causal filter
pass at each date). For each margin period of risk the book needs:

1. the model scenario set (:func:`riskmodel.scenarios.model.model_scenarios`: HS, FHS or Monte
   Carlo, with the stressed observations of the anti-procyclicality tool ``stressed_weight``);
2. the per-unit P&L of every instrument to price in it
   (:func:`riskmodel.pricing.revaluation.scenario_pnl`: once per instrument, never per position);
3. with the anti-procyclicality ``floor``, the same over the floor's longer lookback;
4. with stress, the historical-window and user-shock scenario sets
   (:func:`riskmodel.scenarios.stress.stress_scenario_sets`) and their P&L.

Every P&L is checked finite once here, so the engine's kernels skip the scan.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from riskmodel.config import RunConfig
from riskmodel.engine.grid import grid_factors, grid_pnl, with_smiles
from riskmodel.engine.market import (
    ModelPnl,
    PricedMarket,
    ScenarioShocks,
    StressBlock,
    StressPnl,
)
from riskmodel.errors import ModelError
from riskmodel.io.prices import PriceHistory
from riskmodel.marketdata.returns import (
    MarketData,
    Universe,
    build_market_data,
    build_universe,
    common_window,
    gap_warnings,
    resolve_market_date,
)
from riskmodel.pricing.revaluation import at_labels, scenario_pnl
from riskmodel.scenarios.model import (
    DependenceFitter,
    VolatilityFitter,
    filter_factors,
    model_scenarios,
    volatility_warnings,
)
from riskmodel.scenarios.scenario_set import ScenarioSet
from riskmodel.scenarios.stress import stress_scenario_sets
from riskmodel.scenarios.stressed import stressed_observations
from riskmodel.volatility.filters import FilteredFactor
from riskmodel.volatility.params import ParameterSet

#: ``stage(name)``: a context manager timing a named stage (the run's timer), or none.
StageTimer = Callable[[str], AbstractContextManager[Any]]


@dataclass
class Valuation:
    """A market as of a date: the factors' aligned data, every asset's (stress windows and
    their proxies read it), the model window, the anti-procyclicality floor's longer window
    (None when the floor is off) and each factor's volatility filter (empty for plain HS)."""

    market: MarketData
    universe: Universe
    window: pd.DataFrame
    long_window: pd.DataFrame | None
    filtered: dict[str, FilteredFactor]


def value_as_of(
    history: PriceHistory,
    factors: list[str],
    as_of: str | None,
    config: RunConfig,
    *,
    params: ParameterSet | None = None,
    fitter: VolatilityFitter | None = None,
    warnings: list[str],
    stage: StageTimer | None = None,
    before_alignment: Callable[[pd.Timestamp], None] | None = None,
) -> Valuation:
    """The valuation of ``factors`` as of ``as_of`` (default: the last date of the prices),
    what ``eod`` and the scenario export price: the market date (the last price stamp on or
    before ``as_of``), the factors aligned up to it (the calendar rule of
    :mod:`riskmodel.marketdata.returns`), the window of the last ``lookback`` common returns,
    and each factor filtered with fixed parameters (``params``, else fitted by ``fitter`` with
    ``volatility.model = "garch"``, else EWMA; a parameter set estimated on data after the
    market date is an input error, one older than ``calibration.max_age_days`` a warning).
    ``before_alignment(market_date)`` runs first
    (``eod`` checks that no option held expired); notes go to ``warnings``; ``stage`` times
    ``market_data`` and ``volatility``."""
    timed = stage or (lambda _name: nullcontext())
    with timed("market_data"):
        market_date = resolve_market_date(history, as_of)
        if params is not None and config.method != "hs":
            # no look-ahead, and the set's age counts from its data, not from the file
            warnings += params.check_as_of(market_date.to_pydatetime(), factors,
                                           config.calibration.max_age_days)
        if before_alignment is not None:
            before_alignment(market_date)
        market = build_market_data(history, factors, market_date, config.return_kind,
                                   config.price_gaps)
        warnings += gap_warnings(history, market.carried, config.price_gaps)
        universe = build_universe(history, market_date, config.return_kind)
        window = common_window(market.returns, config.lookback, config.min_history)
        if len(window) < config.lookback:
            warnings.append(
                f"lookback shortened to {len(window)} common returns (asked "
                f"{config.lookback}): a factor's history starts later")
        long_window = None
        if "floor" in config.anti_procyclicality.tools:
            long_window = common_window(market.returns,
                                        config.anti_procyclicality.floor_lookback,
                                        config.min_history)
    with timed("volatility"):
        # the filter must cover the floor's longer window too
        filtered = filter_factors(market.returns,
                                  window if long_window is None else long_window, factors,
                                  config, params, fitter)
        warnings += volatility_warnings(filtered)
    return Valuation(market, universe, window, long_window, filtered)


@dataclass
class PricingFacts:
    """What the manifest reports of the pricing: the model scenario set of each horizon, the
    stress stage's facts and the notes (warnings) it raised."""

    scenarios: dict[int, ScenarioSet] = field(default_factory=dict)
    stress: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)


def implied_vol_factors(used: pd.DataFrame, config: RunConfig, assets: set[str],
                        warnings: list[str]) -> set[str]:
    """The implied-vol index columns (``[implied_vol] factors``) of the book's options'
    underlyings that the price file has; a configured one it lacks is a warning (those options
    follow the spot-vol rule)."""
    out: set[str] = set()
    for underlying in sorted(set(used.loc[used["kind"] == "option", "underlying"])):
        column = config.implied_vol.factors.get(underlying)
        if column is None:
            continue
        if column in assets:
            out.add(column)
        else:
            warnings.append(f"implied_vol.factors.{underlying} = {column!r}: no such column in "
                            "the price file; its options follow the spot-vol rule")
    return out


def book_factors(used: pd.DataFrame, config: RunConfig, assets: set[str],
                 warnings: list[str]) -> list[str]:
    """The scenario factors of a book's instruments ``used``: their own factors and the
    implied-vol indices of their options' underlyings (with ``--method grid`` also the prices
    the rule reads: :func:`riskmodel.engine.grid.grid_factors`), sorted."""
    return sorted(set(used["factor"]) | implied_vol_factors(used, config, assets, warnings)
                  | grid_factors(used, config, assets))


def factor_table(factors: Sequence[str], market: MarketData, window: pd.DataFrame,
                 filtered: Mapping[str, FilteredFactor]) -> pd.DataFrame:
    """``factor, price, return_kind, sigma_1d, sigma_rel``: the one-day volatility the
    scenarios used (the filter's forecast, or the window's standard deviation for plain HS),
    and as a relative move (price differences divided by the price) for the distance to
    liquidation."""
    factors = list(factors)
    price = at_labels(market.spot, factors)
    kinds = [market.return_kinds[f] for f in factors]
    if filtered:
        sigma = np.array([filtered[f].sigma_1d for f in factors], dtype=np.float64)
    else:
        sigma = np.asarray(window[factors].std(ddof=1), dtype=np.float64)
    absolute = np.array([k == "absolute" for k in kinds], dtype=bool)
    sigma_rel = np.where(absolute, sigma / np.abs(price), sigma)
    return pd.DataFrame({"factor": factors, "price": price, "return_kind": kinds,
                         "sigma_1d": sigma, "sigma_rel": sigma_rel})


def price_market(
    market: MarketData,
    instruments: pd.DataFrame,
    factors: Sequence[str],
    window: pd.DataFrame,
    long_window: pd.DataFrame | None,
    filtered: Mapping[str, FilteredFactor],
    universe: Universe | None,
    config: RunConfig,
    horizons: Sequence[int],
    *,
    params: ParameterSet | None = None,
    dependence_fitter: DependenceFitter | None = None,
    with_stress: bool = True,
    unpriced: Mapping[str, str] | None = None,
    stage: StageTimer | None = None,
) -> tuple[PricedMarket, PricingFacts]:
    """The priced market of a valuation (module docstring).

    Parameters
    ----------
    market : MarketData
        The factors' aligned prices and returns up to the valuation date (``market_date``).
    instruments : DataFrame
        The instruments to price, in P&L-row order, indexed by ``instrument_id``.
    factors : the factors of the scenarios (sorted): the instruments' and implied-vol indices.
    window, long_window : DataFrame
        The model window and the anti-procyclicality floor's (None: the floor is off).
    filtered : per factor, the volatility filter as of the valuation date (empty for HS).
    universe : every asset of the price file up to the valuation date (stress windows, proxies,
        stressed observations); None only where neither stress nor ``stressed_weight`` applies.
    horizons : the margin periods of risk to price.
    with_stress : price the stress scenarios (the engine then evaluates stress and the grid).
    stage : times the named stages (``scenarios_{h}d``, ``repricing_{h}d``, ``apc_floor_{h}d``,
        ``stress_scenarios_{h}d``).
    """
    timed = stage or (lambda _name: nullcontext())
    facts = PricingFacts()
    model: dict[int, ModelPnl] = {}
    floor: dict[int, ModelPnl] = {}
    stress: dict[int, StressPnl] = {}
    # the scenario sets themselves, kept so that the intraday loop can reprice at new marks
    shocks: dict[int, ScenarioShocks] = {}

    def priced(scenarios: ScenarioSet) -> np.ndarray:
        return finite_pnl(scenario_pnl(instruments, scenarios, market.spot,
                                       market.return_kinds, market.market_date,
                                       config.implied_vol), instruments, scenarios)

    needs_history = with_stress or "stressed_weight" in config.anti_procyclicality.tools
    if needs_history and universe is None:
        raise ValueError("price_market: stress and stressed observations need the universe")
    rule = config.method == "grid"  # the venue rule prices its own grid (engine.grid)
    if rule:
        instruments = with_smiles(instruments, market.spot, market.market_date, config.grid)
    for h in sorted(set(int(x) for x in horizons)):
        cfg = dataclasses.replace(config, horizon=h)
        stressed = None
        if rule:
            with timed(f"repricing_{h}d"):
                model[h], scen = grid_pnl(instruments, market.spot, market.return_kinds,
                                          market.market_date, cfg, h)
                facts.scenarios[h] = scen
        else:
            with timed(f"scenarios_{h}d"):
                stressed, notes = (stressed_observations(universe, factors, window, cfg, h)
                                   if universe is not None else (None, []))
                facts.warnings += notes
                scen = model_scenarios(window, filtered, cfg, params, dependence_fitter,
                                       facts.warnings, stressed=stressed)
                facts.scenarios[h] = scen
            with timed(f"repricing_{h}d"):
                model[h] = ModelPnl(priced(scen), scen.weights)
        scen_long: ScenarioSet | None = None
        sets: list[ScenarioSet] = []
        if long_window is not None:
            with timed(f"apc_floor_{h}d"):
                cfg_long = dataclasses.replace(
                    cfg, lookback=config.anti_procyclicality.floor_lookback)
                scen_long = model_scenarios(long_window, filtered, cfg_long, params,
                                            dependence_fitter, facts.warnings,
                                            stressed=stressed)
                floor[h] = ModelPnl(priced(scen_long), scen_long.weights)
        if with_stress and universe is not None:
            with timed(f"stress_scenarios_{h}d"):
                sets, info = stress_scenario_sets(factors, market.return_kinds, window, cfg,
                                                  universe, h)
                facts.stress = {**info, **facts.stress,
                                "notes": facts.stress.get("notes", []) + info["notes"]}
                stress[h] = _stress_pnl(sets, priced, len(instruments))
        shocks[h] = ScenarioShocks(scen, scen_long, tuple(sets))
    table = factor_table(factors, market, window, filtered)
    return PricedMarket(instruments, table, market.market_date, model,
                        stress if with_stress else None, floor, dict(unpriced or {}),
                        shocks), facts


def _stress_pnl(sets: list[ScenarioSet], priced: Callable[[ScenarioSet], np.ndarray],
                n_instruments: int) -> StressPnl:
    """The stress scenario sets' per-unit P&L side by side, with labels and column ranges."""
    if not sets:
        return StressPnl.empty(n_instruments)
    parts: list[np.ndarray] = []
    labels: list[str] = []
    blocks: list[StressBlock] = []
    start = 0
    for s in sets:
        parts.append(priced(s))
        labels += [str(x) for x in s.labels]
        blocks.append(StressBlock(s.kind, start, start + s.n_scenarios))
        start += s.n_scenarios
    return StressPnl(np.ascontiguousarray(np.hstack(parts)), np.asarray(labels, dtype=object),
                     tuple(blocks))


def finite_pnl(pnl: np.ndarray, instruments: pd.DataFrame, scenarios: ScenarioSet
               ) -> np.ndarray:
    """The scenario P&L, checked finite once here (the engine then skips the scan); a
    non-finite value names the instrument and the scenario (a lognormal option on a price that
    a scenario took to zero or below, say)."""
    # the smallest and largest values are finite exactly when all are (NaN propagates through
    # both): two passes that allocate nothing, where a mask of the matrix is fresh memory the
    # system must zero first (25 MB at venue size: 65 ms against 12)
    if pnl.size and not (np.isfinite(pnl.min()) and np.isfinite(pnl.max())):
        i, j = (int(x) for x in np.argwhere(~np.isfinite(pnl))[0])
        raise ModelError(f"non-finite scenario P&L for instrument "
                         f"{instruments['instrument_id'].iat[i]!r} in {scenarios.kind} scenario "
                         f"{str(scenarios.labels[j])!r} (value {float(pnl[i, j])!r})")
    return pnl

