"""``riskmodel waterfall``: every scenario through close-outs and the loss waterfall, the
clearing-house view, and the outputs (written atomically under ``--out``).

Files: ``waterfall.parquet`` (one row per scenario, :data:`WATERFALL_COLUMNS`), ``adl.parquet``
(one row per counterparty position deleveraged, :data:`riskmodel.waterfall.allocation.
ADL_COLUMNS`), ``cover.parquet`` (one row per member, :data:`riskmodel.waterfall.cover.
COVER_COLUMNS`), ``report.html`` and ``manifest.json``.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import multiprocessing
import time
from collections.abc import Callable, Collection, Iterator
from concurrent.futures import ProcessPoolExecutor, as_completed
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from riskmodel import __version__
from riskmodel.config import WaterfallConfig
from riskmodel.errors import ModelError, UsageError
from riskmodel.io.outputs import staged_output, write_json, write_table
from riskmodel.waterfall.allocation import ADL_COLUMNS, Allocation, allocate
from riskmodel.waterfall.book import WaterfallBook, load_book
from riskmodel.waterfall.cover import CoverState, CoverTracker, FullClose
from riskmodel.waterfall.rounds import MAX_BAND, Outcome, ScenarioRunner
from riskmodel.waterfall.scenarios import (
    NOW,
    Scenario,
    default_scenarios,
    describe,
    file_scenarios,
    universe_of,
)

WATERFALL_COLUMNS = [
    "scenario", "source", "scope", "move", "vol_shift", "rounds", "max_impact", "engine_sets",
    "liquidated", "closed_in_full", "defaults", "notional_closed", "slippage", "penalties",
    "penalties_to_fund", "collateral_used", "bankruptcy_loss", "fund_available", "fund_used",
    "fund_left", "adl_amount", "adl_count", "socialised", "uncovered", "cover_1", "cover_2"]
CONSERVATION_TOL = 1e-9


@dataclass
class WaterfallResult:
    """The tables, the manifest's facts and the book (for the report)."""

    waterfall: pd.DataFrame
    adl: pd.DataFrame
    cover: pd.DataFrame
    facts: dict[str, Any]
    book: WaterfallBook


@dataclass(frozen=True)
class _Spec:
    """What a run of the waterfall is asked (a worker process rebuilds its job from it)."""

    run_dir: str | Path
    scenarios_file: str | Path | None
    waterfall: WaterfallConfig | None
    cascade: bool
    only: tuple[str, ...] | None


def run_waterfall(run_dir: str | Path, *, scenarios_file: str | Path | None = None,
                  waterfall: WaterfallConfig | None = None, cascade: bool = False,
                  only: Collection[str] | None = None,
                  progress: Callable[[int, int], None] | None = None) -> WaterfallResult:
    """Run the waterfall of the ``eod`` run in ``run_dir`` (module docstring); ``waterfall``
    replaces the run's ``[waterfall]`` section; ``only`` keeps the scenarios of those labels
    (``now`` always). With ``[waterfall] workers`` > 1 the scenarios are spread over that many
    processes (identical results)."""
    start = time.perf_counter()
    spec = _Spec(run_dir, scenarios_file, waterfall, cascade,
                 None if only is None else tuple(only))
    job = _Job.load(spec)
    load_s = time.perf_counter() - start
    n = len(job.scenarios)
    workers = min(job.book.wcfg.workers, n)
    if workers <= 1:
        with _one_thread():
            chunks = [job.run(list(range(n)), progress)]
    else:
        chunks = _in_processes(job, spec, workers, progress)
    state = job.tracker.start()
    rows: list[dict[str, Any]] = []
    frames: list[pd.DataFrame] = []
    notes: dict[str, None] = {}
    spent = {"load": load_s, "scenarios": 0.0, "allocation": 0.0, "cover": 0.0}
    for chunk in chunks:
        rows += chunk.rows
        frames += chunk.adl
        notes.update(chunk.notes)
        state.merge(chunk.cover, job.tracker.n)
        for k, v in chunk.spent.items():
            spent[k] += v
    order = np.argsort([r.pop("_index") for r in rows], kind="stable")
    table = pd.DataFrame([rows[i] for i in order], columns=[*WATERFALL_COLUMNS, *_extra(job)])
    labels = table["scenario"].tolist()
    adl = (pd.concat(frames, ignore_index=True) if frames
           else pd.DataFrame({c: pd.Series(dtype=_dtype(c)) for c in ADL_COLUMNS}))
    if len(adl):
        position = {label: i for i, label in enumerate(labels)}
        adl = adl.iloc[np.argsort(adl["scenario"].map(position).to_numpy(), kind="stable")]
        adl = adl.reset_index(drop=True)
    facts = _facts(run_dir, job, table, job.tracker.summary(state, labels),
                   [c.slope for c in chunks], [c.band for c in chunks], list(notes))
    facts["timings_s"] = {k: round(v, 4) for k, v in spent.items()}
    facts["workers"] = workers
    return WaterfallResult(table, adl, job.tracker.table(state, labels), facts, job.book)


