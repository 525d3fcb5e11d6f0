"""Built-in rolling straddles: the engine's margin of the two options, their realised loss by
hand, and which underlyings get one.

References from outside the replay: direct ``eod`` runs on an instruments file holding the two
options as of the date (the engine the replay must reproduce), a Black-Scholes formula written
here with ``scipy.stats.norm``, and the price file itself.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.stats import norm

from riskmodel.backtest.portfolios import (
    IV_INDEX_POINTS,
    STRADDLE_DAYS,
    RollingStraddle,
    straddle_underlyings,
)
from riskmodel.backtest.run import (
    BacktestInputs,
    BacktestWindow,
    load_inputs,
    prepare_backtest,
    run_backtest,
)
from riskmodel.batch.eod import EodInputs, run_eod
from riskmodel.config import RunConfig, config_from_mapping
from riskmodel.demo import INSTRUMENTS, demo_prices
from riskmodel.errors import InputDataError
from riskmodel.volatility.params import FactorParams, ParameterSet

# The demo's prices: S&P 500, NASDAQ, WTI (absolute returns) and VIX (from 2014-01-03).
RAW = {
    "returns": {"assets": {"WTI": "absolute"}},
    "horizons": {"kind": {"perpetual": 1}},
    "addons": {"spreads": {"default": 0.0002}},
    "implied_vol": {"factors": {"SPX": "VIX"}},
}
EWMA = {"volatility": {"model": "ewma", "garch_fit_window": 100_000}}


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("straddles")
    files = {"prices": folder / "prices.csv", "instruments": folder / "instruments.csv"}
    demo_prices().to_csv(files["prices"])
    INSTRUMENTS.to_csv(files["instruments"], index=False)
    return files


@pytest.fixture(scope="module")
def closes(demo) -> pd.DataFrame:
    """The price file on its own calendar, closed dates carried over (the calendar rule)."""
    return pd.read_csv(demo["prices"], index_col="date", parse_dates=True).ffill()


def _config(raw: dict | None = None, **overrides: object) -> RunConfig:
    return config_from_mapping({**RAW, **(raw or {})}, {"lookback": 250, **overrides})


def _straddle_rows(frame: pd.DataFrame) -> pd.DataFrame:
    return frame[frame["netting_set"] == "straddle_SPX"].set_index("date")


def _black_scholes_straddle(s: float, k: float, tau: float, vol: float) -> float:
    """Call + put, rate and carry 0; at or after expiry the intrinsic value."""
    if tau <= 0:
        return abs(s - k)
    sd = vol * np.sqrt(tau)
    d1 = (np.log(s / k) + 0.5 * sd * sd) / sd
    d2 = d1 - sd
    call = s * norm.cdf(d1) - k * norm.cdf(d2)
    put = k * norm.cdf(-d2) - s * norm.cdf(-d1)
    return float(call + put)


# --------------------------------------------------------------------------------------------
# (a) The margin at t is an eod run's on a book holding the two options as of t
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("method, raw, extra", [
    ("hs", {}, {}),
    # the floor's 600 returns are more than VIX has before 2016-03: shortened in both
    ("hs", {"anti_procyclicality": {"tools": ["floor"], "floor_lookback": 600}}, {}),
    ("fhs", EWMA, {}),
    ("mc", EWMA, {"scenarios": 1000, "seed": 5}),
])
def test_straddle_margin_equals_an_eod_run_on_the_two_options(demo, closes, tmp_path, method,
                                                              raw, extra):
    config = _config(raw, method=method, **extra)
    start = pd.Timestamp("2016-03-01")
    result = run_backtest(BacktestInputs(demo["prices"], demo["instruments"]), config,
                          BacktestWindow("2016-03-01", "2016-03-09"), n_sim=0)
    rows = _straddle_rows(result.backtest)
    assert rows.index[0] == start and len(rows) == 7
    assert result.replay is not None and result.replay.horizons[("builtin", "straddle_SPX")] == 2
    quantity = 1.0 / closes.loc[start, "SPX"]  # unit notional at the first backtest date
    for date in (rows.index[0], rows.index[-1]):
        spx, vix = closes.loc[date, "SPX"], closes.loc[date, "VIX"]
        expiry = (date + pd.Timedelta(days=STRADDLE_DAYS)).strftime("%Y-%m-%dT%H:%M:%SZ")
        folder = tmp_path / f"{date.date()}"
        folder.mkdir()
        pd.DataFrame({"instrument_id": ["C", "P"], "kind": "option", "underlying": "SPX",
                      "multiplier": 1.0, "strike": spx, "expiry": expiry,
                      "option_type": ["call", "put"], "implied_vol": vix / 100.0}
                     ).to_csv(folder / "instruments.csv", index=False)
        pd.DataFrame({"account_id": "builtin", "netting_set": "straddle_SPX",
                      "instrument_id": ["C", "P"], "quantity": quantity}
                     ).to_csv(folder / "positions.csv", index=False)
        pd.DataFrame({"account_id": ["builtin"], "netting_set": ["straddle_SPX"],
                      "collateral": [1.0]}).to_csv(folder / "accounts.csv", index=False)
        eod = run_eod(EodInputs(demo["prices"], folder / "instruments.csv",
                                folder / "positions.csv", folder / "accounts.csv"),
                      config, as_of=date.isoformat())
        assert len(eod.margins) == 1
        expected, got = eod.margins.iloc[0], rows.loc[date]
        assert set(eod.factors["asset"]) == {"SPX", "VIX"}  # VIX is a scenario factor
        for col in ("var", "es", "initial_margin", "flat_rate_margin", "gross_notional"):
            assert got[col] == pytest.approx(expected[col], rel=1e-9, abs=0), f"{col} {date}"
        assert got["var"] > 0  # a long straddle loses when spot stays and the VIX falls


def test_linear_builtins_are_unchanged_by_the_straddle(demo):
    window = BacktestWindow("2016-03-01", "2016-03-31", step=2)
    inputs = BacktestInputs(demo["prices"], demo["instruments"])
    with_straddle = run_backtest(inputs, _config(EWMA, method="fhs"), window, n_sim=50)
    without = run_backtest(inputs, _config({**EWMA, "implied_vol": {}}, method="fhs"), window,
                           n_sim=50)
    frame = with_straddle.backtest
    assert set(frame["netting_set"]) - set(without.backtest["netting_set"]) == {"straddle_SPX"}
    pd.testing.assert_frame_equal(
        frame[frame["netting_set"] != "straddle_SPX"].reset_index(drop=True),
        without.backtest, check_exact=True)
    linear = [p for p in with_straddle.summary["portfolios"] if p["netting_set"] != "straddle_SPX"]
    assert linear == without.summary["portfolios"]
    assert with_straddle.manifest["counts"]["netting_sets"] == 9


# --------------------------------------------------------------------------------------------
# (b) The realised loss is the full revaluation of the same two options at t + h
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("horizon", [1, 2])
def test_straddle_realised_loss_by_hand(demo, closes, horizon):
    config = _config({"horizons": {"kind": {"option": horizon}}}, method="hs")
    result = run_backtest(BacktestInputs(demo["prices"], demo["instruments"]), config,
                          BacktestWindow("2017-06-01", "2017-06-20"), n_sim=0)
    rows = _straddle_rows(result.backtest)
    calendar = list(closes.index)
    quantity = 1.0 / closes.loc[rows.index[0], "SPX"]
    elapsed_days = set()
    for date, row in rows.iterrows():
        k = calendar.index(date)
        later = calendar[k + horizon]
        s0, v0 = closes.loc[date, ["SPX", "VIX"]] / [1.0, 100.0]
        s1, v1 = closes.loc[later, ["SPX", "VIX"]] / [1.0, 100.0]
        days = (later - date).days  # calendar days: a weekend decays three of them
        elapsed_days.add(days)
        value0 = _black_scholes_straddle(s0, s0, STRADDLE_DAYS / 365.0, v0)
        value1 = _black_scholes_straddle(s1, s0, (STRADDLE_DAYS - days) / 365.0, v1)
        expected = -quantity * (value1 - value0)  # each leg holds `quantity`
        assert row["realized_loss"] == pytest.approx(expected, rel=1e-9, abs=1e-14), date
        assert row["exception"] == (row["realized_loss"] > row["var"])
    assert max(elapsed_days) > horizon  # a window over a weekend is in the sample


def test_rolling_terms_and_expiry_inside_the_horizon(closes):
    roll = RollingStraddle("SPX", "VIX", quantity=2.0, days=1)
    used = roll.instruments()
    t = pd.Timestamp("2017-06-02")  # a Friday: Monday is past the one-day expiry
    terms = roll.terms_at(used, closes.loc[t], t)
    assert list(terms["strike"]) == [closes.loc[t, "SPX"]] * 2
    assert list(terms["implied_vol"]) == [closes.loc[t, "VIX"] / IV_INDEX_POINTS] * 2
    assert (terms["expiry"] == pd.Timestamp("2017-06-03", tz="UTC")).all()
    assert list(terms["option_type"]) == ["call", "put"]
    assert used["strike"].isna().all()  # the template is left as it was
    with pytest.raises(InputDataError, match="positive"):
        roll.terms_at(used, {"SPX": 2400.0, "VIX": np.nan}, t)


# --------------------------------------------------------------------------------------------
# (c) Straddles only where options can be priced
# --------------------------------------------------------------------------------------------


def test_straddles_only_where_an_implied_vol_index_prices_the_options(demo, closes):
    inputs = BacktestInputs(demo["prices"], demo["instruments"])
    window = BacktestWindow("2016-03-01", "2016-03-09")

    def prepared(raw: dict):
        config = _config(raw, method="hs")
        return prepare_backtest(load_inputs(inputs, config), config, window)

    # the demo's mapping: SPX only; NASDAQ to a column the file lacks, WTI with absolute returns
    mixed = prepared({"implied_vol": {"factors": {"SPX": "VIX", "NASDAQ": "VXN",
                                                  "WTI": "VIX"}}})
    assert [p.book.sets["netting_set"].tolist() for p in mixed.straddles] == [["straddle_SPX"]]
    assert sorted(mixed.straddles[0].market.prices.columns) == ["SPX", "VIX"]
    assert any("no straddle_NASDAQ" in n and "VXN" in n for n in mixed.notes)
    assert any("no straddle_WTI" in n and "absolute" in n for n in mixed.notes)
    assert mixed.n_sets == 9
    # no [implied_vol] factors: no straddle, no note
    plain = prepared({"implied_vol": {}})
    assert plain.straddles == () and not [n for n in plain.notes if "straddle_" in n]
    # an implied-vol index is needed at every date: before its history covers the lookback
    # (VIX from 2014-01-03) the straddle is skipped, with a note; a whole window before: left out
    late = prepare_backtest(load_inputs(inputs, _config(method="hs")), _config(method="hs"),
                            BacktestWindow("2014-06-02", "2015-02-27"))
    calendar = closes.index
    first_vix = calendar.get_loc(closes["VIX"].first_valid_index())
    start = calendar[first_vix + 250]  # the date of the 250th VIX return (2014-12-31)
    assert late.market.prices.index[late.straddles[0].rows[0]] == start
    assert late.rows[0] < late.straddles[0].rows[0]
    assert any(f"straddle_SPX starts on {start.isoformat()}" in n for n in late.notes)
    early = prepare_backtest(load_inputs(inputs, _config(method="hs")), _config(method="hs"),
                             BacktestWindow("2010-01-04", "2010-03-31"))
    assert early.straddles == () and any("no straddle_SPX" in n for n in early.notes)
    # a parameter set without the index: no straddle (FHS would need its volatility)
    fp = FactorParams(model="ewma", decay=0.94)
    params = ParameterSet({"SPX": fp, "NASDAQ": fp, "WTI": fp}, created_at="x", source="p.json")
    config = _config(method="fhs")
    no_vix = prepare_backtest(load_inputs(inputs, config), config, window, params)
    assert no_vix.straddles == () and any("'VIX'" in n for n in no_vix.notes)


def test_straddle_underlyings_rules():
    instruments = pd.DataFrame({
        "instrument_id": ["A", "A-C", "BF", "C", "D-C"],
        "kind": ["spot", "option", "future", "spot", "option"],
        "underlying": ["A", "A", "B", "C", "D"],
        "multiplier": 1.0, "factor": ["A", "A", "BF", "C", "D"]})
    notes: list[str] = []
    kinds = {"C": "absolute"}
    got = straddle_underlyings(instruments, {"A": "AV", "B": "BV", "C": "CV", "D": "DV"},
                               ["A", "AV", "BF", "BV", "C", "CV", "D", "DV"],
                               lambda a: kinds.get(a, "log"), notes)
    # B is priced by its future's own series only; C has absolute returns; D has options only
    assert got == [("A", "AV")]
    assert len(notes) == 2 and "straddle_B" in notes[0] and "straddle_C" in notes[1]


def test_static_option_expiring_during_the_backtest_is_refused(demo, tmp_path):
    instruments = tmp_path / "instruments.csv"
    option = pd.DataFrame({"instrument_id": ["SPX-C"], "kind": ["option"],
                           "underlying": ["SPX"], "multiplier": [1.0], "strike": [2000.0],
                           "expiry": ["2016-06-17T00:00:00Z"], "option_type": ["call"],
                           "implied_vol": [0.2]})
    pd.concat([INSTRUMENTS, option]).to_csv(instruments, index=False)
    positions = tmp_path / "positions.csv"
    pd.DataFrame({"account_id": ["x"], "instrument_id": ["SPX-C"], "quantity": [1.0]}).to_csv(
        positions, index=False)
    with pytest.raises(InputDataError, match="SPX-C.*expires at 2016-06-17"):
        run_backtest(BacktestInputs(demo["prices"], instruments, positions),
                     _config(method="hs"), BacktestWindow("2016-03-01", "2016-06-30"))
    # alive through the last t + h: margined like any eod book
    result = run_backtest(BacktestInputs(demo["prices"], instruments, positions),
                          _config(method="hs"), BacktestWindow("2016-03-01", "2016-03-09"))
    assert (result.backtest["initial_margin"] > 0).all()
