"""Parameter studies: a grid of backtests, coverage against cost."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from calibration.studies import METRIC_COLUMNS, grid_points, load_grid, point_config, run_study
from riskmodel.backtest.run import BacktestInputs, BacktestWindow, run_backtest
from riskmodel.cli import main
from riskmodel.errors import UsageError


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("study")
    rng = np.random.default_rng(5)
    n = 700
    dates = pd.bdate_range("2019-01-01", periods=n)
    vol = 0.01 * np.exp(np.cumsum(rng.normal(0, 0.05, size=(n, 2)), axis=0))  # vol clusters
    r = rng.standard_normal((n, 2)) * vol
    prices = pd.DataFrame(50.0 * np.exp(np.cumsum(r, axis=0)), columns=["XX", "YY"],
                          index=dates.strftime("%Y-%m-%d"))
    prices.index.name = "date"
    out = {"prices": folder / "prices.csv", "instruments": folder / "instruments.csv"}
    prices.to_csv(out["prices"])
    pd.DataFrame({"instrument_id": ["XX", "YY"], "kind": ["spot", "spot"],
                  "underlying": ["XX", "YY"], "multiplier": [1.0, 1.0]}).to_csv(
        out["instruments"], index=False)
    return out


def test_grid_loading_and_points(tmp_path):
    path = tmp_path / "grid.toml"
    path.write_text('confidence = [0.975, 0.99]\nlookback = [250, 500]\n'
                    '[volatility]\newma_lambda = [0.94]\n'
                    '[anti_procyclicality]\ntools = [[], "buffer", ["buffer", "floor"], "none"]\n')
    grid = load_grid(path)
    assert grid == {"confidence": [0.975, 0.99], "lookback": [250, 500],
                    "volatility.ewma_lambda": [0.94],
                    "anti_procyclicality.tools": [[], ["buffer"], ["buffer", "floor"], []]}
    points = grid_points(grid)
    assert len(points) == 16
    assert points[0] == {"confidence": 0.975, "lookback": 250, "volatility.ewma_lambda": 0.94,
                         "anti_procyclicality.tools": []}
    cfg = point_config({"horizon": 3, "volatility": {"model": "ewma"}},
                       {"confidence": 0.5, "horizon": 1}, points[5])
    # the grid wins over flags, flags over the file, the file over defaults
    assert cfg.confidence == 0.975 and cfg.horizon == 1 and cfg.vol_model == "ewma"
    assert cfg.anti_procyclicality.tools == ("buffer",) and cfg.lookback == 500


@pytest.mark.parametrize("text, match", [
    ("confidence = 0.99\n", "non-empty list"),
    ("confidence = []\n", "non-empty list"),
    ("[returns]\ndefault = ['log']\n", "return kinds"),
    ("lookback = [[1, 2]]\n", "scalar"),
    ("", "empty"),
])
def test_bad_grids_are_usage_errors(tmp_path, text, match):
    path = tmp_path / "grid.toml"
    path.write_text(text)
    with pytest.raises(UsageError, match=match):
        load_grid(path)


def test_unknown_or_out_of_range_keys_fail_before_any_backtest(files):
    inputs = BacktestInputs(files["prices"], files["instruments"])
    with pytest.raises(UsageError, match="confidence"):
        run_study(inputs, {}, {}, {"confidence": [0.99, 1.5]}, BacktestWindow())
    with pytest.raises(UsageError, match="volatility.ewma_lamda"):
        run_study(inputs, {}, {}, {"volatility.ewma_lamda": [0.9]}, BacktestWindow())


def test_study_table_matches_direct_backtests_and_is_monotone_in_confidence(files):
    inputs = BacktestInputs(files["prices"], files["instruments"])
    window = BacktestWindow("2020-03-02", None)
    raw = {"method": "hs", "horizon": 1, "min_history": 200}
    grid = {"confidence": [0.95, 0.99], "lookback": [200, 300]}
    study = run_study(inputs, raw, {}, grid, window)
    table = study.table
    assert list(table.columns) == ["point", "confidence", "lookback", *METRIC_COLUMNS]
    assert len(table) == 4
    # one point against a direct backtest of the same configuration
    direct = run_backtest(inputs, point_config(raw, {}, {"confidence": 0.99, "lookback": 300}),
                          window, n_sim=0).summary["pooled"]
    row = table[(table["confidence"] == 0.99) & (table["lookback"] == 300)].iloc[0]
    assert row["exceptions"] == direct["exceptions"]
    assert row["mean_initial_margin"] == pytest.approx(direct["mean_margin"], rel=1e-12)
    assert row["im_over_flat"] == pytest.approx(
        direct["mean_margin"] / direct["flat_rate"]["mean_margin"], rel=1e-12)
    # HS VaR at 99% is at least VaR at 95% on every date: fewer exceptions, higher margin
    for lookback in (200, 300):
        lo = table[(table["lookback"] == lookback) & (table["confidence"] == 0.95)].iloc[0]
        hi = table[(table["lookback"] == lookback) & (table["confidence"] == 0.99)].iloc[0]
        assert hi["exceptions"] <= lo["exceptions"]
        assert hi["mean_initial_margin"] >= lo["mean_initial_margin"]
        assert lo["expected_rate"] == pytest.approx(0.05) and hi["expected_rate"] == 0.01
    assert (table["n_portfolios"] == 5).all()  # long/short XX and YY, hedge XX_YY


def test_study_cli_writes_table_and_plot(files, tmp_path):
    grid = tmp_path / "grid.toml"
    grid.write_text('[volatility]\newma_lambda = [0.94, 0.97]\n'
                    '[anti_procyclicality]\ntools = ["none", "buffer"]\n')
    out = tmp_path / "study"
    rc = main(["study", "--prices", str(files["prices"]), "--instruments",
               str(files["instruments"]), "--grid", str(grid), "--out", str(out),
               "--start", "2020-03-02", "--end", "2020-09-30", "--method", "fhs",
               "--horizon", "1", "--lookback", "250", "--step", "2", "--quiet"])
    assert rc == 0
    table = pd.read_csv(out / "study.csv")
    assert len(table) == 4
    assert list(table["anti_procyclicality.tools"]) == ["none", "buffer"] * 2
    parquet = pd.read_parquet(out / "study.parquet")
    assert list(parquet.columns) == list(table.columns)
    assert (out / "study.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["points"] == 4
    # the buffer raises the margin by 25% where the model margin binds: never cheaper
    buffered = table[table["anti_procyclicality.tools"] == "buffer"]["mean_initial_margin"]
    plain = table[table["anti_procyclicality.tools"] == "none"]["mean_initial_margin"]
    assert (buffered.to_numpy() > plain.to_numpy()).all()


def test_study_cli_bad_grid_exits_2(files, tmp_path, capsys):
    grid = tmp_path / "grid.toml"
    grid.write_text("confidence = [0.99, 2.0]\n")
    out = tmp_path / "study"
    rc = main(["study", "--prices", str(files["prices"]), "--instruments",
               str(files["instruments"]), "--grid", str(grid), "--out", str(out), "--quiet"])
    assert rc == 2
    assert "confidence" in capsys.readouterr().err
    assert not out.exists()
