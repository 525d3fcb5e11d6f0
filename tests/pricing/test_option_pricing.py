"""Option closed forms and Greeks against references from outside the code under test.

References: the Black-Scholes (Merton, with continuous dividend yield), Black-76 and Bachelier
formulas as printed in Hull, "Options, Futures and Other Derivatives" (chapters 15-18) and
Bachelier's normal model (e.g. Schachermayer & Teichmann 2008), written out below with
``scipy.stats.norm``, independently of the package; put-call parity; central finite differences
of the price for the Greeks. Both implementations are checked: the vectorised numpy one
(``options``) and the scalar numba one (``option_kernels``).
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from scipy.stats import norm

from riskmodel.pricing import option_kernels as ok
from riskmodel.pricing import options as op

# ---------------------------------------------------------------------------------------------
# Oracles, straight from the textbook formulas.


def bs_oracle(call, s, k, t, sig, r, q):
    """Black-Scholes-Merton on spot with dividend yield q (Hull, eq. 17.4-17.5)."""
    d1 = (np.log(s / k) + (r - q + 0.5 * sig**2) * t) / (sig * np.sqrt(t))
    d2 = d1 - sig * np.sqrt(t)
    c = s * np.exp(-q * t) * norm.cdf(d1) - k * np.exp(-r * t) * norm.cdf(d2)
    p = k * np.exp(-r * t) * norm.cdf(-d2) - s * np.exp(-q * t) * norm.cdf(-d1)
    return np.where(call, c, p)


def bs_greeks_oracle(call, s, k, t, sig, r, q):
    d1 = (np.log(s / k) + (r - q + 0.5 * sig**2) * t) / (sig * np.sqrt(t))
    delta = np.exp(-q * t) * np.where(call, norm.cdf(d1), norm.cdf(d1) - 1.0)
    gamma = np.exp(-q * t) * norm.pdf(d1) / (s * sig * np.sqrt(t))
    vega = s * np.exp(-q * t) * norm.pdf(d1) * np.sqrt(t)
    return delta, gamma, vega


def black76_oracle(call, f, k, t, sig, r):
    """Black (1976) on a forward (Hull, eq. 18.9-18.10)."""
    d1 = (np.log(f / k) + 0.5 * sig**2 * t) / (sig * np.sqrt(t))
    d2 = d1 - sig * np.sqrt(t)
    c = np.exp(-r * t) * (f * norm.cdf(d1) - k * norm.cdf(d2))
    p = np.exp(-r * t) * (k * norm.cdf(-d2) - f * norm.cdf(-d1))
    return np.where(call, c, p)


def black76_greeks_oracle(call, f, k, t, sig, r):
    d1 = (np.log(f / k) + 0.5 * sig**2 * t) / (sig * np.sqrt(t))
    df = np.exp(-r * t)
    delta = df * np.where(call, norm.cdf(d1), norm.cdf(d1) - 1.0)
    gamma = df * norm.pdf(d1) / (f * sig * np.sqrt(t))
    vega = df * f * norm.pdf(d1) * np.sqrt(t)
    return delta, gamma, vega


def bachelier_oracle(call, f, k, t, sig_n, r):
    """Normal model: e^{-rT} [(F-K) N(d) + s n(d)], s = sig_n sqrt(T), d = (F-K)/s."""
    sd = sig_n * np.sqrt(t)
    d = (f - k) / sd
    c = np.exp(-r * t) * ((f - k) * norm.cdf(d) + sd * norm.pdf(d))
    p = np.exp(-r * t) * ((k - f) * norm.cdf(-d) + sd * norm.pdf(d))
    return np.where(call, c, p)


def bachelier_greeks_oracle(call, f, k, t, sig_n, r):
    sd = sig_n * np.sqrt(t)
    d = (f - k) / sd
    df = np.exp(-r * t)
    delta = df * np.where(call, norm.cdf(d), norm.cdf(d) - 1.0)
    return delta, df * norm.pdf(d) / sd, df * norm.pdf(d) * np.sqrt(t)


# ---------------------------------------------------------------------------------------------
# Grids (flattened), deep in and out of the money, hours to ten years.

HOUR = 1.0 / (365.0 * 24.0)
TAUS = [HOUR, 2.3 * HOUR, 0.02, 0.25, 1.0, 10.0]


def grid(**axes):
    keys = list(axes)
    rows = np.array(list(itertools.product(*axes.values())), dtype=float).T
    return {k: rows[i] for i, k in enumerate(keys)}


LOGNORMAL = grid(
    call=[1.0, 0.0],
    s=[40.0, 90.0, 100.0, 112.5, 300.0],
    k=[50.0, 100.0, 130.0],
    t=TAUS,
    sig=[0.02, 0.25, 1.2, 3.0],
    r=[-0.01, 0.0, 0.07],
    q=[0.0, 0.04],
)
NORMAL = grid(
    call=[1.0, 0.0],
    f=[-40.0, -5.0, 0.0, 3.0, 60.0],
    k=[-37.63, -10.0, 0.0, 10.0, 60.0],
    t=TAUS,
    sig=[0.5, 8.0, 40.0, 150.0],
    r=[0.0, 0.05],
)


def _numba_inputs(model, call, s, k, t, sig, r, q):
    shape = np.broadcast(model, call, s, k, t, sig, r, q).shape
    n = max(1, int(np.prod(shape)))
    args = (np.asarray(model, dtype=np.int64), np.asarray(call, dtype=bool)) + tuple(
        np.asarray(a, dtype=float) for a in (s, k, t, sig, r, q)
    )
    return shape, n, [np.ascontiguousarray(np.broadcast_to(a, shape).ravel()) for a in args]


def numba_price(model, call, s, k, t, sig, r, q):
    """The scalar numba closed form, elementwise."""
    shape, n, args = _numba_inputs(model, call, s, k, t, sig, r, q)
    out = np.empty(n)
    ok.option_values_1d(*args, out)
    return out.reshape(shape)


def numba_greeks(model, call, s, k, t, sig, r, q):
    """The scalar numba Greeks, elementwise."""
    shape, n, args = _numba_inputs(model, call, s, k, t, sig, r, q)
    out = np.empty((3, n))
    ok.option_greeks_1d(*args, out)
    return tuple(g.reshape(shape) for g in out)


IMPLS = {
    "numpy": lambda *a: op.option_price(*a),
    "numba": numba_price,
}
GREEK_IMPLS = {
    "numpy": lambda *a: tuple(op.option_greeks(*a)),
    "numba": numba_greeks,
}


# ---------------------------------------------------------------------------------------------
# Prices


@pytest.mark.parametrize("impl", IMPLS)
def test_black_scholes_matches_textbook_formula(impl):
    g = LOGNORMAL
    call = g["call"] == 1.0
    got = IMPLS[impl](op.BLACK_SCHOLES, call, g["s"], g["k"], g["t"], g["sig"], g["r"], g["q"])
    want = bs_oracle(call, g["s"], g["k"], g["t"], g["sig"], g["r"], g["q"])
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-10)
    assert (got >= 0).all()


@pytest.mark.parametrize("impl", IMPLS)
def test_black76_matches_textbook_formula(impl):
    g = LOGNORMAL
    call = g["call"] == 1.0
    # carry must be ignored by Black-76
    got = IMPLS[impl](op.BLACK76, call, g["s"], g["k"], g["t"], g["sig"], g["r"], g["q"])
    want = black76_oracle(call, g["s"], g["k"], g["t"], g["sig"], g["r"])
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-10)


@pytest.mark.parametrize("impl", IMPLS)
def test_bachelier_matches_textbook_formula_with_negative_prices(impl):
    g = NORMAL
    call = g["call"] == 1.0
    got = IMPLS[impl](op.BACHELIER, call, g["f"], g["k"], g["t"], g["sig"], g["r"], 0.3)
    want = bachelier_oracle(call, g["f"], g["k"], g["t"], g["sig"], g["r"])
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-10)
    assert (g["f"] < 0).any() and (g["k"] < 0).any()


def test_wti_april_2020_negative_forward_put_is_worth_more_than_its_strike():
    # May-2020 WTI settled at -37.63 USD/bbl: a 5-USD put on it, a day before, with a 10 USD
    # normal vol, is worth about the intrinsic 42.63 (Bachelier; a lognormal model cannot)
    v = op.option_price(op.BACHELIER, False, -37.63, 5.0, 1 / 365, 10.0, 0.0)
    assert v == pytest.approx(42.63, abs=1e-12)
    c = op.option_price(op.BACHELIER, True, -37.63, -40.0, 1 / 365, 10.0, 0.0)
    assert c == pytest.approx(bachelier_oracle(True, -37.63, -40.0, 1 / 365, 10.0, 0.0), abs=1e-12)


@pytest.mark.parametrize("impl", IMPLS)
def test_put_call_parity(impl):
    price = IMPLS[impl]
    g = LOGNORMAL
    s, k, t, sig, r, q = g["s"], g["k"], g["t"], g["sig"], g["r"], g["q"]
    for model in (op.BLACK_SCHOLES, op.BLACK76):
        c = price(model, True, s, k, t, sig, r, q)
        p = price(model, False, s, k, t, sig, r, q)
        if model == op.BLACK_SCHOLES:
            want = s * np.exp(-q * t) - k * np.exp(-r * t)
        else:
            want = np.exp(-r * t) * (s - k)
        np.testing.assert_allclose(c - p, want, rtol=0, atol=1e-10)
    g = NORMAL
    c = price(op.BACHELIER, True, g["f"], g["k"], g["t"], g["sig"], g["r"], 0.0)
    p = price(op.BACHELIER, False, g["f"], g["k"], g["t"], g["sig"], g["r"], 0.0)
    np.testing.assert_allclose(c - p, np.exp(-g["r"] * g["t"]) * (g["f"] - g["k"]), atol=1e-10)


def test_put_call_parity_within_rounding_for_large_prices():
    # BTC-sized prices: parity holds to the rounding of numbers of size 1e4-1e5
    s = np.array([5_000.0, 9_350.0, 60_000.0])[:, None]
    k = np.array([2_500.0, 9_000.0, 36_000.0])[None, :]
    c = op.option_price(op.BLACK76, True, s, k, 0.6, 0.9)
    p = op.option_price(op.BLACK76, False, s, k, 0.6, 0.9)
    np.testing.assert_allclose(c - p, s - k, rtol=0, atol=1e-10 * 60_000)


@pytest.mark.parametrize("impl", IMPLS)
def test_expired_options_are_worth_intrinsic(impl):
    price = IMPLS[impl]
    s = np.array([90.0, 100.0, 110.0, -5.0])
    k = 100.0
    for t in (0.0, -1e-9, -3.0 / 365):
        for model in (op.BLACK_SCHOLES, op.BLACK76, op.BACHELIER):
            if model != op.BACHELIER:
                s_ = s[:3]
            else:
                s_ = s
            # rate and carry must not matter at T <= 0
            c = price(model, True, s_, k, t, 0.8, 0.05, 0.02)
            p = price(model, False, s_, k, t, 0.8, 0.05, 0.02)
            np.testing.assert_array_equal(c, np.maximum(s_ - k, 0.0))
            np.testing.assert_array_equal(p, np.maximum(k - s_, 0.0))


@pytest.mark.parametrize("impl", IMPLS)
def test_zero_vol_is_discounted_intrinsic_of_the_forward(impl):
    price = IMPLS[impl]
    t, r, q = 0.5, 0.05, 0.02
    s = np.array([80.0, 100.0, 120.0])
    k = 100.0
    fwd = s * np.exp((r - q) * t)
    for sig in (0.0, -0.1):
        got = price(op.BLACK_SCHOLES, True, s, k, t, sig, r, q)
        np.testing.assert_allclose(got, np.exp(-r * t) * np.maximum(fwd - k, 0), atol=1e-13)
        got = price(op.BLACK_SCHOLES, False, s, k, t, sig, r, q)
        np.testing.assert_allclose(got, np.exp(-r * t) * np.maximum(k - fwd, 0), atol=1e-13)
        for model in (op.BLACK76, op.BACHELIER):
            got = price(model, True, s, k, t, sig, r, q)
            np.testing.assert_allclose(got, np.exp(-r * t) * np.maximum(s - k, 0), atol=1e-13)
    # and the closed form tends to it
    tiny = price(op.BLACK_SCHOLES, True, s, k, t, 1e-9, r, q)
    np.testing.assert_allclose(tiny, np.exp(-r * t) * np.maximum(fwd - k, 0), atol=1e-7)


def test_numba_and_numpy_closed_forms_agree_to_rounding():
    g = LOGNORMAL
    call = g["call"] == 1.0
    for model in (op.BLACK_SCHOLES, op.BLACK76):
        a = op.option_price(model, call, g["s"], g["k"], g["t"], g["sig"], g["r"], g["q"])
        b = numba_price(model, call, g["s"], g["k"], g["t"], g["sig"], g["r"], g["q"])
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-13)
    g = NORMAL
    call = g["call"] == 1.0
    a = op.option_price(op.BACHELIER, call, g["f"], g["k"], g["t"], g["sig"], g["r"])
    b = numba_price(op.BACHELIER, call, g["f"], g["k"], g["t"], g["sig"], g["r"], 0.0)
    np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-13)


def test_mixed_models_broadcast_in_one_call():
    model = np.array([op.BLACK_SCHOLES, op.BLACK76, op.BACHELIER])[:, None]
    call = np.array([True, False])[None, :]
    got = op.option_price(model, call, 100.0, 95.0, 0.5, np.array([[0.3], [0.3], [30.0]]), 0.02)
    assert got.shape == (3, 2)
    assert got[0, 0] == pytest.approx(bs_oracle(True, 100.0, 95.0, 0.5, 0.3, 0.02, 0.0), 1e-13)
    assert got[1, 1] == pytest.approx(black76_oracle(False, 100.0, 95.0, 0.5, 0.3, 0.02), 1e-13)
    assert got[2, 0] == pytest.approx(bachelier_oracle(True, 100.0, 95.0, 0.5, 30.0, 0.02), 1e-13)
    assert np.ndim(op.option_price(op.BLACK76, True, 100.0, 95.0, 0.5, 0.3)) == 0


# ---------------------------------------------------------------------------------------------
# Greeks

GREEK_GRID = grid(
    call=[1.0, 0.0],
    s=[70.0, 95.0, 100.0, 108.0, 140.0],
    k=[100.0],
    t=[0.05, 0.5, 3.0],
    sig=[0.15, 0.6, 1.5],
    r=[0.0, 0.05],
    q=[0.0, 0.03],
)
GREEK_GRID_N = grid(
    call=[1.0, 0.0],
    f=[-30.0, -2.0, 5.0, 12.0, 40.0],
    k=[5.0],
    t=[0.05, 0.5, 3.0],
    sig=[3.0, 10.0, 30.0],
    r=[0.0, 0.05],
)


def finite_differences(price, model, call, s, k, t, sig, r, q):
    """Central differences, Richardson-extrapolated (steps h and h/2, error O(h^4)): delta and
    gamma in the price with h a hundredth of the price's standard deviation to expiry, vega in
    sigma with h = 1e-4 sigma."""

    def central(h, hv):
        up = price(model, call, s + h, k, t, sig, r, q)
        mid = price(model, call, s, k, t, sig, r, q)
        dn = price(model, call, s - h, k, t, sig, r, q)
        vu = price(model, call, s, k, t, sig + hv, r, q)
        vd = price(model, call, s, k, t, sig - hv, r, q)
        return (up - dn) / (2 * h), (up - 2 * mid + dn) / h**2, (vu - vd) / (2 * hv)

    sd = sig * np.sqrt(t) * (1.0 if model == op.BACHELIER else np.abs(s))
    coarse, fine = central(1e-2 * sd, 1e-4 * sig), central(0.5e-2 * sd, 0.5e-4 * sig)
    return tuple((4 * f - c) / 3 for f, c in zip(fine, coarse, strict=True))


@pytest.mark.parametrize("impl", GREEK_IMPLS)
@pytest.mark.parametrize("model", [op.BLACK_SCHOLES, op.BLACK76, op.BACHELIER])
def test_greeks_match_closed_forms_and_finite_differences(impl, model):
    if model == op.BACHELIER:
        g = GREEK_GRID_N
        s, q = g["f"], np.zeros_like(g["f"])
    else:
        g = GREEK_GRID
        s, q = g["s"], g["q"]
    call = g["call"] == 1.0
    k, t, sig, r = g["k"], g["t"], g["sig"], g["r"]
    delta, gamma, vega = GREEK_IMPLS[impl](model, call, s, k, t, sig, r, q)

    if model == op.BLACK_SCHOLES:
        want = bs_greeks_oracle(call, s, k, t, sig, r, q)
    elif model == op.BLACK76:
        want = black76_greeks_oracle(call, s, k, t, sig, r)
    else:
        want = bachelier_greeks_oracle(call, s, k, t, sig, r)
    for got, w in zip((delta, gamma, vega), want, strict=True):
        np.testing.assert_allclose(got, w, rtol=1e-12, atol=1e-14)

    # finite differences of the oracle price (independent of the code under test)
    def oracle(model, call, s, k, t, sig, r, q):
        if model == op.BLACK_SCHOLES:
            return bs_oracle(call, s, k, t, sig, r, q)
        if model == op.BLACK76:
            return black76_oracle(call, s, k, t, sig, r)
        return bachelier_oracle(call, s, k, t, sig, r)

    # 1e-6 relative, with an absolute floor of 1e-7 of the largest value for the rounding noise
    # of the differences (about eps * price / h^2 for gamma)
    fd = finite_differences(oracle, model, call, s, k, t, sig, r, q)
    for got, f in zip((delta, gamma, vega), fd, strict=True):
        np.testing.assert_allclose(got, f, rtol=1e-6, atol=1e-7 * np.abs(f).max())
    # and of the code's own price
    fd = finite_differences(IMPLS[impl], model, call, s, k, t, sig, r, q)
    for got, f in zip((delta, gamma, vega), fd, strict=True):
        np.testing.assert_allclose(got, f, rtol=1e-6, atol=1e-7 * np.abs(f).max())


@pytest.mark.parametrize("impl", GREEK_IMPLS)
def test_greeks_of_expired_and_zero_vol_options(impl):
    greeks = GREEK_IMPLS[impl]
    s = np.array([90.0, 100.0, 110.0])
    # expired: slope of the intrinsic value (1/2 at the kink), no gamma, no vega
    for model in (op.BLACK_SCHOLES, op.BLACK76, op.BACHELIER):
        d, g, v = greeks(model, True, s, 100.0, 0.0, 0.5, 0.05, 0.02)
        np.testing.assert_array_equal(d, [0.0, 0.5, 1.0])
        np.testing.assert_array_equal(g, 0.0)
        np.testing.assert_array_equal(v, 0.0)
        d, g, v = greeks(model, False, s, 100.0, -1.0, 0.5, 0.05, 0.02)
        np.testing.assert_array_equal(d, [-1.0, -0.5, 0.0])
    # zero vol, T > 0: discounted slope; vega at the money is the right derivative
    t, r, q = 0.25, 0.04, 0.01
    d, g, v = greeks(op.BLACK_SCHOLES, True, s, 100.0, t, 0.0, r, q)
    np.testing.assert_allclose(d, np.exp(-q * t) * np.array([0.0, 1.0, 1.0]), rtol=1e-15)
    np.testing.assert_array_equal(g, 0.0)
    d, g, v = greeks(op.BLACK76, False, s, 100.0, t, 0.0, r, 0.0)
    np.testing.assert_allclose(d, -np.exp(-r * t) * np.array([1.0, 0.5, 0.0]), rtol=1e-15)
    np.testing.assert_allclose(
        v, [0.0, np.exp(-r * t) * 100.0 * np.sqrt(t) * norm.pdf(0.0), 0.0], rtol=1e-15
    )
    _, _, v = greeks(op.BACHELIER, True, s, 100.0, t, 0.0, r, 0.0)
    np.testing.assert_allclose(v, [0.0, np.exp(-r * t) * np.sqrt(t) * norm.pdf(0.0), 0.0])
    # which is the limit of the closed form
    _, _, v_small = greeks(op.BACHELIER, True, 100.0, 100.0, t, 1e-8, r, 0.0)
    assert v_small == pytest.approx(v[1], rel=1e-12)


def test_greeks_scale_with_multiplier_and_delta_notional():
    g1 = op.option_greeks(op.BLACK76, True, 9350.0, 9000.0, 0.1, 0.8)
    g10 = op.option_greeks(op.BLACK76, True, 9350.0, 9000.0, 0.1, 0.8, multiplier=10.0)
    for a, b in zip(g1, g10, strict=True):
        assert b == pytest.approx(10.0 * a, rel=1e-15)
    # a short 3-lot of a 0.5-delta call on a 9350 future with multiplier 10: 3 x 10 x .5 x 9350
    assert op.delta_notional(-3.0, 10.0, 0.5, 9350.0) == pytest.approx(140_250.0)


def test_values_in_quote_currency_and_coin():
    f, k, t, sig = 9350.0, 9000.0, 30 / 365, 0.8
    usd, coin = op.option_values(op.BLACK76, True, f, k, t, sig, multiplier=2.0)
    want = 2.0 * black76_oracle(True, f, k, t, sig, 0.0)
    assert usd == pytest.approx(want, rel=1e-13)
    assert coin == pytest.approx(want / f, rel=1e-13)


def test_year_fraction_and_horizon():
    yf = op.year_fraction(
        np.datetime64("2020-05-14T05:43:53.445"), np.datetime64("2020-05-15T08:00:00")
    )
    # 26 h 16 min 6.555 s
    assert yf == pytest.approx((26 * 3600 + 16 * 60 + 6.555) / (365 * 86400), rel=1e-14)
    np.testing.assert_allclose(op.horizon_tau([1.0, 1 / 365], 2.0), [1 - 2 / 365, -1 / 365])
