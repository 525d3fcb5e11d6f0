"""`riskmodel calibrate` then `riskmodel eod --params`: daily filtering without refits."""

import datetime as dt
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from riskmodel.cli import main
from riskmodel.demo import write_demo_inputs

SHARED_CLOSES = Path(__file__).resolve().parents[2].parent / "shared" / "data" / \
    "crypto_daily_close.csv"


@pytest.fixture(scope="module")
def demo_inputs(tmp_path_factory):
    return write_demo_inputs(tmp_path_factory.mktemp("inputs"), n_accounts=40)


def _eod(inputs, out, *extra):
    return main(["eod", "--prices", str(inputs.prices), "--instruments", str(inputs.instruments),
                 "--positions", str(inputs.positions), "--accounts", str(inputs.accounts),
                 "--config", str(inputs.config), "--out", str(out), "--quiet", *extra])


def test_calibrate_then_eod_with_params(demo_inputs, tmp_path, capsys):
    params = tmp_path / "params.json"
    rc = main(["calibrate", "--prices", str(demo_inputs.prices), "--out", str(params),
               "--config", str(demo_inputs.config), "--model", "auto", "--dist", "t",
               "--end", "2018-06-29", "--jobs", "2", "--report", str(tmp_path / "report")])
    assert rc == 0, capsys.readouterr().err
    raw = json.loads(params.read_text())
    assert set(raw["factors"]) == {"SPX", "NASDAQ", "WTI", "VIX"}
    assert raw["data"]["end"].startswith("2018-06-29")
    assert (tmp_path / "report" / "report.html").is_file()
    # eod at 2018-12-31 filters the six months after the calibration forward, no refit
    assert _eod(demo_inputs, tmp_path / "with", "--params", str(params)) == 0
    manifest = json.loads((tmp_path / "with" / "manifest.json").read_text())
    assert manifest["parameter_set"]["id"].startswith("sha256:")
    for factor, entry in manifest["volatility"].items():
        assert entry["model"] == raw["factors"][factor]["model"]
        assert entry["filter_start"].startswith("calibration sample")
    factors = pd.read_csv(tmp_path / "with" / "factors.csv").set_index("asset")
    assert (factors["sigma_1d"] > 0).all()


def test_parameter_set_age_counts_from_its_data_not_from_the_file(demo_inputs, tmp_path):
    # estimated on data ending 2018-06-29, used as of 2018-12-31: 185 days, beyond the 35 of
    # calibration.max_age_days, although the file was written today (it used to pass silently)
    params = tmp_path / "params.json"
    assert main(["calibrate", "--prices", str(demo_inputs.prices), "--out", str(params),
                 "--end", "2018-06-29", "--quiet"]) == 0
    assert _eod(demo_inputs, tmp_path / "old", "--params", str(params)) == 0
    warnings = json.loads((tmp_path / "old" / "manifest.json").read_text())["warnings"]
    assert any("2018-06-29" in w and "185 days" in w for w in warnings), warnings
    # a set written long ago on data up to the market date is not old
    raw = json.loads(params.read_text())
    assert main(["calibrate", "--prices", str(demo_inputs.prices), "--out", str(params),
                 "--quiet"]) == 0
    raw = json.loads(params.read_text())
    raw["created_at"] = (dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=900)).isoformat()
    params.write_text(json.dumps(raw))
    assert _eod(demo_inputs, tmp_path / "fresh", "--params", str(params)) == 0
    warnings = json.loads((tmp_path / "fresh" / "manifest.json").read_text())["warnings"]
    assert not any("days before the valuation date" in w for w in warnings), warnings


@pytest.mark.parametrize("command", ["eod", "scenarios"])
def test_parameter_set_after_the_as_of_is_look_ahead(command, demo_inputs, tmp_path, capsys):
    # estimated on data up to 2018-12-31, used as of 2018-06-29: eod accepted it
    params = tmp_path / "params.json"
    assert main(["calibrate", "--prices", str(demo_inputs.prices), "--out", str(params),
                 "--quiet"]) == 0
    capsys.readouterr()
    if command == "eod":
        rc = _eod(demo_inputs, tmp_path / "out", "--params", str(params), "--as-of",
                  "2018-06-29")
    else:
        rc = main(["scenarios", "--prices", str(demo_inputs.prices), "--out",
                   str(tmp_path / "out.parquet"), "--params", str(params), "--as-of",
                   "2018-06-29", "--quiet"])
    assert rc == 3
    err = capsys.readouterr().err
    assert "look-ahead" in err and "2018-12-31" in err and "params.json" in err
    assert not (tmp_path / "out").exists() and not (tmp_path / "out.parquet").exists()


def test_calibrate_start_is_honoured(demo_inputs, tmp_path):
    # an explicit --start was silently cut to the last garch_fit_window (2500) returns
    params = tmp_path / "params.json"
    assert main(["calibrate", "--prices", str(demo_inputs.prices), "--out", str(params),
                 "--start", "2000-01-03", "--end", "2018-12-31", "--quiet"]) == 0
    raw = json.loads(params.read_text())
    assert raw["factors"]["SPX"]["sample_start"].startswith("2000-01-0")
    assert raw["factors"]["SPX"]["nobs"] > 4000
    assert raw["data"]["max_returns_per_factor"] is None


def test_parameter_set_missing_a_factor_is_an_input_error(demo_inputs, tmp_path, capsys):
    params = tmp_path / "params.json"
    assert main(["calibrate", "--prices", str(demo_inputs.prices), "--out", str(params),
                 "--quiet"]) == 0
    raw = json.loads(params.read_text())
    del raw["factors"]["WTI"]
    params.write_text(json.dumps(raw))
    assert _eod(demo_inputs, tmp_path / "out", "--params", str(params)) == 3
    err = capsys.readouterr().err
    assert "WTI" in err and "params.json" in err
    assert not (tmp_path / "out").exists()


@pytest.mark.skipif(not SHARED_CLOSES.exists(), reason="../shared/data is not present")
def test_calibrate_crypto_coins(tmp_path):
    """BTC, ETH, SOL, DOGE: SOL's short history falls back to ETH's dynamics by rule."""
    config = tmp_path / "run.toml"
    config.write_text("[calibration]\nmin_history = 1000\nmodel = \"auto\"\ndist = \"auto\"\n"
                      "[calibration.proxies]\nSOL = \"ETH\"\n"
                      "[volatility]\ngarch_fit_window = 2500\n")
    params = tmp_path / "crypto.json"
    assert main(["calibrate", "--prices", str(SHARED_CLOSES), "--out", str(params),
                 "--config", str(config), "--end", "2022-06-30", "--jobs", "2",
                 "--quiet"]) == 0
    raw = json.loads(params.read_text())["factors"]
    for coin in ("BTC", "ETH", "DOGE"):
        assert raw[coin]["fallback"] is None, (coin, raw[coin]["fallback"])
        assert raw[coin]["dist"] in ("t", "skewt")  # crypto returns are fat-tailed
    # SOL listed 2020-04-10: about 800 returns by mid-2022, under the 1000 minimum
    assert "short history" in raw["SOL"]["fallback"] and "proxy ETH" in raw["SOL"]["fallback"]
    assert raw["SOL"]["model"] == raw["ETH"]["model"]
    assert np.isfinite(raw["SOL"]["unconditional_vol"])
