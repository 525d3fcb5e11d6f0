"""Plain-numpy twin of :func:`riskmodel.waterfall.kernels.adl_fill`: the same fill written
group by group as cumulative sums (tests compare the two; the benchmark times both).

Within one group every netting set appears once (a set holds one netted position per
instrument), so each counterparty's capacity ``min(profit_c, cap_s, |q_c| gap)`` is known
when the group starts, and the best-ranked-first fill is ``clip(R - capacity before, 0,
capacity)``; the sets' caps are updated between groups.
"""

from __future__ import annotations

import numpy as np


def adl_fill_twin(group_loss: np.ndarray, group_units: np.ndarray, cand_ptr: np.ndarray,
                  cand_set: np.ndarray, cand_units: np.ndarray, cand_profit: np.ndarray,
                  set_cap: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(cand_loss, cand_reduced, group_adl)`` (arguments as the kernel's); ``set_cap`` is
    updated in place."""
    cand_loss = np.zeros(len(cand_set))
    cand_reduced = np.zeros(len(cand_set))
    group_adl = np.zeros(len(group_loss))
    for g in np.flatnonzero(group_loss > 0.0):
        rows = slice(int(cand_ptr[g]), int(cand_ptr[g + 1]))
        gap = group_loss[g] / group_units[g]
        sets = cand_set[rows]
        capacity = np.maximum(np.minimum(np.minimum(cand_profit[rows], set_cap[sets]),
                                         cand_units[rows] * gap), 0.0)
        before = np.cumsum(capacity) - capacity
        taken = np.clip(group_loss[g] - before, 0.0, capacity)
        cand_loss[rows] = taken
        cand_reduced[rows] = taken / gap
        set_cap[sets] -= taken
        group_adl[g] = taken.sum()
    return cand_loss, cand_reduced, group_adl
