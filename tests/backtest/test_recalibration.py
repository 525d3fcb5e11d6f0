"""Recalibration in the backtest: GARCH parameters refitted on a schedule (every 21 dates by
default) on the data up to each refit date, a short history borrowing its proxy's dynamics as
``calibrate`` does, and the schedule and every fallback with its dates in the summary."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from riskmodel.backtest.run import BacktestInputs, BacktestWindow, run_backtest
from riskmodel.cli import garch_fitter
from riskmodel.config import config_from_mapping
from riskmodel.demo import INSTRUMENTS, demo_prices

SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "data"
CLOSES = SHARED / "crypto_daily_close.csv"


@pytest.fixture(scope="module")
def late_listing(tmp_path_factory) -> dict[str, Path]:
    """The demo's S&P 500 and NASDAQ closes with NASDAQ listed only from 2004-06-01."""
    folder = tmp_path_factory.mktemp("late")
    prices = demo_prices()[["SPX", "NASDAQ"]].loc["1999-01-01":"2007-12-31"].dropna(how="all")
    prices.loc[:"2004-05-31", "NASDAQ"] = np.nan
    prices.to_csv(folder / "prices.csv")
    INSTRUMENTS[INSTRUMENTS["instrument_id"].isin(["SPX", "NQ"])].to_csv(
        folder / "instruments.csv", index=False)
    return {"prices": folder / "prices.csv", "instruments": folder / "instruments.csv"}


def test_short_history_takes_its_proxy_until_its_own_fit_is_possible(late_listing):
    config = config_from_mapping({
        "method": "fhs", "lookback": 250, "horizon": 1,
        "calibration": {"min_history": 500, "proxies": {"NASDAQ": "SPX"}},
    })
    result = run_backtest(BacktestInputs(late_listing["prices"], late_listing["instruments"]),
                          config, BacktestWindow("2005-09-01", "2006-12-29"),
                          fitter=garch_fitter(), n_sim=0)
    summary = result.summary
    schedule = summary["volatility"]
    assert schedule["recalibrate_every"] == 21 == summary["run"]["recalibrate_every"]
    fits = [pd.Timestamp(f["date"]) for f in schedule["fits"]]
    calendar = pd.read_csv(late_listing["prices"], index_col=0, parse_dates=True).index
    rows = calendar.get_indexer(fits)
    assert len(fits) > 10 and (np.diff(rows) == 21).all()
    # NASDAQ: fewer than 500 own returns at first (listed 2004-06-01), so SPX's dynamics at
    # its own variance level; its own GARCH fit from the refit at which it has 500
    replay = result.replay
    assert replay is not None
    nasdaq = [(pd.Timestamp(f["date"]), f["factors"]["NASDAQ"]) for f in
              replay.info["volatility"]]
    own_returns = [int((calendar[1:] <= d).sum() - (calendar[1:] < "2004-06-02").sum())
                   for d, _ in nasdaq]
    for (date, facts), n in zip(nasdaq, own_returns):
        if n < 500:
            assert "proxy SPX" in facts["fallback"] and facts["model"] == "garch", date
        else:
            assert facts["fallback"] is None, date
    assert min(own_returns) < 500 <= max(own_returns)
    fallbacks = schedule["fallbacks"]
    assert {f["factor"] for f in fallbacks} == {"NASDAQ"}
    assert all("proxy SPX" in f["reason"] and f["until"] is not None for f in fallbacks)
    assert pd.Timestamp(fallbacks[0]["from"]) == fits[0]


def test_recalibrate_every_zero_keeps_one_fit(late_listing):
    config = config_from_mapping({"method": "fhs", "lookback": 250, "horizon": 1})
    result = run_backtest(BacktestInputs(late_listing["prices"], late_listing["instruments"]),
                          config, BacktestWindow("2006-01-03", "2006-03-31",
                                                 recalibrate_every=0),
                          fitter=garch_fitter(), n_sim=0)
    assert len(result.summary["volatility"]["fits"]) == 1
    assert result.summary["volatility"]["recalibrate_every"] == 0


@pytest.mark.skipif(not CLOSES.exists(), reason="../shared/data is not present")
def test_crypto_coins_leave_ewma_once_their_history_allows(tmp_path):
    # BTC, ETH and DOGE from 2017-11-10: 416 returns on 2019-01-01, below calibration.min_history
    # (500), so ETH and DOGE start on EWMA; refits every 21 dates give them GARCH within months
    closes = pd.read_csv(CLOSES, index_col="date", parse_dates=True)
    closes.loc["2017-11-10":, ["BTC", "ETH", "DOGE"]].to_csv(tmp_path / "prices.csv")
    pd.DataFrame({"instrument_id": ["BTC-PERP", "ETH-PERP", "DOGE-PERP"],
                  "kind": ["perpetual"] * 3, "underlying": ["BTC", "ETH", "DOGE"],
                  "multiplier": [1.0] * 3}).to_csv(tmp_path / "instruments.csv", index=False)
    config = config_from_mapping({"method": "fhs", "horizon": 1, "lookback": 365})
    result = run_backtest(BacktestInputs(tmp_path / "prices.csv", tmp_path / "instruments.csv"),
                          config, BacktestWindow("2019-01-01", "2019-06-30"),
                          fitter=garch_fitter(), n_sim=0)
    fits = result.summary["volatility"]["fits"]
    assert len(fits) >= 8
    info = result.replay.info["volatility"]  # type: ignore[union-attr]
    first, last = info[0]["factors"], info[-1]["factors"]
    assert first["ETH"]["fallback"] and first["ETH"]["model"] == "ewma"
    assert last["ETH"]["fallback"] is None and last["ETH"]["model"] == "garch"
    until = {f["factor"]: f["until"] for f in result.summary["volatility"]["fallbacks"]}
    assert set(until) >= {"ETH", "DOGE"}
