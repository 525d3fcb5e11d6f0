"""European options and inverse (coin-settled) contracts: values, Greeks and scenario P&L.

The public, vectorised entry points. They broadcast their arguments like numpy ufuncs and
validate nothing (validation belongs to the loaders of instruments and market data): a
non-positive price or strike under a lognormal model gives NaN, not an error. The formulas (the
three models, the degenerate cases, the Greeks, the implied-vol shocks and the P&L of coin-settled
options) are written once, in the docstring of :mod:`riskmodel.pricing.option_kernels`; the
closed forms here are the same, in numpy (``scipy.special.ndtr``), for arrays.

Conventions
-----------
* Model codes ``BLACK_SCHOLES`` (spot, rate, carry), ``BLACK76`` (forward, rate) and
  ``BACHELIER`` (forward, normal vol in price units, prices of any sign).
* Time to expiry in years, ACT/365 (:func:`year_fraction`). Expiry at the horizon:
  :func:`horizon_tau`; ``tau <= 0`` values an option at its intrinsic value.
* Values and Greeks are per unit quantity (times ``multiplier`` where the function takes one)
  and in the quote (reporting) currency, USD for the crypto venues.
* Delta-adjusted notional of an option position (:func:`delta_notional`):
  ``|quantity x multiplier x delta x underlying price|``.
* Inverse perpetuals and futures (:func:`inverse_linear_pnl`): a contract of face value
  ``F_usd`` (the multiplier) is worth ``F_usd / P`` coins; its P&L in coin for quantity ``q`` is
  ``F_usd q (1/P_0 - 1/P_1)``, which at the coin price ``P_1`` is ``F_usd q (P_1/P_0 - 1)``
  in the reporting currency.

Spot-vol rule (implied vol without its own factor): suggested parameters ``DEFAULT_RULE_BETA``,
``DEFAULT_RULE_P``, ``DEFAULT_RULE_FLOOR`` and ``DEFAULT_RULE_CAP``. They are judgement, not a
calibration: a 10% fall in spot raises the vol of a 30-day option by about 16% (log shock
``1.5 x 0.10``), a 1-day option's by about 52% (``x 30**0.3``), a one-year option's by 7%; the
vol never falls below a tenth of today's or rises above five times it.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numpy.typing import ArrayLike
from scipy.special import ndtr

from riskmodel.measures.background import parallel_pays
from riskmodel.pricing import option_kernels
from riskmodel.pricing.option_kernels import (
    BACHELIER,
    BLACK76,
    BLACK_SCHOLES,
    DAYS_PER_YEAR,
    RULE_TENOR_DAYS,
)

__all__ = [
    "BACHELIER",
    "BLACK76",
    "BLACK_SCHOLES",
    "DAYS_PER_YEAR",
    "DEFAULT_RULE_BETA",
    "DEFAULT_RULE_CAP",
    "DEFAULT_RULE_FLOOR",
    "DEFAULT_RULE_P",
    "RULE_TENOR_DAYS",
    "SERIAL_MAX_EVALS",
    "OptionGreeks",
    "delta_notional",
    "horizon_tau",
    "inverse_linear_pnl",
    "option_greeks",
    "option_price",
    "option_scenario_pnl",
    "option_values",
    "year_fraction",
]

SERIAL_MAX_EVALS = 2**20
"""Below this many option values (options x scenarios) the repricing runs on one thread (unless
the parallel kernel is compiled already, :data:`PARALLEL_COMPILED_EVALS`): a parallel region
saves at most milliseconds there, and compiling one costs a first run seconds."""

PARALLEL_COMPILED_EVALS = 2**17
"""From this many option values the repricing runs in parallel after all when the parallel
kernel is already compiled in the process and numba may use more than one thread (the live
loop's requirement marks reprice a factor's few dozen options thousands of times a day)."""

DEFAULT_RULE_BETA = 1.5
"""Spot-vol rule: log vol shock per unit relative spot fall, at 30 days to expiry."""
DEFAULT_RULE_P = 0.3
"""Spot-vol rule: power of the tenor scaling ``(30 / days) ** p``."""
DEFAULT_RULE_FLOOR = 0.1
"""Spot-vol rule: the shocked vol is at least this multiple of today's."""
DEFAULT_RULE_CAP = 5.0
"""Spot-vol rule: the shocked vol is at most this multiple of today's."""