def _extra(job: _Job) -> list[str]:
    n = job.tracker.n
    return [f"cover_{n}"] if n > 2 else []


@dataclass
class _Chunk:
    """What a split of the scenarios gives: rows (with ``_index``), ADL frames, the cover
    state, notes, the screen's largest slope and band, seconds spent per step."""

    rows: list[dict[str, Any]]
    adl: list[pd.DataFrame]
    cover: CoverState
    notes: dict[str, None]
    slope: float
    band: float
    spent: dict[str, float]


@dataclass(eq=False)
class _Job:
    """A loaded run, its scenarios and the machinery that runs them."""

    book: WaterfallBook
    scenarios: list[Scenario]
    runner: ScenarioRunner
    tracker: CoverTracker
    scenarios_file: str | Path | None
    cascade: bool

    @classmethod
    def load(cls, spec: _Spec) -> _Job:
        book = load_book(spec.run_dir, spec.waterfall)
        universe = universe_of(book.view.market, book.map_book.underlyings())
        if spec.scenarios_file is not None:
            scenarios = file_scenarios(spec.scenarios_file, universe)
        else:
            if not book.wcfg.sources:
                raise UsageError("config: waterfall.sources = [] and no --scenarios file: no "
                                 "scenario to run")
            scenarios = default_scenarios(book.view.market, universe, book.config)
        if spec.only is not None:
            scenarios = [s for s in scenarios if s.source == NOW or s.label in spec.only]
        runner = ScenarioRunner(book, spec.cascade)
        tracker = CoverTracker(book, FullClose(book, runner.liquidator), book.wcfg.cover)
        return cls(book, scenarios, runner, tracker, spec.scenarios_file, spec.cascade)

    def run(self, indices: list[int], progress: Callable[[int, int], None] | None = None
            ) -> _Chunk:
        """The scenarios ``indices``, in order."""
        state = self.tracker.start()
        chunk = _Chunk([], [], state, {}, 0.0, 0.0,
                       {"scenarios": 0.0, "allocation": 0.0, "cover": 0.0})
        for done, i in enumerate(indices):
            t0 = time.perf_counter()
            outcome = self.runner.run(self.scenarios[i])
            t1 = time.perf_counter()
            allocation = allocate(self.book, outcome)
            t2 = time.perf_counter()
            covers = self.tracker.add(state, i, outcome)
            chunk.spent["scenarios"] += t1 - t0
            chunk.spent["allocation"] += t2 - t1
            chunk.spent["cover"] += time.perf_counter() - t2
            chunk.rows.append({"_index": i, **_row(self.book, outcome, allocation, covers)})
            if len(allocation.adl):
                chunk.adl.append(allocation.adl)
            chunk.notes.update(dict.fromkeys(outcome.notes))
            chunk.slope = max(chunk.slope, outcome.state.max_slope)
            chunk.band = max(chunk.band, outcome.state.band)
            if progress is not None:
                progress(done + 1, len(indices))
        chunk.notes.update(dict.fromkeys(self.runner.slippage.notes))
        return chunk


@contextmanager
def _one_thread() -> Iterator[None]:
    """The engine on one numba thread: a scenario margins small books, where starting the
    kernels' threads costs more than it saves (far more on a busy machine)."""
    import numba

    before = numba.get_num_threads()
    numba.set_num_threads(1)
    try:
        yield
    finally:
        numba.set_num_threads(before)


_WORKER: dict[str, _Job] = {}


def _start_worker(spec: _Spec) -> None:
    import numba

    numba.set_num_threads(1)
    _WORKER["job"] = _Job.load(spec)


def _work(indices: list[int]) -> _Chunk:
    return _WORKER["job"].run(indices)


def _in_processes(job: _Job, spec: _Spec, workers: int,
                  progress: Callable[[int, int], None] | None) -> list[_Chunk]:
    """The scenarios in ``workers`` fresh processes (spawned: the engine's threads are not
    safe to fork), each loading the run once; interleaved splits balance the load."""
    n = len(job.scenarios)
    splits = [list(range(j, n, workers * 4)) for j in range(min(workers * 4, n))]
    context = multiprocessing.get_context("spawn")
    chunks = []
    with ProcessPoolExecutor(workers, mp_context=context, initializer=_start_worker,
                             initargs=(spec,)) as pool:
        done = 0
        for future in as_completed([pool.submit(_work, s) for s in splits]):
            chunk = future.result()
            chunks.append(chunk)
            done += len(chunk.rows)
            if progress is not None:
                progress(done, n)
    return chunks


def _dtype(column: str) -> Any:
    if column in ("scenario", "account_id", "netting_set", "member", "instrument_id"):
        return object
    return np.int64 if column == "rank" else np.float64


