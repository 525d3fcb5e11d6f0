"""The live book: every netting set and position, changed in place by trades, and the indices
that make a tick cost what it touches.

Positions are numbered once and never moved: the run's netted positions first (netting-set
order, as in ``attribution.parquet``), then each position a trade opens, appended. A position
closed by a trade keeps its number with quantity 0 (a later trade may reopen it) and is left
out of every book margined. Netting sets are numbered the same way: the run's sets, every
other set of the run's accounts table (collateral alone, no position), then the sets trades
open. Per factor, the positions it drives (its own instruments and the options whose
implied-vol index it is) are kept as an array, so that a tick finds them without a search.
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np
import pandas as pd

from riskmodel.portfolio.netting import ZERO_TOLERANCE, Book

_KEY = tuple[str, str]


class _Growing:
    """A 1-D array that appends in amortised constant time."""

    def __init__(self, values: np.ndarray) -> None:
        self._data = np.array(values, copy=True)
        self.n = len(values)

    @property
    def view(self) -> np.ndarray:
        return self._data[:self.n]

    def append(self, value: float | int) -> int:
        if self.n == len(self._data):
            grown = np.empty(max(16, 2 * len(self._data)), dtype=self._data.dtype)
            grown[:self.n] = self._data[:self.n]
            self._data = grown
        self._data[self.n] = value
        self.n += 1
        return self.n - 1


class LiveBook:
    """Netting sets and positions of the live state (module docstring).

    Parameters
    ----------
    positions : DataFrame
        The run's netted positions (``account_id, netting_set, instrument_id, quantity``),
        grouped by netting set in the run's order.
    accounts : DataFrame
        The run's accounts table (``account_id, netting_set``): sets without a position too.
    axis : Index
        The instrument axis (``instrument_id`` of each P&L row).
    driven : list of int ndarray
        Per factor, the instrument rows it drives.
    """

    def __init__(self, positions: pd.DataFrame, accounts: pd.DataFrame, axis: pd.Index,
                 driven: list[np.ndarray]) -> None:
        self.axis = axis
        # positions within a set are margined in instrument_id order, as eod nets them
        self.rank = np.empty(len(axis), dtype=np.int64)
        self.rank[np.argsort(np.asarray(axis, dtype=object).astype(str), kind="stable")] = \
            np.arange(len(axis))
        keys = pd.MultiIndex.from_arrays([positions["account_id"].astype(str).to_numpy(),
                                          positions["netting_set"].astype(str).to_numpy()])
        set_code, set_keys = pd.factorize(keys, sort=False)
        self.account: list[str] = [k[0] for k in set_keys]
        self.netting_set: list[str] = [k[1] for k in set_keys]
        extra = accounts[["account_id", "netting_set"]].astype(str)
        self._ids: tuple[np.ndarray, np.ndarray] | None = None
        self.index: dict[_KEY, int] = {k: i for i, k in enumerate(zip(self.account,
                                                                       self.netting_set))}
        for key in zip(extra["account_id"], extra["netting_set"]):
            if key not in self.index:
                self._add_set(key)
        self.base_sets = len(self.account)  # the sets trades open come after these
        instr = axis.get_indexer(positions["instrument_id"].astype(str).to_numpy())
        if (instr < 0).any():
            raise ValueError("a position of the run is not on its instrument axis")
        order = np.argsort(set_code, kind="stable")
        self.set_of = _Growing(set_code[order].astype(np.int64))
        self.instr = _Growing(instr[order].astype(np.int64))
        self.qty = _Growing(positions["quantity"].to_numpy(np.float64)[order])
        self.base_positions = self.qty.n  # the positions trades open come after these
        counts = np.bincount(set_code, minlength=len(set_keys))
        self.base_ptr = np.zeros(len(set_keys) + 1, dtype=np.int64)
        np.cumsum(counts, out=self.base_ptr[1:])
        self.extra: dict[int, list[int]] = defaultdict(list)
        self._slot = np.zeros(0, dtype=np.int64)  # open_positions' scratch
        # positions by instrument (CSR), then per factor those of the instruments it drives
        by_instrument = np.argsort(self.instr.view, kind="stable")
        ptr = np.zeros(len(axis) + 1, dtype=np.int64)
        np.cumsum(np.bincount(self.instr.view, minlength=len(axis)), out=ptr[1:])
        self.of_factor = [np.sort(np.concatenate(
            [by_instrument[ptr[i]:ptr[i + 1]] for i in rows] or [np.zeros(0, np.int64)]))
            for rows in driven]
        self.factor_extra: list[list[int]] = [[] for _ in driven]
        self._groups: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = {}
        self.drivers_of = [[] for _ in range(len(axis))]  # type: list[list[int]]
        for k, rows in enumerate(driven):
            for i in rows:
                self.drivers_of[i].append(k)

    # -------------------------------------------------------------------------- sets

    @property
    def n_sets(self) -> int:
        return len(self.account)

    @property
    def n_positions(self) -> int:
        return self.qty.n

    def _add_set(self, key: _KEY) -> int:
        self.index[key] = len(self.account)
        self.account.append(key[0])
        self.netting_set.append(key[1])
        self._ids = None
        return self.index[key]

    def ids(self) -> tuple[np.ndarray, np.ndarray]:
        """``account_id`` and ``netting_set`` of every set, as object arrays (kept until a set
        is added)."""
        if self._ids is None:
            self._ids = (np.asarray(self.account, dtype=object),
                         np.asarray(self.netting_set, dtype=object))
        return self._ids

    def set_index(self, account_id: str, netting_set: str) -> int:
        """The set's number, opening it (with no position) when new."""
        key = (account_id, netting_set)
        found = self.index.get(key)
        return found if found is not None else self._add_set(key)

    def key(self, s: int) -> _KEY:
        return self.account[s], self.netting_set[s]

    # --------------------------------------------------------------------- positions

    def positions_of(self, s: int) -> np.ndarray:
        """Every position number of set ``s`` (closed ones included)."""
        base = (np.arange(self.base_ptr[s], self.base_ptr[s + 1])
                if s < len(self.base_ptr) - 1 else np.zeros(0, np.int64))
        extra = self.extra.get(s)
        return base if not extra else np.concatenate([base, np.asarray(extra, np.int64)])

    def holds(self, s: int) -> bool:
        """Whether set ``s`` holds an open position."""
        return bool(np.any(self.qty.view[self.positions_of(s)] != 0))

    def trade(self, s: int, instrument: int, quantity: float) -> tuple[int, float]:
        """Add ``quantity`` of instrument row ``instrument`` to set ``s``; returns the position's
        number and the quantity it held before. A position netting to zero (within
        :data:`riskmodel.portfolio.netting.ZERO_TOLERANCE` of the quantities netted, as eod
        nets) is closed at exactly 0."""
        held = self.positions_of(s)
        at = held[self.instr.view[held] == instrument]
        if len(at):
            p = int(at[0])
        else:
            p = self.qty.append(0.0)
            self.set_of.append(s)
            self.instr.append(instrument)
            self.extra[s].append(p)
            for k in self.drivers_of[instrument]:
                self.factor_extra[k].append(p)
                self._groups.pop(k, None)
        before = float(self.qty.view[p])
        after = before + quantity
        if abs(after) <= ZERO_TOLERANCE * (abs(before) + abs(quantity)):
            after = 0.0
        self.qty.view[p] = after
        return p, before

    def driven_positions(self, factor: int) -> np.ndarray:
        """The positions factor ``factor`` drives (closed ones included)."""
        extra = self.factor_extra[factor]
        base = self.of_factor[factor]
        return base if not extra else np.concatenate([base, np.asarray(extra, np.int64)])

    def factor_groups(self, factor: int
                      ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """The positions factor ``factor`` drives grouped by set: ``(positions, sets,
        starts, instruments)``, the sets in increasing order, where each one's positions
        start, and each position's instrument row (kept until a trade adds a position the
        factor drives: a tick gathers from these instead of the book's arrays)."""
        found = self._groups.get(factor)
        if found is None:
            held = self.driven_positions(factor)
            held = held[np.argsort(self.set_of.view[held], kind="stable")]
            owner = self.set_of.view[held]
            first = np.ones(len(held), dtype=bool)
            first[1:] = owner[1:] != owner[:-1]
            starts = np.flatnonzero(first)
            found = self._groups[factor] = (held, owner[starts], starts,
                                            self.instr.view[held].copy())
        return found

    def open_positions(self, sets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The open positions of ``sets`` (set numbers), grouped by set in the order given and
        by instrument_id within a set: ``(positions, indptr)``."""
        sets = np.asarray(sets, dtype=np.int64)
        n_base = len(self.base_ptr) - 1
        in_base = sets[sets < n_base]
        starts = self.base_ptr[in_base]
        lengths = self.base_ptr[in_base + 1] - starts
        # every position of each base range: start + offset within the range
        base = (np.repeat(starts - (np.cumsum(lengths) - lengths), lengths)
                + np.arange(int(lengths.sum()), dtype=np.int64))
        # each set's place in ``sets``, in a scratch kept between calls (a refresh slice
        # margins a few sets of a hundred thousand: filling a fresh one cost more than it)
        if len(self._slot) < len(self.account):
            self._slot = np.full(len(self.account) + 1024, -1, dtype=np.int64)
        slot = self._slot
        slot[sets] = np.arange(len(sets))
        extra = [p for s in sets if s in self.extra for p in self.extra[s]]
        every = np.concatenate([base, np.asarray(extra, dtype=np.int64)])
        every = every[self.qty.view[every] != 0]
        local = slot[self.set_of.view[every]]
        slot[sets] = -1
        order = np.lexsort((self.rank[self.instr.view[every]], local))
        every = every[order]
        indptr = np.zeros(len(sets) + 1, dtype=np.int64)
        np.cumsum(np.bincount(local[order], minlength=len(sets)), out=indptr[1:])
        return every, indptr

    def book(self, sets: np.ndarray, axis: pd.Index | None = None, *, ids: bool = True
             ) -> tuple[Book, np.ndarray]:
        """The netted book of ``sets`` (all holding a position) on the run's axis, or on
        ``axis`` (a market of a few instruments), and the position numbers in its order.
        ``ids=False`` leaves the ids out of the positions table (the margin figures need only
        the arrays; the tables and the attribution need the ids)."""
        positions, indptr = self.open_positions(sets)
        instr = self.instr.view[positions]
        index = (instr if axis is None else axis.get_indexer(self.axis[instr])).astype(np.int64)
        accounts, names = self.ids()
        account, netting_set = accounts[np.asarray(sets)], names[np.asarray(sets)]
        quantity = self.qty.view[positions].copy()
        table: dict[str, np.ndarray] = {"quantity": quantity, "instrument_index": index}
        if ids:
            counts = np.diff(indptr)
            table = {"account_id": np.repeat(account, counts),
                     "netting_set": np.repeat(netting_set, counts),
                     "instrument_id": np.asarray(self.axis, dtype=object)[instr], **table}
        book = Book(sets=pd.DataFrame({"account_id": account, "netting_set": netting_set}),
                    positions=pd.DataFrame(table), indptr=indptr,
                    instrument_index=np.ascontiguousarray(index), quantity=quantity)
        return book, positions
