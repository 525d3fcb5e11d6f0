"""Options, inverse contracts and coin collateral through a whole eod run, against hand and
scipy calculations written here.

A synthetic coin ("BTC", seeded lognormal closes) and plain HS at one or two days: the scenario
moves are the historical ones, so every scenario P&L can be recomputed independently: inverse
perpetual ``face x q x (P_s / P_0 - 1)``, coin-settled option ``V_s - (V_0 / P_0) P_s`` with
Black-76 from scipy, intrinsic settlement inside the horizon, coin collateral revalued with the
book. VaR by numpy's inverted-CDF quantile, ES by the Acerbi-Tasche formula.
"""

import json

import numpy as np
import pandas as pd
import pytest
from scipy.stats import norm

from riskmodel.batch.eod import EodInputs, run_eod
from riskmodel.config import config_from_mapping
from riskmodel.errors import InputDataError

LOOKBACK = 300
DATES = pd.date_range("2023-01-01", periods=600, freq="D")
AS_OF = DATES[-1].tz_localize("UTC")


@pytest.fixture(scope="module")
def btc():
    rng = np.random.default_rng(7)
    return pd.Series(30_000 * np.exp(np.cumsum(rng.normal(0, 0.03, len(DATES)))), index=DATES,
                     name="BTC")


def _run(tmp_path, prices, instruments, positions, accounts, horizon=1, extra=None):
    tmp_path.mkdir(parents=True, exist_ok=True)
    frame = prices.to_frame() if isinstance(prices, pd.Series) else prices
    frame.rename_axis("date").reset_index().assign(
        date=lambda f: f["date"].dt.strftime("%Y-%m-%d")).to_csv(tmp_path / "p.csv", index=False)
    pd.DataFrame(instruments).to_csv(tmp_path / "i.csv", index=False)
    pd.DataFrame(positions).to_csv(tmp_path / "q.csv", index=False)
    pd.DataFrame(accounts).to_csv(tmp_path / "a.csv", index=False)
    raw = {"method": "hs", "lookback": LOOKBACK, "horizon": horizon, "confidence": 0.99,
           "implied_vol": {"rule_beta": 0.0}, **(extra or {})}
    config = config_from_mapping(raw)
    inputs = EodInputs(tmp_path / "p.csv", tmp_path / "i.csv", tmp_path / "q.csv",
                       tmp_path / "a.csv")
    return run_eod(inputs, config)


def _hs_moves(prices: pd.Series, horizon: int) -> np.ndarray:
    """The h-day scenario prices P_0 exp(sum of h consecutive log returns) of the window."""
    r = np.log(prices / prices.shift(1)).dropna().to_numpy()[-LOOKBACK:]
    h_sums = np.array([r[i:i + horizon].sum() for i in range(LOOKBACK - horizon + 1)])
    return prices.iloc[-1] * np.exp(h_sums)


def _var_es(pnl: np.ndarray, a: float = 0.99) -> tuple[float, float]:
    losses = -pnl
    var = np.quantile(losses, a, method="inverted_cdf")
    n = len(losses)
    es = (losses[losses > var].sum() / n + var * ((losses <= var).sum() / n - a)) / (1 - a)
    return float(var), float(es)


def _black76(f, k, t, sigma, call):
    f, t = np.asarray(f, float), np.asarray(t, float)
    if np.all(t <= 0):
        return np.maximum(f - k, 0.0) if call else np.maximum(k - f, 0.0)
    d1 = (np.log(f / k) + 0.5 * sigma**2 * t) / (sigma * np.sqrt(t))
    d2 = d1 - sigma * np.sqrt(t)
    return f * norm.cdf(d1) - k * norm.cdf(d2) if call else k * norm.cdf(-d2) - f * norm.cdf(-d1)