def _row(book: WaterfallBook, outcome: Outcome, a: Allocation, covers: dict[str, float]
         ) -> dict[str, Any]:
    """One scenario's line of ``waterfall.parquet``; checks conservation."""
    s, st = outcome.scenario, outcome.state
    paid = a.fund_used + a.adl_amount + a.socialised + a.uncovered
    if abs(paid - a.bankruptcy_loss) > CONSERVATION_TOL * max(1.0, a.bankruptcy_loss):
        raise ModelError(f"waterfall: scenario {s.label!r} allocates {paid!r} of a bankruptcy "
                         f"loss of {a.bankruptcy_loss!r}")
    defaulted = st.bankrupt > 0
    return {
        "scenario": s.label, "source": s.source, "scope": s.scope, "move": s.move,
        "vol_shift": s.vol_shift, "rounds": outcome.rounds,
        "max_impact": float(np.max(np.abs(outcome.marks.x - s.moves), initial=0.0)),
        "engine_sets": st.engine_sets, "liquidated": int(st.liquidated.sum()),
        "closed_in_full": int(st.closed_full.sum()), "defaults": int(defaulted.sum()),
        "notional_closed": float(st.notional.sum()), "slippage": float(st.slippage.sum()),
        "penalties": float(st.collected.sum()), "penalties_to_fund": a.penalties_to_fund,
        "collateral_used": float(np.maximum(book.equity0[defaulted], 0.0).sum()),
        "bankruptcy_loss": a.bankruptcy_loss, "fund_available": a.fund_available,
        "fund_used": a.fund_used, "fund_left": a.fund_left, "adl_amount": a.adl_amount,
        "adl_count": a.adl_count, "socialised": a.socialised, "uncovered": a.uncovered,
        **covers,
    }


def _facts(run_dir: str | Path, job: _Job, table: pd.DataFrame, cover: dict[str, Any],
           slopes: list[float], bands: list[float], notes: list[str]) -> dict[str, Any]:
    """The manifest's content but for timings."""
    book, scenarios = job.book, job.scenarios
    w = book.wcfg
    worst = int(table["bankruptcy_loss"].to_numpy().argmax()) if len(table) else 0
    slope, band = max(slopes, default=0.0), max(bands, default=0.0)
    if slope > MAX_BAND / 2:
        notes.append(f"the engine's maintenance margin at a scenario's prices exceeded the "
                     f"pro-rata estimate by up to {slope:.3g} x the move, beyond what the "
                     f"screen widens to ({MAX_BAND:g}): a set outside it could have been "
                     "missed; set waterfall.screen_band = inf to re-margin every set a "
                     "scenario moves")
    by_source = describe(scenarios)["source"].value_counts()
    return {
        "riskmodel_version": __version__,
        "created_at": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "run": str(run_dir),
        "market_date": book.view.time.isoformat(),
        "config_sha256": book.config.digest(),
        "waterfall": {k: (list(v) if isinstance(v, tuple) else v)
                      for k, v in dataclasses.asdict(w).items()},
        "cascade": job.cascade,
        "netting_sets": book.n_sets,
        "members": {"count": book.members.n_members, "source": book.members.source},
        "scenarios": {"count": len(scenarios), "file": None if job.scenarios_file is None
                      else str(job.scenarios_file), "by_source": {str(k): int(v) for k, v in
                                                              by_source.items()}},
        "slippage": ("order-book depth file " + str(w.depth_file) if w.depth_file
                     else "square-root rule"),
        "screen": {"band": w.screen_band, "widest_band": band,
                   "engine_sets": int(table["engine_sets"].sum()), "max_slope": slope},
        "worst": {k: (v.item() if isinstance(v, np.generic) else v)
                  for k, v in table.iloc[worst].to_dict().items()} if len(table) else None,
        "cover": cover,
        "notes": [*book.members.notes, *notes],
    }


def write_waterfall(run_dir: str | Path, out: str | Path, *,
                    scenarios_file: str | Path | None = None,
                    waterfall: WaterfallConfig | None = None, cascade: bool = False,
                    only: Collection[str] | None = None,
                    progress: Callable[[int, int], None] | None = None) -> dict[str, Any]:
    """Run the waterfall and write its outputs under ``out`` (module docstring); returns the
    manifest. Nothing is written unless everything succeeds."""
    from riskmodel.report.waterfall import write_report  # the page's plotting stack

    start = time.perf_counter()
    result = run_waterfall(run_dir, scenarios_file=scenarios_file, waterfall=waterfall,
                           cascade=cascade, only=only, progress=progress)
    manifest = dict(result.facts)
    with staged_output(out) as staging:
        write_table(result.waterfall, staging / "waterfall.parquet")
        write_table(result.adl, staging / "adl.parquet")
        write_table(result.cover, staging / "cover.parquet")
        write_report(result.waterfall, result.adl, result.cover, manifest,
                     staging / "report.html",
                     currency=result.book.config.collateral.reporting_currency)
        manifest["timings_s"]["total"] = round(time.perf_counter() - start, 4)
        write_json(manifest, staging / "manifest.json")
    return manifest
