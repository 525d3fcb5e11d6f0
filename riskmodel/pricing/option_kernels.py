"""Numba kernels for European options: closed forms, Greeks, and repricing under scenarios.

Kernels take only ndarrays and scalars and validate nothing; the documented, vectorised entry
points are in :mod:`riskmodel.pricing.options`, and the plain-numpy twins the kernels are tested
against in :mod:`riskmodel.pricing.option_twins`. Every formula used by the three is written here.

Models (``model`` codes)
------------------------
Times to expiry ``T`` are in years, ACT/365. ``N`` is the standard normal distribution function,
computed as ``0.5 * erfc(-x / sqrt(2))`` (accurate in both tails), ``n`` its density.

``BLACK_SCHOLES = 0``: lognormal, on a spot price ``S`` with continuously compounded rate ``r``
and carry (dividend yield, foreign rate, ...) ``q``. With the forward ``F = S exp((r - q) T)``
and the discount factor ``D = exp(-r T)``::

    call = D [F N(d1) - K N(d2)],   put = D [K N(-d2) - F N(-d1)],
    d1 = (ln(F / K) + sigma^2 T / 2) / (sigma sqrt(T)),   d2 = d1 - sigma sqrt(T)

(the same as ``S e^{-qT} N(d1) - K e^{-rT} N(d2)``).

``BLACK76 = 1``: the same formula on a forward or futures price ``F`` (``carry`` is ignored).

``BACHELIER = 2``: normal model on ``F``, with the normal volatility ``sigma`` in price units per
square-root year; for underlyings whose price can be zero or negative (WTI in April 2020). With
``d = (F - K) / (sigma sqrt(T))``::

    call = D [(F - K) N(d) + sigma sqrt(T) n(d)],   put = D [(K - F) N(-d) + sigma sqrt(T) n(d)]

``F`` and ``K`` may be of any sign. The lognormal models need ``F > 0`` and ``K > 0``.

Degenerate cases: at ``T <= 0`` (expired, or expiring by the horizon) the value is the intrinsic
value ``max(S - K, 0)`` / ``max(K - S, 0)`` of the price given, undiscounted. With ``sigma <= 0``
and ``T > 0`` it is the discounted intrinsic value of the forward, ``D max(F - K, 0)``.

Greeks (of the value in the quote currency, per unit of the underlying price): ``delta = dV/dS``
(``dV/dF`` for Black-76 and Bachelier), ``gamma`` its derivative, ``vega = dV/dsigma`` per 1.00
of volatility (per 1.00 of normal volatility for Bachelier). Closed forms::

    lognormal: delta = D g N(d1) (call), -D g N(-d1) (put); gamma = D g n(d1) / (S sigma sqrt(T));
               vega = D F n(d1) sqrt(T)                     (g = exp((r-q)T) for BS, else 1)
    Bachelier: delta = D N(d) (call), -D N(-d) (put); gamma = D n(d) / (sigma sqrt(T));
               vega = D n(d) sqrt(T)

In the degenerate cases gamma is 0, delta is the slope of the intrinsic value (``D g`` in the
money, 0 out of it, half of it exactly at the money, the mean of the two one-sided slopes) and
vega is 0, except exactly at the money with ``sigma <= 0 < T``, where it is the right derivative
``D F sqrt(T) n(0)`` (``D sqrt(T) n(0)`` for Bachelier).

Repricing under scenarios (:func:`option_scenario_pnl`)
--------------------------------------------------------
Each unique option ``i`` is revalued in each scenario ``s`` at the horizon:

* Underlying price ``P_s = scen_price[price_row[i], s]`` (the caller turns the factor returns into
  prices); today's price is ``P_0 = price0[i]``.
* Time decay: the caller passes ``tau_h = tau0 - horizon_days / 365`` (calendar days, ACT/365), so
  the P&L includes the theta over the margin period of risk. An option with ``tau_h <= 0`` expires
  within the horizon and settles at its intrinsic value against ``P_s`` in every scenario.
  Rates and carry do not move.
* Implied volatility is a risk factor, sticky strike: each option keeps its own implied vol
  ``iv0[i]`` (its point on today's smile) and every option of an underlying moves by the same
  relative shock. Two sources:

  - ``iv_row[i] >= 0``: an implied-vol index factor (VIX, DVOL, ...) with log changes
    ``iv_log_shock[iv_row[i], s]``: ``sigma_s = iv0 exp(iv_log_shock[iv_row, s])``.
  - ``iv_row[i] < 0``: the spot-vol rule, in the spirit of the vol shocks of crypto
    portfolio-margin venues (vol up when spot falls; short expiries move more)::

        m      = (P_s - P_0) / |P_0|                      relative spot move (0 if P_0 == 0)
        days   = tau0 * 365                                calendar days to expiry, as of today
        x      = -rule_beta[i] * (30 / max(days, 1)) ** rule_p[i] * m   log vol shock
        sigma_s = iv0 * min(max(exp(x), rule_floor), rule_cap)

    30 days is the reference tenor (``RULE_TENOR_DAYS``) at which the sensitivity is
    ``rule_beta``; ``rule_p`` is the power of the tenor scaling (0.3 is the "short-term vega
    power" of Deribit's portfolio margin). The floor and cap (``rule_floor``, ``rule_cap``,
    multiples of ``iv0``; suggested 0.1 and 5) keep extreme scenarios from giving a vol of
    nearly zero or an absurd one. They apply to the rule only: index shocks are used as given.

* P&L per unit quantity, in the reporting (quote) currency, with ``V`` the value in that currency
  and ``V_0 = V(P_0, tau0, iv0)``, ``V_s = V(P_s, tau_h, sigma_s)``:

  - quote-settled (linear) option: ``multiplier * (V_s - V_0)``;
  - coin-settled (inverse, Deribit style) option: its value in coin is ``V / P``; the P&L in coin
    ``V_s / P_s - V_0 / P_0``, converted into the reporting currency at the scenario's coin
    price ``P_s``, is ``multiplier * (V_s - (V_0 / P_0) P_s)``. The premium's own coin exposure
    is thus part of the P&L in coin and the revaluation of coin held as collateral is left to
    the collateral. The underlying price serves as both the option's forward and the coin's
    conversion rate (the basis between them is ignored).

Floating point: each element of the output is computed by one thread with a fixed sequence of
operations and no reduction across scenarios or options, and no fastmath, so the results are
bitwise identical for any number of threads.
"""

