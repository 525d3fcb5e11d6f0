"""Liquidity and concentration add-ons: hand-calculated series, shape of the charge, validation."""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from riskmodel.config import RateTable
from riskmodel.errors import UsageError
from riskmodel.margin.addons import (
    AddonConfigError,
    AddonPolicy,
    ThresholdTable,
    position_addons,
    set_addons,
)

POLICY = AddonPolicy(
    spreads=RateTable(default=0.0010, kind={"future": 0.0004}, underlying={"ALT": 0.0050}),
    concentration_threshold=ThresholdTable(
        default=1_000_000.0, kind={"future": 4_000_000.0}, underlying={"BTC": math.inf}
    ),
    concentration_rate=RateTable(default=0.02, underlying={"ALT": 0.05}),
    concentration_power=1.5,
)
KINDS = ["spot", "future", "spot", "perpetual", "future"]
UNDERLYINGS = ["ETH", "IDX", "ALT", "BTC", "ALT"]
NOTIONAL = np.array([4_000_000.0, 9_000_000.0, 250_000.0, 50_000_000.0, 4_000_000.0])


def test_hand_calculated_series():
    liq, conc = position_addons(NOTIONAL, KINDS, UNDERLYINGS, POLICY)
    # liquidity = spread / 2 x N; spread: underlying, then kind, then default
    # 0 ETH spot:   10 bp default  -> 0.0005 x 4,000,000  = 2,000
    # 1 IDX future:  4 bp kind     -> 0.0002 x 9,000,000  = 1,800
    # 2 ALT spot:   50 bp und.     -> 0.0025 x   250,000  =   625
    # 3 BTC perp:   10 bp default  -> 0.0005 x 50,000,000 = 25,000
    # 4 ALT future: 50 bp und. wins over kind -> 0.0025 x 4,000,000 = 10,000
    np.testing.assert_allclose(liq, [2_000.0, 1_800.0, 625.0, 25_000.0, 10_000.0], rtol=1e-12)
    # concentration = rate x T x ((N / T) ** 1.5 - 1) if N > T
    # 0 ETH spot:   T = 1e6 (default), rate 2%: 0.02 x 1e6 x (4 ** 1.5 - 1) = 20,000 x 7 = 140,000
    # 1 IDX future: T = 4e6 (kind), rate 2%: 0.02 x 4e6 x (2.25 ** 1.5 - 1)
    #               = 80,000 x (3.375 - 1) = 190,000
    # 2 ALT spot:   N = 250,000 <= T = 1e6 -> 0
    # 3 BTC perp:   T = inf (underlying) -> 0 however large
    # 4 ALT future: T = 4e6 (kind; no ALT threshold), N = T -> 0 at the threshold
    np.testing.assert_allclose(conc, [140_000.0, 190_000.0, 0.0, 0.0, 0.0], rtol=1e-12)


def test_set_totals():
    liq, conc = position_addons(NOTIONAL, KINDS, UNDERLYINGS, POLICY)
    # sets: {0, 1}, {} (empty), {2, 3, 4}
    totals = set_addons(liq, conc, np.array([0, 2, 2, 5]))
    # set 0: 2,000 + 1,800 + 140,000 + 190,000 = 333,800
    # set 2: 625 + 25,000 + 10,000 = 35,625
    np.testing.assert_allclose(totals, [333_800.0, 0.0, 35_625.0], rtol=1e-12)


def test_signed_notional_uses_absolute_value():
    a = position_addons(NOTIONAL, KINDS, UNDERLYINGS, POLICY)
    b = position_addons(-NOTIONAL, KINDS, UNDERLYINGS, POLICY)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])


def test_zero_below_and_at_threshold_positive_above():
    policy = AddonPolicy(concentration_threshold=ThresholdTable(default=1_000.0),
                         concentration_rate=RateTable(default=0.1))
    n = np.array([0.0, 500.0, 999.999, 1_000.0, 1_000.001, 2_000.0])
    _, conc = position_addons(n, ["spot"] * 6, ["X"] * 6, policy)
    assert np.all(conc[:4] == 0.0)
    assert np.all(conc[4:] > 0.0)
    # continuity: just above T the charge is ~ rate x power x (N - T) = 0.1 x 1.5 x 0.001
    assert conc[4] == pytest.approx(0.1 * 1.5 * 0.001, rel=1e-5)


def test_defaults_charge_nothing():
    liq, conc = position_addons(NOTIONAL, KINDS, UNDERLYINGS, AddonPolicy())
    assert not liq.any() and not conc.any()


def test_empty_book():
    liq, conc = position_addons(np.zeros(0), [], [], POLICY)
    assert liq.shape == conc.shape == (0,)
    np.testing.assert_array_equal(set_addons(liq, conc, np.array([0, 0])), [0.0])