def test_inverse_perpetual_pnl_is_the_coin_pnl_at_the_scenario_price(tmp_path, btc):
    """Face 100 USD, 250 contracts short: P&L in coin 100 x (-250) x (1/P0 - 1/P1), worth
    that x P1 in USD, i.e. 100 x (-250) x (P1/P0 - 1)."""
    result = _run(tmp_path, btc,
                  [{"instrument_id": "BTC-INV", "kind": "inverse_perpetual",
                    "underlying": "BTC", "multiplier": 100.0}],
                  [{"account_id": "a", "instrument_id": "BTC-INV", "quantity": -250.0}],
                  [{"account_id": "a", "collateral": 1e6}])
    p0, p1 = btc.iloc[-1], _hs_moves(btc, 1)
    coin_pnl = 100.0 * -250.0 * (1.0 / p0 - 1.0 / p1)
    var, es = _var_es(coin_pnl * p1)
    row = result.margins.iloc[0]
    np.testing.assert_allclose([row["var"], row["es"]], [var, es], rtol=1e-10)
    attribution = result.attribution.iloc[0]
    assert attribution["notional"] == pytest.approx(25_000.0)  # face value x contracts
    assert attribution["market_value"] == 0.0


@pytest.mark.parametrize("option_type", ["call", "put"])
def test_coin_settled_option_pnl_converts_at_the_scenario_price(tmp_path, btc, option_type):
    """Deribit style: premium in coin V/P; a short of 3 BTC options over a 2-day horizon:
    P&L in USD = -3 x (V(P_s, T - 2/365) - V(P_0, T) / P_0 x P_s), Black-76 with zero rate,
    the vol unchanged (rule_beta = 0)."""
    p0 = float(btc.iloc[-1])
    strike, vol = round(p0 * 0.9, 0), 0.65
    expiry = AS_OF + pd.Timedelta(days=30, hours=8)
    result = _run(tmp_path, btc,
                  [{"instrument_id": "BTC-OPT", "kind": "option", "underlying": "BTC",
                    "multiplier": 1.0, "strike": strike, "expiry": expiry.isoformat(),
                    "option_type": option_type, "implied_vol": vol, "settlement": "coin"}],
                  [{"account_id": "a", "instrument_id": "BTC-OPT", "quantity": -3.0}],
                  [{"account_id": "a", "collateral": 1e6}], horizon=2)
    t0 = (expiry - AS_OF) / pd.Timedelta(days=365)
    call = option_type == "call"
    v0 = _black76(p0, strike, t0, vol, call)
    ps = _hs_moves(btc, 2)
    vs = _black76(ps, strike, t0 - 2 / 365, vol, call)
    var, es = _var_es(-3.0 * (vs - v0 / p0 * ps))
    row = result.margins.iloc[0]
    np.testing.assert_allclose([row["var"], row["es"]], [var, es], rtol=1e-9)
    attribution = result.attribution.iloc[0]
    np.testing.assert_allclose(attribution["market_value"], -3.0 * v0, rtol=1e-10)


def test_option_expiring_inside_the_horizon_settles_at_intrinsic(tmp_path, btc):
    """A quote-settled call expiring one day after the market date, margined over two days:
    every scenario pays max(P_s - K, 0) against today's Black-Scholes value."""
    p0 = float(btc.iloc[-1])
    strike, vol = round(p0, 0), 0.8
    expiry = AS_OF + pd.Timedelta(days=1)
    result = _run(tmp_path, btc,
                  [{"instrument_id": "C1D", "kind": "option", "underlying": "BTC",
                    "multiplier": 1.0, "strike": strike, "expiry": expiry.isoformat(),
                    "option_type": "call", "implied_vol": vol}],
                  [{"account_id": "a", "instrument_id": "C1D", "quantity": 10.0}],
                  [{"account_id": "a", "collateral": 1e6}], horizon=2)
    v0 = _black76(p0, strike, 1 / 365, vol, True)  # zero rate and carry: BS = Black-76 on spot
    ps = _hs_moves(btc, 2)
    var, es = _var_es(10.0 * (np.maximum(ps - strike, 0.0) - v0))
    row = result.margins.iloc[0]
    np.testing.assert_allclose([row["var"], row["es"]], [var, es], rtol=1e-9)


def _short_put_run(tmp_path, btc, collateral_rows, haircut=0.0):
    p0 = float(btc.iloc[-1])
    return _run(tmp_path, btc,
                [{"instrument_id": "BTC-P", "kind": "option", "underlying": "BTC",
                  "multiplier": 1.0, "strike": round(0.95 * p0, 0),
                  "expiry": (AS_OF + pd.Timedelta(days=14, hours=8)).isoformat(),
                  "option_type": "put", "implied_vol": 0.7}],
                [{"account_id": "w", "instrument_id": "BTC-P", "quantity": -5.0}],
                collateral_rows, horizon=2,
                extra={"collateral": {"haircuts": {"BTC": haircut}}})


