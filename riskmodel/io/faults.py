"""Accounts left out of a run: ``[run] on_account_error = "skip"``.

A venue's batch must not stop for one account's bad row. With ``skip``, every problem the
readers and the run can pin on an account (a position on an unknown instrument, a quantity or
collateral that is not a finite number, a duplicate or conflicting accounts row, positions
without a collateral row, an expired option held, a collateral coin without prices) leaves
that account out of the run whole, and the run says which and why (manifest, stderr, exit code
5). A problem that belongs to no account (a missing column, an empty ``account_id``, a bad
price file) still stops the run. With ``fail`` (the default) the first problem stops the run,
as every other input error does.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

#: Exit code of a run that completed without some accounts (``on_account_error = "skip"``).
PARTIAL_EXIT = 5


class AccountFaults:
    """The accounts left out of a run, each with the first problem found in its inputs."""

    def __init__(self) -> None:
        self.first: dict[str, str] = {}

    def add(self, account: str, message: str) -> None:
        self.first.setdefault(str(account), message)

    def __len__(self) -> int:
        return len(self.first)

    def __contains__(self, account: object) -> bool:
        return account in self.first

    def mask(self, accounts: pd.Series | np.ndarray) -> np.ndarray:
        """True where the account of a row (of ``accounts``) is left out (a categorical
        column is tested once per distinct account)."""
        if not self.first:
            return np.zeros(len(accounts), dtype=bool)
        return pd.Series(accounts).isin(list(self.first)).to_numpy()

    def report(self) -> list[dict[str, str]]:
        """``[{account_id, error}]``, in the order the problems were found."""
        return [{"account_id": a, "error": m} for a, m in self.first.items()]
