"""Benchmark: the whole ``riskmodel eod`` run at venue scale, wall time and peak memory.

For each ``--accounts`` size a synthetic venue is written as Parquet
(:mod:`synthetic_book`: 10 positions per account on 500 linear instruments and ``--options``
European options over 50 underlyings, 1,500 days of prices) and ``riskmodel eod`` runs on it
with Monte Carlo (``--scenarios``, t copula, EWMA volatility, 2-day 99% ES), loading and writing
included, in a fresh process per run (the numba cache warm from a first run) entered as the
``riskmodel`` program is (:func:`riskmodel.cli.console`; the stage timers are put in as the
program imports its eod module, so that its own order of imports, collector settings and BLAS
threads hold as for a user), reporting the median wall time of
``--repeats`` runs (the whole process, from interpreter start to exit), the peak resident
memory of the process (and per stage, sampled every 20 ms), the size of the margin and
attribution tables as pandas holds them (what any run must at least produce), and the
manifest's per-stage timings.

Stressed days (``--stressed F ...``): for each fraction F the same book with every account's
collateral scaled down so that a fraction F of the netting sets is below maintenance margin
(the scale is read off the calm run: the (1 - F) quantile of maintenance margin over equity,
so the liquidation stage and the many sets near it are what the run spends its time on). The
calm book always runs first; each variant reports the sets it actually put in liquidation.

Reference, in the same run: the model measure of the first ``--reference-sets`` netting sets
computed with plain numpy/scipy from the run's own stored scenario P&L (``state/pnl_2d.npy``)
and netted positions (``attribution.parquet``): scipy.sparse CSR @ dense in chunks of 2,000
sets, ``np.partition`` for the VaR and the mean beyond it for the ES, nothing else, timed and
scaled linearly to the whole book; the ES values are checked equal to the run's (1e-9
relative). It is timed once after each timed run (at least three times), so that the two
sample the machine alike, and its median is taken. The ratio of the eod's median whole-process
wall time to it is the figure that counts.

    python benchmarks/bench_eod.py --accounts 10000 100000 --repeats 3 --stressed 0.02 0.10
    python benchmarks/bench_eod.py --accounts 1000000 --repeats 3 --stressed 0.02
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp

sys.path.insert(0, str(Path(__file__).resolve().parent))
from synthetic_book import write_book  # noqa: E402

#: Sets per chunk of the numpy reference (the issue's definition of it).
REFERENCE_CHUNK = 2000

CONFIG = """method = "mc"
scenarios = {scenarios}
horizon = 2
lookback = 1000
[volatility]
model = "ewma"
[stress]
historical = false
"""

RUN = """
import json, os, resource, sys, threading, time
from contextlib import contextmanager
start = time.perf_counter()
samples = []  # (time, resident GiB), every 20 ms
page = os.sysconf("SC_PAGE_SIZE")
def sample():
    while True:
        with open("/proc/self/statm") as f:
            samples.append((time.perf_counter(), int(f.read().split()[1]) * page / 2**30))
        time.sleep(0.02)
if os.path.exists("/proc/self/statm"):
    threading.Thread(target=sample, daemon=True).start()
spans = []  # (stage, start, end): the manifest's stages, and the writing
def instrument(eod):
    timed_stage = eod._Timer.stage
    @contextmanager
    def stage(self, name):
        t0 = time.perf_counter()
        with timed_stage(self, name):
            yield
        spans.append((name, t0, time.perf_counter()))
    write_eod = eod.write_eod
    def timed_write(*args, **kwargs):
        t0 = time.perf_counter()
        try:
            return write_eod(*args, **kwargs)
        finally:
            spans.append(("write", t0, time.perf_counter()))
    eod._Timer.stage = stage
    eod.write_eod = timed_write
