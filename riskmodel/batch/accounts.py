"""Which accounts an ``eod`` run margins: every account of the accounts file, those that hold
only collateral included (zero requirements, their equity, status ``ok``), and none whose
inputs are bad when ``[run] on_account_error = "skip"`` (:mod:`riskmodel.io.faults`).

An account whose positions all net to zero needs no collateral row: coverage is checked on the
netted book, not on the rows as read.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from riskmodel.errors import InputDataError
from riskmodel.io.faults import AccountFaults
from riskmodel.io.instruments import Instruments, expired_options
from riskmodel.io.positions import Accounts, Positions
from riskmodel.portfolio.netting import Book


def uncovered(book: Book, positions: Positions, accounts: Accounts,
              faults: AccountFaults | None) -> None:
    """Every account holding a position after netting needs a collateral row (zero is allowed,
    absent is not): an input error naming the account's first positions row, or with
    ``faults`` the account is left out."""
    funded = pd.Index(pd.unique(accounts.frame["account_id"].to_numpy(dtype=object)))
    held = pd.unique(book.sets["account_id"].to_numpy(dtype=object))
    missing = held[funded.get_indexer(held) < 0]
    if not len(missing):
        return
    frame = positions.frame
    rows = frame.loc[frame["account_id"].isin(list(missing)), ["account_id", "source_row"]]
    first = rows.groupby("account_id", observed=True, sort=False)["source_row"].min()
    for account in missing:
        error = InputDataError(
            f"{positions.table.where(int(first[account]))}, column 'account_id': account "
            f"{account!r} has positions but no collateral row in {accounts.table.path} "
            f"(value {account!r})")
        if faults is None:
            raise error
        faults.add(account, str(error))


def expired_holdings(book: Book, instruments: Instruments, valuation_time: pd.Timestamp,
                     axis: pd.Index, faults: AccountFaults | None) -> None:
    """An option held that expired by the valuation time: an input error, or with ``faults``
    every account holding it is left out."""
    held = axis[np.unique(book.instrument_index)] if len(book.instrument_index) else axis[:0]
    errors = expired_options(instruments, valuation_time, held)
    if not errors:
        return
    if faults is None:
        raise errors[0][1]
    for iid, error in errors:
        positions = np.flatnonzero(book.instrument_index == axis.get_loc(iid))
        for s in np.unique(book.set_of_position()[positions]):
            faults.add(book.sets["account_id"].iat[int(s)], str(error))


def without_faulty(book: Book, faults: AccountFaults | None) -> Book:
    """``book`` without the netting sets of the accounts left out."""
    if faults is None or not len(faults):
        return book
    keep = np.flatnonzero(~faults.mask(book.sets["account_id"]))
    return book.subset(keep)[0]


def collateral_only(book: Book, accounts: Accounts) -> pd.DataFrame:
    """The (account_id, netting_set) rows of the accounts file that hold no position."""
    keys = accounts.frame[["account_id", "netting_set"]]
    held = pd.MultiIndex.from_frame(book.sets.astype(str))
    return keys[~pd.MultiIndex.from_frame(keys.astype(str)).isin(held)]
