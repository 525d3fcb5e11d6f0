"""The backtest table: its columns and the checks every consumer of it relies on.

One row per date and netting set (:func:`riskmodel.backtest.replay.replay` writes it), losses
positive. :func:`validate_backtest_table` is shared by the summary
(:func:`~riskmodel.backtest.statistics.summarise`) and the backtest report
(:func:`riskmodel.report.backtest.write_report`), so both refuse the same tables.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["OPTIONAL_COLUMNS", "REQUIRED_COLUMNS", "validate_backtest_table"]

#: Columns of every backtest table: the keys, then the numbers (finite; gross_notional >= 0).
REQUIRED_COLUMNS = (
    "date",
    "account_id",
    "netting_set",
    "var",
    "es",
    "initial_margin",
    "flat_rate_margin",
    "realized_loss",
    "gross_notional",
)
#: Numeric columns checked (finite, >= 0) and kept when present: the realisable flat rate and its
#: margin (:mod:`riskmodel.backtest.benchmarks`).
OPTIONAL_COLUMNS = ("realisable_flat_rate", "realisable_flat_rate_margin")
# Boolean columns checked against their definition when present.
_FLAG_DEFINITIONS = {
    "exception": "var",
    "margin_breach": "initial_margin",
    "flat_rate_breach": "flat_rate_margin",
}


def validate_backtest_table(backtest: pd.DataFrame) -> pd.DataFrame:
    """Check a backtest table and return its numeric columns (float64) and its keys.

    Parameters
    ----------
    backtest : DataFrame with the :data:`REQUIRED_COLUMNS` and optionally the flags
        ``exception, margin_breach, flat_rate_breach``, which must equal ``realized_loss >
        var``, ``> initial_margin`` and ``> flat_rate_margin``.

    Returns
    -------
    DataFrame
        ``var, es, initial_margin, flat_rate_margin, realized_loss, gross_notional`` (and the
        :data:`OPTIONAL_COLUMNS` present) as float64, then ``account_id, netting_set, date``
        as given; same index as ``backtest``.

    Raises
    ------
    TypeError
        If ``backtest`` is not a DataFrame.
    ValueError
        Missing columns, no rows, non-finite numbers (in particular NaN ``realized_loss``),
        negative ``gross_notional`` or optional column, missing dates, duplicate
        ``(account_id, netting_set, date)`` or a flag column that disagrees with its
        definition.
    """
    if not isinstance(backtest, pd.DataFrame):
        raise TypeError(f"backtest must be a pandas DataFrame, got {type(backtest).__name__}")
    missing = [c for c in REQUIRED_COLUMNS if c not in backtest.columns]
    if missing:
        raise ValueError(f"backtest is missing columns {missing}")
    if len(backtest) == 0:
        raise ValueError("backtest has no rows")
    keys = ["account_id", "netting_set", "date"]

    def where(mask: np.ndarray) -> str:
        row = backtest.loc[np.asarray(mask)].iloc[0]
        return ", ".join(f"{k}={row[k]!r}" for k in keys)

    numeric = {}
    optional = [c for c in OPTIONAL_COLUMNS if c in backtest.columns]
    for col in [*REQUIRED_COLUMNS[3:], *optional]:
        try:
            values = backtest[col].to_numpy(dtype=np.float64, na_value=np.nan)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"backtest column {col!r} must be numeric: {exc}") from None
        bad = ~np.isfinite(values)
        if bad.any():
            hint = (
                " (drop the last horizon dates, whose future is unknown, before summarising)"
                if col == "realized_loss"
                else ""
            )
            raise ValueError(
                f"backtest column {col!r} has {int(bad.sum())} non-finite values, first at "
                f"{where(bad)}: {values[bad][0]}{hint}"
            )
        numeric[col] = values
    for col in ["gross_notional", *optional]:
        if (numeric[col] < 0).any():
            bad = numeric[col] < 0
            raise ValueError(f"backtest column {col!r} is negative at {where(bad)}")
    if backtest["date"].isna().any():
        raise ValueError(f"backtest column 'date' is missing at {where(backtest['date'].isna())}")
    dup = backtest.duplicated(subset=keys).to_numpy()
    if dup.any():
        raise ValueError(f"backtest has {int(dup.sum())} duplicate rows, first at {where(dup)}")
    loss = numeric["realized_loss"]
    for flag, level in _FLAG_DEFINITIONS.items():
        if flag not in backtest.columns:
            continue
        try:
            given = backtest[flag].to_numpy(dtype=bool)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"backtest column {flag!r} must be boolean: {exc}") from None
        mismatch = given != (loss > numeric[level])
        if mismatch.any():
            raise ValueError(
                f"backtest column {flag!r} disagrees with realized_loss > {level} at "
                f"{where(mismatch)} ({int(mismatch.sum())} rows)"
            )
    frame = pd.DataFrame(numeric, index=backtest.index)
    for k in keys:
        frame[k] = backtest[k].to_numpy()
    return frame