# the timers go in as the program imports the eod module, not before it: the program's own
# order of imports, its collector settings and its BLAS threads hold as they do for a user
import importlib.abc, importlib.util
class Instrumenting(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name != "riskmodel.batch.eod":
            return None
        sys.meta_path.remove(self)
        spec = importlib.util.find_spec(name)
        run_module = spec.loader.exec_module
        def exec_module(module):
            run_module(module)
            instrument(module)
        spec.loader.exec_module = exec_module
        return spec
sys.meta_path.insert(0, Instrumenting())
from riskmodel.cli import console
try:
    console()  # the program's entry point, as the riskmodel script runs it
except SystemExit as done:
    code = done.code
wall = time.perf_counter() - start
# VmHWM: this process's own high-water mark. ru_maxrss is not: Linux carries the mark of the
# forked parent's memory across exec, and the parent holds the generated book.
try:
    with open("/proc/self/status") as f:
        peak = next(int(line.split()[1]) for line in f if line.startswith("VmHWM")) / 2**20
except OSError:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 / 1024
stage_peak = {name: max([r for t, r in samples if t0 <= t <= t1] or [0.0])
              for name, t0, t1 in spans}
print(json.dumps({"code": code, "wall_s": wall, "peak_gib": peak, "stage_peak_gib": stage_peak}))
"""


def run_once(files, config: Path, out: Path) -> dict:
    argv = [sys.executable, "-c", RUN, "eod", "--prices", str(files.prices),
            "--instruments", str(files.instruments), "--positions", str(files.positions),
            "--accounts", str(files.accounts), "--config", str(config), "--out", str(out),
            "--quiet"]
    start = time.perf_counter()
    done = subprocess.run(argv, capture_output=True, text=True, check=True)
    process_s = time.perf_counter() - start
    result = json.loads(done.stdout.strip().splitlines()[-1])
    if result["code"] != 0:
        raise RuntimeError(done.stderr)
    # the wall time a user waits: the whole process, interpreter start and teardown included
    result["in_process_s"], result["wall_s"] = result["wall_s"], process_s
    result["timings"] = json.loads((out / "manifest.json").read_text())["timings_s"]
    return result


def output_gib(out: Path) -> float:
    """The run's margin and attribution tables as pandas holds them in memory (deep)."""
    return sum(pd.read_parquet(out / name).memory_usage(deep=True).sum()
               for name in ("margins.parquet", "attribution.parquet")) / 2**30


def reference(out: Path, n_sets: int, confidence: float = 0.99) -> tuple[float, int]:
    """Seconds to compute the ES of the first ``n_sets`` sets with numpy/scipy (scaled to the
    whole book by the caller); checks them against the run."""
    state = out / "state"
    instruments = pd.read_parquet(state / "instruments.parquet")
    priced = instruments[instruments["pnl_row"] >= 0].sort_values("pnl_row")
    pnl = np.load(state / "pnl_2d.npy")
    attribution = pd.read_parquet(out / "attribution.parquet",
                                  columns=["account_id", "netting_set", "instrument_id",
                                           "quantity"])
    margins = pd.read_parquet(out / "margins.parquet", columns=["account_id", "netting_set",
                                                                "es"])
    keys = margins.iloc[:n_sets][["account_id", "netting_set"]]
    rows = attribution.merge(keys, on=["account_id", "netting_set"])
    set_code = pd.MultiIndex.from_frame(rows[["account_id", "netting_set"]]).factorize()[0]
    column = pd.Index(priced["instrument_id"]).get_indexer(rows["instrument_id"])
    start = time.perf_counter()
    book = sp.csr_matrix((rows["quantity"].to_numpy(), (set_code, column)),
                         shape=(n_sets, len(priced)))
    es = np.concatenate([_reference_es(book[first:first + REFERENCE_CHUNK], pnl, confidence)
                         for first in range(0, n_sets, REFERENCE_CHUNK)])
    seconds = time.perf_counter() - start
    np.testing.assert_allclose(np.maximum(es, 0.0),
                               np.maximum(margins["es"].iloc[:n_sets].to_numpy(), 0.0),
                               rtol=1e-9, atol=1e-6)
    return seconds, len(margins)


def _reference_es(book: sp.csr_matrix, pnl: np.ndarray, confidence: float) -> np.ndarray:
    losses = -(book @ pnl)
    n = losses.shape[1]
    k = int(np.ceil(confidence * n - 1e-9))  # k/n >= a: the k-th smallest loss
    var = np.partition(losses, k - 1, axis=1)[:, k - 1]
    tail = np.where(losses > var[:, None], losses, 0.0).sum(axis=1) / n
    below = (losses <= var[:, None]).sum(axis=1) / n
    return (tail + var * (below - confidence)) / (1 - confidence)


def stressed_scale(calm_out: Path, fraction: float) -> float:
    """The collateral scale that puts ``fraction`` of the calm run's sets below maintenance
    margin: a set with equity E and maintenance margin MM is liquidated at scale s when
    s E < MM, so s is the (1 - fraction) quantile of MM / E (collateral is the only equity of
    the synthetic book, and the requirements do not depend on it)."""
    margins = pd.read_parquet(calm_out / "margins.parquet",
                              columns=["maintenance_margin", "equity"])
    ratio = margins["maintenance_margin"].to_numpy() / margins["equity"].to_numpy()
    return float(np.quantile(ratio, 1.0 - fraction))


def status_counts(out: Path) -> dict[str, int]:
    status = pd.read_parquet(out / "margins.parquet", columns=["status"])["status"]
    return {str(k): int(v) for k, v in status.value_counts().items()}


def measure(label: str, files, config: Path, out: Path, args) -> dict:
    """Warm-up run, then ``max(--repeats, 3)`` timed runs each followed by a timing of the
    reference, printed as one line."""
    run_once(files, config, out)  # warm the numba cache for this size's kernels
    n_sets = len(pd.read_parquet(out / "margins.parquet", columns=["status"]))
    sample = min(args.reference_sets, n_sets)
    # each run followed by a timing of the reference, so that both sample the machine as it
    # is then (one timing of the reference varies by half from one minute to the next); the
    # medians of each
    runs, refs = [], []
    for _ in range(max(args.repeats, 3)):
        runs.append(run_once(files, config, out))
        refs.append(reference(out, sample))
    wall = statistics.median(r["wall_s"] for r in runs)
    peak = max(r["peak_gib"] for r in runs)
    ref_s, n_sets = statistics.median(r[0] for r in refs), refs[0][1]
    ref_total = ref_s * n_sets / sample
    timings = runs[len(runs) // 2]["timings"]
    outputs = output_gib(out)
    counts = status_counts(out)
    each = ", ".join(f"{r['wall_s']:.2f}" for r in runs)
    each_ref = ", ".join(f"{r[0] * n_sets / sample:.2f}" for r in refs)
    stage_peak = {k: round(v, 2) for k, v in runs[-1]["stage_peak_gib"].items()}
    print(f"{label}: median wall {wall:.2f} s (runs {each}), peak {peak:.2f} GiB; numpy/scipy "
          f"tail reference {ref_total:.2f} s (timings {each_ref}; scaled from {sample:,} "
          f"sets): ratio "
          f"{wall / ref_total:.3f}; statuses {counts}; stages {timings}; peak resident memory "
          f"by stage (GiB) {stage_peak}; margin and attribution tables in memory "
          f"{outputs:.2f} GiB", flush=True)
    return {"label": label, "wall": wall, "peak": peak, "ref": ref_total, "outputs": outputs,
            "liquidated": counts.get("liquidation", 0), "sets": n_sets}


def main_bench() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--accounts", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--options", type=int, default=2000)
    parser.add_argument("--scenarios", type=int, default=10_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--reference-sets", type=int, default=10_000)
    parser.add_argument("--folder", type=Path, help="keep the inputs here (default: temp)")
    parser.add_argument("--stressed", type=float, nargs="*", default=[0.02, 0.10],
                        help="fractions of the sets in liquidation of the stressed variants")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp_name:
        root = args.folder or Path(tmp_name)
        config = root / "run.toml"
        root.mkdir(parents=True, exist_ok=True)
        config.write_text(CONFIG.format(scenarios=args.scenarios))
        for n in args.accounts:
            files = write_book(root / f"book{n}", n, n_options=args.options)
            calm = root / f"out{n}"
            rows.append(measure(f"{n:,} accounts, calm", files, config, calm, args))
            for fraction in args.stressed:
                scale = stressed_scale(calm, fraction)
                stressed = write_book(root / f"book{n}_{fraction:g}", n, n_options=args.options,
                                      collateral_scale=scale)
                rows.append(measure(f"{n:,} accounts, {fraction:.0%} stressed (collateral x "
                                    f"{scale:.3f})", stressed, config,
                                    root / f"out{n}_{fraction:g}", args))
    print()
    print("| book | wall (median) | peak memory | output tables in memory | sets in liquidation "
          "| numpy tail reference | ratio |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['label']} | {r['wall']:.2f} s | {r['peak']:.2f} GiB | {r['outputs']:.2f} GiB "
              f"| {r['liquidated']:,} of {r['sets']:,} | {r['ref']:.2f} s | "
              f"{r['wall'] / r['ref']:.3f} |")


if __name__ == "__main__":
    main_bench()
