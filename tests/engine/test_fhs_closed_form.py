"""FHS margin of one linear position on i.i.d. normal returns converges to the closed form.

Closed form for a long position of value V in an asset with log return r ~ N(0, s^2):
loss L = V (1 - e^r); VaR_a = V (1 - e^{-z_a s}); ES_a = V (1 - e^{s^2/2} Phi(-z_a - s) / (1 - a)).
``s`` is the one-day volatility the engine reports in factors.csv (``sigma_1d``).

Tolerance from the sampling error of n historical scenarios: the asymptotic standard error of the
empirical quantile, sqrt(a (1 - a) / n) / f(VaR), and of the empirical ES,
sqrt((Var(L | L > VaR) + a (ES - VaR)^2) / (n (1 - a))) (Chen 2008); we allow 4 of each.
"""

import numpy as np
import pandas as pd
from engine_inputs import write_inputs
from scipy import stats

from riskmodel.batch.eod import run_eod
from riskmodel.cli import garch_fitter
from riskmodel.config import RunConfig

SIGMA = 0.01
N_DAYS = 16_000
LOOKBACK = 15_000


def closed_form(value, s, a):
    z = stats.norm.ppf(a)
    var = value * (1 - np.exp(-z * s))
    es = value * (1 - np.exp(s**2 / 2) * stats.norm.cdf(-z - s) / (1 - a))
    return var, es


def standard_errors(value, s, a, n):
    # On the loss scale, L ~ V (1 - e^r) is close to V r for small s: use the normal tail.
    z = stats.norm.ppf(a)
    phi = stats.norm.pdf(z)
    se_var = np.sqrt(a * (1 - a) / n) / phi * value * s
    lam = phi / (1 - a)  # E[Z | Z > z]
    tail_var = 1 + z * lam - lam**2  # Var(Z | Z > z)
    se_es = np.sqrt((tail_var + a * (lam - z) ** 2) / (n * (1 - a))) * value * s
    return se_var, se_es


def test_fhs_converges_to_closed_form(tmp_path):
    rng = np.random.default_rng(20261121)
    dates = pd.date_range("1960-01-01", periods=N_DAYS + 1, freq="D")
    prices = pd.DataFrame(
        {"X": 100 * np.exp(np.concatenate([[0.0], np.cumsum(rng.normal(0, SIGMA, N_DAYS))]))},
        index=dates,
    )
    inputs = write_inputs(tmp_path, prices, [("X", "spot", "X", 1.0)], [("a", "X", 1000.0)],
                          [("a", 1e6)])
    for a in (0.99, 0.975):
        config = RunConfig(method="fhs", horizon=1, lookback=LOOKBACK, confidence=a,
                           garch_fit_window=LOOKBACK + 250)
        result = run_eod(inputs, config, fitter=garch_fitter())
        s = float(result.factors["sigma_1d"].iat[0])
        assert abs(s / SIGMA - 1) < 0.1  # the filter found the true volatility
        value = 1000.0 * float(prices["X"].iat[-1])
        var, es = closed_form(value, s, a)
        se_var, se_es = standard_errors(value, s, a, LOOKBACK)
        got = result.margins.iloc[0]
        assert abs(got["var"] - var) < 4 * se_var, (got["var"], var, se_var)
        assert abs(got["es"] - es) < 4 * se_es, (got["es"], es, se_es)
        # and the tolerance is tight: a few percent of the measure
        assert 4 * se_es / es < 0.06


def test_monte_carlo_matches_closed_form_at_reported_sigma(tmp_path):
    """Gaussian innovations, one-day horizon, 400,000 scenarios: VaR and ES of one spot
    position within 2% of the closed form at the reported sigma_1d."""
    rng = np.random.default_rng(99)
    dates = pd.date_range("2000-01-01", periods=3001, freq="D")
    prices = pd.DataFrame(
        {"X": 50 * np.exp(np.concatenate([[0.0], np.cumsum(rng.normal(0, 0.02, 3000))]))},
        index=dates,
    )
    inputs = write_inputs(tmp_path, prices, [("X", "spot", "X", 1.0)], [("a", "X", 10.0)],
                          [("a", 1e6)])
    config = RunConfig(method="mc", horizon=1, lookback=1000, scenarios=400_000, seed=3,
                       mc_innovations="gaussian", vol_model="ewma")
    result = run_eod(inputs, config)
    s = float(result.factors["sigma_1d"].iat[0])
    value = 10.0 * float(prices["X"].iat[-1])
    var, es = closed_form(value, s, 0.99)
    got = result.margins.iloc[0]
    assert abs(got["var"] / var - 1) < 0.02, (got["var"], var)
    assert abs(got["es"] / es - 1) < 0.02, (got["es"], es)
    assert result.manifest["scenarios"]["provenance"]["seed"] == 3
