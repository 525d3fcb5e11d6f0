"""HS margins on real S&P 500 / NASDAQ data equal the DESIGN.md definitions computed here.

The reference is computed independently from the raw closes: P&L of each book in each of the
last 500 daily returns, VaR with numpy's inverted-CDF quantile, ES from a sort and the
Acerbi-Tasche formula. Tolerance 1e-9 relative.
"""

import numpy as np
import pandas as pd
import pytest
from engine_inputs import write_inputs

from riskmodel.batch.eod import run_eod
from riskmodel.config import RunConfig

INSTRUMENTS = [
    ("SPX", "spot", "SPX", 1.0),
    ("ES", "future", "SPX", 50.0),
    ("NQ", "future", "NASDAQ", 20.0),
    ("NDX-PERP", "perpetual", "NASDAQ", 1.0),
]
BOOKS = {  # account -> {instrument: quantity}
    "long_spot": {"SPX": 100.0},
    "short_future": {"ES": -3.0},
    "hedged": {"ES": 2.0, "NQ": -3.0},
    "mixed": {"SPX": 50.0, "NQ": 1.0, "NDX-PERP": -200.0},
}
MULT = {i[0]: i[3] for i in INSTRUMENTS}
FACTOR = {"SPX": "SPX", "ES": "SPX", "NQ": "NASDAQ", "NDX-PERP": "NASDAQ"}


def reference(prices, book, confidence, lookback=500):
    logret = np.log(prices / prices.shift(1)).dropna().iloc[-lookback:]
    last = prices.iloc[-1]
    pnl = np.zeros(lookback)
    for instrument, q in book.items():
        f = FACTOR[instrument]
        pnl += q * MULT[instrument] * (last[f] * np.exp(logret[f].to_numpy()) - last[f])
    losses = -pnl
    var = np.quantile(losses, confidence, method="inverted_cdf")
    srt = np.sort(losses)
    n = len(srt)
    tail = srt[srt > var].sum() / n
    es = (tail + var * ((srt <= var).sum() / n - confidence)) / (1 - confidence)
    return var, es


@pytest.mark.parametrize("confidence", [0.99, 0.975, 0.95])
@pytest.mark.parametrize("measure", ["es", "var"])
def test_hs_one_day_matches_definition(tmp_path, index_closes, confidence, measure):
    prices = index_closes.loc[:"2018-12-31"]
    positions = [(a, i, q) for a, book in BOOKS.items() for i, q in book.items()]
    accounts = [(a, 1e6) for a in BOOKS]
    inputs = write_inputs(tmp_path, prices, INSTRUMENTS, positions, accounts)
    config = RunConfig(method="hs", horizon=1, lookback=500, confidence=confidence,
                       measure=measure)
    result = run_eod(inputs, config)
    margins = result.margins.set_index("account_id")
    assert result.scenarios.n_scenarios == 500
    for account, book in BOOKS.items():
        var, es = reference(prices, book, confidence)
        np.testing.assert_allclose(margins.loc[account, "var"], var, rtol=1e-9)
        np.testing.assert_allclose(margins.loc[account, "es"], es, rtol=1e-9)
        expected = max(es if measure == "es" else var, 0.0)
        np.testing.assert_allclose(margins.loc[account, "model_margin"], expected, rtol=1e-9)
    # Euler contributions add up to the model margin of every netting set.
    contrib = result.attribution.groupby("account_id")["contribution"].sum()
    np.testing.assert_allclose(contrib.loc[margins.index], margins["model_margin"], rtol=1e-9)


def test_hs_as_of_uses_only_data_up_to_that_date(tmp_path, index_closes):
    prices = index_closes.loc[:"2018-12-31"]
    inputs = write_inputs(tmp_path, prices, INSTRUMENTS, [("a", "ES", 1.0)], [("a", 1e5)])
    result = run_eod(inputs, RunConfig(method="hs", horizon=1, lookback=500),
                     as_of="2008-10-15")
    var, es = reference(prices.loc[:"2008-10-15"], {"ES": 1.0}, 0.99)
    np.testing.assert_allclose(result.margins["es"].iat[0], es, rtol=1e-9)
    assert result.manifest["market_date"].startswith("2008-10-15")


