"""Scenario repricing of options and inverse contracts: kernel == twin == hand calculations.

References from outside the code under test: the Black-76 formula written out with
``scipy.stats.norm`` (Hull, eq. 18.9), worked examples computed by hand in the comments
(inverse perpetual, coin-settled option, the spot-vol rule), and numba thread counts 1 vs 2
for determinism.
"""

from __future__ import annotations

import numba
import numpy as np
import pytest
from scipy.stats import norm

from riskmodel.pricing import option_kernels as ok
from riskmodel.pricing import option_twins as tw
from riskmodel.pricing import options as op


def black76(call, f, k, t, sig, r=0.0):
    d1 = (np.log(f / k) + 0.5 * sig**2 * t) / (sig * np.sqrt(t))
    d2 = d1 - sig * np.sqrt(t)
    if call:
        return np.exp(-r * t) * (f * norm.cdf(d1) - k * norm.cdf(d2))
    return np.exp(-r * t) * (k * norm.cdf(-d2) - f * norm.cdf(-d1))


def random_book(seed, n_opt=300, n_scen=257, n_factors=7, n_iv=3):
    """Kernel arguments for a random mix: all three models, calls and puts, coin-settled ones,
    vol-index factors and the spot-vol rule, expiries inside the horizon, extreme moves."""
    rng = np.random.default_rng(seed)
    model = rng.choice([op.BLACK_SCHOLES, op.BLACK76, op.BACHELIER], n_opt).astype(np.int64)
    p0_factor = rng.uniform(20.0, 40_000.0, n_factors)
    p0_factor[0] = 18.0  # a WTI-like factor for the normal model
    row = rng.integers(1, n_factors, n_opt)
    row[model == op.BACHELIER] = 0
    row = row.astype(np.int64)
    scen = p0_factor[:, None] * np.exp(rng.standard_t(3, (n_factors, n_scen)) * 0.15)
    scen[0] = p0_factor[0] + rng.normal(0.0, 25.0, n_scen)  # goes negative
    price0 = p0_factor[row]
    strike = price0 * np.exp(rng.normal(0.0, 0.4, n_opt))
    normal = model == op.BACHELIER
    strike[normal] = rng.uniform(-20.0, 40.0, normal.sum())
    tau0 = rng.choice([0.5 / 365, 2.3 / 24 / 365, 1.5 / 365, 7 / 365, 0.1, 0.6, 2.0], n_opt)
    tau_h = op.horizon_tau(tau0, 2.0)  # several expire inside the 2-day horizon
    iv0 = rng.uniform(0.1, 1.8, n_opt)
    iv0[normal] = rng.uniform(2.0, 60.0, normal.sum())
    iv_row = np.where(rng.random(n_opt) < 0.4, rng.integers(0, n_iv, n_opt), -1).astype(np.int64)
    return dict(
        model=model,
        is_call=rng.random(n_opt) < 0.5,
        inverse=(rng.random(n_opt) < 0.4) & ~normal,
        strike=strike,
        tau0=tau0,
        tau_h=tau_h,
        iv0=iv0,
        rate=rng.uniform(-0.01, 0.08, n_opt),
        carry=rng.uniform(0.0, 0.05, n_opt),
        multiplier=rng.choice([1.0, 0.1, 100.0], n_opt),
        price0=price0,
        price_row=row,
        scen_price=scen,
        iv_row=iv_row,
        iv_log_shock=rng.normal(0.0, 0.3, (n_iv, n_scen)),
        rule_beta=rng.uniform(0.0, 3.0, n_opt),
        rule_p=rng.uniform(0.0, 0.6, n_opt),
        rule_floor=0.1,
        rule_cap=5.0,
    )


def run_kernel(book):
    n_opt, n_scen = book["model"].size, book["scen_price"].shape[1]
    out = np.full((n_opt, n_scen), np.nan)
    ok.option_scenario_pnl(*book.values(), out)
    return out