from __future__ import annotations

import math

import numpy as np
from numba import prange

from riskmodel.kernel_cache import njit

BLACK_SCHOLES = 0
"""Model code: Black-Scholes on a spot price, with rate and carry."""
BLACK76 = 1
"""Model code: Black-76 on a forward or futures price."""
BACHELIER = 2
"""Model code: Bachelier (normal) on a forward price; prices and strikes of any sign."""

DAYS_PER_YEAR = 365.0
"""ACT/365: calendar days per year of time to expiry."""
RULE_TENOR_DAYS = 30.0
"""Reference tenor of the spot-vol rule: at 30 days to expiry the sensitivity is ``rule_beta``."""

_INV_SQRT2 = math.sqrt(0.5)  # correctly rounded; a product is cheaper than a division
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)


@njit(cache=True)
def norm_cdf(x):
    """Standard normal distribution function, ``0.5 * erfc(-x / sqrt(2))``."""
    return 0.5 * math.erfc(-x * _INV_SQRT2)


@njit(cache=True)
def norm_pdf(x):
    """Standard normal density."""
    return _INV_SQRT_2PI * math.exp(-0.5 * x * x)


@njit(cache=True)
def intrinsic(is_call, price, strike):
    """Intrinsic value ``max(price - strike, 0)`` (call) or ``max(strike - price, 0)`` (put)."""
    if is_call:
        return max(price - strike, 0.0)
    return max(strike - price, 0.0)


