"""The crypto study's inputs and its volatility-shape bound, against plain loops on the shared
coins (skips without ../shared/data)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from calibration.crypto_study import (
    CANDIDATES,
    COINS,
    SHARED,
    volatility_shapes,
    write_inputs,
)
from riskmodel.config import config_from_mapping

pytestmark = pytest.mark.skipif(not (SHARED / "crypto_daily_close.csv").exists(),
                                reason="../shared/data is not present")


def test_inputs_are_the_issue_portfolios(tmp_path):
    inputs = write_inputs(tmp_path)
    prices = pd.read_csv(inputs.prices)
    assert prices["date"].iloc[0] == "2017-11-10" and list(prices.columns) == ["date", *COINS]
    last = prices.iloc[-1]
    positions = pd.read_csv(inputs.positions)
    worth = positions["quantity"] * [last[i.split("-")[0]] for i in positions["instrument_id"]]
    by_set = worth.groupby(positions["netting_set"]).agg(lambda w: sorted(w.round(6)))
    for coin in COINS:
        assert by_set[f"long_{coin}"] == [10_000.0] and by_set[f"short_{coin}"] == [-10_000.0]
    assert by_set["basket"] == [pytest.approx(10_000 / 3)] * 3
    assert by_set["pair_ETH_BTC"] == [-10_000.0, 10_000.0]


def test_every_candidate_is_a_valid_configuration():
    for candidate in CANDIDATES:
        config_from_mapping(candidate.raw(), {}, source=candidate.name)
    profile = config_from_mapping(CANDIDATES[-1].raw(), {})
    assert (profile.measure, profile.confidence, profile.horizon, profile.lookback) == \
        ("var", 0.99, 1, 365)


def _loop_ratio(closes: pd.DataFrame, quantity: np.ndarray, lam: float, rate: float) -> float:
    """One set's bound written out: EWMA of squared returns, trailing-year correlation of the
    standardised returns, the set's sigma, then both hindsight scalings by sorting."""
    p = closes[list(COINS)].to_numpy(np.float64)
    r = np.diff(np.log(p), axis=0)
    var = [np.mean(r[:30] ** 2, axis=0)]
    for row in r:
        var.append(lam * var[-1] + (1 - lam) * row ** 2)
    var_a = np.array(var)
    dates = pd.DatetimeIndex(closes["date"])[1:]
    first = int(np.flatnonzero(dates == pd.Timestamp("2019-01-01"))[0])
    last = int(np.flatnonzero(dates == pd.Timestamp("2025-02-19"))[0])
    loss, sigma, gross = [], [], []
    for t in range(first, last + 1):
        exposure = quantity * p[t + 1]  # price at date t (returns row t ends on date t)
        z = r[t - 364:t + 1] / np.sqrt(var_a[t - 364:t + 1])
        corr = np.corrcoef(z.T)
        s = exposure * np.sqrt(var_a[t + 1])
        loss.append(-float(np.sum(exposure * (np.exp(r[t + 1]) - 1))))
        sigma.append(float(np.sqrt(s @ corr @ s)))
        gross.append(float(np.abs(exposure).sum()))
    loss_a, sigma_a, gross_a = map(np.array, (loss, sigma, gross))
    budget = int(rate * loss_a.size)

    def cost(base: np.ndarray) -> float:
        # the smallest k with #{loss > k base} <= budget is the (budget + 1)-th largest ratio
        k = max(0.0, np.sort(loss_a / base)[::-1][budget])
        return k * float(base.mean())

    return cost(sigma_a) / cost(gross_a)


def test_volatility_shape_bound_against_a_plain_loop(tmp_path):
    inputs = write_inputs(tmp_path)
    got = volatility_shapes(inputs, estimators=[("close", 0.97)], breach_rates=[0.01])
    closes = pd.read_csv(inputs.prices, parse_dates=["date"])
    positions = pd.read_csv(inputs.positions)
    ratios = []
    for name in dict.fromkeys(positions["netting_set"]):
        rows = positions[positions["netting_set"] == name]
        quantity = np.array([rows.loc[rows["instrument_id"] == f"{c}-PERP", "quantity"].sum()
                             for c in COINS])
        ratios.append(_loop_ratio(closes, quantity, 0.97, 0.01))
    assert got["median_ratio"].iat[0] == pytest.approx(float(np.median(ratios)), rel=1e-9)
