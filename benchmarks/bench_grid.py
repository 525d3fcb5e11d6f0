"""Benchmark: the scenario-grid method (``--method grid``) on the synthetic 100,000-account venue.

The book is :mod:`synthetic_book` as ``bench_eod.py`` builds it (10 positions per account on 500
linear instruments and ``--options`` European options over 50 underlyings, 1,500 days), margined
by the shipped grid profile (9 moves x vol up and down, 7 extended moves, 2 skew rotations: 27
scenarios and the 2 basis ones, each underlying scanned on its own).

Reported, on the machine it runs on:

* the whole ``riskmodel eod --method grid`` run (a fresh process each time, the numba cache warm
  from a first run; loading, pricing, margining, liquidation and writing included), median of
  ``--repeats``, beside the same run with Monte Carlo (``--scenarios``) for scale;
* in process, on the run's stored market and netted book: pricing the grid (every instrument
  once per scenario), the rule's scan with its contingencies (:func:`riskmodel.engine.grid.
  grid_measure`) and the engine's whole margin (``margin_book``, figures), medians of
  ``--repeats``;
* the plain numpy/scipy reference of the scan, in the same process: sparse (set, underlying) x
  instrument and (set, expiry) x instrument matrices times the per-unit P&L, the static
  discounts, dampening and skew signs as array operations, the minimum per (set, underlying)
  and the sum per set; its losses are checked equal to the kernel's (1e-9 relative).

    python benchmarks/bench_grid.py --accounts 100000 --repeats 3
"""

from __future__ import annotations

import json
import statistics
import sys
import tempfile
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _timing import int_options, repeat_timed, timed  # noqa: E402
from bench_eod import CONFIG, run_once  # noqa: E402
from synthetic_book import write_book  # noqa: E402

from riskmodel.engine.grid import grid_layout, grid_measure, grid_pnl  # noqa: E402
from riskmodel.margin.grid_kernels import grid_rule_losses  # noqa: E402
from riskmodel.portfolio.netting import net_positions  # noqa: E402
from riskmodel.whatif import load_run  # noqa: E402

MC = CONFIG  # bench_eod's run: 2-day horizon, EWMA, no historical stress windows
GRID = CONFIG.replace('method = "mc"\nscenarios = {scenarios}', 'method = "grid"')


def numba_scan(market, book, config) -> np.ndarray:
    """The rule loss of every set with the engine's kernel alone (no contingencies)."""
    lay = grid_layout(market, config.grid)
    n_sets, n_pos = book.n_sets, len(book.quantity)
    worst, basis = np.empty(n_sets), np.empty(n_sets)
    scenario, share = np.empty(n_pos, dtype=np.int64), np.empty(n_pos)
    grid_rule_losses(market.model[config.horizon].pnl, lay.base, lay.und, lay.group,
                     lay.pos_disc, lay.neg_disc, lay.basis_factor, lay.scan.dampening,
                     lay.scan.skew, book.indptr, book.instrument_index, book.quantity, worst,
                     basis, scenario, share, np.empty((0, lay.scan.n)))
    return worst