def test_horizon_by_kind_takes_the_longest_in_each_set(tmp_path, index_closes):
    """Perpetuals at 1 day, futures at 2 (the default): a perpetual-only set is margined on
    1-day moves, a set mixing both on 2-day moves (overlapping, inside the last 500 returns)."""
    prices = index_closes.loc[:"2018-12-31"]
    positions = [("perp", "NDX-PERP", 300.0), ("mixed", "NDX-PERP", 300.0),
                 ("mixed", "ES", -1.0)]
    inputs = write_inputs(tmp_path, prices, INSTRUMENTS, positions, [("perp", 1e6),
                                                                      ("mixed", 1e6)])
    config = RunConfig(method="hs", horizon=2, lookback=500, horizons_by_kind={"perpetual": 1})
    result = run_eod(inputs, config)
    m = result.margins.set_index("account_id")
    logret = np.log(prices / prices.shift(1)).dropna().iloc[-500:]
    last = prices.iloc[-1]
    for account, h in (("perp", 1), ("mixed", 2)):
        r = sum(logret.iloc[k: len(logret) - h + 1 + k].to_numpy() for k in range(h))
        pnl = 300.0 * last["NASDAQ"] * np.expm1(r[:, 1])
        if account == "mixed":
            pnl += -1.0 * 50.0 * last["SPX"] * np.expm1(r[:, 0])
        var = np.quantile(-pnl, 0.99, method="inverted_cdf")
        np.testing.assert_allclose(m.loc[account, "var"], var, rtol=1e-9)
    assert result.manifest["scenarios"]["netting_sets_by_horizon_days"] == {"1": 1, "2": 1}


def test_liquidation_price_of_a_single_perpetual_and_spot(tmp_path, index_closes):
    """Closed form at the run's own maintenance margin: E + q m (P - P0) = MM0 P / P0."""
    prices = index_closes.loc[:"2018-12-31"]
    positions = [("perp", "NDX-PERP", 40.0), ("spot", "SPX", -100.0)]
    inputs = write_inputs(tmp_path, prices, INSTRUMENTS, positions, [("perp", 60_000.0),
                                                                      ("spot", 60_000.0)])
    m = run_eod(inputs, RunConfig(method="hs", horizon=1, lookback=500)).margins
    m = m.set_index("account_id")
    for account, q, p0 in (("perp", 40.0, prices["NASDAQ"].iloc[-1]),
                           ("spot", -100.0, prices["SPX"].iloc[-1])):
        e, mm = m.loc[account, "equity"], m.loc[account, "maintenance_margin"]
        expected = (q * p0 - e) / (q - mm / p0)
        np.testing.assert_allclose(m.loc[account, "liquidation_price"], expected, rtol=1e-12)
        x = expected / p0 - 1
        assert (x < 0) == (q > 0)  # a long is liquidated by a fall, a short by a rise
        np.testing.assert_allclose(m.loc[account, "liq_move_uniform"], x, rtol=1e-12)


def test_hedged_pair_is_further_from_liquidation_than_either_leg(tmp_path, index_closes):
    prices = index_closes.loc[:"2018-12-31"]
    es, nq = 1.0, -1.0 * (50 * prices["SPX"].iloc[-1]) / (20 * prices["NASDAQ"].iloc[-1])
    positions = [("pair", "ES", es), ("pair", "NQ", nq), ("long", "ES", es), ("short", "NQ", nq)]
    accounts = [(a, 20_000.0) for a in ("pair", "long", "short")]
    inputs = write_inputs(tmp_path, prices, INSTRUMENTS, positions, accounts)
    m = run_eod(inputs, RunConfig(method="hs", horizon=1, lookback=500)).margins
    d = m.set_index("account_id")["liq_move_uniform"].abs()
    assert d["pair"] > d["long"] and d["pair"] > d["short"]


def test_horizon_by_account_type(tmp_path, index_closes):
    """An OTC account (5-day margin period of risk) holding a future (2 days) gets 5."""
    prices = index_closes.loc[:"2018-12-31"]
    inputs = write_inputs(tmp_path, prices, INSTRUMENTS,
                          [("otc", "ES", 1.0), ("listed", "ES", 1.0)],
                          [("otc", 1e6, "default"), ("listed", 1e6, "default")])
    accounts = pd.read_csv(inputs.accounts)
    accounts["account_type"] = ["otc", ""]
    accounts.to_csv(inputs.accounts, index=False)
    config = RunConfig(method="hs", horizon=2, lookback=500, horizons_by_account_type={"otc": 5})
    result = run_eod(inputs, config)
    m = result.margins.set_index("account_id")
    logret = np.log(prices["SPX"] / prices["SPX"].shift(1)).dropna().iloc[-500:].to_numpy()
    for account, h in (("otc", 5), ("listed", 2)):
        r = sum(logret[k: len(logret) - h + 1 + k] for k in range(h))
        var = np.quantile(-50.0 * prices["SPX"].iloc[-1] * np.expm1(r), 0.99,
                          method="inverted_cdf")
        np.testing.assert_allclose(m.loc[account, "var"], var, rtol=1e-9)
