"""Built-in test portfolios for a backtest run without ``--positions``.

Static books that show how the margin model covers the simplest exposures of every underlying of
the instruments file, each a netting set of its own under the account ``builtin``:

* ``long_<U>`` and ``short_<U>``: one position of unit notional at the first backtest date
  (``|quantity| x multiplier x price = 1``; for an inverse contract, whose multiplier is its
  face value, ``|quantity| x multiplier = 1``) in the underlying's reference instrument: its
  spot instrument if it has one, else the first of its other instruments in file order;
* ``hedge_<U>_<V>``: long ``U``, short ``V`` for consecutive underlyings (in the order they
  first appear in the instruments file), each leg of unit notional at the first backtest date.

Quantities are fixed at the first backtest date's prices (no look-ahead) and never rebalanced.
Unit notional makes every amount of the backtest a fraction of the notional (a VaR of 0.031 is
3.1%). Options are never reference instruments and no straddles are built: the backtest does
not replay options (a static option position expires during the backtest); an underlying with
options only gets no built-in portfolio.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from riskmodel.errors import InputDataError
from riskmodel.pricing.revaluation import INVERSE_KINDS

__all__ = ["BUILTIN_ACCOUNT", "builtin_portfolios", "reference_instruments"]

BUILTIN_ACCOUNT = "builtin"
POSITION_COLUMNS = ["account_id", "netting_set", "instrument_id", "quantity"]


def reference_instruments(instruments: pd.DataFrame) -> pd.DataFrame:
    """One instrument per underlying: its ``spot`` instrument, else its first other one in file
    order; options are never chosen (an underlying with options only is left out).

    Parameters
    ----------
    instruments : DataFrame with ``instrument_id, kind, underlying, multiplier, factor`` (the
        frame of :func:`riskmodel.io.instruments.load_instruments`).

    Returns
    -------
    DataFrame, one row per underlying in order of first appearance, same columns.
    """
    rows = []
    candidates = instruments[instruments["kind"] != "option"]
    for _, group in candidates.groupby("underlying", sort=False):
        spot = group[group["kind"] == "spot"]
        rows.append((spot if len(spot) else group).iloc[0])
    return pd.DataFrame(rows, columns=instruments.columns).reset_index(drop=True)


def builtin_portfolios(
    instruments: pd.DataFrame, prices: Mapping[str, float] | pd.Series, notional: float = 1.0
) -> pd.DataFrame:
    """Position rows of the built-in portfolios (see the module docstring).

    Parameters
    ----------
    instruments : DataFrame, the loaded instruments (``instrument_id, kind, underlying,
        multiplier, factor``).
    prices : mapping factor -> price at the first backtest date (> 0 for the factors used).
    notional : float, the notional of each leg at that date (> 0).

    Returns
    -------
    DataFrame ``account_id, netting_set, instrument_id, quantity`` (the positions format,
    ready for :func:`riskmodel.portfolio.netting.net_positions`).

    Raises
    ------
    InputDataError
        When an underlying's price at the first date is missing or not positive (a unit
        notional cannot be sized).
    """
    if not notional > 0:
        raise ValueError(f"notional = {notional!r} must be > 0")
    ref = reference_instruments(instruments)
    qty: dict[str, float] = {}
    for _, row in ref.iterrows():
        price = float(prices[row["factor"]])
        if not np.isfinite(price) or price <= 0:
            raise InputDataError(
                f"built-in portfolios: underlying {row['underlying']!r} has no positive price at "
                f"the first backtest date to size a unit notional (value {price!r})"
            )
        per_unit = float(row["multiplier"]) * (1.0 if row["kind"] in INVERSE_KINDS else price)
        qty[row["underlying"]] = notional / per_unit
    instrument_of = dict(zip(ref["underlying"], ref["instrument_id"]))
    underlyings = list(ref["underlying"])
    rows: list[tuple[str, str, str, float]] = []
    for u in underlyings:
        rows.append((BUILTIN_ACCOUNT, f"long_{u}", instrument_of[u], qty[u]))
        rows.append((BUILTIN_ACCOUNT, f"short_{u}", instrument_of[u], -qty[u]))
    for u, v in zip(underlyings, underlyings[1:]):
        name = f"hedge_{u}_{v}"
        rows.append((BUILTIN_ACCOUNT, name, instrument_of[u], qty[u]))
        rows.append((BUILTIN_ACCOUNT, name, instrument_of[v], -qty[v]))
    return pd.DataFrame(rows, columns=POSITION_COLUMNS)
