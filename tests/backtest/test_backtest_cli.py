"""``riskmodel backtest`` from the command line: outputs, exit codes, nothing partial on failure."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from riskmodel.backtest.benchmarks import REALISABLE_COLUMNS
from riskmodel.backtest.replay import BACKTEST_COLUMNS
from riskmodel.cli import main
from riskmodel.io.tables import sha256_file

INSTRUMENTS = pd.DataFrame({
    "instrument_id": ["AAA", "AAA-FUT", "BBB-PERP"],
    "kind": ["spot", "future", "perpetual"],
    "underlying": ["AAA", "AAA", "BBB"],
    "multiplier": [1.0, 10.0, 1.0],
})
POSITIONS = pd.DataFrame({
    "account_id": ["a1", "a1", "a2", "a3"],
    "instrument_id": ["AAA", "BBB-PERP", "AAA-FUT", "BBB-PERP"],
    "quantity": [5.0, -20.0, 1.0, 3.0],
})
FAST = ["--method", "hs", "--lookback", "250", "--horizon", "1", "--quiet"]


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("cli")
    rng = np.random.default_rng(11)
    dates = pd.bdate_range("2020-01-01", periods=400)
    sigma = np.array([0.012, 0.02])
    r = rng.standard_t(4, size=(400, 2)) * sigma / np.sqrt(2.0)
    prices = pd.DataFrame(100.0 * np.exp(np.cumsum(r, axis=0)), index=dates.strftime("%Y-%m-%d"),
                          columns=["AAA", "BBB"])
    prices.index.name = "date"
    out = {"prices": folder / "prices.csv", "instruments": folder / "instruments.csv",
           "positions": folder / "positions.csv"}
    prices.to_csv(out["prices"])
    INSTRUMENTS.to_csv(out["instruments"], index=False)
    POSITIONS.to_csv(out["positions"], index=False)
    return out


def _args(files: dict[str, Path], out: Path, *extra: str, positions: bool = True) -> list[str]:
    args = ["backtest", "--prices", str(files["prices"]), "--instruments",
            str(files["instruments"]), "--out", str(out), *FAST, *extra]
    if positions:
        args += ["--positions", str(files["positions"])]
    return args


def test_backtest_writes_every_output(files, tmp_path):
    out = tmp_path / "run"
    assert main(_args(files, out, "--start", "2020-12-16", "--end", "2021-03-31")) == 0
    frame = pd.read_parquet(out / "backtest.parquet")
    # the replay's columns, then the realisable flat rate's (riskmodel.backtest.benchmarks)
    assert list(frame.columns) == [*BACKTEST_COLUMNS, *REALISABLE_COLUMNS]
    assert set(frame["account_id"]) == {"a1", "a2", "a3"}
    assert frame["date"].min() == pd.Timestamp("2020-12-16")
    assert frame["date"].max() == pd.Timestamp("2021-03-31")
    assert frame["exception"].dtype == bool
    summary = json.loads((out / "backtest_summary.json").read_text())
    assert {"run", "settings", "portfolios", "pooled", "warnings"} <= set(summary)
    assert len(summary["portfolios"]) == 3
    for key in ("kupiec_pvalue", "christoffersen_pvalue", "traffic_light", "peak_to_trough",
                "flat_rate", "flat_rate_equivalent", "es_z2"):
        assert key in summary["pooled"]
    run = summary["run"]
    assert run["method"] == "hs" and run["horizon"] == 1 and run["lookback"] == 250
    assert run["n_dates"] == frame["date"].nunique() and run["n_rows"] == len(frame)
    assert run["start"].startswith("2020-12-16") and "timings_s" in run
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["inputs"]["prices"]["sha256"] == sha256_file(files["prices"])
    assert manifest["inputs"]["positions"]["sha256"] == sha256_file(files["positions"])
    assert manifest["config"]["lookback"] == 250
    for name in ("report.html", "margin_pooled.png", "im_vs_flat_rate.png",
                 "exception_clustering.png", "margin_01.png"):
        assert (out / name).is_file(), name
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".run.staging")]


def test_builtin_portfolios_without_positions(files, tmp_path, capsys):
    out = tmp_path / "builtin"
    args = _args(files, out, "--start", "2021-01-04", "--end", "2021-02-26", "--step", "2",
                 positions=False)
    args.remove("--quiet")
    assert main(args) == 0
    frame = pd.read_parquet(out / "backtest.parquet")
    assert set(frame["netting_set"]) == {"long_AAA", "short_AAA", "long_BBB", "short_BBB",
                                         "hedge_AAA_BBB"}
    assert "exceptions" in capsys.readouterr().out


def _assert_failed(rc: int, code: int, out: Path, capsys, *words: str) -> None:
    err = capsys.readouterr().err
    assert rc == code, err
    assert not out.exists()
    assert not [p for p in out.parent.iterdir() if p.name.startswith(f".{out.name}.staging")]
    assert err.count("\n") == 1  # one line, no traceback
    for w in words:
        assert w in err


def test_start_after_end_is_a_usage_error(files, tmp_path, capsys):
    out = tmp_path / "bad"
    rc = main(_args(files, out, "--start", "2021-03-01", "--end", "2021-01-01"))
    _assert_failed(rc, 2, out, capsys, "--start 2021-03-01", "--end 2021-01-01")


@pytest.mark.parametrize("extra, words", [
    (["--start", "2020-03-02"], ["--start 2020-03-02", "--lookback 250"]),
    (["--start", "03/02/2021"], ["--start", "unparsable"]),
    (["--step", "0"], ["--step"]),
    (["--method", "fhs", "--recalibrate-every", "-1"], ["--recalibrate-every"]),
    (["--recalibrate-every", "5"], ["--recalibrate-every 5", "hs"]),
])
def test_bad_flags_exit_2(files, tmp_path, capsys, extra, words):
    out = tmp_path / "bad"
    _assert_failed(main(_args(files, out, *extra)), 2, out, capsys, *words)


def test_parameter_set_after_the_start_exits_3(files, tmp_path, capsys):
    # look-ahead is an input error in every command that takes --params (it was exit 2 here)
    params = {"schema_version": 1, "created_at": "2021-06-01T00:00:00+00:00",
              "data": {"end": "2021-05-31T00:00:00"},
              "factors": {a: {"model": "ewma", "params": {"decay": 0.94},
                              "sample_end": "2021-05-31T00:00:00"} for a in ("AAA", "BBB")}}
    path = tmp_path / "params.json"
    path.write_text(json.dumps(params))
    out = tmp_path / "bad"
    rc = main(_args(files, out, "--start", "2021-01-04", "--params", str(path),
                    "--method", "fhs"))
    _assert_failed(rc, 3, out, capsys, "look-ahead", "--start 2021-01-04")


def test_bad_prices_file_exits_3_and_leaves_out_untouched(files, tmp_path, capsys):
    bad = tmp_path / "prices.csv"
    text = files["prices"].read_text().splitlines()
    first = text[5].split(",")
    text[5] = ",".join([first[0], "-1.0", first[2]])
    bad.write_text("\n".join(text) + "\n")
    out = tmp_path / "existing"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    args = _args(files, out, "--start", "2021-01-04")
    args[args.index("--prices") + 1] = str(bad)
    rc = main(args)
    err = capsys.readouterr().err
    assert rc == 3, err
    assert "date 2020-01-07" in err and "'AAA'" in err and "-1.0" in err
    assert sorted(p.name for p in out.iterdir()) == ["keep.txt"]


def test_option_expiring_before_the_end_is_refused_with_exit_3(files, tmp_path, capsys):
    # the data run to 2021-07; a static option is margined as eod margins it while it lives,
    # and refused (naming it and its expiry) when it expires before the last t + h
    instruments = tmp_path / "instruments.csv"
    frame = INSTRUMENTS.assign(strike=np.nan, expiry="", option_type="", implied_vol=np.nan)
    option = pd.DataFrame({"instrument_id": ["AAA-C", "AAA-L"], "kind": ["option"] * 2,
                           "underlying": ["AAA"] * 2, "multiplier": [1.0] * 2,
                           "strike": [100.0] * 2,
                           "expiry": ["2021-03-19T00:00:00Z", "2022-06-17T00:00:00Z"],
                           "option_type": ["call"] * 2, "implied_vol": [0.3] * 2})
    pd.concat([frame, option]).to_csv(instruments, index=False)
    positions = tmp_path / "positions.csv"
    pd.DataFrame({"account_id": ["a", "b"], "instrument_id": ["AAA-C", "AAA-L"],
                  "quantity": [1.0, -1.0]}).to_csv(positions, index=False)
    out = tmp_path / "bad"
    args = _args(files, out, "--start", "2021-01-04", positions=False)
    args[args.index("--instruments") + 1] = str(instruments)
    rc = main([*args, "--positions", str(positions)])
    _assert_failed(rc, 3, out, capsys, "AAA-C", "expires", "2021-03-19")
    # ending before the expiry, both options are margined
    args = _args(files, out, "--start", "2021-01-04", "--end", "2021-02-26", positions=False)
    args[args.index("--instruments") + 1] = str(instruments)
    assert main([*args, "--positions", str(positions)]) == 0
    table = pd.read_parquet(out / "backtest.parquet")
    assert set(table["account_id"]) == {"a", "b"} and (table["initial_margin"] > 0).all()
    # without --positions the options are simply not reference instruments
    out2 = tmp_path / "builtin"
    args = _args(files, out2, "--start", "2021-01-04", "--end", "2021-01-29", positions=False)
    args[args.index("--instruments") + 1] = str(instruments)
    assert main(args) == 0
    assert "long_AAA" in set(pd.read_parquet(out2 / "backtest.parquet")["netting_set"])
