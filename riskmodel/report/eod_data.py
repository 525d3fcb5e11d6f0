"""What the end-of-day page shows, computed from the run's tables: whole-book aggregates in a
few vectorised passes, so that a book of a million netting sets costs seconds.

Inputs are the run's own outputs: the margin table (one row per netting set), the attribution
(one row per position, read back from ``attribution.parquet`` with the columns needed only),
the instruments of the priced market, the manifest (its resolved configuration supplies the
rates) and the liquidation orders.

**Margin by underlying and by instrument kind** (a decision; the design is silent). Initial
margin is a netting-set figure. The page allocates it to the set's positions in proportion to
their flat-rate margin (``|notional| x flat rate``, the rate by underlying, else kind, else
default; by notional in a set without flat-rate margin): the allocations sum to the set's
initial margin, none is negative, and initial over flat-rate margin by underlying or kind is
the flat-weighted average of that ratio over the sets holding it. Euler contributions, which
net a hedge's legs against each other (one leg positive, the other negative), are shown as
such in the contributors section instead.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from riskmodel.config.rates import RateTable
from riskmodel.io.arrow_memory import return_arrow_memory
from riskmodel.margin.policy import STATUSES, margin_base, position_rates

__all__ = ["Positions", "exposure_tables", "instrument_contributions", "largest_calls",
           "nearest_liquidation", "policy_tools", "read_positions", "status_codes",
           "status_table", "stress_table", "top_contributors"]

_TOLERANCE = 1e-9  # relative: two margins computed the same way agree far closer


def status_codes(margins: pd.DataFrame) -> np.ndarray:
    """The status of each netting set as an index into :data:`STATUSES`, shape (n_sets,)."""
    return np.asarray(pd.Categorical(margins["status"], categories=STATUSES).codes, np.int64)


def _by_code(codes: np.ndarray, n: int, values: np.ndarray | None = None) -> np.ndarray:
    return np.bincount(codes, weights=values, minlength=n)[:n]


def status_table(margins: pd.DataFrame, codes: np.ndarray) -> pd.DataFrame:
    """Counts and amounts by status (rows ``STATUSES`` then ``total``).

    Columns: ``sets, share, initial_margin, maintenance_margin, equity, flat_rate_margin,
    gross_notional, im_over_flat, call_amount, liquidation_penalty``.
    """
    n = len(STATUSES)
    out = pd.DataFrame({"status": [*STATUSES, "total"]})
    sets = _by_code(codes, n)
    out["sets"] = np.append(sets, sets.sum()).astype(np.int64)
    out["share"] = out["sets"] / max(len(margins), 1)
    for col in ("initial_margin", "maintenance_margin", "equity", "flat_rate_margin",
                "gross_notional", "call_amount", "liquidation_penalty"):
        if col in margins:
            values = _by_code(codes, n, margins[col].to_numpy(np.float64))
            out[col] = np.append(values, values.sum())
        else:
            out[col] = 0.0
    flat = out["flat_rate_margin"].to_numpy()
    out["im_over_flat"] = np.divide(out["initial_margin"].to_numpy(), flat,
                                    out=np.full(len(out), np.nan), where=flat > 0)
    return out


@dataclass(frozen=True)
class Positions:
    """The attribution's columns the page needs, one entry per position (file order).

    Attributes
    ----------
    set_index : int64 ndarray of shape (n_positions,), the row of the position's netting set in
        the margin table.
    instrument : int64 ndarray of shape (n_positions,), index into ``instrument_ids``.
    instrument_ids : ndarray of str, the distinct instrument ids.
    notional, contribution : float64 ndarrays of shape (n_positions,).
    quantity : float64 ndarray of shape (n_positions,) or None when not read.
    """

    set_index: np.ndarray
    instrument: np.ndarray
    instrument_ids: np.ndarray
    notional: np.ndarray
    contribution: np.ndarray
    quantity: np.ndarray | None


def dictionary_codes(table: Any, column: str) -> tuple[np.ndarray, np.ndarray]:
    """(codes, values) of a dictionary-read string column, its chunks' dictionaries unified."""
    chunks = table.column(column).chunks
    if not chunks:
        return np.zeros(0, np.int64), np.zeros(0, dtype=object)
    values = np.asarray(chunks[0].dictionary.to_pylist(), dtype=object)
    codes = [np.asarray(c.indices.to_numpy(zero_copy_only=False), np.int64) for c in chunks]
    return (np.concatenate(codes) if len(codes) > 1 else codes[0]), values


def set_rows(margins: pd.DataFrame) -> np.ndarray:
    """The margin-table row of every position: the attribution lists each set's
    ``n_positions`` positions together, sets in margin-table order."""
    return np.repeat(np.arange(len(margins), dtype=np.int64),
                     margins["n_positions"].to_numpy(np.int64))


