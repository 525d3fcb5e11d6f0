"""Dependence between risk factors: shrunk correlation and Student-t copula degrees of freedom.

Input: the standardised residuals of every factor over the union of dates (NaN where a factor
has no return yet: coins listed at different times).

Correlation: pairwise-complete Pearson correlation (each pair over the dates both have), shrunk
towards the identity, ``R = (1 - d) R_pairwise + d I``. The intensity ``d`` is the Ledoit-Wolf
(2004) estimate for standardised data computed on the dates every factor has, raised if need be
until the smallest eigenvalue is at least ``min_eigenvalue``: pairwise-complete matrices need not
be positive definite, and the Monte Carlo engine needs a Cholesky factor.

Copula: with the correlation fixed, the Student-t copula's degrees of freedom maximise the copula
log-likelihood of the pseudo-observations ``u = rank / (n + 1)`` (canonical maximum likelihood,
Genest, Ghoudi and Rivest 1995) over the complete-case dates, searched on [2.05, 200]. Every
sub-vector of a t copula is a t copula with the same degrees of freedom, so for large universes
the estimate uses the ``MAX_COPULA_FACTORS`` factors with the longest histories (ties by name),
which keeps the cost bounded and the complete-case sample long.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import optimize, special

NU_BOUNDS = (2.05, 200.0)
MAX_COPULA_FACTORS = 60


@dataclass(frozen=True)
class Dependence:
    factors: tuple[str, ...]
    correlation: np.ndarray
    shrinkage: float
    copula_nu: float | None
    n_complete: int

    def to_json(self) -> dict[str, Any]:
        return {
            "method": "pairwise-complete correlation, Ledoit-Wolf shrinkage to identity",
            "factors": list(self.factors),
            "correlation": [[float(x) for x in row] for row in self.correlation],
            "shrinkage": float(self.shrinkage),
            "n_complete": int(self.n_complete),
            "copula": {"family": "t", "nu": self.copula_nu},
        }


def ledoit_wolf_intensity(x: np.ndarray) -> float:
    """Ledoit-Wolf shrinkage intensity towards the identity for standardised data x (n, p)."""
    n, p = x.shape
    if n < 2 or p < 2:
        return 0.0
    x = (x - x.mean(axis=0)) / x.std(axis=0)
    s = x.T @ x / n
    target = np.eye(p)
    d2 = np.sum((s - target) ** 2)
    # b2 = sum_t ||x_t x_t' - s||^2 / n^2, expanded so that no p x p matrix is formed per date:
    # ||x x'||^2 = (x'x)^2 and <x x', s> = x' s x.
    sq = np.sum(x * x, axis=1)
    b2 = (np.sum(sq**2) - 2.0 * np.sum((x @ s) * x) + n * np.sum(s * s)) / n**2
    b2 = min(b2, d2)
    return float(b2 / d2) if d2 > 0 else 0.0


def shrunk_correlation(
    z: pd.DataFrame, min_eigenvalue: float = 1e-6
) -> tuple[np.ndarray, float, int]:
    """Pairwise-complete correlation shrunk to the identity; returns (R, d, n_complete)."""
    pairwise = z.corr(method="pearson", min_periods=2).to_numpy()
    pairwise = np.where(np.isfinite(pairwise), pairwise, 0.0)
    np.fill_diagonal(pairwise, 1.0)
    complete = z.dropna().to_numpy()
    d = ledoit_wolf_intensity(complete) if len(complete) > 2 else 0.0
    p = pairwise.shape[0]
    while True:
        r = (1.0 - d) * pairwise + d * np.eye(p)
        if np.linalg.eigvalsh(r).min() >= min_eigenvalue or d >= 1.0:
            return r, d, len(complete)
        d = min(1.0, d + max(0.01, d * 0.1))


def distinct_values(u: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The distinct values of ``u``, and for each element of ``u`` (in its shape) the index of
    its value among them."""
    levels, at = np.unique(u, return_inverse=True)
    return levels, at.reshape(u.shape)  # numpy 2.0.0 gives u's shape, others a flat index


def _t_quantile(nu: float, u: np.ndarray,
                distinct: tuple[np.ndarray, np.ndarray] | None = None) -> np.ndarray:
    """``special.stdtrit(nu, u)``, the Student-t quantile function as scipy.stats.t.ppf computes
    it (without importing scipy.stats, which costs an eod run over half a second), once per
    distinct value of ``u`` (:func:`distinct_values`, passed in when the caller has it): the
    same bits, each value being computed alone, laid out as the ufunc lays out its result, so
    that the likelihood's sums add in the same order. Pseudo-observations are ranks over
    ``n + 1``: 50 factors over 1,000 days hold 1,000 distinct values, so a likelihood takes
    1,000 quantiles, not 50,000 (which were most of the copula fit's time)."""
    levels, at = distinct if distinct is not None else distinct_values(u)
    x = np.empty_like(u, dtype=np.float64)
    x[...] = special.stdtrit(nu, levels)[at]
    return x


def t_copula_loglik(nu: float, u: np.ndarray, corr: np.ndarray,
                    distinct: tuple[np.ndarray, np.ndarray] | None = None) -> float:
    """Log-likelihood of a Student-t copula at pseudo-observations u (n, p); ``distinct`` is
    :func:`distinct_values` of u, where the caller has it."""
    x = _t_quantile(nu, u, distinct)
    n, p = x.shape
    chol = np.linalg.cholesky(corr)
    logdet = 2.0 * np.log(np.diag(chol)).sum()
    y = np.linalg.solve(chol, x.T)
    quad = np.sum(y * y, axis=0)
    joint = (
        special.gammaln((nu + p) / 2) - special.gammaln(nu / 2) - 0.5 * p * np.log(nu * np.pi)
        - 0.5 * logdet - (nu + p) / 2 * np.log1p(quad / nu)
    )
    # univariate t log-densities, written out (scipy's logpdf is the slow part otherwise)
    margins = (
        special.gammaln((nu + 1) / 2) - special.gammaln(nu / 2) - 0.5 * np.log(nu * np.pi)
        - (nu + 1) / 2 * np.log1p(x * x / nu)
    ).sum(axis=1)
    return float(np.sum(joint - margins))


def fit_t_copula_nu(z: pd.DataFrame, corr: np.ndarray) -> float | None:
    """Degrees of freedom by canonical maximum likelihood (None with < 2 factors or dates)."""
    counts = z.notna().sum()
    order = sorted(range(z.shape[1]), key=lambda i: (-int(counts.iloc[i]), str(z.columns[i])))
    keep = sorted(order[:MAX_COPULA_FACTORS])
    complete = z.iloc[:, keep].dropna()
    if complete.shape[1] < 2 or len(complete) < 10:
        return None
    u = complete.rank().to_numpy() / (len(complete) + 1.0)
    sub_corr = corr[np.ix_(keep, keep)]
    distinct = distinct_values(u)  # the same for every nu the search tries
    # search log(nu): the likelihood is flat in nu for large nu
    res = optimize.minimize_scalar(
        lambda log_nu: -t_copula_loglik(float(np.exp(log_nu)), u, sub_corr, distinct),
        bounds=tuple(np.log(NU_BOUNDS)), method="bounded", options={"xatol": 1e-5},
    )
    return float(np.exp(res.x))


def estimate_dependence(z: pd.DataFrame) -> Dependence:
    """Correlation and t-copula degrees of freedom from standardised residuals (dates x factors)."""
    corr, d, n_complete = shrunk_correlation(z)
    nu = fit_t_copula_nu(z, corr)
    return Dependence(tuple(str(c) for c in z.columns), corr, d, nu, n_complete)
