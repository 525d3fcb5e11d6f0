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

The copulas' marginal transforms ``x = F^{-1}(C(y))`` are read off piecewise-quintic tables
built once per (copula, marginal) and checked against scipy (:mod:`riskmodel.scenarios.mc_tables`);
the copula or bootstrap inputs and each block's random draws are set up in
:mod:`riskmodel.scenarios.mc_draws`, and the numba kernels that advance the paths day by day are
in :mod:`riskmodel.scenarios.mc_kernels`.

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

import math
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, NamedTuple

import numba
import numpy as np
import pandas as pd

from riskmodel.scenarios.mc_draws import (
    BlockDraws,
    Innovations,
    innovation_setup,
    single_threaded_blas,
)
from riskmodel.scenarios.mc_kernels import bootstrap_day, copula_day, gather_shocks
from riskmodel.scenarios.mc_tables import (
    BODY_MIN,
    BODY_STEP,
    MAX_ERROR,
    MAX_REFINE,
    P_MIN,
    TAIL_STEP,
    TOLERANCE,
    Marginal,
    QuantileTables,
    build_quantile_tables,
    clear_table_cache,
    composite_quantile,
    marginal_of,
)
from riskmodel.scenarios.scenario_set import ScenarioSet
from riskmodel.volatility.filters import FilteredFactor

__all__ = [
    "BODY_MIN",
    "BODY_STEP",
    "GENERATOR",
    "INNOVATIONS",
    "MAX_ERROR",
    "MAX_REFINE",
    "P_MIN",
    "TAIL_STEP",
    "TOLERANCE",
    "Marginal",
    "QuantileTables",
    "build_quantile_tables",
    "clear_table_cache",
    "composite_quantile",
    "marginal_of",
    "monte_carlo_scenarios",
]

INNOVATIONS = ("t-copula", "gaussian", "bootstrap")
GENERATOR = "numpy PCG64; SeedSequence(seed) child b per block of block_size, " \
    "grandchildren (b, 0) normals or day indices and (b, 1) chi-squares"


class _PathParams(NamedTuple):
    """Each factor's path inputs, arrays of shape (n_factors,): today's variance
    ``sigma2_next``, the drift ``mu`` and the recursion ``(code, omega, alpha, gamma, beta,
    decay)`` (``code`` int64) in the order the day kernels take them."""

    sigma2: np.ndarray
    mu: np.ndarray
    recursion: tuple[np.ndarray, ...]


