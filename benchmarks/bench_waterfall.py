"""Benchmark: ``riskmodel waterfall --cascade`` on the 100,000-account venue of bench_eod.py.

The venue is :mod:`synthetic_book`'s (``--accounts`` accounts, 10 positions each on 500 linear
instruments and ``--options`` European options over 50 underlyings); ``riskmodel eod`` runs on
it once with bench_eod.py's configuration (Monte Carlo ``--scenarios``, t copula, EWMA, 2-day
99% ES, historical windows off, so the run's stress scenarios are the grid) plus what the
waterfall needs: an ADV of ``--adv`` per underlying (slippage and cascade impact), a 0.5%
liquidation penalty and an insurance fund of ``--fund``. Then, in this process:

* warm-up: the waterfall of two moves (compiles what the numba cache lacks);
* the waterfall with ``--cascade`` over the run's stress scenarios (here the stress grid's
  implied-vol shifts: the grid's price moves are the map's) and the liquidation map's 41 moves
  of all underlyings together (``--scopes N`` adds the 41 moves of each of the first N
  underlyings alone; ``-1`` of every one: all the default scenarios), spread over
  ``--workers`` processes, timed once (its stages from the manifest);
* the allocation step (fund, ADL, socialisation) of the ``--reference-scenarios`` scenarios with
  the largest bankruptcy losses, rerun here: the numba ADL kernel against its plain numpy twin
  (per group cumulative sums), ``--repeats`` times each, medians, results checked equal.

    python benchmarks/bench_waterfall.py --accounts 100000 --workers 2
    python benchmarks/bench_waterfall.py --accounts 5000 --options 200 --scenarios 1000
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numba
import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _timing import repeat_timed  # noqa: E402
from bench_eod import CONFIG  # noqa: E402
from synthetic_book import write_book  # noqa: E402

from riskmodel.cli import main  # noqa: E402
from riskmodel.waterfall.allocation import adl_groups, allocate, fill  # noqa: E402
from riskmodel.waterfall.book import load_book  # noqa: E402
from riskmodel.waterfall.rounds import ScenarioRunner  # noqa: E402
from riskmodel.waterfall.run import write_waterfall  # noqa: E402
from riskmodel.waterfall.scenarios import default_scenarios, universe_of  # noqa: E402


def venue(root: Path, args: argparse.Namespace) -> Path:
    """The synthetic venue and its eod run; returns the run folder."""
    files = write_book(root / "book", args.accounts, n_options=args.options)
    underlyings = pd.read_parquet(files.instruments)["underlying"].unique()
    config = CONFIG.format(scenarios=args.scenarios) + (
        "[liquidation.penalty_rates]\ndefault = 0.005\n[liquidation.impact_adv]\n"
        + "".join(f"{u} = {args.adv}\n" for u in sorted(underlyings))
        + f"[waterfall]\ninsurance_fund = {args.fund}\nworkers = {args.workers}\n")
    (root / "run.toml").write_text(config)
    start = time.perf_counter()
    assert main(["eod", "--prices", str(files.prices), "--instruments", str(files.instruments),
                 "--positions", str(files.positions), "--accounts", str(files.accounts),
                 "--config", str(root / "run.toml"), "--out", str(root / "run"),
                 "--quiet"]) == 0
    print(f"eod: {time.perf_counter() - start:.1f} s")
    return root / "run"


def chosen(run: Path, scopes: int) -> list[str] | None:
    """The scenarios timed: the run's stress scenarios (here the grid's implied-vol shifts) and
    the liquidation map's 41 moves of all underlyings together; ``--scopes N`` adds the map's
    moves of the first N underlyings alone (-1: of every one, all the default scenarios)."""
    if scopes < 0:
        return None
    book = load_book(run)
    universe = universe_of(book.view.market, book.map_book.underlyings())
    keep = {"ALL", *universe.underlyings[:scopes]}
    return [s.label for s in default_scenarios(book.view.market, universe, book.config)
            if s.source != "map" or s.scope in keep]


def allocation_reference(run: Path, labels: list[str], repeats: int) -> dict[str, float]:
    """The allocation of the scenarios ``labels``: kernel against numpy twin (medians)."""
    book = load_book(run)
    universe = universe_of(book.view.market, book.map_book.underlyings())
    chosen = [s for s in default_scenarios(book.view.market, universe, book.config)
              if s.label in labels]
    numba.set_num_threads(1)
    runner = ScenarioRunner(book, cascade=True)
    outcomes = [runner.run(s) for s in chosen]
    allocate(book, outcomes[0])  # warm
    kernel, results = repeat_timed(lambda: [allocate(book, o) for o in outcomes], repeats)
    twin, twins = repeat_timed(lambda: [allocate(book, o, twin=True) for o in outcomes],
                               repeats)
    for a, b in zip(results, twins):
        assert abs(a.adl_amount - b.adl_amount) <= 1e-9 * max(1.0, a.adl_amount)
        np.testing.assert_allclose(a.adl["loss_taken"], b.adl["loss_taken"], rtol=1e-12,
                                   atol=1e-9)
    # the fill alone, on the same inputs (each run starts from a fresh copy of the caps)
    inputs = [adl_groups(book, o) for o in outcomes]
    fill_kernel, _ = repeat_timed(lambda: [fill(g, c.copy()) for g, c in inputs], repeats)
    fill_twin, _ = repeat_timed(lambda: [fill(g, c.copy(), twin=True) for g, c in inputs],
                                repeats)
    return {"kernel": statistics.median(kernel), "twin": statistics.median(twin),
            "fill_kernel": statistics.median(fill_kernel),
            "fill_twin": statistics.median(fill_twin),
            "groups": sum(len(g.loss) for g, _ in inputs),
            "counterparties": sum(len(g.pos) for g, _ in inputs),
            "scenarios": len(outcomes), "adl_rows": sum(len(a.adl) for a in results)}


def full_run(root: Path, run: Path, only: list[str] | None) -> tuple[dict, float]:
    """Warm up on two moves, then the timed waterfall; ``(manifest, wall seconds)``."""
    warm = root / "warm.csv"
    pd.DataFrame({"scenario": ["a", "b"], "asset": ["U000", "U001"],
                  "shock": [-0.3, 0.2]}).to_csv(warm, index=False)
    config = dataclasses.replace(load_book(run).wcfg, workers=1)
    write_waterfall(run, root / "warm_out", scenarios_file=warm, waterfall=config,
                    cascade=True)
    start = time.perf_counter()

    def progress(done: int, total: int) -> None:
        print(f"  {done:,}/{total:,} scenarios, {time.perf_counter() - start:,.0f} s",
              flush=True)

    manifest = write_waterfall(run, root / "out", only=only, cascade=True, progress=progress)
    return manifest, time.perf_counter() - start


def main_bench() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--accounts", type=int, default=100_000)
    parser.add_argument("--options", type=int, default=2000)
    parser.add_argument("--scenarios", type=int, default=10_000)
    parser.add_argument("--adv", type=float, default=5e8)
    parser.add_argument("--fund", type=float, default=5e6)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--scopes", type=int, default=0,
                        help="also the map's moves of the first N underlyings alone (-1: all)")
    parser.add_argument("--reference-scenarios", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--folder", type=Path, help="keep the venue and outputs here")
    parser.add_argument("--reference-only", action="store_true",
                        help="with --folder of an earlier run: time the allocation only")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp_name:
        root = args.folder or Path(tmp_name)
        root.mkdir(parents=True, exist_ok=True)
        if args.reference_only:  # the venue, its run and the waterfall's outputs are there
            run = root / "run"
            manifest = json.loads((root / "out" / "manifest.json").read_text())
            wall = manifest["timings_s"]["total"]
        else:
            run = venue(root, args)
            manifest, wall = full_run(root, run, chosen(run, args.scopes))
        table = pd.read_parquet(root / "out" / "waterfall.parquet")
        worst = table.nlargest(args.reference_scenarios, "bankruptcy_loss")
        ref = allocation_reference(run, worst["scenario"].tolist(), args.repeats)
    n = manifest["scenarios"]["count"]
    print(json.dumps({k: manifest[k] for k in ("scenarios", "screen", "timings_s", "workers",
                                                "worst")}, indent=1, default=str))
    print(f"\n{args.accounts:,} accounts, {n:,} scenarios with --cascade on "
          f"{manifest['workers']} worker process(es): {wall:.1f} s wall "
          f"({wall / n * manifest['workers']:.2f} s per scenario per process); "
          f"cascade rounds: median {table['rounds'].median():.0f}, max {table['rounds'].max()}; "
          f"sets re-margined by the engine: {table['engine_sets'].sum():,}")
    print("| step | size | numba kernel | numpy twin | speed-up |")
    print("|---|---|---|---|---|")
    print(f"| allocation (fund, ADL, socialisation) | {ref['scenarios']} largest-loss scenarios, "
          f"{ref['adl_rows']:,} ADL rows, {args.accounts:,} accounts | {ref['kernel']:.3f} s | "
          f"{ref['twin']:.3f} s | {ref['twin'] / ref['kernel']:.2f}x |")
    print(f"| the ADL fill alone | {ref['groups']:,} groups, {ref['counterparties']:,} ranked "
          f"counterparties | {ref['fill_kernel'] * 1e3:.1f} ms | {ref['fill_twin'] * 1e3:.1f} ms "
          f"| {ref['fill_twin'] / ref['fill_kernel']:.1f}x |")


if __name__ == "__main__":
    main_bench()
