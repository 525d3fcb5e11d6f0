"""Each stage of the waterfall against cases worked out on paper.

The venue (``conftest.HAND_POSITIONS``): X at 100; A long 10 PERP with 150 of collateral, B
short 2 PERP (100), C short 1 PERP (1,000), G short 3 of the future on X (1,000), D flat
(500). X falls 50% instantly: A's P&L is -500, its equity -350, so it is closed in full and
leaves a bankruptcy loss of 350 (no slippage, no penalty). Its position's bankruptcy price is
100 - 150 / 10 = 85.

ADL (fund 0): the loss is 35 per bankrupt unit. B earns 2 x 50 = 100 on 100 of notional at
the moved price, equity 200, leverage 100 / 200 = 0.5: score (100 / 100) x 0.5 = 0.5; C earns
50 on 50, equity 1,050: score 50 / 1,050 = 0.0476. B first: min(100, 2 x 35) = 70 (its whole
position); C: min(50, 1 x 35) = 35. ADL 105. Socialised: the profit left, B 30 + C 15 + G 150 =
195 < 245 left, so all of it; uncovered 50.
"""

import dataclasses

import numpy as np
import pandas as pd
import pytest
from scipy.optimize import brentq
from waterfall_venues import CONFIG, write_moves, write_venue

from riskmodel.config import WaterfallConfig
from riskmodel.waterfall.run import run_waterfall

NO_SLIPPAGE = WaterfallConfig(slippage_coefficient=0.0)


@pytest.fixture(scope="module")
def crash(hand_run, tmp_path_factory):
    return write_moves(tmp_path_factory.mktemp("moves") / "moves.csv",
                       {"crash": {"X": -0.5}})


def _row(result, scenario="crash"):
    return result.waterfall.set_index("scenario").loc[scenario]


def test_crash_without_a_fund(hand_run, crash):
    r = run_waterfall(hand_run, scenarios_file=crash, waterfall=NO_SLIPPAGE)
    row = _row(r)
    assert (row["liquidated"], row["defaults"]) == (1, 1)
    assert row["bankruptcy_loss"] == pytest.approx(350.0, abs=1e-9)
    assert row["collateral_used"] == pytest.approx(150.0)
    assert row["fund_used"] == 0.0
    assert row["adl_amount"] == pytest.approx(105.0, abs=1e-9)
    assert row["adl_count"] == 2
    assert row["socialised"] == pytest.approx(195.0, abs=1e-9)
    assert row["uncovered"] == pytest.approx(50.0, abs=1e-9)
    adl = r.adl.set_index("account_id")
    assert list(adl.index) == ["B", "C"]
    np.testing.assert_allclose(adl["loss_taken"], [70.0, 35.0], atol=1e-9)
    np.testing.assert_allclose(adl["amount_reduced"], [-2.0, -1.0], atol=1e-12)
    np.testing.assert_allclose(adl["bankruptcy_price"], [85.0, 85.0], atol=1e-9)
    np.testing.assert_allclose(adl["score"], [0.5, 50 / 1050], rtol=1e-12)
    assert "D" not in set(r.adl["account_id"])


def test_the_fund_pays_first(hand_run, crash):
    """Fund 100: 250 left, 25 per unit: B 2 x 25 = 50, C 25; the 175 left is socialised pro
    rata to the profit left (B 50, C 25, G 150 of 225), nothing uncovered."""
    r = run_waterfall(hand_run, scenarios_file=crash,
                      waterfall=dataclasses.replace(NO_SLIPPAGE, insurance_fund=100.0))
    row = _row(r)
    assert (row["fund_used"], row["fund_left"]) == (100.0, 0.0)
    assert row["adl_amount"] == pytest.approx(75.0, abs=1e-9)
    np.testing.assert_allclose(r.adl["loss_taken"], [50.0, 25.0], atol=1e-9)
    assert row["socialised"] == pytest.approx(175.0, abs=1e-9)
    assert row["uncovered"] == pytest.approx(0.0, abs=1e-9)
    big = run_waterfall(hand_run, scenarios_file=crash,
                        waterfall=dataclasses.replace(NO_SLIPPAGE, insurance_fund=1000.0))
    row = _row(big)
    assert (row["fund_used"], row["fund_left"], row["adl_amount"]) == (350.0, 650.0, 0.0)
    assert big.adl.empty


def test_no_socialisation_leaves_it_uncovered(hand_run, crash):
    r = run_waterfall(hand_run, scenarios_file=crash,
                      waterfall=dataclasses.replace(NO_SLIPPAGE, socialisation="none"))
    row = _row(r)
    assert row["socialised"] == 0.0
    assert row["uncovered"] == pytest.approx(245.0, abs=1e-9)


