"""What-if margin: the margin of the netting sets a set of hypothetical trades touches, answered
from a finished ``eod`` run without re-running the batch.

The run keeps, under ``DIR/state/`` (format in :mod:`riskmodel.batch.run_store`), the per-unit
scenario P&L of every instrument on a factor it priced, per horizon, the stress scenario P&L,
prices, volatilities, collateral and the exact configuration. A what-if:

1. adds the trades to the touched netting sets' netted positions (``attribution.parquet``) and
   nets them again with :func:`riskmodel.portfolio.netting.net_positions` (trades open,
   increase, reduce, flip or close positions, or open new netting sets);
2. gives each touched set its margin period of risk (:func:`riskmodel.margin.tables.set_horizons`;
   a trade adding a kind with a longer horizon moves the set to that horizon's stored P&L);
3. runs the engine's own tail kernels (:func:`riskmodel.measures.tail_measures`) and stress
   reduction (:func:`riskmodel.measures.stress_kernels.worst_loss` over the stored stress P&L,
   the grid recomputed from prices and configuration) on the touched sets only;
4. applies the margin policy through :func:`riskmodel.margin.tables.assemble_margins`, the function
   ``eod`` itself uses (add-ons, margin base, policy, distance to liquidation).

The result equals a full ``eod`` re-run with the trades appended to the positions file, as long
as the trades do not change the set of factors the run uses (they cannot add one: an instrument
whose factor the run did not price is an error). A netting set whose positions all close is
reported with zero margin and status ``closed`` (``eod`` would drop it).
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from types import SimpleNamespace
from typing import Literal

import numpy as np
import pandas as pd

from riskmodel.batch.apc_stage import apply_tools
from riskmodel.batch.run_store import RunStateData, read_state
from riskmodel.batch.stress_run import StressResult, grid_unit_pnl
from riskmodel.batch.stress_run import _grid as grid_stress  # the run's own grid reduction
from riskmodel.config import RunConfig
from riskmodel.errors import InputDataError, UsageError
from riskmodel.io.outputs import write_parquet
from riskmodel.io.positions import DEFAULT_NETTING_SET, account_types, load_positions
from riskmodel.margin.tables import (
    InstrumentArrays,
    TailArrays,
    assemble_margins,
    check_finite,
    initial_margin,
    set_horizons,
)
from riskmodel.measures import tail_measures
from riskmodel.measures.api import Float32Screen, float32_screen
from riskmodel.measures.stress_kernels import worst_loss
from riskmodel.portfolio.netting import Book, net_positions

__all__ = ["WHATIF_COLUMNS", "RunState", "book_margins", "load_run", "load_trades", "run_state",
           "what_if", "write_result"]

WHATIF_COLUMNS = [
    "account_id", "netting_set", "model_margin_before", "model_margin_after",
    "initial_margin_before", "initial_margin_after", "maintenance_margin_after", "status_after",
]
#: ``status_after`` of a netting set whose positions the trades all close.
CLOSED = "closed"

_Key = tuple[str, str]


@dataclass
class RunState:
    """A finished run, loaded once for any number of what-ifs.

    Attributes
    ----------
    run_dir : Path
    data : RunStateData
        The stored arrays and tables (:mod:`riskmodel.batch.run_store`).
    config : RunConfig
        The run's configuration, rebuilt from the stored TOML mapping and overrides.
    instruments : DataFrame
        Priced instruments in P&L-row order, indexed by ``instrument_id``.
    axis : Index
        ``instrument_id`` of each P&L row (the book's instrument axis).
    unpriced : dict
        ``instrument_id -> factor`` of the instruments whose factor the run did not price.
    spot, sigma_rel : Series
        Factor price and relative one-day volatility, indexed by factor (sorted, as in eod).
    positions : DataFrame
        Netted positions of the run (``attribution.parquet``).
    position_rows : dict
        ``(account_id, netting_set) -> row numbers`` into ``positions``.
    before : DataFrame
        ``model_margin, initial_margin`` of the run's netting sets, indexed by the set key.
    stress_blocks : dict
        Per horizon, ``(C-contiguous stress P&L block, labels)`` per stress scenario set, in the
        order the run reduced them.
    """

    run_dir: Path
    data: RunStateData
    config: RunConfig
    instruments: pd.DataFrame
    axis: pd.Index
    unpriced: dict[str, str]
    spot: pd.Series
    sigma_rel: pd.Series
    positions: pd.DataFrame
    before: pd.DataFrame
    stress_blocks: dict[int, list[tuple[np.ndarray, np.ndarray]]]
    funded: frozenset[str] = frozenset()  # accounts with a collateral row
    valuation_time: pd.Timestamp = pd.Timestamp(0)  # the run's market date (options' clock)
    # per horizon: the grid scan's per-unit P&L of the priced instruments, built on first use
    grid_units: dict[int, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)
    # per horizon: the float32 copy of the scenario P&L for the tail kernels' first pass
    screens: dict[int, Float32Screen | None] = field(default_factory=dict)

    @cached_property
    def instrument_arrays(self) -> InstrumentArrays:
        """The margin tables' per-instrument lookups of the priced instruments (axis order,
        per-unit greeks included), computed once per state."""
        return InstrumentArrays.of(self.instruments, self.spot, self.valuation_time,
                                   self.sigma_rel)

    def screen(self, horizon: int) -> Float32Screen | None:
        """The tail kernels' float32 first pass of the horizon's P&L, built on first use."""
        if horizon not in self.screens:
            self.screens[horizon] = float32_screen(self.data.pnl[horizon])
        return self.screens[horizon]

    @cached_property
    def position_rows(self) -> dict[_Key, np.ndarray]:
        """``(account_id, netting_set) -> row numbers`` into ``positions`` (built on first
        use: a what-if needs it, the liquidation of an eod run does not)."""
        rows = self.positions.groupby(["account_id", "netting_set"], sort=False).indices
        return {(str(k[0]), str(k[1])): v for k, v in rows.items()}

    @cached_property
    def account_types(self) -> dict[str, str]:
        """Each account's type, from the run's accounts table (built on first use)."""
        return account_types(self.data.collateral)

    @cached_property
    def _collateral_keys(self) -> tuple[pd.Index, pd.Index, pd.Index]:
        """The accounts table's (account_id, netting_set) keys as codes: (accounts, set names,
        one integer key per row), built on first use with one hash of the table."""
        collateral = self.data.collateral
        account_code, accounts = pd.factorize(collateral["account_id"].to_numpy(dtype=object))
        set_code, set_names = pd.factorize(collateral["netting_set"].to_numpy(dtype=object))
        key = account_code.astype(np.int64) * len(set_names) + set_code
        return pd.Index(accounts), pd.Index(set_names), pd.Index(key)

    def set_collateral(self, sets: pd.DataFrame) -> np.ndarray:
        """Collateral of each netting set (``account_id, netting_set``; the keys are unique in
        the accounts table); 0 for an isolated set with no collateral row of its own. Two
        lookups of the sets' ids and one of an integer key: a partition of 50,000 sets against
        a million accounts in tens of milliseconds, where a merge rehashed the whole table."""
        accounts, set_names, key = self._collateral_keys
        account = accounts.get_indexer(sets["account_id"].to_numpy(dtype=object))
        netting_set = set_names.get_indexer(sets["netting_set"].to_numpy(dtype=object))
        found = (account >= 0) & (netting_set >= 0)
        row = key.get_indexer(np.where(found, account * len(set_names) + netting_set, -1))
        value = self.data.collateral["collateral"].to_numpy(np.float64)
        out = np.zeros(len(sets))
        out[row >= 0] = value[row[row >= 0]]
        return out


def load_run(run_dir: str | Path) -> RunState:
    """Load the what-if state of the ``eod`` output folder ``run_dir``.

    Raises
    ------
    InputDataError
        When the folder holds no (readable) state, or the configuration rebuilt from it does
        not reproduce the run's (its SHA-256 differs from the one recorded).
    """
    run_dir = Path(run_dir)
    data = read_state(run_dir)
    config = data.config()
    if data.config_sha256 and config.digest() != data.config_sha256:
        raise InputDataError(
            f"{run_dir}/state/state.json: the stored configuration no longer resolves to the "
            "run's (config_sha256 differs; riskmodel version changed?): rerun eod"
        )
    unsupported = sorted(set(config.anti_procyclicality.tools) & {"floor", "buffer"})
    if unsupported:
        # the floor needs the long-lookback P&L and the buffer the previous run: not stored
        raise UsageError(
            f"{run_dir}: what-if does not apply the anti-procyclicality tool(s) "
            f"{', '.join(unsupported)} the run used; rerun eod with the trades added"
        )
    try:
        positions = pd.read_parquet(run_dir / "attribution.parquet",
                                    columns=["account_id", "netting_set", "instrument_id",
                                             "quantity"])
        margins = pd.read_parquet(run_dir / "margins.parquet",
                                  columns=["account_id", "netting_set", "model_margin",
                                           "initial_margin"])
    except (OSError, KeyError, ValueError) as exc:
        raise InputDataError(f"{run_dir}: cannot read the run's margin tables: {exc}") from None
    return run_state(run_dir, data, config, positions, margins)


def run_state(run_dir: Path, data: RunStateData, config: RunConfig, positions: pd.DataFrame,
              margins: pd.DataFrame) -> RunState:
    """A :class:`RunState` from a run's stored arrays and its netted positions and margins
    (``account_id, netting_set, instrument_id, quantity`` and ``account_id, netting_set,
    model_margin, initial_margin``), read from disk by :func:`load_run` or passed in memory by
    ``eod`` itself."""
    table = data.instruments
    priced = table[table["pnl_row"] >= 0].sort_values("pnl_row")
    instruments = priced.set_index("instrument_id", drop=False)
    unpriced = dict(zip(table.loc[table["pnl_row"] < 0, "instrument_id"],
                        table.loc[table["pnl_row"] < 0, "factor"]))
    positions = positions[["account_id", "netting_set", "instrument_id", "quantity"]]
    before = margins[["account_id", "netting_set", "model_margin", "initial_margin"]] \
        .set_index(["account_id", "netting_set"])
    blocks = {
        h: [(np.ascontiguousarray(data.stress_pnl[h][:, b.start:b.stop]),
             np.asarray(data.stress_labels[h][b.start:b.stop], dtype=object))
            for b in data.stress_blocks[h]]
        for h in data.stress_pnl
    }
    return RunState(
        run_dir=run_dir,
        data=data,
        config=config,
        instruments=instruments,
        axis=pd.Index(priced["instrument_id"]),
        unpriced=unpriced,
        spot=pd.Series(data.factors["price"].to_numpy(np.float64), index=data.factors["factor"]),
        sigma_rel=pd.Series(data.factors["sigma_rel"].to_numpy(np.float64),
                            index=data.factors["factor"]),
        positions=positions,
        before=before,
        stress_blocks=blocks,
        funded=frozenset(data.collateral["account_id"].tolist()),
        valuation_time=pd.Timestamp(data.valuation_time or 0),
    )


def load_trades(path: str | Path, state: RunState) -> pd.DataFrame:
    """Read a trades file (CSV or Parquet, the positions format) and check it against the run.

    Errors name the file, line or row, column and value (:class:`InputDataError`, exit 3):
    an unknown instrument, or one whose factor the run did not price.
    """
    known = list(state.axis) + list(state.unpriced)
    positions = load_positions(path, known)
    frame = positions.frame
    bad = frame["instrument_id"].isin(state.unpriced).to_numpy()
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        iid = frame["instrument_id"].iat[i]
        raise positions.table.fail(i, "instrument_id", iid, _unpriced_message(state, iid))
    ids = ["account_id", "netting_set", "instrument_id"]
    # a ticket is a few rows: plain string columns, as the run's tables have them
    return frame[[*ids, "quantity"]].astype(dict.fromkeys(ids, object))


def what_if(state: RunState, trades: pd.DataFrame) -> pd.DataFrame:
    """Margin before and after ``trades`` of every netting set they touch.

    Parameters
    ----------
    state : RunState
        From :func:`load_run`.
    trades : DataFrame
        ``account_id, instrument_id, quantity`` (signed, added to the position) and optionally
        ``netting_set`` (blank or absent: the account's ``default`` set).

    Returns
    -------
    DataFrame
        One row per touched netting set, ordered by ``(account_id, netting_set)``:
        ``account_id, netting_set, model_margin_before, model_margin_after,
        initial_margin_before, initial_margin_after, maintenance_margin_after, status_after``.
        ``*_before`` are the run's figures (0 for a set the run did not have); a set the trades
        close entirely has zero margin after and ``status_after = "closed"``.

    Raises
    ------
    InputDataError
        A missing column, a non-finite quantity, an unknown or unpriced instrument, an account
        without collateral, or a horizon the run did not store.
    """
    rows = _validate(state, trades)
    keys = sorted(set(zip(rows["account_id"], rows["netting_set"])))
    held = [state.position_rows[k] for k in keys if k in state.position_rows]
    existing = state.positions.iloc[np.concatenate(held)] if held else state.positions.iloc[:0]
    book = net_positions(pd.concat([existing, rows], ignore_index=True), state.axis)
    after = book_margins(state, book) if book.n_sets else None

    out = pd.DataFrame(keys, columns=["account_id", "netting_set"])
    idx = pd.MultiIndex.from_tuples(keys)
    before = state.before.reindex(idx)
    out["model_margin_before"] = before["model_margin"].fillna(0.0).to_numpy()
    out["initial_margin_before"] = before["initial_margin"].fillna(0.0).to_numpy()
    if after is not None:
        now = after.set_index(["account_id", "netting_set"]).reindex(idx)
    else:
        now = pd.DataFrame(index=idx, columns=["model_margin", "initial_margin",
                                               "maintenance_margin", "status"])
    out["model_margin_after"] = now["model_margin"].fillna(0.0).to_numpy(np.float64)
    out["initial_margin_after"] = now["initial_margin"].fillna(0.0).to_numpy(np.float64)
    out["maintenance_margin_after"] = now["maintenance_margin"].fillna(0.0).to_numpy(np.float64)
    out["status_after"] = now["status"].fillna(CLOSED).to_numpy(dtype=object)
    return out[WHATIF_COLUMNS]


def write_result(frame: pd.DataFrame, path: str | Path) -> None:
    """Write ``frame`` to ``path`` (CSV or Parquet by extension) atomically: a temporary file
    beside it, renamed over it only when complete."""
    target = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=target.suffix,
                               dir=target.parent if str(target.parent) else ".")
    os.close(fd)
    try:
        if target.suffix == ".parquet":
            write_parquet(frame, Path(tmp))
        else:
            frame.to_csv(tmp, index=False)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _unpriced_message(state: RunState, iid: str) -> str:
    return (f"instrument {iid!r} is on factor {state.unpriced[iid]!r}, which the run did not "
            f"price (priced: {', '.join(state.spot.index)})")


def _validate(state: RunState, trades: pd.DataFrame) -> pd.DataFrame:
    """Trades as position rows ``account_id, netting_set, instrument_id, quantity``."""
    missing = [c for c in ("account_id", "instrument_id", "quantity") if c not in trades]
    if missing:
        raise InputDataError(f"trades: missing column(s) {', '.join(map(repr, missing))}; "
                             f"found {', '.join(map(repr, trades.columns))}")
    ids = trades["instrument_id"].astype(str).str.strip().to_numpy(dtype=object)
    for i, iid in enumerate(ids):
        if iid in state.unpriced:
            raise InputDataError(f"trades row {i + 1}, column 'instrument_id': "
                                 f"{_unpriced_message(state, iid)} (value {iid!r})")
    unknown = ~pd.Index(ids).isin(state.axis)
    if unknown.any():
        i = int(np.flatnonzero(unknown)[0])
        raise InputDataError(f"trades row {i + 1}, column 'instrument_id': unknown instrument "
                             f"(value {ids[i]!r})")
    quantity = pd.to_numeric(trades["quantity"], errors="coerce").to_numpy(np.float64)
    bad = ~np.isfinite(quantity)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise InputDataError(f"trades row {i + 1}, column 'quantity': not a finite number "
                             f"(value {trades['quantity'].iat[i]!r})")
    if "netting_set" in trades:
        sets = trades["netting_set"].fillna("").astype(str).str.strip()
        sets = sets.where(sets != "", DEFAULT_NETTING_SET)
    else:
        sets = pd.Series(DEFAULT_NETTING_SET, index=trades.index)
    return pd.DataFrame({
        "account_id": trades["account_id"].astype(str).str.strip().to_numpy(dtype=object),
        "netting_set": sets.to_numpy(dtype=object),
        "instrument_id": ids,
        "quantity": quantity,
    })


def book_margins(state: RunState, book: Book) -> pd.DataFrame:
    """eod's margin table for the netting sets of ``book`` (on the state's instrument axis)."""
    return book_tables(state, book)[0]


SCREEN_MIN_SETS = 20_000  # netting sets of one horizon from which the float32 pass pays off


def book_tables(
    state: RunState,
    book: Book,
    *,
    floor_pnl: dict[int, tuple[np.ndarray, np.ndarray | None]] | None = None,
    previous: pd.Series | None = None,
    equity: np.ndarray | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    """eod's margin and attribution tables for the netting sets of ``book`` (on the state's
    instrument axis), and the anti-procyclicality facts of these sets.

    The engine's own stages on the stored scenario P&L: horizon per set, tail kernels, stress
    reduction, anti-procyclicality tools, add-ons, policy, distance to liquidation. ``eod``
    itself margins its book partition by partition through this function, so a what-if and
    a run can never disagree. ``floor_pnl``: per horizon, the P&L and weights of the
    anti-procyclicality floor's long-lookback scenarios (the run's own; what-if has none);
    ``previous``: the previous run's model margin by ``(account_id, netting_set)`` (buffer
    release); ``equity``: each set's collateral (:meth:`RunState.set_collateral`), when the
    caller has looked the whole book up at once.
    """
    measures = _book_measures(state, book, floor_pnl, previous, equity)
    margins, attribution = assemble_margins(book, state.instruments, state.spot,
                                            state.valuation_time, measures.tail,
                                            measures.stress, measures.equity, state.config,
                                            state.sigma_rel, apc_base=measures.apc_base,
                                            arrays=state.instrument_arrays)
    check_finite(margins)
    return margins, attribution, measures.apc_info


def book_initial_margin(state: RunState, book: Book) -> np.ndarray:
    """The ``initial_margin`` column of :func:`book_margins` (the same stages and policy),
    without building the tables: what each step of a partial liquidation asks for."""
    measures = _book_measures(state, book, None, None, None)
    return initial_margin(book, state.instrument_arrays, measures.tail, measures.stress,
                          measures.equity, state.config, apc_base=measures.apc_base)


@dataclass
class _BookMeasures:
    """What the margin policy of a book starts from: tail results, worst stress loss, the
    model margin after the anti-procyclicality tools (and their facts), each set's collateral."""

    tail: TailArrays
    stress: StressResult
    apc_base: np.ndarray
    apc_info: dict
    equity: np.ndarray


