"""The book stage in partitions: any partition size, the Dask engine (a real LocalCluster of two
worker processes) and a killed-then-resumed run all give the uninterrupted local run's outputs,
bit for bit."""

import dataclasses
import json
import os
import signal
import subprocess
import sys
import time

import pandas as pd
import pytest

from riskmodel.batch.eod import EodInputs, run_eod, write_eod
from riskmodel.batch.partitions import FAULT_ENV, EngineOptions, work_dir_for
from riskmodel.config import load_config
from riskmodel.demo import write_demo_inputs
from riskmodel.engine import margin as engine_margin
from riskmodel.engine.market import PricedMarket


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    root = tmp_path_factory.mktemp("partitions")
    files = write_demo_inputs(root / "in", n_accounts=60)
    inputs = EodInputs(files.prices, files.instruments, files.positions, files.accounts)
    config = load_config(files.config, {"method": "hs"})
    reference = run_eod(inputs, config)
    assert reference.manifest["engine"]["partitions"] == 1
    return files, inputs, config, reference


def _same(a, b):
    pd.testing.assert_frame_equal(a.margins, b.margins, check_exact=True)
    pd.testing.assert_frame_equal(a.attribution, b.attribution, check_exact=True)
    pd.testing.assert_frame_equal(a.liquidation_orders, b.liquidation_orders, check_exact=True)