@njit(cache=True)
def forward_value(model, is_call, fwd, strike, sd, df):
    """Discounted value on a forward, given the total standard deviation ``sd > 0``.

    ``sd = sigma sqrt(T)`` (lognormal, or in price units for ``BACHELIER``); ``df`` the discount
    factor. ``model`` is ``BLACK76`` or ``BLACK_SCHOLES`` (the same formula once the forward is
    formed) or ``BACHELIER``.
    """
    if model == BACHELIER:
        d = (fwd - strike) / sd
        if is_call:
            return df * ((fwd - strike) * norm_cdf(d) + sd * norm_pdf(d))
        return df * ((strike - fwd) * norm_cdf(-d) + sd * norm_pdf(d))
    return lognormal_value(is_call, fwd, strike, math.log(fwd / strike), sd, df)


@njit(cache=True)
def lognormal_value(is_call, fwd, strike, log_moneyness, sd, df):
    """The Black formula given ``log_moneyness = ln(F / K)`` (the repricing kernel forms it from
    the log of the scenario price, computed once per factor and scenario, not per option)."""
    d1 = (log_moneyness + 0.5 * sd * sd) / sd
    d2 = d1 - sd
    if is_call:
        return df * (fwd * norm_cdf(d1) - strike * norm_cdf(d2))
    return df * (strike * norm_cdf(-d2) - fwd * norm_cdf(-d1))


@njit(cache=True)
def growth(model, rate, carry, tau):
    """Forward over price, ``exp((rate - carry) tau)`` for ``BLACK_SCHOLES``, else 1."""
    if model == BLACK_SCHOLES:
        return math.exp((rate - carry) * tau)
    return 1.0


@njit(cache=True)
def option_value(model, is_call, price, strike, tau, sigma, rate, carry):
    """Value of one European option in the quote currency (module docstring for the models).

    Parameters
    ----------
    model : int
        ``BLACK_SCHOLES``, ``BLACK76`` or ``BACHELIER``.
    is_call : bool
    price : float
        Spot price (``BLACK_SCHOLES``) or forward price.
    strike, tau, sigma, rate, carry : float
        Strike; years to expiry; volatility (lognormal, or normal in price units); discount
        rate; carry (``BLACK_SCHOLES`` only).
    """
    if tau <= 0.0:
        return intrinsic(is_call, price, strike)
    df = math.exp(-rate * tau)
    fwd = price * growth(model, rate, carry, tau)
    if sigma <= 0.0:
        return df * intrinsic(is_call, fwd, strike)
    return forward_value(model, is_call, fwd, strike, sigma * math.sqrt(tau), df)


@njit(cache=True)
def option_greeks(model, is_call, price, strike, tau, sigma, rate, carry):
    """``(delta, gamma, vega)`` of one option, per unit, in the quote currency.

    Arguments as :func:`option_value`; formulas and degenerate cases in the module docstring.
    """
    sign = 1.0 if is_call else -1.0
    if tau <= 0.0:
        diff = price - strike
        delta = sign * (0.5 if diff == 0.0 else (1.0 if sign * diff > 0.0 else 0.0))
        return delta, 0.0, 0.0
    df = math.exp(-rate * tau)
    g = growth(model, rate, carry, tau)
    fwd = price * g
    sqt = math.sqrt(tau)
    if sigma <= 0.0:
        diff = fwd - strike
        slope = df * g
        delta = sign * slope * (0.5 if diff == 0.0 else (1.0 if sign * diff > 0.0 else 0.0))
        vega = 0.0
        if diff == 0.0:  # right derivative at sigma = 0, at the money
            vega = df * sqt * _INV_SQRT_2PI
            if model != BACHELIER:
                vega *= fwd
        return delta, 0.0, vega
    sd = sigma * sqt
    if model == BACHELIER:
        d = (fwd - strike) / sd
        pdf = norm_pdf(d)
        delta = df * norm_cdf(d) if is_call else -df * norm_cdf(-d)
        return delta, df * pdf / sd, df * pdf * sqt
    d1 = (math.log(fwd / strike) + 0.5 * sd * sd) / sd
    pdf = norm_pdf(d1)
    delta = df * g * (norm_cdf(d1) if is_call else -norm_cdf(-d1))
    return delta, df * g * pdf / (price * sd), df * fwd * pdf * sqt


