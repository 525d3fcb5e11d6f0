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
    rows = _validate(state, trades)
    keys = sorted(set(zip(rows["account_id"], rows["netting_set"])))
    idx = pd.MultiIndex.from_tuples(keys)
    deposits = rows.groupby(["account_id", "netting_set"])["collateral"].sum().reindex(idx)
    held = [state.position_rows[k] for k in keys if k in state.position_rows]
    existing = state.positions.iloc[np.concatenate(held)] if held else state.positions.iloc[:0]
    book = net_positions(pd.concat([existing, rows.drop(columns="collateral")],
                                   ignore_index=True), state.axis)
    after = None
    if book.n_sets:
        extra = deposits.reindex(pd.MultiIndex.from_frame(book.sets)).to_numpy(np.float64)
        after = book_margins(state, book, extra)
    out = pd.DataFrame(keys, columns=["account_id", "netting_set"])
    before = _before(state, keys)
    now = (after.set_index(["account_id", "netting_set"]).reindex(idx) if after is not None
           else pd.DataFrame(index=idx, columns=BEFORE_COLUMNS))
    for column in ("model_margin", "initial_margin", "maintenance_margin", "call_amount"):
        out[f"{column}_before"] = before[column].to_numpy(np.float64)
        out[f"{column}_after"] = now[column].fillna(0.0).to_numpy(np.float64)
    out["status_before"] = before["status"].to_numpy(dtype=object)
    out["status_after"] = now["status"].fillna(CLOSED).to_numpy(dtype=object)
    out["equity_before"] = before["equity"].to_numpy(np.float64)
    # a closed set keeps its equity (its collateral and the deposits)
    out["equity_after"] = now["equity"].fillna(
        before["equity"] + deposits.to_numpy(np.float64)).to_numpy(np.float64)
    out["margin_level_before"] = before["margin_level"].to_numpy(np.float64)
    out["margin_level_after"] = now["margin_level"].fillna(np.inf).to_numpy(np.float64)
    return out[WHATIF_COLUMNS]


def _before(state: LoadedRun, keys: list[tuple[str, str]]) -> pd.DataFrame:
    """The run's figures of the sets ``keys``; a set it did not have: no requirement, status
    ``new``, its collateral row's equity (0 without one)."""
    before = state.before.reindex(pd.MultiIndex.from_tuples(keys))
    sets = pd.DataFrame(keys, columns=["account_id", "netting_set"])
    new = before["status"].isna().to_numpy()
    equity = state.collateral.of_sets(sets)
    for column in ("model_margin", "initial_margin", "maintenance_margin"):
        before[column] = before[column].fillna(0.0)
    before["status"] = before["status"].where(~new, NEW)
    before["equity"] = np.where(new, equity, before["equity"].to_numpy(np.float64))
    before["call_amount"] = np.where(new, np.maximum(0.0, -equity),
                                     before["call_amount"].to_numpy(np.float64))
    before["margin_level"] = np.where(new, np.where(equity >= 0, np.inf, -np.inf),
                                      before["margin_level"].to_numpy(np.float64))
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


def _validate(state: LoadedRun, trades: pd.DataFrame) -> pd.DataFrame:
    """Trades as position rows ``account_id, netting_set, instrument_id, quantity`` and the
    ``collateral`` each deposits (0 without the column)."""
    missing = [c for c in ("account_id", "instrument_id", "quantity") if c not in trades]
    if missing:
        raise InputDataError(f"trades: missing column(s) {', '.join(map(repr, missing))}; "
                             f"found {', '.join(map(repr, trades.columns))}")
    ids = trades["instrument_id"].astype(str).str.strip().to_numpy(dtype=object)
    for i, iid in enumerate(ids):
        if iid in state.market.unpriced:
            raise InputDataError(f"trades row {i + 1}, column 'instrument_id': "
                                 f"{_unpriced_message(state, iid)} (value {iid!r})")
    unknown = ~pd.Index(ids).isin(state.axis)
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
    return pd.DataFrame({
        "account_id": trades["account_id"].astype(str).str.strip().to_numpy(dtype=object),
        "netting_set": sets.to_numpy(dtype=object),
        "instrument_id": ids,
        "quantity": quantity,
        "collateral": deposit,
    })


def book_margins(state: LoadedRun, book: Book,
                 deposits: np.ndarray | None = None) -> pd.DataFrame:
    """eod's margin table for the netting sets of ``book`` (on the run's instrument axis),
    with ``deposits`` (per set, reporting currency) added to their collateral."""
    _check_funded(state, book, deposits)
    margins = state.margin(book, deposits=deposits).margins
    assert margins is not None
    return margins


def book_initial_margin(state: LoadedRun, book: Book) -> np.ndarray:
    """The ``initial_margin`` column of :func:`book_margins`, without building the tables."""
    _check_funded(state, book)
    return state.margin(book, detail="initial_margin").initial_margin


def _check_funded(state: LoadedRun, book: Book, deposits: np.ndarray | None = None) -> None:
    """As eod: an account holding positions needs a collateral row (or, in a what-if, a
    deposit with its trades)."""
    funded = set(state.collateral.funded)
    if deposits is not None:
        funded |= set(book.sets["account_id"].to_numpy()[np.nan_to_num(deposits) != 0])
    unfunded = [a for a in book.sets["account_id"].tolist() if a not in funded]
    if unfunded:
        account = unfunded[0]
        raise InputDataError(f"trades: account {account!r} has positions but no collateral "
                             f"row in the run's accounts file and no collateral deposited with "
                             f"the trades (value {account!r})")
