"""The realisable flat rate: hand-worked schedules, a brute-force oracle, the scaled equivalent,
the summary's blocks and the loss history of a book revalued by hand."""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pandas as pd
import pytest

from riskmodel.backtest.benchmarks import loss_history, realisable_columns
from riskmodel.backtest.statistics import (
    realisable_equivalent,
    realisable_flat_rates,
    summarise,
)
from riskmodel.config import RunConfig
from riskmodel.marketdata.returns import MarketData
from riskmodel.portfolio.netting import net_positions


def oracle_rates(known, loss, notional, dates, a, lookback, every, need):
    """Plain-Python restatement of the definition: exact fractions, no numpy quantile."""
    obs = [(k, Fraction(x) / Fraction(n)) for k, x, n in zip(known, loss, notional) if n > 0]
    out, held = [], (Fraction(0), False)
    for i, d in enumerate(dates):
        if i % every == 0:
            window = [q for k, q in obs if k <= d][-lookback:]
            if len(window) >= need:
                ordered = sorted(window)
                # VaR: the smallest l with #{q <= l} / n >= a
                l_var = next(v for v in ordered
                             if Fraction(sum(q <= v for q in ordered), len(ordered)) >= a)
                held = (max(Fraction(0), l_var), True)
            else:
                held = (Fraction(0), False)
        out.append(held)
    return out


def test_hand_worked_schedule():
    # observations q = 1..6 known at 2..7 (h = 1 day); lookback 3; median (a = 0.5); re-set on
    # every second date. Date 4: known q = 1, 2, 3 -> sorted, the smallest l with
    # #{q <= l} / 3 >= 0.5 is 2. Date 5: held. Date 6: q = 3, 4, 5 -> 4. Date 7: held.
    known = np.array([2, 3, 4, 5, 6, 7])
    loss = np.array([1.0, 2.0, 3.0, 4.0, 5.0, 6.0])
    r = realisable_flat_rates(known, loss, np.ones(6), np.array([4, 5, 6, 7]), confidence=0.5,
                              lookback=3, reset_every=2)
    assert r.rate.tolist() == [2.0, 2.0, 4.0, 4.0]
    assert r.warm.all() and r.reset.tolist() == [True, False, True, False]
    assert r.n_window.tolist() == [3, 3, 3, 3]


def test_warm_up_needs_one_observation_beyond_the_quantile():
    # at a = 0.99 a rate needs ceil(1 / 0.01) = 100 known observations
    known = np.arange(150)
    loss = np.linspace(0.0, 1.0, 150)
    r = realisable_flat_rates(known, loss, np.ones(150), np.array([98, 99, 120]),
                              confidence=0.99, lookback=1000, reset_every=1)
    assert r.warm.tolist() == [False, True, True]  # 99 then 100 observations known at 98, 99
    assert r.rate[0] == 0.0
    # 100 observations 0 .. 99/149: the 99th smallest is 98/149
    assert r.rate[1] == pytest.approx(98 / 149)


def test_against_brute_force_oracle():
    rng = np.random.default_rng(7)
    n = 300
    known = np.sort(rng.integers(0, 400, n))
    loss = np.round(rng.standard_t(3, n) * 10, 3)
    notional = np.where(rng.random(n) < 0.05, 0.0, np.round(rng.uniform(50, 150, n), 2))
    dates = np.arange(100, 420, 3)
    for a, lookback, every in [(0.99, 250, 7), (0.95, 60, 1), (0.9, 1000, 21)]:
        need = math.ceil(1 / (1 - a) - 1e-9)
        got = realisable_flat_rates(known, loss, notional, dates, confidence=a,
                                    lookback=lookback, reset_every=every)
        want = oracle_rates(known, loss, notional, dates, Fraction(str(a)), lookback, every,
                            need)
        assert got.warm.tolist() == [w for _, w in want]
        assert got.rate == pytest.approx([float(r) for r, _ in want], rel=1e-12)


