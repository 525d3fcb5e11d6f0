"""The demo book: real index and oil prices from ``arch.data``, a few hundred synthetic accounts.

Prices (daily closes, 1999-01-04 .. 2018-12-31): S&P 500 (``SPX``) and NASDAQ Composite
(``NASDAQ``) from Yahoo Finance, WTI crude spot (``WTI``, FRED series DCOILWTICO, empty on days
without a fixing), all as shipped inside the ``arch`` package. WTI is configured with absolute
returns (price differences), as an oil series that can go negative needs.

Accounts (seeded, reproducible) hold directional, hedged (index futures against each other),
spread (oil future against an oil perpetual) and diversified books in spot, futures and
perpetual-style contracts; some of them trade an isolated oil netting set. Collateral is drawn as
a fraction of gross notional, so a minority of accounts come out under-collateralised.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

DEMO_END = "2018-12-31"

RUN_TOML = """\
# Demo run configuration (every key documented in the README, "Configuration").
method = "fhs"
measure = "es"
confidence = 0.99
horizon = 2
lookback = 1000

[volatility]
model = "garch"

[returns.assets]
WTI = "absolute"   # oil can trade below zero: price differences, not log returns

[margin]
mm_ratio = 0.75
warning_multiple = 1.2

[margin.maintenance_rates]
default = 0.01
[margin.maintenance_rates.underlying]
WTI = 0.02

[margin.flat_rates]
default = 0.10
[margin.flat_rates.underlying]
WTI = 0.15

[horizons.kind]
perpetual = 1      # perpetuals are liquidated continuously: one-day margin period of risk

[addons.spreads]   # full bid-ask spread as a fraction of price
default = 0.0002
[addons.spreads.underlying]
WTI = 0.0010
[addons.concentration_threshold]   # notional per position above which a convex charge applies
default = 5000000.0
[addons.concentration_rate]
default = 0.01

[liquidation]
target_margin_level = 1.0   # partial liquidation restores equity to the initial margin
[liquidation.penalty_rates]  # fee on the notional liquidated
default = 0.002
[liquidation.penalty_rates.kind]
perpetual = 0.005
[liquidation.impact_adv]    # average daily volume for cascades, scaled to the demo book
SPX = 200000000.0
NASDAQ = 100000000.0
WTI = 50000000.0
"""

INSTRUMENTS = pd.DataFrame(
    [
        ("SPX", "spot", "SPX", 1.0),
        ("ES", "future", "SPX", 50.0),
        ("MES", "future", "SPX", 5.0),
        ("SPX-PERP", "perpetual", "SPX", 1.0),
        ("NQ", "future", "NASDAQ", 20.0),
        ("NASDAQ-PERP", "perpetual", "NASDAQ", 1.0),
        ("CL", "future", "WTI", 1000.0),
        ("WTI-PERP", "perpetual", "WTI", 100.0),
    ],
    columns=["instrument_id", "kind", "underlying", "multiplier"],
)


@dataclass(frozen=True)
class DemoFiles:
    prices: Path
    instruments: Path
    positions: Path
    accounts: Path
    config: Path


def demo_prices() -> pd.DataFrame:
    """Wide daily closes ``date, SPX, NASDAQ, WTI`` from arch's bundled data."""
    from arch.data import nasdaq, sp500, wti

    spx = sp500.load()["Close"].rename("SPX")
    ndx = nasdaq.load()["Close"].rename("NASDAQ")
    oil = wti.load()["DCOILWTICO"].rename("WTI")
    frame = pd.concat([spx, ndx, oil], axis=1, sort=True).loc["1999-01-04":DEMO_END]
    frame.index = pd.DatetimeIndex(frame.index).strftime("%Y-%m-%d")
    frame.index.name = "date"
    # WTI has no fixing on some exchange days and vice versa: leave those cells empty, the engine
    # carries the last price over (calendar rule) and says so in the manifest.
    return frame.dropna(how="all")