def numpy_scan(market, book, config) -> np.ndarray:
    """The rule loss of every set of ``book`` with numpy and scipy.sparse (module docstring)."""
    lay = grid_layout(market, config.grid)
    pnl = market.model[config.horizon].pnl
    n_scan = lay.scan.n
    i, q = book.instrument_index, book.quantity
    set_of = book.set_of_position()
    su_key, su_code = np.unique(set_of * (lay.und.max() + 1) + lay.und[i], return_inverse=True)
    option = lay.group[i] >= 0
    sg_key, sg_code = np.unique(set_of[option] * (lay.group.max() + 1) + lay.group[i][option],
                                return_inverse=True)
    n_su, n_sg, n_i = len(su_key), len(sg_key), pnl.shape[0]
    linear = sp.csr_matrix((q[~option], (su_code[~option], i[~option])), shape=(n_su, n_i))
    total = (linear @ pnl[:, :n_scan]) * lay.scan.dampening
    groups = sp.csr_matrix((q[option], (sg_code, i[option])), shape=(n_sg, n_i))
    value = groups @ (lay.base[:, None] + pnl)
    today = groups @ lay.base
    g = sg_key % (lay.group.max() + 1)
    scan = value[:, :n_scan]
    disc = np.where(scan >= 0, lay.pos_disc[g][:, None], lay.neg_disc[g][:, None])
    e = (scan * disc - today[:, None]) * lay.scan.dampening
    e = np.where(lay.scan.skew & (e > 0), -e, e)
    basis = np.minimum(np.minimum(value[:, n_scan], value[:, n_scan + 1]) - today, 0.0)
    # each (set, expiry) belongs to one (set, underlying): add its P&L there
    owner = np.zeros(n_sg, dtype=np.int64)
    owner[sg_code] = su_code[option]
    to_su = sp.csr_matrix((np.ones(n_sg), (owner, np.arange(n_sg))), shape=(n_su, n_sg))
    total = total + to_su @ e
    worst = np.minimum(total.min(axis=1), to_su @ (basis * lay.basis_factor[g]))
    return -np.bincount(su_key // (lay.und.max() + 1), weights=worst, minlength=book.n_sets)


def main() -> None:
    args = int_options(__doc__, accounts=100_000, options=2000, repeats=3, scenarios=10_000)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        files = write_book(root / "book", args.accounts, n_options=args.options)
        # the generator funds each account for the model's margin (a few per cent of its gross
        # notional); the rule asks about three times that, so its run gets three times the
        # collateral, and about as few sets are liquidated in both runs
        accounts = pd.read_parquet(files.accounts)
        funded = root / "book" / "accounts-grid.parquet"
        accounts.assign(collateral=3.0 * accounts["collateral"]).to_parquet(funded, index=False)
        walls, stages = {}, {}
        for name, text in (("grid", GRID), ("mc", MC.format(scenarios=args.scenarios))):
            config = root / f"{name}.toml"
            config.write_text(text)
            out = root / f"out-{name}"
            book_files = replace(files, accounts=funded) if name == "grid" else files
            run_once(book_files, config, out)  # warms the numba cache
            runs = [run_once(book_files, config, out) for _ in range(args.repeats)]
            walls[name] = [r["wall_s"] for r in runs]
            stages[name] = runs[len(runs) // 2]["timings"]
            counts = json.loads((out / "manifest.json").read_text())["counts"]["by_status"]
            print(f"{name}: sets by status {counts}; stages (s) {stages[name]}")
        run = load_run(root / "out-grid")
        market, config = run.market, run.config
        book = net_positions(run.positions, market.axis)
        collateral = run.collateral.of_sets(book.sets)
        instruments = market.instruments
        pricing, _ = repeat_timed(lambda: grid_pnl(instruments, market.spot, {},
                                                   market.valuation_time, config, 2),
                                  args.repeats)
        timed(lambda: grid_measure(market, book, config, 2))  # the layout, once per market
        kernel, _ = repeat_timed(lambda: numba_scan(market, book, config), args.repeats)
        scan, measure = repeat_timed(lambda: grid_measure(market, book, config, 2),
                                     args.repeats)
        whole, _ = repeat_timed(lambda: run.margin(book, "figures"), args.repeats)
        timed(lambda: numpy_scan(market, book, config))  # warm
        reference, losses = repeat_timed(lambda: numpy_scan(market, book, config),
                                         args.repeats)
        np.testing.assert_allclose(losses, measure.var, rtol=1e-9, atol=1e-6)
        del collateral
    med = statistics.median
    n_pos = len(book.quantity)
    print(f"{args.accounts:,} accounts, {n_pos:,} positions, {len(instruments):,} instruments, "
          f"{market.model[2].pnl.shape[1]} grid columns")
    print(pd.DataFrame({
        "median s": [med(walls["grid"]), med(walls["mc"]), med(pricing), med(kernel),
                     med(scan), med(whole), med(reference)],
    }, index=["eod --method grid (whole process)",
              f"eod --method mc, {args.scenarios:,} scenarios (whole process)",
              "grid pricing (every instrument x scenario)",
              "rule scan, numba kernel",
              "scan + contingencies + labels (grid_measure)",
              "margin_book, figures (engine: scan, stress, policy)",
              "numpy/scipy reference of the scan"]).round(3).to_string())


if __name__ == "__main__":
    main()