def assert_close_per_option(got, want, book, rtol=1e-12):
    """|got - want| <= rtol x the option's P&L scale: its largest |P&L| over the scenarios (a
    P&L crossing zero has no relative precision), at least 1e-8 of its notional (so that a
    worthless option's 1e-250 is not held to the relative precision of an erfc tail)."""
    notional = book["multiplier"] * np.abs(book["price0"])
    scale = np.maximum(np.abs(want).max(axis=1), 1e-8 * notional)[:, None]
    np.testing.assert_array_less(np.abs(got - want) / scale, rtol)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_kernel_matches_twin_on_random_books(seed):
    book = random_book(seed)
    got = run_kernel(book)
    want = tw.option_scenario_pnl(*book.values())
    assert np.isfinite(got).all()
    assert_close_per_option(got, want, book)
    # the book exercised every branch
    assert (book["tau_h"] <= 0).any() and (book["tau_h"] > 0).any()
    assert book["inverse"].any() and (book["iv_row"] >= 0).any() and (book["iv_row"] < 0).any()
    assert (book["scen_price"][0] < 0).any()
    assert book["rule_floor"] > 0


@pytest.mark.parametrize("seed", [1, 4])
def test_serial_kernel_gives_the_parallel_kernels_bits(seed):
    """The one-thread kernel that small books run (no parallel region to compile) is the
    parallel kernel's arithmetic: the same bits, so the same P&L whichever a book's size picks."""
    book = random_book(seed)
    out = np.full((book["model"].size, book["scen_price"].shape[1]), np.nan)
    ok.option_scenario_pnl_serial(*book.values(), out)
    np.testing.assert_array_equal(out, run_kernel(book))
    assert_close_per_option(out, tw.option_scenario_pnl(*book.values()), book)


def test_wrapper_picks_the_kernel_by_size_with_the_same_bits(monkeypatch):
    book = random_book(5, n_opt=40, n_scen=64)
    args = [book[k] for k in list(book)[:13]]
    small = op.option_scenario_pnl(*args)
    monkeypatch.setattr(op, "SERIAL_MAX_EVALS", 1)  # the same book through the parallel kernel
    np.testing.assert_array_equal(op.option_scenario_pnl(*args), small)


def test_public_wrapper_matches_twin_with_defaults():
    book = random_book(7, n_opt=40, n_scen=64)
    got = op.option_scenario_pnl(
        book["model"],
        book["is_call"],
        book["inverse"],
        book["strike"],
        book["tau0"],
        book["tau_h"],
        book["iv0"],
        book["rate"],
        book["carry"],
        book["multiplier"],
        book["price0"],
        book["price_row"],
        book["scen_price"],
    )
    n = book["model"].size
    want = tw.option_scenario_pnl(
        *list(book.values())[:13],
        np.full(n, -1),
        np.zeros((0, 64)),
        np.full(n, op.DEFAULT_RULE_BETA),
        np.full(n, op.DEFAULT_RULE_P),
        op.DEFAULT_RULE_FLOOR,
        op.DEFAULT_RULE_CAP,
    )
    assert_close_per_option(got, want, book)


def test_kernel_is_bitwise_identical_for_1_and_2_threads():
    book = random_book(11, n_opt=401, n_scen=300)
    before = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        one = run_kernel(book)
        numba.set_num_threads(min(2, numba.config.NUMBA_NUM_THREADS))
        two = run_kernel(book)
    finally:
        numba.set_num_threads(before)
    assert one.tobytes() == two.tobytes()


# ---------------------------------------------------------------------------------------------
# Single options, by hand


def one_option(**kw):
    """Kernel P&L of one option on one factor; keyword overrides of a BTC-like call."""
    a = dict(
        model=op.BLACK76,
        is_call=True,
        inverse=False,
        strike=10_000.0,
        tau0=30 / 365,
        tau_h=28 / 365,
        iv0=0.8,
        rate=0.0,
        carry=0.0,
        multiplier=1.0,
        price0=10_000.0,
        scen=[10_000.0],
        iv_row=0,
        iv_shock=[0.0],
        beta=1.5,
        p=0.3,
    )
    a.update(kw)
    scen = np.array([a["scen"]], dtype=float)
    n_scen = scen.shape[1]
    iv_shock = np.array([a["iv_shock"]], dtype=float) * np.ones((1, n_scen))
    out = np.empty((1, n_scen))

    def arr(x, dt=float):
        return np.array([x], dtype=dt)

    ok.option_scenario_pnl(
        arr(a["model"], np.int64),
        arr(a["is_call"], bool),
        arr(a["inverse"], bool),
        arr(a["strike"]),
        arr(a["tau0"]),
        arr(a["tau_h"]),
        arr(a["iv0"]),
        arr(a["rate"]),
        arr(a["carry"]),
        arr(a["multiplier"]),
        arr(a["price0"]),
        arr(0, np.int64),
        scen,
        arr(a["iv_row"], np.int64),
        iv_shock,
        arr(a["beta"]),
        arr(a["p"]),
        0.1,
        5.0,
        out,
    )
    return out[0]