def test_equivalent_scales_the_schedule_by_hand():
    # L / margin = 2.5, 0.5, 1.5; one breach allowed: k = 1.5 (a tie does not breach)
    eq = realisable_equivalent([5.0, 1.0, 3.0], [2.0, 2.0, 2.0], 1)
    assert eq["rate"] == 1.5 and eq["breaches"] == 1 and eq["mean_margin"] == 3.0


def test_refusals():
    with pytest.raises(ValueError, match="sorted"):
        realisable_flat_rates([2, 1], [1.0, 1.0], [1.0, 1.0], [3], confidence=0.9,
                              lookback=5)
    with pytest.raises(ValueError, match="lookback"):
        realisable_flat_rates([1], [1.0], [1.0], [3], confidence=0.9, lookback=0)
    with pytest.raises(ValueError, match="notional"):
        realisable_flat_rates([1], [1.0], [-1.0], [3], confidence=0.9, lookback=2)


def _table(realisable: bool) -> pd.DataFrame:
    dates = pd.date_range("2024-01-01", periods=4)
    frame = pd.DataFrame({
        "date": list(dates) * 2, "account_id": "a",
        "netting_set": ["x"] * 4 + ["y"] * 4,
        "var": 1.0, "es": 1.5, "initial_margin": [2.0, 2.0, 2.0, 2.0, 4.0, 4.0, 4.0, 4.0],
        "flat_rate_margin": 10.0,
        "realized_loss": [3.0, 0.0, 1.0, 0.0, 5.0, 0.0, 0.0, 9.0],
        "gross_notional": 100.0})
    if realisable:
        frame["realisable_flat_rate"] = [0.02, 0.02, 0.05, 0.05, 0.04, 0.04, 0.04, 0.04]
        frame["realisable_flat_rate_margin"] = frame["realisable_flat_rate"] * 100.0
    return frame


def test_summary_blocks_by_hand():
    s = summarise(_table(True), 0.99, n_sim=0)
    x = {p["netting_set"]: p for p in s["portfolios"]}["x"]
    # x: margin 2 each day, one breach (3 > 2); the schedule 2, 2, 5, 5 breaches once (3 > 2)
    assert x["realisable_flat_rate"] == {"breaches": 1, "breach_rate": 0.25, "mean_margin": 3.5,
                                         "mean_rate": 0.035}
    # L / schedule = 1.5, 0, 0.2, 0: one breach allowed -> k = 0.2, mean 0.2 x 3.5 = 0.7
    eq = x["realisable_flat_rate_equivalent"]
    assert eq["scale"] == pytest.approx(0.2) and eq["breaches"] == 1
    assert eq["mean_margin"] == pytest.approx(0.7)
    assert x["cost_ratios"]["realisable_flat_rate"] == pytest.approx(2.0 / 3.5)
    assert x["cost_ratios"]["flat_rate"] == pytest.approx(0.2)
    pooled = s["pooled"]
    # pooled schedule: x 2, 2, 5, 5 and y 4 x 4: mean 3.75; breaches 3 > 2, 5 > 4, 9 > 4
    assert pooled["realisable_flat_rate"]["breaches"] == 3
    assert pooled["realisable_flat_rate"]["mean_margin"] == pytest.approx(3.75)
    ratios = [p["cost_ratios"]["realisable_flat_rate"] for p in s["portfolios"]]
    assert pooled["median_cost_ratios"]["realisable_flat_rate"] == pytest.approx(
        float(np.median(ratios)))
    assert pooled["coverage_passes"]["of"] == 2


def test_summary_without_the_columns_has_no_realisable_block():
    s = summarise(_table(False), 0.99, n_sim=0)
    assert "realisable_flat_rate" not in s["pooled"]
    assert set(s["pooled"]["cost_ratios"]) == {"flat_rate", "flat_rate_equivalent"}


def test_negative_schedule_refused():
    frame = _table(True)
    frame.loc[3, "realisable_flat_rate_margin"] = -1.0
    with pytest.raises(ValueError, match="realisable_flat_rate_margin"):
        summarise(frame, 0.99, n_sim=0)


