"""Worst-case loss of each netting set over a (small) set of stress scenarios, and the SPAN-style
grid loss (each underlying scanned on its own, worst points summed over the set's underlyings).

Same book layout as the tail kernels: instrument P&L per unit of shape (n_instruments,
n_scenarios), netting sets as CSR rows over instruments. Losses are positive. Each netting set is
computed on its own in a fixed order, so results do not depend on threads or chunking.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numba import prange

from riskmodel.kernel_cache import njit
from riskmodel.measures.background import wait as wait_for_background
from riskmodel.measures.kernels import SERIAL_MAX_WORK  # the tail kernels' bound, one place
from riskmodel.measures.selection import KERNEL_ONLY


@njit(cache=True)
def worst_one(instrument_pnl, indptr, instrument_index, quantity, s, worst_out, scenario_out):
    """The largest loss of set ``s`` and the first scenario attaining it."""
    n_scen = instrument_pnl.shape[1]
    loss = np.zeros(n_scen)
    for k in range(indptr[s], indptr[s + 1]):
        q = quantity[k]
        row = instrument_pnl[instrument_index[k]]
        for i in range(n_scen):
            loss[i] -= q * row[i]
    best = 0
    for i in range(1, n_scen):
        if loss[i] > loss[best]:
            best = i
    worst_out[s] = loss[best]
    scenario_out[s] = best


@njit(cache=True, parallel=True)
def _worst_loss_parallel(instrument_pnl, indptr, instrument_index, quantity, worst_out,
                         scenario_out):
    for s in prange(indptr.shape[0] - 1):
        # np.int64: prange counts in uint64, and the serial kernel's int64 would compile twice
        worst_one(instrument_pnl, indptr, instrument_index, quantity, np.int64(s), worst_out,
                   scenario_out)


@njit(cache=True)
def _worst_loss_serial(instrument_pnl, indptr, instrument_index, quantity, worst_out,
                       scenario_out):
    for s in range(indptr.shape[0] - 1):
        worst_one(instrument_pnl, indptr, instrument_index, quantity, s, worst_out,
                   scenario_out)


def _pick(parallel: Any, serial: Any, pnl: np.ndarray, instrument_index: np.ndarray) -> Any:
    """The ``parallel`` kernel from :data:`SERIAL_MAX_WORK` positions x scenarios, else the
    ``serial`` one, once a first run's background compilation of it is done."""
    if instrument_index.size * pnl.shape[1] >= SERIAL_MAX_WORK:
        return parallel
    wait_for_background()
    return serial


def worst_loss(instrument_pnl, indptr, instrument_index, quantity, worst_out, scenario_out):
    """Largest loss of each netting set and the first scenario attaining it (in parallel from
    :data:`SERIAL_MAX_WORK` positions x scenarios; a smaller book compiles no parallel region).

    Parameters
    ----------
    instrument_pnl : ndarray of shape (n_instruments, n_scenarios), C order, n_scenarios >= 1.
    indptr : int64 ndarray of shape (n_sets + 1,); instrument_index, quantity : (n_positions,).
    worst_out : float64 ndarray of shape (n_sets,), written.
    scenario_out : int64 ndarray of shape (n_sets,), written.
    """
    kernel = _pick(_worst_loss_parallel, _worst_loss_serial, instrument_pnl, instrument_index)
    kernel(instrument_pnl, indptr, instrument_index, quantity, worst_out, scenario_out)


