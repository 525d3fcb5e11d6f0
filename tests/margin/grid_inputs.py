"""Helpers of the grid-method tests: a priced market through the engine's own path."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from riskmodel.config import RunConfig
from riskmodel.engine.build import price_market, value_as_of
from riskmodel.engine.market import PricedMarket
from riskmodel.io.prices import PriceHistory

COLUMNS = ["instrument_id", "kind", "underlying", "multiplier", "strike", "expiry",
           "option_type", "implied_vol", "rate", "model"]


def instrument_frame(rows: list[tuple], marks: dict[str, float]) -> pd.DataFrame:
    """Instruments as the loader gives them, from ``(id, kind, underlying, multiplier, strike,
    expiry, option_type, implied_vol, rate, model)`` rows (NaN/NaT/"" where not an option); an
    instrument whose id has a mark is priced on its own series."""
    frame = pd.DataFrame(rows, columns=COLUMNS)
    frame["expiry"] = pd.to_datetime(frame["expiry"], utc=True)
    frame["factor"] = np.where(frame["instrument_id"].isin(list(marks)), frame["instrument_id"],
                               frame["underlying"])
    return frame.assign(carry=0.0,
                        settlement=np.where(frame["kind"] == "option", "quote", ""))


def history(marks: dict[str, float], as_of: pd.Timestamp) -> PriceHistory:
    """Twelve daily marks ending at ``marks`` on ``as_of`` (small deterministic moves before)."""
    dates = pd.DatetimeIndex([as_of - pd.Timedelta(days=11 - d) for d in range(12)])
    wiggle = 1.0 + 0.01 * np.sin(np.arange(12))[:, None]
    wiggle[-1] = 1.0
    return PriceHistory(Path("marks"), pd.DataFrame(
        np.array(list(marks.values()))[None, :] * wiggle, index=dates, columns=list(marks)))


def grid_market(marks: dict[str, float], instruments: pd.DataFrame, config: RunConfig,
                as_of: pd.Timestamp) -> PricedMarket:
    """The priced market of ``config`` as ``eod`` builds it (``value_as_of`` ->
    ``price_market``), without stress."""
    factors = sorted(marks)
    valuation = value_as_of(history(marks, as_of), factors, as_of.isoformat(), config,
                            warnings=[])
    market, _ = price_market(valuation.market, instruments, factors, valuation.window, None,
                             valuation.filtered, None, config, [config.horizon],
                             with_stress=False)
    return market
