"""What-if margin: the margin of the netting sets a set of hypothetical trades touches, answered
from a finished ``eod`` run without re-running the batch.

A what-if:

1. adds the trades to the touched netting sets' netted positions (``attribution.parquet``) and
   nets them again with :func:`riskmodel.portfolio.netting.net_positions` (trades open,
   increase, reduce, flip or close positions, or open new netting sets);
2. margins the touched sets with the engine (:func:`riskmodel.engine.margin_book`) against the
   run's stored priced market (:mod:`riskmodel.engine.store`): each set's margin period of risk
   (a trade adding a kind with a longer horizon moves the set to that horizon's stored P&L),
   tail kernels, stress (the stored stress P&L and the grid), the anti-procyclicality floor and
   buffer as the run applied them, add-ons, policy, distance to liquidation.

The result equals a full ``eod`` re-run with the trades appended to the positions file, as long
as the trades do not change the set of factors the run uses (they cannot add one: an instrument
whose factor the run did not price is an error). A netting set whose positions all close is
reported with zero margin and status ``closed`` (``eod`` would drop it).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

from riskmodel.errors import InputDataError
from riskmodel.io.outputs import write_parquet
from riskmodel.io.positions import DEFAULT_NETTING_SET, load_positions
from riskmodel.portfolio.netting import Book, net_positions
from riskmodel.whatif.run import LoadedRun

__all__ = ["CLOSED", "NEW", "WHATIF_COLUMNS", "book_initial_margin", "book_margins", "load_trades",
           "what_if", "write_result"]

WHATIF_COLUMNS = [
    "account_id", "netting_set", "model_margin_before", "model_margin_after",
    "initial_margin_before", "initial_margin_after", "maintenance_margin_after", "status_after",
    "maintenance_margin_before", "status_before", "equity_before", "equity_after",
    "call_amount_before", "call_amount_after", "margin_level_before", "margin_level_after",
]
#: ``status_before`` of a netting set the run did not have.
NEW = "new"
#: The run's figures a what-if reports before the trades.
BEFORE_COLUMNS = ["model_margin", "initial_margin", "maintenance_margin", "status", "equity",
                  "call_amount", "margin_level"]
#: ``status_after`` of a netting set whose positions the trades all close.
CLOSED = "closed"

def load_trades(path: str | Path, state: LoadedRun) -> pd.DataFrame:
    """Read a trades file (CSV or Parquet: the positions format, and an optional
    ``collateral`` column) and check it against the run.

    Errors name the file, line or row, column and value (:class:`InputDataError`, exit 3):
    an unknown instrument, or one whose factor the run did not price; a deposit that is not a
    finite number.
    """
    unpriced = state.market.unpriced
    known = list(state.axis) + list(unpriced)
    positions = load_positions(path, known)
    frame = positions.frame
    bad = frame["instrument_id"].isin(unpriced).to_numpy()
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        iid = frame["instrument_id"].iat[i]
        raise positions.table.fail(i, "instrument_id", iid, _unpriced_message(state, iid))
    ids = ["account_id", "netting_set", "instrument_id"]
    # a ticket is a few rows: plain string columns, as the run's tables have them
    out = frame[[*ids, "quantity"]].astype(dict.fromkeys(ids, object))
    if "collateral" in positions.table.frame.columns:
        deposit = positions.table.numbers("collateral", what="collateral", allow_missing=True)
        out["collateral"] = np.where(np.isnan(deposit), 0.0, deposit)
    return out


def what_if(state: LoadedRun, trades: pd.DataFrame) -> pd.DataFrame:
    """Margin before and after ``trades`` of every netting set they touch.

    Parameters
    ----------
    state : LoadedRun
        From :func:`load_run`.
    trades : DataFrame
        ``account_id, instrument_id, quantity`` (signed, added to the position) and optionally
        ``netting_set`` (blank or absent: the account's ``default`` set) and ``collateral``
        (cash deposited into the trade's netting set with it, in the reporting currency,
        signed; blank: 0): an account new to the run is funded by its deposit.

    Returns
    -------
    DataFrame
        One row per touched netting set, ordered by ``(account_id, netting_set)``, with
        :data:`WHATIF_COLUMNS`. ``*_before`` are the run's figures (0, status ``new`` and the
        set's collateral row for a set the run did not have); a set the trades close entirely
        has zero margin after and ``status_after = "closed"``.

    Raises
    ------
    InputDataError
        A missing column, a non-finite quantity or deposit, an unknown or unpriced instrument,
        an account without collateral, or a horizon the run did not store.
    """
    ticket = _validate(state, trades)
    row_keys = list(zip(ticket["account_id"].tolist(), ticket["netting_set"].tolist()))
    keys = sorted(set(row_keys))
    key_row = {k: i for i, k in enumerate(keys)}
    deposits = _sums(ticket["collateral"], [key_row[k] for k in row_keys], len(keys))
    book = net_positions(_rows(state, keys, ticket), state.axis)
    set_keys = list(zip(book.sets["account_id"].tolist(), book.sets["netting_set"].tolist()))
    # each touched set's row of the book's figures (-1: its positions all closed)
    key_of_set = np.array([key_row[k] for k in set_keys], dtype=np.int64)
    at = np.full(len(keys), -1, dtype=np.int64)
    at[key_of_set] = np.arange(len(set_keys))
    found = at >= 0
    now: dict[str, np.ndarray] = {}
    if book.n_sets:
        now = book_figures(state, book, deposits[key_of_set])

    def after(column: str, fill: np.ndarray | float | str) -> np.ndarray:
        """The book's ``column`` of each touched set, ``fill`` where it closed."""
        default = np.broadcast_to(
            np.asarray(fill, dtype=object if isinstance(fill, str) else np.float64),
            (len(keys),))
        return np.where(found, now[column][at], default) if book.n_sets else default.copy()

    before = _before(state, keys)
    out: dict[str, object] = {"account_id": [k[0] for k in keys],
                              "netting_set": [k[1] for k in keys]}
    for column in ("model_margin", "initial_margin", "maintenance_margin", "call_amount"):
        out[f"{column}_before"] = before[column]
        out[f"{column}_after"] = after(column, 0.0)
    out["status_before"] = before["status"]
    out["status_after"] = after("status", CLOSED)
    out["equity_before"] = before["equity"]
    # a closed set keeps its equity (its collateral and the deposits)
    out["equity_after"] = after("equity", before["equity"] + deposits)
    out["margin_level_before"] = before["margin_level"]
    out["margin_level_after"] = after("margin_level", np.inf)
    return pd.DataFrame({c: out[c] for c in WHATIF_COLUMNS})


def _sums(values: np.ndarray, group: list[int], n_groups: int) -> np.ndarray:
    """Sum ``values`` into ``n_groups`` groups (``group`` of each value) in row order with
    the compensated (Kahan) summation of pandas' groupby ``sum``, bitwise its result: a
    ticket's deposits per set are a few numbers, and a groupby cost a millisecond."""
    total = [0.0] * n_groups
    lost = [0.0] * n_groups
    for g, value in zip(group, values.tolist()):
        y = value - lost[g]
        t = total[g] + y
        lost[g] = t - total[g] - y
        if lost[g] != lost[g]:  # an infinite value: pandas resets the compensation
            lost[g] = 0.0
        total[g] = t
    return np.array(total, dtype=np.float64)


def _rows(state: LoadedRun, keys: list[tuple[str, str]], ticket: dict[str, np.ndarray]
          ) -> pd.DataFrame:
    """The run's position rows of the sets ``keys`` then the ticket's, to be netted."""
    held = [state.position_rows[k] for k in keys if k in state.position_rows]
    rows = np.concatenate(held) if held else np.zeros(0, dtype=np.int64)
    run = state.position_columns
    # object columns: a few rows need no string inference
    return pd.DataFrame({c: pd.Series(np.concatenate([run[c][rows], ticket[c]]),
                                      dtype=np.float64 if c == "quantity" else object)
                         for c in ("account_id", "netting_set", "instrument_id", "quantity")})


def _before(state: LoadedRun, keys: list[tuple[str, str]]) -> dict[str, np.ndarray]:
    """The run's figures of the sets ``keys`` (:data:`BEFORE_COLUMNS`); a set it did not
    have: no requirement, status ``new``, its collateral row's equity (0 without one)."""
    at = np.array([state.before_rows.get(k, -1) for k in keys], dtype=np.int64)
    new = at < 0
    run = state.before_columns

    def column(name: str) -> np.ndarray:
        values = run[name][at]
        values[new] = np.nan if name != "status" else None
        return values

    equity = state.collateral.of_keys(keys)
    before = {c: np.where(np.isnan(values), 0.0, values) for c, values in (
        (c, column(c)) for c in ("model_margin", "initial_margin", "maintenance_margin"))}
    before["status"] = np.where(new, NEW, column("status")).astype(object)
    before["equity"] = np.where(new, equity, column("equity"))
    before["call_amount"] = np.where(new, np.maximum(0.0, -equity), column("call_amount"))
    before["margin_level"] = np.where(new, np.where(equity >= 0, np.inf, -np.inf),
                                      column("margin_level"))
    return before


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


def _unpriced_message(state: LoadedRun, iid: str) -> str:
    return (f"instrument {iid!r} is on factor {state.market.unpriced[iid]!r}, which the run "
            f"did not price (priced: {', '.join(state.market.spot.index)})")


def _validate(state: LoadedRun, trades: pd.DataFrame) -> dict[str, np.ndarray]:
    """Trades as position rows ``account_id, netting_set, instrument_id, quantity`` (ids as
    object arrays of str) and the ``collateral`` each deposits (0 without the column)."""
    missing = [c for c in ("account_id", "instrument_id", "quantity") if c not in trades]
    if missing:
        raise InputDataError(f"trades: missing column(s) {', '.join(map(repr, missing))}; "
                             f"found {', '.join(map(repr, trades.columns))}")
    accounts = trades["account_id"].astype(str).str.strip()
    blank = (trades["account_id"].isna() | (accounts == "")).to_numpy()
    if blank.any():
        i = int(np.flatnonzero(blank)[0])
        raise InputDataError(f"trades row {i + 1}, column 'account_id': missing account id "
                             f"(value {trades['account_id'].iat[i]!r})")
    ids = trades["instrument_id"].astype(str).str.strip().to_numpy(dtype=object)
    for i, iid in enumerate(ids):
        if iid in state.market.unpriced:
            raise InputDataError(f"trades row {i + 1}, column 'instrument_id': "
                                 f"{_unpriced_message(state, iid)} (value {iid!r})")
    axis = state.axis_ids
    unknown = np.array([iid not in axis for iid in ids.tolist()], dtype=bool)
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
    deposit = np.zeros(len(trades))
    if "collateral" in trades:
        text = trades["collateral"].astype(object).where(trades["collateral"].notna(), "")
        deposit = pd.to_numeric(text.replace("", 0.0), errors="coerce").to_numpy(np.float64)
        bad = ~np.isfinite(deposit)
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise InputDataError(f"trades row {i + 1}, column 'collateral': not a finite "
                                 f"number (value {trades['collateral'].iat[i]!r})")
    return {
        "account_id": accounts.to_numpy(dtype=object),
        "netting_set": sets.to_numpy(dtype=object),
        "instrument_id": ids,
        "quantity": quantity,
        "collateral": deposit,
    }


def book_margins(state: LoadedRun, book: Book,
                 deposits: np.ndarray | None = None) -> pd.DataFrame:
    """eod's margin table for the netting sets of ``book`` (on the run's instrument axis),
    with ``deposits`` (per set, reporting currency) added to their collateral."""
    _check_funded(state, book, deposits)
    margins = state.margin(book, deposits=deposits).margins
    assert margins is not None
    return margins


def book_figures(state: LoadedRun, book: Book, deposits: np.ndarray | None = None
                 ) -> dict[str, np.ndarray]:
    """The per-set figures of :func:`book_margins` (``margin_book(detail="figures")``,
    bitwise the table's columns), without the ids, the distance to liquidation and the
    attribution, which a what-if does not report."""
    _check_funded(state, book, deposits)
    figures = state.margin(book, detail="figures", deposits=deposits).figures
    assert figures is not None
    return figures


def book_initial_margin(state: LoadedRun, book: Book) -> np.ndarray:
    """The ``initial_margin`` column of :func:`book_margins`, without building the tables."""
    _check_funded(state, book)
    return state.margin(book, detail="initial_margin").initial_margin


def _check_funded(state: LoadedRun, book: Book, deposits: np.ndarray | None = None) -> None:
    """As eod: an account holding positions needs a collateral row (or, in a what-if, a
    deposit with its trades)."""
    accounts = book.sets["account_id"].tolist()
    deposited = set() if deposits is None else {
        a for a, d in zip(accounts, np.nan_to_num(deposits).tolist()) if d != 0}
    funded = state.collateral.funded
    unfunded = [a for a in accounts if a not in funded and a not in deposited]
    if unfunded:
        account = unfunded[0]
        raise InputDataError(f"trades: account {account!r} has positions but no collateral "
                             f"row in the run's accounts file and no collateral deposited with "
                             f"the trades (value {account!r})")
