"""Positions (``account_id, instrument_id, quantity`` [, ``netting_set``]) and accounts
(``account_id, collateral`` [, ``netting_set``, ``account_type``, ``asset``, ``amount``]).

Collateral in other assets (coins): a row with ``asset`` and ``amount`` holds ``amount`` units
of ``asset`` (a price-file column, checked by ``eod``) for its netting set; ``asset`` equal to
the reporting currency (``[collateral] reporting_currency``, ``USD``) is cash, like
``collateral``. Such files may repeat an (account, netting set) on several rows, one per asset;
``collateral`` may then be blank (0). A file without ``asset`` keeps one row per set.

``account_type`` (optional, e.g. ``otc``) selects a margin period of risk in
``[horizons.account_type]``; an account has one type (blank cells inherit it).

A blank or absent ``netting_set`` means the account's cross-margined set, named ``default``.
Collateral rows with a ``netting_set`` fund that (isolated) set; rows without fund ``default``.
"""

from __future__ import annotations

import functools
import weakref
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from riskmodel.io.faults import AccountFaults
from riskmodel.io.tables import BadRow, Table, read_table

DEFAULT_NETTING_SET = "default"


@dataclass(frozen=True)
class Positions:
    """Position rows as read (not yet netted): ``account_id, netting_set, instrument_id,
    quantity`` plus ``source_row`` (0-based row in the file, for error messages). The id
    columns are categoricals whose categories may list a value no row has (``""``): go
    through the codes (:func:`id_codes`)."""

    table: Table
    frame: pd.DataFrame


@dataclass(frozen=True)
class Accounts:
    """Collateral per (account, netting set): ``account_id, netting_set, collateral`` (cash in
    the reporting currency) and ``account_type``; ``holdings``: ``account_id, netting_set,
    asset, amount, source_row`` (collateral in other assets, one row per asset held)."""

    table: Table
    frame: pd.DataFrame
    holdings: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(
        columns=["account_id", "netting_set", "asset", "amount", "source_row"]))


def _netting_sets(table: Table) -> np.ndarray:
    """The netting-set column as text, by :func:`_coded_netting_sets`' rule."""
    return np.asarray(_coded_netting_sets(table), dtype=object)


def _coded_netting_sets(table: Table) -> pd.Categorical:
    """The netting-set column as codes; no column, or a blank cell, is the default set."""
    if "netting_set" not in table.frame.columns:
        return id_categorical(np.zeros(len(table.frame), dtype=np.int8),
                              np.array([DEFAULT_NETTING_SET], dtype=object))
    codes, names = table.coded("netting_set", allow_missing=True)
    # a blank set is the default one: merge it with a set written as "default"
    merged, distinct = pd.factorize(np.where(names == "", DEFAULT_NETTING_SET, names))
    return id_categorical(merged[codes], np.asarray(distinct, dtype=object))


def id_categorical(codes: np.ndarray, names: np.ndarray) -> pd.Categorical:
    """An id column as codes into its distinct ``names``: a code of 4 bytes or fewer per row
    and each string once, where an object column held an 8-byte pointer per row."""
    return pd.Categorical.from_codes(codes, categories=pd.Index(names, dtype=object))


@functools.cache
def _text_dtype() -> Any:
    """The dtype pandas gives a column of Python strings (Arrow-backed ``str`` since pandas
    3), found once: every margin table asks, and finding it costs a Series."""
    return pd.Series(np.array([""], dtype=object)).dtype


def id_text(column: pd.Series) -> np.ndarray | pd.api.extensions.ExtensionArray:
    """An id column's values as a table column holds them: what pandas makes of its strings
    (``column.to_numpy()``). Arrow decodes a categorical's codes where pandas keeps text in
    Arrow: the same column, without a million Python strings made and read back (0.05-0.1 s
    a column of a million rows, against 0.01 s)."""
    if not isinstance(column.dtype, pd.CategoricalDtype):
        return column.to_numpy()
    text = _text_dtype()
    if getattr(text, "storage", None) != "pyarrow":
        return column.to_numpy()
    codes = column.cat.codes.to_numpy()
    values = _arrow_names(column.cat.categories)
    # pandas infers no text dtype for no values, and none for ids that are not all text
    if values is None or not len(codes) or codes.min() < 0:
        return column.to_numpy()
    decoded = pa.DictionaryArray.from_arrays(pa.array(codes), values).dictionary_decode()
    return pd.array(decoded, dtype=text)