@pytest.mark.parametrize("size", [1, 7, 30])
def test_any_partition_size_gives_the_same_tables(demo, size):
    _, inputs, config, reference = demo
    result = run_eod(inputs, config, engine=EngineOptions(partition_size=size))
    assert result.manifest["engine"]["partitions"] == -(-len(reference.margins) // size)
    _same(result, reference)


def test_dask_local_cluster_gives_the_same_tables(demo, tmp_path):
    _, inputs, config, reference = demo
    options = EngineOptions(engine="dask", workers=2, partition_size=12,
                            work_dir=tmp_path / "work")
    result = run_eod(inputs, config, engine=options)
    assert result.manifest["engine"]["engine"] == "dask"
    _same(result, reference)
    # the parts are kept as a partitioned Parquet dataset beside the outputs (the margins'
    # as the book stage gave them, before the liquidation stage's columns)
    write_eod(result, tmp_path / "out")
    kept = tmp_path / "out" / "partitions"
    for name in ("margins", "attribution"):
        parts = sorted((kept / name).glob("part-*.parquet"))
        assert len(parts) == result.manifest["engine"]["partitions"]
    pd.testing.assert_frame_equal(pd.read_parquet(kept / "attribution"), reference.attribution,
                                  check_exact=True)
    margins = pd.read_parquet(kept / "margins")
    pd.testing.assert_frame_equal(margins, reference.margins[margins.columns], check_exact=True)


def test_dask_with_a_previous_run_gives_the_same_tables(demo, tmp_path):
    # the buffer reads the previous run's margins, which go to every worker
    files, inputs, config, reference = demo
    config = dataclasses.replace(config, anti_procyclicality=dataclasses.replace(
        config.anti_procyclicality, tools=("buffer",)))
    write_eod(reference, tmp_path / "yesterday")
    # every third set's model margin halved yesterday: today it has doubled, which releases
    # the buffer of those sets only
    yesterday = pd.read_parquet(tmp_path / "yesterday" / "margins.parquet")
    yesterday.loc[::3, "model_margin"] *= 0.5
    yesterday.to_parquet(tmp_path / "yesterday" / "margins.parquet", index=False)
    local = run_eod(inputs, config, previous_run=tmp_path / "yesterday")
    released = local.manifest["anti_procyclicality"]["buffer"]["released_sets"]
    assert 0 < released < len(local.margins)
    options = EngineOptions(engine="dask", workers=2, partition_size=25,
                            work_dir=tmp_path / "work")
    on_dask = run_eod(inputs, config, previous_run=tmp_path / "yesterday", engine=options)
    _same(on_dask, local)
    assert on_dask.manifest["anti_procyclicality"] == local.manifest["anti_procyclicality"]


def test_float32_first_pass_of_the_tail_kernels_changes_no_figure(demo, monkeypatch):
    # Monte Carlo (2,000 scenarios: blocked thresholds) with the first pass forced on for every
    # partition of 25 sets, against the float64 pass alone
    _, inputs, config, _ = demo
    config = dataclasses.replace(config, method="mc", scenarios=2000, vol_model="ewma")
    options = EngineOptions(partition_size=25)
    monkeypatch.setattr(engine_margin, "SCREEN_MIN_SETS", 10**9)
    plain = run_eod(inputs, config, engine=options)
    screened_parts = []
    screen = PricedMarket.screen

    def counting(self, horizon):
        screened_parts.append(horizon)
        return screen(self, horizon)

    monkeypatch.setattr(engine_margin, "SCREEN_MIN_SETS", 1)
    monkeypatch.setattr(PricedMarket, "screen", counting)
    screened = run_eod(inputs, config, engine=options)
    assert len(screened_parts) >= screened.manifest["engine"]["partitions"]
    _same(screened, plain)


def _cli(files, out, *extra, env=None):
    argv = [sys.executable, "-m", "riskmodel.cli", "eod", "--prices", str(files.prices),
            "--instruments", str(files.instruments), "--positions", str(files.positions),
            "--accounts", str(files.accounts), "--config", str(files.config), "--method", "hs",
            "--out", str(out), "--quiet", *extra]
    return subprocess.run(argv, capture_output=True, text=True, timeout=300,
                          env={**os.environ, **(env or {})})


def test_killed_run_resumes_the_unfinished_partitions_only(demo, tmp_path):
    files = demo[0]
    whole = _cli(files, tmp_path / "whole", "--partition-size", "8")
    assert whole.returncode == 0, whole.stderr
    # the CLI streams the attribution file from the work folder's parts: the same table as the
    # in-memory run's
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "whole" / "attribution.parquet"),
                                  demo[3].attribution, check_exact=True)
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "whole" / "margins.parquet"),
                                  demo[3].margins, check_exact=True)
    out = tmp_path / "resumed"
    killed = _cli(files, out, "--partition-size", "8", env={FAULT_ENV: "3"})
    assert killed.returncode == 137
    assert not out.exists()  # nothing partial under --out
    work = work_dir_for(out)
    assert len(list(work.glob("margins-*.parquet"))) == 3
    # the attribution parts in Arrow's IPC format: only this run reads them back
    assert len(list(work.glob("attribution-*.arrow"))) == 3
    resumed = _cli(files, out, "--partition-size", "8", "--resume")
    assert resumed.returncode == 0, resumed.stderr
    manifest = json.loads((out / "manifest.json").read_text())["engine"]
    assert manifest["resumed"] and manifest["partitions_computed"] == manifest["partitions"] - 3
    assert not work.exists()  # a finished run removes its work folder
    for name in ("margins.parquet", "attribution.parquet", "liquidation_orders.parquet"):
        pd.testing.assert_frame_equal(pd.read_parquet(out / name),
                                      pd.read_parquet(tmp_path / "whole" / name),
                                      check_exact=True)
    assert (out / "margins.csv").read_bytes() == (tmp_path / "whole" / "margins.csv").read_bytes()


def test_resume_after_a_change_of_inputs_starts_afresh(demo, tmp_path):
    files = demo[0]
    out = tmp_path / "run"
    assert _cli(files, out, "--partition-size", "8", env={FAULT_ENV: "2"}).returncode == 137
    # a different configuration: the parts of the killed run must not be reused
    again = _cli(files, out, "--partition-size", "8", "--resume", "--confidence", "0.975")
    assert again.returncode == 0, again.stderr
    manifest = json.loads((out / "manifest.json").read_text())["engine"]
    assert not manifest["resumed"]


