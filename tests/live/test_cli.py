"""``riskmodel live --run DIR --ticks FILE [--trades FILE] [--transfers FILE] [--funding FILE]
--out DIR [--exact] [--quiet]``: its outputs and their columns, its manifest, and bad input
(exit 3, nothing written, files already under --out kept)."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from streams import intraday, write_files

from riskmodel.cli import main
from riskmodel.liquidation.partial import ORDER_COLUMNS
from riskmodel.live import EVENT_COLUMNS
from riskmodel.margin.tables import MARGIN_COLUMNS


@pytest.fixture(scope="module")
def inputs(demo_run, tmp_path_factory):
    folder = tmp_path_factory.mktemp("live-cli")
    return write_files(intraday(demo_run.load(), n_ticks=40), folder)


def _argv(demo_run, inputs, out, *extra):
    argv = ["live", "--run", str(demo_run.folder)]
    for flag, path in inputs.items():
        argv += [flag, str(path)]
    return argv + ["--out", str(out), "--quiet", *extra]


@pytest.mark.parametrize("mode", ["default", "exact"])
def test_outputs_and_manifest(demo_run, inputs, tmp_path, mode):
    out = tmp_path / "out"
    assert main(_argv(demo_run, inputs, out, *(["--exact"] if mode == "exact" else []))) == 0
    events = pd.read_parquet(out / "events.parquet")
    assert list(events.columns) == EVENT_COLUMNS and len(events)
    margins = pd.read_parquet(out / "margins.parquet")
    assert list(margins.columns) == [*MARGIN_COLUMNS, "liquidation_penalty"]
    assert list(pd.read_csv(out / "margins.csv").columns) == list(margins.columns)
    orders = pd.read_parquet(out / "liquidation_orders.parquet")
    assert list(orders.columns) == ["time", *ORDER_COLUMNS]
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["mode"] == mode
    assert {k: v["rows"] for k, v in manifest["inputs"].items()} == {
        kind: len(pd.read_csv(inputs[f"--{kind}s" if kind != "funding" else "--funding"]))
        for kind in ("tick", "trade", "transfer", "funding")}
    assert all(len(v["sha256"]) == 64 for v in manifest["inputs"].values())
    assert manifest["counts"]["events"] == events["event"].value_counts().to_dict()
    assert set(manifest["latency"]["tick_update"]) == {"count", "p50_ms", "p99_ms", "max_ms"}
    assert manifest["ticks_per_second"] > 0
    assert not (tmp_path / ".out.live").exists()


def test_bad_input_writes_nothing(demo_run, inputs, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    bad = tmp_path / "ticks.csv"
    pd.read_csv(inputs["--ticks"]).drop(columns="price").to_csv(bad, index=False)
    assert main(_argv(demo_run, {**inputs, "--ticks": bad}, out)) == 3
    assert sorted(p.name for p in out.iterdir()) == ["keep.txt"]
    assert not (tmp_path / ".out.live").exists()