def _book_measures(state: RunState, book: Book,
                   floor_pnl: dict[int, tuple[np.ndarray, np.ndarray | None]] | None,
                   previous: pd.Series | None, equity: np.ndarray | None) -> _BookMeasures:
    """:func:`book_tables`' stages before the policy (see there)."""
    config = state.config
    unfunded = [a for a in book.sets["account_id"].tolist() if a not in state.funded]
    if unfunded:  # as eod: an account holding positions needs a collateral row
        account = unfunded[0]
        raise InputDataError(f"trades: account {account!r} has positions but no collateral "
                             f"row in the run's accounts file (value {account!r})")
    set_horizon = set_horizons(book, state.instruments, config, state.account_types)
    tail = TailArrays.empty(book.n_sets, len(book.quantity))
    stress = StressResult(np.zeros(book.n_sets), np.full(book.n_sets, "", dtype=object))
    floor_margin = np.zeros(book.n_sets) if floor_pnl is not None else None
    measure: Literal["es", "var"] = "es" if config.measure == "es" else "var"
    # all the grid reads of the market data
    market = SimpleNamespace(spot=state.spot, market_date=state.valuation_time)
    for h in sorted(set(set_horizon.tolist())):
        if h not in state.data.pnl:
            raise InputDataError(
                f"{state.run_dir}: a touched netting set needs the {h}-day horizon, which the run "
                f"did not compute (stored: {', '.join(f'{x}d' for x in sorted(state.data.pnl))})"
            )
        sets = np.flatnonzero(set_horizon == h)
        part, rows = book.subset(sets) if len(sets) < book.n_sets else (book, None)
        # the float32 first pass costs a copy of the matrix: worth it for a partition, not
        # for a what-if or a liquidation step (bitwise the same results either way)
        screen = state.screen(h) if part.n_sets >= SCREEN_MIN_SETS else None
        tail.put(sets, rows, tail_measures(
            state.data.pnl[h], part.indptr, part.instrument_index, part.quantity,
            config.confidence, measure=measure, weights=state.data.weights[h],
            chunk_size=config.chunk_size, pnl_checked=True, screen=screen,
        ))
        if floor_margin is not None and floor_pnl is not None:
            long_pnl, long_weights = floor_pnl[h]
            floor_margin[sets] = np.maximum(tail_measures(
                long_pnl, part.indptr, part.instrument_index, part.quantity, config.confidence,
                measure=measure, weights=long_weights, chunk_size=config.chunk_size,
                pnl_checked=True,
            ).model_measure, 0.0)
        loss, label = _stress(state, part, h, market)
        stress.loss[sets] = loss
        stress.label[sets] = label
    before = (previous.reindex(pd.MultiIndex.from_frame(book.sets)).to_numpy(np.float64)
              if previous is not None else None)
    apc_base, apc_info = apply_tools(np.maximum(tail.model_measure, 0.0), floor_margin,
                                     before, config)
    return _BookMeasures(tail, stress, apc_base, apc_info,
                         state.set_collateral(book.sets) if equity is None else equity)


