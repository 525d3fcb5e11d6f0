"""Benchmark: one what-if margin query against the finished run it reads, in the same process.

Builds the demo inputs (``--accounts`` accounts on S&P 500, NASDAQ and WTI from ``arch.data``),
runs ``riskmodel eod`` once (``--method``, ``--scenarios`` for Monte Carlo) and times:

* ``load_run``: reading ``DIR/state`` and the margin tables (once per session of queries);
* one ``what_if`` of a three-row trade ticket on one account (a new position, an increase and
  a flip) that also moves the set to a longer horizon, after one warm-up (JIT), as the median
  of ``--repeats`` calls. Target: < 50 ms, process start excluded.

The reference is what the what-if replaces: the full ``eod`` run (timed once).

    python benchmarks/bench_whatif.py --accounts 3000 --method fhs --repeats 20
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import pandas as pd

from riskmodel.cli import main
from riskmodel.demo import write_demo_inputs
from riskmodel.whatif import load_run, what_if


def _ticket(attribution: pd.DataFrame) -> pd.DataFrame:
    """Three trades on the first account holding a perpetual alone (so its horizon moves)."""
    sets = attribution.groupby(["account_id", "netting_set"])["instrument_id"].agg(list)
    perp_only = [k for k, v in sets.items() if v == ["SPX-PERP"]]
    account, netting_set = perp_only[0] if perp_only else sets.index[0]
    held = attribution[(attribution["account_id"] == account)
                       & (attribution["netting_set"] == netting_set)]
    first = held.iloc[0]
    return pd.DataFrame({
        "account_id": [account] * 3,
        "netting_set": [netting_set] * 3,
        "instrument_id": ["ES", first["instrument_id"], "NQ"],
        "quantity": [2.0, -2.0 * float(first["quantity"]), -1.0],
    })


def main_bench() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--accounts", type=int, default=3000)
    parser.add_argument("--method", choices=["fhs", "hs", "mc"], default="fhs")
    parser.add_argument("--scenarios", type=int, default=10_000, help="Monte Carlo only")
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        files = write_demo_inputs(tmp / "inputs", n_accounts=args.accounts)
        start = time.perf_counter()
        rc = main(["eod", "--prices", str(files.prices), "--instruments", str(files.instruments),
                   "--positions", str(files.positions), "--accounts", str(files.accounts),
                   "--config", str(files.config), "--method", args.method,
                   "--scenarios", str(args.scenarios), "--out", str(tmp / "run"), "--quiet"])
        eod_s = time.perf_counter() - start
        if rc != 0:
            raise SystemExit(f"eod failed with exit code {rc}")

        start = time.perf_counter()
        state = load_run(tmp / "run")
        load_s = time.perf_counter() - start
        ticket = _ticket(state.positions)
        what_if(state, ticket)  # warm-up: JIT of the tail and stress kernels
        times = []
        for _ in range(args.repeats):
            start = time.perf_counter()
            result = what_if(state, ticket)
            times.append(time.perf_counter() - start)
        n_scen = {h: p.shape[1] for h, p in state.data.pnl.items()}

    median = statistics.median(times)
    print(f"run: {args.accounts} accounts, {args.method}, scenarios per horizon {n_scen}")
    print(f"eod (reference, once):      {eod_s * 1e3:9.1f} ms")
    print(f"load_run (once):            {load_s * 1e3:9.1f} ms")
    print(f"what_if median of {args.repeats:<3d}:      {median * 1e3:9.1f} ms "
          f"(min {min(times) * 1e3:.1f}, max {max(times) * 1e3:.1f}; target < 50 ms: "
          f"{'met' if median < 0.050 else 'MISSED'})")
    print(result.to_string(index=False))


if __name__ == "__main__":
    main_bench()
