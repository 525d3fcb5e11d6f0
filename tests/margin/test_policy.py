"""Margin policy: hand-calculated cases and properties (margin >= floors, status order)."""

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from riskmodel.config import MarginPolicy, RateTable
from riskmodel.margin.policy import apply_policy

POLICY = MarginPolicy(
    mm_ratio=0.75,
    warning_multiple=1.2,
    maintenance_rates=RateTable(default=0.01, kind={"future": 0.02}, underlying={"OIL": 0.05}),
    initial_floor_rates=RateTable(default=0.015),
    flat_rates=RateTable(default=0.10),
)


def test_hand_calculated_netting_set():
    # One set: a future on IDX (notional 100,000) and a spot on OIL (notional 50,000).
    notional = np.array([100_000.0, 50_000.0])
    out = apply_policy(
        model_margin=np.array([6_000.0]), addons=np.array([0.0]), notional=notional,
        kinds=["future", "spot"], underlyings=["IDX", "OIL"], indptr=np.array([0, 2]),
        equity=np.array([6_500.0]), policy=POLICY,
    ).iloc[0]
    # maintenance floor: 100,000 x 2% (kind) + 50,000 x 5% (underlying wins) = 4,500
    assert out.maintenance_floor == 4_500.0
    # initial floor 150,000 x 1.5% = 2,250 < 6,000 -> IM = 6,000; MM = max(4,500, 4,500)
    assert out.initial_margin == 6_000.0
    assert out.maintenance_margin == 4_500.0
    assert out.flat_rate_margin == 15_000.0
    # equity 6,500 >= IM 6,000 but < 1.2 x IM = 7,200 -> warning
    assert out.status == "warning"
    assert out.call_amount == 0.0
    assert out.margin_level == 6_500.0 / 4_500.0


def test_status_thresholds():
    kw = dict(addons=np.zeros(4), notional=np.full(4, 1_000.0), kinds=["spot"] * 4,
              underlyings=["X"] * 4, indptr=np.arange(5), policy=POLICY)
    out = apply_policy(model_margin=np.full(4, 100.0),
                       equity=np.array([74.9, 75.0, 100.0, 120.0]), **kw)
    # IM = 100, MM = max(75, 10) = 75
    assert list(out.status) == ["liquidation", "margin_call", "warning", "ok"]
    np.testing.assert_allclose(out.call_amount, [25.1, 25.0, 0.0, 0.0])


def test_floor_binds_for_hedged_book():
    out = apply_policy(
        model_margin=np.array([10.0]), addons=np.zeros(1), notional=np.array([1e6, 1e6]),
        kinds=["spot", "spot"], underlyings=["A", "B"], indptr=np.array([0, 2]),
        equity=np.array([1e5]), policy=POLICY,
    ).iloc[0]
    # the initial floor binds (30,000 > 10); MM = max(0.75 x 30,000, 1% floor 20,000)
    assert out.initial_margin == 2e6 * 0.015
    assert out.maintenance_margin == 0.75 * 30_000


def test_maintenance_floor_binds_and_lifts_initial_margin():
    policy = MarginPolicy(initial_floor_rates=RateTable(default=0.0),
                          maintenance_rates=RateTable(default=0.01))
    out = apply_policy(
        model_margin=np.array([1_000.0]), addons=np.zeros(1), notional=np.array([1e6]),
        kinds=["spot"], underlyings=["A"], indptr=np.array([0, 1]),
        equity=np.array([5_000.0]), policy=policy,
    ).iloc[0]
    # the maintenance floor (10,000) lifts IM too, so IM is never below MM
    assert out.initial_margin == 10_000.0
    assert out.maintenance_margin == 10_000.0
    assert out.status == "liquidation"


@given(
    model=st.lists(st.floats(0, 1e9), min_size=1, max_size=20),
    equity=st.floats(-1e9, 1e10),
    notional=st.floats(1e-3, 1e9),
)
@settings(max_examples=200, deadline=None)
def test_margins_respect_floors_and_status_order(model, equity, notional):
    n = len(model)
    out = apply_policy(
        model_margin=np.array(model), addons=np.zeros(n), notional=np.full(n, notional),
        kinds=["spot"] * n, underlyings=["X"] * n, indptr=np.arange(n + 1),
        equity=np.full(n, equity), policy=POLICY,
    )
    assert (out.initial_margin >= out.model_margin).all()
    assert (out.initial_margin >= notional * 0.015 * (1 - 1e-12)).all()
    assert (out.maintenance_margin >= out.maintenance_floor).all()
    assert (out.maintenance_margin <= out.initial_margin + 1e-9 * out.initial_margin).all()
    assert (out.maintenance_margin > 0).all()
    assert np.isfinite(out.margin_level).all()
    assert (out.call_amount >= 0).all()
    liq = out.status == "liquidation"
    assert (out.equity[liq] < out.maintenance_margin[liq]).all()
    ok = out.status == "ok"
    assert (out.equity[ok] >= 1.2 * out.initial_margin[ok]).all()