def _stress(state: RunState, part: Book, h: int, market: SimpleNamespace
            ) -> tuple[np.ndarray, np.ndarray]:
    """Worst stress loss and its label per set, reduced in the run's order (historical, user
    files, grid; a later set wins only when strictly worse, floor 0), as ``evaluate_stress``."""
    n = part.n_sets
    candidates: list[tuple[np.ndarray, np.ndarray]] = []
    for pnl, labels in state.stress_blocks[h]:
        if pnl.shape[1] == 0:
            continue
        worst = np.empty(n)
        arg = np.empty(n, dtype=np.int64)
        worst_loss(pnl, part.indptr, part.instrument_index, part.quantity, worst, arg)
        candidates.append((worst, labels[arg]))
    if state.config.stress.grid.enabled:
        if h not in state.grid_units:  # the scan of every priced instrument, once per horizon
            state.grid_units[h] = grid_unit_pnl(state.instruments, market,  # type: ignore[arg-type]
                                                state.config, h)
        g = grid_stress(part, state.instruments, market, state.config,  # type: ignore[arg-type]
                        unit=state.grid_units[h])
        candidates.append((g, np.full(n, "grid", dtype=object)))
    loss = np.zeros(n)
    label = np.full(n, "", dtype=object)
    for worst, lab in candidates:
        better = worst > loss
        loss = np.where(better, worst, loss)
        label = np.where(better, lab, label)
    return loss, label
