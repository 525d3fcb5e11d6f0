"""The backtest replay: equal to the eod engine, causal, and correct against hand computations.

Reference values come from outside the replay: direct ``eod`` runs (the engine the replay must
reproduce), naive numpy loops written here from the definitions (EWMA recursion with arch's
backcast rule, FHS rescaling, ``np.quantile(..., method="inverted_cdf")`` VaR and the
Acerbi-Tasche ES), and the price file itself for realised losses.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from riskmodel.backtest.benchmarks import REALISABLE_COLUMNS
from riskmodel.backtest.portfolios import builtin_portfolios, reference_instruments
from riskmodel.backtest.replay import BACKTEST_COLUMNS, causal_filter
from riskmodel.backtest.run import (
    BacktestInputs,
    BacktestWindow,
    load_inputs,
    prepare_backtest,
    run_backtest,
)
from riskmodel.batch.eod import EodInputs, run_eod
from riskmodel.cli import garch_fitter
from riskmodel.config import RunConfig, config_from_mapping, read_toml
from riskmodel.demo import INSTRUMENTS, demo_prices
from riskmodel.engine.store import load_config_source
from riskmodel.errors import InputDataError
from riskmodel.volatility.params import FactorParams, ParameterSet

# --------------------------------------------------------------------------------------------
# Inputs: the demo's real prices (S&P 500, NASDAQ, WTI from arch.data) and a few positions
# --------------------------------------------------------------------------------------------

POSITIONS = pd.DataFrame({
    "account_id": ["A", "A", "B", "B", "C", "D", "D", "E", "F", "F"],
    "instrument_id": ["ES", "NQ", "SPX", "SPX-PERP", "CL", "WTI-PERP", "CL", "NASDAQ-PERP",
                      "NDX-INV", "NQ"],
    "quantity": [2.0, -3.0, 10.0, -4.0, 1.0, -5.0, 2.0, 7.0, -300.0, 1.0],
    "netting_set": ["", "", "", "", "", "iso", "", "", "", ""],
})
ACCOUNTS = pd.DataFrame({"account_id": ["A", "B", "C", "D", "D", "E", "F"],
                         "collateral": [1e5, 2e4, 3e4, 1e4, 5e3, 1e3, 1e4],
                         "netting_set": ["", "", "", "", "iso", "", ""]})
DEMO_TOML = """
[returns.assets]
WTI = "absolute"
[horizons.kind]
perpetual = 1
[addons.spreads]
default = 0.0002
[addons.concentration_threshold]
default = 200000.0
[addons.concentration_rate]
default = 0.01
"""


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("demo")
    files = {
        "prices": folder / "prices.csv",
        "instruments": folder / "instruments.csv",
        "positions": folder / "positions.csv",
        "accounts": folder / "accounts.csv",
        "config": folder / "run.toml",
    }
    demo_prices().to_csv(files["prices"])
    INSTRUMENTS.to_csv(files["instruments"], index=False)
    POSITIONS.to_csv(files["positions"], index=False)
    ACCOUNTS.to_csv(files["accounts"], index=False)
    files["config"].write_text(DEMO_TOML)
    return files


def _config(demo: dict[str, Path], **overrides: object) -> RunConfig:
    raw = read_toml(demo["config"])
    for key in [k for k in overrides if "." in k]:
        section, name = key.split(".")
        raw.setdefault(section, {})[name] = overrides.pop(key)
    return config_from_mapping(raw, overrides)


def _rows_at(frame: pd.DataFrame, date: pd.Timestamp) -> pd.DataFrame:
    return frame[frame["date"] == date].set_index(["account_id", "netting_set"]).sort_index()


# --------------------------------------------------------------------------------------------
# Replay equals the engine (the policy matrix is in test_equals_eod.py)
# --------------------------------------------------------------------------------------------


def _assert_equals_eod(demo, config, params=None, params_file=None):
    window = BacktestWindow("2010-01-04", "2010-02-26", recalibrate_every=0)
    result = run_backtest(BacktestInputs(demo["prices"], demo["instruments"], demo["positions"]),
                          config, window, params=params, n_sim=0)
    frame = result.backtest
    assert list(frame.columns) == [*BACKTEST_COLUMNS, *REALISABLE_COLUMNS]
    dates = sorted(frame["date"].unique())
    for date in (dates[0], dates[len(dates) // 2], dates[-1]):
        eod = run_eod(EodInputs(demo["prices"], demo["instruments"], demo["positions"],
                                demo["accounts"], params_file), config,
                      as_of=pd.Timestamp(date).isoformat(), params=params)
        expected = eod.margins.set_index(["account_id", "netting_set"]).sort_index()
        got = _rows_at(frame, pd.Timestamp(date))
        assert len(got) == len(expected) == 7  # F: an inverse perpetual against a future
        for col in ("var", "es", "initial_margin", "flat_rate_margin", "gross_notional"):
            np.testing.assert_allclose(got[col].to_numpy(), expected[col].to_numpy(),
                                       rtol=1e-9, atol=0, err_msg=f"{col} on {date}")


def test_fhs_with_parameter_set_equals_eod_runs(demo, tmp_path):
    # --params: both filters restart at the calibration sample with its stored backcast
    config = _config(demo, method="fhs", lookback=250)
    history = load_inputs(BacktestInputs(demo["prices"], demo["instruments"]), config).history
    prices = history.frame.loc[:"2009-12-31"].ffill()
    fit = garch_fitter()
    samples = {}
    for asset in ("SPX", "NASDAQ", "WTI"):
        p = prices[asset]
        samples[asset] = (np.log(p / p.shift(1)) if asset != "WTI" else p.diff()).dropna() \
            .iloc[-1000:].rename(asset)
    factors = fit(samples, config)
    params = ParameterSet(factors, created_at="2009-12-31T00:00:00+00:00",
                          data={"end": "2009-12-31T00:00:00"}, source=str(tmp_path / "p.json"))
    params.write(tmp_path / "p.json")
    _assert_equals_eod(demo, config, params, tmp_path / "p.json")


# --------------------------------------------------------------------------------------------
# Naive recomputation: FHS with EWMA for one long spot position
# --------------------------------------------------------------------------------------------


def _acerbi_tasche_es(losses: np.ndarray, a: float) -> tuple[float, float]:
    var = float(np.quantile(losses, a, method="inverted_cdf"))
    n = losses.size
    tail = losses[losses > var].sum() / n
    es = (tail + var * (np.count_nonzero(losses <= var) / n - a)) / (1 - a)
    return var, float(es)


def test_fhs_matches_a_naive_numpy_recomputation(tmp_path):
    spx = demo_prices()["SPX"].dropna()
    prices_file = tmp_path / "spx.csv"
    spx.to_frame().to_csv(prices_file)
    pd.DataFrame({"instrument_id": ["SPX"], "kind": ["spot"], "underlying": ["SPX"],
                  "multiplier": [1.0]}).to_csv(tmp_path / "instruments.csv", index=False)
    q = 3.0
    pd.DataFrame({"account_id": ["a"], "instrument_id": ["SPX"], "quantity": [q]}).to_csv(
        tmp_path / "positions.csv", index=False)
    lam, lookback, a = 0.97, 300, 0.99
    config = RunConfig(method="fhs", vol_model="ewma", ewma_lambda=lam, horizon=1,
                       lookback=lookback, confidence=a)
    result = run_backtest(BacktestInputs(prices_file, tmp_path / "instruments.csv",
                                         tmp_path / "positions.csv"), config,
                          BacktestWindow("2005-03-01", "2005-04-29", step=7), n_sim=0)

    p = spx.to_numpy()
    dates = pd.DatetimeIndex(pd.to_datetime(spx.index))
    r = np.log(p[1:] / p[:-1])
    w = 0.94 ** np.arange(75)  # arch's backcast: 0.94-weighted mean of the first 75 squares
    s2 = np.empty(r.size + 1)
    s2[0] = float(np.sum(r[:75] ** 2 * w) / w.sum())
    for i in range(r.size):
        s2[i + 1] = lam * s2[i] + (1 - lam) * r[i] ** 2
    z = r / np.sqrt(s2[:-1])
    assert result.backtest["date"].nunique() == 7  # every 7th of 43 business days
    for _, row in result.backtest.iterrows():
        k = int(np.flatnonzero(dates == row["date"])[0])  # price row; return row k - 1
        shocks = np.sqrt(s2[k]) * z[k - lookback:k]
        losses = -q * p[k] * np.expm1(shocks)
        var, es = _acerbi_tasche_es(losses, a)
        assert row["var"] == pytest.approx(var, rel=1e-9)
        assert row["es"] == pytest.approx(es, rel=1e-9)
        notional = q * p[k]
        assert row["gross_notional"] == pytest.approx(notional, rel=1e-12)
        # defaults: no add-ons, initial floor 1% of notional, flat rate 10%
        assert row["initial_margin"] == pytest.approx(max(es, 0.01 * notional), rel=1e-9)
        assert row["flat_rate_margin"] == pytest.approx(0.10 * notional, rel=1e-12)


# --------------------------------------------------------------------------------------------
# Realised loss by hand; built-in portfolios
# --------------------------------------------------------------------------------------------


def test_realised_loss_of_a_single_long_position_by_hand(demo, tmp_path):
    positions = tmp_path / "one.csv"
    pd.DataFrame({"account_id": ["x"], "instrument_id": ["NQ"], "quantity": [3.0]}).to_csv(
        positions, index=False)
    config = _config(demo, method="hs", lookback=250, horizon=3)
    result = run_backtest(BacktestInputs(demo["prices"], demo["instruments"], positions),
                          config, BacktestWindow("2018-12-03", None), n_sim=0)
    frame = result.backtest
    raw = pd.read_csv(demo["prices"], index_col="date", parse_dates=True)
    nasdaq = raw["NASDAQ"].ffill()  # the calendar carries NASDAQ over WTI-only dates
    dates = list(raw.index)
    expected = []
    for d in frame["date"]:
        k = dates.index(d)
        expected.append(-3.0 * 20.0 * (nasdaq.iloc[k + 3] - nasdaq.iloc[k]))
    np.testing.assert_allclose(frame["realized_loss"], expected, rtol=1e-9, atol=1e-9)
    # an inverse perpetual of face value 100: P&L = 100 x (P[t+h] / P[t] - 1) per contract
    pd.DataFrame({"account_id": ["x"], "instrument_id": ["NDX-INV"], "quantity": [-7.0]}).to_csv(
        positions, index=False)
    inverse = run_backtest(BacktestInputs(demo["prices"], demo["instruments"], positions),
                           config, BacktestWindow("2018-12-03", None), n_sim=0).backtest
    expected_inv = [7.0 * 100.0 * (nasdaq.iloc[dates.index(d) + 3] / nasdaq.iloc[dates.index(d)]
                                   - 1.0) for d in inverse["date"]]
    np.testing.assert_allclose(inverse["realized_loss"], expected_inv, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(inverse["gross_notional"], 700.0, rtol=1e-12)  # face value
    # the last three dates have no t + 3 in the data and are dropped
    assert frame["date"].iloc[-1] == dates[-4]
    assert (frame["exception"] == (frame["realized_loss"] > frame["var"])).all()
    assert (frame["margin_breach"] == (frame["realized_loss"] > frame["initial_margin"])).all()


def test_builtin_portfolios_are_unit_notional_at_the_first_date(demo):
    config = _config(demo, method="hs", lookback=250)
    result = run_backtest(BacktestInputs(demo["prices"], demo["instruments"]), config,
                          BacktestWindow("2012-06-01", "2012-06-15"), n_sim=0)
    frame = result.backtest
    first = _rows_at(frame, frame["date"].min())
    names = sorted(s for _, s in first.index)
    assert names == sorted(["long_SPX", "short_SPX", "long_NASDAQ", "short_NASDAQ", "long_WTI",
                            "short_WTI", "hedge_SPX_NASDAQ", "hedge_NASDAQ_WTI"])
    assert set(a for a, _ in first.index) == {"builtin"}
    for (_, name), row in first.iterrows():
        assert row["gross_notional"] == pytest.approx(2.0 if name.startswith("hedge") else 1.0,
                                                      rel=1e-12)
    # one instrument per underlying: spot where there is one, else the first in the file
    ref = reference_instruments(load_inputs(BacktestInputs(demo["prices"], demo["instruments"]),
                                            config).instruments.frame)
    assert list(ref["instrument_id"]) == ["SPX", "NQ", "CL"]
    rows = builtin_portfolios(ref, {"SPX": 2000.0, "NASDAQ": 5000.0, "WTI": 50.0})
    hedge = rows[rows["netting_set"] == "hedge_SPX_NASDAQ"].set_index("instrument_id")
    assert hedge.loc["SPX", "quantity"] == pytest.approx(1 / 2000.0)
    assert hedge.loc["NQ", "quantity"] == pytest.approx(-1 / (20 * 5000.0))
    # an inverse contract's notional is its face value; options are never chosen
    frame = pd.DataFrame({"instrument_id": ["BTC-C", "BTC-INV", "ETH-C"],
                          "kind": ["option", "inverse_perpetual", "option"],
                          "underlying": ["BTC", "BTC", "ETH"], "multiplier": [1.0, 10.0, 1.0],
                          "factor": ["BTC", "BTC", "ETH"]})
    ref = reference_instruments(frame)
    assert list(ref["instrument_id"]) == ["BTC-INV"]
    rows = builtin_portfolios(ref, {"BTC": 30000.0})
    assert list(rows["quantity"]) == [pytest.approx(0.1), pytest.approx(-0.1)]


# --------------------------------------------------------------------------------------------
# No look-ahead
# --------------------------------------------------------------------------------------------


def _perturbed_after(prices_file: Path, cut: pd.Timestamp, out: Path, seed: int = 1) -> Path:
    raw = pd.read_csv(prices_file, index_col="date", parse_dates=True)
    later = raw.index > cut
    rng = np.random.default_rng(seed)
    raw.loc[later] = raw.loc[later] * rng.uniform(0.7, 1.3, size=raw.loc[later].shape)
    raw.index = raw.index.strftime("%Y-%m-%d")
    raw.to_csv(out)
    return out


@pytest.mark.parametrize("recalibrate", [None, 30])
def test_margins_do_not_change_when_future_prices_change(demo, tmp_path, recalibrate):
    config = _config(demo, method="fhs", lookback=250)  # GARCH fitted at run time
    window = BacktestWindow("2008-06-02", "2008-10-31", step=3, recalibrate_every=recalibrate)
    inputs = BacktestInputs(demo["prices"], demo["instruments"], demo["positions"])
    base = run_backtest(inputs, config, window, fitter=garch_fitter(), n_sim=0).backtest
    cut = pd.Timestamp("2008-08-15")
    moved = _perturbed_after(demo["prices"], cut, tmp_path / "moved.csv")
    other = run_backtest(dataclasses.replace(inputs, prices=moved), config, window,
                         fitter=garch_fitter(), n_sim=0).backtest
    pd.testing.assert_frame_equal(base[["date", "account_id", "netting_set"]],
                                  other[["date", "account_id", "netting_set"]])
    upto = (base["date"] <= cut).to_numpy()
    assert 20 < upto.sum() < len(base)
    for col in ("var", "es", "initial_margin", "flat_rate_margin", "gross_notional"):
        np.testing.assert_array_equal(base.loc[upto, col], other.loc[upto, col], err_msg=col)
        assert not np.array_equal(base.loc[~upto, col], other.loc[~upto, col])
    # realised losses over t..t+h with t + h <= cut are unchanged too (h <= 2 rows)
    safe = (base["date"] <= pd.Timestamp("2008-08-12")).to_numpy()
    np.testing.assert_array_equal(base.loc[safe, "realized_loss"],
                                  other.loc[safe, "realized_loss"])


def test_causal_filter_backcast_uses_only_returns_before_the_first_date():
    rng = np.random.default_rng(3)
    dates = pd.bdate_range("2015-01-01", periods=600)
    r = pd.Series(rng.standard_normal(600) * 0.01, index=dates)
    fp = FactorParams(model="garch", omega=0.02, alpha=0.08, beta=0.9, return_scale=100.0,
                      backcast="sample")  # mean of all squared residuals: look-ahead if taken
    first = dates[400]
    path = causal_filter("X", r, fp, cover_from=dates[100], first_date=first)
    r2 = r.copy()
    r2.iloc[401:] *= 5.0  # every return after the first backtest date
    path2 = causal_filter("X", r2, fp, cover_from=dates[100], first_date=first)
    a, b = path.at(first), path2.at(first)
    np.testing.assert_array_equal(a.sigma2.to_numpy(), b.sigma2.to_numpy())
    assert a.sigma2_next == b.sigma2_next
    # the backcast is the mean squared scaled residual of the 400 returns before `first`
    expected0 = 0.02 + (0.08 + 0.9) * float(np.mean((r.iloc[:400] * 100) ** 2))
    assert a.sigma2.iloc[0] == pytest.approx(expected0 / 100**2, rel=1e-12)


def test_parameter_set_estimated_after_the_start_is_rejected(demo):
    config = _config(demo, method="fhs", lookback=250)
    fp = FactorParams(model="ewma", decay=0.94, sample_start="2005-01-03T00:00:00",
                      sample_end="2011-03-01T00:00:00")
    params = ParameterSet({"SPX": fp, "NASDAQ": fp, "WTI": fp}, created_at="x", source="p.json")
    with pytest.raises(InputDataError, match="look-ahead"):
        run_backtest(BacktestInputs(demo["prices"], demo["instruments"]), config,
                     BacktestWindow("2011-01-03", "2011-02-01"), params=params)


# --------------------------------------------------------------------------------------------
# Refits, anti-procyclicality, horizons
# --------------------------------------------------------------------------------------------


def test_recalibration_fits_on_data_up_to_each_refit_date(demo):
    seen: list[tuple[str, pd.Timestamp, int]] = []

    def fitter(samples: dict[str, pd.Series], config: RunConfig) -> dict[str, FactorParams]:
        for name, returns in samples.items():
            seen.append((name, returns.index[-1], len(returns)))
        return {name: FactorParams(model="ewma", decay=0.95) for name in samples}

    config = _config(demo, method="fhs", lookback=250)
    inputs = BacktestInputs(demo["prices"], demo["instruments"], demo["positions"])
    window = BacktestWindow("2006-01-03", "2006-03-31", recalibrate_every=20)
    frame = run_backtest(inputs, config, window, fitter=fitter, n_sim=0).backtest
    prepared = prepare_backtest(load_inputs(inputs, config), config, window)
    dates = prepared.market.prices.index[prepared.rows]
    fit_dates = sorted({d for _, d, _ in seen})
    calendar = prepared.market.prices.index
    # before the first date (its previous calendar row), then on every 20th calendar row
    assert fit_dates == [calendar[prepared.rows[0] - 1], *dates[20::20]]
    assert {f for f, _, _ in seen} == {"SPX", "NASDAQ", "WTI"}
    # the sample is the last max(garch_fit_window, lookback + 250) = 2500 returns (or all)
    assert all(n <= 2500 for _, _, n in seen)
    assert frame["date"].min() == dates[0]


def test_buffer_and_floor_act_on_the_model_margin(demo):
    inputs = BacktestInputs(demo["prices"], demo["instruments"], demo["positions"])
    window = BacktestWindow("2012-01-03", "2012-04-30")
    # no add-ons, so initial margin = max(base, initial floor)
    plain_cfg = RunConfig(method="hs", lookback=250, asset_returns={"WTI": "absolute"})
    plain = run_backtest(inputs, plain_cfg, window, n_sim=0).backtest
    apc = dataclasses.replace(plain_cfg.anti_procyclicality, tools=("buffer",))
    buffered = run_backtest(inputs, dataclasses.replace(plain_cfg, anti_procyclicality=apc),
                            window, n_sim=0).backtest
    ratio = (buffered["initial_margin"] / plain["initial_margin"]).to_numpy()
    model_binds = (plain["initial_margin"] > 0.0101 * plain["gross_notional"]).to_numpy()
    assert model_binds.sum() > 100
    # 1.25 x the model margin, or 1 where its rise since the previous date released the buffer
    assert np.all(np.isclose(ratio[model_binds], 1.25) | np.isclose(ratio[model_binds], 1.0))
    assert np.isclose(ratio[model_binds], 1.25).mean() > 0.9
    # the floor: max(model, model with the floor lookback) = max of two plain runs' margins
    floor_apc = dataclasses.replace(plain_cfg.anti_procyclicality, tools=("floor",),
                                    floor_lookback=600)
    floored = run_backtest(inputs, dataclasses.replace(plain_cfg, anti_procyclicality=floor_apc),
                           window, n_sim=0).backtest
    long = run_backtest(inputs, dataclasses.replace(plain_cfg, lookback=600), window,
                        n_sim=0).backtest
    np.testing.assert_allclose(floored["initial_margin"],
                               np.maximum(plain["initial_margin"], long["initial_margin"]),
                               rtol=1e-12)


def test_each_netting_set_keeps_its_own_horizon(demo):
    config, _ = load_config_source(demo["config"], {"method": "hs", "lookback": 250})
    calls: list[tuple[int, int]] = []
    result = run_backtest(BacktestInputs(demo["prices"], demo["instruments"], demo["positions"]),
                          config, BacktestWindow("2018-12-14", None), n_sim=0,
                          progress=lambda done, total: calls.append((done, total)))
    n = result.backtest["date"].nunique()
    assert calls and calls[-1] == (n, n)
    assert result.replay is not None
    horizons = result.replay.horizons
    assert horizons[("E", "default")] == 1  # NASDAQ-PERP alone: perpetual, 1 day
    assert horizons[("A", "default")] == 2
    last = result.backtest.groupby("account_id")["date"].max()
    calendar = pd.read_csv(demo["prices"], index_col="date", parse_dates=True).index
    assert last["E"] == calendar[-2] and last["A"] == calendar[-3]
    assert result.summary["run"]["horizons_days"] == [1, 2]
    assert "non_overlapping" in result.summary
