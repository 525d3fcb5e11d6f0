"""Configuration: documented defaults, TOML loading, overrides, validation messages."""

from pathlib import Path

import pytest

from riskmodel.config import RunConfig, config_from_mapping, load_config
from riskmodel.errors import UsageError

EXAMPLE = Path(__file__).resolve().parents[2] / "data" / "run.example.toml"


def test_example_toml_documents_the_defaults():
    """data/run.example.toml lists the defaults: loading it must give RunConfig()."""
    assert load_config(EXAMPLE) == RunConfig()


def test_flags_override_toml(tmp_path):
    p = tmp_path / "run.toml"
    p.write_text('confidence = 0.975\nhorizon = 5\n[margin]\nmm_ratio = 0.5\n')
    c = load_config(p, {"confidence": 0.995, "horizon": None})
    assert c.confidence == 0.995 and c.horizon == 5 and c.margin.mm_ratio == 0.5


def test_rate_tables_resolve_underlying_then_kind_then_default():
    c = config_from_mapping({"margin": {"flat_rates": {
        "default": 0.1, "kind": {"future": 0.05}, "underlying": {"BTC": 0.3}}}})
    t = c.margin.flat_rates
    assert t.rate("future", "BTC") == 0.3
    assert t.rate("future", "SPX") == 0.05
    assert t.rate("spot", "SPX") == 0.1


@pytest.mark.parametrize(
    "raw, words",
    [
        ({"confidence": 1.0}, ["confidence", "1.0"]),
        ({"confidence": "high"}, ["confidence", "high"]),
        ({"horizon": 0}, ["horizon", "0"]),
        ({"horizon": 2.5}, ["horizon", "2.5"]),
        ({"horizon": 600, "lookback": 500}, ["horizon"]),
        ({"method": "magic"}, ["method", "magic"]),
        ({"colour": "blue"}, ["colour"]),
        ({"margin": {"mm_ratio": 1.5}}, ["margin.mm_ratio", "1.5"]),
        ({"margin": {"maintenance_rates": {"default": 0.0}}}, ["maintenance_rates.default"]),
        ({"margin": {"flat_rates": {"kind": {"swap": 0.1}}}}, ["swap"]),
        ({"volatility": {"ewma_lambda": 1.0}}, ["ewma_lambda", "1.0"]),
        ({"returns": {"assets": {"WTI": "percent"}}}, ["returns.assets.WTI", "percent"]),
    ],
)
def test_bad_values_name_key_and_value(raw, words):
    with pytest.raises(UsageError) as err:
        config_from_mapping(raw)
    assert err.value.exit_code == 2
    for w in words:
        assert w in str(err.value)


def test_config_digest_changes_with_values():
    assert RunConfig().digest() != RunConfig(confidence=0.975).digest()
    assert RunConfig().digest() == RunConfig().digest()


def test_addons_and_horizons_sections():
    c = config_from_mapping({
        "horizon": 2,
        "horizons": {"kind": {"perpetual": 1, "option": 5}},
        "addons": {"spreads": {"default": 0.001}, "concentration_threshold": {"default": 1e6},
                   "concentration_rate": {"default": 0.02}, "adv": {"BTC": 5e9}},
    })
    assert c.horizon_of_kind("perpetual") == 1 and c.horizon_of_kind("future") == 2
    assert c.addons.spreads.rate("spot", "X") == 0.001
    assert c.addons.concentration_threshold.rate("spot", "X") == 1e6
    assert c.addon_adv == {"BTC": 5e9}
    with pytest.raises(UsageError, match="horizons.kind.swap|swap"):
        config_from_mapping({"horizons": {"kind": {"swap": 1}}})
    with pytest.raises(UsageError, match="concentration_power"):
        config_from_mapping({"addons": {"concentration_power": 1.0}})
