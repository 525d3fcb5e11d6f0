"""What changed since the previous run (``eod --previous-run DIR``) and why.

Netting sets are matched by (account, netting set). The change in total initial margin is split
into three parts (a decision; the design is silent, and an exact split would need the book
re-margined on yesterday's market):

* **positions**: the whole change of the sets that are new, closed, or whose positions changed
  (a set's positions are compared through a fingerprint, the sum over its positions of
  quantity x a fixed pseudo-random weight per instrument id, and its position count);
* **prices**: for sets with the same positions, the change their initial margin would have if
  it scaled with their gross notional (exact for linear books on log-return factors, whose
  every margin component is proportional to the price level);
* **volatility and scenarios**: the rest of those sets' change (new volatility, a new window).

Beside the split: per factor, price and one-day volatility then and now; the status migration
of every set; the sets whose initial margin moved most.
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from riskmodel.margin.policy import STATUSES
from riskmodel.report.eod_data import Positions, dictionary_codes, set_rows, status_codes

__all__ = ["Changes", "compare_previous"]

_SET_COLUMNS = ["account_id", "netting_set", "n_positions", "gross_notional", "initial_margin",
                "status"]


@dataclass(frozen=True)
class Changes:
    """The comparison with the previous run.

    Attributes
    ----------
    folder : str, the previous run's folder.
    market_date : str, its market date ("" when its manifest is missing).
    initial_margin : (previous total, today's total).
    split : DataFrame ``part, change, sets`` (positions, prices, volatility and scenarios).
    factors : DataFrame ``asset, price_before, price, price_change, sigma_before, sigma_1d,
        sigma_change, return_kind`` (factors of either run).
    migration : DataFrame, previous status (rows, with ``new``) x today's (columns, with
        ``closed``): number of sets.
    movers : DataFrame, the sets whose initial margin moved most: ``account_id, netting_set,
        initial_margin_before, initial_margin, change, reason``.
    positions_compared : bool, whether the previous run's attribution was there to compare.
    """

    folder: str
    market_date: str
    initial_margin: tuple[float, float]
    split: pd.DataFrame
    factors: pd.DataFrame
    migration: pd.DataFrame
    movers: pd.DataFrame
    positions_compared: bool


def _keys(frame: pd.DataFrame) -> pd.Index:
    return pd.Index(frame["account_id"].astype(str) + "\x1f" + frame["netting_set"].astype(str))


def _weights(ids: np.ndarray) -> np.ndarray:
    """A fixed weight in [1, 2) per instrument id (CRC-32 of its UTF-8 bytes)."""
    return 1.0 + np.array([zlib.crc32(str(i).encode()) for i in ids], np.float64) / 2.0**32


def _fingerprint(set_index: np.ndarray, instrument: np.ndarray, ids: np.ndarray,
                 quantity: np.ndarray, n_sets: int) -> tuple[np.ndarray, np.ndarray]:
    """Per set: sum of quantity x weight(instrument), and sum of its absolute values."""
    term = quantity * _weights(ids)[instrument]
    return (np.bincount(set_index, weights=term, minlength=n_sets),
            np.bincount(set_index, weights=np.abs(term), minlength=n_sets))


def _previous_fingerprint(folder: Path, prev: pd.DataFrame
                          ) -> tuple[np.ndarray, np.ndarray] | None:
    path = folder / "attribution.parquet"
    if not path.is_file():
        return None
    table = pq.read_table(path, columns=["instrument_id", "quantity"],
                          read_dictionary=["instrument_id"]).unify_dictionaries()
    rows = set_rows(prev)
    if table.num_rows != len(rows):
        return None
    codes, ids = dictionary_codes(table, "instrument_id")
    quantity = table.column("quantity").to_numpy().astype(np.float64, copy=False)
    return _fingerprint(rows, codes, ids, quantity, len(prev))


def _factor_changes(folder: Path, factors: pd.DataFrame, kinds: Mapping[str, str]
                    ) -> pd.DataFrame:
    path = folder / "factors.csv"
    before = pd.read_csv(path) if path.is_file() else pd.DataFrame(
        columns=["asset", "price", "sigma_1d"])
    out = pd.merge(before[["asset", "price", "sigma_1d"]].rename(
        columns={"price": "price_before", "sigma_1d": "sigma_before"}),
        factors[["asset", "price", "sigma_1d"]], on="asset", how="outer", sort=True)
    out["price_change"] = out["price"] / out["price_before"] - 1.0
    out["sigma_change"] = out["sigma_1d"] / out["sigma_before"] - 1.0
    out["return_kind"] = [kinds.get(a, "log") for a in out["asset"]]
    return out[["asset", "price_before", "price", "price_change", "sigma_before", "sigma_1d",
                "sigma_change", "return_kind"]]


def _migration(prev_codes: np.ndarray, now_codes: np.ndarray, match: np.ndarray,
               closed: np.ndarray) -> pd.DataFrame:
    """Sets by (previous status or ``new``) x (today's status or ``closed``)."""
    n = len(STATUSES)
    rows = np.where(match >= 0, prev_codes[np.maximum(match, 0)], n)  # n: new
    grid = np.bincount(rows * (n + 1) + now_codes, minlength=(n + 1) * (n + 1))
    grid = grid.reshape(n + 1, n + 1)
    grid[:n, n] = np.bincount(prev_codes[closed], minlength=n)
    return pd.DataFrame(grid, index=[*STATUSES, "new"], columns=[*STATUSES, "closed"])


def compare_previous(folder: str | Path, margins: pd.DataFrame, positions: Positions,
                     factors: pd.DataFrame, return_kinds: Mapping[str, str] | None = None,
                     k: int = 15) -> Changes:
    """Compare today's run (``margins``, ``positions`` read with quantities, ``factors``,
    each factor's return kind) with the run in ``folder``; see the module docstring."""
    folder = Path(folder)
    prev = pd.read_parquet(folder / "margins.parquet", columns=_SET_COLUMNS)
    manifest_path = folder / "manifest.json"
    prev_date = (json.loads(manifest_path.read_text(encoding="utf-8")).get("market_date", "")
                 if manifest_path.is_file() else "")
    match = _keys(prev).get_indexer(_keys(margins))  # previous row of each set, -1: new
    matched = np.zeros(len(prev), bool)
    matched[match[match >= 0]] = True
    closed = np.flatnonzero(~matched)
    im = margins["initial_margin"].to_numpy(np.float64)
    im_prev = prev["initial_margin"].to_numpy(np.float64)
    before = np.where(match >= 0, im_prev[np.maximum(match, 0)], 0.0)
    new = match < 0
    changed = new.copy()
    prev_print = _previous_fingerprint(folder, prev)
    if prev_print is not None and positions.quantity is not None:
        now_sum, now_abs = _fingerprint(positions.set_index, positions.instrument,
                                        positions.instrument_ids, positions.quantity,
                                        len(margins))
        p_sum, p_abs = (a[np.maximum(match, 0)] for a in prev_print)
        differs = np.abs(now_sum - p_sum) > 1e-9 * np.maximum(now_abs, p_abs)
        n_prev = prev["n_positions"].to_numpy(np.int64)[np.maximum(match, 0)]
        changed |= differs | (n_prev != margins["n_positions"].to_numpy(np.int64))
    same = ~changed
    gross = margins["gross_notional"].to_numpy(np.float64)
    gross_prev = np.where(match >= 0, prev["gross_notional"].to_numpy(np.float64)[
        np.maximum(match, 0)], 0.0)
    # the ratio first: an unchanged gross notional scales by exactly 1
    scaled = np.where(gross_prev > 0, before * (gross / np.where(gross_prev > 0, gross_prev, 1)),
                      before)
    price = np.where(same, scaled - before, 0.0)
    vol = np.where(same, im - scaled, 0.0)
    split = pd.DataFrame({
        "part": ["positions (new, closed and changed sets)", "prices", "volatility and "
                 "scenarios"],
        "change": [float(np.sum((im - before)[changed]) - im_prev[closed].sum()),
                   float(price.sum()), float(vol.sum())],
        "sets": [int(changed.sum() + closed.size), int(same.sum()), int(same.sum())],
    })
    reason = np.where(new, "new set", np.where(changed, "positions changed", "market"))
    delta = im - before
    top = np.argsort(-np.abs(delta), kind="stable")[:k]
    movers = pd.DataFrame({
        "account_id": margins["account_id"].iloc[top].to_numpy(),
        "netting_set": margins["netting_set"].iloc[top].to_numpy(),
        "initial_margin_before": before[top], "initial_margin": im[top], "change": delta[top],
        "reason": reason[top],
    })
    return Changes(str(folder), prev_date, (float(im_prev.sum()), float(im.sum())), split,
                   _factor_changes(folder, factors, return_kinds or {}),
                   _migration(status_codes(prev), status_codes(margins), match, closed),
                   movers, prev_print is not None)
