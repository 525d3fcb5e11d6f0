"""Usage errors (bad flags, bad RUN.toml) exit 2 with a message naming the option and value,
before anything is read or written; the console script maps errors to exit codes too."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from eod_testdata import POSITIONS, write_csv

USAGE = 2


@pytest.mark.parametrize(
    ("value", "problem"),
    [("0", "must be in (0, 1)"), ("1", "must be in (0, 1)"), ("1.5", "must be in (0, 1)"),
     ("-0.1", "must be in (0, 1)"), ("nan", "finite number"), ("inf", "finite number")],
)
def test_confidence_outside_unit_interval(value, problem, dataset_csv, expect_failure):
    expect_failure(lambda out: dataset_csv.argv(out, "--confidence", value),
                   USAGE, f"confidence = {float(value)!r}", problem)


def test_confidence_not_a_number(dataset_csv, expect_failure):
    expect_failure(lambda out: dataset_csv.argv(out, "--confidence", "high"),
                   USAGE, "--confidence", "'high'")


@pytest.mark.parametrize("value", ["0", "-1"])
def test_horizon_below_one(value, dataset_csv, expect_failure):
    expect_failure(lambda out: dataset_csv.argv(out, "--horizon", value),
                   USAGE, f"horizon = {value}")


@pytest.mark.parametrize("value", ["1", "0"])
def test_lookback_below_two(value, dataset_csv, expect_failure):
    # --horizon 1 comes first in the fast settings, so only the lookback is wrong
    expect_failure(lambda out: dataset_csv.argv(out, "--lookback", value),
                   USAGE, f"lookback = {value}")


@pytest.mark.parametrize(("horizon", "lookback"), [("10", "10"), ("20", "10")])
def test_horizon_not_shorter_than_lookback(horizon, lookback, dataset_csv, expect_failure):
    expect_failure(
        lambda out: dataset_csv.argv(out, "--horizon", horizon, "--lookback", lookback),
        USAGE, f"horizon = {horizon}", f"lookback = {lookback}",
    )


def test_horizon_not_an_integer(dataset_csv, expect_failure):
    expect_failure(lambda out: dataset_csv.argv(out, "--horizon", "1.5"),
                   USAGE, "--horizon", "'1.5'")


def test_unknown_method(dataset_csv, expect_failure):
    expect_failure(lambda out: dataset_csv.argv(out, "--method", "garch"),
                   USAGE, "--method", "invalid choice", "'garch'")


def test_unknown_measure(dataset_csv, expect_failure):
    expect_failure(lambda out: dataset_csv.argv(out, "--measure", "cvar"),
                   USAGE, "--measure", "'cvar'")


def test_antithetic_needs_an_even_scenario_count(dataset_csv, expect_failure, tmp_path):
    config = tmp_path / "run.toml"
    config.write_text("[monte_carlo]\nantithetic = true\n")
    expect_failure(lambda out: dataset_csv.argv(out, "--method", "mc", "--scenarios", "1001",
                                                "--config", str(config)),
                   USAGE, "scenarios", "1001", "even")


@pytest.mark.parametrize("value", ["0", "-5"])
def test_chunk_size_below_one(value, dataset_csv, expect_failure):
    expect_failure(lambda out: dataset_csv.argv(out, "--chunk-size", value),
                   USAGE, "chunk_size", value)


@pytest.mark.parametrize(
    "flag", ["--prices", "--instruments", "--positions", "--accounts", "--out"]
)
def test_missing_required_flag(flag, dataset_csv, expect_failure):
    def argv(out):
        full = dataset_csv.argv(out)
        i = full.index(flag)
        return full[:i] + full[i + 2:]

    expect_failure(argv, USAGE, "required", flag)


def test_missing_subcommand(capsys):
    from eod_testdata import run_cli

    code, err = run_cli([], capsys)
    assert code == USAGE and "Traceback" not in err


# --- RUN.toml ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("toml", "fragments"),
    [
        ('colour = "blue"\n', ["unknown key", "'colour'"]),
        ("[margin]\nmm_ratios = 0.5\n", ["unknown key", "margin.mm_ratios"]),
        ("[margin.flat_rates]\nkind = { swap = 0.1 }\n", ["swap", "unknown instrument kind"]),
        ("[margin]\nmm_ratio = 1.5\n", ["margin.mm_ratio", "1.5"]),
        ("[margin]\nmm_ratio = 0.0\n", ["margin.mm_ratio", "0.0"]),
        ("[margin.maintenance_rates]\ndefault = 0.0\n",
         ["margin.maintenance_rates.default", "0.0"]),
        ("[margin.flat_rates]\ndefault = -0.1\n", ["margin.flat_rates.default", "-0.1"]),
        ("confidence = 1.5\n", ["confidence", "1.5"]),
        ('confidence = "high"\n', ["confidence", "'high'", "finite number"]),
        ("[volatility]\newma_lambda = 1.0\n", ["volatility.ewma_lambda", "1.0"]),
        ('[returns.assets]\nAAA = "linear"\n', ["returns.assets.AAA", "'linear'"]),
        ("seed = 2.5\n", ["seed", "2.5", "integer"]),
        ("margin = 3\n", ["[margin]", "table"]),
    ],
)
def test_bad_run_toml(toml, fragments, dataset_csv, tmp_path, expect_failure):
    config = tmp_path / "run.toml"
    config.write_text(toml)
    expect_failure(lambda out: dataset_csv.argv(out, "--config", str(config)),
                   USAGE, *fragments)


def test_invalid_toml(dataset_csv, tmp_path, expect_failure):
    config = tmp_path / "run.toml"
    config.write_text("[margin\nmm_ratio = \n")
    expect_failure(lambda out: dataset_csv.argv(out, "--config", str(config)),
                   USAGE, str(config), "not valid TOML")


def test_config_file_not_found(dataset_csv, tmp_path, expect_failure):
    config = tmp_path / "no-such-run.toml"
    expect_failure(lambda out: dataset_csv.argv(out, "--config", str(config)),
                   USAGE, "--config", str(config))


def test_flag_overrides_bad_toml_value_is_still_checked(dataset_csv, tmp_path, expect_failure):
    # the flag wins over the file, but the rest of the file is validated
    config = tmp_path / "run.toml"
    config.write_text("confidence = 0.975\n[margin]\nmm_ratio = 1.5\n")
    expect_failure(lambda out: dataset_csv.argv(out, "--config", str(config),
                                                "--confidence", "0.99"),
                   USAGE, "margin.mm_ratio")


def test_out_is_an_existing_file(dataset_csv, tmp_path, run_eod):
    out = tmp_path / "out"
    out.write_text("not a folder\n")
    code, err = run_eod(dataset_csv.argv(out))
    assert code == USAGE, err
    assert str(out) in err and "not a folder" in err and "Traceback" not in err
    assert out.read_text() == "not a folder\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def _unwritable_outs(tmp_path: Path) -> list[Path]:
    """Output paths no command can write: under a file, and (Linux) in /proc, where even root
    cannot create a folder (``os.access`` says it can)."""
    blocker = tmp_path / "a-file"
    blocker.write_text("x\n")
    outs = [blocker / "out"]
    if Path("/proc/self").exists():
        outs.append(Path("/proc") / "riskmodel-out")
    return outs


@pytest.mark.parametrize("command", ["eod", "demo", "backtest", "whatif", "calibrate",
                                     "scenarios", "liquidation-map", "study"])
def test_unwritable_out_is_a_usage_error_naming_the_path_given(command, dataset_csv, tmp_path,
                                                                run_eod):
    # it exited 1 ("unexpected error") naming an internal hidden staging folder
    files = dataset_csv
    for out in _unwritable_outs(tmp_path):
        name = out if command in ("eod", "demo", "backtest", "liquidation-map", "study") \
            else out.with_suffix({"whatif": ".csv", "calibrate": ".json",
                                  "scenarios": ".parquet"}[command])
        argv = {
            "eod": files.argv(name),
            "demo": ["demo", "--out", str(name), "--quiet"],
            "backtest": ["backtest", "--prices", str(files.prices), "--instruments",
                         str(files.instruments), "--out", str(name), "--quiet"],
            "whatif": ["whatif", "--run", str(tmp_path), "--trades", str(files.positions),
                       "--out", str(name)],
            "calibrate": ["calibrate", "--prices", str(files.prices), "--out", str(name)],
            "scenarios": ["scenarios", "--prices", str(files.prices), "--out", str(name)],
            "liquidation-map": ["liquidation-map", "--run", str(tmp_path), "--out", str(name)],
            "study": ["study", "--prices", str(files.prices), "--instruments",
                      str(files.instruments), "--grid", str(tmp_path / "grid.toml"),
                      "--out", str(name)],
        }[command]
        code, err = run_eod(argv)
        assert code == USAGE, err
        assert f"--out {name}" in err and "unexpected" not in err and ".staging" not in err


# --- the installed console script -------------------------------------------------------------


def _console_script() -> str | None:
    found = shutil.which("riskmodel")
    if found:
        return found
    beside = Path(sys.executable).parent / "riskmodel"
    return str(beside) if beside.exists() else None


def test_console_script_bad_input_exits_3_without_traceback(dataset_csv, tmp_path):
    script = _console_script()
    if script is None:
        pytest.skip("the riskmodel console script is not installed")
    bad = POSITIONS.astype(object)
    bad.loc[2, "quantity"] = "two"
    positions = write_csv(bad, tmp_path / "positions.csv")
    out = tmp_path / "out"
    env = {k: v for k, v in os.environ.items() if k != "RISKMODEL_DEBUG"}
    proc = subprocess.run(
        [script, *dataset_csv.argv(out, positions=positions)],
        capture_output=True, text=True, timeout=120, env=env, check=False,
    )
    assert proc.returncode == 3, proc.stderr
    assert "Traceback" not in proc.stderr
    assert f"{positions} line 4" in proc.stderr and "'quantity'" in proc.stderr
    assert "'two'" in proc.stderr
    assert not out.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["positions.csv"]


def test_console_script_usage_error_exits_2(dataset_csv, tmp_path):
    script = _console_script()
    if script is None:
        pytest.skip("the riskmodel console script is not installed")
    out = tmp_path / "out"
    proc = subprocess.run(
        [script, *dataset_csv.argv(out, "--confidence", "1.5")],
        capture_output=True, text=True, timeout=120, check=False,
    )
    assert proc.returncode == 2, proc.stderr
    assert "confidence" in proc.stderr and "Traceback" not in proc.stderr
    assert not out.exists()
