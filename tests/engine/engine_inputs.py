"""Helpers for end-to-end engine tests: write input files into a temporary folder."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from arch.data import nasdaq, sp500

from riskmodel.batch.eod import EodInputs


def load_index_closes() -> pd.DataFrame:
    """Real S&P 500 and NASDAQ Composite daily closes (arch.data), 1999-2018."""
    spx = sp500.load()["Close"].rename("SPX")
    ndx = nasdaq.load()["Close"].rename("NASDAQ")
    frame = pd.concat([spx, ndx], axis=1).dropna()
    frame.index = pd.DatetimeIndex(frame.index)
    return frame


def write_inputs(
    folder: Path,
    prices: pd.DataFrame,
    instruments: list[tuple],
    positions: list[tuple],
    accounts: list[tuple],
) -> EodInputs:
    """Write the four CSV inputs; ``prices`` is wide with a DatetimeIndex."""
    folder.mkdir(parents=True, exist_ok=True)
    p = prices.copy()
    p.index = p.index.strftime("%Y-%m-%d")
    p.index.name = "date"
    p.to_csv(folder / "prices.csv")
    pd.DataFrame(instruments, columns=["instrument_id", "kind", "underlying", "multiplier"]).to_csv(
        folder / "instruments.csv", index=False
    )
    cols = ["account_id", "instrument_id", "quantity", "netting_set"][: len(positions[0])]
    pd.DataFrame(positions, columns=cols).to_csv(folder / "positions.csv", index=False)
    acols = ["account_id", "collateral", "netting_set"][: len(accounts[0])]
    pd.DataFrame(accounts, columns=acols).to_csv(folder / "accounts.csv", index=False)
    return EodInputs(
        folder / "prices.csv", folder / "instruments.csv", folder / "positions.csv",
        folder / "accounts.csv",
    )
