"""Liquidation decisions at a scenario's prices come from the engine: the requirements there
equal an eod re-run at those prices, options are repriced as Black-Scholes says, today's
close-outs are the eod liquidation stage's orders, and the screen changes no decision."""

import dataclasses

import numpy as np
import pandas as pd
import pytest
from scipy.stats import norm
from waterfall_venues import DEMO_MOVES, HAND_ACCOUNTS, HAND_POSITIONS, prices, write_moves

from riskmodel.cli import main
from riskmodel.engine import margin_book
from riskmodel.liquidation.partial import partial_liquidation
from riskmodel.portfolio.collateral import previous_margins
from riskmodel.waterfall.book import load_book
from riskmodel.waterfall.closeout import Liquidator, State
from riskmodel.waterfall.remark import Marks, remarked_market
from riskmodel.waterfall.rounds import ScenarioRunner
from riskmodel.waterfall.run import run_waterfall
from riskmodel.waterfall.scenarios import Scenario
from riskmodel.waterfall.slippage import Slippage


def _scenario(book, moves, held=()):
    factors = book.view.factors
    x = np.array([moves.get(f, 0.0) for f in factors])
    return Scenario("test", "file", x, np.isin(factors, list(held)))


def _margins_at(book, scenario):
    """The engine's figures of every set with positions at the scenario's prices, with each
    set's equity moved by its positions' P&L there."""
    state = State.start(book)
    liquidator = Liquidator(book, Slippage.of(book.config, book.view.factors,
                                              book.cascade.sigma))
    marks = Marks(book.view, scenario, scenario.moves)
    held = np.flatnonzero(np.diff(book.indptr) > 0)
    sub, market, idx = liquidator.sub_book(state, marks, held)
    moved = marks.changed()
    unit = np.zeros(book.n_instruments)
    unit[moved] = marks.unit_pnl(moved)
    equity = book.equity0 + np.asarray(book.by_instrument @ unit).ravel()
    figures = margin_book(market, sub, book.config,
                          collateral=equity[idx],
                          previous=previous_margins(book.run.previous, sub.sets),
                          detail="figures").figures
    return pd.DataFrame({"account_id": book.account_id[idx],
                         "initial_margin": figures["initial_margin"],
                         "maintenance_margin": figures["maintenance_margin"],
                         "status": figures["status"]}).set_index("account_id")


def test_requirements_at_moved_prices_equal_an_eod_rerun(hand_run, tmp_path):
    """X falls 10%: the engine on the re-marked market gives each set what eod gives on the
    price history scaled by 0.9 (same returns, so the same HS scenarios in relative terms,
    the same volatility and stress grid) with each account's collateral credited with its
    positions' P&L (computed here: quantity x 100 x -0.1)."""
    book = load_book(hand_run)
    ours = _margins_at(book, _scenario(book, {"X": -0.1}))
    root = tmp_path / "moved"
    root.mkdir()
    moved = prices()
    moved["X"] *= 0.9
    moved.to_csv(root / "prices.csv", index=False)
    pnl = {a: q * 100.0 * -0.1 for a, _, q in HAND_POSITIONS}
    pd.DataFrame([(a, c + pnl.get(a, 0.0)) for a, c in HAND_ACCOUNTS],
                 columns=["account_id", "collateral"]).to_csv(root / "accounts.csv",
                                                              index=False)
    inputs = hand_run.parent
    argv = ["eod", "--prices", str(root / "prices.csv"), "--instruments",
            str(inputs / "instruments.csv"), "--positions", str(inputs / "positions.csv"),
            "--accounts", str(root / "accounts.csv"), "--config", str(inputs / "run.toml"),
            "--out", str(root / "run"), "--quiet"]
    assert main(argv) == 0
    rerun = pd.read_parquet(root / "run" / "margins.parquet").set_index("account_id")
    rerun = rerun.loc[ours.index]
    np.testing.assert_allclose(ours["initial_margin"], rerun["initial_margin"], rtol=1e-9)
    np.testing.assert_allclose(ours["maintenance_margin"], rerun["maintenance_margin"],
                               rtol=1e-9)
    assert list(ours["status"]) == list(rerun["status"])


def _black_scholes(spot, strike, tau, vol, rate, carry, call):
    """Closed form (Black-Scholes with a continuous carry), scipy's normal."""
    sd = vol * np.sqrt(tau)
    d1 = (np.log(spot / strike) + (rate - carry) * tau) / sd + sd / 2
    d2 = d1 - sd
    if call:
        return spot * np.exp(-carry * tau) * norm.cdf(d1) - strike * np.exp(-rate * tau) \
            * norm.cdf(d2)
    return strike * np.exp(-rate * tau) * norm.cdf(-d2) - spot * np.exp(-carry * tau) \
        * norm.cdf(-d1)