class _Part:
    def __init__(self, market, book, used, rows):
        self.market, self.book, self.used, self.rows, self.roll = market, book, used, rows, None


def _one_perpetual():
    dates = pd.date_range("2024-01-01", periods=8)
    price = pd.DataFrame({"X": [100.0, 110.0, 99.0, 90.0, 120.0, 60.0, 54.0, 70.0]},
                         index=dates)
    market = MarketData(price, np.log(price).diff().iloc[1:], dates[-1], price.iloc[-1], {},
                        {"X": "log"})
    used = pd.DataFrame({"instrument_id": ["P"], "kind": ["perpetual"], "underlying": ["X"],
                         "multiplier": [2.0], "factor": ["X"]}).set_index("instrument_id",
                                                                          drop=False)
    book = net_positions(pd.DataFrame({"account_id": ["a", "a"], "netting_set": ["long", "short"],
                                       "instrument_id": ["P", "P"], "quantity": [3.0, -1.0]}),
                         used.index)
    return market, used, book


def test_loss_history_by_hand():
    market, used, book = _one_perpetual()
    config = RunConfig(horizon=1, lookback=3, min_history=2)
    history = loss_history(_Part(market, book, used, np.array([5, 6])), config, 3)
    long = history[history["netting_set"] == "long"]
    # lookback 3 + h 1 - 1 = 3 rows before row 5: s = 2, 3, 4; loss = -3 x 2 x (P[s+1] - P[s])
    assert long["date"].tolist() == list(market.prices.index[2:5])
    assert long["realized_loss"].tolist() == pytest.approx([54.0, -180.0, 360.0])
    assert long["gross_notional"].tolist() == pytest.approx([6 * 99.0, 6 * 90.0, 6 * 120.0])
    assert long["known_at"].tolist() == list(market.prices.index[3:6])
    short = history[history["netting_set"] == "short"]
    assert short["realized_loss"].tolist() == pytest.approx([-18.0, 60.0, -120.0])
    assert short["gross_notional"].tolist() == pytest.approx([2 * 99.0, 2 * 90.0, 2 * 120.0])


def test_realisable_columns_use_history_then_the_rows_as_they_become_known():
    market, used, book = _one_perpetual()
    config = RunConfig(horizon=1, lookback=3, min_history=2, confidence=0.5)
    dates = market.prices.index
    p = market.prices["X"].to_numpy()
    # backtest rows 5 and 6 of the long set: loss -6 (P[t+1] - P[t]), notional 6 P[t]
    frame = pd.DataFrame({"date": dates[[5, 6]], "account_id": "a", "netting_set": "long",
                          "var": 1.0, "es": 1.0, "initial_margin": 1.0,
                          "flat_rate_margin": [36.0, 39.6],
                          "realized_loss": [-6 * (p[6] - p[5]), -6 * (p[7] - p[6])],
                          "gross_notional": [6 * p[5], 6 * p[6]]})
    long_book = book.subset(np.array([0]))[0]
    out, facts = realisable_columns(frame, [_Part(market, long_book, used, np.array([5, 6]))],
                                    {("a", "long"): 1}, config, reset_every=1)
    # per unit of notional q_s = 1 - P[s+1] / P[s]. At row 5 the known ones are s = 2, 3, 4:
    # 1/11, -1/3, 1/2 -> the median (2 of 3, inverted cdf) is 1/11; at row 6 s = 3, 4, 5
    # (s = 5's loss is known at row 6): -1/3, 1/2, 1/10 -> 1/10
    assert out["realisable_flat_rate"].tolist() == pytest.approx([1 / 11, 1 / 10])
    assert out["realisable_flat_rate_margin"].tolist() == pytest.approx(
        [6 * p[5] / 11, 6 * p[6] / 10])
    assert facts["warmup_rows"] == 0 and facts["history_rows"] == 3