def _check_int(name: str, value: Any, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{name} = {value!r} must be an integer >= {minimum}")
    return int(value)



def _checked_run(innovations: str, factors: Sequence[str], filtered: Mapping[str, Any],
                 horizon: int, n_scenarios: int, seed: int, block_size: int, antithetic: bool
                 ) -> tuple[list[str], int, int, int, int]:
    """``(factors, horizon, n_scenarios, seed, block_size)`` of a run, checked (arguments as
    :func:`monte_carlo_scenarios`); raises its ValueErrors."""
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
    return factors, horizon, n_scenarios, seed, block_size


def _path_params(ff: Sequence[FilteredFactor]) -> _PathParams:
    """The path inputs of the filtered factors ``ff``; raises ValueError on a bad variance."""
    n_f = len(ff)
    sigma2 = np.array([f.sigma2_next for f in ff], dtype=np.float64)
    if not (np.isfinite(sigma2).all() and (sigma2 >= 0).all()):
        raise ValueError(f"sigma2_next must be finite and >= 0 (got {sigma2.tolist()!r})")
    rec = np.array([f.params.recursion() for f in ff], dtype=np.float64).reshape(n_f, 6)
    code = rec[:, 0].astype(np.int64)
    omega, alpha, gamma, beta, decay = (np.ascontiguousarray(rec[:, k]) for k in range(1, 6))
    mu = np.array([f.mu for f in ff], dtype=np.float64)
    return _PathParams(sigma2, mu, (code, omega, alpha, gamma, beta, decay))


def _copula_tables(inn: Innovations, prov: dict[str, Any]) -> tuple[QuantileTables, np.ndarray]:
    """The quantile tables of the distinct marginals and each factor's table (``-1``: none, a
    normal marginal under the Gaussian copula is the normal itself); recorded in ``prov``."""
    nu_eff, marg = inn.copula_nu, inn.marginals
    needs = [not (math.isinf(nu_eff) and m.dist == "normal") for m in marg]
    distinct = list(dict.fromkeys(m for m, n in zip(marg, needs) if n))
    tables = build_quantile_tables(nu_eff, distinct)
    pos = {m: k for k, m in enumerate(distinct)}
    table_of = np.array([pos[m] if n else -1 for m, n in zip(marg, needs)], dtype=np.int64)
    prov["tables"] = {"distinct": len(distinct), "body_step": BODY_STEP,
                      "tail_step": TAIL_STEP, "tolerance": TOLERANCE, "p_min": P_MIN,
                      "max_error": float(tables.max_error.max(initial=0.0))}
    return tables, table_of


def _simulate(path: _PathParams, inn: Innovations, draws: BlockDraws, n_blocks: int,
              block_size: int, horizon: int, prov: dict[str, Any]) -> np.ndarray:
    """Run every block through ``horizon`` days; the summed returns, block-major, of shape
    (n_blocks, n_factors, block_size)."""
    n_f = path.sigma2.size
    # var is only needed between days; total is written on day one
    var = np.empty((n_blocks, n_f, block_size) if horizon > 1 else (1, 1, 1))
    total = np.empty((n_blocks, n_f, block_size))
    workers = max(1, min(numba.get_num_threads(), n_blocks))
    with single_threaded_blas(), ThreadPoolExecutor(max_workers=workers) as pool:
        # Pipeline: a block's next day is drawn and correlated (pool threads; numpy and BLAS
        # release the GIL) as soon as its current day has gone through the kernel, while this
        # thread runs the kernel of other blocks. Each block draws from its own streams in day
        # order, so the schedule cannot change a number.
        pending = [pool.submit(draws.fill, b) for b in range(n_blocks)]
        if inn.days is None:
            tables, table_of = _copula_tables(inn, prov)
        for day in range(horizon):
            first, update = day == 0, day + 1 < horizon
            for b in range(n_blocks):
                pending[b].result()
                blk = slice(b, b + 1)
                vb = var[blk] if horizon > 1 else var
                state = (path.sigma2, vb, total[blk], path.mu, *path.recursion, first, update)
                if inn.days is not None:
                    bootstrap_day(inn.days, draws.idx[blk], *state)
                else:
                    copula_day(draws.z[blk], draws.w[blk], table_of, tables.body, tables.tail,
                               tables.hp, *state)
                if update:
                    pending[b] = pool.submit(draws.fill, b)
    return total


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
    factors, horizon, n_scenarios, seed, block_size = _checked_run(
        innovations, factors, filtered, horizon, n_scenarios, seed, block_size, antithetic)
    path = _path_params([filtered[f] for f in factors])
    prov: dict[str, Any] = {
        "seed": seed, "generator": GENERATOR, "innovations": innovations, "copula_nu": None,
        "antithetic": bool(antithetic), "block_size": block_size,
    }
    inn = innovation_setup(innovations, copula_nu, correlation, std_resid, filtered, factors,
                           prov)
    n_blocks = -(-n_scenarios // block_size)
    draws = BlockDraws(seed, n_blocks, block_size, len(factors), inn, antithetic)
    total = _simulate(path, inn, draws, n_blocks, block_size, horizon, prov)
    shocks = gather_shocks(total, n_scenarios)
    width = max(6, len(str(n_scenarios - 1)))
    labels = np.array([f"mc-{i:0{width}d}" for i in range(n_scenarios)])
    return ScenarioSet(shocks=shocks, factors=tuple(factors), labels=labels, kind="mc",
                       horizon=horizon, provenance=prov)
