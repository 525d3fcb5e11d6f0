"""Tiered rates: continuous at every bracket edge, equal to the bracket-by-bracket sum, and
applied by the engine to the floors (every method) and to collateral held (every method)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from grid_inputs import grid_market, instrument_frame

from riskmodel.config import RunConfig, TierTable, config_from_mapping
from riskmodel.engine import margin_book
from riskmodel.errors import UsageError
from riskmodel.margin.policy import policy_columns
from riskmodel.margin.tiers import deductions, tiered
from riskmodel.portfolio.netting import net_positions

# a venue-style risk-limit table: 0.5% up to 1m of notional, then 1%, 2.5%, 5%
MAINTENANCE = TierTable((0.0, 1e6, 5e6, 2e7), (0.005, 0.01, 0.025, 0.05))
COLLATERAL = TierTable((0.0, 10.0, 50.0), (1.0, 0.8, 0.5))


def _by_brackets(amount: float, table: TierTable) -> float:
    """Brute force: each bracket's rate on the part of the amount inside it."""
    edges = [*table.bounds, np.inf]
    return sum(r * max(0.0, min(amount, hi) - lo)
               for lo, hi, r in zip(edges[:-1], edges[1:], table.rates))


@pytest.mark.parametrize("table", [MAINTENANCE, COLLATERAL])
def test_continuous_at_every_bracket_edge(table):
    for k, bound in enumerate(table.bounds[1:], start=1):
        below = bound * table.rates[k - 1] - deductions(table)[k - 1]  # the lower bracket's line
        assert tiered(np.array([bound]), table)[0] == pytest.approx(below, rel=1e-15)
        eps = bound * 1e-9
        left, right = tiered(np.array([bound - eps, bound + eps]), table)
        assert right - left == pytest.approx(
            eps * (table.rates[k - 1] + table.rates[k]), rel=1e-6)


@pytest.mark.parametrize("table", [MAINTENANCE, COLLATERAL])
def test_equals_the_bracket_by_bracket_sum(table):
    amounts = np.concatenate([table.bounds, np.geomspace(1e-3, 1e8, 60)])
    np.testing.assert_allclose(tiered(amounts, table),
                               [_by_brackets(a, table) for a in amounts], rtol=1e-12)


def test_floors_use_the_tiers_of_their_underlying():
    notional = np.array([3e6, 3e6, 2.5e7])
    under = pd.Categorical(["BTC", "ETH", "BTC"])
    kinds = pd.Categorical(["perpetual"] * 3)
    config = config_from_mapping({"tiers": {"maintenance": {"BTC": {
        "notional": list(MAINTENANCE.bounds), "rate": list(MAINTENANCE.rates)}}}})
    cols = policy_columns(np.zeros(2), np.zeros(2), notional, kinds, under,
                          np.array([0, 2, 3]), np.zeros(2), config.margin, tiers=config.tiers)
    # BTC 3m: 1m x 0.5% + 2m x 1% = 25,000; ETH flat 1% = 30,000; BTC 25m by brackets
    assert cols["maintenance_floor"][0] == pytest.approx(25_000 + 30_000)
    assert cols["maintenance_floor"][1] == pytest.approx(_by_brackets(2.5e7, MAINTENANCE))
    assert (cols["initial_margin"] >= cols["maintenance_floor"]).all()


@pytest.mark.parametrize("method", ["hs", "grid"])
def test_collateral_counted_at_tiered_rates(method):
    """15 coins at 100 with rates 1.0 up to 10 coins, 0.8 beyond: 1,400 counted, not 1,500."""
    marks = {"ETH": 100.0}
    inst = instrument_frame([("collateral:ETH", "collateral", "ETH", 1.0, np.nan, pd.NaT, "",
                              np.nan, 0.0, "")], marks)
    tiers = {"collateral": {"ETH": {"amount": [0.0, 10.0], "rate": [1.0, 0.8]}}}
    base = {"method": method, "horizon": 1, "lookback": 10, "min_history": 5,
            "volatility": {"model": "ewma"}}
    as_of = pd.Timestamp("2024-03-01")
    out = {}
    for name, raw in (("flat", base), ("tiered", {**base, "tiers": tiers})):
        config = config_from_mapping(raw)
        market = grid_market(marks, inst, config, as_of)
        book = net_positions(pd.DataFrame({"account_id": ["A"], "netting_set": ["default"],
                                           "instrument_id": ["collateral:ETH"],
                                           "quantity": [15.0]}), market.axis)
        result = margin_book(market, book, config, collateral=np.array([2000.0]))
        out[name] = result.margins.iloc[0]
    assert out["flat"]["equity"] == 2000.0
    assert out["tiered"]["equity"] == pytest.approx(2000.0 - 100.0)
    assert out["tiered"]["initial_margin"] == out["flat"]["initial_margin"]


def test_bad_tier_tables_are_usage_errors():
    for bad, message in (
        ({"maintenance": {"BTC": {"notional": [0, 1e6], "rate": [0.02, 0.01]}}}, "only rise"),
        ({"maintenance": {"BTC": {"notional": [1, 2], "rate": [0.01, 0.02]}}}, "must be 0"),
        ({"collateral": {"ETH": {"amount": [0, 5], "rate": [0.8, 0.9]}}}, "only fall"),
        ({"initial": {"BTC": {"notional": [0], "rate": [0.01], "cap": 3}}}, "unknown key"),
        ({"initial": {"BTC": {"notional": [0, 1], "rate": [0.01]}}}, "2 bounds for 1 rates"),
    ):
        with pytest.raises(UsageError, match=message):
            config_from_mapping({"tiers": bad})
    assert RunConfig().tiers.maintenance == {}
