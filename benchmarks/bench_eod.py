"""Benchmark: the whole ``riskmodel eod`` run at venue scale, wall time and peak memory.

For each ``--accounts`` size a synthetic venue is written as Parquet
(:mod:`synthetic_book`: 10 positions per account on 500 linear instruments and ``--options``
European options over 50 underlyings, 1,500 days of prices) and ``riskmodel eod`` runs on it
with Monte Carlo (``--scenarios``, t copula, EWMA volatility, 2-day 99% ES), loading and writing
included, in a fresh process per run (the numba cache warm from a first run), reporting the
median wall time of ``--repeats`` runs, the peak resident memory of the process, and the
manifest's per-stage timings.

Reference, in the same run: the model measure of the first ``--reference-sets`` netting sets
computed with plain numpy/scipy from the run's own stored scenario P&L (``state/pnl_2d.npy``)
and netted positions (``attribution.parquet``): scipy.sparse CSR @ dense, ``np.partition`` for
the VaR and a masked sum for the ES, timed and scaled linearly to the whole book; the ES values
are checked equal to the run's (1e-9 relative).

    python benchmarks/bench_eod.py --accounts 10000 100000 --repeats 3
    python benchmarks/bench_eod.py --accounts 1000000 --repeats 1
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
import json, resource, sys, time
start = time.perf_counter()
from riskmodel.cli import main
code = main(sys.argv[1:])
wall = time.perf_counter() - start
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 / 1024
print(json.dumps({"code": code, "wall_s": wall, "peak_gib": peak}))
"""


def run_once(files, config: Path, out: Path) -> dict:
    argv = [sys.executable, "-c", RUN, "eod", "--prices", str(files.prices),
            "--instruments", str(files.instruments), "--positions", str(files.positions),
            "--accounts", str(files.accounts), "--config", str(config), "--out", str(out),
            "--quiet"]
    done = subprocess.run(argv, capture_output=True, text=True, check=True)
    result = json.loads(done.stdout.strip().splitlines()[-1])
    if result["code"] != 0:
        raise RuntimeError(done.stderr)
    result["timings"] = json.loads((out / "manifest.json").read_text())["timings_s"]
    return result


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
    losses = -(book @ pnl)
    n = losses.shape[1]
    k = int(np.ceil(confidence * n - 1e-9))  # k/n >= a: the k-th smallest loss
    var = np.partition(losses, k - 1, axis=1)[:, k - 1]
    tail = np.where(losses > var[:, None], losses, 0.0).sum(axis=1) / n
    below = (losses <= var[:, None]).sum(axis=1) / n
    es = (tail + var * (below - confidence)) / (1 - confidence)
    seconds = time.perf_counter() - start
    np.testing.assert_allclose(np.maximum(es, 0.0),
                               np.maximum(margins["es"].iloc[:n_sets].to_numpy(), 0.0),
                               rtol=1e-9, atol=1e-6)
    return seconds, len(margins)


def main_bench() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--accounts", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--options", type=int, default=2000)
    parser.add_argument("--scenarios", type=int, default=10_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--reference-sets", type=int, default=5000)
    parser.add_argument("--folder", type=Path, help="keep the inputs here (default: temp)")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp_name:
        root = args.folder or Path(tmp_name)
        config = root / "run.toml"
        root.mkdir(parents=True, exist_ok=True)
        config.write_text(CONFIG.format(scenarios=args.scenarios))
        for n in args.accounts:
            files = write_book(root / f"book{n}", n, n_options=args.options)
            out = root / f"out{n}"
            run_once(files, config, out)  # warm the numba cache for this size's kernels
            runs = [run_once(files, config, out) for _ in range(args.repeats)]
            wall = statistics.median(r["wall_s"] for r in runs)
            peak = max(r["peak_gib"] for r in runs)
            ref_s, n_sets = reference(out, min(args.reference_sets, n))
            ref_total = ref_s * n_sets / min(args.reference_sets, n)
            timings = runs[len(runs) // 2]["timings"]
            rows.append((n, wall, peak, ref_total, timings))
            each = ", ".join(f"{r['wall_s']:.2f}" for r in runs)
            print(f"{n:,} accounts: median wall {wall:.2f} s (runs {each}), peak {peak:.2f} GiB; "
                  f"numpy/scipy tail reference {ref_total:.2f} s (scaled from "
                  f"{min(args.reference_sets, n):,} sets); stages {timings}")
    print()
    print("| accounts | positions | wall (median) | peak memory | numpy tail reference |")
    print("|---|---|---|---|---|")
    for n, wall, peak, ref_total, _ in rows:
        print(f"| {n:,} | {10 * n:,} | {wall:.2f} s | {peak:.2f} GiB | {ref_total:.2f} s |")


if __name__ == "__main__":
    main_bench()