@njit(cache=True)
def grid_one(unit_pnl, weights, indptr, instrument_index, quantity, factor_code, s, out):
    """The grid stress loss of set ``s`` (:func:`grid_set_loss`)."""
    n_grid = unit_pnl.shape[1]
    p0 = indptr[s]
    p1 = indptr[s + 1]
    codes = np.empty(p1 - p0, dtype=np.int64)
    acc = np.zeros((p1 - p0, n_grid))
    n_factors = np.int64(0)  # not a literal: _ascending compiles once
    for p in range(p0, p1):
        j = instrument_index[p]
        f = factor_code[j]
        slot = n_factors
        for t in range(n_factors):
            if codes[t] == f:
                slot = t
                break
        if slot == n_factors:
            codes[slot] = f
            n_factors += 1
        q = quantity[p]
        for g in range(n_grid):
            acc[slot, g] += q * unit_pnl[j, g]
    total = 0.0
    for t in _ascending(codes, n_factors):
        worst = -acc[t, 0] * weights[0]
        for g in range(1, n_grid):
            v = -acc[t, g] * weights[g]
            worst = v if v > worst else worst
        total += worst
    out[s] = total


@njit(cache=True, **KERNEL_ONLY)
def _ascending(codes, n):
    """The order of the distinct ``codes[:n]`` ascending (an insertion sort: a set holds few
    factors, and numba's quicksort costs seconds to compile)."""
    order = np.empty(n, dtype=np.int64)  # np.arange would compile an implementation of its own
    for i in range(n):
        order[i] = i
    for i in range(1, n):
        t = order[i]
        j = i - 1
        while j >= 0 and codes[order[j]] > codes[t]:
            order[j + 1] = order[j]
            j -= 1
        order[j + 1] = t
    return order


@njit(cache=True, parallel=True)
def _grid_parallel(unit_pnl, weights, indptr, instrument_index, quantity, factor_code, out):
    for s in prange(indptr.shape[0] - 1):
        grid_one(unit_pnl, weights, indptr, instrument_index, quantity, factor_code,
                 np.int64(s), out)


@njit(cache=True)
def _grid_serial(unit_pnl, weights, indptr, instrument_index, quantity, factor_code, out):
    for s in range(indptr.shape[0] - 1):
        grid_one(unit_pnl, weights, indptr, instrument_index, quantity, factor_code, s, out)


def grid_set_loss(unit_pnl, weights, indptr, instrument_index, quantity, factor_code, out):
    """Grid stress loss of each netting set (the numpy twin is
    :func:`riskmodel.scenarios.stress.grid_loss`, with the definition).

    Per set, the positions' scan P&L ``quantity * unit_pnl[instrument]`` is summed per factor
    in position order; each factor's worst weighted loss ``max_g(-pnl_g * weights_g)`` is taken
    and the worst losses are summed in ascending factor code: the operations, in the order, of
    the twin's ``bincount`` sums, so the results are the same bits. In parallel from
    :data:`SERIAL_MAX_WORK` positions x scenarios.

    Parameters
    ----------
    unit_pnl : ndarray of shape (n_instruments, n_grid), each instrument's P&L per unit on the
        scan of its own factor.
    weights : ndarray of shape (n_grid,), weight of each scan point's loss.
    indptr : int64 ndarray of shape (n_sets + 1,); instrument_index, quantity : (n_positions,).
    factor_code : int64 ndarray of shape (n_instruments,), the factor of each instrument.
    out : float64 ndarray of shape (n_sets,), written.
    """
    kernel = _pick(_grid_parallel, _grid_serial, unit_pnl, instrument_index)
    kernel(unit_pnl, weights, indptr, instrument_index, quantity, factor_code, out)


def worst_loss_python(instrument_pnl, indptr, instrument_index, quantity):
    """Plain-Python twin of :func:`worst_loss`; returns ``(worst, scenario)``."""
    n_sets = len(indptr) - 1
    worst = np.empty(n_sets)
    scenario = np.empty(n_sets, dtype=np.int64)
    for s in range(n_sets):
        loss = np.zeros(instrument_pnl.shape[1])
        for k in range(indptr[s], indptr[s + 1]):
            loss -= quantity[k] * instrument_pnl[instrument_index[k]]
        scenario[s] = int(np.argmax(loss))
        worst[s] = loss[scenario[s]]
    return worst, scenario
