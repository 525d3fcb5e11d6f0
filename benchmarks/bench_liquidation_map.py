"""Benchmark: the venue liquidation map of a large book, against a plain numpy reference.

Book (synthetic, seeded): ``--sets`` netting sets with ``--positions-per-set`` positions each
from ``--instruments`` linear instruments on ``--underlyings`` log-return underlyings; equity
and requirements drawn so that a few per cent of the sets sit near their thresholds. The map
runs over ``[liquidation] map_points`` (41) moves of each underlying and of all together:
(underlyings + 1) x 41 revaluations of every set.

* ``riskmodel``: :func:`riskmodel.liquidation.map.liquidation_map` (instruments repriced
  once per move, then the sparse book; requirements scaled by the notional shares);
* reference: the same counts in plain numpy, position by position (P&L of each position per
  move, summed per set with ``np.bincount``), timed on the first ``--reference-scopes`` scopes
  and scaled to all of them; the counts are checked equal on those scopes.

Target: < 30 s for 100,000 sets on 2 cores. Medians of ``--repeats`` runs.

    python benchmarks/bench_liquidation_map.py --sets 100000
"""

from __future__ import annotations

import statistics

import numpy as np
import pandas as pd
from _timing import int_options, repeat_timed

from riskmodel.config import RunConfig
from riskmodel.liquidation.map import ALL, MapBook, liquidation_map, move_grid


def synthetic_book(n_sets: int, per_set: int, n_instruments: int, n_underlyings: int,
                   seed: int = 0) -> MapBook:
    rng = np.random.default_rng(seed)
    factors = [f"U{i:02d}" for i in range(n_underlyings)]
    instruments = pd.DataFrame({
        "instrument_id": [f"I{i:04d}" for i in range(n_instruments)],
        "kind": rng.choice(["future", "perpetual", "spot"], n_instruments),
        "multiplier": rng.choice([1.0, 10.0, 50.0], n_instruments),
    })
    instruments["factor"] = [factors[i % n_underlyings] for i in range(n_instruments)]
    instruments["underlying"] = instruments["factor"]
    spot = pd.Series(rng.uniform(10, 5000, n_underlyings), index=factors)
    instrument = np.sort(rng.integers(0, n_instruments, (n_sets, per_set)), axis=1).ravel()
    quantity = rng.normal(0, 1, n_sets * per_set) + 0.3  # mostly long
    unit = (instruments["multiplier"].to_numpy()[instrument]
            * spot.loc[instruments["factor"]].to_numpy()[instrument])
    quantity = quantity * 1e5 / unit  # about 100k of notional per position
    gross = np.abs(quantity * unit).reshape(n_sets, per_set).sum(axis=1)
    mm = 0.05 * gross
    equity = mm * rng.lognormal(0.6, 0.6, n_sets)
    sets = pd.DataFrame({"account_id": [f"A{i}" for i in range(n_sets)],
                         "netting_set": "default", "equity": equity,
                         "initial_margin": mm / 0.75, "maintenance_margin": mm,
                         "status": "ok"})
    return MapBook(sets=sets, indptr=np.arange(0, n_sets * per_set + 1, per_set),
                   instrument=instrument.astype(np.int64), quantity=quantity,
                   instruments=instruments, factors=factors, spot=spot,
                   return_kinds=dict.fromkeys(factors, "log"),
                   sigma_rel=pd.Series(0.02, index=factors), config=RunConfig())


def reference_counts(book: MapBook, scopes: list[str]) -> pd.DataFrame:
    """Plain numpy: per position P&L for each move, summed per set, statuses counted."""
    grid = move_grid(book.config)
    set_of = np.repeat(np.arange(book.n_sets), np.diff(book.indptr))
    factor_of = pd.Index(book.factors).get_indexer(book.instruments["factor"])[book.instrument]
    exposure = (book.quantity * book.instruments["multiplier"].to_numpy()[book.instrument]
                * book.spot.to_numpy()[factor_of])
    gross = np.abs(exposure)
    total = np.bincount(set_of, gross, minlength=book.n_sets)
    equity = book.sets["equity"].to_numpy()
    im = book.sets["initial_margin"].to_numpy()
    mm = book.sets["maintenance_margin"].to_numpy()
    rows = []
    for scope in scopes:
        on = np.ones_like(gross, dtype=bool) if scope == ALL else factor_of == factors_index(
            book, scope)
        w = np.bincount(set_of, np.where(on, gross, 0.0), minlength=book.n_sets) / total
        delta = np.bincount(set_of, np.where(on, exposure, 0.0), minlength=book.n_sets)
        for x in grid:
            e = equity + delta * x
            liq = e < mm * (1 + w * x)
            call = ~liq & (e < im * (1 + w * x))
            rows.append((scope, x, int(call.sum()), int(liq.sum())))
    return pd.DataFrame(rows, columns=["scope", "move", "n_margin_call", "n_liquidation"])


def factors_index(book: MapBook, scope: str) -> int:
    return book.factors.index(scope)


def main_bench() -> None:
    args = int_options(__doc__, sets=100_000, positions_per_set=10, instruments=500,
                       underlyings=50, reference_scopes=5, repeats=3)
    book = synthetic_book(args.sets, args.positions_per_set, args.instruments, args.underlyings)
    scopes = [*book.factors, ALL]
    liquidation_map(book, scopes=scopes[:1])  # warm-up
    times, table = repeat_timed(lambda: liquidation_map(book), args.repeats)
    checked = scopes[:args.reference_scopes - 1] + [ALL]
    ref_times, ref = repeat_timed(lambda: reference_counts(book, checked), args.repeats)
    ours = table[table["scope"].isin(checked)].reset_index(drop=True)
    ref = ref.set_index(["scope", "move"]).loc[list(zip(ours["scope"], ours["move"]))]
    assert (ours["n_liquidation"].to_numpy() == ref["n_liquidation"].to_numpy()).all()
    assert (ours["n_margin_call"].to_numpy() == ref["n_margin_call"].to_numpy()).all()
    ref_all = statistics.median(ref_times) * len(scopes) / len(checked)
    print(f"book: {args.sets:,} sets x {args.positions_per_set} positions, "
          f"{args.instruments} instruments on {args.underlyings} underlyings; "
          f"{len(scopes)} scopes x {len(move_grid(book.config))} moves")
    print(f"riskmodel liquidation_map: median {statistics.median(times):.2f} s "
          f"(runs: {', '.join(f'{t:.2f}' for t in times)})")
    print(f"numpy reference (counts only, {len(checked)} scopes scaled to {len(scopes)}): "
          f"{ref_all:.2f} s; counts equal on the checked scopes")


if __name__ == "__main__":
    main_bench()
