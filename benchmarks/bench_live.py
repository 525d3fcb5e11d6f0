"""Benchmark: ``riskmodel live`` replaying a crash on the venue book of ``bench_eod.py``.

The 100,000-account book of :mod:`synthetic_book` (10 positions per account on 500 linear
instruments and 2,000 options over 50 underlyings: 1,000,000 positions, 2,500 instruments) is
margined once by ``riskmodel eod`` (10,000 Monte Carlo scenarios, 2-day 99% ES, as
``bench_eod.py``). A seeded stream then replays a crash: ``--ticks`` ticks spread at random over
the 50 underlyings, each falling 30% over the stream with noise (0.2% per tick), ``--trades``
trades (random accounts and instruments, about 20,000 of notional each) and ``--transfers``
transfers, over one hour (a tick every 0.18 s).

Measured, in this order:

1. ``riskmodel live`` (the default mode) in a fresh process, as the program is run, warm numba
   cache: the whole wall time (loading, replay, final flush, writing), and the manifest's ticks
   per second and per-tick latency (the exact equity, margin level and status update of a tick;
   p50, p99, max) and the refresh and order work;
2. the same replay in process with a flush every quarter of the stream: before each flush, how
   many sets the engine at those marks (every instrument repriced afresh,
   :meth:`RemarkedMarket.at_marks`, and :func:`riskmodel.engine.margin_book` over the whole book)
   puts in liquidation and the live state does not (the lag), and after it (must be none);
3. ``--exact`` on the first ``--exact-ticks`` ticks of the same stream (every touched set
   re-margined on every tick): median seconds per tick, scaled to the stream; and against the
   default mode on those inputs, every entry of ``--exact`` into liquidation and when the
   default has the set in liquidation then or later
   (:func:`riskmodel.live.compare.liquidations_found`), and the sets each sends orders for;
4. a plain numpy reference of the same per-tick work on ``--reference-ticks`` ticks: the ticked
   underlying's instruments repriced with numpy (Black-Scholes with ``scipy.special.ndtr`` on the
   stored shocks), the touched sets' scenario losses as scipy.sparse CSR @ dense and their ES by
   ``np.partition``; median seconds per tick, scaled to the stream.

    python benchmarks/bench_live.py                      # the issue's sizes
    python benchmarks/bench_live.py --accounts 10000 --ticks 2000 --trades 200 --transfers 50
"""

from __future__ import annotations

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
from scipy.special import ndtr

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _timing import int_options  # noqa: E402
from bench_eod import CONFIG  # noqa: E402  (the eod benchmark's run: MC, EWMA, 2-day ES)
from synthetic_book import write_book  # noqa: E402


def run_cli(args: list[str]) -> float:
    """Wall seconds of ``riskmodel ARGS`` in a fresh process (the console entry point)."""
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", "from riskmodel.cli import console; console()",
                           *args], capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(done.stderr)
    return time.perf_counter() - start


