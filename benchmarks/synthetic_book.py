"""A large synthetic venue, written as Parquet inputs of ``riskmodel eod`` (seeded).

``n_underlyings`` price series of ``n_days`` daily closes (GARCH(1,1)-like volatility, one
common market factor so the book has correlation), ``n_linear`` linear instruments (spot,
futures and perpetuals on them, multipliers 1/10/50), optionally ``n_options`` European
options (Black-Scholes on the underlying, strikes 70-130% of spot, expiries 7-365 days), and
``n_accounts`` accounts holding ``positions_per_account`` positions each, with collateral that
puts a few per cent of them below maintenance. Used by the end-to-end benchmarks; nothing here
is a reference value.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd


@dataclass(frozen=True)
class BookFiles:
    prices: Path
    instruments: Path
    positions: Path
    accounts: Path


def synthetic_prices(n_underlyings: int, n_days: int, rng: np.random.Generator) -> pd.DataFrame:
    omega, alpha, beta = 2e-6, 0.08, 0.9
    market = rng.standard_t(5, n_days) / np.sqrt(5 / 3)
    own = rng.standard_t(5, (n_days, n_underlyings)) / np.sqrt(5 / 3)
    loading = rng.uniform(0.3, 0.8, n_underlyings)
    z = loading * market[:, None] + np.sqrt(1 - loading**2) * own
    var = np.full(n_underlyings, omega / (1 - alpha - beta))
    r = np.empty((n_days, n_underlyings))
    for t in range(n_days):
        r[t] = np.sqrt(var) * z[t]
        var = omega + alpha * r[t] ** 2 + beta * var
    start = rng.uniform(20, 4000, n_underlyings)
    prices = start * np.exp(np.cumsum(r, axis=0))
    dates = pd.date_range("2019-01-01", periods=n_days, freq="D")
    frame = pd.DataFrame(prices, columns=[f"U{i:03d}" for i in range(n_underlyings)])
    frame.insert(0, "date", dates.strftime("%Y-%m-%d"))
    return frame


def write_book(folder: str | Path, n_accounts: int, *,
               positions_per_account: int | tuple[int, int] = 10, n_linear: int = 500,
               n_options: int = 0, n_underlyings: int = 50, n_days: int = 1500, seed: int = 0,
               long_bias: float = 0.2, collateral_scale: float = 1.0) -> BookFiles:
    """Write the venue's four input files under ``folder``.

    ``positions_per_account``: a count, or ``(low, high)`` for a count drawn per account
    (inclusive); ``long_bias``: the mean of the standard normal quantity factor (0: as many
    shorts as longs, hedged books); ``collateral_scale``: every account's collateral is
    multiplied by it (below 1: more sets under maintenance, a stressed day)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    prices = synthetic_prices(n_underlyings, n_days, rng)
    underlyings = list(prices.columns[1:])
    spot = prices.iloc[-1, 1:].to_numpy(np.float64)
    kinds = rng.choice(["spot", "future", "perpetual"], n_linear)
    und = rng.integers(0, n_underlyings, n_linear)
    instruments = pd.DataFrame({
        "instrument_id": [f"L{i:05d}" for i in range(n_linear)],
        "kind": kinds,
        "underlying": [underlyings[u] for u in und],
        "multiplier": rng.choice([1.0, 10.0, 50.0], n_linear),
    })
    unit_value = instruments["multiplier"].to_numpy() * spot[und]
    if n_options:
        o_und = rng.integers(0, n_underlyings, n_options)
        as_of = pd.Timestamp(prices["date"].iloc[-1]) + pd.Timedelta(hours=16)
        days = rng.integers(7, 366, n_options)
        options = pd.DataFrame({
            "instrument_id": [f"O{i:05d}" for i in range(n_options)],
            "kind": "option",
            "underlying": [underlyings[u] for u in o_und],
            "multiplier": 1.0,
            "strike": np.round(spot[o_und] * rng.uniform(0.7, 1.3, n_options), 2),
            "expiry": [(as_of + pd.Timedelta(days=int(d))).strftime("%Y-%m-%dT08:00:00Z")
                       for d in days],
            "option_type": rng.choice(["call", "put"], n_options),
            "implied_vol": rng.uniform(0.15, 0.8, n_options),
            "rate": 0.03,
            "settlement": "quote",
        })
        instruments = pd.concat([instruments, options], ignore_index=True)
        unit_value = np.concatenate([unit_value, spot[o_und]])
    n_instr = len(instruments)
    if isinstance(positions_per_account, tuple):
        low, high = positions_per_account
        per_account = rng.integers(low, high + 1, n_accounts)
    else:
        per_account = np.full(n_accounts, positions_per_account)
    n_pos = int(per_account.sum())
    which = rng.integers(0, n_instr, n_pos)
    # about 50k of notional per position, long-biased by default
    quantity = np.round((rng.normal(long_bias, 1.0, n_pos) * 5e4 / unit_value[which]), 3)
    quantity[quantity == 0] = 1.0
    owner = np.repeat(np.arange(n_accounts), per_account)
    accounts = np.array([f"A{i:07d}" for i in range(n_accounts)])[owner]
    positions = pd.DataFrame({"account_id": accounts,
                              "instrument_id": instruments["instrument_id"].to_numpy()[which],
                              "quantity": quantity})
    gross = np.bincount(owner, np.abs(quantity * unit_value[which]), minlength=n_accounts)
    collateral = np.round(gross * rng.lognormal(np.log(0.06), 0.6, n_accounts)
                          * collateral_scale, 2)
    files = BookFiles(folder / "prices.parquet", folder / "instruments.parquet",
                      folder / "positions.parquet", folder / "accounts.parquet")
    prices.to_parquet(files.prices, index=False)
    instruments.to_parquet(files.instruments, index=False)
    positions.to_parquet(files.positions, index=False)
    pd.DataFrame({"account_id": [f"A{i:07d}" for i in range(n_accounts)],
                  "collateral": collateral}).to_parquet(files.accounts, index=False)
    return files
