"""Numba kernel of auto-deleveraging: the ranked fill of each bankrupt group's loss by its
opposite counterparties (arrays and scalars only; :mod:`riskmodel.waterfall.twins` is its
plain-Python twin, :mod:`riskmodel.waterfall.allocation` prepares the arrays).

For each group ``g`` (an instrument and the side of the bankrupt positions in it) in order, the
loss ``R_g`` left after the insurance fund is taken over by the counterparties of the group,
best ranked first, at the bankruptcy price: each unit reduced costs its holder
``gap_g = R_g / Q_g`` (``Q_g`` the bankrupt units closed in the group). A counterparty ``c`` of
netting set ``s`` takes::

    loss_c = min(left_g, |q_c| gap_g, profit_c, cap_s)

(``profit_c`` its position's profit in the scenario, ``cap_s`` what is left of its set's
profit after the groups before), so no one loses more than its profit, nor is reduced beyond its
position, nor beyond the bankrupt units; ``reduced_c = loss_c / gap_g`` units.
"""

from __future__ import annotations

from riskmodel.kernel_cache import njit


@njit(cache=True)
def adl_fill(group_loss, group_units, cand_ptr, cand_set, cand_units, cand_profit, set_cap,
             cand_loss, cand_reduced, group_adl):  # pragma: no cover - compiled
    """Fill every group in order (module docstring).

    Parameters
    ----------
    group_loss, group_units : float64 ndarrays of shape (n_groups,)
        ``R_g`` (>= 0) and ``Q_g`` (> 0 where ``R_g > 0``).
    cand_ptr : int64 ndarray of shape (n_groups + 1,)
        Counterparties of group ``g`` are ``cand_ptr[g]:cand_ptr[g + 1]``, best ranked first.
    cand_set : int64 ndarray of shape (n_cand,), each counterparty's netting set.
    cand_units, cand_profit : float64 ndarrays of shape (n_cand,), ``|q_c|`` and ``profit_c``.
    set_cap : float64 ndarray of shape (n_sets,), each set's profit left; updated in place.
    cand_loss, cand_reduced : float64 ndarrays of shape (n_cand,), zero on entry; receive
        ``loss_c`` and ``reduced_c``.
    group_adl : float64 ndarray of shape (n_groups,), receives the loss each group moved.
    """
    for g in range(group_loss.shape[0]):
        total = group_loss[g]
        if total <= 0.0:
            group_adl[g] = 0.0
            continue
        gap = total / group_units[g]
        left = total
        for c in range(cand_ptr[g], cand_ptr[g + 1]):
            if left <= 0.0:
                break
            s = cand_set[c]
            cap = min(cand_profit[c], set_cap[s], cand_units[c] * gap)
            if cap <= 0.0:
                continue
            loss = min(cap, left)
            cand_loss[c] = loss
            cand_reduced[c] = loss / gap
            set_cap[s] -= loss
            left -= loss
        group_adl[g] = total - left
