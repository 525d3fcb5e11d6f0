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
``T_nu`` or ``Phi``) is tabulated once and read off in numba
(:mod:`riskmodel.scenarios.mc_kernels`). Each half (``y < 0``, ``y >= 0``) has:

- a body ``|y| <= A`` (``A >= 4``; further out where needed so that beyond it ``x`` has the
  tail's sign with ``|x| >= 0.1`` and a skew-t's kink lies inside): quintic Hermite pieces of
  ``x`` through its exact value, first and second derivative (``x' = c(y) / f(x)``,
  ``x'' = x' (c'/c - x' f'/f)``) on a uniform grid; a skew-t's density kink (``x = -a/b``,
  cdf ``(1 - lambda)/2``) is put on a node, so every piece is smooth;
- a tail ``|y| > A``: the same in ``(ln|y|, ln|x|)``, where power-law tails are nearly linear,
  out to copula tail probability ``P_MIN`` = 1e-20;
- beyond that (probability 2e-20 per draw, ~1e-12 in a whole 10,000 x 500 x 10 run):
  ``ln|x|`` continues linearly in ``ln|y|`` with the last node's slope (the exact asymptote
  when copula and marginal are both Student's t; for a normal marginal under a t copula it
  overstates the move, for a fat-tailed marginal under the Gaussian copula it understates it).

Every grid starts at step 0.25 (``BODY_STEP``, ``TAIL_STEP``) and is halved, per half and per
region, until every piece's error at its midpoint (where a quintic Hermite piece's error peaks)
is below ``TOLERANCE`` = 1e-8 against scipy: relative for ``|x| >= 1``, absolute below. The
scipy reference (:func:`composite_quantile`) works from tail probabilities (``stdtr``/``ndtr``
of ``-|y|``, then ``stdtrit``/``ndtri``), so it is accurate in both tails, and corrects scipy's
``stdtrit``, which is off by up to 2e-8 near the median, with one Newton step. Checked on dense
grids (tests, and 400 random cases: copula nu in [2.05, 1000] or Gaussian, marginal nu in
[2.05, 200], lambda in [-0.98, 0.98]): largest error 1e-8 over the tabulated range; against
arch's ``ppf`` in the body within 1e-7 (arch inherits scipy's 2e-8). Tables for 333 distinct
marginals take about 0.04 s and are cached. Symmetric marginals give exactly antisymmetric
tables (``x(-y) = -x(y)`` bitwise).

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
innovations, the variances, the running sums), i.e. about 3 x 41 MB for 10,000 x 500, plus the
result, whatever the horizon: days are generated one at a time and accumulated.

