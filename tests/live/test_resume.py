"""Durable and restartable: a replay checkpointed and restored midway, and a ``riskmodel live``
process killed with SIGKILL and restarted with ``--resume``, end with the same events, state
and orders as a replay that was never interrupted."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time

import pandas as pd
from streams import feed, intraday, write_files

from riskmodel.live import LiveMargin, events_frame
from riskmodel.live import checkpoint as ckpt
from riskmodel.live.checkpoint import EventLog, work_folder


def test_checkpoint_restores_the_exact_state(demo_run, tmp_path):
    run = demo_run.load()
    rows = intraday(run, n_ticks=60)
    whole = LiveMargin(run)
    expected = events_frame(feed(whole, rows))

    first = LiveMargin(run)
    log = EventLog(tmp_path)
    half = len(rows) // 2
    method = {"tick": first.on_tick, "trade": first.on_trade, "transfer": first.on_transfer,
              "funding": first.on_funding}
    for kind, values in rows[:half]:
        log.append(method[kind](*values))
    ckpt.save(first, tmp_path, {"fingerprint": "x", "inputs": half}, log)
    arrays, meta, orders = ckpt.load(tmp_path)
    second = LiveMargin(run)
    ckpt.restore(second, arrays, meta, orders)
    log = EventLog(tmp_path, keep=meta["events"])
    log.append(feed(second, rows[half:]))
    got = events_frame(log.read())
    pd.testing.assert_frame_equal(got, expected, check_exact=True)
    # the outputs' reader (Arrow's JSON parser) gives the frame event by event parsing gives
    pd.testing.assert_frame_equal(log.frame(), got, check_exact=True)
    pd.testing.assert_frame_equal(second.snapshot(), whole.snapshot(), check_exact=True)
    pd.testing.assert_frame_equal(second.orders_frame(), whole.orders_frame(), check_exact=True)


def _argv(run_dir, files, out, config):
    argv = [sys.executable, "-m", "riskmodel.cli", "live", "--run", str(run_dir)]
    for flag, path in files.items():
        argv += [flag, str(path)]
    return argv + ["--out", str(out), "--config", str(config), "--quiet"]


def test_killed_replay_resumes_to_the_same_outputs(demo_run, tmp_path):
    run = demo_run.load()
    files = write_files(intraday(run, n_ticks=240), tmp_path)
    config = tmp_path / "live.toml"
    config.write_text("[live]\ncheckpoint_every = 10\n")
    whole = subprocess.run(_argv(demo_run.folder, files, tmp_path / "whole", config),
                           capture_output=True, text=True)
    assert whole.returncode == 0, whole.stderr
    out = tmp_path / "killed"
    process = subprocess.Popen(_argv(demo_run.folder, files, out, config),
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    work = work_folder(out)
    deadline = time.monotonic() + 240
    while not (work / ckpt.CURRENT).is_file() or \
            int((work / ckpt.CURRENT).read_text().split("-")[1]) < 60:
        assert process.poll() is None, "the replay ended before it could be killed"
        assert time.monotonic() < deadline
        time.sleep(0.002)
    process.send_signal(signal.SIGKILL)
    assert process.wait(timeout=60) == -signal.SIGKILL
    assert not out.exists()  # nothing partial under --out
    resumed = subprocess.run(_argv(demo_run.folder, files, out, config) + ["--resume"],
                             capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr
    assert json.loads((out / "manifest.json").read_text())["resumed_after_inputs"] >= 60
    assert not work.exists()  # a finished replay removes its work folder
    for name in ("events.parquet", "margins.parquet", "liquidation_orders.parquet"):
        pd.testing.assert_frame_equal(pd.read_parquet(out / name),
                                      pd.read_parquet(tmp_path / "whole" / name),
                                      check_exact=True)
    assert (out / "margins.csv").read_bytes() == (tmp_path / "whole" / "margins.csv").read_bytes()
