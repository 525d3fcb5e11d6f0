"""Monte Carlo (``mc``) scenario sets: h-day paths through each factor's variance recursion.

Each scenario is, per factor, an h-day path that starts from today's conditional variance
(``sigma2_next`` of the filter) and updates it after every simulated day with the factor's own
calibrated recursion, exactly as filtered historical simulation does
(:func:`riskmodel.scenarios.kernels.fhs_paths`)::

    var_0 = sigma2_next;  eps_k = sqrt(var_k) x_k;  r_k = mu + eps_k;
    var_{k+1} = variance_step(var_k, eps_k);        shock = r_0 + ... + r_{h-1}

in the factor's return units (log return, or price difference for absolute-return factors).
Only the innovations ``x_k`` (unit variance, independent across days) are drawn at random:

``"t-copula"``
    Correlated normals ``g = L z`` (``L`` the Cholesky factor of ``correlation``) and one
    mixing variable per scenario-day shared by all factors, ``W = sqrt(nu / chi2_nu)``;
    ``u = T_nu(g W)`` has the Student-t copula with ``nu = copula_nu`` and then
    ``x_f = F_f^{-1}(u_f)`` has each factor's own standardised marginal: normal, arch's
    standardised Student's t or arch's Hansen skew-t (``FactorParams.dist``).
``"gaussian"``
    The Gaussian copula with the same marginals: ``u = Phi(g)``. Normal marginals under it are
    the correlated normals themselves (no transform at all).
``"bootstrap"``
    Filtered bootstrap: each scenario-day draws one whole historical day (a row of
    ``std_resid`` with no NaN) with replacement; all factors take that same day, so the
    dependence is the data's own and ``correlation``/``copula_nu`` are not used. The residuals
    are used as they are (as FHS does), not rescaled to unit variance.

Marginal transforms without scipy in the hot loop: for every distinct (copula, marginal) pair
the composite map ``y -> x = F^{-1}(C(y))`` (``y = g W``, ``C`` the copula's univariate cdf,
``T_nu`` or ``Phi``) is tabulated once, from accurate tail probabilities and closed-form
densities, and read off in numba (:mod:`riskmodel.scenarios.mc_kernels`):

- body ``|y| <= A`` (``A >= 4``, further out if the skew-t's kink or ``x``'s sign change lies
  there): quintic Hermite interpolation of ``x`` with its exact first and second derivatives
  (``x' = c(y) / f(x)``) on a uniform grid of step at most ``BODY_STEP``; for a skew-t, the kink
  of its density (``x = -a/b``) is a grid node, so every piece is smooth;
- tails ``|y| > A``: the same in ``(ln|y|, ln|x|)``, step at most ``TAIL_STEP``, out to the
  point where the copula's tail probability is ``P_MIN`` (1e-20); power-law tails are nearly
  linear there;
- beyond that (probability below 2e-20 per draw): ``ln|x|`` continues linearly in ``ln|y|``, the
  exact asymptote when copula and marginal are both Student's t; for a normal marginal under a
  t copula it overstates the move (conservative), for a Student-t marginal under the Gaussian
  copula it understates it.

Accuracy against scipy/arch (``tests/scenarios/test_monte_carlo.py`` checks it; run this module
as a script to print it): relative error of ``x`` below 2e-9 for ``|x| >= 1`` and absolute error
below 2e-9 for ``|x| < 1`` over the whole tabulated range (typically ~1e-11 in the body), for
copula nu in [2.05, 200] or Gaussian, marginal nu in [2.05, 100], skew in [-0.95, 0.95].
Symmetric marginals give exactly antisymmetric tables (``x(-y) = -x(y)`` bitwise).

Random numbers and reproducibility: scenarios come in blocks of ``block_size``; block b draws
from ``SeedSequence(seed).spawn(...)[b]`` (child b, whatever the number of blocks) through its own
``Generator(PCG64)`` streams: child (b, 0) the normals (or the bootstrap's day indices), child
(b, 1) the chi-squares, day after day. Every block is drawn whole (the last one is truncated
after simulation) and every array operation is per block with the same shapes, so scenario i
depends only on ``(seed, block_size, settings, i)``: the first m scenarios of a run with n > m
are those of a run with m, and neither the number of numba threads nor the number of Python
threads filling blocks changes a bit of the result. ``block_size`` is part of what a seed
means: keep the default (2048) to reproduce a run.

Antithetic variates: scenarios ``2i`` and ``2i + 1`` use ``z`` and ``-z`` with the same
chi-square (so ``g W`` and ``-g W``); for symmetric marginals the innovations are exactly
``x`` and ``-x``. Not offered for the bootstrap: negating historical days would impose a symmetry
the residuals do not have (it would remove their skew), so ``antithetic=True`` raises there.

Memory: the state is three arrays of ``n_blocks x n_factors x block_size`` doubles (this day's
innovations, the variances, the running sums), i.e. about 3 x 41 MB for 10,000 x 500, whatever
the horizon: days are generated one at a time and accumulated.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numba
import numpy as np
import pandas as pd
from scipy import special
from scipy.linalg import blas

from riskmodel.scenarios.mc_kernels import N_HP, bootstrap_day, copula_day
from riskmodel.scenarios.scenario_set import ScenarioSet
from riskmodel.volatility.filters import FilteredFactor

INNOVATIONS = ("t-copula", "gaussian", "bootstrap")
BODY_STEP = 0.25  # largest body grid step in y
TAIL_STEP = 0.25  # largest tail grid step in ln|y|
BODY_MIN = 4.0  # the body covers at least |y| <= 4
P_MIN = 1e-20  # the tail grid ends where the copula's tail probability is P_MIN
GENERATOR = "numpy PCG64; SeedSequence(seed) child b per block of block_size, " \
    "grandchildren (b, 0) normals or day indices and (b, 1) chi-squares"

_LOG_SQRT_2PI = 0.5 * math.log(2.0 * math.pi)


# ----------------------------------------------------------------------------------------------
# Marginals and copulas: exact (scipy) evaluation, used to build the tables and as the reference.


@dataclass(frozen=True)
class Marginal:
    """A standardised (zero mean, unit variance) innovation distribution, as in arch.

    ``dist`` is ``"normal"``, ``"t"`` (``nu``) or ``"skewt"`` (``nu``, ``skew`` = arch's lambda);
    a Student's t is computed as the skew-t with lambda 0 (the same distribution).
    """

    dist: str
    nu: float = math.inf
    skew: float = 0.0

    def __post_init__(self) -> None:
        if self.dist not in ("normal", "t", "skewt"):
            raise ValueError(f"dist = {self.dist!r} must be one of normal, t, skewt")
        if self.dist != "normal" and not (math.isfinite(self.nu) and self.nu > 2.0):
            raise ValueError(f"nu = {self.nu!r} must be a finite number > 2 for {self.dist}")
        if not -1.0 < self.skew < 1.0 or (self.dist != "skewt" and self.skew != 0.0):
            raise ValueError(f"skew = {self.skew!r} must be in (-1, 1), and 0 unless skewt")

    @property
    def symmetric(self) -> bool:
        return self.skew == 0.0

    def _consts(self) -> tuple[float, float, float, float]:
        """Hansen's (1994) constants as arch computes them: (log c, a, b, sqrt(1 - 2/nu))."""
        nu, lam = self.nu, self.skew
        log_c = special.gammaln((nu + 1) / 2) - special.gammaln(nu / 2) \
            - 0.5 * math.log(math.pi * (nu - 2))
        a = 4.0 * lam * math.exp(log_c) * (nu - 2) / (nu - 1)
        b = math.sqrt(1.0 + 3.0 * lam * lam - a * a)
        return float(log_c), a, b, math.sqrt(1.0 - 2.0 / nu)

    def kink_prob(self) -> float:
        """cdf at the point where the skew-t density switches scale (``x = -a/b``)."""
        return 0.5 if self.dist == "normal" else (1.0 - self.skew) / 2.0

    def quantile_lower(self, p: np.ndarray) -> np.ndarray:
        """``F^{-1}(p)`` for ``p`` in (0, 1/2] (accurate for tiny ``p``)."""
        p = np.asarray(p, dtype=np.float64)
        if self.dist == "normal":
            return special.ndtri(p)
        _, a, b, s = self._consts()
        nu, lam = self.nu, self.skew
        left = p < (1.0 - lam) / 2.0
        t_left = special.stdtrit(nu, np.where(left, p / (1.0 - lam), 0.25))
        t_right = special.stdtrit(nu, np.where(left, 0.5, 0.5 + (p - (1 - lam) / 2) / (1 + lam)))
        return np.where(left, t_left * (1 - lam) * s - a, t_right * (1 + lam) * s - a) / b

    def quantile_upper(self, q: np.ndarray) -> np.ndarray:
        """``F^{-1}(1 - q)`` for ``q`` in (0, 1/2] (accurate for tiny ``q``)."""
        q = np.asarray(q, dtype=np.float64)
        if self.dist == "normal":
            return -special.ndtri(q)
        _, a, b, s = self._consts()
        nu, lam = self.nu, self.skew
        right = q < (1.0 + lam) / 2.0
        t_right = -special.stdtrit(nu, np.where(right, q / (1.0 + lam), 0.25))
        t_left = special.stdtrit(nu, np.where(right, 0.25, (1.0 - q) / (1.0 - lam)))
        return np.where(right, t_right * (1 + lam) * s - a, t_left * (1 - lam) * s - a) / b

    def logpdf_and_score(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``ln f(x)`` and ``d ln f / dx`` (closed forms)."""
        if self.dist == "normal":
            return -0.5 * x * x - _LOG_SQRT_2PI, -x
        log_c, a, b, _ = self._consts()
        nu, lam = self.nu, self.skew
        scale = np.where(x < -a / b, 1.0 - lam, 1.0 + lam)
        z = (b * x + a) / scale
        logpdf = math.log(b) + log_c - (nu + 1) / 2 * np.log1p(z * z / (nu - 2))
        score = -(nu + 1) * z * (b / scale) / (nu - 2 + z * z)
        return logpdf, score


def _copula_tail(nu: float, a: np.ndarray) -> np.ndarray:
    """``C(-a)``: the copula's univariate tail probability (t_nu, or normal for nu = inf)."""
    return special.ndtr(-a) if math.isinf(nu) else special.stdtr(nu, -a)


def _copula_quantile(nu: float, p: float) -> float:
    return float(special.ndtri(p) if math.isinf(nu) else special.stdtrit(nu, p))


def _copula_logpdf_and_score(nu: float, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    if math.isinf(nu):
        return -0.5 * y * y - _LOG_SQRT_2PI, -y
    k = special.gammaln((nu + 1) / 2) - special.gammaln(nu / 2) - 0.5 * math.log(nu * math.pi)
    return k - (nu + 1) / 2 * np.log1p(y * y / nu), -(nu + 1) * y / (nu + y * y)


def composite_quantile(y: np.ndarray, copula_nu: float, marginal: Marginal) -> np.ndarray:
    """The exact map ``x = F^{-1}(C(y))`` with scipy (reference for the tables; slow).

    Works from tail probabilities on both sides, so it stays accurate where ``C(y)`` rounds to
    1 in double precision.

    Parameters
    ----------
    y : ndarray of shape (n,)
    copula_nu : float, the copula's degrees of freedom (``inf``: Gaussian copula).
    marginal : the factor's standardised innovation distribution.

    Returns
    -------
    ndarray of shape (n,)
    """
    y = np.asarray(y, dtype=np.float64)
    p = _copula_tail(copula_nu, np.abs(y))
    lower = y < 0
    out = np.empty_like(y)
    out[lower] = marginal.quantile_lower(p[lower])
    out[~lower] = marginal.quantile_upper(p[~lower])
    return out


# ----------------------------------------------------------------------------------------------
# Tables.


def _quintic_coefficients(v: np.ndarray, d: np.ndarray, s: np.ndarray) -> np.ndarray:
    """Coefficients (n - 1, 6) of the quintic Hermite pieces through n nodes.

    ``v``, ``d``, ``s``: values, first and second derivatives already scaled by the step
    (``h f'``, ``h^2 f''``).
    """
    dv = v[1:] - v[:-1]
    d0, d1, s0, s1 = d[:-1], d[1:], s[:-1], s[1:]
    return np.column_stack([
        v[:-1], d0, 0.5 * s0,
        10 * dv - 6 * d0 - 4 * d1 - 1.5 * s0 + 0.5 * s1,
        -15 * dv + 8 * d0 + 7 * d1 + 1.5 * s0 - s1,
        6 * dv - 3 * d0 - 3 * d1 - 0.5 * s0 + 0.5 * s1,
    ])


def _derivatives(sign: float, a: np.ndarray, copula_nu: float, marginal: Marginal
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """x, dx/da and d2x/da2 along one half (``y = sign * a``)."""
    p = _copula_tail(copula_nu, a)
    x = marginal.quantile_upper(p) if sign > 0 else marginal.quantile_lower(p)
    lc, sc = _copula_logpdf_and_score(copula_nu, sign * a)
    lm, sm = marginal.logpdf_and_score(x)
    dx = np.exp(lc - lm)  # dx/dy = c(y) / f(x), from C(y) = F(x)
    d2x = dx * (sc - sm * dx)
    return x, sign * dx, d2x


def _half_table(sign: float, copula_nu: float, marginal: Marginal
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Body coefficients, tail coefficients and the hp row of one half (see mc_kernels)."""
    # The kink of the skew-t density sits at y_k; put it on a node so every piece is smooth.
    y_k = _copula_quantile(copula_nu, marginal.kink_prob())
    kink = abs(y_k) if (marginal.dist == "skewt" and y_k * sign > 0) else 0.0
    # Body end: |x| >= 1/2 with the tail's sign there, so ln|x| is smooth in the tail.
    cands = np.array([4.0, 5.0, 6.0, 8.0, 10.0, 12.0, 16.0, 24.0, 32.0, 48.0, 64.0])
    cands = cands[cands >= max(BODY_MIN, 1.25 * kink + 0.5)]
    p = _copula_tail(copula_nu, cands)
    xc = marginal.quantile_upper(p) if sign > 0 else marginal.quantile_lower(p)
    ok = np.nonzero(sign * xc >= 0.5)[0]
    if not len(ok):
        raise ValueError(f"cannot tabulate {marginal} under copula nu={copula_nu}")
    body_end = float(cands[ok[0]])
    if kink > 0:
        h = kink / math.ceil(kink / BODY_STEP)
        n_body = math.ceil(body_end / h - 1e-9)
    else:
        n_body = math.ceil(body_end / BODY_STEP)
        h = body_end / n_body
    a = h * np.arange(n_body + 1)
    if kink > 0:
        a[round(kink / h)] = kink
    x, dx, d2x = _derivatives(sign, a, copula_nu, marginal)
    body = _quintic_coefficients(x, h * dx, h * h * d2x)

    a_end = max(-_copula_quantile(copula_nu, P_MIN), 2.0 * a[-1])
    t0 = math.log(a[-1])
    n_tail = max(2, math.ceil((math.log(a_end) - t0) / TAIL_STEP))
    ht = (math.log(a_end) - t0) / n_tail
    t = t0 + ht * np.arange(n_tail + 1)
    at = np.exp(t)
    at[0] = a[-1]
    x, dx, d2x = _derivatives(sign, at, copula_nu, marginal)
    r = at * dx / x  # dw/dt, w = ln|x|, t = ln a
    w = np.log(np.abs(x))
    w_tt = r + at * at * d2x / x - r * r
    tail = _quintic_coefficients(w, ht * r, ht * ht * w_tt)
    hp = np.array([1.0 / h, n_body, t0, 1.0 / ht, n_tail, w[-1], r[-1] * ht, sign])
    return body, tail, hp


@functools.lru_cache(maxsize=4096)
def _table(copula_nu: float, marginal: Marginal) -> tuple[np.ndarray, ...]:
    upper = _half_table(1.0, copula_nu, marginal)
    if marginal.symmetric:  # mirror: exactly antisymmetric, x(-y) = -x(y)
        lower = (-upper[0], upper[1], upper[2] * np.array([1, 1, 1, 1, 1, 1, 1, -1.0]))
    else:
        lower = _half_table(-1.0, copula_nu, marginal)
    return lower + upper


@dataclass(frozen=True)
class QuantileTables:
    """Stacked tables, the layout :mod:`riskmodel.scenarios.mc_kernels` reads.

    Attributes
    ----------
    body : ndarray of shape (n_tables, 2, n_body_max, 6)
    tail : ndarray of shape (n_tables, 2, n_tail_max, 6)
    hp : ndarray of shape (n_tables, 2, 8)
    copula_nu : float (``inf``: Gaussian copula).
    marginals : tuple of Marginal, length n_tables.
    """

    body: np.ndarray
    tail: np.ndarray
    hp: np.ndarray
    copula_nu: float
    marginals: tuple[Marginal, ...]

    def __call__(self, y: np.ndarray, k: int) -> np.ndarray:
        """Table k applied to ``y`` (ndarray of shape (n,)) with the numba kernel."""
        from riskmodel.scenarios.mc_kernels import eval_table

        return eval_table(np.ascontiguousarray(y, dtype=np.float64), k, self.body, self.tail,
                          self.hp)


def build_quantile_tables(copula_nu: float, marginals: Sequence[Marginal]) -> QuantileTables:
    """Tabulate ``y -> F^{-1}(C(y))`` for each marginal under one copula.

    Tables are cached per (copula nu, marginal), so a rerun with the same parameters costs only
    the stacking.

    Parameters
    ----------
    copula_nu : float > 0, the t copula's degrees of freedom; ``inf`` for the Gaussian copula.
    marginals : sequence of Marginal, length n_tables.
    """
    if not (copula_nu > 0):
        raise ValueError(f"copula_nu = {copula_nu!r} must be > 0")
    halves = [_table(float(copula_nu), m) for m in marginals]
    n_t = len(halves)
    nb = max(max(h[0].shape[0], h[3].shape[0]) for h in halves) if n_t else 1
    nt = max(max(h[1].shape[0], h[4].shape[0]) for h in halves) if n_t else 1
    body = np.zeros((n_t, 2, nb, 6))
    tail = np.zeros((n_t, 2, nt, 6))
    hp = np.zeros((n_t, 2, N_HP))
    for k, parts in enumerate(halves):
        for half in (0, 1):
            b, t, p = parts[3 * half: 3 * half + 3]
            body[k, half, : b.shape[0]] = b
            tail[k, half, : t.shape[0]] = t
            hp[k, half] = p
    return QuantileTables(body, tail, hp, float(copula_nu), tuple(marginals))


def marginal_of(params: Any) -> Marginal:
    """The :class:`Marginal` of a :class:`~riskmodel.volatility.params.FactorParams`."""
    if params.dist == "normal":
        return Marginal("normal")
    if params.dist == "t":
        return Marginal("t", float(params.nu))
    return Marginal("skewt", float(params.nu), float(params.skew))


# ----------------------------------------------------------------------------------------------
# The generator.


def _check_int(name: str, value: Any, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{name} = {value!r} must be an integer >= {minimum}")
    return int(value)


def _cholesky(correlation: np.ndarray | None, n_factors: int) -> np.ndarray | None:
    """Fortran-ordered lower Cholesky factor, or None for the identity."""
    if correlation is None:
        return None
    c = np.asarray(correlation, dtype=np.float64)
    if c.shape != (n_factors, n_factors):
        raise ValueError(f"correlation has shape {c.shape}, expected ({n_factors}, {n_factors})")
    if not np.isfinite(c).all():
        raise ValueError("correlation must be finite")
    if np.abs(np.diag(c) - 1.0).max() > 1e-8:
        raise ValueError(f"correlation diagonal must be 1 (found {np.diag(c).min()!r} .. "
                         f"{np.diag(c).max()!r})")
    if np.abs(c - c.T).max() > 1e-8:
        raise ValueError("correlation must be symmetric")
    if np.array_equal(c, np.eye(n_factors)):
        return None
    try:
        return np.asfortranarray(np.linalg.cholesky(c))
    except np.linalg.LinAlgError:
        raise ValueError("correlation is not positive definite (no Cholesky factor)") from None


def _bootstrap_days(std_resid: pd.DataFrame | None, filtered: Mapping[str, FilteredFactor],
                    factors: Sequence[str]) -> tuple[np.ndarray, dict[str, Any]]:
    """Complete historical days, factor-major (n_factors, n_days), and their provenance."""
    if std_resid is None:
        std_resid = pd.concat({f: filtered[f].std_resid for f in factors}, axis=1)
    missing = [f for f in factors if f not in std_resid.columns]
    if missing:
        raise ValueError(f"std_resid has no column for factor(s) {missing}")
    frame = std_resid.loc[:, list(factors)]
    values = frame.to_numpy(dtype=np.float64)
    bad = np.isinf(values)
    if bad.any():
        r, c = np.argwhere(bad)[0]
        raise ValueError(f"std_resid: date {frame.index[r]}, column {factors[c]!r}: "
                         f"value {values[r, c]!r} is not finite")
    complete = ~np.isnan(values).any(axis=1)
    if not complete.any():
        raise ValueError("std_resid has no date on which every factor has a residual")
    days = frame.index[complete]
    prov = {"bootstrap_days": int(complete.sum()), "bootstrap_first": str(days[0]),
            "bootstrap_last": str(days[-1])}
    return np.ascontiguousarray(values[complete].T), prov


def monte_carlo_scenarios(
    filtered: Mapping[str, FilteredFactor],
    factors: Sequence[str],
    correlation: np.ndarray | None,
    horizon: int,
    n_scenarios: int,
    seed: int,
    *,
    innovations: str = "t-copula",
    copula_nu: float | None = None,
    antithetic: bool = False,
    std_resid: pd.DataFrame | None = None,
    block_size: int = 2048,
) -> ScenarioSet:
    """Monte Carlo h-day scenarios through each factor's variance recursion (module docstring).

    Parameters
    ----------
    filtered : factor -> its filter output (``params``, ``sigma2_next``, ``mu``, ``std_resid``).
    factors : sequence of str, length n_factors: the factors to simulate, in this order.
    correlation : ndarray of shape (n_factors, n_factors) or None
        Correlation of the copula's normals (rows and columns in ``factors`` order); None is the
        identity. Not used by the bootstrap.
    horizon : int >= 1, days per path.
    n_scenarios : int >= 1.
    seed : int >= 0, the root of the ``SeedSequence``.
    innovations : ``"t-copula"`` (default), ``"gaussian"`` or ``"bootstrap"``.
    copula_nu : float > 0 or None
        The t copula's degrees of freedom (``inf``: Gaussian copula). Required for
        ``"t-copula"`` with more than one factor; with one factor the copula cannot matter and
        None means the Gaussian one.
    antithetic : bool
        Scenarios ``2i``, ``2i + 1`` use opposite normals and the same chi-square; needs an even
        ``block_size`` and ``n_scenarios``; not for the bootstrap.
    std_resid : DataFrame (dates x factors) or None
        Standardised residuals for the bootstrap; only dates where every factor has a value are
        drawn. None: the filters' own ``std_resid`` on the union of their dates.
    block_size : int >= 1
        Scenarios per random stream; part of what a seed means (keep the default).

    Returns
    -------
    ScenarioSet
        ``shocks`` of shape (n_scenarios, n_factors), kind ``"mc"``, labels ``"mc-000000"``,
        ..., provenance with the seed, generator, innovations, copula_nu, antithetic,
        block_size.
    """
    if innovations not in INNOVATIONS:
        raise ValueError(f"innovations = {innovations!r} must be one of {', '.join(INNOVATIONS)}")
    factors = [str(f) for f in factors]
    if not factors or len(set(factors)) != len(factors):
        raise ValueError(f"factors = {factors!r} must be non-empty and unique")
    absent = [f for f in factors if f not in filtered]
    if absent:
        raise ValueError(f"no filtered volatility for factor(s) {absent}")
    horizon = _check_int("horizon", horizon, 1)
    n_scenarios = _check_int("n_scenarios", n_scenarios, 1)
    seed = _check_int("seed", seed, 0)
    block_size = _check_int("block_size", block_size, 1)
    if antithetic:
        if innovations == "bootstrap":
            raise ValueError("antithetic = True is not available for bootstrap innovations: "
                             "negated historical days would remove their skew")
        if block_size % 2 or n_scenarios % 2:
            raise ValueError(f"antithetic = True needs an even block_size and n_scenarios "
                             f"(block_size={block_size}, n_scenarios={n_scenarios})")
    n_f = len(factors)
    ff = [filtered[f] for f in factors]
    sigma2 = np.array([f.sigma2_next for f in ff], dtype=np.float64)
    if not (np.isfinite(sigma2).all() and (sigma2 >= 0).all()):
        raise ValueError(f"sigma2_next must be finite and >= 0 (got {sigma2.tolist()!r})")
    rec = np.array([f.params.recursion() for f in ff], dtype=np.float64).reshape(n_f, 6)
    code = rec[:, 0].astype(np.int64)
    omega, alpha, gamma, beta, decay = (np.ascontiguousarray(rec[:, k]) for k in range(1, 6))
    mu = np.array([f.mu for f in ff], dtype=np.float64)

    prov: dict[str, Any] = {
        "seed": seed, "generator": GENERATOR, "innovations": innovations, "copula_nu": None,
        "antithetic": bool(antithetic), "block_size": block_size,
    }
    nu_eff = math.inf
    chol = None
    tables = None
    zt = None
    if innovations == "bootstrap":
        zt, extra = _bootstrap_days(std_resid, filtered, factors)
        prov.update(extra)
        prov["dependence"] = "historical days (correlation and copula_nu not used)"
    else:
        if innovations == "t-copula":
            if copula_nu is None and n_f > 1:
                raise ValueError("copula_nu is required for innovations = 't-copula' with "
                                 "more than one factor")
            if copula_nu is not None:
                nu_eff = float(copula_nu)
                if not nu_eff > 0:
                    raise ValueError(f"copula_nu = {copula_nu!r} must be > 0")
        prov["copula_nu"] = None if math.isinf(nu_eff) else nu_eff
        prov["copula"] = "gaussian" if math.isinf(nu_eff) else "t"
        chol = _cholesky(correlation, n_f)
        marg = [marginal_of(f.params) for f in ff]
        # Normal marginals under the Gaussian copula are the normals themselves (k = -1).
        needs = [not (math.isinf(nu_eff) and m.dist == "normal") for m in marg]
        distinct = list(dict.fromkeys(m for m, n in zip(marg, needs) if n))
        tables = build_quantile_tables(nu_eff, distinct)
        pos = {m: k for k, m in enumerate(distinct)}
        table_of = np.array([pos[m] if n else -1 for m, n in zip(marg, needs)], dtype=np.int64)
        prov["tables"] = {"distinct": len(distinct), "body_step": BODY_STEP,
                          "tail_step": TAIL_STEP, "p_min": P_MIN}

    n_blocks = -(-n_scenarios // block_size)
    children = np.random.SeedSequence(seed).spawn(n_blocks)
    streams = [[np.random.Generator(np.random.PCG64(s)) for s in c.spawn(2)] for c in children]
    var = np.empty((n_blocks, n_f, block_size))
    var[:] = sigma2[None, :, None]
    total = np.zeros((n_blocks, n_f, block_size))
    n_half = block_size // 2 if antithetic else block_size

    if zt is not None:
        idx = np.empty((n_blocks, block_size), dtype=np.int64)

        def fill(b: int) -> None:
            streams[b][0].integers(0, zt.shape[1], size=block_size, out=idx[b])

    else:
        z = np.empty((n_blocks, n_f, block_size))
        w = np.ones((n_blocks, block_size))
        t_copula = not math.isinf(nu_eff)

        def fill(b: int) -> None:
            zb = z[b]
            if antithetic:
                half = streams[b][0].standard_normal((n_f, n_half))
                zb[:, 0::2] = half
                np.negative(half, out=zb[:, 1::2])
            else:
                streams[b][0].standard_normal(out=zb)
            if t_copula:
                chi2 = 2.0 * streams[b][1].standard_gamma(0.5 * nu_eff, size=n_half)
                # nu / chi2 with chi2 kept off 0 (reachable only for nu << 1)
                wb = np.sqrt(nu_eff / np.maximum(chi2, np.finfo(np.float64).tiny))
                w[b] = np.repeat(wb, 2) if antithetic else wb

    workers = max(1, min(numba.get_num_threads(), n_blocks))
    with ThreadPoolExecutor(max_workers=workers) as pool:
        for day in range(horizon):
            # Each block fills from its own streams: the thread schedule cannot change a draw.
            list(pool.map(fill, range(n_blocks)))
            update = day + 1 < horizon
            if zt is not None:
                bootstrap_day(zt, idx, var, total, mu, code, omega, alpha, gamma, beta, decay,
                              update)
                continue
            if chol is not None:
                # g = L z per scenario, in place: z[b] is (n_f, block) C-ordered, i.e. the
                # Fortran (block, n_f) matrix Z, and Z L^T is the triangular product (BLAS,
                # outside numba; one call per block with identical shapes).
                for b in range(n_blocks):
                    blas.dtrmm(1.0, chol, z[b].T, side=1, lower=1, trans_a=1, overwrite_b=1)
            assert tables is not None
            copula_day(z, w, table_of, tables.body, tables.tail, tables.hp, var, total, mu,
                       code, omega, alpha, gamma, beta, decay, update)

    shocks = np.ascontiguousarray(total.transpose(0, 2, 1).reshape(-1, n_f)[:n_scenarios])
    width = max(6, len(str(n_scenarios - 1)))
    labels = np.array([f"mc-{i:0{width}d}" for i in range(n_scenarios)])
    return ScenarioSet(shocks=shocks, factors=tuple(factors), labels=labels, kind="mc",
                       horizon=horizon, provenance=prov)


def _accuracy_report() -> None:  # pragma: no cover - documentation aid
    """Print the tables' largest errors against :func:`composite_quantile` (scipy)."""
    cases = [(nu_c, m) for nu_c in (2.05, 4.0, 10.0, 200.0, math.inf) for m in (
        Marginal("normal"), Marginal("t", 2.05), Marginal("t", 5.0), Marginal("t", 100.0),
        Marginal("skewt", 2.5, -0.95), Marginal("skewt", 6.0, 0.3), Marginal("skewt", 30, 0.95),
    )]
    for nu_c, m in cases:
        tab = build_quantile_tables(nu_c, [m])
        a_end = -_copula_quantile(nu_c, P_MIN)
        y = np.concatenate([np.linspace(-8, 8, 200_001), np.geomspace(4, a_end, 20_001),
                            -np.geomspace(4, a_end, 20_001)])
        ref = composite_quantile(y, nu_c, m)
        got = tab(y, 0)
        err = np.abs(got - ref) / np.maximum(np.abs(ref), 1.0)
        print(f"copula nu={nu_c:<6} {m.dist:6} nu={m.nu:<6} skew={m.skew:<5} "
              f"max err {err.max():.2e}")


if __name__ == "__main__":  # pragma: no cover
    _accuracy_report()