def test_linear_option_pnl_is_value_change_with_decay_and_vol_factor():
    # 10 contracts x multiplier 1; vol index up 20% in log terms; 2 days of decay
    v0 = black76(True, 10_000.0, 10_000.0, 30 / 365, 0.8)
    got = one_option(scen=[9_000.0, 10_000.0, 11_000.0], iv_shock=[0.2, 0.0, -0.1])
    want = [
        black76(True, 9_000.0, 10_000.0, 28 / 365, 0.8 * np.exp(0.2)) - v0,
        black76(True, 10_000.0, 10_000.0, 28 / 365, 0.8) - v0,
        black76(True, 11_000.0, 10_000.0, 28 / 365, 0.8 * np.exp(-0.1)) - v0,
    ]
    np.testing.assert_allclose(got, want, rtol=1e-12)
    assert got[1] < 0  # unchanged market: the holder loses two days of time value


def test_coin_settled_option_by_hand():
    # Deribit-style BTC call, strike 10,000, 30 days, vol 80%, BTC 10,000 -> 8,000, vol factor
    # unchanged. Value in coin today c0 = V0/10,000; at the horizon c1 = V1/8,000. The holder's
    # P&L in BTC is c1 - c0, worth 8,000 (c1 - c0) USD when the scenario's BTC price is 8,000.
    v0 = black76(True, 10_000.0, 10_000.0, 30 / 365, 0.8)  # 365.09... USD
    v1 = black76(True, 8_000.0, 10_000.0, 28 / 365, 0.8)
    coin_pnl = v1 / 8_000.0 - v0 / 10_000.0
    got = one_option(inverse=True, scen=[8_000.0], multiplier=1.0)
    assert got[0] == pytest.approx(8_000.0 * coin_pnl, rel=1e-12)
    # which differs from the USD value change by the premium's own coin exposure
    assert got[0] == pytest.approx((v1 - v0) + v0 * (1 - 8_000 / 10_000), rel=1e-12)


def test_coin_settled_option_expiring_in_the_horizon_by_hand():
    # 12 hours to expiry, a 2-day horizon: it settles at intrinsic. Call 9,000 on BTC 10,000
    # -> 12,000: payoff 3,000 USD = 0.25 BTC. P&L in BTC 0.25 - V0/10,000, at 12,000 USD/BTC:
    # 3,000 - 1.2 V0.
    v0 = black76(True, 10_000.0, 9_000.0, 0.5 / 365, 0.8)
    got = one_option(
        inverse=True, strike=9_000.0, tau0=0.5 / 365, tau_h=-1.5 / 365, scen=[12_000.0, 8_000.0]
    )
    np.testing.assert_allclose(got, [3_000.0 - 1.2 * v0, 0.0 - 0.8 * v0], rtol=1e-12)
    # quote-settled twin of it: intrinsic minus today's value
    got = one_option(strike=9_000.0, tau0=0.5 / 365, tau_h=-1.5 / 365, scen=[12_000.0, 8_000.0])
    np.testing.assert_allclose(got, [3_000.0 - v0, -v0], rtol=1e-12)


def test_spot_vol_rule_by_hand():
    # 10 days to expiry: tenor factor (30/10)^0.3 = 1.390389...; beta 1.5; P0 = 100
    tenor = 3.0**0.3
    t0, th = 10 / 365, 8 / 365
    rule = dict(model=op.BLACK76, is_call=False, price0=100.0, tau0=t0, tau_h=th, iv0=0.6)

    def pnl_at(strike, scen, sig):
        """Oracle: value at the horizon with vol sig, minus today's value."""
        return black76(False, scen, strike, th, sig) - black76(False, 100.0, strike, t0, 0.6)

    # spot -10%: log vol shock 1.5 x 0.1 x tenor = 0.20856; vol 0.6 x 1.23190
    sig_down = 0.6 * np.exp(1.5 * 0.1 * tenor)
    assert sig_down == pytest.approx(0.6 * 1.23190, rel=1e-5)
    got = one_option(**rule, iv_row=-1, strike=95.0, scen=[90.0, 100.0])
    np.testing.assert_allclose(got, [pnl_at(95.0, 90.0, sig_down), pnl_at(95.0, 100.0, 0.6)], 1e-12)
    # spot x3 (m = 2): exp(-1.5 x 2 x tenor) = 0.0154 is floored at 0.1: vol 0.06
    got = one_option(**rule, iv_row=-1, strike=300.0, scen=[300.0])
    assert got[0] == pytest.approx(pnl_at(300.0, 300.0, 0.06), rel=1e-12)
    # spot -90% (m = -0.9): exp(1.5 x 0.9 x tenor) = 6.53 is capped at 5: vol 3.0
    got = one_option(**rule, iv_row=-1, strike=10.0, scen=[10.0])
    assert got[0] == pytest.approx(pnl_at(10.0, 10.0, 3.0), rel=1e-12)
    # under one day to expiry the tenor factor stops growing: days are floored at 1
    got = one_option(iv_row=-1, tau0=0.2 / 365, tau_h=0.1 / 365, scen=[9_500.0], strike=9_800.0)
    v0 = black76(True, 10_000.0, 9_800.0, 0.2 / 365, 0.8)
    sig = 0.8 * np.exp(1.5 * 0.05 * 30.0**0.3)
    assert got[0] == pytest.approx(black76(True, 9_500.0, 9_800.0, 0.1 / 365, sig) - v0, 1e-12)


