"""Worst-case loss of each netting set over a (small) set of stress scenarios.

Same book layout as the tail kernels: instrument P&L per unit of shape (n_instruments,
n_scenarios), netting sets as CSR rows over instruments. Losses are positive. Each netting set is
computed on its own in a fixed order, so results do not depend on threads or chunking.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange


@njit(cache=True, parallel=True)
def worst_loss(instrument_pnl, indptr, instrument_index, quantity, worst_out, scenario_out):
    """Largest loss of each netting set and the first scenario attaining it.

    Parameters
    ----------
    instrument_pnl : ndarray of shape (n_instruments, n_scenarios), C order, n_scenarios >= 1.
    indptr : int64 ndarray of shape (n_sets + 1,); instrument_index, quantity : (n_positions,).
    worst_out : float64 ndarray of shape (n_sets,), written.
    scenario_out : int64 ndarray of shape (n_sets,), written.
    """
    n_sets = indptr.shape[0] - 1
    n_scen = instrument_pnl.shape[1]
    for s in prange(n_sets):
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