def read_positions(path: Path, margins: pd.DataFrame, *, quantity: bool = False,
                   check_sets: int = 4096) -> Positions:
    """Read the page's columns of ``attribution.parquet`` (written by the same run).

    The file lists each set's positions together, sets in margin-table order; the row count is
    checked, and the account and netting set of the first position of ``check_sets`` sets
    spread over the book (all of them in a smaller book): a full comparison would turn a
    million ids into Python strings for a check the writer already guarantees.

    Raises
    ------
    ValueError
        If the file's rows do not line up with ``margins``.
    """
    # the ids of the order check are read, checked and dropped before the columns kept: at
    # venue size each is ten million rows
    table = pq.read_table(path, columns=["account_id", "netting_set"],
                          read_dictionary=["account_id", "netting_set"])
    rows = set_rows(margins)
    if table.num_rows != len(rows):
        raise ValueError(f"{path}: {table.num_rows} positions, the margin table counts "
                         f"{len(rows)}")
    count = margins["n_positions"].to_numpy(np.int64)
    held = np.flatnonzero(count > 0)  # a set funded but holding nothing has no row
    sample = held[np.unique(np.linspace(0, len(held) - 1, min(check_sets, len(held)))
                            .astype(np.int64))] if len(held) else held
    first = (np.cumsum(count) - count)[sample]
    for key in ("account_id", "netting_set"):
        column = table.column(key)
        found = [str(column[int(i)].as_py()) for i in first]
        if found != margins[key].iloc[sample].astype(str).tolist():
            raise ValueError(f"{path}: positions are not in the margin table's set order "
                             f"({key})")
    del table
    instrument, ids = dictionary_codes(
        pq.read_table(path, columns=["instrument_id"], read_dictionary=["instrument_id"])
        .unify_dictionaries(), "instrument_id")
    # a column at a time, each read dropped once it is an array (a copy: the file has a row
    # group per partition), and the pool's pages handed back: at venue size a read of all
    # the columns at once held 0.2 GiB more at its peak
    floats = {}
    for name in ["notional", "contribution"] + (["quantity"] if quantity else []):
        column = pq.read_table(path, columns=[name]).column(name)
        floats[name] = column.to_numpy().astype(np.float64, copy=False)
        del column
        return_arrow_memory()
    return Positions(rows, instrument, ids, floats["notional"], floats["contribution"],
                     floats.get("quantity"))


def _allocated_im(pos: Positions, margins: pd.DataFrame, flat: np.ndarray) -> np.ndarray:
    """Each position's share of its set's initial margin (module docstring); ``flat``: the
    position's flat-rate margin, shape (n_positions,)."""
    n = len(margins)
    count = margins["n_positions"].to_numpy(np.int64)
    im = margins["initial_margin"].to_numpy(np.float64)
    set_flat = np.bincount(pos.set_index, weights=flat, minlength=n)
    # per set, initial margin per unit of flat-rate margin: one multiplication per position
    out = np.repeat(np.divide(im, set_flat, out=np.zeros(n), where=set_flat > 0), count)
    out *= flat  # in place: at venue size each temporary is ten million floats
    by_notional = set_flat <= 0
    if np.any(by_notional & (count > 0)):  # no flat-rate margin in the set: by notional
        set_notional = np.bincount(pos.set_index, weights=pos.notional, minlength=n)
        per = np.divide(im, set_notional, out=np.zeros(n), where=by_notional & (set_notional > 0))
        out += np.repeat(per, count) * pos.notional
    return out


