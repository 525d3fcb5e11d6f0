"""The venue rule's scan of each netting set (``--method grid``): numba kernel.

The plain-Python twin, which states the same arithmetic one set at a time, is
:func:`riskmodel.margin.grid_twins.grid_rule_losses`; tests compare the two.

Definition, per netting set and per underlying ``u`` it holds (its *grid underlying*: an
instrument's underlying, a coin's ``[grid.collateral]`` underlying):

* linear P&L of scenario ``j``: ``L_uj = damp_j x sum q x pnl_ij`` over its linear positions
  (perpetuals, futures, spot, coins held), position order;
* each expiry group ``g`` of options (same underlying, expiry and rate) has today's value
  ``G0 = sum q x base_i`` and scenario values ``G_j = sum q x (base_i + pnl_ij)``; its P&L is
  ``E_gj = damp_j x (G_j x d_g - G0)`` with the static discount ``d_g = pos_disc_g`` if ``G_j
  >= 0`` else ``neg_disc_g`` (long time value counted short of its mark, short time value
  beyond it); in a skew scenario a gain counts as a loss (``-|E_gj|``: the rotation is taken
  in whichever direction hurts that expiry);
* the scenario P&L ``T_uj = L_uj + sum_g E_gj``; the basis contingency ``B_u = sum_g
  basis_factor_g x min(G_up - G0, G_down - G0, 0)`` over the two basis columns;
* the underlying's result ``W_u = min(B_u, min_j T_uj)`` (the first scenario attaining it; the
  basis when none is below it; none when ``W_u = 0``).

The set's rule loss is ``-sum_u W_u`` (>= 0), its basis contingency ``-sum_u B_u``. Each
position's share of the loss in its underlying's worst scenario: ``-damp_j q pnl_ij`` (linear),
``-damp_j q ((base_i + pnl_ij) d_g - base_i)`` (options; sign-flipped with the group's in a skew
scenario), ``-basis_factor_g q pnl_i,side`` in the basis scenario (``side`` the basis column
that binds, none when neither loses); shares sum to the set's loss. Every set is computed on
its own in a fixed order of operations, so results do not depend on threads or chunking.
"""

from __future__ import annotations

import numpy as np
from numba import prange

from riskmodel.kernel_cache import njit


@njit(cache=True)
def _slots(codes, indptr_start, n, instrument_index, skip_negative):
    """Local slot of each of the set's ``n`` positions in the distinct values of ``codes``
    (first-seen order), and those values; -1 for a negative code when ``skip_negative``."""
    ids = np.empty(n, np.int64)
    local = np.empty(n, np.int64)
    k = 0
    for p in range(n):
        c = codes[instrument_index[indptr_start + p]]
        if skip_negative and c < 0:
            local[p] = -1
            continue
        slot = -1
        for t in range(k):
            if ids[t] == c:
                slot = t
                break
        if slot < 0:
            ids[k] = c
            slot = k
            k += 1
        local[p] = slot
    return local, ids[:k]


