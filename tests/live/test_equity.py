"""Equity at every tick, worked by hand: trades at the current marks change no equity; then a
future's P&L is multiplier x quantity x the price move, an inverse perpetual's the coin P&L
face x (1/P_entry - 1/P) valued at P, an option's the Black-Scholes value change (written here
with scipy's normal CDF, not the engine's kernels) at an implied vol that moves with the VIX
index; funding is quantity x rate x notional, paid by longs; transfers are cash. Automatic
top-up moves target x MM - equity from the cross set, never below its initial margin."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy.stats import norm

from riskmodel.config import LiveConfig
from riskmodel.engine import margin_book
from riskmodel.live import LiveMargin
from riskmodel.live.requirements import status_codes
from riskmodel.portfolio.netting import net_positions


def _bs(spot: float, strike: float, tau: float, vol: float, rate: float, carry: float,
        call: bool) -> float:
    """Black-Scholes-Merton, textbook form."""
    d1 = (math.log(spot / strike) + (rate - carry + 0.5 * vol * vol) * tau) / (vol * math.sqrt(tau))
    d2 = d1 - vol * math.sqrt(tau)
    if call:
        return spot * math.exp(-carry * tau) * norm.cdf(d1) - strike * math.exp(-rate * tau) \
            * norm.cdf(d2)
    return strike * math.exp(-rate * tau) * norm.cdf(-d2) - spot * math.exp(-carry * tau) \
        * norm.cdf(-d1)


@pytest.fixture(scope="module")
def run(demo_run):
    return demo_run.load()


def _equity(live: LiveMargin, account: str, netting_set: str = "default") -> float:
    return float(live.ledger.equity[live.book.index[(account, netting_set)]])


def test_trades_then_ticks_by_hand(run):
    live = LiveMargin(run)
    t = pd.Timestamp(run.market.valuation_time).tz_localize("UTC") + pd.Timedelta(hours=15)
    spot = dict(zip(run.market.factors["factor"], run.market.factors["price"]))
    # marks move before the trades: entries are at the new marks, not the run's
    spx_t, ndx_t, vix_t = spot["SPX"] * 0.99, spot["NASDAQ"] * 1.02, spot["VIX"] * 1.1
    for name, price in (("SPX", spx_t), ("NASDAQ", ndx_t), ("VIX", vix_t)):
        live.on_tick(t, name, price)
    option = run.market.instruments.loc["SPX-1901-C2500"]
    live.on_trade(t, "FRESH", "ES", 2.0)
    live.on_trade(t, "FRESH", "NDX-INV", 300.0)
    live.on_trade(t, "FRESH", "SPX-1901-C2500", 3.0)
    assert _equity(live, "FRESH") == 100000.0  # trades at the marks move no equity
    spx_1, ndx_1, vix_1 = spx_t * 0.97, ndx_t * 0.95, vix_t * 1.3
    t1 = t + pd.Timedelta(minutes=1)
    for name, price in (("SPX", spx_1), ("NASDAQ", ndx_1), ("VIX", vix_1)):
        live.on_tick(t1, name, price)
    tau = (pd.Timestamp(option["expiry"]).tz_convert("UTC")
           - pd.Timestamp(run.market.valuation_time).tz_localize("UTC")).total_seconds() \
        / 86400 / 365
    iv_t = option["implied_vol"] * vix_t / spot["VIX"]
    iv_1 = option["implied_vol"] * vix_1 / spot["VIX"]

    def call(s: float, vol: float) -> float:
        return _bs(s, option["strike"], tau, vol, option["rate"], option["carry"], True)

    expected = (100000.0
                + 2 * 50.0 * (spx_1 - spx_t)                      # ES: multiplier 50
                + 300 * 100.0 * (1 / ndx_t - 1 / ndx_1) * ndx_1   # NDX-INV: face 100 per contract
                + 3 * 100.0 * (call(spx_1, iv_1) - call(spx_t, iv_t)))
    assert _equity(live, "FRESH") == pytest.approx(expected, rel=1e-12, abs=1e-7)


def test_funding_and_transfer_by_hand(run):
    live = LiveMargin(run)
    t = pd.Timestamp(run.market.valuation_time).tz_localize("UTC") + pd.Timedelta(hours=15)
    spx = float(run.market.spot["SPX"]) * 1.01
    live.on_tick(t, "SPX", spx)
    live.on_trade(t, "FRESH", "SPX-PERP", 5.0)
    live.on_trade(t, "FRESH2", "SPX-PERP", -5.0)
    live.on_funding(t, "SPX-PERP", 0.0003)
    live.on_transfer(t, "FRESH", 1234.5)
    # longs pay shorts: 5 x 0.0003 x (multiplier 1 x price)
    assert _equity(live, "FRESH") == pytest.approx(100000.0 - 5 * 0.0003 * spx + 1234.5,
                                                   rel=1e-14)
    assert _equity(live, "FRESH2") == pytest.approx(10.0 + 5 * 0.0003 * spx, rel=1e-14)


def test_top_up_by_hand(run):
    live = LiveMargin(run, live=LiveConfig(auto_top_up=True, top_up_trigger=1.2,
                                           top_up_target=1.5))
    t = pd.Timestamp(run.market.valuation_time).tz_localize("UTC") + pd.Timedelta(hours=15)
    # a new isolated set with no collateral of its own: level 0, below the trigger
    events = live.on_trade(t, "FRESH", "SPX-PERP", 2.0, "iso")
    iso = live.book.index[("FRESH", "iso")]
    mm = float(live.req.columns["maintenance_margin"][iso])
    assert mm > 0
    top = [e for e in events if e.event == "top_up"]
    assert len(top) == 1 and top[0].netting_set == "iso"
    assert _equity(live, "FRESH", "iso") == pytest.approx(1.5 * mm, rel=1e-14)
    assert _equity(live, "FRESH") == pytest.approx(100000.0 - 1.5 * mm, rel=1e-14)
    # the cross set's free collateral bounds it: FRESH2 holds 10 and no position
    events = live.on_trade(t, "FRESH2", "SPX-PERP", 2.0, "iso")
    assert _equity(live, "FRESH2", "iso") == pytest.approx(10.0, rel=1e-14)
    assert _equity(live, "FRESH2") == pytest.approx(0.0, abs=1e-12)


def test_status_rule_is_the_engines(run):
    """The status the loop applies between refreshes is the engine's for the same equity."""
    book = net_positions(run.positions, run.axis)
    base = run.margin(book, "figures").figures
    assert base is not None
    for scale in (0.5, 0.99, 1.0, 1.01, 1.3):
        equity = base["maintenance_margin"] * scale
        figures = margin_book(run.market, book, run.config, collateral=equity,
                              account_types=run.collateral.account_types,
                              detail="figures").figures
        assert figures is not None
        codes = status_codes(equity, figures["initial_margin"], figures["maintenance_margin"],
                             run.config.margin.warning_multiple)
        names = np.array(["ok", "warning", "margin_call", "liquidation"])[codes]
        assert (names == np.asarray(figures["status"], dtype=str)).all()
