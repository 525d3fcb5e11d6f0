"""Dependence: shrunk correlation is positive definite; the t-copula recovers its parameters."""

import numpy as np
import pandas as pd
from scipy import stats

from calibration.dependence import (
    estimate_dependence,
    ledoit_wolf_intensity,
    shrunk_correlation,
)


def test_ledoit_wolf_intensity_matches_naive_formula():
    rng = np.random.default_rng(3)
    x = rng.multivariate_normal(np.zeros(4), 0.5 * np.eye(4) + 0.5, size=400)
    xs = (x - x.mean(0)) / x.std(0)
    n, p = xs.shape
    s = xs.T @ xs / n
    b2 = sum(np.sum((np.outer(row, row) - s) ** 2) for row in xs) / n**2
    d2 = np.sum((s - np.eye(p)) ** 2)
    assert np.isclose(ledoit_wolf_intensity(x), min(b2, d2) / d2, rtol=1e-12)


def test_pairwise_complete_correlation_is_made_positive_definite():
    # Three series whose pairwise overlaps imply an impossible correlation matrix.
    rng = np.random.default_rng(5)
    n = 300
    a, b = rng.standard_normal(n), rng.standard_normal(n)
    z = pd.DataFrame({"A": np.r_[a, a, np.full(n, np.nan)],
                      "B": np.r_[a, np.full(n, np.nan), b],
                      "C": np.r_[np.full(n, np.nan), -a, b]})
    raw = z.corr().to_numpy()
    assert np.linalg.eigvalsh(raw).min() < 0  # the pairwise matrix is not a correlation matrix
    r, d, _ = shrunk_correlation(z)
    assert np.linalg.eigvalsh(r).min() >= 1e-6 and 0 < d <= 1
    np.linalg.cholesky(r)


def test_t_copula_recovers_nu_and_correlation():
    rng = np.random.default_rng(11)
    n, nu, rho = 4000, 5.0, 0.6
    corr = np.array([[1, rho], [rho, 1]])
    g = rng.multivariate_normal(np.zeros(2), corr, size=n)
    w = np.sqrt(nu / rng.chisquare(nu, size=n))[:, None]
    u = stats.t.cdf(g * w, nu)
    # normal margins on top of a t copula: only the copula carries the tail dependence
    z = pd.DataFrame(stats.norm.ppf(u), columns=["X", "Y"])
    dep = estimate_dependence(z)
    # Standard error of the canonical ML estimate of nu at n = 4000 is about 0.6 here.
    assert abs(dep.copula_nu - nu) < 2.0, dep.copula_nu
    assert abs(dep.correlation[0, 1] - rho) < 0.05
    # tail dependence of the fitted t copula against the simulated sample's upper-tail rate
    lam = 2 * stats.t.cdf(-np.sqrt((dep.copula_nu + 1) * (1 - rho) / (1 + rho)),
                          dep.copula_nu + 1)
    q = 0.99
    empirical = np.mean((u[:, 0] > q) & (u[:, 1] > q)) / (1 - q)
    assert abs(empirical - lam) < 0.15


def test_gaussian_data_gives_large_nu():
    rng = np.random.default_rng(2)
    g = rng.multivariate_normal(np.zeros(2), [[1, 0.5], [0.5, 1]], size=3000)
    assert estimate_dependence(pd.DataFrame(g, columns=["X", "Y"])).copula_nu > 15


def test_t_copula_loglik_matches_scipy_multivariate_t():
    from calibration.dependence import t_copula_loglik

    rng = np.random.default_rng(4)
    u = rng.uniform(size=(80, 3))
    corr = np.array([[1.0, 0.3, -0.2], [0.3, 1.0, 0.5], [-0.2, 0.5, 1.0]])
    for nu in (2.5, 4.0, 30.0):
        x = stats.t.ppf(u, nu)
        joint = stats.multivariate_t(loc=np.zeros(3), shape=corr, df=nu).logpdf(x)
        expected = float(np.sum(joint - stats.t.logpdf(x, nu).sum(axis=1)))
        np.testing.assert_allclose(t_copula_loglik(nu, u, corr), expected, rtol=1e-10)


def test_t_quantile_once_per_distinct_value_is_scipys_bits():
    # the copula fit's t quantiles, computed once per distinct value: the same bits and the
    # same layout as one call of scipy's ufunc over every element, for row-major, column-major
    # (pandas gives that), sliced and reversed inputs, for pseudo-observations (ranks over
    # n + 1, ties averaged) and for values that are all distinct
    from scipy import special

    from calibration import dependence

    rng = np.random.default_rng(3)
    draws = pd.DataFrame(rng.standard_t(4.0, (1000, 40)))
    draws.iloc[::7, 3] = 0.25  # ties, ranked as their average
    ranks = draws.rank().to_numpy() / (len(draws) + 1.0)
    for u in (ranks, rng.uniform(1e-6, 1 - 1e-6, (300, 40))):
        for values in (u, np.ascontiguousarray(u), np.asfortranarray(u), u[:, ::2],
                       np.asfortranarray(u)[::-1]):
            for nu in (2.05, 4.3, 150.0):
                expected = special.stdtrit(nu, values)
                for distinct in (None, dependence.distinct_values(values)):
                    got = dependence._t_quantile(nu, values, distinct)
                    # the layout too: the likelihood's sums add in memory order
                    assert got.shape == expected.shape and got.strides == expected.strides
                    np.testing.assert_array_equal(got.view(np.int64),
                                                  expected.view(np.int64))
