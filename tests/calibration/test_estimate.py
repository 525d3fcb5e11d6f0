"""Estimation: model choice by BIC, documented fallbacks, proxies, and the parameter-set file."""

import json

import numpy as np
import pandas as pd
import pytest
from arch import arch_model
from arch.data import nasdaq, sp500

from calibration.estimate import Spec, fit_factor
from calibration.runner import calibrate
from riskmodel.volatility.params import load_parameter_set

DATES = pd.bdate_range("2000-01-03", periods=2000)


@pytest.fixture(scope="module")
def index_returns() -> pd.DataFrame:
    closes = pd.concat([sp500.load()["Adj Close"].rename("SPX"),
                        nasdaq.load()["Adj Close"].rename("NASDAQ")], axis=1)
    closes.index = pd.DatetimeIndex(closes.index)
    return np.log(closes).diff().dropna().iloc[-1500:]


def test_auto_picks_lowest_bic_and_records_runners_up(index_returns):
    spx = index_returns["SPX"]
    params = fit_factor(spx, Spec(model="auto", dist="auto"))
    assert params.fallback is None and len(params.runners_up) == 8
    # independent check: fit all nine with arch directly and take the minimum BIC
    y = spx.to_numpy() * params.return_scale
    bics = {}
    for model, (vol, o) in {"garch": ("GARCH", 0), "gjr": ("GARCH", 1),
                            "egarch": ("EGARCH", 1)}.items():
        for dist in ("normal", "t", "skewt"):
            res = arch_model(y, mean="Zero", vol=vol, p=1, o=o, q=1, dist=dist).fit(disp="off")
            bics[(model, dist)] = res.bic
    assert (params.model, params.dist) == min(bics, key=bics.get)
    # equity indices: leverage effect and fat tails
    assert params.model in ("gjr", "egarch") and params.dist in ("t", "skewt")
    recorded = [r["bic"] for r in params.runners_up]
    assert min(recorded) >= params.bic


def test_fallback_short_history():
    r = pd.Series(np.random.default_rng(0).normal(0, 0.01, 300), index=DATES[:300])
    p = fit_factor(r, Spec(min_history=500))
    assert p.model == "ewma" and "short history: 300 returns < min_history 500" in p.fallback


def test_fallback_constant_series():
    p = fit_factor(pd.Series(np.zeros(1000), index=DATES[:1000]), Spec())
    assert p.model == "ewma" and "constant series" in p.fallback


def test_fallback_non_convergence():
    r = pd.Series(np.random.default_rng(1).normal(0, 0.01, 2000), index=DATES)
    p = fit_factor(r, Spec(max_iter=2))
    assert p.model == "ewma" and "did not converge" in p.fallback


def test_fallback_non_stationary():
    """A tenfold variance break drives GARCH to the integrated boundary."""
    rng = np.random.default_rng(1)
    r = pd.Series(np.concatenate([rng.normal(0, 0.005, 1000), rng.normal(0, 0.03, 1000)]),
                  index=DATES)
    p = fit_factor(r, Spec(model="garch"))
    assert p.model == "ewma" and "non-stationary" in p.fallback


def test_proxy_borrows_dynamics_keeps_own_level(index_returns):
    returns = index_returns.copy()
    returns.loc[returns.index[:-300], "NASDAQ"] = np.nan  # a "new listing": 300 returns
    pset = calibrate(returns, Spec(model="garch", dist="t", min_history=500,
                                   proxies={"NASDAQ": "SPX"}))
    own, proxy = pset.factors["NASDAQ"], pset.factors["SPX"]
    assert proxy.fallback is None
    assert "short history" in own.fallback and "proxy SPX" in own.fallback
    assert (own.model, own.dist, own.alpha, own.beta, own.nu) == (
        proxy.model, proxy.dist, proxy.alpha, proxy.beta, proxy.nu)
    y = returns["NASDAQ"].dropna().to_numpy() * own.return_scale
    np.testing.assert_allclose(own.omega / (1 - own.persistence), np.var(y), rtol=1e-12)


def test_parameter_set_round_trip(index_returns, tmp_path):
    pset = calibrate(index_returns, Spec(model="gjr", dist="skewt"), data={"note": "test"})
    path = tmp_path / "p.json"
    pset.write(path)
    raw = json.loads(path.read_text())
    assert raw["schema_version"] == 1 and set(raw["factors"]) == {"SPX", "NASDAQ"}
    entry = raw["factors"]["SPX"]
    for key in ("model", "dist", "mean", "params", "loglik", "aic", "bic", "converged",
                "fallback", "last_variance", "last_residual", "unconditional_vol",
                "return_scale", "backcast_value", "sample_start", "std_errors"):
        assert key in entry
    assert set(entry["params"]) == {"mu", "omega", "alpha", "gamma", "beta", "nu", "lambda"}
    dep = raw["dependence"]
    assert dep["factors"] == ["SPX", "NASDAQ"] and dep["copula"]["nu"] > 2
    loaded = load_parameter_set(path)
    assert loaded.factors == pset.factors and loaded.id == pset.id
