"""Historical and filtered historical scenario sets."""

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from riskmodel.scenarios.historical import filtered_historical_scenarios, historical_scenarios
from riskmodel.scenarios.kernels import fhs_paths, fhs_paths_serial
from riskmodel.scenarios.twins import fhs_paths_python
from riskmodel.volatility.filters import filter_factor
from riskmodel.volatility.params import FactorParams


def _prices(n=300, seed=0):
    rng = np.random.default_rng(seed)
    idx = pd.bdate_range("2020-01-01", periods=n)
    return pd.DataFrame(
        100 * np.exp(np.cumsum(rng.normal(0, 0.01, (n, 2)), axis=0)), index=idx, columns=["A", "B"]
    )


@given(h=st.integers(1, 10))
@settings(max_examples=10, deadline=None)
def test_hs_overlapping_returns_are_price_ratios(h):
    """An h-day HS log-return scenario equals log(P[t+h] / P[t]) read off the prices."""
    prices = _prices()
    window = np.log(prices).diff().dropna()
    scen = historical_scenarios(window, h)
    p = prices.to_numpy()
    expected = np.log(p[h:] / p[:-h])  # windows starting at each return's previous close
    assert scen.n_scenarios == len(window) - h + 1
    np.testing.assert_allclose(scen.shocks, expected, rtol=1e-12, atol=1e-15)
    assert scen.labels[0] == window.index[0].strftime("%Y-%m-%dT%H:%M:%S")


def test_fhs_kernel_equals_twin():
    rng = np.random.default_rng(3)
    z = rng.standard_t(4, (500, 3))
    z = rng.standard_t(4, (500, 4))
    args = (  # one factor per model: GARCH, EWMA, GJR, EGARCH
        np.array([1e-4, 4e-4, 2.0, 3e-4]),
        np.array([0.0, 1e-4, 0.0, 0.0]),
        np.array([1, 0, 2, 3]),
        np.array([1e-6, 0.0, 0.05, -0.2]),
        np.array([0.08, 0.0, 0.02, 0.1]),
        np.array([0.0, 0.0, 0.12, -0.08]),
        np.array([0.9, 0.0, 0.85, 0.97]),
        np.array([0.94, 0.97, 0.94, 0.94]),
    )
    for h in (1, 2, 10):
        np.testing.assert_allclose(
            fhs_paths(z, *args, h), fhs_paths_python(z, *args, h), rtol=1e-14, atol=0
        )
        # the one-thread kernel of small windows: the parallel kernel's bits
        np.testing.assert_array_equal(fhs_paths_serial(z, *args, h), fhs_paths(z, *args, h))


def test_fhs_one_day_is_residual_times_todays_vol():
    prices = _prices(600, seed=4)
    returns = np.log(prices).diff().dropna()
    params = FactorParams(model="garch", return_scale=100.0, omega=0.02, alpha=0.08, beta=0.9)
    filtered = {c: filter_factor(c, returns[c], params) for c in returns}
    window = returns.iloc[-250:]
    scen = filtered_historical_scenarios(window, filtered, 1)
    for i, c in enumerate(returns):
        expected = np.sqrt(filtered[c].sigma2_next) * filtered[c].std_resid.iloc[-250:].to_numpy()
        np.testing.assert_allclose(scen.shocks[:, i], expected, rtol=1e-14)


def test_fhs_multi_day_path_follows_garch_recursion_by_hand():
    """Two-day path of one factor, written out from the GARCH(1,1) recursion."""
    omega, alpha, beta, s2 = 1e-6, 0.1, 0.85, 4e-4
    z = np.array([[1.5], [-2.0], [0.3]])
    out = fhs_paths(z, np.array([s2]), np.zeros(1), np.array([1]), np.array([omega]),
                    np.array([alpha]), np.zeros(1), np.array([beta]), np.array([0.94]), 2)
    e1 = np.sqrt(s2) * 1.5
    s2b = omega + alpha * e1**2 + beta * s2
    e2 = np.sqrt(s2b) * -2.0
    assert out.shape == (2, 1)
    assert out[0, 0] == e1 + e2