def test_options_are_repriced_at_the_moved_marks(demo_run):
    """SPX up 10% (the map's convention: the VIX not held, so the spot-vol rule marks each
    option's vol: iv x exp(-1.5 (30 / days)^0.3 x 0.10)); the re-marked model P&L of an S&P 500
    option in scenario s is Black-Scholes at P1 exp(r_s) with vol iv1 x VIX_s / VIX_0 and the
    horizon's time left, less Black-Scholes at the marks."""
    book = load_book(demo_run)
    view = book.view
    market = view.market
    options = np.flatnonzero(view.option & np.isin(view.factor_of, [view.factors.index("SPX")])
                             & (market.instruments["model"] == "black_scholes").to_numpy())
    col = int(options[0])
    marks = Marks(view, _scenario(book, {"SPX": 0.1}), _scenario(book, {"SPX": 0.1}).moves)
    remarked = remarked_market(marks, np.array([col]))
    option = market.instruments.iloc[col]
    tau0 = (pd.Timestamp(option["expiry"]).tz_convert(None)
            - market.valuation_time.tz_localize(None)).total_seconds() / (365 * 86400)
    days = max(tau0 * 365, 1.0)
    iv1 = option["implied_vol"] * np.clip(np.exp(-1.5 * (30 / days) ** 0.3 * 0.1), 0.1, 5.0)
    p1 = float(market.spot["SPX"]) * 1.1
    for h in market.horizons:
        scen = market.shocks[h].model
        r = scen.shocks[:, scen.factors.index("SPX")]
        v = scen.shocks[:, scen.factors.index("VIX")]
        call = option["option_type"] == "call"
        args = (option["strike"], option["rate"], option["carry"])
        value = _black_scholes(p1 * np.exp(r), args[0], tau0 - h / 365, iv1 * np.exp(v),
                               args[1], args[2], call)
        now = _black_scholes(p1, args[0], tau0, iv1, args[1], args[2], call)
        expected = option["multiplier"] * (value - now)
        np.testing.assert_allclose(remarked.model[h].pnl[0], expected, rtol=1e-9,
                                   atol=1e-9 * option["multiplier"] * p1)


def test_today_is_the_eod_liquidation_stage(demo_run):
    """With no move, the sets the run put in liquidation are closed exactly as the run's own
    liquidation stage ordered (liquidation_orders.parquet)."""
    book = load_book(demo_run)
    baseline = ScenarioRunner(book).baseline
    ours = pd.DataFrame({"account_id": book.account_id[book.set_of[baseline.pos]],
                         "netting_set": book.netting_set[book.set_of[baseline.pos]],
                         "instrument_id": book.view.market.axis.to_numpy()[
                             book.instrument[baseline.pos]],
                         "quantity_to_close": baseline.qty})
    orders = pd.read_parquet(demo_run / "liquidation_orders.parquet")
    assert len(orders) > 0
    key = ["account_id", "netting_set", "instrument_id"]
    merged = orders.merge(ours, on=key, how="outer", suffixes=("_eod", "_ours"))
    assert len(merged) == len(orders) == len(ours)
    np.testing.assert_allclose(merged["quantity_to_close_ours"],
                               merged["quantity_to_close_eod"], rtol=1e-12, atol=1e-12)


def test_no_equity_left_is_closed_in_full_as_partial_liquidation_would(demo_run):
    """A set whose equity is below zero: partial_liquidation (the eod stage) closes every
    traded position in full, which is what the waterfall orders without asking it."""
    book = load_book(demo_run)
    traded = np.bincount(book.set_of, book.tradeable, minlength=book.n_sets)
    s = int(np.flatnonzero(traded >= 2)[0])
    pos = np.arange(book.indptr[s], book.indptr[s + 1])
    key = (book.account_id[s], book.netting_set[s])
    attribution = pd.read_parquet(demo_run / "attribution.parquet")
    attribution = attribution[(attribution["account_id"] == key[0])
                              & (attribution["netting_set"] == key[1])]
    margins = pd.DataFrame({"account_id": [key[0]], "netting_set": [key[1]],
                            "status": ["liquidation"], "equity": [-1.0],
                            "initial_margin": [book.im0[s]]})
    result = partial_liquidation(book.view.market, book.config, margins, attribution,
                                 penalty=book.config.liquidation.penalty_rates)
    state = State.start(book)
    full = Liquidator(book, Slippage.of(book.config, book.view.factors, book.cascade.sigma)
                      ).full(state, np.array([s]), book.view.exposure0)
    traded = pos[book.tradeable[pos]]
    np.testing.assert_array_equal(np.sort(full.pos), traded)
    ordered = result.orders.set_index("instrument_id")["quantity_to_close"]
    ids = book.view.market.axis.to_numpy()[book.instrument[full.pos]]
    np.testing.assert_allclose(ordered.loc[ids].to_numpy(), full.qty, rtol=1e-15)
    assert full.penalty[s] == pytest.approx(
        float(result.sets["liquidation_penalty"].iloc[0]), rel=1e-12)


def test_the_screen_changes_no_decision(demo_run, tmp_path):
    """Re-margining every set a scenario moves (screen_band = inf) gives the same close-outs
    and losses as the screen."""
    moves = write_moves(tmp_path / "moves.csv", DEMO_MOVES)
    book = load_book(demo_run)
    screened = run_waterfall(demo_run, scenarios_file=moves)
    exact = run_waterfall(demo_run, scenarios_file=moves,
                          waterfall=dataclasses.replace(book.wcfg, screen_band=float("inf")))
    assert (exact.waterfall["engine_sets"] >= screened.waterfall["engine_sets"]).all()
    assert exact.waterfall["engine_sets"].sum() > screened.waterfall["engine_sets"].sum()
    for column in ("liquidated", "closed_in_full", "defaults", "adl_count"):
        assert list(exact.waterfall[column]) == list(screened.waterfall[column])
    for column in ("notional_closed", "bankruptcy_loss", "adl_amount", "socialised",
                   "uncovered", "penalties"):
        np.testing.assert_allclose(exact.waterfall[column], screened.waterfall[column],
                                   rtol=1e-9, atol=1e-6)
    assert screened.waterfall["defaults"].max() > 0
