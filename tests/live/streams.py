"""A seeded intraday stream over the demo run: every factor ticks (the index underlyings fall,
oil rises, the VIX implied-vol index rises), with trades that open, increase, reduce and close
positions (linear, inverse, options; a new isolated set), transfers and funding."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from riskmodel.whatif import LoadedRun

# relative move of each factor over the stream (WTI is an absolute-return factor: +3 dollars)
DRIFT = {"SPX": -0.08, "NASDAQ": -0.10, "VIX": 0.45}
WTI_SHIFT = 3.0


def intraday(run: LoadedRun, n_ticks: int = 120, seed: int = 11) -> list[tuple[str, tuple]]:
    """``[(kind, values)]`` in time order: ``tick (time, asset, price)``, ``trade (time,
    account, instrument, quantity, netting_set)``, ``transfer (time, account, amount)``,
    ``funding (time, instrument, rate)``."""
    rng = np.random.default_rng(seed)
    factors = run.market.factors.set_index("factor")["price"]
    start = pd.Timestamp(run.market.valuation_time).tz_localize("UTC") + pd.Timedelta(hours=15)
    names = list(factors.index)
    price = factors.to_dict()
    per = n_ticks // len(names)
    positions = run.positions
    rows: list[tuple[str, tuple]] = []
    for j in range(n_ticks):
        t = start + pd.Timedelta(seconds=2 * j)
        name = names[j % len(names)]
        if name == "WTI":
            price[name] += WTI_SHIFT / per + 0.05 * rng.standard_normal()
        else:
            price[name] *= np.exp(np.log1p(DRIFT[name]) / per + 0.002 * rng.standard_normal())
        rows.append(("tick", (t, name, float(price[name]))))
        if j % 17 == 3:
            held = positions.iloc[int(rng.integers(len(positions)))]
            if not str(held["instrument_id"]).startswith("collateral:"):
                rows.append(("trade", (t, held["account_id"], held["instrument_id"],
                                       float(-0.5 * held["quantity"]), held["netting_set"])))
        if j % 29 == 7:
            account = positions["account_id"].iat[int(rng.integers(len(positions)))]
            rows.append(("transfer", (t, account, float(np.round(rng.normal(0, 20000), 2)))))
    t_last = rows[-1][1][0]
    held = positions.iloc[0]
    # close a whole position, open a new isolated set, trade the inverse perpetual and an
    # option, pay funding on a perpetual
    rows += [("trade", (t_last, held["account_id"], held["instrument_id"],
                        float(-held["quantity"]), held["netting_set"])),
             ("trade", (t_last, "ACC0003", "SPX-PERP", 4.0, "isolated-SPX")),
             ("trade", (t_last, "ACC0005", "NDX-INV", 250.0, "")),
             ("funding", (t_last, "SPX-PERP", 0.0001))]
    options = run.market.instruments.index[run.market.instruments["kind"] == "option"]
    rows.append(("trade", (t_last, "ACC0007", str(options[0]), -2.0, "options")))
    return rows


def feed(live: Any, rows: list[tuple[str, tuple]]) -> list[Any]:
    """Apply ``rows`` to a LiveMargin; every event, the final flush's included."""
    events: list[Any] = []
    method = {"tick": live.on_tick, "trade": live.on_trade, "transfer": live.on_transfer,
              "funding": live.on_funding}
    for kind, values in rows:
        events += method[kind](*values)
    return events + live.flush()


def write_files(rows: list[tuple[str, tuple]], folder: Any) -> dict[str, Any]:
    """``rows`` as the CSV input files of ``riskmodel live`` (times ISO 8601)."""
    columns = {"tick": ["time", "asset", "price"],
               "trade": ["time", "account_id", "instrument_id", "quantity", "netting_set"],
               "transfer": ["time", "account_id", "amount"],
               "funding": ["time", "instrument_id", "rate"]}
    flags = {"tick": "--ticks", "trade": "--trades", "transfer": "--transfers",
             "funding": "--funding"}
    files = {}
    for kind, names in columns.items():
        table = pd.DataFrame([values for k, values in rows if k == kind], columns=names)
        table["time"] = [t.isoformat() for t in table["time"]]
        path = folder / f"{kind}s.csv"
        table.to_csv(path, index=False, float_format="%.17g")
        files[flags[kind]] = path
    return files
