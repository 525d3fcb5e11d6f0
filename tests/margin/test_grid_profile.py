"""The shipped grid profile (``riskmodel/data/profiles/derive_like.toml``): a short straddle and
a covered call margined by the engine against the same margins worked by hand.

The hand calculation below restates the profile from its documentation (README, "Venue rules"),
with its own Black-76 (``math.erf``): 30 days to expiry (so the vol shocks' time factor is 1:
vol up 0.6 x 1.5 = 0.9, down 0.6 x 0.725 = 0.435), zero rates (no discounting; a short expiry's
static discount is then min(1, 1.04 e^{0.08 tau}) = 1), spot 100. The scan: -16% .. +16% in
steps of 4% with vol up and down, the extended moves -66% .. +500% with vol up counted at
0.16 / (5 |move|), the two skew rotations; the basis contingency (+-4.5%, x (0.5 + 2 tau)).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from grid_inputs import grid_market, instrument_frame

from riskmodel.config import config_from_mapping
from riskmodel.engine import margin_book
from riskmodel.portfolio.netting import net_positions

AS_OF = pd.Timestamp("2024-01-02T08:00:00")
EXPIRY = (AS_OF + pd.Timedelta(days=30)).tz_localize("UTC")
TAU = 30 / 365
VOL, SPOT = 0.6, 100.0


def _b76(f: float, k: float, vol: float, call: bool) -> float:
    sd = vol * math.sqrt(TAU)
    d1 = (math.log(f / k) + 0.5 * sd * sd) / sd
    n = lambda x: 0.5 * (1.0 + math.erf(x / math.sqrt(2.0)))  # noqa: E731
    c = f * n(d1) - k * n(d1 - sd)
    return c if call else c - f + k


def _skew(k: float, linear: bool) -> float:
    root = math.sqrt(TAU)
    cap = -0.05 * root + 0.15
    k_star = max(0.01, root * 4.0 * (0.6 + root * -0.1))
    k = k if linear else abs(k)
    c = min(cap, k * cap / k_star) if k >= 0 else max(-cap, k * cap / k_star)
    return max(0.0, 1.0 + c)


def _scan() -> list[tuple[str, float, str, float]]:
    rows = [(f"{100 * m:+.4g}% vol {v}", m, v, 1.0)
            for m in (0.16 * i / 4 for i in range(4, -5, -1)) for v in ("up", "down")]
    rows += [(f"{100 * m:+.4g}% vol up x{min(1, 0.16 / (5 * abs(m))):.4g}", m, "up",
              min(1.0, 0.16 / (5 * abs(m)))) for m in (-0.66, -0.33, 0.5, 1.0, 2.0, 3.0, 5.0)]
    return rows + [("skew linear", 0.0, "linear", 1.0), ("skew abs", 0.0, "abs", 1.0)]


def _hand(options: list[tuple[float, bool, float]], spot_units: float):
    """(W, label) of a book of ``(strike, is_call, quantity)`` options of one expiry and
    ``spot_units`` of the underlying."""
    def value(move: float, vol_of) -> float:
        return sum(q * _b76(SPOT * (1 + move), k, vol_of(k), c) for k, c, q in options)

    today = value(0.0, lambda k: VOL)
    long_disc = 0.95 * math.exp(-TAU * 0.08)
    results = []
    for label, move, shock, damp in _scan():
        vol_of = {"up": lambda k: max(0.45, VOL * 1.5), "down": lambda k: VOL * 0.725,
                  "linear": lambda k: VOL * _skew(math.log(k / SPOT), True),
                  "abs": lambda k: VOL * _skew(math.log(k / SPOT), False)}[shock]
        g = value(move, vol_of)
        e = (g * (long_disc if g >= 0 else 1.0) - today) * damp
        if shock in ("linear", "abs"):
            e = -abs(e)
        results.append((spot_units * SPOT * move * damp + e, label))
    basis = min(value(0.045, lambda k: VOL) - today, value(-0.045, lambda k: VOL) - today, 0.0)
    basis *= 0.5 + 2.0 * TAU
    worst = min(results)
    return (-worst[0], worst[1]) if worst[0] < basis else (-basis, "basis")


@pytest.fixture(scope="module")
def margins():
    config = config_from_mapping({
        "method": "grid", "horizon": 1, "lookback": 10, "min_history": 5,
        "volatility": {"model": "ewma"}, "grid": {"profile": "derive_like"},
        "margin": {"maintenance_rates": {"default": 1e-300},
                   "initial_floor_rates": {"default": 0.0}}})
    marks = {"X": SPOT}
    rows = [("X", "spot", "X", 1.0, np.nan, pd.NaT, "", np.nan, 0.0, "")]
    rows += [(f"{t}{k}", "option", "X", 1.0, float(k), EXPIRY, "call" if t == "C" else "put",
              VOL, 0.0, "black_scholes") for t, k in (("C", 100), ("P", 100), ("C", 110))]
    market = grid_market(marks, instrument_frame(rows, marks), config, AS_OF)
    positions = pd.DataFrame({
        "account_id": ["straddle", "straddle", "covered", "covered"],
        "netting_set": "default", "instrument_id": ["C100", "P100", "X", "C110"],
        "quantity": [-1.0, -1.0, 1.0, -1.0]})
    book = net_positions(positions, market.axis)
    result = margin_book(market, book, config, collateral=np.full(book.n_sets, 1e4))
    return result.margins.set_index("account_id")


def test_short_straddle(margins):
    worst, label = _hand([(100.0, True, -1.0), (100.0, False, -1.0)], 0.0)
    row = margins.loc["straddle"]
    # two naked shorts at strike 100: 2 x 100 x 0.003 (maintenance) and x 0.002 (initial)
    assert row["initial_margin"] == pytest.approx(worst + 0.6 + 0.4, rel=1e-10)
    assert row["maintenance_margin"] == pytest.approx(0.8 * worst + 0.6, rel=1e-10)
    assert row["var"] == pytest.approx(worst, rel=1e-10)
    assert row["grid_scenario"] == label
    assert row["grid_option_mm"] == pytest.approx(0.6) and row["grid_option_im"] == \
        pytest.approx(0.4)


def test_covered_call(margins):
    worst, label = _hand([(110.0, True, -1.0)], 1.0)
    row = margins.loc["covered"]
    assert row["initial_margin"] == pytest.approx(worst + 0.3 + 0.2, rel=1e-10)
    assert row["maintenance_margin"] == pytest.approx(0.8 * worst + 0.3, rel=1e-10)
    assert row["grid_scenario"] == label
    # the worst is the fall, cushioned by the call's premium: less than the coin's 16% alone
    assert label.startswith("-16%") and worst < 16.0
