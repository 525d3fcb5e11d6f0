"""Volatility filters: numba kernel == plain-Python twin == arch's own conditional variance."""

import numpy as np
import pandas as pd
import pytest
from arch import arch_model
from arch.data import sp500

from calibration.estimate import Spec, backcast_for, fit_factor
from riskmodel.volatility.filters import filter_factor
from riskmodel.volatility.kernels import conditional_variance
from riskmodel.volatility.params import MODEL_CODES, FactorParams
from riskmodel.volatility.recursions_python import conditional_variance_python

ARCH_SPECS = {"garch": ("GARCH", 0), "gjr": ("GARCH", 1), "egarch": ("EGARCH", 1)}


@pytest.fixture(scope="module")
def spx_returns() -> pd.Series:
    close = sp500.load()["Adj Close"]
    close.index = pd.DatetimeIndex(close.index)
    return np.log(close).diff().dropna().iloc[-2000:]


@pytest.mark.parametrize("code, params", [
    (0, (0.0, 0.0, 0.0, 0.0, 0.94)),
    (1, (0.02, 0.09, 0.0, 0.89, 0.0)),
    (2, (0.02, 0.01, 0.15, 0.88, 0.0)),
    (3, (0.0, 0.12, -0.1, 0.98, 0.0)),
])
def test_kernel_equals_twin(spx_returns, code, params):
    r = spx_returns.to_numpy() * 100
    np.testing.assert_allclose(
        conditional_variance(code, r, *params, 1.2),
        conditional_variance_python(code, r, *params, 1.2),
        rtol=1e-14,
    )


def test_ewma_equals_naive_pandas_recursion(spx_returns):
    lam, b = 0.94, 1e-4
    r = spx_returns.to_numpy()
    kernel = conditional_variance(0, r, 0.0, 0.0, 0.0, 0.0, lam, b)
    # Independent oracle: pandas' ewm over the squares, started from the backcast.
    x = pd.Series(np.concatenate([[b], r**2]))
    np.testing.assert_allclose(kernel, x.ewm(alpha=1 - lam, adjust=False).mean(), rtol=1e-12)


@pytest.mark.parametrize("model", ["garch", "gjr", "egarch"])
@pytest.mark.parametrize("dist, mean", [("normal", "zero"), ("t", "constant"),
                                        ("skewt", "zero"), ("skewt", "constant")])
@pytest.mark.parametrize("backcast", ["ewma", "sample"])
def test_filter_reproduces_arch_conditional_variance(spx_returns, model, dist, mean, backcast):
    """Our fit and filter equal arch's own fit and conditional variance (1e-10 relative)."""
    spec = Spec(model=model, dist=dist, mean=mean, backcast=backcast)
    params = fit_factor(spx_returns, spec)
    assert params.model == model and params.fallback is None
    scale = params.return_scale
    assert scale == 100.0  # S&P 500 daily log returns: percent
    y = spx_returns.to_numpy() * scale
    vol, o = ARCH_SPECS[model]
    if mean == "constant" and backcast == "sample":
        # the benchmark convention: the backcast moves with mu, so mu is profiled out; at the
        # estimated mu arch's zero-mean fit of y - mu with that backcast is the same model
        y, mean_arch, bc = y - params.mu, "Zero", float(np.mean((y - params.mu) ** 2))
    else:
        mean_arch, bc = ("Zero" if mean == "zero" else "Constant"), backcast_for(y, mean, backcast)
    res = arch_model(y, mean=mean_arch, vol=vol, p=1, o=o, q=1, dist=dist).fit(
        disp="off", backcast=bc)
    # calibrate agrees with a direct arch fit of the same specification
    direct = [res.params["omega"], res.params["alpha[1]"], res.params["beta[1]"]]
    np.testing.assert_allclose([params.omega, params.alpha, params.beta], direct, rtol=1e-3)
    filtered = filter_factor("SPX", spx_returns, params)
    assert filtered.start.startswith("calibration sample")
    arch_var = res.conditional_volatility**2 / scale**2
    np.testing.assert_allclose(filtered.sigma2.to_numpy(), arch_var, rtol=1e-10)
    forecast = res.forecast(horizon=1, reindex=False).variance.to_numpy()[-1, 0] / scale**2
    np.testing.assert_allclose(filtered.sigma2_next, forecast, rtol=1e-10)
    np.testing.assert_allclose(filtered.std_resid.to_numpy(), res.std_resid, rtol=1e-9)
    np.testing.assert_allclose(params.last_variance, arch_var[-1] * scale**2, rtol=1e-10)


def test_daily_filtering_continues_past_the_calibration_end(spx_returns):
    """Parameters fitted up to day T filter days T+1.. forward without a refit."""
    params = fit_factor(spx_returns.iloc[:-20], Spec(model="gjr"))
    full = filter_factor("SPX", spx_returns, params)
    early = filter_factor("SPX", spx_returns.iloc[:-20], params)
    np.testing.assert_array_equal(full.sigma2.to_numpy()[:-20], early.sigma2.to_numpy())
    # the 20 new days follow the GJR recursion from the calibration's last variance
    code, omega, alpha, gamma, beta, decay = params.recursion()
    var, r = early.sigma2_next, spx_returns.to_numpy()[-20:]
    for t in range(20):
        np.testing.assert_allclose(full.sigma2.iloc[-20 + t], var, rtol=1e-12)
        var = omega + (alpha + (gamma if r[t] < 0 else 0.0)) * r[t] ** 2 + beta * var
    np.testing.assert_allclose(full.sigma2_next, var, rtol=1e-12)


def test_constant_series_filters_to_zero_residuals_not_nan():
    dates = pd.bdate_range("2020-01-01", periods=300)
    f = filter_factor("X", pd.Series(np.zeros(300), index=dates), FactorParams(model="ewma"))
    assert np.all(f.std_resid == 0) and np.isfinite(f.sigma2_next)


def test_model_codes_cover_every_model():
    assert set(MODEL_CODES) == {"ewma", "garch", "gjr", "egarch"}