Threads: blocks are drawn and correlated (numpy, then one BLAS triangular product per block,
BLAS held at one thread) in a pool of ``numba.get_num_threads()`` Python threads, pipelined
with the numba kernel of the blocks already drawn.
"""

from __future__ import annotations

import contextlib
import math
import threading
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numba
import numpy as np
import pandas as pd
from scipy import special
from scipy.linalg import blas
from threadpoolctl import threadpool_limits

from riskmodel.scenarios.mc_kernels import (
    HP_SIGN,
    N_HP,
    bootstrap_day,
    copula_day,
    eval_table,
    gather_shocks,
)
from riskmodel.scenarios.scenario_set import ScenarioSet
from riskmodel.volatility.filters import FilteredFactor

INNOVATIONS = ("t-copula", "gaussian", "bootstrap")
BODY_STEP = 0.25  # body grid step in y before refinement
TAIL_STEP = 0.25  # tail grid step in ln|y| before refinement
TOLERANCE = 1e-8  # refine a grid until every piece's midpoint error is below this
MAX_REFINE = 8  # at most this many halvings of a grid step
MAX_ERROR = 1e-6  # a table that cannot get below this after MAX_REFINE halvings is an error
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

    ``dist`` is ``"normal"``, ``"t"`` (``nu``) or ``"skewt"`` (``nu``, ``skew`` = arch's lambda,
    Hansen 1994); a Student's t is computed as the skew-t with lambda 0 (the same distribution).
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


class _MarginalArrays:
    """Per-table constants of a list of marginals, for vectorised evaluation.

    Hansen's constants as arch computes them: ``log c = lnG((nu+1)/2) - lnG(nu/2)
    - ln(pi (nu-2)) / 2``, ``a = 4 lambda c (nu-2)/(nu-1)``, ``b = sqrt(1 + 3 lambda^2 - a^2)``,
    and ``s = sqrt(1 - 2/nu)`` (the t's unit-variance scale). Normal marginals carry dummies.
    """

    def __init__(self, marginals: Sequence[Marginal]) -> None:
        self.normal = np.array([m.dist == "normal" for m in marginals], dtype=bool)
        nu = np.array([5.0 if m.dist == "normal" else m.nu for m in marginals], dtype=np.float64)
        lam = np.array([m.skew for m in marginals], dtype=np.float64)
        self.nu, self.lam = nu, lam
        self.log_c = special.gammaln((nu + 1) / 2) - special.gammaln(nu / 2) \
            - 0.5 * np.log(np.pi * (nu - 2))
        self.a = 4.0 * lam * np.exp(self.log_c) * (nu - 2) / (nu - 1)
        self.b = np.sqrt(1.0 + 3.0 * lam * lam - self.a * self.a)
        self.s = np.sqrt(1.0 - 2.0 / nu)


def _copula_tail(nu: float, a: np.ndarray) -> np.ndarray:
    """``C(-a)``: the copula's univariate tail probability (t_nu, or normal for nu = inf)."""
    return special.ndtr(-a) if math.isinf(nu) else special.stdtr(nu, -a)


def _copula_quantile(nu: float, p: np.ndarray | float) -> np.ndarray:
    return special.ndtri(p) if math.isinf(nu) else special.stdtrit(nu, p)


def _exact(y: np.ndarray, tk: np.ndarray, mar: _MarginalArrays, copula_nu: float
           ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``x = F^{-1}(C(y))``, ``dx/dy`` and ``d2x/dy2`` for elements y of tables tk (scipy).

    Works from tail probabilities on both sides (``C(-|y|)``), so it stays accurate where
    ``C(y)`` rounds to 1. Derivatives from ``C(y) = F(x)``: ``x' = c(y) / f(x)`` and
    ``x'' = x' (c'/c (y) - f'/f (x) x')``.
    """
    p = _copula_tail(copula_nu, np.abs(y))
    lower = y < 0
    x = np.empty_like(y)
    lm = np.empty_like(y)  # ln f(x)
    sm = np.empty_like(y)  # d ln f / dx
    normal = mar.normal[tk]
    if normal.any():
        pn, lo = p[normal], lower[normal]
        xn = np.where(lo, special.ndtri(pn), -special.ndtri(pn))
        x[normal] = xn
        lm[normal] = -0.5 * xn * xn - _LOG_SQRT_2PI
        sm[normal] = -xn
    st = ~normal
    if st.any():
        k = tk[st]
        nu, lam, a, b, s = mar.nu[k], mar.lam[k], mar.a[k], mar.b[k], mar.s[k]
        pt, lo = p[st], lower[st]
        # Which side of the density's kink (x = -a/b, cdf (1 - lam)/2) and the t quantile T
        # there: lower tail p: left if p < (1-lam)/2; upper tail q: right if q < (1+lam)/2.
        left = np.where(lo, pt < (1 - lam) / 2, pt >= (1 + lam) / 2)
        arg = np.where(
            lo,
            np.where(left, pt / (1 - lam), 0.5 + (pt - (1 - lam) / 2) / (1 + lam)),
            np.where(left, (1 - pt) / (1 - lam), pt / (1 + lam)),
        )
        t_q = special.stdtrit(nu, arg)
        # scipy's stdtrit is off by up to ~2e-8 (absolute) near the median; one Newton step
        # on stdtr, which is accurate there, brings it to ~1e-16.
        mid = np.abs(arg - 0.5) < 0.25
        if mid.any():
            tm, nm = t_q[mid], nu[mid]
            log_pdf = special.gammaln((nm + 1) / 2) - special.gammaln(nm / 2) \
                - 0.5 * np.log(nm * np.pi) - (nm + 1) / 2 * np.log1p(tm * tm / nm)
            t_q[mid] = tm - (special.stdtr(nm, tm) - arg[mid]) / np.exp(log_pdf)
        t_q = np.where(~lo & ~left, -t_q, t_q)  # upper tail: T^{-1}(1 - r) = -T^{-1}(r)
        scale = np.where(left, 1 - lam, 1 + lam)
        xt = (t_q * scale * s - a) / b
        z = (b * xt + a) / scale
        x[st] = xt
        lm[st] = np.log(b) + mar.log_c[k] - (nu + 1) / 2 * np.log1p(z * z / (nu - 2))
        sm[st] = -(nu + 1) * z * (b / scale) / (nu - 2 + z * z)
    if math.isinf(copula_nu):
        lc, sc = -0.5 * y * y - _LOG_SQRT_2PI, -y
    else:
        nc = copula_nu
        kc = special.gammaln((nc + 1) / 2) - special.gammaln(nc / 2) - 0.5 * math.log(nc * math.pi)
        lc, sc = kc - (nc + 1) / 2 * np.log1p(y * y / nc), -(nc + 1) * y / (nc + y * y)
    dx = np.exp(lc - lm)
    return x, dx, dx * (sc - sm * dx)


def composite_quantile(y: np.ndarray, copula_nu: float, marginal: Marginal) -> np.ndarray:
    """The exact map ``x = F^{-1}(C(y))`` with scipy (the tables' reference; slow).

    Parameters
    ----------
    y : ndarray of shape (n,)
    copula_nu : float, the copula's degrees of freedom (``inf``: Gaussian copula).
    marginal : the factor's standardised innovation distribution.

    Returns
    -------
    ndarray of shape (n,)
    """
    y = np.ascontiguousarray(y, dtype=np.float64)
    return _exact(y, np.zeros(y.shape, dtype=np.int64), _MarginalArrays([marginal]),
                  float(copula_nu))[0]


def _quintic_coefficients(v: np.ndarray, d: np.ndarray, s: np.ndarray) -> np.ndarray:
    """Coefficients (n - 1, 6) of the quintic Hermite pieces between consecutive nodes.

    ``v``, ``d``, ``s``: values and first and second derivatives already scaled by the step
    (``h f'``, ``h^2 f''``), so a piece is ``sum_j c_j s^j`` for ``s`` in [0, 1].
    """
    dv = v[1:] - v[:-1]
    d0, d1, s0, s1 = d[:-1], d[1:], s[:-1], s[1:]
    return np.column_stack([
        v[:-1], d0, 0.5 * s0,
        10 * dv - 6 * d0 - 4 * d1 - 1.5 * s0 + 0.5 * s1,
        -15 * dv + 8 * d0 + 7 * d1 + 1.5 * s0 - s1,
        6 * dv - 3 * d0 - 3 * d1 - 0.5 * s0 + 0.5 * s1,
    ])


_MID = 0.5 ** np.arange(6)  # a quintic piece at s = 1/2 is c @ _MID


def _build_segments(kind: np.ndarray, sign: np.ndarray, tk: np.ndarray, grids: list[np.ndarray],
                    steps: np.ndarray, mar: _MarginalArrays, copula_nu: float
                    ) -> tuple[list[np.ndarray], np.ndarray]:
    """Quintic pieces of many segments at once, and each segment's error at its midpoints.

    A segment is one half's body (``kind`` 0, nodes ``a`` with step ``h``, values ``x``) or
    tail (``kind`` 1, nodes ``t = ln a`` with step ``h_t``, values ``w = ln|x|``); ``grids[i]``
    holds its nodes in ``a``. The error is ``|x_table - x| / max(|x|, 1)`` at every piece's
    midpoint, where a quintic Hermite piece's error peaks.
    """
    counts = np.array([len(g) for g in grids])
    a = np.concatenate(grids)
    seg = np.repeat(np.arange(len(grids)), counts)
    sg, kd, hs = sign[seg], kind[seg], steps[seg]
    x, dxdy, d2x = _exact(sg * a, tk[seg], mar, copula_nu)
    dxda = sg * dxdy
    tail = kd == 1
    with np.errstate(divide="ignore", invalid="ignore"):
        r = a * dxda / x  # dw/dt for w = ln|x|, t = ln a
        v = np.where(tail, np.log(np.abs(x)), x)
        d = hs * np.where(tail, r, dxda)
        s = hs * hs * np.where(tail, r + a * a * d2x / x - r * r, d2x)
    coef = _quintic_coefficients(v, d, s)
    ends = np.cumsum(counts)
    keep = np.ones(len(a) - 1, dtype=bool)
    keep[ends[:-1] - 1] = False  # no piece across two segments
    coef = coef[keep]
    pieces = counts - 1
    # midpoints: a halfway between body nodes, ln a halfway between tail nodes
    a0, a1 = a[:-1][keep], a[1:][keep]
    pseg = np.repeat(np.arange(len(grids)), pieces)
    ptail = kind[pseg] == 1
    amid = np.where(ptail, np.sqrt(np.abs(a0 * a1)), 0.5 * (a0 + a1))
    xmid = _exact(sign[pseg] * amid, tk[pseg], mar, copula_nu)[0]
    vmid = coef @ _MID
    with np.errstate(over="ignore"):
        got = np.where(ptail, np.sign(xmid) * np.exp(np.where(ptail, vmid, 0.0)), vmid)
    err = np.abs(got - xmid) / np.maximum(np.abs(xmid), 1.0)
    err = np.where(np.isfinite(err), err, np.inf)
    seg_err = np.maximum.reduceat(err, np.concatenate([[0], np.cumsum(pieces)[:-1]]))
    return np.split(coef, np.cumsum(pieces)[:-1]), seg_err


def _build_halves(copula_nu: float, marginals: Sequence[Marginal]
                  ) -> list[tuple[np.ndarray, np.ndarray, np.ndarray, float]]:
    """Body, tail, hp row and midpoint error of every needed half (see mc_kernels).

    Halves: for table k, ``2k`` is ``y < 0`` and ``2k + 1`` is ``y >= 0``; a symmetric marginal's
    lower half is not computed but mirrored from its upper half. Raises ValueError if a grid
    cannot reach ``MAX_ERROR`` within ``MAX_REFINE`` halvings.
    """
    mar = _MarginalArrays(marginals)
    n = len(marginals)
    need = [h for k, m in enumerate(marginals) for h in (() if m.symmetric else (2 * k,))
            ] + [2 * k + 1 for k in range(n)]
    need.sort()
    hidx = np.array(need, dtype=np.int64)
    tk = hidx // 2
    sign = np.where(hidx % 2 == 1, 1.0, -1.0)
    # The skew-t density's kink (x = -a/b, cdf (1 - lam)/2) sits at y_k; it becomes a body node.
    y_k = _copula_quantile(copula_nu, (1.0 - mar.lam[tk]) / 2.0)
    kink = np.where(~mar.normal[tk] & (y_k * sign > 0), np.abs(y_k), 0.0)
    # Tail grid end (copula tail probability P_MIN) and the body's end: the first candidate
    # where x has the tail's sign and |x| >= 0.1 (so ln|x| is smooth in the tail).
    a_end = float(-_copula_quantile(copula_nu, P_MIN))
    cands = np.array([4.0, 5.0, 6.0, 8.0, 10.0, 12.0, 16.0, 24.0, 32.0, 48.0, 64.0])
    cands = cands[cands <= a_end / 1.5]
    hc = np.repeat(np.arange(len(hidx)), len(cands))
    xc = _exact(sign[hc] * np.tile(cands, len(hidx)), tk[hc], mar, copula_nu)[0]
    ok = (sign[hc] * xc >= 0.1) & (np.tile(cands, len(hidx)) >= 1.25 * kink[hc] + 0.5)
    ok = ok.reshape(len(hidx), len(cands))
    if not ok.any(axis=1).all():
        bad = marginals[int(tk[~ok.any(axis=1)][0])]
        raise ValueError(f"cannot tabulate {bad} under copula nu = {copula_nu}: its quantile "
                         "keeps the wrong sign too far into the tail")
    body_end = cands[ok.argmax(axis=1)]
    t0 = np.log(body_end)
    t_range = math.log(a_end) - t0

    level = np.zeros((len(hidx), 2), dtype=np.int64)
    result: dict[tuple[int, int], tuple[np.ndarray, float]] = {}
    todo = [(i, kd) for i in range(len(hidx)) for kd in (0, 1)]
    grid_meta: dict[tuple[int, int], tuple[float, float, int]] = {}
    for _ in range(MAX_REFINE + 1):
        grids, kinds, steps = [], [], []
        for i, kd in todo:
            lv = level[i, kd]
            if kd == 0:
                h = BODY_STEP / 2.0**lv
                shift = (h * math.ceil(kink[i] / h) - kink[i]) if kink[i] > 0 else 0.0
                nb = math.ceil((body_end[i] + shift) / h - 1e-12)
                g = np.arange(nb + 1) * h - shift
                if kink[i] > 0:
                    g[round((kink[i] + shift) / h)] = kink[i]
                grid_meta[(i, 0)] = (h, shift, nb)
                steps.append(h)
            else:
                nt = max(2, math.ceil(t_range[i] / (TAIL_STEP / 2.0**lv)))
                ht = t_range[i] / nt
                g = np.exp(t0[i] + ht * np.arange(nt + 1))
                g[0] = body_end[i]
                grid_meta[(i, 1)] = (ht, 0.0, nt)
                steps.append(ht)
            grids.append(g)
            kinds.append(kd)
        ti = np.array([i for i, _ in todo])
        coefs, errs = _build_segments(np.array(kinds), sign[ti], tk[ti], grids,
                                      np.array(steps), mar, copula_nu)
        retry = []
        for (i, kd), c, e in zip(todo, coefs, errs):
            result[(i, kd)] = (c, float(e))
            if e > TOLERANCE and level[i, kd] < MAX_REFINE:
                level[i, kd] += 1
                retry.append((i, kd))
        if not retry:
            break
        todo = retry

    halves: list[Any] = [None] * (2 * n)
    for i, h_i in enumerate(hidx):
        body, e_body = result[(i, 0)]
        tail, e_tail = result[(i, 1)]
        if max(e_body, e_tail) > MAX_ERROR:
            raise ValueError(f"cannot tabulate {marginals[int(tk[i])]} under copula nu = "
                             f"{copula_nu} to {MAX_ERROR:g} (error {max(e_body, e_tail):.1e})")
        h, shift, nb = grid_meta[(i, 0)]
        ht, _, nt = grid_meta[(i, 1)]
        # last tail node: w and its slope per grid step, from the last piece at s = 1
        w_end = float(tail[-1].sum())
        slope = float(tail[-1] @ np.arange(6.0))
        tail_sign = float(sign[i])
        hp = np.array([1.0 / h, shift / h, nb, t0[i], 1.0 / ht, nt, w_end, slope, tail_sign])
        halves[h_i] = (body, tail, hp, max(e_body, e_tail))
    for k, m in enumerate(marginals):
        if m.symmetric:
            body, tail, hp, err = halves[2 * k + 1]
            mirrored = hp.copy()
            mirrored[HP_SIGN] = -1.0
            halves[2 * k] = (-body, tail, mirrored, err)
    return halves


_TABLE_CACHE: dict[tuple[float, Marginal], tuple[Any, Any]] = {}
_TABLE_CACHE_MAX = 8192


def clear_table_cache() -> None:
    """Forget the tables built so far (they are rebuilt on demand)."""
    _TABLE_CACHE.clear()


@dataclass(frozen=True)
class QuantileTables:
    """Stacked tables, the layout :mod:`riskmodel.scenarios.mc_kernels` reads.

    Attributes
    ----------
    body : ndarray of shape (n_tables, 2, n_body_max, 6)
    tail : ndarray of shape (n_tables, 2, n_tail_max, 6)
    hp : ndarray of shape (n_tables, 2, 9)
    max_error : ndarray of shape (n_tables,), the largest midpoint error found when building
        (``|x_table - x| / max(|x|, 1)``, scipy as the reference).
    copula_nu : float (``inf``: Gaussian copula).
    marginals : tuple of Marginal, length n_tables.
    """

    body: np.ndarray
    tail: np.ndarray
    hp: np.ndarray
    max_error: np.ndarray
    copula_nu: float
    marginals: tuple[Marginal, ...]

    def __call__(self, y: np.ndarray, k: int) -> np.ndarray:
        """Table k applied to ``y`` (ndarray of shape (n,)) with the numba kernel."""
        return eval_table(np.ascontiguousarray(y, dtype=np.float64), k, self.body, self.tail,
                          self.hp)


def build_quantile_tables(copula_nu: float, marginals: Sequence[Marginal]) -> QuantileTables:
    """Tabulate ``y -> F^{-1}(C(y))`` for each marginal under one copula (module docstring).

    Every piece is checked against scipy at its midpoint and its grid halved until the error is
    below ``TOLERANCE`` (at most ``MAX_REFINE`` times). Tables are cached per (copula nu,
    marginal): a rerun with the same parameters costs only the stacking.

    Parameters
    ----------
    copula_nu : float > 0, the t copula's degrees of freedom; ``inf`` for the Gaussian copula.
    marginals : sequence of Marginal, length n_tables.
    """
    copula_nu = float(copula_nu)
    if not copula_nu > 0:
        raise ValueError(f"copula_nu = {copula_nu!r} must be > 0")
    missing = list(dict.fromkeys(m for m in marginals if (copula_nu, m) not in _TABLE_CACHE))
    if missing:
        halves = _build_halves(copula_nu, missing)
        if len(_TABLE_CACHE) + len(missing) > _TABLE_CACHE_MAX:
            _TABLE_CACHE.clear()
        for k, m in enumerate(missing):
            _TABLE_CACHE[(copula_nu, m)] = (halves[2 * k], halves[2 * k + 1])
    parts = [_TABLE_CACHE[(copula_nu, m)] for m in marginals]
    n_t = len(parts)
    nb = max([h[0].shape[0] for p in parts for h in p], default=1)
    nt = max([h[1].shape[0] for p in parts for h in p], default=1)
    body = np.zeros((n_t, 2, nb, 6))
    tail = np.zeros((n_t, 2, nt, 6))
    hp = np.zeros((n_t, 2, N_HP))
    err = np.zeros(n_t)
    for k, pair in enumerate(parts):
        for half, (b, t, p, e) in enumerate(pair):
            body[k, half, : b.shape[0]] = b
            tail[k, half, : t.shape[0]] = t
            hp[k, half] = p
            err[k] = max(err[k], e)
    return QuantileTables(body, tail, hp, err, copula_nu, tuple(marginals))


def marginal_of(params: Any) -> Marginal:
    """The :class:`Marginal` of a :class:`~riskmodel.volatility.params.FactorParams`."""
    if params.dist == "normal":
        return Marginal("normal")
    if params.dist == "t":
        return Marginal("t", float(params.nu))
    return Marginal("skewt", float(params.nu), float(params.skew))


# ----------------------------------------------------------------------------------------------
# BLAS threads.
#
# The correlated normals come from one triangular product per block, run in the pool threads
# (parallel across blocks). OpenBLAS's own worker threads would oversubscribe the two levels
# and, worse, they spin for a while after every call, starving numba's threads (a 20x slow-down
# seen with many small blocks). So while the generator runs, the process's BLAS libraries
# (numpy's and scipy's OpenBLAS) are held at one thread with threadpoolctl. A counter makes
# nested and concurrent generators restore the setting once, when the last one leaves; BLAS
# calls made elsewhere in the process meanwhile run on one thread.

_BLAS_LOCK = threading.Lock()
_BLAS_USERS = 0
_BLAS_LIMITER: list[Any] = []


@contextlib.contextmanager
def _single_threaded_blas() -> Iterator[None]:
    global _BLAS_USERS
    with _BLAS_LOCK:
        _BLAS_USERS += 1
        if _BLAS_USERS == 1:
            _BLAS_LIMITER.append(threadpool_limits(1, user_api="blas"))
    try:
        yield
    finally:
        with _BLAS_LOCK:
            _BLAS_USERS -= 1
            if _BLAS_USERS == 0:
                while _BLAS_LIMITER:
                    _BLAS_LIMITER.pop().restore_original_limits()


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
        None means the Gaussian one. Not used by ``"gaussian"`` and ``"bootstrap"``.
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
    zt = None
    marg: list[Marginal] = []
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

    n_blocks = -(-n_scenarios // block_size)
    children = np.random.SeedSequence(seed).spawn(n_blocks)
    streams = [[np.random.Generator(np.random.PCG64(s)) for s in c.spawn(2)] for c in children]
    # var is only needed between days; total is written on day one
    var = np.empty((n_blocks, n_f, block_size) if horizon > 1 else (1, 1, 1))
    total = np.empty((n_blocks, n_f, block_size))
    n_half = block_size // 2 if antithetic else block_size

    if zt is not None:
        idx = np.empty((n_blocks, block_size), dtype=np.int64)

        def fill(b: int) -> None:
            idx[b] = streams[b][0].integers(0, zt.shape[1], size=block_size)

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
            if chol is not None:
                # g = L z per scenario, in place: z[b] is (n_f, block) C-ordered, i.e. the
                # Fortran (block, n_f) matrix Z, and Z L^T is a triangular product (BLAS,
                # outside numba, one thread; the same shapes for every block).
                blas.dtrmm(1.0, chol, zb.T, side=1, lower=1, trans_a=1, overwrite_b=1)
            if t_copula:
                chi2 = 2.0 * streams[b][1].standard_gamma(0.5 * nu_eff, size=n_half)
                # nu / chi2 with chi2 kept off 0 (reachable only for nu << 1)
                wb = np.sqrt(nu_eff / np.maximum(chi2, np.finfo(np.float64).tiny))
                w[b] = np.repeat(wb, 2) if antithetic else wb

    workers = max(1, min(numba.get_num_threads(), n_blocks))
    with _single_threaded_blas(), ThreadPoolExecutor(max_workers=workers) as pool:
        # Pipeline: a block's next day is drawn and correlated (pool threads; numpy and BLAS
        # release the GIL) as soon as its current day has gone through the kernel, while this
        # thread runs the kernel of other blocks. Each block draws from its own streams in day
        # order, so the schedule cannot change a number.
        pending = [pool.submit(fill, b) for b in range(n_blocks)]
        if zt is None:
            # Normal marginals under the Gaussian copula are the normals themselves (k = -1).
            needs = [not (math.isinf(nu_eff) and m.dist == "normal") for m in marg]
            distinct = list(dict.fromkeys(m for m, n in zip(marg, needs) if n))
            tables = build_quantile_tables(nu_eff, distinct)
            pos = {m: k for k, m in enumerate(distinct)}
            table_of = np.array([pos[m] if n else -1 for m, n in zip(marg, needs)],
                                dtype=np.int64)
            prov["tables"] = {"distinct": len(distinct), "body_step": BODY_STEP,
                              "tail_step": TAIL_STEP, "tolerance": TOLERANCE, "p_min": P_MIN,
                              "max_error": float(tables.max_error.max(initial=0.0))}
        for day in range(horizon):
            first, update = day == 0, day + 1 < horizon
            for b in range(n_blocks):
                pending[b].result()
                blk = slice(b, b + 1)
                vb = var[blk] if horizon > 1 else var
                if zt is not None:
                    bootstrap_day(zt, idx[blk], sigma2, vb, total[blk], mu, code, omega, alpha,
                                  gamma, beta, decay, first, update)
                else:
                    copula_day(z[blk], w[blk], table_of, tables.body, tables.tail, tables.hp,
                               sigma2, vb, total[blk], mu, code, omega, alpha, gamma, beta,
                               decay, first, update)
                if update:
                    pending[b] = pool.submit(fill, b)

    shocks = gather_shocks(total, n_scenarios)
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