@njit(cache=True)
def option_values_1d(model, is_call, price, strike, tau, sigma, rate, carry, out):
    """:func:`option_value` elementwise over 1-D arrays of equal length, into ``out``."""
    for i in range(out.size):
        out[i] = option_value(
            model[i], is_call[i], price[i], strike[i], tau[i], sigma[i], rate[i], carry[i]
        )


@njit(cache=True)
def option_greeks_1d(model, is_call, price, strike, tau, sigma, rate, carry, out):
    """:func:`option_greeks` elementwise over 1-D arrays; ``out`` of shape (3, n)."""
    for i in range(out.shape[1]):
        delta, gamma, vega = option_greeks(
            model[i], is_call[i], price[i], strike[i], tau[i], sigma[i], rate[i], carry[i]
        )
        out[0, i] = delta
        out[1, i] = gamma
        out[2, i] = vega


@njit(cache=True)
def rule_slope(rule_beta, rule_p, tau0):
    """Log vol shock per unit relative spot move of the spot-vol rule (module docstring):
    ``-rule_beta * (30 / max(tau0 * 365, 1)) ** rule_p``."""
    days = max(tau0 * DAYS_PER_YEAR, 1.0)
    return -rule_beta * (RULE_TENOR_DAYS / days) ** rule_p


@njit(cache=True, inline="always")
def _factor_tables(j, scen_price, iv_log_shock, iv_factor, log_price):
    """Row ``j`` of the per-factor tables shared by every option: the vol multipliers
    ``exp(iv_log_shock)`` of the index factors and ``ln P_s`` of the underlyings (lognormal
    options need ``ln(F/K) = ln P_s + ln g - ln K``); NaN for ``P_s <= 0``."""
    n_scen = scen_price.shape[1]
    if j < iv_log_shock.shape[0]:
        for s in range(n_scen):
            iv_factor[j, s] = math.exp(iv_log_shock[j, s])
    if j < scen_price.shape[0]:
        for s in range(n_scen):
            p = scen_price[j, s]
            log_price[j, s] = math.log(p) if p > 0.0 else np.nan


@njit(cache=True, inline="always")
def _reprice(i, model, is_call, inverse, strike, tau0, tau_h, iv0, rate, carry, multiplier,
             price0, price_row, scen_price, iv_row, rule_beta, rule_p, rule_floor, rule_cap,
             iv_factor, log_price, out):
    """Row ``i`` of :func:`option_scenario_pnl`: option ``i`` in every scenario."""
    n_scen = out.shape[1]
    mdl = model[i]
    call = is_call[i]
    k = strike[i]
    sig0 = iv0[i]
    p0 = price0[i]
    row = price_row[i]
    v0 = option_value(mdl, call, p0, k, tau0[i], sig0, rate[i], carry[i])
    # coin-settled: (value in coin today) x P_s is today's value at the scenario's coin price
    coin0 = v0 / p0 if inverse[i] else 0.0
    mult = multiplier[i]
    th = tau_h[i]
    if th <= 0.0:  # settles at intrinsic within the horizon: no vol, no discounting
        for s in range(n_scen):
            p = scen_price[row, s]
            v = intrinsic(call, p, k)
            out[i, s] = mult * (v - coin0 * p) if inverse[i] else mult * (v - v0)
        return
    df = math.exp(-rate[i] * th)
    g = growth(mdl, rate[i], carry[i], th)
    sqt = math.sqrt(th)
    ivr = iv_row[i]
    slope = rule_slope(rule_beta[i], rule_p[i], tau0[i])
    abs_p0 = abs(p0)
    lognormal = mdl != BACHELIER and k > 0.0
    log_g_over_k = math.log(g) - math.log(k) if lognormal else 0.0
    for s in range(n_scen):
        p = scen_price[row, s]
        if ivr >= 0:
            sig = sig0 * iv_factor[ivr, s]
        else:
            m = (p - p0) / abs_p0 if abs_p0 > 0.0 else 0.0
            f = min(max(math.exp(slope * m), rule_floor), rule_cap)
            sig = sig0 * f
        fwd = p * g
        if sig > 0.0:
            if lognormal and p > 0.0:
                v = lognormal_value(call, fwd, k, log_price[row, s] + log_g_over_k,
                                    sig * sqt, df)
            else:
                v = forward_value(mdl, call, fwd, k, sig * sqt, df)
        else:
            v = df * intrinsic(call, fwd, k)
        out[i, s] = mult * (v - coin0 * p) if inverse[i] else mult * (v - v0)