def crash_stream(run: Path, folder: Path, n_ticks: int, n_trades: int, n_transfers: int,
                 seed: int = 7) -> dict[str, Path]:
    """The seeded crash (module docstring) as Parquet input files."""
    rng = np.random.default_rng(seed)
    factors = pd.read_parquet(run / "state" / "factors.parquet")
    instruments = pd.read_parquet(run / "state" / "instruments.parquet")
    accounts = pd.read_parquet(run / "state" / "collateral.parquet")["account_id"].unique()
    valuation = pd.Timestamp(json.loads((run / "state" / "state.json").read_text())
                             ["valuation_time"])
    start = (valuation.tz_localize("UTC") if valuation.tzinfo is None else valuation) \
        + pd.Timedelta(hours=14)
    which = rng.integers(0, len(factors), n_ticks)
    drift = np.log(0.7) / np.maximum(np.bincount(which, minlength=len(factors)), 1)
    log_price = np.log(factors["price"].to_numpy(np.float64))
    prices = np.empty(n_ticks)
    for j, k in enumerate(which):
        log_price[k] += drift[k] + 0.002 * rng.standard_normal()
        prices[j] = np.exp(log_price[k])
    span = n_ticks * 0.18
    files = {"ticks": folder / "ticks.parquet", "trades": folder / "trades.parquet",
             "transfers": folder / "transfers.parquet"}
    pd.DataFrame({"time": start + pd.to_timedelta(np.arange(n_ticks) * 0.18, unit="s"),
                  "asset": factors["factor"].to_numpy()[which],
                  "price": prices}).to_parquet(files["ticks"], index=False)
    tradeable = instruments[(instruments["pnl_row"] >= 0)
                            & (instruments["kind"] != "collateral")]
    pick = rng.integers(0, len(tradeable), n_trades)
    spot = factors.set_index("factor")["price"]
    unit = (tradeable["multiplier"].to_numpy()[pick]
            * spot.reindex(tradeable["factor"].to_numpy()[pick]).to_numpy())
    pd.DataFrame({
        "time": start + pd.to_timedelta(np.sort(rng.uniform(0, span, n_trades)), unit="s"),
        "account_id": accounts[rng.integers(0, len(accounts), n_trades)],
        "instrument_id": tradeable["instrument_id"].to_numpy()[pick],
        "quantity": np.round(rng.normal(0, 1, n_trades) * 2e4 / unit, 3),
    }).to_parquet(files["trades"], index=False)
    pd.DataFrame({
        "time": start + pd.to_timedelta(np.sort(rng.uniform(0, span, n_transfers)), unit="s"),
        "account_id": accounts[rng.integers(0, len(accounts), n_transfers)],
        "amount": np.round(rng.normal(5000, 10000, n_transfers), 2),
    }).to_parquet(files["transfers"], index=False)
    return files


def records(files: dict[str, Path]) -> list:
    from riskmodel.live.inputs import file_records, merged

    kinds = {"ticks": "tick", "trades": "trade", "transfers": "transfer"}
    return list(merged([file_records(p, kinds[k]) for k, p in files.items()]))


def with_flush_points(run: Path, stream: list, points: int) -> list[dict]:
    """The default replay in process, flushed ``points`` times; the sets the engine at the
    marks puts in liquidation that the live state does not, before and after each flush."""
    from riskmodel.engine import margin_book
    from riskmodel.live import LiveMargin
    from riskmodel.live.inputs import apply
    from riskmodel.live.requirements import LIQUIDATION

    live = LiveMargin(run)
    cuts = {round(len(stream) * (i + 1) / points) for i in range(points)}
    out = []
    start = time.perf_counter()
    for n, record in enumerate(stream, 1):
        apply(live, record)
        if n not in cuts:
            continue
        sets = live.open_sets()
        market = live.market.at_marks(np.arange(live.market.n_instruments))
        book, _ = live.book.book(sets, market.axis)
        engine = margin_book(market, book, live.config, collateral=live.ledger.equity[sets],
                             previous=live.previous[sets], account_types=live.account_types,
                             detail="figures").figures
        assert engine is not None
        in_liquidation = engine["status"] == "liquidation"
        before = int(np.sum(in_liquidation & (live.req.columns["status"][sets] != LIQUIDATION)))
        flushed = time.perf_counter()
        live.flush()
        flush_s = time.perf_counter() - flushed
        after = int(np.sum(in_liquidation & (live.req.columns["status"][sets] != LIQUIDATION)))
        out.append({"inputs": n, "engine_liquidation": int(in_liquidation.sum()),
                    "missed_before_flush": before, "missed_after_flush": after,
                    "flush_s": round(flush_s, 2)})
    out.append({"replay_s": round(time.perf_counter() - start, 1)})
    return out


