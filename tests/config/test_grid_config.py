"""``[grid]``: the shipped profile, overrides, explicit scenarios and every refusal (exit 2,
naming the key)."""

from __future__ import annotations

import dataclasses

import pytest

from riskmodel.config import GridConfig, RunConfig, config_from_mapping
from riskmodel.errors import UsageError
from riskmodel.scenarios.grid import grid_scenarios


def test_the_shipped_profile_is_the_default_grid():
    loaded = config_from_mapping({"grid": {"profile": "derive_like"}}).grid
    assert dataclasses.replace(loaded, profile="") == GridConfig()
    scan = grid_scenarios(loaded)
    # 9 moves x (up, down), 7 extended moves, 2 skew rotations
    assert scan.n == 9 * 2 + 7 + 2
    assert scan.shock[0] == pytest.approx(1.16) and scan.shock[16] == pytest.approx(0.84)
    assert scan.dampening[18] == pytest.approx(0.16 / (5 * 0.66))  # -66%
    assert scan.dampening[-3] == pytest.approx(0.16 / 25)  # +500%
    assert list(scan.labels[[0, 1, 18, 25]]) == ["+16% vol up", "+16% vol down",
                                                 "-66% vol up x0.04848", "skew linear"]


def test_section_keys_override_the_profile(tmp_path):
    own = tmp_path / "venue.toml"
    own.write_text('[grid]\nspot_range = 0.2\nim_loss_factor = 1.3\n')
    grid = config_from_mapping({"grid": {"profile": str(own), "im_loss_factor": 1.5}}).grid
    assert (grid.spot_range, grid.im_loss_factor, grid.mm_loss_factor) == (0.2, 1.5, 0.8)


def test_explicit_scenarios_and_collateral():
    grid = config_from_mapping({"grid": {
        "scenarios": [{"move": -0.2, "vol": "up"}, {"move": 0.0, "vol": "abs"},
                      {"move": 2.0, "vol": "up", "dampening": 0.02}],
        "collateral": {"wBTC": {"mm_haircut": 0.02, "underlying": "BTC",
                                "risk_cancelling": True}},
        "confidence": {"BTC": 0.9}}}).grid
    scan = grid_scenarios(grid)
    assert list(scan.kind) == ["regular", "skew", "extended"]
    assert grid.collateral["wBTC"].risk_cancelling and grid.confidence == {"BTC": 0.9}


@pytest.mark.parametrize("raw, message", [
    ({"grid": {"spot_rnage": 0.1}}, "unknown key grid.spot_rnage"),
    ({"grid": {"spot_range": 1.5}}, "grid.spot_range = 1.5"),
    ({"grid": {"spot_steps": 8}}, "grid.spot_steps = 8 must be odd"),
    ({"grid": {"vol_shocks": ["sideways"]}}, "grid.vol_shocks"),
    ({"grid": {"profile": "no_such_venue"}}, "no such profile"),
    ({"grid": {"scenarios": [{"move": 0.1, "vol": "linear"}]}}, "moves no price"),
    ({"grid": {"scenarios": [{"vol": "up"}]}}, "needs a move"),
    ({"grid": {"collateral": {"X": {"im_haircut": 0.7, "mm_haircut": 0.5}}}}, "must be <= 1"),
    ({"grid": {"collateral": {"X": {"risk_cancelling": True}}}}, "needs the underlying"),
    ({"grid": {"confidence": {"BTC": 1.2}}}, "grid.confidence.BTC = 1.2"),
    ({"method": "grid", "anti_procyclicality": {"tools": ["floor"]}}, "takes no"),
])
def test_refusals_name_the_key(raw, message):
    with pytest.raises(UsageError, match=message):
        config_from_mapping(raw)


def test_grid_is_a_method():
    assert RunConfig(method="grid").method == "grid"
    assert config_from_mapping({}, {"method": "grid"}).method == "grid"