def test_square_root_slippage_by_hand(hand_run, crash):
    """A sells 10 at 50: 500 of notional, cost 500 x sigma x sqrt(500 / ADV) with ADV 1e5
    ([liquidation.impact_adv]) and sigma the run's one-day volatility of X; the bankruptcy
    loss grows by it, and so does the cover view's loss of A's member."""
    sigma = float(pd.read_parquet(hand_run / "state" / "factors.parquet")
                  .set_index("factor").loc["X", "sigma_rel"])
    cost = 500.0 * sigma * np.sqrt(500.0 / 1e5)
    r = run_waterfall(hand_run, scenarios_file=crash, waterfall=WaterfallConfig())
    row = _row(r)
    assert row["slippage"] == pytest.approx(cost, rel=1e-12)
    assert row["bankruptcy_loss"] == pytest.approx(350.0 + cost, rel=1e-12)
    margins = pd.read_parquet(hand_run / "margins.parquet").set_index("account_id")
    held = min(margins.loc["A", "initial_margin"], 150.0)
    assert row["cover_1"] == pytest.approx(500.0 + cost - held, rel=1e-12)


def test_penalty_is_paid_from_what_is_left(tmp_path):
    """X falls 14.5%: A's equity is 150 - 145 = 5, below its maintenance margin. Closed in
    full at 85.5, the 1% penalty is 8.55, of which only the 5 left is collected (half of it
    to the fund); nothing is bankrupt."""
    from waterfall_venues import HAND_ACCOUNTS, HAND_POSITIONS

    config = CONFIG.replace("[waterfall]", "[liquidation.penalty_rates]\ndefault = 0.01\n"
                            "[waterfall]\ncloseout = \"full\"\npenalty_to_fund = 0.5")
    run = write_venue(tmp_path / "venue", HAND_POSITIONS, HAND_ACCOUNTS, config=config)
    moves = write_moves(tmp_path / "moves.csv", {"dip": {"X": -0.145}})
    row = _row(run_waterfall(run, scenarios_file=moves), "dip")
    assert (row["liquidated"], row["closed_in_full"], row["defaults"]) == (1, 1, 0)
    assert row["notional_closed"] == pytest.approx(855.0)
    assert row["penalties"] == pytest.approx(5.0, abs=1e-9)
    assert row["penalties_to_fund"] == pytest.approx(2.5, abs=1e-9)
    assert row["bankruptcy_loss"] == 0.0


def test_the_ranking_rule_decides_who_is_deleveraged_first(tmp_path):
    """B short 6 (300 of collateral), C short 8 (5,000): at -50% B earns 300 on 300 of
    notional with equity 600 (score 0.5), C 400 on 400 with equity 5,400 (score 0.074).
    35 per unit: profit x leverage takes B's 6 units (210), then 4 of C's (140); by profit
    alone, C's 8 (280) first, then 2 of B's (70)."""
    run = write_venue(tmp_path / "venue", [("A", "PERP", 10.0), ("B", "PERP", -6.0),
                                           ("C", "PERP", -8.0)],
                      [("A", 150.0), ("B", 300.0), ("C", 5000.0)])
    moves = write_moves(tmp_path / "moves.csv", {"crash": {"X": -0.5}})
    by_leverage = run_waterfall(run, scenarios_file=moves, waterfall=NO_SLIPPAGE).adl
    assert list(by_leverage["account_id"]) == ["B", "C"]
    np.testing.assert_allclose(by_leverage["loss_taken"], [210.0, 140.0], atol=1e-9)
    np.testing.assert_allclose(by_leverage["amount_reduced"], [-6.0, -4.0], atol=1e-12)
    by_profit = run_waterfall(run, scenarios_file=moves, waterfall=dataclasses.replace(
        NO_SLIPPAGE, adl_ranking="profit")).adl
    assert list(by_profit["account_id"]) == ["C", "B"]
    np.testing.assert_allclose(by_profit["loss_taken"], [280.0, 70.0], atol=1e-9)


def test_cascade_reaches_the_hand_solved_fixed_point(hand_run, crash):
    """A's close sells 10 X at the final price P = 100 (1 + x): the impact model moves X to
    x = -0.5 - sigma sqrt(10 P / ADV) (Y = 1, ADV 1e5); solved here by Brent's method. The
    shorts gain from the extra fall, so no other set is liquidated."""
    sigma = float(pd.read_parquet(hand_run / "state" / "factors.parquet")
                  .set_index("factor").loc["X", "sigma_rel"])
    x = brentq(lambda v: v + 0.5 + sigma * np.sqrt(10 * 100 * (1 + v) / 1e5), -0.9, -0.4,
               xtol=1e-15)
    r = run_waterfall(hand_run, scenarios_file=crash, waterfall=NO_SLIPPAGE, cascade=True)
    row = _row(r)
    assert row["rounds"] >= 1
    assert row["max_impact"] == pytest.approx(-0.5 - x, abs=1e-10)
    assert row["liquidated"] == 1
    assert row["bankruptcy_loss"] == pytest.approx(350.0, abs=1e-9)  # closed at -50%
    now = _row(r, "now")
    assert (now["rounds"], now["max_impact"]) == (0, 0.0)
