"""Benchmark: the end-of-day page (``report.html``) of a finished run at venue scale.

For each ``--accounts`` size a synthetic venue is written (:mod:`synthetic_book`, 10 positions
per account on 500 linear instruments and ``--options`` options) and ``riskmodel eod`` runs on
it once (Monte Carlo, EWMA, as :mod:`bench_eod`), then once more with ``--previous-run`` the
first run (the comparison section). In this process, the page of each run is then written
``--repeats`` times into a scratch copy of its folder (:func:`riskmodel.report.eod.
write_eod_report`, the call ``write_eod`` makes), reporting the median seconds and the page's
size; the first write warms the imports (matplotlib, Jinja2) and is not counted.

Reference, in the same process: the same aggregates with plain pandas (read the attribution,
join it to the margin table and the instruments, group by underlying and kind, status table,
the top-k tables, per-instrument contributions, stress scenarios), no figures and no page.

    python benchmarks/bench_eod_report.py --accounts 100000 1000000 --repeats 3
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_eod import CONFIG  # noqa: E402
from synthetic_book import write_book  # noqa: E402

from riskmodel.config.rates import RateTable  # noqa: E402
from riskmodel.margin.policy import position_rates  # noqa: E402
from riskmodel.report.eod import write_eod_report  # noqa: E402


def run_eod(files, config: Path, out: Path, previous: Path | None = None) -> None:
    argv = [sys.executable, "-m", "riskmodel.cli", "eod", "--prices", str(files.prices),
            "--instruments", str(files.instruments), "--positions", str(files.positions),
            "--accounts", str(files.accounts), "--config", str(config), "--out", str(out),
            "--quiet"]
    if previous is not None:
        argv += ["--previous-run", str(previous)]
    subprocess.run(argv, check=True, capture_output=True, text=True)


def finished_run(folder: Path) -> SimpleNamespace:
    """What write_eod hands the page, read back from a run folder."""
    return SimpleNamespace(
        margins=pd.read_parquet(folder / "margins.parquet"),
        factors=pd.read_csv(folder / "factors.csv"),
        manifest=json.loads((folder / "manifest.json").read_text()),
        liquidation_orders=pd.read_parquet(folder / "liquidation_orders.parquet"),
        state=None)


def time_page(folder: Path, previous: Path | None, repeats: int, scratch: Path
              ) -> tuple[float, list[float], int]:
    """(median seconds, each, page bytes) of writing the page of ``folder``."""
    run = finished_run(folder)
    work = scratch / "run"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    for name in ("attribution.parquet",):
        shutil.copy2(folder / name, work / name)
    shutil.copytree(folder / "state", work / "state", ignore=lambda d, names: [
        n for n in names if n.endswith(".npy")])
    write_eod_report(work, run, previous_run=previous)  # warm-up: imports, font cache
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        page = write_eod_report(work, run, previous_run=previous)
        times.append(time.perf_counter() - start)
    return statistics.median(times), times, page.stat().st_size


def pandas_reference(folder: Path) -> float:
    """Seconds for the page's aggregates in plain pandas (no figures, no page)."""
    start = time.perf_counter()
    manifest = json.loads((folder / "manifest.json").read_text())
    margins = pd.read_parquet(folder / "margins.parquet")
    attribution = pd.read_parquet(folder / "attribution.parquet", columns=[
        "account_id", "netting_set", "instrument_id", "notional", "contribution"])
    instruments = pd.read_parquet(folder / "state" / "instruments.parquet",
                                  columns=["instrument_id", "kind", "underlying"])
    key = ["account_id", "netting_set"]
    rows = attribution.merge(instruments, on="instrument_id", how="left").merge(
        margins[[*key, "initial_margin", "model_margin"]], on=key, how="left")
    rates = RateTable(**manifest["config"]["margin"]["flat_rates"])
    rows["flat"] = rows["notional"] * position_rates(rates, rows["kind"].astype(str).tolist(),
                                                     rows["underlying"].astype(str).tolist())
    rows["im"] = rows["initial_margin"] * rows["flat"] / rows.groupby(key)["flat"].transform(
        "sum")
    for by in ("underlying", "kind"):
        rows.groupby(by)[["im", "flat", "notional"]].sum()
    margins.groupby("status")[["initial_margin", "maintenance_margin", "equity",
                               "flat_rate_margin", "gross_notional", "call_amount"]].sum()
    margins[margins["status"] != "liquidation"].nsmallest(20, "margin_level")
    margins.nlargest(20, "call_amount")
    rows.nlargest(20, "contribution")
    rows.groupby("instrument_id")["contribution"].sum().nlargest(15)
    margins.groupby("stress_scenario")["stress_loss"].agg(["size", "sum"])
    np.histogram(margins["margin_level"].clip(0.1, 99.9), bins=np.geomspace(0.1, 100, 61))
    return time.perf_counter() - start


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--accounts", type=int, nargs="+", default=[100_000])
    for name, default in (("options", 2000), ("scenarios", 10_000), ("repeats", 3)):
        parser.add_argument(f"--{name}", type=int, default=default)
    parser.add_argument("--folder", type=Path, help="keep the runs here (default: temp)")
    return parser.parse_args()


def main() -> None:
    args = _arguments()
    with tempfile.TemporaryDirectory() as tmp_name:
        root = args.folder or Path(tmp_name)
        root.mkdir(parents=True, exist_ok=True)
        config = root / "run.toml"
        config.write_text(CONFIG.format(scenarios=args.scenarios))
        for n in args.accounts:
            files = write_book(root / f"book{n}", n, n_options=args.options)
            first, second = root / f"out{n}", root / f"out{n}-again"
            run_eod(files, config, first)
            run_eod(files, config, second, previous=first)
            manifest = json.loads((first / "manifest.json").read_text())
            in_run = manifest["timings_s"].get("report")
            page, each, size = time_page(first, None, args.repeats, root / "scratch")
            page_prev, _, size_prev = time_page(second, first, args.repeats, root / "scratch")
            ref = statistics.median(pandas_reference(first) for _ in range(args.repeats))
            print(f"{n:,} accounts ({10 * n:,} positions): page {page:.2f} s (median of "
                  f"{', '.join(f'{t:.2f}' for t in each)}), {size / 1e6:.2f} MB; with "
                  f"--previous-run {page_prev:.2f} s, {size_prev / 1e6:.2f} MB; in the eod run "
                  f"itself (cold imports) {in_run} s; plain pandas aggregates (no figures, no "
                  f"page) {ref:.2f} s")


if __name__ == "__main__":
    main()
