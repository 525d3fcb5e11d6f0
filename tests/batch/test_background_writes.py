"""Outputs written in a background thread: the same files, and all or nothing on failure."""

from __future__ import annotations

import threading
import time

import numpy as np
import pandas as pd
import pytest

from riskmodel.batch import eod
from riskmodel.batch.background_writes import BackgroundWrites
from riskmodel.batch.eod import EodInputs, run_eod, write_eod
from riskmodel.batch.partitions import EngineOptions
from riskmodel.config import load_config
from riskmodel.demo import write_demo_inputs


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    root = tmp_path_factory.mktemp("background")
    files = write_demo_inputs(root / "in", n_accounts=40)
    inputs = EodInputs(files.prices, files.instruments, files.positions, files.accounts)
    return inputs, load_config(files.config, {"method": "hs"})


def _writer_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate()
            if t.name.startswith(("riskmodel-write", "riskmodel-parts"))]


def test_writes_go_in_order_and_move_into_the_target(tmp_path):
    writes = BackgroundWrites(tmp_path / "work")
    order = []

    def write(path, text):
        order.append(path.name)
        path.write_text(text)

    writes.submit("a.txt", write, "first")
    writes.submit("b.txt", write, "second")
    (tmp_path / "out").mkdir()
    writes.move_into(tmp_path / "out")
    assert order == ["a.txt", "b.txt"]
    assert (tmp_path / "out" / "b.txt").read_text() == "second"
    assert set(writes.seconds) == {"a.txt", "b.txt"}
    assert not _writer_threads()


def test_a_failed_write_is_raised_when_collected(tmp_path):
    writes = BackgroundWrites(tmp_path / "work")

    def fail(path):
        raise OSError(f"{path}: no space left on device")

    writes.submit("state", fail)
    with pytest.raises(OSError, match="no space left"):
        writes.move_into(tmp_path)


def test_run_with_a_work_folder_writes_the_same_state_and_attribution(demo, tmp_path):
    inputs, config = demo
    write_eod(run_eod(inputs, config), tmp_path / "in_memory")
    early = run_eod(inputs, config, engine=EngineOptions(work_dir=tmp_path / "work"))
    assert early.early_writes is not None
    write_eod(early, tmp_path / "background")
    for name in ("attribution.parquet", "margins.parquet"):
        pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "background" / name),
                                      pd.read_parquet(tmp_path / "in_memory" / name),
                                      check_exact=True)
    state = sorted(p.name for p in (tmp_path / "in_memory" / "state").iterdir())
    assert sorted(p.name for p in (tmp_path / "background" / "state").iterdir()) == state
    for name in state:
        if name.endswith(".npy"):
            np.testing.assert_array_equal(
                np.load(tmp_path / "background" / "state" / name),
                np.load(tmp_path / "in_memory" / "state" / name))
    assert not (tmp_path / "work").exists()
    assert not list(tmp_path.glob(".*staging*"))


def _fail_state(monkeypatch):
    def full_disk(folder, state):
        raise OSError(f"{folder}: no space left on device")

    monkeypatch.setattr(eod, "write_run", full_disk)


def _fail_margins_csv(monkeypatch):
    real = eod.write_table

    def full_disk(frame, path):
        if path.name == "margins.csv":
            raise OSError(f"{path}: no space left on device")
        real(frame, path)

    monkeypatch.setattr(eod, "write_table", full_disk)


@pytest.mark.parametrize("fail, kept", [(_fail_state, "margins.parquet"),
                                        (_fail_margins_csv, "margins.csv")])
def test_failed_background_write_leaves_the_output_folder_as_it_was(demo, tmp_path,
                                                                    monkeypatch, fail, kept):
    """The what-if state (written beside the liquidation stage) or the margin CSV (beside the
    page) fails: nothing of the run lands, and yesterday's file stays."""
    inputs, config = demo
    out = tmp_path / "out"
    out.mkdir()
    (out / kept).write_text("yesterday's")
    fail(monkeypatch)
    result = run_eod(inputs, config, engine=EngineOptions(work_dir=tmp_path / "work"))
    with pytest.raises(OSError, match="no space left"):
        write_eod(result, out)
    assert sorted(p.name for p in out.iterdir()) == [kept]
    assert (out / kept).read_text() == "yesterday's"
    assert not list(tmp_path.glob(".out.staging*"))
    assert not _writer_threads()


