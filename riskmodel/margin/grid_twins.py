"""Plain-Python twin of :mod:`riskmodel.margin.grid_kernels` (the definition is there).

One netting set at a time, with dictionaries keyed by underlying and expiry group: the readable
statement of the rule's scan that the tests hold the numba kernel to.
"""

from __future__ import annotations

import numpy as np


def grid_rule_losses(pnl: np.ndarray, base: np.ndarray, und: np.ndarray, group: np.ndarray,
                     pos_disc: np.ndarray, neg_disc: np.ndarray, basis_factor: np.ndarray,
                     damp: np.ndarray, skew: np.ndarray, indptr: np.ndarray,
                     instrument_index: np.ndarray, quantity: np.ndarray
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``(worst, basis, scenario, share, totals)`` as the kernel writes them (``totals`` of
    shape ``(n_sets, n_scan)``)."""
    n_sets, n_scan = len(indptr) - 1, len(damp)
    worst, basis = np.zeros(n_sets), np.zeros(n_sets)
    scenario = np.zeros(len(quantity), dtype=np.int64)
    share = np.zeros(len(quantity))
    totals = np.zeros((n_sets, n_scan))
    for s in range(n_sets):
        rows = range(indptr[s], indptr[s + 1])
        scan: dict[int, np.ndarray] = {}  # underlying -> scenario P&L
        values: dict[int, np.ndarray] = {}  # expiry group -> value in every column
        today: dict[int, float] = {}
        owner: dict[int, int] = {}
        for p in rows:
            i, q = instrument_index[p], quantity[p]
            u, g = int(und[i]), int(group[i])
            scan.setdefault(u, np.zeros(n_scan))
            if g < 0:
                scan[u] = scan[u] + q * pnl[i, :n_scan]
            else:
                values[g] = values.get(g, np.zeros(n_scan + 2)) + q * (base[i] + pnl[i])
                today[g] = today.get(g, 0.0) + q * base[i]
                owner[g] = u
        scan = {u: v * damp for u, v in scan.items()}
        contingency = dict.fromkeys(scan, 0.0)
        for g, v in values.items():
            u = owner[g]
            e = np.empty(n_scan)
            for j in range(n_scan):
                d = pos_disc[g] if v[j] >= 0 else neg_disc[g]
                e[j] = (v[j] * d - today[g]) * damp[j]
                if skew[j] and e[j] > 0:
                    e[j] = -e[j]
            scan[u] = scan[u] + e
            low = min(v[n_scan] - today[g], v[n_scan + 1] - today[g], 0.0)
            contingency[u] += low * basis_factor[g]
        chosen = {}
        total, basis_total, scan_total = 0.0, 0.0, np.zeros(n_scan)
        for u, t in scan.items():
            j = int(np.argmin(t))
            binding = n_scan if contingency[u] < 0 else n_scan + 1
            chosen[u] = j if t[j] < contingency[u] else binding
            total += t[j] if t[j] < contingency[u] else contingency[u]
            basis_total += contingency[u]
            scan_total = scan_total + t
        worst[s], basis[s], totals[s] = 0.0 - total, 0.0 - basis_total, 0.0 - scan_total
        for p in rows:
            i, q = instrument_index[p], quantity[p]
            u, g = int(und[i]), int(group[i])
            j = chosen[u]
            scenario[p] = j
            if g < 0:
                share[p] = 0.0 - q * pnl[i, j] * damp[j] if j < n_scan else 0.0
            elif j < n_scan:
                v = values[g][j]
                d = pos_disc[g] if v >= 0 else neg_disc[g]
                x = q * ((base[i] + pnl[i, j]) * d - base[i]) * damp[j]
                flip = skew[j] and (v * d - today[g]) * damp[j] > 0
                share[p] = x if flip else 0.0 - x
            elif j == n_scan:
                up, down = values[g][n_scan] - today[g], values[g][n_scan + 1] - today[g]
                if min(up, down) < 0:
                    col = n_scan if up <= down else n_scan + 1
                    share[p] = 0.0 - q * pnl[i, col] * basis_factor[g]
    return worst, basis, scenario, share, totals
