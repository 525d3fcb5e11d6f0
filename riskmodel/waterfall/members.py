"""Clearing members: who stands behind each account.

The clearing-house view groups accounts by member. The member of an account is the ``member``
column of the run's accounts file when it has one (the file named in the run's
``manifest.json``, checked against its SHA-256), else each account is a member of its own. Every
row of an account the run margined must name a member (a blank one is an unknown member), and an
account has one member.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from riskmodel.errors import InputDataError
from riskmodel.io.tables import read_table, sha256_file


@dataclass(frozen=True)
class Members:
    """``of_set``: member code of each netting set; ``names``: member name of each code;
    ``source``: ``"member column of <file>"`` or ``"account_id"``; ``notes``."""

    of_set: np.ndarray
    names: np.ndarray
    source: str
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def n_members(self) -> int:
        return len(self.names)


def _own(accounts: np.ndarray, notes: tuple[str, ...] = ()) -> Members:
    codes, names = _codes(accounts)
    return Members(codes, names, "account_id", notes)


def _codes(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    names, codes = np.unique(np.asarray(values, dtype=object).astype(str), return_inverse=True)
    return codes.astype(np.int64), names.astype(object)


def read_members(run_dir: str | Path, accounts: np.ndarray) -> Members:
    """The member of each netting set, whose account is ``accounts[i]`` (module docstring).

    Raises
    ------
    InputDataError
        The accounts file changed since the run, a row of a margined account has no member
        (an unknown member), or an account is given two members.
    """
    run_dir = Path(run_dir)
    try:
        manifest = json.loads((run_dir / "manifest.json").read_text())
        spec = manifest["inputs"]["accounts"]
        path, digest = Path(spec["path"]), spec.get("sha256")
    except (OSError, ValueError, KeyError, TypeError):
        return _own(accounts, (f"{run_dir}/manifest.json names no accounts file: each account "
                               "is a member of its own",))
    if not path.is_file():
        return _own(accounts, (f"the run's accounts file {path} is not readable: each account "
                               "is a member of its own",))
    if digest and sha256_file(path) != digest:
        raise InputDataError(f"{path}: changed since the run (SHA-256 differs from the one in "
                             f"{run_dir}/manifest.json): its member column cannot be trusted; "
                             "rerun eod")
    table = read_table(path, "accounts")
    if "member" not in table.frame.columns:
        return _own(accounts)
    rows_account = table.text("account_id", allow_missing=True)
    rows_member = table.text("member", allow_missing=True)
    wanted = set(np.asarray(accounts, dtype=object).astype(str).tolist())
    member_of: dict[str, tuple[str, int]] = {}
    for i in np.flatnonzero(np.isin(rows_account, list(wanted))).tolist():
        account, member = str(rows_account[i]), str(rows_member[i])
        if not member:
            raise table.fail(i, "member", "", f"unknown member: account {account!r} has no "
                             "member (every row of an account needs one when the column "
                             "is present)")
        if account in member_of and member_of[account][0] != member:
            raise table.fail(i, "member", member, f"account {account!r} already belongs to "
                             f"member {member_of[account][0]!r} (at "
                             f"{table.where(member_of[account][1])})")
        member_of.setdefault(account, (member, i))
    missing = sorted(wanted - set(member_of))
    if missing:
        raise InputDataError(f"{path}: unknown member of account {missing[0]!r} (no row "
                             "names it)")
    codes, names = _codes(np.array([member_of[str(a)][0] for a in accounts], dtype=object))
    return Members(codes, names, f"member column of {path}")
