"""The demo end to end: outputs exactly as DESIGN.md lists them, internally consistent."""

import json

import numpy as np
import pandas as pd
import pytest

from riskmodel.cli import main

MARGIN_COLUMNS = [
    "account_id", "netting_set", "n_positions", "gross_notional", "var", "es", "model_margin",
    "addons", "initial_margin", "maintenance_floor", "maintenance_margin", "flat_rate_margin",
    "equity", "margin_level", "status", "call_amount",
]
ATTRIBUTION_COLUMNS = [
    "account_id", "netting_set", "instrument_id", "quantity", "market_value", "notional",
    "contribution",
]


@pytest.fixture(scope="module")
def demo_out(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo") / "run"
    assert main(["demo", "--out", str(out), "--accounts", "120", "--quiet"]) == 0
    return out


def test_demo_writes_every_output(demo_out):
    for name in ("margins.parquet", "margins.csv", "attribution.parquet", "factors.csv",
                 "manifest.json", "inputs/prices.csv", "inputs/instruments.csv",
                 "inputs/positions.csv", "inputs/accounts.csv", "inputs/run.toml"):
        assert (demo_out / name).is_file(), name
    assert not list(demo_out.parent.glob(".*staging*"))


def test_demo_margins_are_consistent(demo_out):
    m = pd.read_parquet(demo_out / "margins.parquet")
    # DESIGN.md's columns, in order, then the stress columns this version adds
    assert list(m.columns) == MARGIN_COLUMNS + [
        "stress_loss", "stress_scenario", "dominant_underlying", "liq_move_dominant",
        "liq_move_uniform", "liq_sigmas_dominant", "liq_sigmas_uniform", "liquidation_price",
        "liquidation_penalty"]
    assert (m["stress_loss"] >= 0).all()
    assert len(m) > 120  # some accounts hold an isolated netting set too
    numeric = m.select_dtypes("number")
    assert not np.isnan(numeric.to_numpy()).any()
    distance = [c for c in numeric.columns if c.startswith("liq")]
    assert np.isfinite(numeric.drop(columns=distance).to_numpy()).all()
    assert set(m["status"]) <= {"ok", "warning", "margin_call", "liquidation"}
    assert {"ok", "liquidation"} <= set(m["status"])  # the demo has under-collateralised books
    np.testing.assert_allclose(m["margin_level"], m["equity"] / m["maintenance_margin"])
    assert (m["es"] >= m["var"] - 1e-9 * m["var"].abs()).all()
    assert (m["initial_margin"] >= m["model_margin"]).all()
    assert (m["maintenance_margin"] >= m["maintenance_floor"]).all()
    assert (m["initial_margin"] >= m["maintenance_margin"]).all()
    np.testing.assert_allclose(m["call_amount"],
                               np.maximum(0, m["initial_margin"] - m["equity"]))
    csv = pd.read_csv(demo_out / "margins.csv", keep_default_na=False)
    np.testing.assert_allclose(csv["initial_margin"], m["initial_margin"], rtol=1e-15)


def test_demo_attribution_sums_to_model_margin(demo_out):
    m = pd.read_parquet(demo_out / "margins.parquet")
    a = pd.read_parquet(demo_out / "attribution.parquet")
    # DESIGN.md's columns, then each position's add-ons broken out
    assert list(a.columns) == ATTRIBUTION_COLUMNS + ["liquidity_addon", "concentration_addon",
                                                    "delta", "gamma", "vega"]
    addons = a.groupby(["account_id", "netting_set"])[["liquidity_addon",
                                                       "concentration_addon"]].sum().sum(axis=1)
    sums = a.groupby(["account_id", "netting_set"])["contribution"].sum()
    per_set = m.set_index(["account_id", "netting_set"])
    np.testing.assert_allclose(sums.loc[per_set.index], per_set["model_margin"],
                               rtol=1e-9, atol=1e-6)
    np.testing.assert_allclose(addons.loc[per_set.index], per_set["addons"], rtol=1e-12)
    counts = a.groupby(["account_id", "netting_set"]).size()
    np.testing.assert_array_equal(counts.loc[per_set.index], per_set["n_positions"])
    np.testing.assert_allclose(
        a.groupby(["account_id", "netting_set"])["notional"].sum().loc[per_set.index],
        per_set["gross_notional"], rtol=1e-12,
    )


def test_demo_manifest_and_factors(demo_out):
    manifest = json.loads((demo_out / "manifest.json").read_text())
    for key in ("riskmodel_version", "market_date", "config", "config_sha256", "inputs",
                "parameter_set", "seed", "counts", "totals", "timings_s", "warnings"):
        assert key in manifest
    assert manifest["market_date"].startswith("2018-12-31")
    assert set(manifest["inputs"]) == {"prices", "instruments", "positions", "accounts"}
    for entry in manifest["inputs"].values():
        assert len(entry["sha256"]) == 64
    m = pd.read_parquet(demo_out / "margins.parquet")
    assert sum(manifest["counts"]["by_status"].values()) == len(m)
    eff = manifest["capital_efficiency"]
    np.testing.assert_allclose(eff["im_over_flat"],
                               m["initial_margin"].sum() / m["flat_rate_margin"].sum())
    ok = m[m["status"] == "ok"]
    np.testing.assert_allclose(eff["by_status"]["ok"]["initial_margin"], ok["initial_margin"].sum())
    assert eff["by_status"]["ok"]["netting_sets"] == len(ok)
    factors = pd.read_csv(demo_out / "factors.csv")
    assert list(factors.columns) == ["asset", "price", "vol_model", "sigma_1d"]
    assert set(factors["asset"]) == {"SPX", "NASDAQ", "WTI", "VIX"}  # VIX: the options
    assert (factors["sigma_1d"] > 0).all()


def test_rerun_on_written_inputs_reproduces_the_demo(demo_out, tmp_path):
    i = demo_out / "inputs"
    rc = main(["eod", "--prices", str(i / "prices.csv"), "--instruments",
               str(i / "instruments.csv"), "--positions", str(i / "positions.csv"),
               "--accounts", str(i / "accounts.csv"), "--config", str(i / "run.toml"),
               "--out", str(tmp_path / "rerun"), "--quiet"])
    assert rc == 0
    pd.testing.assert_frame_equal(pd.read_parquet(demo_out / "margins.parquet"),
                                  pd.read_parquet(tmp_path / "rerun" / "margins.parquet"))
