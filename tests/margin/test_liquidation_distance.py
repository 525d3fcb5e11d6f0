"""Distance to liquidation: closed forms, hedging, edge cases and no-NaN properties."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from riskmodel.margin.liquidation_distance import COLUMNS, liquidation_distance

SIGMA = np.array([0.03, 0.05, 0.02])


def run(positions, equity, mm, sigma=SIGMA, indptr=None):
    """positions: list of (quantity, multiplier, price, factor) for one set (unless indptr)."""
    q, m, p, f = (np.array(c, dtype=float) for c in zip(*positions)) if positions else [
        np.zeros(0)] * 4
    indptr = np.array([0, len(positions)]) if indptr is None else np.asarray(indptr)
    return liquidation_distance(
        indptr, q, m, p, f.astype(np.int64), len(sigma),
        np.atleast_1d(np.asarray(equity, dtype=float)),
        np.atleast_1d(np.asarray(mm, dtype=float)), sigma,
    )


@pytest.mark.parametrize("q, m, p0, equity, rate", [
    (2.0, 1.0, 30_000.0, 12_000.0, 0.005),   # perpetual
    (10.0, 50.0, 4_000.0, 250_000.0, 0.05),  # future
    (1_000.0, 1.0, 12.5, 1_500.0, 0.1),      # spot
])
def test_single_long_closed_form(q, m, p0, equity, rate):
    mm0 = rate * q * m * p0
    out = run([(q, m, p0, 1)], equity, mm0).iloc[0]
    # E + q m (P - P0) = r q m P  ->  P_liq = (q m P0 - E) / (q m (1 - r))
    p_liq = (q * m * p0 - equity) / (q * m * (1 - rate))
    assert out.dominant_underlying == 1
    assert out.liquidation_price == pytest.approx(p_liq, rel=1e-12)
    assert out.liq_move_dominant == pytest.approx(p_liq / p0 - 1, rel=1e-12)
    assert out.liq_move_uniform == out.liq_move_dominant
    assert out.liq_move_dominant < 0
    sig = abs(np.log(p_liq / p0)) / SIGMA[1]
    assert out.liq_sigmas_dominant == pytest.approx(sig, rel=1e-12)
    assert out.liq_sigmas_uniform == out.liq_sigmas_dominant


@pytest.mark.parametrize("q, m, p0, equity, rate", [
    (2.0, 1.0, 30_000.0, 12_000.0, 0.005),
    (10.0, 50.0, 4_000.0, 250_000.0, 0.05),
    (1_000.0, 1.0, 12.5, 1_500.0, 0.1),
])
def test_single_short_closed_form(q, m, p0, equity, rate):
    mm0 = rate * q * m * p0
    out = run([(-q, m, p0, 0)], equity, mm0).iloc[0]
    # E - q m (P - P0) = r q m P  ->  P_liq = (E + q m P0) / (q m (1 + r))
    p_liq = (equity + q * m * p0) / (q * m * (1 + rate))
    assert out.liquidation_price == pytest.approx(p_liq, rel=1e-12)
    assert out.liq_move_dominant == pytest.approx(p_liq / p0 - 1, rel=1e-12)
    assert out.liq_move_dominant > 0
    assert out.liq_sigmas_dominant == pytest.approx(np.log(p_liq / p0) / SIGMA[0], rel=1e-12)


def test_long_that_survives_a_fall_to_zero_is_infinite():
    # Equity covers the whole notional: no price > 0 liquidates it.
    out = run([(1.0, 1.0, 100.0, 0)], 120.0, 5.0).iloc[0]
    assert out.liq_move_dominant == np.inf
    assert out.liq_sigmas_dominant == np.inf
    assert out.liquidation_price == np.inf


def test_already_below_or_at_maintenance_is_zero():
    for equity in (50.0, 100.0):  # below, at
        out = run([(1.0, 1.0, 1_000.0, 0), (-2.0, 1.0, 500.0, 1)], equity, 100.0).iloc[0]
        assert out.liq_move_dominant == 0.0 and out.liq_move_uniform == 0.0
        assert out.liq_sigmas_dominant == 0.0 and out.liq_sigmas_uniform == 0.0
        assert out.liquidation_price == np.inf  # two underlyings
    single = run([(1.0, 1.0, 1_000.0, 2)], 10.0, 50.0).iloc[0]
    assert single.liq_move_dominant == 0.0
    assert single.liquidation_price == 1_000.0


def test_hedged_to_zero_without_margin_growth_is_infinite():
    # Long spot and short perpetual on the same factor, D = 0, MM0 = 0: nothing moves the surplus.
    out = run([(3.0, 1.0, 200.0, 0), (-3.0, 1.0, 200.0, 0)], 50.0, 0.0).iloc[0]
    assert out.liq_move_dominant == np.inf and out.liq_move_uniform == np.inf
    assert out.liq_sigmas_dominant == np.inf and out.liq_sigmas_uniform == np.inf
    assert out.liquidation_price == np.inf
    # Two underlyings hedged to D = 0 exactly.
    out = run([(2.0, 1.0, 100.0, 0), (-4.0, 1.0, 50.0, 1)], 50.0, 0.0).iloc[0]
    assert out.liq_move_uniform == np.inf


def test_hedged_to_zero_is_liquidated_only_by_margin_growth():
    # D = 0 but MM(x) = MM0 (1 + x): only a uniform rise of (E - MM0) / MM0 reaches maintenance.
    out = run([(2.0, 1.0, 100.0, 0), (-4.0, 1.0, 50.0, 1)], 50.0, 20.0).iloc[0]
    assert out.liq_move_uniform == pytest.approx((50.0 - 20.0) / 20.0, rel=1e-12)
    assert out.liq_move_uniform > 0


def test_hedged_pair_is_further_than_either_leg():
    a = (5.0, 10.0, 100.0, 0)    # delta +5,000
    b = (-48.0, 1.0, 100.0, 1)   # delta -4,800
    equity, mm0 = 1_500.0, 0.05 * (5_000 + 4_800)
    pair = run([a, b], equity, mm0).iloc[0]
    for leg in (a, b):
        alone = run([leg], equity, mm0).iloc[0]
        assert abs(pair.liq_move_uniform) > abs(alone.liq_move_uniform)
        assert pair.liq_sigmas_uniform > alone.liq_sigmas_uniform * SIGMA[leg[3]] / SIGMA[0]
    assert pair.dominant_underlying == 0
    # Dominant leg alone moving: w = 5,000 / 9,800, D = 5,000.
    w = 5_000 / 9_800
    x = (mm0 - equity) / (5_000 - w * mm0)
    assert pair.liq_move_dominant == pytest.approx(x, rel=1e-12)
    assert pair.liq_sigmas_dominant == pytest.approx(abs(np.log1p(x)) / SIGMA[0], rel=1e-12)
    assert pair.liquidation_price == np.inf


def test_hedged_pair_with_equity_above_leg_notional():
    # Outside the property's regime: equity covers the long leg's notional, so the long alone
    # survives a fall to 0 (+inf), while the pair (D = 0) is liquidated by margin growth on a
    # uniform rise of (E - MM0) / MM0: hedging is not always further under MM(x) = MM0 (1 + x).
    a, b = (1.0, 1.0, 100.0, 0), (-1.0, 1.0, 100.0, 1)
    equity, mm0 = 100.0, 25.0
    assert run([a], equity, mm0).iloc[0].liq_move_uniform == np.inf
    pair = run([a, b], equity, mm0).iloc[0]
    assert pair.liq_move_uniform == pytest.approx(3.0, rel=1e-12)


@settings(max_examples=150, deadline=None)
@given(
    delta_a=st.floats(1.0, 1e7),
    ratio=st.floats(0.9, 1.1),
    rate=st.floats(0.001, 0.2),
    cushion=st.floats(1e-3, 0.999),
)
def test_hedged_pair_property(delta_a, ratio, rate, cushion):
    # Legs with deltas within 10%, MM0 <= 20% of gross, and an equity that leaves each leg alone
    # liquidatable (E < its notional): the pair is always further from liquidation.
    b = (-delta_a * ratio / 20.0, 1.0, 20.0, 1)
    a = (delta_a / 50.0, 1.0, 50.0, 0)
    mm0 = rate * delta_a * (1 + ratio)
    equity = mm0 + cushion * (delta_a * min(1.0, ratio) - mm0)
    pair = run([a, b], equity, mm0).iloc[0]
    for leg in (a, b):
        alone = run([leg], equity, mm0).iloc[0]
        assert abs(pair.liq_move_uniform) >= abs(alone.liq_move_uniform) * (1 - 1e-9)


def test_sets_in_csr_order_and_empty_set():
    q = np.array([1.0, -1.0, 2.0])
    out = liquidation_distance(
        np.array([0, 1, 1, 3]), q, np.ones(3), np.array([100.0, 100.0, 10.0]),
        np.array([0, 0, 2]), 3, np.array([50.0, 10.0, 60.0]), np.array([10.0, 0.0, 5.0]), SIGMA,
    )
    assert list(out.columns) == list(COLUMNS)
    assert out.dominant_underlying.tolist() == [0, -1, 0]
    assert out.liq_move_dominant.iloc[0] == pytest.approx((10 - 50) / (100 - 10), rel=1e-12)
    empty = out.iloc[1]
    assert empty.liq_move_uniform == np.inf and empty.liquidation_price == np.inf
    # Set 2: long 2 x 10 on factor 2 and short 1 x 100 on factor 0: dominant is factor 0.
    assert out.liq_move_uniform.iloc[2] == pytest.approx((5 - 60) / (20 - 100 - 5), rel=1e-12)
    assert not out.isna().any().any()


def test_no_sets():
    out = liquidation_distance(np.array([0]), *[np.zeros(0)] * 3, np.zeros(0, np.int64), 3,
                               np.zeros(0), np.zeros(0), SIGMA)
    assert out.shape == (0, len(COLUMNS))


@pytest.mark.parametrize("kw, msg", [
    ({"price": np.array([0.0])}, "price"),
    ({"maintenance_margin": np.array([-1.0])}, "maintenance_margin"),
    ({"factor_code": np.array([3])}, "factor_code"),
    ({"equity": np.array([np.nan])}, "equity"),
    ({"sigma_1d": np.array([0.0, 0.1, 0.1])}, "sigma_1d"),
])
def test_invalid_inputs(kw, msg):
    args = dict(indptr=np.array([0, 1]), quantity=np.array([1.0]), multiplier=np.array([1.0]),
                price=np.array([10.0]), factor_code=np.array([0]), n_factors=3,
                equity=np.array([5.0]), maintenance_margin=np.array([1.0]), sigma_1d=SIGMA)
    with pytest.raises(ValueError, match=msg):
        liquidation_distance(**{**args, **kw})


def test_inconsistent_factor_prices_rejected():
    with pytest.raises(ValueError, match="different prices"):
        run([(1.0, 1.0, 100.0, 0), (1.0, 1.0, 101.0, 0)], 50.0, 5.0)


@st.composite
def books(draw):
    n_factors = draw(st.integers(1, 4))
    sizes = draw(st.lists(st.integers(0, 5), min_size=0, max_size=6))
    n = sum(sizes)
    factor_price = np.array(draw(st.lists(st.floats(1e-4, 1e6), min_size=n_factors,
                                          max_size=n_factors)))
    factor = np.array(draw(st.lists(st.integers(0, n_factors - 1), min_size=n, max_size=n)),
                      dtype=np.int64)
    qty = st.one_of(st.just(0.0), st.floats(-1e6, 1e6))
    quantity = np.array(draw(st.lists(qty, min_size=n, max_size=n)), dtype=float)
    multiplier = np.array(draw(st.lists(st.floats(1e-3, 1e3), min_size=n, max_size=n)))
    equity = np.array(draw(st.lists(st.floats(-1e9, 1e9), min_size=len(sizes),
                                    max_size=len(sizes))), dtype=float)
    mm = np.array(draw(st.lists(st.floats(0.0, 1e9), min_size=len(sizes), max_size=len(sizes))),
                  dtype=float)
    sigma = np.array(draw(st.lists(st.floats(1e-4, 2.0), min_size=n_factors,
                                   max_size=n_factors)))
    indptr = np.concatenate([[0], np.cumsum(sizes, dtype=np.int64)])
    # Sometimes hedge each set to exactly zero delta on its first factor.
    if draw(st.booleans()) and n:
        quantity = np.where(np.arange(n) % 2 == 0, 1.0, -1.0) * np.abs(quantity[0])
        multiplier = np.ones(n)
    return (indptr, quantity, multiplier, factor_price[factor], factor, n_factors, equity, mm,
            sigma)


@settings(max_examples=300, deadline=None)
@given(books())
def test_no_nan_and_rules_hold(book):
    indptr, quantity, multiplier, price, factor, n_factors, equity, mm, sigma = book
    out = liquidation_distance(indptr, quantity, multiplier, price, factor, n_factors, equity,
                               mm, sigma)
    assert len(out) == len(indptr) - 1
    assert not out.isna().any().any()
    for col in ("liq_move_dominant", "liq_move_uniform"):
        x = out[col].to_numpy()
        assert np.all((x > -1) & (x != -np.inf))
        assert np.all(x[equity <= mm] == 0.0)
    for col in ("liq_sigmas_dominant", "liq_sigmas_uniform", "liquidation_price"):
        assert np.all(out[col].to_numpy() >= 0)
    # Where finite, the uniform move solves E + D x = MM0 (1 + x) (w = 1).
    exposure = quantity * multiplier * price
    set_of = np.repeat(np.arange(len(equity)), np.diff(indptr))
    d = np.bincount(set_of, weights=exposure, minlength=len(equity))
    gross = np.bincount(set_of, weights=np.abs(exposure), minlength=len(equity))
    x = out.liq_move_uniform.to_numpy()
    ok = np.isfinite(x) & (x != 0) & (np.abs(x) < 1e6)
    e, m, d, x, gross = equity[ok], mm[ok], d[ok], x[ok], gross[ok]
    resid = e + d * x - m * (1 + x)
    scale = np.abs(e) + m + (np.abs(d) + m) * np.abs(x) + gross
    assert np.all(np.abs(resid) <= 1e-9 * scale)
