"""EMIR Article 28 tools against hand-calculated series."""

import numpy as np
import pytest

from riskmodel.config import ProcyclicalityConfig, config_from_mapping
from riskmodel.errors import UsageError
from riskmodel.margin.procyclicality import buffer_margin, floored_margin
from riskmodel.measures import var_es
from riskmodel.scenarios.scenario_set import ScenarioSet
from riskmodel.scenarios.stressed import with_stressed_observations


def test_buffer_series_is_released_only_when_the_trigger_fires():
    # A model-margin path over six days; trigger: a rise of more than 50% since the day before.
    model = np.array([100.0, 110.0, 180.0, 190.0, 120.0, 200.0])
    expected_margin = [125.0, 137.5, 180.0, 237.5, 150.0, 200.0]
    expected_release = [False, False, True, False, False, True]
    previous = None
    for day, m in enumerate(model):
        margin, released = buffer_margin(np.array([m]), 0.25,
                                         None if previous is None else np.array([previous]), 0.5)
        assert margin[0] == expected_margin[day], day
        assert bool(released[0]) is expected_release[day], day
        previous = m


def test_buffer_applies_to_new_sets():
    margin, released = buffer_margin(np.array([10.0, 10.0]), 0.3, np.array([np.nan, 4.0]), 0.5)
    np.testing.assert_array_equal(margin, [13.0, 10.0])
    np.testing.assert_array_equal(released, [False, True])


def test_stressed_observations_carry_their_weight():
    normal = ScenarioSet(np.arange(8.0).reshape(4, 2), ("A", "B"), np.array(list("abcd")),
                         "hs", 1)
    stressed = ScenarioSet(np.array([[-5.0, -6.0], [-7.0, -1.0]]), ("A", "B"),
                           np.array(["s1", "s2"]), "stress-historical", 1)
    combined = with_stressed_observations(normal, stressed, 0.25)
    np.testing.assert_allclose(combined.weights, [0.1875] * 4 + [0.125] * 2)
    assert combined.n_scenarios == 6 and combined.weights.sum() == pytest.approx(1.0)
    # Weighted VaR of a long position in A: losses 0,-2,-4,-6 (normal) and 5, 7 (stressed).
    # P(L <= 0) = 0.75, P(L <= 5) = 0.875, P(L <= 7) = 1: the 80% VaR is 5, by hand.
    losses = -combined.shocks[:, 0]
    var, es = var_es(losses, 0.8, combined.weights)
    assert var == 5.0
    # ES(80%) = (0.125 x 7 + 5 x (0.875 - 0.8)) / 0.2 = 6.25
    assert es == pytest.approx(6.25, rel=1e-12)


def test_floor_binds_where_the_long_lookback_is_higher():
    margin, bound = floored_margin(np.array([10.0, 30.0]), np.array([12.0, 20.0]))
    np.testing.assert_array_equal(margin, [12.0, 30.0])
    np.testing.assert_array_equal(bound, [True, False])


def test_config_enforces_emir_minimums():
    assert config_from_mapping({"anti_procyclicality": {"tools": ["floor"]}}) \
        .anti_procyclicality.tools == ("floor",)
    with pytest.raises(UsageError, match="at least 25%"):
        ProcyclicalityConfig(buffer=0.2)
    with pytest.raises(UsageError, match="tools"):
        ProcyclicalityConfig(tools=("magic",))
