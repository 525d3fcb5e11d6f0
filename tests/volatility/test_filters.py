"""Volatility filters: numba kernel == plain-Python twin == arch's own conditional variance."""

import numpy as np
import pytest
from arch import arch_model
from arch.data import sp500

from calibration.garch import fit_garch11, return_scale
from riskmodel.volatility.filters import filter_factor
from riskmodel.volatility.kernels import ewma_variance, garch11_variance
from riskmodel.volatility.params import FactorParams
from riskmodel.volatility.recursions_python import (
    ewma_backcast,
    ewma_variance_python,
    garch11_variance_python,
)


@pytest.fixture(scope="module")
def spx_returns() -> np.ndarray:
    close = sp500.load()["Adj Close"]
    return np.log(close).diff().dropna().to_numpy()[-2000:]


def test_garch_kernel_equals_twin(spx_returns):
    r = spx_returns * 100
    args = (0.02, 0.09, 0.89, ewma_backcast(r))
    np.testing.assert_array_equal(garch11_variance(r, *args), garch11_variance_python(r, *args))


def test_ewma_kernel_equals_twin_and_naive_loop(spx_returns):
    lam, b = 0.94, 1e-4
    kernel = ewma_variance(spx_returns, lam, b)
    np.testing.assert_array_equal(kernel, ewma_variance_python(spx_returns, lam, b))
    # Independent oracle: the RiskMetrics recursion written out with pandas' ewm, which starts
    # from its first input; prepend the backcast so both start in the same place.
    import pandas as pd

    x = pd.Series(np.concatenate([[b], spx_returns**2]))
    ewm = x.ewm(alpha=1 - lam, adjust=False).mean().to_numpy()
    np.testing.assert_allclose(kernel, ewm, rtol=1e-12)


def test_garch_filter_reproduces_arch_conditional_variance(spx_returns):
    """Our filter with arch's fitted parameters equals arch's conditional variance (1e-10)."""
    params = fit_garch11(spx_returns)
    assert params.model == "garch" and params.fallback is None
    scale = params.return_scale
    assert scale == 100.0
    res = arch_model(spx_returns * scale, mean="Zero", vol="GARCH", p=1, q=1).fit(disp="off")
    np.testing.assert_allclose(
        [params.omega, params.alpha, params.beta],
        res.params[["omega", "alpha[1]", "beta[1]"]].to_numpy(),
        rtol=1e-12,
    )
    filtered = filter_factor("SPX", spx_returns, params)
    arch_var = res.conditional_volatility**2 / scale**2
    np.testing.assert_allclose(filtered.sigma2, arch_var, rtol=1e-10)
    forecast = res.forecast(horizon=1, reindex=False).variance.to_numpy()[-1, 0] / scale**2
    np.testing.assert_allclose(filtered.sigma2_next, forecast, rtol=1e-10)
    np.testing.assert_allclose(
        filtered.std_resid, res.std_resid, rtol=1e-10
    )


def test_fallbacks_are_recorded():
    rng = np.random.default_rng(1)
    short = fit_garch11(rng.normal(0, 0.01, 100), min_history=250)
    assert short.model == "ewma" and "short history" in short.fallback
    constant = fit_garch11(np.zeros(600), min_history=250)
    assert constant.model == "ewma" and "constant" in constant.fallback


def test_constant_series_filters_to_zero_residuals_not_nan():
    f = filter_factor("X", np.zeros(300), FactorParams(model="ewma", lam=0.94))
    assert np.all(f.std_resid == 0) and f.sigma2_next == 0


def test_return_scale_brings_std_into_half_to_five():
    for std in (3e-4, 0.006, 0.012, 0.5, 7.0, 42.0):
        scaled = np.std(np.random.default_rng(0).normal(0, std, 5000)) * return_scale(
            np.random.default_rng(0).normal(0, std, 5000)
        )
        assert 0.5 <= scaled < 5.0