def test_coin_collateral_is_revalued_with_the_book(tmp_path, btc):
    """2 BTC of collateral at a 10% haircut: equity 0.9 x 2 x P0 today, and the scenario P&L of
    the set is the put's plus 0.9 x 2 x (P_s - P0)."""
    p0 = float(btc.iloc[-1])
    result = _short_put_run(tmp_path, btc,
                            [{"account_id": "w", "asset": "BTC", "amount": 2.0},
                             {"account_id": "w", "asset": "USD", "amount": 1000.0}],
                            haircut=0.1)
    row = result.margins.iloc[0]
    np.testing.assert_allclose(row["equity"], 1000.0 + 0.9 * 2.0 * p0, rtol=1e-12)
    t0 = (pd.Timedelta(days=14, hours=8)) / pd.Timedelta(days=365)
    strike = round(0.95 * p0, 0)
    ps = _hs_moves(btc, 2)
    put = -5.0 * (_black76(ps, strike, t0 - 2 / 365, 0.7, False)
                  - _black76(p0, strike, t0, 0.7, False))
    var, es = _var_es(put + 0.9 * 2.0 * (ps - p0))
    np.testing.assert_allclose([row["var"], row["es"]], [var, es], rtol=1e-9)
    assert row["n_positions"] == 1  # collateral is not a position
    collateral = result.attribution[result.attribution["instrument_id"] == "collateral:BTC"]
    assert collateral["notional"].iloc[0] == 0.0
    np.testing.assert_allclose(result.attribution["contribution"].sum(), row["model_margin"],
                               rtol=1e-12)


def test_btc_collateral_needs_more_margin_than_usd_for_a_short_put(tmp_path, btc):
    """Wrong-way risk: the same short put, funded with the same value in BTC or in USD."""
    p0 = float(btc.iloc[-1])
    in_btc = _short_put_run(tmp_path / "btc", btc,
                            [{"account_id": "w", "asset": "BTC", "amount": 3.0}])
    in_usd = _short_put_run(tmp_path / "usd", btc,
                            [{"account_id": "w", "asset": "USD", "amount": 3.0 * p0}])
    btc_row, usd_row = in_btc.margins.iloc[0], in_usd.margins.iloc[0]
    np.testing.assert_allclose(btc_row["equity"], usd_row["equity"], rtol=1e-12)
    assert btc_row["initial_margin"] > 1.5 * usd_row["initial_margin"]


def test_collateral_asset_without_prices_is_an_input_error(tmp_path, btc):
    with pytest.raises(InputDataError, match=r"a\.csv line 2, column 'asset'.*'ETH'"):
        _short_put_run(tmp_path, btc, [{"account_id": "w", "asset": "ETH", "amount": 3.0}])


def test_vix_moves_spx_option_vols(tmp_path):
    """With [implied_vol] factors SPX = "VIX", each scenario's vol is iv0 x VIX_s / VIX_0 (the
    index's historical log change), not the spot-vol rule."""
    rng = np.random.default_rng(3)
    r = rng.normal(0, 0.01, len(DATES))
    spx = pd.Series(4000 * np.exp(np.cumsum(r)), index=DATES, name="SPX")
    vix = pd.Series(20 * np.exp(np.cumsum(-4 * r + rng.normal(0, 0.03, len(DATES)))),
                    index=DATES, name="VIX")
    prices = pd.concat([spx, vix], axis=1)
    p0, strike, iv0 = float(spx.iloc[-1]), round(float(spx.iloc[-1]) * 0.97), 0.22
    expiry = AS_OF + pd.Timedelta(days=45)
    result = _run(tmp_path, prices,
                  [{"instrument_id": "SPX-P", "kind": "option", "underlying": "SPX",
                    "multiplier": 100.0, "strike": strike, "expiry": expiry.isoformat(),
                    "option_type": "put", "implied_vol": iv0}],
                  [{"account_id": "a", "instrument_id": "SPX-P", "quantity": -2.0}],
                  [{"account_id": "a", "collateral": 1e6}],
                  extra={"implied_vol": {"factors": {"SPX": "VIX"}, "rule_beta": 5.0}})
    t0 = (expiry - AS_OF) / pd.Timedelta(days=365)
    ps = _hs_moves(spx, 1)
    vix_change = (_hs_moves(vix, 1) / vix.iloc[-1])
    pnl = -2.0 * 100.0 * (_black76(ps, strike, t0 - 1 / 365, iv0 * vix_change, False)
                          - _black76(p0, strike, t0, iv0, False))
    var, es = _var_es(pnl)
    row = result.margins.iloc[0]
    np.testing.assert_allclose([row["var"], row["es"]], [var, es], rtol=1e-9)
    assert json.dumps(result.manifest["warnings"]).count("VIX") == 0


