"""``riskmodel live``: a finished run, replayed through a stream of inputs, written as ``eod``
writes (nothing partial on failure, files already under ``--out`` kept otherwise).

The inputs are merged in time order (:mod:`riskmodel.live.inputs`) and fed to a
:class:`~riskmodel.live.LiveMargin`; every event goes to the append-only log of the work folder
beside ``--out`` and every ``[live] checkpoint_every`` inputs the state is checkpointed there
(:mod:`riskmodel.live.checkpoint`). At the end the loop is flushed and the outputs written:

* ``events.parquet``: every event (:data:`riskmodel.live.events.EVENT_COLUMNS`);
* ``margins.parquet``, ``margins.csv``: the state at the end (:meth:`LiveMargin.snapshot`
  after the final flush: ``eod``'s columns; ``liquidation_penalty`` is the penalty of the
  orders standing for a set still in liquidation);
* ``liquidation_orders.parquet``: every order sent (``time``, then ``eod``'s columns);
* ``manifest.json``: the run, the mode and ``[live]`` settings, the inputs (SHA-256, rows),
  counts by event and by input kind, statuses at the end, ticks per second, per-tick latency
  (p50, p99, max) of the exact equity, level and status update and of the whole tick
  (refreshes and orders included), the refresh work and the lag of the changes refreshes
  found, timings.

``--resume`` continues from the last checkpoint of a killed replay with the same run, inputs
and settings (their fingerprint is checked): the inputs already consumed are skipped, the log
is cut back to the checkpoint, and the replay ends as an uninterrupted one would. Without it,
or when the fingerprint differs, a replay starts afresh. A finished replay, or one that fails
with an error, removes the work folder.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import sys
import time as clock
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from riskmodel import __version__
from riskmodel.config import LiveConfig
from riskmodel.errors import UsageError
from riskmodel.io.outputs import staged_output, write_json, write_table
from riskmodel.io.tables import sha256_file
from riskmodel.live import checkpoint
from riskmodel.live.inputs import STDIN, StdinRecords, apply, file_records, merged
from riskmodel.live.loop import LiveMargin
from riskmodel.live.stats import percentiles_ms
from riskmodel.whatif.run import load_run


@dataclass
class LiveInputs:
    """The input files by kind (``-``: JSON lines on standard input)."""

    ticks: str | Path
    trades: str | Path | None = None
    transfers: str | Path | None = None
    funding: str | Path | None = None

    def named(self) -> dict[str, str]:
        kinds = {"ticks": "tick", "trades": "trade", "transfers": "transfer",
                 "funding": "funding"}
        return {kinds[k]: str(v) for k, v in vars(self).items() if v is not None}


@dataclass
class ReplayResult:
    """What a replay wrote: the folder and the manifest."""

    out: Path
    manifest: dict[str, Any] = field(default_factory=dict)


def replay(run_dir: str | Path, inputs: LiveInputs, out: str | Path, *, exact: bool = False,
           live: LiveConfig | None = None, resume: bool = False,
           progress: Callable[[int], None] | None = None) -> ReplayResult:
    """Replay ``inputs`` over the run ``run_dir`` into ``out`` (module docstring)."""
    started = clock.perf_counter()
    run = load_run(run_dir)
    settings = live or run.config.live
    named = inputs.named()
    if sum(1 for p in named.values() if p == STDIN) > 1:
        raise UsageError("only one input can be read from standard input (-)")
    hashes = {kind: (None if p == STDIN else sha256_file(p)) for kind, p in named.items()}
    fingerprint = _fingerprint(run.run_dir, hashes, exact, settings)
    work = checkpoint.work_folder(out)
    state = checkpoint.load(work) if resume and work.is_dir() else None
    if state is not None and state[1].get("fingerprint") != fingerprint:
        state = None  # other inputs or settings: start afresh
    if state is None:
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir(parents=True)
    lm = LiveMargin(run, exact=exact, live=settings)
    skip = 0
    if state is not None:
        arrays, meta, orders = state
        checkpoint.restore(lm, arrays, meta, orders)
        skip = int(meta["inputs"])
    log = checkpoint.EventLog(work, keep=None if state is None else int(state[1]["events"]))
    loaded = clock.perf_counter()
    try:
        stdin, counts = _stream(lm, named, log, work, fingerprint, skip, settings, progress)
        streamed = clock.perf_counter()
        log.append(lm.flush())
        flushed = clock.perf_counter()
        if stdin is not None:  # the bytes read, and every line counted as a row
            kind = next(k for k, p in named.items() if p == STDIN)
            hashes[kind] = stdin.digest.hexdigest()
            counts = Counter({**counts, f"{kind}_lines": stdin.lines})
        margins, orders = lm.snapshot(), lm.orders_frame()
        manifest = _manifest(lm, margins, orders, run.run_dir, named, hashes, counts, exact,
                             settings, skip, {"load": loaded - started,
                                              "replay": streamed - loaded,
                                              "flush": flushed - streamed})
        _write(out, margins, orders, log, manifest)
    except Exception:
        log.close()
        shutil.rmtree(work, ignore_errors=True)  # an error is no kill: a rerun starts afresh
        raise
    log.close()
    shutil.rmtree(work, ignore_errors=True)
    manifest["timings_s"]["total"] = round(clock.perf_counter() - started, 4)
    return ReplayResult(Path(out), manifest)


def _fingerprint(run_dir: Path, hashes: dict[str, str | None], exact: bool,
                 settings: LiveConfig) -> str:
    """What makes a checkpoint resumable: the run, the inputs, the mode and settings."""
    run = {name: sha256_file(run_dir / name) for name in ("margins.parquet",
                                                          "state/state.json")}
    text = json.dumps({"run": run, "inputs": hashes, "exact": exact,
                       "live": vars(settings), "version": __version__}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()


def _stream(lm: LiveMargin, named: dict[str, str], log: checkpoint.EventLog, work: Path,
            fingerprint: str, skip: int, settings: LiveConfig,
            progress: Callable[[int], None] | None) -> tuple[StdinRecords | None, Counter]:
    """Feed every input to ``lm`` (the first ``skip`` only counted: a resumed replay has
    applied them), logging events and checkpointing; returns the stdin reader and the inputs
    by kind."""
    stdin = None
    sources: list[Iterable[Any]] = []
    for kind, path in named.items():
        if path == STDIN:
            stdin = StdinRecords(sys.stdin, kind)
            sources.append(stdin)
        else:
            sources.append(file_records(path, kind))
    counts: Counter = Counter()
    n = 0
    for record in merged(sources):
        n += 1
        counts[record.kind] += 1
        if n <= skip:
            continue
        log.append(apply(lm, record))
        if n % settings.checkpoint_every == 0:
            checkpoint.save(lm, work, {"fingerprint": fingerprint, "inputs": n}, log)
        if progress is not None and n % 1000 == 0:
            progress(n)
    return stdin, counts


def _manifest(lm: LiveMargin, snapshot: pd.DataFrame, orders: pd.DataFrame, run_dir: Path,
              named: dict[str, str], hashes: dict[str, str | None], counts: Counter,
              exact: bool, settings: LiveConfig, resumed_at: int, timings: dict[str, float]
              ) -> dict[str, Any]:
    """The manifest (module docstring) of the replay ending at ``lm``, whose final margin
    table is ``snapshot`` and orders ``orders``."""
    ticks = counts.get("tick", 0)
    replay_s = timings["replay"]
    return {
        "version": __version__,
        "run": {"folder": str(run_dir), "valuation_time": lm.run.market.valuation_time
                .isoformat(), "config_sha256": lm.run.stored.config_sha256},
        "mode": "exact" if exact else "default",
        "live": vars(settings),
        "inputs": {kind: {"file": path, "sha256": hashes.get(kind),
                          "rows": counts.get(f"{kind}_lines", counts.get(kind, 0))}
                   for kind, path in named.items()},
        "counts": {"inputs": {k: v for k, v in counts.items() if not k.endswith("_lines")},
                   "events": {},  # from the log, when written
                   "statuses": snapshot["status"].value_counts().to_dict(),
                   "netting_sets": len(snapshot),
                   "orders": len(orders)},
        "ticks_per_second": round(ticks / replay_s, 2) if replay_s > 0 and ticks else None,
        "latency": {"tick_update": percentiles_ms(lm.stats.tick_latency),
                    "tick_total": percentiles_ms(lm.stats.tick_total)},
        "work": dict(sorted(lm.stats.counts.items())),
        "work_seconds": {k: round(v, 3) for k, v in sorted(lm.stats.seconds.items())},
        "lag": lm.stats.lag(),
        "resumed_after_inputs": resumed_at or None,
        "timings_s": {k: round(v, 4) for k, v in timings.items()},
    }


def _write(out: str | Path, margins: pd.DataFrame, orders: pd.DataFrame,
           log: checkpoint.EventLog, manifest: dict[str, Any]) -> None:
    """The outputs (module docstring), atomically: the final margin table ``margins`` and
    ``orders``, the events of ``log``."""
    start = clock.perf_counter()
    events = log.frame()
    manifest["counts"]["events"] = {k: int(v) for k, v in
                                    events["event"].value_counts().sort_index().items()}
    with staged_output(out) as staging:
        write_table(events, staging / "events.parquet")
        write_table(margins, staging / "margins.parquet")
        write_table(margins, staging / "margins.csv")
        write_table(orders, staging / "liquidation_orders.parquet")
        manifest["timings_s"]["write"] = round(clock.perf_counter() - start, 4)
        write_json(manifest, staging / "manifest.json")


def summary(manifest: dict[str, Any]) -> str:
    """The one-paragraph summary ``riskmodel live`` prints."""
    counts = manifest["counts"]
    by_status = ", ".join(f"{k} {v}" for k, v in sorted(counts["statuses"].items()))
    latency = manifest["latency"]["tick_update"]
    events = ", ".join(f"{k} {v}" for k, v in counts["events"].items()) or "none"
    return (f"riskmodel live ({manifest['mode']}): {sum(counts['inputs'].values())} inputs, "
            f"{manifest['ticks_per_second']} ticks/s, tick update p50 {latency['p50_ms']} ms "
            f"p99 {latency['p99_ms']} ms; events: {events}; at the end {counts['netting_sets']}"
            f" netting sets ({by_status}), {counts['orders']} liquidation orders")
