"""Monte Carlo innovations: the copula or bootstrap inputs and the random draws of each block.

What :func:`riskmodel.scenarios.monte_carlo.monte_carlo_scenarios` draws from
(:func:`innovation_setup`: the Cholesky factor of the copula's correlation and each factor's
marginal, or the complete historical days of the filtered bootstrap), and the draws themselves
(:class:`BlockDraws`): one day of a block of scenarios at a time, from the block's own
``Generator(PCG64)`` streams (see the reproducibility rules in that module's docstring).
"""

from __future__ import annotations

import contextlib
import math
import threading
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy.linalg import blas
from threadpoolctl import threadpool_limits

from riskmodel.scenarios.mc_tables import Marginal, marginal_of
from riskmodel.volatility.filters import FilteredFactor

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
def single_threaded_blas() -> Iterator[None]:
    """Hold the process's BLAS libraries at one thread while inside (re-entrant, thread-safe)."""
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

@dataclass(frozen=True)
class Innovations:
    """What the innovations are drawn from.

    Attributes
    ----------
    kind : ``"t-copula"``, ``"gaussian"`` or ``"bootstrap"``.
    copula_nu : float, the copula's degrees of freedom (``inf``: Gaussian; ``inf`` for the
        bootstrap, which has no copula).
    chol : ndarray of shape (n_factors, n_factors), Fortran order, or None (the identity; always
        None for the bootstrap).
    days : ndarray of shape (n_factors, n_days) or None
        The bootstrap's complete historical days, factor-major; None under a copula.
    marginals : list of Marginal, length n_factors (empty for the bootstrap).
    """

    kind: str
    copula_nu: float = math.inf
    chol: np.ndarray | None = None
    days: np.ndarray | None = None
    marginals: list[Marginal] = field(default_factory=list)


def innovation_setup(innovations: str, copula_nu: float | None, correlation: np.ndarray | None,
                     std_resid: pd.DataFrame | None, filtered: Mapping[str, FilteredFactor],
                     factors: Sequence[str], prov: dict[str, Any]) -> Innovations:
    """Check and prepare the innovations of ``factors`` (arguments as
    :func:`~riskmodel.scenarios.monte_carlo.monte_carlo_scenarios`); records the dependence in
    the provenance ``prov``."""
    if innovations == "bootstrap":
        zt, extra = _bootstrap_days(std_resid, filtered, factors)
        prov.update(extra)
        prov["dependence"] = "historical days (correlation and copula_nu not used)"
        return Innovations(innovations, days=zt)
    nu_eff = math.inf
    if innovations == "t-copula":
        if copula_nu is None and len(factors) > 1:
            raise ValueError("copula_nu is required for innovations = 't-copula' with "
                             "more than one factor")
        if copula_nu is not None:
            nu_eff = float(copula_nu)
            if not nu_eff > 0:
                raise ValueError(f"copula_nu = {copula_nu!r} must be > 0")
    prov["copula_nu"] = None if math.isinf(nu_eff) else nu_eff
    prov["copula"] = "gaussian" if math.isinf(nu_eff) else "t"
    chol = _cholesky(correlation, len(factors))
    marg = [marginal_of(filtered[f].params) for f in factors]
    return Innovations(innovations, nu_eff, chol, None, marg)


class BlockDraws:
    """This day's random draws of every block of scenarios, block by block (:meth:`fill`).

    Block ``b`` draws from its own two streams, children of ``SeedSequence(seed).spawn(n_blocks)
    [b]``: (b, 0) the normals or the bootstrap's day indices, (b, 1) the chi-squares. Each call
    of ``fill(b)`` draws the block's next day; blocks are independent, so they may be filled in
    any order and from any thread.

    Attributes
    ----------
    idx : ndarray of int64, shape (n_blocks, block_size)
        Bootstrap: the historical day of each scenario.
    z : ndarray of float64, shape (n_blocks, n_factors, block_size)
        Copula: the correlated normals ``g = L z``.
    w : ndarray of float64, shape (n_blocks, block_size)
        Copula: the t copula's mixing variable ``sqrt(nu / chi2_nu)`` (ones for the Gaussian).
    """

    def __init__(self, seed: int, n_blocks: int, block_size: int, n_factors: int,
                 innovations: Innovations, antithetic: bool) -> None:
        children = np.random.SeedSequence(seed).spawn(n_blocks)
        self._streams = [[np.random.Generator(np.random.PCG64(s)) for s in c.spawn(2)]
                         for c in children]
        self._inn = innovations
        self._antithetic = antithetic
        self._block_size = block_size
        self._n_half = block_size // 2 if antithetic else block_size
        if innovations.days is not None:
            self.idx = np.empty((n_blocks, block_size), dtype=np.int64)
        else:
            self.z = np.empty((n_blocks, n_factors, block_size))
            self.w = np.ones((n_blocks, block_size))

    def fill(self, b: int) -> None:
        """Draw block ``b``'s next day (its day indices, or its normals and mixing variable)."""
        streams = self._streams[b]
        days = self._inn.days
        if days is not None:
            self.idx[b] = streams[0].integers(0, days.shape[1], size=self._block_size)
            return
        zb = self.z[b]
        n_half = self._n_half
        if self._antithetic:
            half = streams[0].standard_normal((zb.shape[0], n_half))
            zb[:, 0::2] = half
            np.negative(half, out=zb[:, 1::2])
        else:
            streams[0].standard_normal(out=zb)
        if self._inn.chol is not None:
            # g = L z per scenario, in place: z[b] is (n_f, block) C-ordered, i.e. the
            # Fortran (block, n_f) matrix Z, and Z L^T is a triangular product (BLAS,
            # outside numba, one thread; the same shapes for every block).
            blas.dtrmm(1.0, self._inn.chol, zb.T, side=1, lower=1, trans_a=1, overwrite_b=1)
        nu_eff = self._inn.copula_nu
        if not math.isinf(nu_eff):
            chi2 = 2.0 * streams[1].standard_gamma(0.5 * nu_eff, size=n_half)
            # nu / chi2 with chi2 kept off 0 (reachable only for nu << 1)
            wb = np.sqrt(nu_eff / np.maximum(chi2, np.finfo(np.float64).tiny))
            self.w[b] = np.repeat(wb, 2) if self._antithetic else wb