def demo_book(prices: pd.DataFrame, n_accounts: int = 300, seed: int = 7) -> tuple[
    pd.DataFrame, pd.DataFrame
]:
    """Positions and collateral for ``n_accounts`` synthetic accounts (seeded)."""
    rng = np.random.default_rng(seed)
    last = prices.ffill().iloc[-1]
    px = {
        "SPX": last["SPX"], "ES": last["SPX"], "MES": last["SPX"], "SPX-PERP": last["SPX"],
        "NQ": last["NASDAQ"], "NASDAQ-PERP": last["NASDAQ"], "CL": last["WTI"],
        "WTI-PERP": last["WTI"],
    }
    mult = dict(zip(INSTRUMENTS["instrument_id"], INSTRUMENTS["multiplier"]))

    def units(instrument: str, usd: float) -> float:
        # Whole contracts (at least one) worth about ``usd`` of notional.
        return float(max(1, round(usd / (px[instrument] * mult[instrument]))))

    positions: list[tuple[str, str, float, str]] = []
    collateral: list[tuple[str, float, str]] = []
    for a in range(n_accounts):
        account = f"ACC{a:04d}"
        size = float(rng.lognormal(np.log(500_000), 0.8))
        style = rng.choice(["directional", "hedged", "spread", "diversified"],
                           p=[0.4, 0.2, 0.15, 0.25])
        sign = 1.0 if rng.random() < 0.6 else -1.0
        rows: list[tuple[str, float]] = []
        if style == "directional":
            instrument = str(rng.choice(["SPX", "ES", "MES", "SPX-PERP", "NQ", "NASDAQ-PERP",
                                         "CL", "WTI-PERP"]))
            q = units(instrument, size)
            rows.append((instrument, sign * q))
            if rng.random() < 0.3:  # traded in two fills: netted by the engine
                rows.append((instrument, sign * max(1.0, round(q / 2))))
        elif style == "hedged":  # long S&P futures against short NASDAQ futures, or the reverse
            rows.append(("ES", sign * units("ES", size)))
            rows.append(("NQ", -sign * units("NQ", size * rng.uniform(0.6, 1.0))))
        elif style == "spread":  # oil future against the oil perpetual: mostly offsetting
            q = units("CL", size)
            rows.append(("CL", sign * q))
            rows.append(("WTI-PERP", -sign * q * 10 * rng.uniform(0.8, 1.0)))
        else:
            for instrument in rng.choice(["SPX", "MES", "NQ", "CL", "SPX-PERP"], size=3,
                                         replace=False):
                s = 1.0 if rng.random() < 0.7 else -1.0
                rows.append((str(instrument), s * units(str(instrument), size / 3)))
        gross = sum(abs(q) * px[i] * mult[i] for i, q in rows)
        for instrument, q in rows:
            positions.append((account, instrument, q, ""))
        ratio = float(rng.choice([0.40, 0.25, 0.15, 0.10, 0.07, 0.04],
                                 p=[0.40, 0.30, 0.12, 0.08, 0.06, 0.04]))
        if style in ("hedged", "spread"):
            ratio /= 3
        collateral.append((account, round(gross * ratio, 2), ""))
        if rng.random() < 0.08:  # an isolated oil-perpetual position with its own collateral
            q = units("WTI-PERP", size / 4)
            positions.append((account, "WTI-PERP", rng.choice([-1.0, 1.0]) * q, "isolated-WTI"))
            iso_ratio = float(rng.choice([0.2, 0.05]))
            collateral.append((account, round(q * px["WTI-PERP"] * 100 * iso_ratio, 2),
                               "isolated-WTI"))
    pos = pd.DataFrame(positions, columns=["account_id", "instrument_id", "quantity",
                                           "netting_set"])
    acc = pd.DataFrame(collateral, columns=["account_id", "collateral", "netting_set"])
    return pos, acc


def write_demo_inputs(folder: Path, n_accounts: int = 300, seed: int = 7) -> DemoFiles:
    """Write the demo's prices, instruments, positions, accounts and run.toml under ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    prices = demo_prices()
    positions, accounts = demo_book(prices, n_accounts, seed)
    files = DemoFiles(
        prices=folder / "prices.csv",
        instruments=folder / "instruments.csv",
        positions=folder / "positions.csv",
        accounts=folder / "accounts.csv",
        config=folder / "run.toml",
    )
    prices.to_csv(files.prices)
    INSTRUMENTS.to_csv(files.instruments, index=False)
    positions.to_csv(files.positions, index=False)
    accounts.to_csv(files.accounts, index=False)
    files.config.write_text(RUN_TOML)
    return files