def test_rule_for_the_normal_model_with_negative_prices():
    # Bachelier on WTI 18 -> -20: m = -38/18; the vol hits the cap (5 x 9 = 45 USD)
    v0 = op.option_price(op.BACHELIER, False, 18.0, 10.0, 20 / 365, 9.0)
    got = one_option(
        model=op.BACHELIER,
        is_call=False,
        strike=10.0,
        price0=18.0,
        tau0=20 / 365,
        tau_h=18 / 365,
        iv0=9.0,
        iv_row=-1,
        scen=[-20.0],
    )
    sd = 45.0 * np.sqrt(18 / 365)
    d = (-20.0 - 10.0) / sd
    want = 30.0 * norm.cdf(-d) + sd * norm.pdf(d) - v0
    assert got[0] == pytest.approx(want, rel=1e-12)


def test_black_scholes_option_carries_rate_and_dividend_to_the_horizon():
    s0, k, r, q = 100.0, 100.0, 0.05, 0.02
    got = one_option(
        model=op.BLACK_SCHOLES,
        strike=k,
        price0=s0,
        rate=r,
        carry=q,
        tau0=0.5,
        tau_h=0.49,
        iv0=0.2,
        scen=[100.0],
    )

    def bs(s, t):
        d1 = (np.log(s / k) + (r - q + 0.02) * t) / (0.2 * np.sqrt(t))
        d2 = d1 - 0.2 * np.sqrt(t)
        return s * np.exp(-q * t) * norm.cdf(d1) - k * np.exp(-r * t) * norm.cdf(d2)

    assert got[0] == pytest.approx(bs(100.0, 0.49) - bs(100.0, 0.5), rel=1e-11)


# ---------------------------------------------------------------------------------------------
# Inverse perpetuals and futures


def test_inverse_perpetual_by_hand():
    # face 100 USD, 10 contracts, BTC 10,000 -> 8,000:
    # coin P&L = 100 x 10 x (1/10,000 - 1/8,000) = -0.025 BTC, = -200 USD at 8,000
    face, q, p0, p1 = 100.0, 10.0, 10_000.0, 8_000.0
    coin = face * q * (1 / p0 - 1 / p1)
    assert coin == pytest.approx(-0.025, rel=1e-14)
    per_unit = op.inverse_linear_pnl([p0], [[p1, 12_500.0, p0]], [face])
    np.testing.assert_allclose(q * per_unit, [[-200.0, 250.0, 0.0]], rtol=1e-14, atol=0)
    assert q * per_unit[0, 0] == pytest.approx(coin * p1, rel=1e-14)
    # a short gains the same: +0.025 BTC at 8,000
    assert -q * per_unit[0, 0] == pytest.approx(200.0)


def test_inverse_linear_pnl_shapes_and_small_moves():
    p0 = np.array([10_000.0, 2_000.0])
    rows = np.array([[10_000.0 * (1 + 1e-12), 9_000.0], [2_000.0, 2_200.0]])
    got = op.inverse_linear_pnl(p0, rows, np.array([100.0, 10.0]))
    assert got.shape == (2, 2)
    # (P1 - P0) / P0 keeps the precision of tiny moves
    assert got[0, 0] == pytest.approx(100.0 * 1e-12, rel=1e-3)
    np.testing.assert_allclose(got[:, 1], [-10.0, 1.0], rtol=1e-14)