def exact_against_default(run: Path, stream: list, n: int) -> dict:
    """``--exact`` on the inputs up to the ``n``-th tick: median seconds per tick (after two
    warm-up ticks), and against the default mode on the same inputs (flushed at the end):
    every entry of ``--exact`` into liquidation, and when the default has the set in
    liquidation at or after it (:func:`riskmodel.live.compare.liquidations_found`: missed when
    never, lag in seconds of stream); and the sets each sends liquidation orders for."""
    from riskmodel.live import LiveMargin, events_frame
    from riskmodel.live.compare import KEY, liquidations_found
    from riskmodel.live.inputs import apply

    ticks = np.cumsum([r.kind == "tick" for r in stream])
    prefix = stream[:int(np.searchsorted(ticks, n + 2)) + 1]
    frames = {}
    for exact in (True, False):
        live = LiveMargin(run, exact=exact)
        times, events = [], []
        for record in prefix:
            start = time.perf_counter()
            events += apply(live, record)
            if record.kind == "tick":
                times.append(time.perf_counter() - start)
        events += live.flush()
        frames[exact] = events_frame(events)
        if exact:
            exact_s = statistics.median(times[2:])
    start = pd.read_parquet(run / "margins.parquet").set_index(KEY)["status"]
    found = liquidations_found(frames[True], frames[False], start)
    lag = found["lag_s"].dropna()
    ordered = {m: set(map(tuple, f.loc[f["event"] == "liquidation_orders", KEY].to_numpy()))
               for m, f in frames.items()}
    entries = {m: int(((f["event"] == "status_change")
                       & (f["status_after"] == "liquidation")).sum()) for m, f in frames.items()}
    return {"exact_s_per_tick": exact_s, "ticks": n,
            "exact_entries_into_liquidation": len(found),
            "missed_by_default": int(found["found"].isna().sum()),
            "lag_s_p50": float(lag.median()) if len(lag) else 0.0,
            "lag_s_max": float(lag.max()) if len(lag) else 0.0,
            "entries": {"exact": entries[True], "default": entries[False]},
            "sets_ordered": {"exact": len(ordered[True]), "default": len(ordered[False]),
                             "exact_only": len(ordered[True] - ordered[False]),
                             "default_only": len(ordered[False] - ordered[True])}}


def numpy_reference(run: Path, stream: list, n: int, confidence: float = 0.99) -> float:
    """Median seconds per tick of a plain numpy re-margining of the touched sets: the ticked
    underlying's instruments repriced (linear: multiplier x price move; options: Black-Scholes
    by scipy ndtr at the horizon), losses as CSR @ dense, ES by np.partition."""
    state = run / "state"
    instruments = pd.read_parquet(state / "instruments.parquet")
    priced = instruments[instruments["pnl_row"] >= 0].sort_values("pnl_row")
    shocks = np.load(state / "shocks_2d.npy")
    factors = json.loads((state / "state.json").read_text())["shocks"]["2"]["model"]["factors"]
    column = {f: i for i, f in enumerate(factors)}
    pnl = np.load(state / "pnl_2d.npy")
    positions = pd.read_parquet(run / "attribution.parquet",
                                columns=["account_id", "netting_set", "instrument_id",
                                         "quantity"])
    sets = pd.MultiIndex.from_frame(positions[["account_id", "netting_set"]]).factorize()[0]
    rows = pd.Index(priced["instrument_id"]).get_indexer(positions["instrument_id"])
    book = sp.csr_matrix((positions["quantity"].to_numpy(), (sets, rows)),
                         shape=(sets.max() + 1, len(priced)))
    by_column = book.tocsc()
    spot = dict(zip(*pd.read_parquet(state / "factors.parquet")[["factor", "price"]]
                    .to_numpy().T))
    valuation = pd.Timestamp(json.loads((state / "state.json").read_text())["valuation_time"])
    expiry = pd.to_datetime(priced["expiry"], utc=True).dt.tz_convert(None)
    tau0 = ((expiry - valuation.tz_localize(None)).dt.total_seconds() / 86400 / 365).to_numpy()
    times = []
    for record in [r for r in stream if r.kind == "tick"][:n + 1]:
        start = time.perf_counter()
        _, asset, price = record.values
        spot[asset] = price
        mine = np.flatnonzero(priced["factor"].to_numpy() == asset)
        scen = price * np.exp(shocks[:, column[asset]])
        for i in mine:
            row = priced.iloc[i]
            if row["kind"] == "option":
                tau, sigma = max(tau0[i] - 2 / 365, 1e-12), row["implied_vol"]
                v0, v1 = _bs(price, row, tau0[i], sigma), _bs(scen, row, tau, sigma)
                pnl[i] = row["multiplier"] * (v1 - v0)
            else:
                pnl[i] = row["multiplier"] * (scen - price)
        touched = np.unique(by_column[:, mine].nonzero()[0])
        losses = -(book[touched] @ pnl)
        k = int(np.ceil(confidence * losses.shape[1] - 1e-9))
        var = np.partition(losses, k - 1, axis=1)[:, k - 1]
        tail = np.where(losses > var[:, None], losses, 0.0).sum(axis=1) / losses.shape[1]
        below = (losses <= var[:, None]).sum(axis=1) / losses.shape[1]
        _ = (tail + var * (below - confidence)) / (1 - confidence)
        times.append(time.perf_counter() - start)
    return statistics.median(times[1:])


