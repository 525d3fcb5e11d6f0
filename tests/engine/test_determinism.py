"""Same inputs, same outputs: whatever NUMBA_NUM_THREADS and the chunk size."""

import os
import subprocess
import sys

import pandas as pd

from riskmodel.demo import write_demo_inputs


def _run(inputs, out, threads, chunk, *extra):
    env = dict(os.environ, NUMBA_NUM_THREADS=str(threads))
    cmd = [sys.executable, "-m", "riskmodel.cli", "eod", "--prices", str(inputs.prices),
           "--instruments", str(inputs.instruments), "--positions", str(inputs.positions),
           "--accounts", str(inputs.accounts), "--config", str(inputs.config),
           "--chunk-size", str(chunk), "--out", str(out), "--quiet", *extra]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    return (pd.read_parquet(out / "margins.parquet"), pd.read_parquet(out / "attribution.parquet"))


def test_outputs_identical_across_threads_and_chunks(tmp_path):
    inputs = write_demo_inputs(tmp_path / "inputs", n_accounts=150)
    one = _run(inputs, tmp_path / "one", threads=1, chunk=7)
    two = _run(inputs, tmp_path / "two", threads=2, chunk=4096)
    for a, b in zip(one, two):
        pd.testing.assert_frame_equal(a, b, check_exact=True)


def test_monte_carlo_identical_across_threads_and_chunks(tmp_path):
    inputs = write_demo_inputs(tmp_path / "inputs", n_accounts=60)
    mc = ("--method", "mc", "--scenarios", "6000", "--seed", "7")
    one = _run(inputs, tmp_path / "one", 1, 5, *mc)
    two = _run(inputs, tmp_path / "two", 2, 4096, *mc)
    for a, b in zip(one, two):
        pd.testing.assert_frame_equal(a, b, check_exact=True)
    other = _run(inputs, tmp_path / "three", 2, 4096, "--method", "mc", "--scenarios", "6000",
                 "--seed", "8")
    assert not other[0]["es"].equals(one[0]["es"])  # the seed matters
