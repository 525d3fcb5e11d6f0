"""Netting: position rows become a sparse netting-set x instrument book.

Rows for the same (account, netting set, instrument) are summed; positions that net to zero are
dropped (|net| <= 1e-12 x the gross of the rows netted, so floating dust does not survive).
Netting sets are ordered by (account_id, netting_set) and positions within a set by instrument_id,
so output order never depends on the input row order.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

ZERO_TOLERANCE = 1e-12


@dataclass(frozen=True)
class Book:
    """Netting sets in CSR form over the instrument axis.

    Attributes
    ----------
    sets : DataFrame (n_sets rows): ``account_id, netting_set``.
    positions : DataFrame (n_positions rows): ``account_id, netting_set, instrument_id,
        quantity, instrument_index`` in CSR order.
    indptr : int64 ndarray of shape (n_sets + 1,)
    instrument_index : int64 ndarray of shape (n_positions,)
    quantity : float64 ndarray of shape (n_positions,)
    """

    sets: pd.DataFrame
    positions: pd.DataFrame
    indptr: np.ndarray
    instrument_index: np.ndarray
    quantity: np.ndarray

    @property
    def n_sets(self) -> int:
        return len(self.sets)

    def subset(self, sets: np.ndarray) -> tuple[Book, np.ndarray]:
        """The netting sets ``sets`` (sorted row numbers) as a book of their own, and the
        position rows of this book they hold (to scatter per-position results back)."""
        counts = np.diff(self.indptr)[sets]
        rows = np.concatenate(
            [np.arange(self.indptr[s], self.indptr[s + 1]) for s in sets]
        ) if len(sets) else np.zeros(0, dtype=np.int64)
        indptr = np.zeros(len(sets) + 1, dtype=np.int64)
        np.cumsum(counts, out=indptr[1:])
        book = Book(
            sets=self.sets.iloc[sets].reset_index(drop=True),
            positions=self.positions.iloc[rows].reset_index(drop=True),
            indptr=indptr,
            instrument_index=self.instrument_index[rows],
            quantity=self.quantity[rows],
        )
        return book, rows

    def slice(self, start: int, stop: int) -> Book:
        """Netting sets ``start:stop`` as a book of their own (a contiguous partition)."""
        p0, p1 = int(self.indptr[start]), int(self.indptr[stop])
        return Book(
            sets=self.sets.iloc[start:stop].reset_index(drop=True),
            positions=self.positions.iloc[p0:p1].reset_index(drop=True),
            indptr=self.indptr[start:stop + 1] - p0,
            instrument_index=self.instrument_index[p0:p1],
            quantity=self.quantity[p0:p1],
        )

    def set_of_position(self) -> np.ndarray:
        """Netting-set row of each position, shape (n_positions,)."""
        return np.repeat(np.arange(self.n_sets), np.diff(self.indptr))


def net_positions(rows: pd.DataFrame, instrument_ids: pd.Index) -> Book:
    """Build the book from position rows (``account_id, netting_set, instrument_id, quantity``).

    ``instrument_ids`` fixes the instrument axis: ``instrument_index`` points into it.
    """
    keys = ["account_id", "netting_set", "instrument_id"]
    grouped = rows.assign(gross=rows["quantity"].abs()).groupby(keys, sort=True, observed=True)
    netted = grouped.agg(quantity=("quantity", "sum"), gross=("gross", "sum")).reset_index()
    keep = netted["quantity"].abs() > ZERO_TOLERANCE * netted["gross"]
    netted = netted.loc[keep & (netted["quantity"] != 0), keys + ["quantity"]]
    netted = netted.reset_index(drop=True)
    index = instrument_ids.get_indexer(netted["instrument_id"])
    if (index < 0).any():  # load_positions checks this; keep the invariant explicit
        raise ValueError("position on an instrument outside the instrument axis")
    netted["instrument_index"] = index.astype(np.int64)
    set_codes, sets = pd.MultiIndex.from_frame(netted[["account_id", "netting_set"]]).factorize()
    counts = np.bincount(set_codes, minlength=len(sets)) if len(sets) else np.zeros(0, int)
    indptr = np.zeros(len(sets) + 1, dtype=np.int64)
    np.cumsum(counts, out=indptr[1:])
    return Book(
        sets=pd.DataFrame(
            {"account_id": sets.get_level_values(0).astype(str),
             "netting_set": sets.get_level_values(1).astype(str)}
        ) if len(sets) else pd.DataFrame({"account_id": [], "netting_set": []}, dtype=object),
        positions=netted,
        indptr=indptr,
        instrument_index=netted["instrument_index"].to_numpy(np.int64),
        quantity=netted["quantity"].to_numpy(np.float64),
    )