def _bs(price: np.ndarray | float, row: pd.Series, tau: float, sigma: float) -> np.ndarray:
    """Black-Scholes (no spot-vol rule: the reference prices at the option's own vol)."""
    s, k, r, q = np.asarray(price), row["strike"], row["rate"], row["carry"]
    sd = sigma * np.sqrt(tau)
    d1 = (np.log(s / k) + (r - q) * tau) / sd + 0.5 * sd
    call = s * np.exp(-q * tau) * ndtr(d1) - k * np.exp(-r * tau) * ndtr(d1 - sd)
    return call if row["option_type"] == "call" else call - s * np.exp(-q * tau) + k * np.exp(
        -r * tau)


def main_bench() -> None:
    args = int_options(__doc__, accounts=100_000, options=2000, scenarios=10_000,
                       ticks=20_000, trades=2_000, transfers=500, flush_points=2,
                       exact_ticks=120, reference_ticks=10)
    with tempfile.TemporaryDirectory() as tmp_name:
        root = Path(tmp_name)
        (root / "run.toml").write_text(CONFIG.format(scenarios=args.scenarios))
        book = write_book(root / "book", args.accounts, n_options=args.options)
        run = root / "run"
        eod_s = run_cli(["eod", "--prices", str(book.prices), "--instruments",
                         str(book.instruments), "--positions", str(book.positions),
                         "--accounts", str(book.accounts), "--config", str(root / "run.toml"),
                         "--out", str(run), "--quiet"])
        say(f"book: {args.accounts:,} accounts, {10 * args.accounts:,} positions, "
            f"{500 + args.options:,} instruments, {args.scenarios:,} scenarios (eod "
            f"{eod_s:.1f} s)")
        files = crash_stream(run, root, args.ticks, args.trades, args.transfers)
        say(f"stream: {args.ticks:,} ticks over 50 underlyings falling 30%, {args.trades:,} "
            f"trades, {args.transfers:,} transfers")
        live_args = ["live", "--run", str(run), "--ticks", str(files["ticks"]), "--trades",
                     str(files["trades"]), "--transfers", str(files["transfers"]), "--quiet"]
        wall = run_cli([*live_args, "--out", str(root / "live")])
        manifest = json.loads((root / "live" / "manifest.json").read_text())
        latency, total = manifest["latency"]["tick_update"], manifest["latency"]["tick_total"]
        say(f"riskmodel live (default), whole process: {wall:.1f} s; "
            f"{manifest['ticks_per_second']} ticks/s; tick update p50 {latency['p50_ms']} ms, "
            f"p99 {latency['p99_ms']} ms, max {latency['max_ms']} ms; whole tick (refresh "
            f"slice, orders) p50 {total['p50_ms']} ms, p99 {total['p99_ms']} ms; timings "
            f"{manifest['timings_s']}")
        say(f"  events {manifest['counts']['events']}; statuses at the end "
            f"{manifest['counts']['statuses']}; work {manifest['work']}; work seconds "
            f"{manifest['work_seconds']}; lag {manifest['lag']}")
        stream = records(files)
        if args.flush_points:
            say(f"flush points: {with_flush_points(run, stream, args.flush_points)}")
        versus = exact_against_default(run, stream, args.exact_ticks)
        exact_s = versus.pop("exact_s_per_tick")
        say(f"--exact: {exact_s * 1e3:.1f} ms per tick (median of the first "
            f"{args.exact_ticks} ticks), {exact_s * args.ticks:.0f} s for the stream's ticks; "
            f"against the default on those inputs: {versus}")
        reference_s = numpy_reference(run, stream, args.reference_ticks)
        say(f"numpy reference (reprice the underlying, re-margin touched sets): "
            f"{reference_s * 1e3:.1f} ms per tick (median of {args.reference_ticks}), "
            f"{reference_s * args.ticks:.0f} s for the stream's ticks")


def say(text: str) -> None:
    print(text, flush=True)


if __name__ == "__main__":
    main_bench()