@njit(cache=True)
def _one_set(s, pnl, base, und, group, pos_disc, neg_disc, basis_factor, damp, skew, indptr,
             instrument_index, quantity, worst_out, basis_out, scenario_out, share_out,
             totals_out):
    """Set ``s`` of :func:`grid_rule_losses` (same arguments)."""
    n_scan = damp.shape[0]
    n_cols = n_scan + 2
    start = indptr[s]
    n = indptr[s + 1] - start
    lu, u_ids = _slots(und, start, n, instrument_index, False)
    lg, g_ids = _slots(group, start, n, instrument_index, True)
    ku = u_ids.shape[0]
    kg = g_ids.shape[0]
    lin = np.zeros((ku, n_scan))
    gv = np.zeros((kg, n_cols))
    g0 = np.zeros(kg)
    g_und = np.zeros(kg, np.int64)
    for p in range(n):
        i = instrument_index[start + p]
        q = quantity[start + p]
        if lg[p] >= 0:
            g = lg[p]
            g_und[g] = lu[p]
            b = base[i]
            g0[g] += q * b
            for j in range(n_cols):
                gv[g, j] += q * (b + pnl[i, j])
        else:
            u = lu[p]
            for j in range(n_scan):
                lin[u, j] += q * pnl[i, j]
    tot = np.empty((ku, n_scan))
    for u in range(ku):
        for j in range(n_scan):
            tot[u, j] = lin[u, j] * damp[j]
    bas = np.zeros(ku)
    for g in range(kg):
        gi = g_ids[g]
        u = g_und[g]
        for j in range(n_scan):
            v = gv[g, j]
            d = pos_disc[gi] if v >= 0.0 else neg_disc[gi]
            e = (v * d - g0[g]) * damp[j]
            if skew[j] and e > 0.0:
                e = -e
            tot[u, j] += e
        low = min(min(gv[g, n_scan] - g0[g], gv[g, n_scan + 1] - g0[g]), 0.0)
        bas[u] += low * basis_factor[gi]
    best = np.empty(ku, np.int64)
    total = 0.0
    basis_total = 0.0
    for u in range(ku):
        w = bas[u]
        b = n_scan if w < 0.0 else n_scan + 1  # the basis binds, or nothing loses
        for j in range(n_scan):
            if tot[u, j] < w:
                w = tot[u, j]
                b = j
        best[u] = b
        total += w
        basis_total += bas[u]
    worst_out[s] = 0.0 - total  # 0.0 - x: no negative zero in the tables
    basis_out[s] = 0.0 - basis_total
    if totals_out.shape[0] > 0:
        for j in range(n_scan):
            t = 0.0
            for u in range(ku):
                t += tot[u, j]
            totals_out[s, j] = 0.0 - t
    for p in range(n):
        i = instrument_index[start + p]
        q = quantity[start + p]
        j = best[lu[p]]
        scenario_out[start + p] = j
        share = 0.0
        if lg[p] < 0:
            if j < n_scan:
                share = q * pnl[i, j] * damp[j]
        else:
            g = lg[p]
            gi = g_ids[g]
            if j < n_scan:
                v = gv[g, j]
                d = pos_disc[gi] if v >= 0.0 else neg_disc[gi]
                share = q * ((base[i] + pnl[i, j]) * d - base[i]) * damp[j]
                if skew[j] and (v * d - g0[g]) * damp[j] > 0.0:
                    share = -share
            elif j == n_scan:
                up = gv[g, n_scan] - g0[g]
                down = gv[g, n_scan + 1] - g0[g]
                if min(up, down) < 0.0:
                    col = n_scan if up <= down else n_scan + 1
                    share = q * pnl[i, col] * basis_factor[gi]
        share_out[start + p] = 0.0 - share


@njit(cache=True, parallel=True)
def grid_rule_losses(pnl, base, und, group, pos_disc, neg_disc, basis_factor, damp, skew,
                     indptr, instrument_index, quantity, worst_out, basis_out, scenario_out,
                     share_out, totals_out):
    """The rule loss of each netting set (module docstring).

    Parameters
    ----------
    pnl : ndarray of shape (n_instruments, n_scan + 2), C order: per-unit P&L in each scan
        scenario, then the basis up and down scenarios.
    base : ndarray of shape (n_instruments,), today's per-unit value.
    und, group : int64 ndarrays of shape (n_instruments,): grid underlying code; expiry group
        code (-1: not an option).
    pos_disc, neg_disc, basis_factor : ndarrays of shape (n_groups,).
    damp : ndarray of shape (n_scan,); skew : bool ndarray of shape (n_scan,).
    indptr : int64 ndarray of shape (n_sets + 1,); instrument_index, quantity :
        (n_positions,).
    worst_out, basis_out : float64 ndarrays of shape (n_sets,), written (losses, >= 0).
    scenario_out : int64 ndarray of shape (n_positions,), written: the worst scenario of the
        position's underlying in its set (``n_scan``: the basis contingency; ``n_scan + 1``:
        none, the underlying loses in no scenario).
    share_out : float64 ndarray of shape (n_positions,), written: the position's loss share.
    totals_out : float64 ndarray of shape (n_sets, n_scan) or (0, n_scan): when it has rows,
        each scenario's loss summed over the set's underlyings is written.
    """
    for s in prange(indptr.shape[0] - 1):
        # np.int64: prange counts in uint64, and the serial kernel's int64 would compile twice
        _one_set(np.int64(s), pnl, base, und, group, pos_disc, neg_disc, basis_factor, damp,
                 skew, indptr, instrument_index, quantity, worst_out, basis_out, scenario_out,
                 share_out, totals_out)


@njit(cache=True)
def grid_rule_losses_serial(pnl, base, und, group, pos_disc, neg_disc, basis_factor, damp, skew,
                            indptr, instrument_index, quantity, worst_out, basis_out,
                            scenario_out, share_out, totals_out):
    """:func:`grid_rule_losses` on one thread: a what-if or a liquidation step margins a few
    sets, for which starting the thread pool costs more than the scan."""
    for s in range(indptr.shape[0] - 1):
        _one_set(s, pnl, base, und, group, pos_disc, neg_disc, basis_factor, damp, skew, indptr,
                 instrument_index, quantity, worst_out, basis_out, scenario_out, share_out,
                 totals_out)
