"""Benchmark: one what-if margin query against the finished run it reads, in the same process.

Builds the demo inputs (``--accounts`` accounts on S&P 500, NASDAQ and WTI from ``arch.data``),
runs ``riskmodel eod`` once (``--method``, ``--scenarios`` for Monte Carlo) and times:

* ``load_run``: reading ``DIR/state`` and the margin tables (once per session of queries);
* one ``what_if`` of a three-row trade ticket on one account (a new position, an increase and
  a flip) that also moves the set to a longer horizon, after one warm-up (JIT), as the median
  (min, max) of ``--repeats`` calls. Target: <= 10 ms, process start excluded;
* the plain numpy reference of the what-if's core, timed the same way: the touched set's
  scenario losses as a dense dot product of its quantities with its instruments' P&L rows,
  ``np.partition`` for the VaR and the mean beyond it for the ES (no stress, add-ons, policy
  or tables);
* ``margin_book`` of a 30-set book of the run (``detail="tables"`` and ``"figures"``): what an
  intraday loop or a liquidation asks of the engine many times.

What the what-if replaces: the full ``eod`` run (timed once).

    python benchmarks/bench_whatif.py --accounts 3000 --method fhs --repeats 20
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from riskmodel.cli import main
from riskmodel.demo import write_demo_inputs
from riskmodel.portfolio.netting import Book, net_positions
from riskmodel.whatif import LoadedRun, load_run, what_if


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


def _timed(call: Callable[[], object], repeats: int) -> list[float]:
    """Seconds of each of ``repeats`` calls, after one warm-up call (JIT, caches)."""
    call()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return times


def _touched_book(state: LoadedRun, ticket: pd.DataFrame) -> Book:
    """The ticket's set after the trades, netted (what the reference margins)."""
    key = (str(ticket["account_id"].iat[0]), str(ticket["netting_set"].iat[0]))
    held = state.positions.iloc[state.position_rows[key]]
    return net_positions(pd.concat([held, ticket], ignore_index=True), state.axis)


def _numpy_core(pnl: np.ndarray, rows: np.ndarray, quantity: np.ndarray,
                confidence: float) -> tuple[float, float]:
    """The reference: one set's losses (dense dot product of its quantities with its rows of
    the per-unit P&L, shape (n_scenarios,)), VaR by ``np.partition``, ES the mean beyond."""
    losses = -(quantity @ pnl[rows])
    k = int(np.ceil(confidence * len(losses))) - 1
    part = np.partition(losses, k)
    var = part[k]
    return float(var), float(part[k:].mean())


def _line(label: str, times: list[float], target: float | None = None) -> str:
    median = statistics.median(times)
    text = (f"{label:<34s}{median * 1e3:9.2f} ms (min {min(times) * 1e3:.2f}, "
            f"max {max(times) * 1e3:.2f})")
    if target is not None:
        text += f"; target <= {target * 1e3:.0f} ms: {'met' if median <= target else 'MISSED'}"
    return text


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
        times = _timed(lambda: what_if(state, ticket), args.repeats)
        result = what_if(state, ticket)
        book = _touched_book(state, ticket)
        horizon = max(state.market.horizons)  # the ticket moves the set to the longest
        pnl = state.market.model[horizon].pnl
        confidence = state.config.confidence
        reference = _timed(lambda: _numpy_core(pnl, book.instrument_index, book.quantity,
                                               confidence), args.repeats)
        keys = list(state.position_rows)[:30]
        book30 = net_positions(state.positions.iloc[np.concatenate(
            [state.position_rows[k] for k in keys])], state.axis)
        tables = _timed(lambda: state.margin(book30, detail="tables"), args.repeats)
        figures = _timed(lambda: state.margin(book30, detail="figures"), args.repeats)
        n_scen = {h: m.pnl.shape[1] for h, m in state.market.model.items()}

    print(f"run: {args.accounts} accounts, {args.method}, scenarios per horizon {n_scen}")
    print(f"eod (what the what-if replaces, once): {eod_s * 1e3:9.1f} ms")
    print(f"load_run (once):                       {load_s * 1e3:9.1f} ms")
    print(_line(f"what_if, median of {args.repeats}:", times, target=0.010))
    print(_line(f"numpy core (1 set, {horizon}d), median:", reference))
    print(f"what_if / numpy core: {statistics.median(times) / statistics.median(reference):.1f}x")
    print(_line("margin_book 30 sets, tables:", tables))
    print(_line("margin_book 30 sets, figures:", figures))
    print(result.to_string(index=False))


if __name__ == "__main__":
    main_bench()
