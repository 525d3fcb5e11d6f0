"""Each netting set's collateral, looked up in the accounts table by its key.

The table has one row per ``(account_id, netting_set)`` (the keys are unique: the accounts
loader checks it) with ``collateral`` in the reporting currency; a set with no row of its own
(an isolated set its account never funded) has zero collateral.
"""

from __future__ import annotations

from functools import cached_property

import numpy as np
import pandas as pd

from riskmodel.io.positions import account_types

#: Up to this many sets, a dictionary lookup per set beats hashing the sets' ids as arrays (a
#: what-if, a liquidation step or a live query margins a handful of sets many times).
SMALL_BOOK = 64

_Key = tuple[str, str]


def _set_keys(sets: pd.DataFrame) -> list[_Key]:
    return list(zip(sets["account_id"].tolist(), sets["netting_set"].tolist()))


def _lookup(table: pd.DataFrame, column: str) -> dict[_Key, float]:
    """``(account_id, netting_set) -> column`` of each row of ``table``, for small books."""
    keys = zip(table["account_id"].to_numpy(dtype=object).tolist(),
               table["netting_set"].to_numpy(dtype=object).tolist())
    return dict(zip(keys, table[column].to_numpy(np.float64).tolist()))


class CollateralTable:
    """The accounts table as a lookup of each netting set's collateral.

    Parameters
    ----------
    table : DataFrame
        ``account_id, netting_set, collateral`` and optionally ``account_type``.
    """

    def __init__(self, table: pd.DataFrame) -> None:
        self.table = table

    @cached_property
    def funded(self) -> frozenset[str]:
        """The accounts with a collateral row."""
        return frozenset(self.table["account_id"].tolist())

    @cached_property
    def account_types(self) -> dict[str, str]:
        """Each account's type (``[horizons.account_type]``)."""
        return account_types(self.table)

    @cached_property
    def _keys(self) -> tuple[pd.Index, pd.Index, pd.Index]:
        """The table's (account_id, netting_set) keys as codes: (accounts, set names, one
        integer key per row), built with one hash of the table."""
        account_code, accounts = pd.factorize(self.table["account_id"].to_numpy(dtype=object))
        set_code, set_names = pd.factorize(self.table["netting_set"].to_numpy(dtype=object))
        key = account_code.astype(np.int64) * len(set_names) + set_code
        return pd.Index(accounts), pd.Index(set_names), pd.Index(key)

    @cached_property
    def _by_key(self) -> dict[_Key, float]:
        return _lookup(self.table, "collateral")

    def of_keys(self, keys: list[_Key]) -> np.ndarray:
        """Collateral of each ``(account_id, netting_set)`` of ``keys`` (0 without a row),
        shape (len(keys),): :meth:`of_sets` of a few sets, one dictionary lookup each."""
        by_key = self._by_key
        return np.array([by_key.get(k, 0.0) for k in keys], dtype=np.float64)

    def of_sets(self, sets: pd.DataFrame) -> np.ndarray:
        """Collateral of each netting set of ``sets`` (``account_id, netting_set``); 0 for a
        set with no row of its own. Two lookups of the sets' ids and one of an integer key: a
        partition of 50,000 sets against a million accounts in tens of milliseconds, where a
        merge rehashed the whole table."""
        if len(sets) <= SMALL_BOOK:
            return self.of_keys(_set_keys(sets))
        accounts, set_names, key = self._keys
        account = accounts.get_indexer(sets["account_id"].to_numpy(dtype=object))
        netting_set = set_names.get_indexer(sets["netting_set"].to_numpy(dtype=object))
        found = (account >= 0) & (netting_set >= 0)
        row = key.get_indexer(np.where(found, account * len(set_names) + netting_set, -1))
        value = self.table["collateral"].to_numpy(np.float64)
        out = np.zeros(len(sets))
        out[row >= 0] = value[row[row >= 0]]
        return out


class PreviousMargins:
    """The previous run's ``model_margin`` per set (``account_id, netting_set,
    model_margin``), looked up many times: :func:`previous_margins` with a dictionary built
    once for small books."""

    def __init__(self, previous: pd.DataFrame) -> None:
        self.previous = previous

    @cached_property
    def _by_key(self) -> dict[_Key, float]:
        return _lookup(self.previous, "model_margin")

    def of_sets(self, sets: pd.DataFrame) -> np.ndarray:
        """:func:`previous_margins` of ``sets`` (NaN where the previous run had no such set)."""
        if len(sets) > SMALL_BOOK:
            out = previous_margins(self.previous, sets)
            assert out is not None
            return out
        by_key = self._by_key
        return np.array([by_key.get(k, np.nan) for k in _set_keys(sets)], dtype=np.float64)


def previous_margins(previous: pd.DataFrame | None, sets: pd.DataFrame) -> np.ndarray | None:
    """The previous run's ``model_margin`` of each set of ``sets`` (NaN where it had none);
    None without a previous run."""
    if previous is None:
        return None
    merged = sets[["account_id", "netting_set"]].merge(
        previous[["account_id", "netting_set", "model_margin"]],
        on=["account_id", "netting_set"], how="left")
    return merged["model_margin"].to_numpy(np.float64)