@settings(max_examples=60, deadline=None)
@given(
    threshold=st.floats(1.0, 1e9),
    ratio=st.floats(1.0001, 1e3),
    rate=st.floats(1e-4, 10.0),
    power=st.floats(1.01, 3.0),
)
def test_doubling_beyond_threshold_more_than_doubles(threshold, ratio, rate, power):
    policy = AddonPolicy(concentration_threshold=ThresholdTable(default=threshold),
                         concentration_rate=RateTable(default=rate), concentration_power=power)
    n = np.array([ratio * threshold, 2 * ratio * threshold, 1.5 * ratio * threshold])
    _, conc = position_addons(n, ["spot"] * 3, ["X"] * 3, policy)
    assert conc[1] > 2 * conc[0] > 0
    # convexity (midpoint): f(1.5 N) <= (f(N) + f(2 N)) / 2
    assert conc[2] <= 0.5 * (conc[0] + conc[1]) * (1 + 1e-12)


def test_convex_on_a_grid_through_the_threshold():
    policy = AddonPolicy(concentration_threshold=ThresholdTable(default=100.0),
                         concentration_rate=RateTable(default=0.3), concentration_power=1.5)
    n = np.linspace(0.0, 1_000.0, 2_001)
    _, conc = position_addons(n, ["spot"] * n.size, ["X"] * n.size, policy)
    assert np.all(np.diff(conc) >= 0.0)  # non-decreasing
    assert np.all(np.diff(conc, 2) >= -1e-9)  # second differences >= 0: convex


def test_adv_threshold_overrides_table():
    policy = AddonPolicy(
        concentration_threshold=ThresholdTable(default=1_000_000.0, underlying={"ETH": 5e6}),
        concentration_rate=RateTable(default=0.02),
        concentration_power=2.0,
        threshold_adv_multiple=0.1,
    )
    n = np.array([3_000_000.0, 3_000_000.0, 3_000_000.0])
    adv = {"BTC": 10_000_000.0, "ETH": 20_000_000.0}
    _, conc = position_addons(n, ["spot"] * 3, ["BTC", "ETH", "SOL"], policy, adv)
    # BTC: T = 0.1 x 10e6 = 1e6: 0.02 x 1e6 x (3 ** 2 - 1) = 20,000 x 8 = 160,000
    # ETH: T = 0.1 x 20e6 = 2e6 (ADV wins over the 5e6 entry): 0.02 x 2e6 x (1.5 ** 2 - 1)
    #      = 40,000 x 1.25 = 50,000
    # SOL: no ADV -> table default T = 1e6: 160,000
    np.testing.assert_allclose(conc, [160_000.0, 50_000.0, 160_000.0], rtol=1e-12)
    # without threshold_adv_multiple the ADV is ignored: ETH T = 5e6 > N -> 0
    plain = AddonPolicy(concentration_threshold=policy.concentration_threshold,
                        concentration_rate=policy.concentration_rate, concentration_power=2.0)
    _, conc = position_addons(n, ["spot"] * 3, ["BTC", "ETH", "SOL"], plain, adv)
    np.testing.assert_allclose(conc, [160_000.0, 0.0, 160_000.0], rtol=1e-12)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"spreads": RateTable(default=-0.001)}, "addons.spreads.default"),
        ({"spreads": RateTable(default=0.0, kind={"swap": 0.1})}, "addons.spreads.kind.swap"),
        ({"concentration_rate": RateTable(default=0.0, underlying={"BTC": 11.0})},
         "addons.concentration_rate.underlying.BTC"),
        ({"concentration_threshold": ThresholdTable(default=0.0)},
         "addons.concentration_threshold.default"),
        ({"concentration_threshold": ThresholdTable(kind={"future": -5.0})},
         "addons.concentration_threshold.kind.future"),
        ({"concentration_threshold": ThresholdTable(underlying={"ETH": math.nan})},
         "addons.concentration_threshold.underlying.ETH"),
        ({"concentration_threshold": RateTable(default=1.0)},
         "addons.concentration_threshold"),
        ({"concentration_power": 1.0}, "addons.concentration_power = 1.0"),
        ({"concentration_power": math.inf}, "addons.concentration_power = inf"),
        ({"threshold_adv_multiple": 0.0}, "addons.threshold_adv_multiple = 0.0"),
        ({"threshold_adv_multiple": -1.0}, "addons.threshold_adv_multiple = -1.0"),
    ],
)
def test_validation_names_field_and_value(kwargs, field):
    with pytest.raises(ValueError, match=field.replace(".", r"\.")) as info:
        AddonPolicy(**kwargs)
    assert isinstance(info.value, UsageError)  # exit code 2 through the CLI


def test_input_errors():
    with pytest.raises(ValueError, match="kinds"):
        position_addons(np.ones(2), ["spot"], ["X", "Y"], POLICY)
    with pytest.raises(ValueError, match=r"notional_abs\[1\] = nan"):
        position_addons(np.array([1.0, np.nan]), ["spot"] * 2, ["X"] * 2, POLICY)
    adv_policy = AddonPolicy(threshold_adv_multiple=0.1)
    with pytest.raises(ValueError, match=r"adv_by_underlying\['X'\] = 0\.0"):
        position_addons(np.ones(1), ["spot"], ["X"], adv_policy, {"X": 0.0})
    with pytest.raises(AddonConfigError, match="indptr"):
        set_addons(np.ones(3), np.ones(3), np.array([0, 2]))
    with pytest.raises(AddonConfigError, match="shape"):
        set_addons(np.ones(3), np.ones(2), np.array([0, 3]))