def instrument_meta(pos: Positions, instruments: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """(kind, underlying) of each distinct instrument of ``pos``, as str arrays."""
    meta = instruments.drop_duplicates("instrument_id").set_index("instrument_id") \
        .reindex(pd.Index(pos.instrument_ids))
    return (meta["kind"].fillna("unknown").astype(str).to_numpy(),
            meta["underlying"].fillna("unknown").astype(str).to_numpy())


def _rate_times_notional(pos: Positions, rates: RateTable, kind: np.ndarray,
                         und: np.ndarray) -> np.ndarray:
    """Each position's rate of ``rates`` (by its instrument's ``kind`` and underlying ``und``,
    :func:`instrument_meta`) times its notional; formed in place, since at venue size each
    temporary is ten million floats."""
    out = position_rates(rates, kind.tolist(), und.tolist())[pos.instrument]
    out *= pos.notional
    return out


def exposure_tables(pos: Positions, margins: pd.DataFrame, instruments: pd.DataFrame,
                    flat_rates: RateTable) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Initial margin (allocated), flat-rate margin and gross notional by underlying and by
    instrument kind, largest initial margin first, each with a ``total`` row.

    ``instruments``: ``instrument_id, kind, underlying`` for every instrument held.
    """
    n = len(pos.instrument_ids)
    kind, und = instrument_meta(pos, instruments)
    flat = _rate_times_notional(pos, flat_rates, kind, und)
    per_instrument = pd.DataFrame({
        "underlying": und, "kind": kind, "positions": _by_code(pos.instrument, n),
        "initial_margin": _by_code(pos.instrument, n, _allocated_im(pos, margins, flat)),
        "flat_rate_margin": _by_code(pos.instrument, n, flat),
        "gross_notional": _by_code(pos.instrument, n, pos.notional),
    })
    return _grouped(per_instrument, "underlying"), _grouped(per_instrument, "kind")


def _grouped(per_instrument: pd.DataFrame, by: str) -> pd.DataFrame:
    sums = ["positions", "initial_margin", "flat_rate_margin", "gross_notional"]
    out = per_instrument.groupby(by, sort=False)[sums].sum().reset_index()
    out = out.sort_values("initial_margin", ascending=False, kind="stable")
    total = pd.DataFrame({by: ["total"], **{c: [out[c].sum()] for c in sums}})
    out = pd.concat([out, total], ignore_index=True)
    im, flat, gross = (out[c].to_numpy(np.float64) for c in sums[1:])
    out["im_over_flat"] = np.divide(im, flat, out=np.full(len(out), np.nan), where=flat > 0)
    out["im_over_gross"] = np.divide(im, gross, out=np.full(len(out), np.nan), where=gross > 0)
    return out.rename(columns={by: "group"})


def _first_k(order_key: np.ndarray, k: int) -> np.ndarray:
    """Indices of the ``k`` smallest values of ``order_key``, smallest first (ties by index)."""
    k = min(k, order_key.size)
    if k == 0:
        return np.zeros(0, np.int64)
    part = np.argpartition(order_key, k - 1)[:k] if k < order_key.size else \
        np.arange(order_key.size)
    return part[np.lexsort((part, order_key[part]))]


_SET_COLUMNS = ["account_id", "netting_set", "status", "equity", "initial_margin",
                "maintenance_margin", "margin_level", "call_amount", "dominant_underlying",
                "liq_move_dominant", "liq_sigmas_dominant"]


def nearest_liquidation(margins: pd.DataFrame, codes: np.ndarray, k: int = 20) -> pd.DataFrame:
    """The ``k`` sets not in liquidation with the lowest margin level (closest to it)."""
    level = margins["margin_level"].to_numpy(np.float64)
    alive = codes != STATUSES.index("liquidation")
    rows = np.flatnonzero(alive)[_first_k(level[alive], k)]
    return margins.iloc[rows][[c for c in _SET_COLUMNS if c in margins]]


def largest_calls(margins: pd.DataFrame, k: int = 20) -> pd.DataFrame:
    """The ``k`` sets with the largest margin call (call amount > 0), largest first."""
    call = margins["call_amount"].to_numpy(np.float64)
    owing = np.flatnonzero(call > 0)
    rows = owing[_first_k(-call[owing], k)]
    return margins.iloc[rows][[c for c in _SET_COLUMNS if c in margins]]


def top_contributors(pos: Positions, margins: pd.DataFrame, k: int = 20) -> pd.DataFrame:
    """The ``k`` positions with the largest Euler contribution to their set's model margin."""
    rows = _first_k(-pos.contribution, k)
    sets = pos.set_index[rows]
    model = margins["model_margin"].to_numpy(np.float64)[sets]
    return pd.DataFrame({
        "account_id": margins["account_id"].iloc[sets].to_numpy(),
        "netting_set": margins["netting_set"].iloc[sets].to_numpy(),
        "instrument_id": pos.instrument_ids[pos.instrument[rows]],
        "notional": pos.notional[rows], "contribution": pos.contribution[rows],
        "set_model_margin": model,
        "set_status": margins["status"].iloc[sets].to_numpy(),
    })


def instrument_contributions(pos: Positions, k: int = 15) -> pd.DataFrame:
    """Euler contributions summed per instrument over every set: the ``k`` largest, with the
    number of positions and their gross notional."""
    n = len(pos.instrument_ids)
    total = _by_code(pos.instrument, n, pos.contribution)
    rows = _first_k(-total, k)
    return pd.DataFrame({
        "instrument_id": pos.instrument_ids[rows], "contribution": total[rows],
        "positions": _by_code(pos.instrument, n)[rows].astype(np.int64),
        "gross_notional": _by_code(pos.instrument, n, pos.notional)[rows],
        "share_of_total": total[rows] / max(float(total.sum()), np.finfo(float).tiny),
    })


def stress_table(margins: pd.DataFrame, k: int = 15) -> pd.DataFrame:
    """Per stress scenario that was some set's worst: the sets where it was, the stress loss
    summed over them and how many of them lose more than their initial margin in it."""
    label = margins["stress_scenario"].astype("category")
    codes = np.asarray(label.cat.codes, np.int64)
    names = np.asarray(label.cat.categories, dtype=object)
    loss = margins["stress_loss"].to_numpy(np.float64)
    over = loss > margins["initial_margin"].to_numpy(np.float64)
    valid = codes >= 0
    n = len(names)
    out = pd.DataFrame({
        "scenario": names, "sets": _by_code(codes[valid], n).astype(np.int64),
        "stress_loss": _by_code(codes[valid], n, loss[valid]),
        "above_im": _by_code(codes[valid], n, over[valid].astype(np.float64)).astype(np.int64),
    })
    return out.sort_values(["stress_loss", "sets"], ascending=False, kind="stable").head(k)


def _close(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.abs(a - b) <= _TOLERANCE * np.maximum(np.abs(a), np.abs(b))


def policy_tools(margins: pd.DataFrame, manifest: Mapping[str, Any],
                 initial_floor: np.ndarray | None) -> list[tuple[str, str, str]]:
    """(tool, sets where it bound, what it means) for each policy tool of the run.

    ``initial_floor`` (per set, optional): ``max(min_initial_margin, sum |notional| x initial
    floor rate, maintenance floor)``; where given, the sets whose initial margin is that floor.
    """
    n = len(margins)
    im = margins["initial_margin"].to_numpy(np.float64)
    mm = margins["maintenance_margin"].to_numpy(np.float64)
    floor_mm = margins["maintenance_floor"].to_numpy(np.float64)
    cfg = manifest.get("config", {})
    stress_cfg = cfg.get("stress", {})
    mode, weight = stress_cfg.get("mode", "report"), float(stress_cfg.get("weight", 1.0))
    model = margins["model_margin"].to_numpy(np.float64)
    stress_bound = int(np.sum(margin_base(model, margins["stress_loss"].to_numpy(np.float64),
                                          mode, weight) > model))
    rows: list[tuple[str, str, str]] = [
        ("stress", _of(stress_bound, n) if mode != "report" else "reported only",
         f"stress.mode = {mode}: " + ("the stress loss raised the margin base above the model "
                                       "margin" if mode != "report" else
                                       "stress losses are shown, not charged")),
    ]
    apc = manifest.get("anti_procyclicality", {}) or {}
    tools: Sequence[str] = apc.get("tools", []) or []
    if "floor" in apc:
        rows.append(("anti-procyclicality floor", _of(apc["floor"]["bound_sets"], n),
                     "the ten-year model margin was higher than today's"))
    if "buffer" in apc:
        rows.append(("anti-procyclicality buffer", _of(apc["buffer"]["applied_sets"], n),
                     f"buffer of {apc['buffer']['buffer']:.0%} charged; released for "
                     f"{apc['buffer']['released_sets']:,} sets whose model margin rose by more "
                     "than the release trigger"))
    if "stressed_weight" in tools:
        rows.append(("stressed observations", "every set",
                     "stressed windows carry part of the scenario weight"))
    if not tools:
        rows.append(("anti-procyclicality tools", "none configured", ""))
    addons = margins["addons"].to_numpy(np.float64) if "addons" in margins else np.zeros(n)
    rows.append(("add-ons (liquidity, concentration)", _of(int(np.sum(addons > 0)), n),
                 f"{float(addons.sum()):,.0f} charged in total"))
    if initial_floor is not None:
        rows.append(("initial-margin floor", _of(int(np.sum(_close(im, initial_floor)
                                                             & (initial_floor > 0))), n),
                     "initial margin = max(minimum, notional x floor rate, maintenance "
                     "floor)"))
    rows.append(("maintenance floor", _of(int(np.sum(_close(mm, floor_mm) & (floor_mm > 0)
                                                     & (mm > 0))), n),
                 "maintenance margin = notional x maintenance rate, above "
                 f"{cfg.get('margin', {}).get('mm_ratio', 0.75):g} x initial margin"))
    return rows


def _of(k: int, n: int) -> str:
    return f"{k:,} of {n:,} sets" if n else "0"


def initial_floor(pos: Positions, margins: pd.DataFrame, instruments: pd.DataFrame,
                  margin_config: Mapping[str, Any]) -> np.ndarray:
    """Per set: ``max(min_initial_margin, sum |notional| x initial floor rate, maintenance
    floor)``, the floor :mod:`riskmodel.margin.policy` applies."""
    kind, und = instrument_meta(pos, instruments)
    charge = _by_code(pos.set_index, len(margins), _rate_times_notional(
        pos, RateTable(**margin_config["initial_floor_rates"]), kind, und))
    return np.maximum(np.maximum(float(margin_config.get("min_initial_margin", 0.0)), charge),
                      margins["maintenance_floor"].to_numpy(np.float64))