def test_run_failing_after_the_writes_started_waits_for_them(demo, tmp_path, monkeypatch):
    # the caller removes the work folder on an error: no thread may still be writing into it
    inputs, config = demo

    def broken(*args, **kwargs):
        raise RuntimeError("liquidation failed")

    monkeypatch.setattr(eod, "liquidation_stage", broken)
    with pytest.raises(RuntimeError, match="liquidation failed"):
        run_eod(inputs, config, engine=EngineOptions(work_dir=tmp_path / "work"))
    assert not _writer_threads()
    assert (tmp_path / "work" / "outputs" / "attribution.parquet").is_file()  # finished


def test_written_waits_for_one_file_and_raises_its_failure(tmp_path):
    writes = BackgroundWrites(tmp_path / "work")
    release = threading.Event()

    def slow(path):
        release.wait(5)
        path.write_text("done")

    def fail(path):
        raise OSError(f"{path}: no space left on device")

    writes.submit("slow.txt", slow)
    writes.submit("bad.txt", fail)
    threading.Timer(0.3, release.set).start()
    start = time.perf_counter()
    assert writes.written("slow.txt").read_text() == "done"
    assert time.perf_counter() - start >= 0.25  # it waited for the write
    with pytest.raises(OSError, match="no space left"):
        writes.written("bad.txt")
    writes.abandon()


def test_a_failed_partition_part_write_is_raised(demo, tmp_path, monkeypatch):
    # the parts go to the work folder on a thread of their own
    from riskmodel.batch import partitions

    inputs, config = demo

    def full_disk(self, k, margins, attribution):
        raise OSError(f"part {k}: no space left on device")

    monkeypatch.setattr(partitions._WorkFolder, "write", full_disk)
    with pytest.raises(OSError, match="no space left"):
        run_eod(inputs, config, engine=EngineOptions(work_dir=tmp_path / "work",
                                                     partition_size=15))
    assert not _writer_threads()


def _last_part_write(monkeypatch, n_parts, action):
    """Make the write of partition ``n_parts - 1`` (the last) run ``action`` first."""
    from riskmodel.batch import partitions

    write = partitions._WorkFolder.write

    def patched(self, k, margins, attribution):
        if k == n_parts - 1:
            action(k)
        write(self, k, margins, attribution)

    monkeypatch.setattr(partitions._WorkFolder, "write", patched)


def test_a_failed_last_part_write_is_raised_and_nothing_lands(demo, tmp_path, monkeypatch):
    """The last partition's parts are written while the run goes on: their failure is raised
    where the attribution is written, and the output folder keeps what it had."""
    inputs, config = demo

    def full_disk(k):
        raise OSError(f"part {k}: no space left on device")

    _last_part_write(monkeypatch, 2, full_disk)  # the demo's 56 sets in parts of 30
    out = tmp_path / "out"
    out.mkdir()
    (out / "margins.csv").write_text("yesterday's")
    result = run_eod(inputs, config, engine=EngineOptions(work_dir=tmp_path / "work",
                                                          partition_size=30))
    assert result.partitions == 2
    with pytest.raises(OSError, match="part 1: no space left"):
        write_eod(result, out)
    assert sorted(p.name for p in out.iterdir()) == ["margins.csv"]
    assert (out / "margins.csv").read_text() == "yesterday's"
    assert not _writer_threads()


def test_a_run_failing_after_the_partitions_waits_for_the_last_part(demo, tmp_path,
                                                                    monkeypatch):
    # the caller removes the work folder on an error: the last part's write, still running
    # when the book stage returned, must be over
    inputs, config = demo
    finished = []
    _last_part_write(monkeypatch, 2, lambda k: (time.sleep(0.5), finished.append(k)))

    def broken(*args, **kwargs):
        assert not finished  # the write was still running
        raise RuntimeError("manifest failed")

    monkeypatch.setattr(eod, "eod_manifest", broken)  # before the liquidation's own writes
    with pytest.raises(RuntimeError, match="manifest failed"):
        run_eod(inputs, config, engine=EngineOptions(work_dir=tmp_path / "work",
                                                     partition_size=30))
    assert finished == [1]
    assert not _writer_threads()
