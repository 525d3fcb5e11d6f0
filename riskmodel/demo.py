"""The demo book: real index and oil prices from ``arch.data``, a few hundred synthetic accounts.

Prices (daily closes, 1999-01-04 .. 2018-12-31): S&P 500 (``SPX``) and NASDAQ Composite
(``NASDAQ``) from Yahoo Finance, WTI crude spot (``WTI``, FRED series DCOILWTICO, empty on days
without a fixing) and the CBOE VIX index (``VIX``, from 2014), all as shipped inside the
``arch`` package. WTI is configured with absolute returns (price differences), as an oil series
that can go negative needs; VIX is the implied-vol factor of the S&P 500 options.

Accounts (seeded, reproducible) hold directional, hedged (index futures against each other),
spread (oil future against an oil perpetual) and diversified books in spot, futures and
perpetual-style contracts; some of them trade an isolated oil netting set, an isolated option
set (S&P 500 puts and calls: covered calls, short put spreads, straddles; Black-Scholes with rate
and dividend yield, their implied vols moved by VIX) or an isolated inverse set (a
coin-margined-style NASDAQ perpetual, face value 100 USD). Collateral is drawn as a fraction of
gross notional, so a minority of accounts come out under-collateralised. The option quotes
(strikes, expiries, implied vols around the VIX close of 25.42) are made up for the demo.
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

[implied_vol.factors]
SPX = "VIX"        # S&P 500 option vols move with the VIX index (sticky strike)

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
        ("NDX-INV", "inverse_perpetual", "NASDAQ", 100.0),
    ],
    columns=["instrument_id", "kind", "underlying", "multiplier"],
)
# S&P 500 options, quoted on the demo's last date (2018-12-31, S&P 500 at 2506.85, VIX 25.42):
# strikes and vols made up around them, a skew of higher vols at lower strikes.
OPTIONS = pd.DataFrame(
    [
        (f"SPX-{expiry[2:4]}{expiry[5:7]}-{kind[0].upper()}{strike}", "option", "SPX", 100.0,
         float(strike), f"{expiry}T21:00:00Z", kind, round(0.25 + 0.9 * (2500 - strike) / 2500, 4),
         0.025, 0.019, "quote", "black_scholes")
        for expiry in ("2019-01-18", "2019-03-15")
        for strike in (2250, 2400, 2500, 2600, 2750)
        for kind in ("put", "call")
    ],
    columns=["instrument_id", "kind", "underlying", "multiplier", "strike", "expiry",
             "option_type", "implied_vol", "rate", "carry", "settlement", "model"],
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
    from arch.data import nasdaq, sp500, vix, wti

    spx = sp500.load()["Close"].rename("SPX")
    ndx = nasdaq.load()["Close"].rename("NASDAQ")
    oil = wti.load()["DCOILWTICO"].rename("WTI")
    vol = vix.load()["vix"].rename("VIX")
    frame = pd.concat([spx, ndx, oil, vol], axis=1, sort=True).loc["1999-01-04":DEMO_END]
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
    extras = np.random.default_rng([seed, 1])
    last = prices.ffill().iloc[-1]
    px = {
        "SPX": last["SPX"], "ES": last["SPX"], "MES": last["SPX"], "SPX-PERP": last["SPX"],
        "NQ": last["NASDAQ"], "NASDAQ-PERP": last["NASDAQ"], "CL": last["WTI"],
        "WTI-PERP": last["WTI"], "NDX-INV": last["NASDAQ"],
    }
    mult = dict(zip(INSTRUMENTS["instrument_id"], INSTRUMENTS["multiplier"]))
    mult["NDX-INV"] = 100.0 / last["NASDAQ"]  # face value 100 USD: notional per contract
    for row in OPTIONS.itertuples():
        px[row.instrument_id], mult[row.instrument_id] = last["SPX"], row.multiplier

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
        # option and inverse books in their own netting sets, drawn from a second stream so the
        # linear books above stay what they were before these kinds existed
        extra = extras.random()
        if extra < 0.2:
            expiry = str(extras.choice(["1901", "1903"]))
            n = max(1.0, round(size / (last["SPX"] * 100)))
            strategy = extras.choice(["covered_call", "short_put_spread", "straddle"])
            if strategy == "covered_call":  # long the index, short an out-of-the-money call
                legs = [("MES", units("MES", n * 100 * last["SPX"])),
                        (f"SPX-{expiry}-C2600", -n)]
            elif strategy == "short_put_spread":
                legs = [(f"SPX-{expiry}-P2400", -n), (f"SPX-{expiry}-P2250", n)]
            else:  # a long or short straddle at the money
                side = 1.0 if extras.random() < 0.5 else -1.0
                legs = [(f"SPX-{expiry}-P2500", side * n), (f"SPX-{expiry}-C2500", side * n)]
            positions += [(account, i, q, "options") for i, q in legs]
            collateral.append((account, round(n * 100 * last["SPX"]
                                              * float(extras.choice([0.25, 0.1, 0.03])), 2),
                               "options"))
        elif extra < 0.27:  # a coin-margined-style NASDAQ perpetual, face value 100 USD
            q = units("NDX-INV", size / 2)
            positions.append((account, "NDX-INV", (1.0 if extras.random() < 0.6 else -1.0) * q,
                              "inverse"))
            collateral.append((account, round(q * 100 * float(extras.choice([0.3, 0.1, 0.04])),
                                              2), "inverse"))
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
    pd.concat([INSTRUMENTS, OPTIONS], ignore_index=True).to_csv(files.instruments, index=False)
    positions.to_csv(files.positions, index=False)
    accounts.to_csv(files.accounts, index=False)
    files.config.write_text(RUN_TOML)
    write_backtest_inputs(folder, prices)
    return files


BACKTEST_TOML = """\
# The README's backtest: 99% one-day FHS with EWMA 0.94 over 250 returns, built-in portfolios.
method = "fhs"
confidence = 0.99
horizon = 1
lookback = 250

[volatility]
model = "ewma"
ewma_lambda = 0.94
"""


def write_backtest_inputs(folder: Path, prices: pd.DataFrame | None = None) -> None:
    """The README's S&P 500 / NASDAQ backtest inputs: ``backtest_prices.csv`` (those two
    closes on their own calendar), ``backtest_instruments.csv`` (their instruments, from which
    the built-in portfolios are drawn) and ``backtest.toml``."""
    prices = demo_prices() if prices is None else prices
    prices[["SPX", "NASDAQ"]].dropna(how="all").to_csv(folder / "backtest_prices.csv")
    INSTRUMENTS[INSTRUMENTS["underlying"].isin(["SPX", "NASDAQ"])].to_csv(
        folder / "backtest_instruments.csv", index=False)
    (folder / "backtest.toml").write_text(BACKTEST_TOML)