def test_run_killed_by_sigkill_resumes_to_the_same_outputs(demo, tmp_path):
    """A real kill from outside, at whatever point the run has reached once three partitions
    are on disk (possibly in the middle of writing a fourth)."""
    files = demo[0]
    whole = _cli(files, tmp_path / "whole", "--partition-size", "1")
    assert whole.returncode == 0, whole.stderr
    out = tmp_path / "killed"
    argv = [sys.executable, "-m", "riskmodel.cli", "eod", "--prices", str(files.prices),
            "--instruments", str(files.instruments), "--positions", str(files.positions),
            "--accounts", str(files.accounts), "--config", str(files.config), "--method", "hs",
            "--out", str(out), "--quiet", "--partition-size", "1"]
    run = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    work = work_dir_for(out)
    deadline = time.monotonic() + 240
    while len(list(work.glob("margins-*.parquet"))) < 3:
        assert run.poll() is None, "the run ended before it could be killed"
        assert time.monotonic() < deadline
        time.sleep(0.002)
    run.send_signal(signal.SIGKILL)
    assert run.wait(timeout=60) == -signal.SIGKILL
    assert not out.exists()
    done = len(list(work.glob("margins-*.parquet")))
    resumed = _cli(files, out, "--partition-size", "1", "--resume")
    assert resumed.returncode == 0, resumed.stderr
    manifest = json.loads((out / "manifest.json").read_text())["engine"]
    assert manifest["resumed"] and manifest["partitions_computed"] == manifest["partitions"] - done
    for name in ("margins.parquet", "attribution.parquet", "liquidation_orders.parquet"):
        pd.testing.assert_frame_equal(pd.read_parquet(out / name),
                                      pd.read_parquet(tmp_path / "whole" / name),
                                      check_exact=True)


def test_flagged_rows_are_the_join_on_the_keys(demo):
    """The liquidation stage's rows, taken by the engine's layout (a run of rows per set, in
    the margins' order), are the join of the attribution with the flagged sets' keys; a table
    without that layout is joined."""
    from riskmodel.batch.partitions import _rows_of_statuses, _set_of_rows

    _, _, _, reference = demo
    margins, attribution = reference.margins, reference.attribution
    keys = ["account_id", "netting_set"]
    assert _set_of_rows(margins, attribution) is not None
    for statuses in [("liquidation",), ("liquidation", "margin_call"), ("ok",), ("none",)]:
        joined = attribution.merge(margins.loc[margins["status"].isin(statuses), keys],
                                   on=keys)
        assert len(joined) or statuses == ("none",)
        pd.testing.assert_frame_equal(_rows_of_statuses(margins, attribution, statuses)
                                      .reset_index(drop=True), joined, check_exact=True)
        # not the layout: shuffled rows, a set without rows, ids as Python objects
        shuffled = attribution.sample(frac=1.0, random_state=3).reset_index(drop=True)
        extra = pd.concat([margins.iloc[:1].assign(account_id="no-rows"), margins],
                          ignore_index=True)
        as_objects = attribution.astype({"account_id": object})
        for m, a in [(margins, shuffled), (extra, attribution), (margins, as_objects)]:
            assert _set_of_rows(m, a) is None
            expected = a.merge(m.loc[m["status"].isin(statuses), keys], on=keys)
            got = _rows_of_statuses(m, a, statuses).reset_index(drop=True)
            pd.testing.assert_frame_equal(got, expected, check_exact=True)


def test_resume_counts_a_partition_done_only_with_its_parts_in_this_engines_format(tmp_path):
    # a work folder written by an older version (Parquet attribution parts) or by the other
    # engine: its partitions are computed again, not read in the wrong format
    from riskmodel.batch.partitions import _WorkFolder

    folder = tmp_path / "work"
    _WorkFolder(folder, "f" * 64, resume=False)  # a fresh folder with the run's fingerprint
    for k in range(3):
        (folder / f"margins-{k:05d}.parquet").write_bytes(b"")
    (folder / "attribution-00000.parquet").write_bytes(b"")
    (folder / "attribution-00001.arrow").write_bytes(b"")
    assert _WorkFolder(folder, "f" * 64, resume=True).done == {1}
    assert _WorkFolder(folder, "f" * 64, resume=True, parquet_parts=True).done == {0}