@njit(cache=True, parallel=True)
def option_scenario_pnl(
    model,
    is_call,
    inverse,
    strike,
    tau0,
    tau_h,
    iv0,
    rate,
    carry,
    multiplier,
    price0,
    price_row,
    scen_price,
    iv_row,
    iv_log_shock,
    rule_beta,
    rule_p,
    rule_floor,
    rule_cap,
    out,
):
    """P&L per unit quantity of each option in each scenario, in the reporting currency.

    The model, the vol shocks and the P&L of quote- and coin-settled options are defined in the
    module docstring. ``prange`` runs over the options; each element is computed independently.

    Parameters
    ----------
    model : int64 ndarray of shape (n_opt,)
        Model codes.
    is_call, inverse : bool ndarrays of shape (n_opt,)
        Call (else put); coin-settled (else settled in the quote currency).
    strike, tau0, tau_h, iv0, rate, carry, multiplier, price0 : float64 ndarrays of shape (n_opt,)
        Strike; years to expiry today and at the horizon; today's implied vol; rate; carry;
        contract multiplier; today's underlying price.
    price_row : int64 ndarray of shape (n_opt,)
        Row of ``scen_price`` with each option's underlying.
    scen_price : float64 ndarray of shape (n_factors, n_scenarios)
        Underlying price in each scenario.
    iv_row : int64 ndarray of shape (n_opt,)
        Row of ``iv_log_shock`` driving each option's vol, or negative for the spot-vol rule.
    iv_log_shock : float64 ndarray of shape (n_iv_factors, n_scenarios)
        Log changes of the implied-vol factors (may have 0 rows).
    rule_beta, rule_p : float64 ndarrays of shape (n_opt,)
        Spot-vol rule sensitivity at 30 days and tenor power (used where ``iv_row < 0``).
    rule_floor, rule_cap : float
        Bounds of the rule's vol, as multiples of ``iv0``.
    out : float64 ndarray of shape (n_opt, n_scenarios), C order
        Receives the P&L.
    """
    iv_factor = np.empty_like(iv_log_shock)
    log_price = np.empty_like(scen_price)
    for j in prange(max(iv_log_shock.shape[0], scen_price.shape[0])):
        _factor_tables(np.int64(j), scen_price, iv_log_shock, iv_factor, log_price)
    for i in prange(out.shape[0]):
        _reprice(np.int64(i), model, is_call, inverse, strike, tau0, tau_h, iv0, rate, carry,
                 multiplier, price0, price_row, scen_price, iv_row, rule_beta, rule_p,
                 rule_floor, rule_cap, iv_factor, log_price, out)


@njit(cache=True)
def option_scenario_pnl_serial(model, is_call, inverse, strike, tau0, tau_h, iv0, rate, carry,
                               multiplier, price0, price_row, scen_price, iv_row, iv_log_shock,
                               rule_beta, rule_p, rule_floor, rule_cap, out):
    """:func:`option_scenario_pnl` on one thread (same arguments, same bits): a small book's
    repricing compiles no parallel region."""
    iv_factor = np.empty_like(iv_log_shock)
    log_price = np.empty_like(scen_price)
    for j in range(max(iv_log_shock.shape[0], scen_price.shape[0])):
        _factor_tables(j, scen_price, iv_log_shock, iv_factor, log_price)
    for i in range(out.shape[0]):
        _reprice(i, model, is_call, inverse, strike, tau0, tau_h, iv0, rate, carry, multiplier,
                 price0, price_row, scen_price, iv_row, rule_beta, rule_p, rule_floor, rule_cap,
                 iv_factor, log_price, out)