# the categories last decoded (weakly) and their Arrow text, a few columns' worth: eod's
# partitions are slices of one book and share its categories (account, netting set and
# instrument ids), a million account ids at venue size (40 ms to check and convert, per
# partition)
_NAMES_KEPT = 4
_last_names: list[tuple[weakref.ref[pd.Index], pa.Array | None]] = []


def _arrow_names(categories: pd.Index) -> pa.Array | None:
    """A categorical's categories as Arrow text, or None when they are not all text."""
    for ref, values in _last_names:
        if ref() is categories:
            return values
    names = categories.to_numpy(dtype=object)
    values = (pa.array(names, type=pa.large_string())
              if all(isinstance(x, str) for x in names) else None)
    _last_names[:] = [(weakref.ref(categories), values),
                      *(kept for kept in _last_names if kept[0]() is not None)][:_NAMES_KEPT]
    return values


def id_codes(column: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """An id column as codes into its distinct values (``names[codes]`` is the column): free
    for the categorical columns :func:`load_positions` builds, a factorisation otherwise."""
    if isinstance(column.dtype, pd.CategoricalDtype):
        return column.cat.codes.to_numpy(), column.cat.categories.to_numpy(dtype=object)
    codes, names = pd.factorize(column.to_numpy(dtype=object))
    return codes, np.asarray(names, dtype=object)


def load_positions(path: str | Path, instrument_ids: Iterable[str],
                   faults: AccountFaults | None = None) -> Positions:
    """Read positions; every instrument must exist and every quantity be a finite number.

    The id columns are categoricals (codes per row, one string per distinct id): ten million
    positions carry three million distinct strings at most, not thirty million. With
    ``faults`` (``[run] on_account_error = "skip"``), a bad row leaves its account out (every
    row of it) instead of stopping the run; an empty ``account_id`` still does.
    """
    table = read_table(path, "positions", text_as_categories=True)
    table.require_columns(["account_id", "instrument_id", "quantity"])
    account_codes, account_names = table.coded("account_id")

    def blame(row: int, message: str) -> None:
        assert faults is not None
        faults.add(account_names[account_codes[row]], message)

    on_bad = blame if faults is not None else None
    instrument_codes, instrument_names = table.coded("instrument_id", on_bad=on_bad)
    quantity = table.numbers("quantity", what="quantity", on_bad=on_bad)
    known = pd.Index(pd.unique(np.asarray(list(instrument_ids), dtype=object)))
    unknown = (known.get_indexer(instrument_names) < 0)[instrument_codes]
    unknown &= (instrument_names != "")[instrument_codes]
    for i in np.flatnonzero(unknown).tolist():
        error = table.fail(i, "instrument_id", instrument_names[instrument_codes[i]],
                           "position on an unknown instrument")
        if faults is None:
            raise error
        blame(i, str(error))
    frame = pd.DataFrame(
        {
            "account_id": id_categorical(account_codes, account_names),
            "netting_set": _coded_netting_sets(table),
            "instrument_id": id_categorical(instrument_codes, instrument_names),
            "quantity": quantity,
            "source_row": np.arange(len(quantity), dtype=np.int64),
        }
    )
    if faults is not None and len(faults):
        frame = frame[~faults.mask(frame["account_id"])].reset_index(drop=True)
    return Positions(table, frame)


@dataclass(frozen=True)
class _Blame:
    """Where a bad accounts row goes: raised (``faults`` None), or its account left out."""

    table: Table
    accounts: np.ndarray
    faults: AccountFaults | None

    def __call__(self, row: int, column: str, value: object, problem: str) -> None:
        error = self.table.fail(row, column, value, problem)
        if self.faults is None:
            raise error
        self.faults.add(self.accounts[row], str(error))

    @property
    def on_bad(self) -> BadRow | None:
        if self.faults is None:
            return None
        faults, accounts = self.faults, self.accounts
        return lambda row, message: faults.add(accounts[row], message)


def load_accounts(path: str | Path, reporting_currency: str = "USD",
                  faults: AccountFaults | None = None) -> Accounts:
    """Read collateral; cash per (account, netting set) and holdings of other assets. With
    ``faults`` (``[run] on_account_error = "skip"``), a bad row leaves its account out instead
    of stopping the run; an empty ``account_id`` still does."""
    table = read_table(path, "accounts")
    table.require_columns(["account_id"])
    has_assets = "asset" in table.frame.columns or "amount" in table.frame.columns
    table.require_columns(["account_id", "asset", "amount"] if has_assets
                          else ["account_id", "collateral"])
    accounts = table.text("account_id")
    blame = _Blame(table, accounts, faults)
    collateral = (table.numbers("collateral", what="collateral", allow_missing=has_assets,
                                on_bad=blame.on_bad)
                  if "collateral" in table.frame.columns else np.zeros(len(accounts)))
    collateral = np.where(np.isnan(collateral), 0.0, collateral)
    sets = _netting_sets(table)
    types = (table.text("account_type", allow_missing=True)
             if "account_type" in table.frame.columns else np.full(len(accounts), "", dtype=object))
    holdings = pd.DataFrame(columns=["account_id", "netting_set", "asset", "amount",
                                     "source_row"])
    if has_assets:
        holdings, cash = _holdings(table, accounts, sets, reporting_currency, blame)
        collateral = collateral + cash
    frame = pd.DataFrame({"account_id": accounts.astype(str), "netting_set": sets.astype(str),
                          "collateral": collateral, "account_type": types.astype(str)})
    _check_types(accounts, types, blame)
    if has_assets:  # one row per asset: cash and type per set
        frame = frame.groupby(["account_id", "netting_set"], sort=False, as_index=False).agg(
            collateral=("collateral", "sum"), account_type=("account_type", "max"))
    else:
        duplicated = frame.duplicated(["account_id", "netting_set"], keep="first").to_numpy()
        for i in np.flatnonzero(duplicated).tolist():
            first = int(np.flatnonzero((accounts == accounts[i]) & (sets == sets[i]))[0])
            blame(i, "account_id", accounts[i], f"duplicate collateral row for netting set "
                  f"{sets[i]!r} (also at {table.where(first)})")
    if faults is not None and len(faults):
        frame = frame[~faults.mask(frame["account_id"])].reset_index(drop=True)
        holdings = holdings[~faults.mask(holdings["account_id"])].reset_index(drop=True)
    return Accounts(table, frame, holdings)


def _holdings(table: Table, accounts: np.ndarray, sets: np.ndarray, reporting_currency: str,
              blame: _Blame) -> tuple[pd.DataFrame, np.ndarray]:
    """Coin holdings (``asset, amount`` rows other than the reporting currency) and the cash
    of each row (``amount`` of the reporting currency)."""
    asset = table.text("asset", allow_missing=True)
    amount = table.numbers("amount", what="amount", allow_missing=True, on_bad=blame.on_bad)
    for i in np.flatnonzero((asset != "") & np.isnan(amount)).tolist():
        blame(i, "amount", None, f"missing amount of {asset[i]!r}")
    for i in np.flatnonzero((asset == "") & ~np.isnan(amount)).tolist():
        blame(i, "asset", "", "amount without an asset")
    for i in np.flatnonzero(amount < 0).tolist():
        blame(i, "amount", float(amount[i]),
              "collateral amounts must be >= 0 (a borrowed coin is a position)")
    cash = asset == reporting_currency
    held = (asset != "") & ~cash & ~np.isnan(amount)
    holdings = pd.DataFrame({"account_id": accounts[held].astype(str),
                             "netting_set": sets[held].astype(str),
                             "asset": asset[held].astype(str), "amount": amount[held],
                             "source_row": np.flatnonzero(held)})
    twice = holdings.duplicated(["account_id", "netting_set", "asset"], keep="first")
    for i in holdings.loc[twice, "source_row"].to_numpy().tolist():
        first = int(holdings.loc[(holdings["account_id"] == accounts[i])
                                 & (holdings["netting_set"] == sets[i])
                                 & (holdings["asset"] == asset[i]), "source_row"].iat[0])
        blame(i, "asset", asset[i], f"asset listed twice for this netting set (also at "
              f"{table.where(first)})")
    return holdings, np.where(cash & ~np.isnan(amount), amount, 0.0)


def _check_types(accounts: np.ndarray, types: np.ndarray, blame: _Blame) -> None:
    """An account has one type (blank cells inherit it)."""
    seen: dict[str, tuple[str, int]] = {}
    for i in np.flatnonzero(types != "").tolist():  # rows with a type only: most have none
        account, kind = accounts[i], types[i]
        if account in seen and seen[account][0] != kind:
            blame(i, "account_type", kind,
                  f"account {account!r} already has type {seen[account][0]!r} "
                  f"(at {blame.table.where(seen[account][1])})")
        seen.setdefault(account, (kind, i))


def account_types(collateral: pd.DataFrame) -> dict[str, str]:
    """Each account's type from the accounts table (accounts without one are left out)."""
    if "account_type" not in collateral.columns:
        return {}
    typed = collateral[collateral["account_type"].astype(str) != ""]
    return dict(zip(typed["account_id"], typed["account_type"].astype(str)))