_INV_SQRT_2PI = 1.0 / np.sqrt(2.0 * np.pi)


class OptionGreeks(NamedTuple):
    """Greeks per unit quantity in the quote currency, each an ndarray of the broadcast shape.

    ``delta = dV/dP`` (``P`` the spot for Black-Scholes, the forward otherwise), ``gamma =
    d2V/dP2``, ``vega = dV/dsigma`` per 1.00 of volatility.
    """

    delta: np.ndarray
    gamma: np.ndarray
    vega: np.ndarray


def _npdf(x: np.ndarray) -> np.ndarray:
    return _INV_SQRT_2PI * np.exp(-0.5 * x * x)


class _Flat(NamedTuple):
    """The pricing arguments broadcast together and flattened, arrays of shape (n,): model
    codes (int64), call flags (bool), then float64 price, strike, tau, sigma, rate, carry."""

    model: np.ndarray
    is_call: np.ndarray
    price: np.ndarray
    strike: np.ndarray
    tau: np.ndarray
    sigma: np.ndarray
    rate: np.ndarray
    carry: np.ndarray


def _flat_inputs(model: ArrayLike, is_call: ArrayLike, *floats: ArrayLike
                 ) -> tuple[tuple[int, ...], _Flat]:
    """The broadcast shape and the flat arguments (``floats``: price, strike, tau, sigma, rate,
    carry)."""
    arrays = np.broadcast_arrays(
        np.asarray(model, dtype=np.int64),
        np.asarray(is_call, dtype=bool),
        *(np.asarray(x, dtype=np.float64) for x in floats),
    )
    return arrays[0].shape, _Flat(*(np.ravel(a) for a in arrays))


class _Live(NamedTuple):
    """The options with ``tau > 0``: their positions ``idx`` in the flat arguments, their
    arguments ``at`` (a :class:`_Flat` of shape (n_live,)), the discount factor ``df``, growth
    ``g = F / P``, forward ``fwd``, ``sqrt(tau)`` and ``sd = sigma sqrt(tau)``; and the
    positions among them of the Bachelier (``normal``) and lognormal (``logn``) options with
    ``sigma > 0``, the ones that have a time value."""

    idx: np.ndarray
    at: _Flat
    df: np.ndarray
    g: np.ndarray
    fwd: np.ndarray
    sqt: np.ndarray
    sd: np.ndarray
    normal: np.ndarray
    logn: np.ndarray


def _live(flat: _Flat) -> _Live:
    idx = np.flatnonzero(flat.tau > 0.0)
    at = _Flat(*(a[idx] for a in flat))
    df = np.exp(-at.rate * at.tau)
    g = np.where(at.model == BLACK_SCHOLES, np.exp((at.rate - at.carry) * at.tau), 1.0)
    sqt = np.sqrt(at.tau)
    with_vol = at.sigma > 0.0
    return _Live(idx, at, df, g, at.price * g, sqt, at.sigma * sqt,
                 np.flatnonzero(with_vol & (at.model == BACHELIER)),
                 np.flatnonzero(with_vol & (at.model != BACHELIER)))


def _intrinsic(is_call: np.ndarray, underlying: np.ndarray, strike: np.ndarray) -> np.ndarray:
    """``max(P - K, 0)`` for calls, ``max(K - P, 0)`` for puts."""
    return np.where(is_call, np.maximum(underlying - strike, 0.0),
                    np.maximum(strike - underlying, 0.0))


