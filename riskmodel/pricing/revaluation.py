"""Repricing of every instrument kind under a scenario set, once per unique instrument.

The one entry point the batch stages use (model scenarios, stress windows, the stress grid,
the anti-procyclicality floor, the liquidation map): per-unit P&L in the reporting currency,
shape (n_instruments, n_scenarios), C order.

* ``spot``, ``future``, ``perpetual`` and the internal kind ``collateral`` (coins held as
  collateral, haircut applied through the multiplier): ``multiplier x (P_s - P_0)``
  (:mod:`riskmodel.pricing.linear`).
* ``inverse_perpetual``, ``inverse_future``: ``multiplier x (P_s / P_0 - 1)``, the coin P&L of
  a face value ``multiplier`` converted at the scenario's coin price
  (:func:`riskmodel.pricing.options.inverse_linear_pnl`).
* ``option``: full revaluation at the horizon by the numba kernel
  (:func:`riskmodel.pricing.options.option_scenario_pnl`): time decay over the scenario set's
  horizon (``horizon`` calendar days, ACT/365; an option expiring inside it settles at
  intrinsic), implied volatility from an implied-vol index factor when ``[implied_vol] factors``
  maps the underlying to one that the scenario set moves (sticky strike: every option of the
  underlying moves by the index's relative change), else the documented spot-vol rule.

Time to expiry counts from the valuation time, the market date's timestamp (a date without a
time is 00:00 UTC that day), to the nanosecond.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from riskmodel.config import ImpliedVolConfig
from riskmodel.pricing.linear import factor_price_moves
from riskmodel.pricing.options import (
    BACHELIER,
    BLACK76,
    BLACK_SCHOLES,
    horizon_tau,
    option_greeks,
    option_price,
    option_scenario_pnl,
    year_fraction,
)
from riskmodel.scenarios.scenario_set import ScenarioSet

INVERSE_KINDS = ("inverse_perpetual", "inverse_future")
COLLATERAL_KIND = "collateral"  # coins held as collateral: priced as spot, never traded
MODEL_CODES = {"black_scholes": BLACK_SCHOLES, "black76": BLACK76, "bachelier": BACHELIER}


def utc(stamp: pd.Timestamp | str) -> pd.Timestamp:
    """``stamp`` as a UTC timestamp (a naive one is taken to be UTC)."""
    t = pd.Timestamp(stamp)
    return t.tz_localize("UTC") if t.tzinfo is None else t.tz_convert("UTC")


def scenario_pnl(
    instruments: pd.DataFrame,
    scenarios: ScenarioSet,
    spot: pd.Series,
    return_kinds: Mapping[str, str],
    valuation_time: pd.Timestamp,
    implied_vol: ImpliedVolConfig | None = None,
) -> np.ndarray:
    """Per-unit P&L of each row of ``instruments`` in each scenario (module docstring).

    Parameters
    ----------
    instruments : DataFrame, one row per instrument: ``kind, underlying, multiplier, factor``
        and, for options, ``strike, expiry, option_type, implied_vol, rate, carry, settlement,
        model`` (:mod:`riskmodel.io.instruments`).
    scenarios : the scenario set; every instrument's factor must be among its factors.
    spot : today's price per factor.
    valuation_time : the market date's timestamp (time to expiry counts from it).

    Returns
    -------
    ndarray of shape (n_instruments, n_scenarios)
    """
    moves = factor_price_moves(scenarios, spot, return_kinds)
    rows = pd.Index(scenarios.factors).get_indexer(instruments["factor"])
    if (rows < 0).any():
        missing = instruments["factor"].to_numpy()[rows < 0][0]
        raise ValueError(f"scenario set {scenarios.kind!r} has no factor {missing!r}")
    kinds = instruments["kind"].to_numpy()
    mult = instruments["multiplier"].to_numpy(np.float64)
    # every row written in place: the matrix is hundreds of MB, and each temporary of its size
    # costs as much in page faults as the arithmetic
    out = np.empty((len(instruments), moves.shape[1]))
    inverse = np.isin(kinds, INVERSE_KINDS)
    p0 = at_labels(spot, instruments["factor"])
    for i in np.flatnonzero(kinds != "option"):
        # linear: multiplier x price move; inverse: multiplier x (move / today's price)
        if inverse[i]:
            np.divide(moves[rows[i]], p0[i], out=out[i])
            out[i] *= mult[i]
        else:
            np.multiply(moves[rows[i]], mult[i], out=out[i])
    options = np.flatnonzero(kinds == "option")
    if len(options):
        contiguous = options[-1] - options[0] + 1 == len(options)
        block = out[options[0]:options[-1] + 1] if contiguous else None
        option_rows = _option_pnl(instruments.iloc[options], scenarios, spot, moves,
                                  rows[options], valuation_time,
                                  implied_vol or ImpliedVolConfig(), out=block)
        if not contiguous:
            out[options] = option_rows
    return out


def _option_pnl(options: pd.DataFrame, scenarios: ScenarioSet, spot: pd.Series,
                moves: np.ndarray, rows: np.ndarray, valuation_time: pd.Timestamp,
                implied_vol: ImpliedVolConfig, out: np.ndarray | None = None) -> np.ndarray:
    factors = list(scenarios.factors)
    p0 = at_labels(spot, options["factor"])
    scen_price = at_labels(spot, factors)[:, None] + moves
    # the implied-vol index of each option's underlying, where the scenario set moves it
    index_of = {f: i for i, f in enumerate(factors)}
    iv_row = np.array([index_of.get(implied_vol.factors.get(u, ""), -1)
                       for u in options["underlying"]], dtype=np.int64)
    iv_log_shock = np.ascontiguousarray(scenarios.shocks.T)  # log changes of every factor
    tau0 = years_to_expiry(options, valuation_time)
    return option_scenario_pnl(
        model_codes(options), (options["option_type"] == "call").to_numpy(),
        (options["settlement"] == "coin").to_numpy(), options["strike"].to_numpy(np.float64),
        tau0, horizon_tau(tau0, scenarios.horizon), options["implied_vol"].to_numpy(np.float64),
        options["rate"].to_numpy(np.float64), options["carry"].to_numpy(np.float64),
        options["multiplier"].to_numpy(np.float64), p0, rows.astype(np.int64), scen_price,
        iv_row=iv_row, iv_log_shock=iv_log_shock, rule_beta=implied_vol.rule_beta,
        rule_p=implied_vol.rule_power, rule_floor=implied_vol.rule_floor,
        rule_cap=implied_vol.rule_cap, out=out,
    )


def grid_pnl(
    instruments: pd.DataFrame,
    moves: np.ndarray,
    vol_shifts: np.ndarray,
    spot: pd.Series,
    valuation_time: pd.Timestamp,
    horizon: int,
) -> np.ndarray:
    """Per-unit P&L of each instrument on a scan of its own underlying: point ``g`` moves the
    price by the relative ``moves[i, g]`` and every option's implied vol by the relative
    ``vol_shifts[g]``; shape (n_instruments, n_points). Linear and inverse kinds ignore the vol
    shift; options are revalued at the horizon as in :func:`scenario_pnl`."""
    kinds = instruments["kind"].to_numpy()
    p0 = at_labels(spot, instruments["factor"])
    mult = instruments["multiplier"].to_numpy(np.float64)
    out = np.ascontiguousarray(mult[:, None] * p0[:, None] * moves)
    inverse = np.isin(kinds, INVERSE_KINDS)
    out[inverse] = mult[inverse, None] * moves[inverse]
    options = np.flatnonzero(kinds == "option")
    if len(options):
        opts = instruments.iloc[options]
        n_points = moves.shape[1]
        # each option gets its own price row; one vol row holds the shifts
        scen_price = p0[options, None] * (1.0 + moves[options])
        tau0 = years_to_expiry(opts, valuation_time)
        out[options] = option_scenario_pnl(
            model_codes(opts), (opts["option_type"] == "call").to_numpy(),
            (opts["settlement"] == "coin").to_numpy(), opts["strike"].to_numpy(np.float64),
            tau0, horizon_tau(tau0, horizon), opts["implied_vol"].to_numpy(np.float64),
            opts["rate"].to_numpy(np.float64), opts["carry"].to_numpy(np.float64),
            mult[options], p0[options], np.arange(len(options), dtype=np.int64), scen_price,
            iv_row=np.zeros(len(options), dtype=np.int64),
            iv_log_shock=np.log1p(np.broadcast_to(vol_shifts, (1, n_points))),
        )
    return out


def at_labels(series: pd.Series, labels: Sequence[str] | pd.Series | np.ndarray) -> np.ndarray:
    """``series.loc[labels]`` as float64, without pandas' per-call label machinery (a what-if
    or a backtest date looks up a handful of factors thousands of times); a missing label is a
    KeyError naming it. ``series`` is small (one value per factor)."""
    position = {key: i for i, key in enumerate(series.index.tolist())}
    values = series.to_numpy(np.float64)
    keys = labels.tolist() if hasattr(labels, "tolist") else list(labels)
    try:
        return values[np.fromiter((position[k] for k in keys), dtype=np.int64, count=len(keys))]
    except KeyError as exc:
        raise KeyError(f"{exc.args[0]!r} not in {list(position)}") from None


def unit_greeks(instruments: pd.DataFrame, spot: pd.Series, valuation_time: pd.Timestamp
                ) -> pd.DataFrame:
    """Per unit quantity, in the reporting currency, multiplier included: ``value`` (today's
    mark: the premium of an option; 0 for futures and perpetuals, settled by variation margin;
    the price for spot and collateral), ``delta`` (dV/dP), ``gamma`` and ``vega`` (per 1.00 of
    vol). Linear: delta = multiplier; inverse: multiplier / P_0."""
    return pd.DataFrame(unit_greek_array(instruments, spot, valuation_time),
                        columns=["value", "delta", "gamma", "vega"], index=instruments.index)


def unit_greek_array(instruments: pd.DataFrame, spot: pd.Series, valuation_time: pd.Timestamp
                     ) -> np.ndarray:
    """:func:`unit_greeks` as an array of shape (n_instruments, 4)."""
    kinds = instruments["kind"].to_numpy()
    p0 = at_labels(spot, instruments["factor"])
    mult = instruments["multiplier"].to_numpy(np.float64)
    n = len(instruments)
    value = np.where(np.isin(kinds, ("spot", COLLATERAL_KIND)), mult * p0, 0.0)
    delta = mult.copy()
    inverse = np.isin(kinds, INVERSE_KINDS)
    delta[inverse] = mult[inverse] / p0[inverse]
    gamma, vega = np.zeros(n), np.zeros(n)
    options = np.flatnonzero(kinds == "option")
    if len(options):
        opts = instruments.iloc[options]
        tau0 = years_to_expiry(opts, valuation_time)
        args = (model_codes(opts), (opts["option_type"] == "call").to_numpy(), p0[options],
                opts["strike"].to_numpy(np.float64), tau0,
                opts["implied_vol"].to_numpy(np.float64), opts["rate"].to_numpy(np.float64),
                opts["carry"].to_numpy(np.float64))
        premium = option_price(*args)
        value[options] = mult[options] * premium
        g = option_greeks(*args)
        # a coin-settled option's P&L, V_s - (V_0 / P_0) P_s, moves by delta - V_0 / P_0
        coin = (opts["settlement"] == "coin").to_numpy()
        delta[options] = mult[options] * (g.delta - np.where(coin, premium / p0[options], 0.0))
        gamma[options] = mult[options] * g.gamma
        vega[options] = mult[options] * g.vega
    return np.column_stack([value, delta, gamma, vega])


def years_to_expiry(options: pd.DataFrame, valuation_time: pd.Timestamp) -> np.ndarray:
    """ACT/365 years from ``valuation_time`` to each option's ``expiry``."""
    expiry = pd.to_datetime(options["expiry"], utc=True).dt.tz_convert(None)
    return year_fraction(np.datetime64(utc(valuation_time).tz_convert(None)),
                         expiry.to_numpy("datetime64[ns]"))


def model_codes(options: pd.DataFrame) -> np.ndarray:
    """The kernels' model code of each option's ``model`` column."""
    return np.array([MODEL_CODES[m] for m in options["model"]], dtype=np.int64)
