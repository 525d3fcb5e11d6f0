"""Quantile tables of the Monte Carlo innovations: ``y -> x = F^{-1}(C(y))`` without scipy.

The innovations of :func:`riskmodel.scenarios.monte_carlo.monte_carlo_scenarios` under a copula
are ``x_f = F_f^{-1}(C(y_f))``: ``y = g W`` the copula's draw, ``C`` its univariate cdf and
``F_f`` the factor's standardised marginal (:class:`Marginal`: normal, arch's standardised
Student's t or Hansen's skew-t). This module evaluates that map exactly with scipy (the
reference, :func:`composite_quantile`) and tabulates it for the numba kernels
(:func:`build_quantile_tables`, in the layout :mod:`riskmodel.scenarios.mc_kernels` reads).

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
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
from scipy import special

from riskmodel.scenarios.mc_kernels import HP_SIGN, N_HP, eval_table

BODY_STEP = 0.25  # body grid step in y before refinement
TAIL_STEP = 0.25  # tail grid step in ln|y| before refinement
TOLERANCE = 1e-8  # refine a grid until every piece's midpoint error is below this
MAX_REFINE = 8  # at most this many halvings of a grid step
MAX_ERROR = 1e-6  # a table that cannot get below this after MAX_REFINE halvings is an error
BODY_MIN = 4.0  # the body covers at least |y| <= 4
P_MIN = 1e-20  # the tail grid ends where the copula's tail probability is P_MIN

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


class _HalfLayout(NamedTuple):
    """Where the tables' halves lie: one entry per half to compute (``hidx``: ``2k`` is table
    k's ``y < 0``, ``2k + 1`` its ``y >= 0``), with its table ``tk``, the sign of ``y`` there,
    the skew-t kink ``|y_k|`` on that side (0: none), the body's end ``A`` and the tail grid's
    ``t0 = ln A`` and range ``ln a_end - t0``."""

    hidx: np.ndarray
    tk: np.ndarray
    sign: np.ndarray
    kink: np.ndarray
    body_end: np.ndarray
    t0: np.ndarray
    t_range: np.ndarray


def _half_layout(copula_nu: float, marginals: Sequence[Marginal], mar: _MarginalArrays
                 ) -> _HalfLayout:
    """The halves to compute (a symmetric marginal's lower half is mirrored, not computed),
    their kinks and the split between body and tail (module docstring)."""
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
    return _HalfLayout(hidx, tk, sign, kink, body_end, t0, t_range)


_GridMeta = tuple[float, float, int]  # (step, shift, number of pieces) of one grid


def _body_grid(level: int, kink: float, body_end: float) -> tuple[np.ndarray, _GridMeta]:
    """Nodes in ``a = |y|`` of a body at refinement ``level``, the kink (if any) on a node."""
    h = BODY_STEP / 2.0**level
    shift = (h * math.ceil(kink / h) - kink) if kink > 0 else 0.0
    nb = math.ceil((body_end + shift) / h - 1e-12)
    g = np.arange(nb + 1) * h - shift
    if kink > 0:
        g[round((kink + shift) / h)] = kink
    return g, (h, shift, nb)


def _tail_grid(level: int, t0: float, t_range: float, body_end: float
               ) -> tuple[np.ndarray, _GridMeta]:
    """Nodes in ``a`` of a tail at refinement ``level``: uniform in ``t = ln a`` from ``t0``."""
    nt = max(2, math.ceil(t_range / (TAIL_STEP / 2.0**level)))
    ht = t_range / nt
    g = np.exp(t0 + ht * np.arange(nt + 1))
    g[0] = body_end
    return g, (ht, 0.0, nt)


def _refine(lay: _HalfLayout, mar: _MarginalArrays, copula_nu: float
            ) -> tuple[dict[tuple[int, int], tuple[np.ndarray, float]],
                       dict[tuple[int, int], _GridMeta]]:
    """Pieces and midpoint error of every (half, region) (region 0 body, 1 tail), each grid
    halved until its error is below ``TOLERANCE`` or ``MAX_REFINE`` halvings; and the grids."""
    level = np.zeros((len(lay.hidx), 2), dtype=np.int64)
    result: dict[tuple[int, int], tuple[np.ndarray, float]] = {}
    todo = [(i, kd) for i in range(len(lay.hidx)) for kd in (0, 1)]
    grid_meta: dict[tuple[int, int], _GridMeta] = {}
    for _ in range(MAX_REFINE + 1):
        grids, kinds, steps = [], [], []
        for i, kd in todo:
            lv = level[i, kd]
            if kd == 0:
                g, meta = _body_grid(lv, lay.kink[i], lay.body_end[i])
            else:
                g, meta = _tail_grid(lv, lay.t0[i], lay.t_range[i], lay.body_end[i])
            grid_meta[(i, kd)] = meta
            steps.append(meta[0])
            grids.append(g)
            kinds.append(kd)
        ti = np.array([i for i, _ in todo])
        coefs, errs = _build_segments(np.array(kinds), lay.sign[ti], lay.tk[ti], grids,
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
    return result, grid_meta


def _build_halves(copula_nu: float, marginals: Sequence[Marginal]
                  ) -> list[tuple[np.ndarray, np.ndarray, np.ndarray, float]]:
    """Body, tail, hp row and midpoint error of every needed half (see mc_kernels).

    Halves: for table k, ``2k`` is ``y < 0`` and ``2k + 1`` is ``y >= 0``; a symmetric marginal's
    lower half is not computed but mirrored from its upper half. Raises ValueError if a grid
    cannot reach ``MAX_ERROR`` within ``MAX_REFINE`` halvings.
    """
    mar = _MarginalArrays(marginals)
    lay = _half_layout(copula_nu, marginals, mar)
    result, grid_meta = _refine(lay, mar, copula_nu)
    halves: list[Any] = [None] * (2 * len(marginals))
    for i, h_i in enumerate(lay.hidx):
        body, e_body = result[(i, 0)]
        tail, e_tail = result[(i, 1)]
        if max(e_body, e_tail) > MAX_ERROR:
            raise ValueError(f"cannot tabulate {marginals[int(lay.tk[i])]} under copula nu = "
                             f"{copula_nu} to {MAX_ERROR:g} (error {max(e_body, e_tail):.1e})")
        h, shift, nb = grid_meta[(i, 0)]
        ht, _, nt = grid_meta[(i, 1)]
        # last tail node: w and its slope per grid step, from the last piece at s = 1
        w_end = float(tail[-1].sum())
        slope = float(tail[-1] @ np.arange(6.0))
        tail_sign = float(lay.sign[i])
        hp = np.array([1.0 / h, shift / h, nb, lay.t0[i], 1.0 / ht, nt, w_end, slope, tail_sign])
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