def _intrinsic_slope(sign: np.ndarray, moneyness: np.ndarray) -> np.ndarray:
    """Slope magnitude of the intrinsic value in the underlying: 1 in the money (``sign x
    moneyness > 0``), 0 out of it, 1/2 at the kink (``moneyness == 0``)."""
    return np.where(moneyness == 0.0, 0.5, np.where(sign * moneyness > 0.0, 1.0, 0.0))


def _lognormal_d1(fwd: np.ndarray, strike: np.ndarray, sd: np.ndarray) -> np.ndarray:
    """``d1 = (ln(F / K) + sd^2 / 2) / sd`` (NaN where ``F / K <= 0``)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return (np.log(fwd / strike) + 0.5 * sd * sd) / sd


def option_price(
    model: ArrayLike, is_call: ArrayLike, price: ArrayLike, strike: ArrayLike, tau: ArrayLike,
    sigma: ArrayLike, rate: ArrayLike = 0.0, carry: ArrayLike = 0.0,
) -> np.ndarray:
    """Value per unit of European options in the quote currency.

    Parameters
    ----------
    model : array_like of int
        ``BLACK_SCHOLES``, ``BLACK76`` or ``BACHELIER``.
    is_call : array_like of bool
        Call, else put.
    price : array_like of float
        Spot price (``BLACK_SCHOLES``) or forward/futures price (the others).
    strike : array_like of float
    tau : array_like of float
        Years to expiry (ACT/365); ``<= 0`` gives the intrinsic value.
    sigma : array_like of float
        Implied volatility: lognormal, or normal in price units per sqrt(year) for
        ``BACHELIER``; ``<= 0`` gives the discounted intrinsic value of the forward.
    rate : array_like of float, default 0
        Continuously compounded discount rate.
    carry : array_like of float, default 0
        Continuous carry or dividend yield (``BLACK_SCHOLES`` only).

    Returns
    -------
    ndarray of float64 with the broadcast shape of the arguments.
    """
    shape, flat = _flat_inputs(model, is_call, price, strike, tau, sigma, rate, carry)
    out = _intrinsic(flat.is_call, flat.price, flat.strike)
    lv = _live(flat)
    c, k = lv.at.is_call, lv.at.strike
    val = lv.df * _intrinsic(c, lv.fwd, k)
    if lv.normal.size:
        j = lv.normal
        f, kk, v, dfn, cn = lv.fwd[j], k[j], lv.sd[j], lv.df[j], c[j]
        d = (f - kk) / v
        pdf = _npdf(d)
        val[j] = np.where(
            cn,
            dfn * ((f - kk) * ndtr(d) + v * pdf),
            dfn * ((kk - f) * ndtr(-d) + v * pdf),
        )
    if lv.logn.size:
        j = lv.logn
        f, kk, v, dfl, cl = lv.fwd[j], k[j], lv.sd[j], lv.df[j], c[j]
        d1 = _lognormal_d1(f, kk, v)
        d2 = d1 - v
        val[j] = np.where(
            cl,
            dfl * (f * ndtr(d1) - kk * ndtr(d2)),
            dfl * (kk * ndtr(-d2) - f * ndtr(-d1)),
        )
    out[lv.idx] = val
    return out.reshape(shape)


def option_greeks(
    model: ArrayLike, is_call: ArrayLike, price: ArrayLike, strike: ArrayLike, tau: ArrayLike,
    sigma: ArrayLike, rate: ArrayLike = 0.0, carry: ArrayLike = 0.0, multiplier: ArrayLike = 1.0,
) -> OptionGreeks:
    """Delta, gamma and vega per unit quantity, in the quote currency, for reports.

    Arguments as :func:`option_price`; ``multiplier`` scales all three. Closed forms and the
    degenerate cases (``tau <= 0``, ``sigma <= 0``) are in :mod:`~riskmodel.pricing.option_kernels`.

    The Greeks are those of the option's value in the quote currency, whatever its settlement. A
    coin-settled option's P&L as :func:`option_scenario_pnl` counts it (in coin, converted at
    the scenario's price) has first-order sensitivity ``delta - value / price`` per unit: use
    :func:`option_values` for ``value`` where that one is wanted.

    Returns
    -------
    OptionGreeks
        ``(delta, gamma, vega)``, each of the broadcast shape.
    """
    shape, flat = _flat_inputs(model, is_call, price, strike, tau, sigma, rate, carry)
    sign = np.where(flat.is_call, 1.0, -1.0)
    delta = sign * _intrinsic_slope(sign, flat.price - flat.strike)
    gamma = np.zeros_like(delta)
    vega = np.zeros_like(delta)
    lv = _live(flat)
    c, k, df, fwd, sqt, sd = lv.at.is_call, lv.at.strike, lv.df, lv.fwd, lv.sqt, lv.sd
    sg = sign[lv.idx]
    diff = fwd - k
    dl = sg * df * lv.g * _intrinsic_slope(sg, diff)
    # at sigma = 0 and the money: the right derivative of the value in sigma
    atm = diff == 0.0
    vg = np.where(atm, df * sqt * _INV_SQRT_2PI * np.where(lv.at.model == BACHELIER, 1.0, fwd),
                  0.0)
    gm = np.zeros_like(dl)
    if lv.normal.size:
        j = lv.normal
        d = (fwd[j] - k[j]) / sd[j]
        pdf = _npdf(d)
        dl[j] = np.where(c[j], df[j] * ndtr(d), -df[j] * ndtr(-d))
        gm[j] = df[j] * pdf / sd[j]
        vg[j] = df[j] * pdf * sqt[j]
    if lv.logn.size:
        j = lv.logn
        d1 = _lognormal_d1(fwd[j], k[j], sd[j])
        pdf = _npdf(d1)
        dg = df[j] * lv.g[j]
        dl[j] = dg * np.where(c[j], ndtr(d1), -ndtr(-d1))
        gm[j] = dg * pdf / (lv.at.price[j] * sd[j])
        vg[j] = df[j] * fwd[j] * pdf * sqt[j]
    delta[lv.idx], gamma[lv.idx], vega[lv.idx] = dl, gm, vg
    mult = np.broadcast_to(np.asarray(multiplier, dtype=np.float64), shape)
    return OptionGreeks(
        delta.reshape(shape) * mult, gamma.reshape(shape) * mult, vega.reshape(shape) * mult
    )


def option_values(
    model: ArrayLike, is_call: ArrayLike, price: ArrayLike, strike: ArrayLike, tau: ArrayLike,
    sigma: ArrayLike, rate: ArrayLike = 0.0, carry: ArrayLike = 0.0, multiplier: ArrayLike = 1.0,
) -> tuple[np.ndarray, np.ndarray]:
    """Today's value per unit quantity, in the quote currency and in coin.

    Arguments as :func:`option_price`. The value in coin is ``value / price``: what a
    coin-settled (inverse) option is marked at (Deribit quotes ``mark_price`` in BTC as the
    Black-76 value on the expiry's forward divided by that forward).

    Returns
    -------
    value, value_coin : ndarray of float64
        ``multiplier x V`` and ``multiplier x V / price``, of the broadcast shape.
    """
    value = option_price(model, is_call, price, strike, tau, sigma, rate, carry)
    value = value * np.asarray(multiplier, dtype=np.float64)
    return value, value / np.asarray(price, dtype=np.float64)


def delta_notional(
    quantity: ArrayLike, multiplier: ArrayLike, delta: ArrayLike, price: ArrayLike
) -> np.ndarray:
    """Delta-adjusted notional of option positions: ``|quantity x multiplier x delta x price|``.

    ``delta`` per unit of the underlying (from :func:`option_greeks` with ``multiplier=1``),
    ``price`` today's underlying price; the result is in the quote currency.
    """
    return np.abs(
        np.asarray(quantity, dtype=np.float64)
        * np.asarray(multiplier, dtype=np.float64)
        * np.asarray(delta, dtype=np.float64)
        * np.asarray(price, dtype=np.float64)
    )


def year_fraction(start: ArrayLike, end: ArrayLike) -> np.ndarray:
    """ACT/365 years from ``start`` to ``end`` (datetime-likes), to the nanosecond.

    Negative where ``end`` is before ``start``.
    """
    delta = np.asarray(end, dtype="datetime64[ns]") - np.asarray(start, dtype="datetime64[ns]")
    return delta.astype(np.int64) / (DAYS_PER_YEAR * 86_400e9)


def horizon_tau(tau0: ArrayLike, horizon_days: float) -> np.ndarray:
    """Years to expiry at the horizon, ``tau0 - horizon_days / 365`` (calendar days).

    Non-positive where the option expires within the horizon: it then settles at its intrinsic
    value in the scenarios.
    """
    return np.asarray(tau0, dtype=np.float64) - horizon_days / DAYS_PER_YEAR


def inverse_linear_pnl(
    price0: ArrayLike, scen_price_rows: ArrayLike, multiplier: ArrayLike
) -> np.ndarray:
    """P&L per unit quantity of inverse perpetuals and futures, in the reporting currency.

    An inverse contract of face value ``F_usd`` (the multiplier) is worth ``F_usd / P`` coins,
    so a quantity ``q`` gains ``F_usd q (1/P_0 - 1/P_1)`` coins when the price moves from
    ``P_0`` to ``P_1``, i.e. ``F_usd q (P_1/P_0 - 1)`` in the reporting currency at the coin price
    ``P_1`` at which the coin P&L would be sold. Example: face 100 USD, 10 contracts, BTC from
    10,000 to 8,000: ``100 x 10 x (1/10000 - 1/8000) = -0.025`` BTC, or ``-200`` USD at 8,000.

    Parameters
    ----------
    price0 : array_like of float, shape (n_instruments,)
        Today's price ``P_0`` of each instrument's underlying.
    scen_price_rows : array_like of float, shape (n_instruments, n_scenarios)
        Scenario prices ``P_1`` of each instrument's underlying (rows already selected).
    multiplier : array_like of float, shape (n_instruments,)
        Face value in the reporting currency per contract.

    Returns
    -------
    ndarray of float64, shape (n_instruments, n_scenarios)
        ``multiplier x (P_1 - P_0) / P_0``.
    """
    p0 = np.asarray(price0, dtype=np.float64)[..., None]
    mult = np.asarray(multiplier, dtype=np.float64)[..., None]
    return mult * ((np.asarray(scen_price_rows, dtype=np.float64) - p0) / p0)


def _parallel(n_evals: int) -> bool:
    """Whether ``n_evals`` option values are repriced by the parallel kernel (the same bits
    as the serial one): :data:`SERIAL_MAX_EVALS`, or :data:`PARALLEL_COMPILED_EVALS` when
    that costs no compilation and more than one thread may run it."""
    return parallel_pays(n_evals, SERIAL_MAX_EVALS, PARALLEL_COMPILED_EVALS,
                         option_kernels.option_scenario_pnl)


def option_scenario_pnl(
    model: ArrayLike,
    is_call: ArrayLike,
    inverse: ArrayLike,
    strike: ArrayLike,
    tau0: ArrayLike,
    tau_h: ArrayLike,
    iv0: ArrayLike,
    rate: ArrayLike,
    carry: ArrayLike,
    multiplier: ArrayLike,
    price0: ArrayLike,
    price_row: ArrayLike,
    scen_price: ArrayLike,
    iv_row: ArrayLike | None = None,
    iv_log_shock: ArrayLike | None = None,
    rule_beta: ArrayLike = DEFAULT_RULE_BETA,
    rule_p: ArrayLike = DEFAULT_RULE_P,
    rule_floor: float = DEFAULT_RULE_FLOOR,
    rule_cap: float = DEFAULT_RULE_CAP,
    out: np.ndarray | None = None,
) -> np.ndarray:
    """P&L per unit quantity of unique options in each scenario, in the reporting currency.

    Runs the numba kernel :func:`riskmodel.pricing.option_kernels.option_scenario_pnl`, whose
    module docstring defines the revaluation: horizon decay through ``tau_h``, sticky-strike
    implied-vol shocks from a vol factor or the spot-vol rule, and the P&L of quote-settled
    (``multiplier x (V_s - V_0)``) and coin-settled (``multiplier x (V_s - (V_0 / P_0) P_s)``)
    options. Bitwise identical for any number of numba threads; on one thread (its serial twin)
    below :data:`SERIAL_MAX_EVALS` options x scenarios (:data:`PARALLEL_COMPILED_EVALS` once
    the parallel kernel is compiled).

    Parameters
    ----------
    model : array_like of int, shape (n_opt,)
        Model codes.
    is_call, inverse : array_like of bool, shape (n_opt,)
        Call (else put); coin-settled (else quote-settled).
    strike, tau0, tau_h, iv0, rate, carry, multiplier, price0 : array_like of float, (n_opt,)
        Strike; years to expiry today and at the horizon (:func:`horizon_tau`); today's implied
        vol; rate; carry (Black-Scholes only); multiplier; today's underlying price.
    price_row : array_like of int, shape (n_opt,)
        Row of ``scen_price`` holding each option's underlying.
    scen_price : array_like of float, shape (n_factors, n_scenarios)
        Underlying prices in each scenario.
    iv_row : array_like of int, shape (n_opt,), optional
        Row of ``iv_log_shock`` moving each option's vol; negative (or omitted) for the rule.
    iv_log_shock : array_like of float, shape (n_iv_factors, n_scenarios), optional
        Log changes of implied-vol factors.
    rule_beta, rule_p : float or array_like of float, shape (n_opt,)
        Spot-vol rule sensitivity at 30 days and tenor power.
    rule_floor, rule_cap : float
        Bounds of the rule's vol as multiples of ``iv0``.
    out : ndarray of float64, shape (n_opt, n_scenarios), C order, optional
        Filled and returned when given.

    Returns
    -------
    ndarray of float64, shape (n_opt, n_scenarios)
    """
    scen = np.ascontiguousarray(scen_price, dtype=np.float64)
    n_scen = scen.shape[1]
    models = np.ascontiguousarray(model, dtype=np.int64)
    n_opt = models.shape[0]

    def f64(x: ArrayLike) -> np.ndarray:
        return np.ascontiguousarray(np.broadcast_to(np.asarray(x, dtype=np.float64), (n_opt,)))

    def i64(x: ArrayLike) -> np.ndarray:
        return np.ascontiguousarray(np.broadcast_to(np.asarray(x, dtype=np.int64), (n_opt,)))

    def flag(x: ArrayLike) -> np.ndarray:
        return np.ascontiguousarray(np.broadcast_to(np.asarray(x, dtype=np.bool_), (n_opt,)))

    shocks = (
        np.zeros((0, n_scen))
        if iv_log_shock is None
        else np.ascontiguousarray(iv_log_shock, dtype=np.float64)
    )
    if out is None:
        out = np.empty((n_opt, n_scen))
    kernel = (option_kernels.option_scenario_pnl if _parallel(n_opt * n_scen)
              else option_kernels.option_scenario_pnl_serial)
    kernel(
        models,
        flag(is_call),
        flag(inverse),
        f64(strike),
        f64(tau0),
        f64(tau_h),
        f64(iv0),
        f64(rate),
        f64(carry),
        f64(multiplier),
        f64(price0),
        i64(price_row),
        scen,
        i64(-1 if iv_row is None else iv_row),
        shocks,
        f64(rule_beta),
        f64(rule_p),
        float(rule_floor),
        float(rule_cap),
        out,
    )
    return out
