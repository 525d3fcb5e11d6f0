"""Collateral held in coins (or any priced asset): joined to the book, valued in equity.

A holding of ``amount`` units of ``asset`` (accounts file, :mod:`riskmodel.io.positions`)
becomes a position of ``amount`` in the internal instrument ``collateral:<asset>`` (kind
``collateral``, multiplier ``1 - haircut``, driven by the asset's price series). It is never
traded (partial liquidation does not reduce it) and carries no notional (so no floor, add-on,
flat rate or penalty), but every scenario revalues it with the positions: the tail measures see
the joint loss, so a short put collateralised in the coin it is written on loses on both legs.
Today its haircut value ``amount x price x (1 - haircut)`` counts towards the set's equity.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd

from riskmodel.config import RunConfig
from riskmodel.io.faults import AccountFaults
from riskmodel.io.instruments import Instruments
from riskmodel.io.positions import Accounts, Positions
from riskmodel.pricing.revaluation import COLLATERAL_KIND

PREFIX = "collateral:"


def with_collateral_holdings(instruments: Instruments, positions: Positions, accounts: Accounts,
                             assets: set[str], config: RunConfig,
                             faults: AccountFaults | None = None
                             ) -> tuple[Instruments, Positions]:
    """The instruments and positions with one collateral instrument per asset held and one
    position per holding; an asset without prices is an input error naming its row (with
    ``faults``, its account is left out instead: its holdings are dropped here, its positions
    and accounts rows by the caller)."""
    holdings = accounts.holdings
    if holdings.empty:
        return instruments, positions
    for account, asset, row in zip(holdings["account_id"], holdings["asset"],
                                   holdings["source_row"]):
        if asset not in assets:
            error = accounts.table.fail(int(row), "asset", asset,
                                        "collateral asset has no prices in the price file "
                                        f"(and is not the reporting currency "
                                        f"{config.collateral.reporting_currency!r})")
            if faults is None:
                raise error
            faults.add(account, str(error))
    if faults is not None and len(faults):
        holdings = holdings[~faults.mask(holdings["account_id"])]
        if holdings.empty:
            return instruments, positions
    held = sorted(set(holdings["asset"]))
    extra = pd.DataFrame({
        "instrument_id": [PREFIX + a for a in held], "kind": COLLATERAL_KIND,
        "underlying": held, "multiplier": [1.0 - config.collateral.haircut(a) for a in held],
        "factor": held,
    })
    frame = pd.concat([instruments.frame, extra], ignore_index=True)
    rows = pd.DataFrame({
        "account_id": holdings["account_id"].to_numpy(dtype=object),
        "netting_set": holdings["netting_set"].to_numpy(dtype=object),
        "instrument_id": (PREFIX + holdings["asset"]).to_numpy(dtype=object),
        "quantity": holdings["amount"].to_numpy(np.float64),
        "source_row": np.full(len(holdings), -1, dtype=np.int64),
    })
    return (replace(instruments, frame=frame),
            replace(positions, frame=pd.concat([positions.frame, rows], ignore_index=True)))


def collateral_equity(accounts: Accounts, spot: pd.Series, config: RunConfig) -> pd.DataFrame:
    """Per (account, netting set): ``collateral`` = cash plus the haircut value of holdings."""
    frame = accounts.frame.copy()
    holdings = accounts.holdings
    if holdings.empty:
        return frame
    value = holdings.assign(value=holdings["amount"].to_numpy(np.float64)
                            * spot.loc[holdings["asset"]].to_numpy(np.float64)
                            * np.array([1.0 - config.collateral.haircut(a)
                                        for a in holdings["asset"]]))
    per_set = value.groupby(["account_id", "netting_set"], sort=False)["value"].sum()
    keys = pd.MultiIndex.from_arrays([frame["account_id"], frame["netting_set"]])
    frame["collateral"] = frame["collateral"].to_numpy(np.float64) + per_set.reindex(
        keys).fillna(0.0).to_numpy(np.float64)
    return frame