def test_attribution_notional_and_greeks_of_options_match_scipy(tmp_path, btc):
    """Quote-settled Black-Scholes call and put with rate and carry: attribution's
    market_value (q V), delta-adjusted notional |q dV/dP P|, delta (q dV/dP P), gamma
    (q d2V/dP2 P^2 / 100) and vega (q dV/dsigma / 100) against closed forms from scipy; a linear
    perpetual's notional is |q m P|."""
    p0 = float(btc.iloc[-1])
    expiry = AS_OF + pd.Timedelta(days=40, hours=8)
    t = (expiry - AS_OF) / pd.Timedelta(days=365)
    r, q_div, vol = 0.04, 0.01, 0.65
    legs = {"C": ("call", 1.1 * p0, 3.0), "P": ("put", 0.9 * p0, -5.0)}
    instruments = [{"instrument_id": k, "kind": "option", "underlying": "BTC", "multiplier": 2.0,
                    "strike": strike, "expiry": expiry.isoformat(), "option_type": kind,
                    "implied_vol": vol, "rate": r, "carry": q_div}
                   for k, (kind, strike, _) in legs.items()]
    instruments.append({"instrument_id": "PERP", "kind": "perpetual", "underlying": "BTC",
                        "multiplier": 0.5})
    positions = [{"account_id": "a", "instrument_id": k, "quantity": qty}
                 for k, (_, _, qty) in legs.items()]
    positions.append({"account_id": "a", "instrument_id": "PERP", "quantity": -4.0})
    result = _run(tmp_path, btc, instruments, positions,
                  [{"account_id": "a", "collateral": 1e6}])
    att = result.attribution.set_index("instrument_id")
    for k, (kind, strike, qty) in legs.items():
        d1 = (np.log(p0 / strike) + (r - q_div + 0.5 * vol**2) * t) / (vol * np.sqrt(t))
        d2 = d1 - vol * np.sqrt(t)
        if kind == "call":
            value = p0 * np.exp(-q_div * t) * norm.cdf(d1) - strike * np.exp(-r * t) * norm.cdf(d2)
            delta = np.exp(-q_div * t) * norm.cdf(d1)
        else:
            value = (strike * np.exp(-r * t) * norm.cdf(-d2)
                     - p0 * np.exp(-q_div * t) * norm.cdf(-d1))
            delta = -np.exp(-q_div * t) * norm.cdf(-d1)
        gamma = np.exp(-q_div * t) * norm.pdf(d1) / (p0 * vol * np.sqrt(t))
        vega = p0 * np.exp(-q_div * t) * norm.pdf(d1) * np.sqrt(t)
        m = 2.0
        row = att.loc[k]
        np.testing.assert_allclose(row["market_value"], qty * m * value, rtol=1e-10)
        np.testing.assert_allclose(row["notional"], abs(qty * m * delta * p0), rtol=1e-10)
        np.testing.assert_allclose(row["delta"], qty * m * delta * p0, rtol=1e-10)
        np.testing.assert_allclose(row["gamma"], qty * m * gamma * p0**2 / 100, rtol=1e-9)
        np.testing.assert_allclose(row["vega"], qty * m * vega / 100, rtol=1e-9)
    np.testing.assert_allclose(att.loc["PERP", "notional"], 4.0 * 0.5 * p0, rtol=1e-12)
    margins = result.margins.iloc[0]
    np.testing.assert_allclose(margins["gross_notional"], att["notional"].sum(), rtol=1e-12)
