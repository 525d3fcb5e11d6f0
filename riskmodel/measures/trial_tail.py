"""The uniform tail of a netting set one of whose positions changes size (numba; ndarrays and
scalars only, no validation).

A partial liquidation margins the same netting set many times, each time with one position
(the one being reduced) at another quantity and the others as they were. The set's loss vector
is the sum, in position order, of every position's ``-quantity x pnl`` row
(:func:`riskmodel.measures.losses.accumulate_loss`), so it cannot be updated in place bit for
bit; but the sum of the *other* positions (the ``rest``, formed once per reduced position) plus
the changed position's row is within a rigorous bound ``eps`` of it
(:func:`rest_eps`). As in the coarse first pass (:mod:`riskmodel.measures.screening`), that
approximation only chooses the candidates: every scenario whose approximate loss reaches
``t - 2 eps`` (``t`` the threshold of its block maxima), which provably includes every scenario
at or above the exact VaR; the candidates' exact losses are then formed exactly as
``accumulate_loss`` forms them (from 0.0, one product at a time, in position order), so the
VaR, the ES and every tail sum are bitwise those of
:func:`riskmodel.measures.kernels.netting_set_tail` on the changed set. Each trial streams two
loss-length rows instead of one per position.
"""

from __future__ import annotations

import numpy as np

from riskmodel.kernel_cache import njit
from riskmodel.measures.kernels import tail_es, tail_uniform
from riskmodel.measures.losses import (
    accumulate_loss,
    block_threshold,
    candidate_losses,
    gather_reaching,
)
from riskmodel.measures.selection import select_kth

_U64 = 2.0**-53  # unit roundoff of float64
_GROSS_LIMIT = 1e300  # beyond this scale the bound could overflow: the exact pass decides


@njit(cache=True)
def row_bounds(instrument_pnl, out):
    """``out[r] = max_i |instrument_pnl[r, i]|`` (the bound's input), in one pass.

    Parameters
    ----------
    instrument_pnl : ndarray of float64, shape (n_instruments, n_scenarios), finite
    out : ndarray of float64, shape (n_instruments,)
    """
    for r in range(instrument_pnl.shape[0]):
        bound = 0.0
        for i in range(instrument_pnl.shape[1]):
            x = abs(instrument_pnl[r, i])
            bound = x if x > bound else bound
        out[r] = bound


@njit(cache=True)
def rest_eps(instrument_index, quantity, n_pos, row_bound):
    """A bound on ``|A_i - L_i|`` for every scenario ``i``: ``L`` the exact pass's loss of the
    positions ``0:n_pos`` (a sum in position order), ``A`` the rest's loss plus the changed
    position's product (the same products summed in another order). Each is ``n_pos`` rounded
    products summed, within ``gamma_(n_pos+2) * sum |q| |P|`` of the exact sum, and
    ``|P| <= row_bound``; doubled for margin, with an absolute term far above what rounding in
    the subnormal range can add. Returns -1 where the bound could overflow."""
    gross = 0.0
    size = 0.0
    for p in range(n_pos):
        gross += abs(quantity[p]) * row_bound[instrument_index[p]]
        size += abs(quantity[p])
    if not (gross < _GROSS_LIMIT and size < _GROSS_LIMIT):
        return -1.0
    g = (n_pos + 2) * _U64 / (1.0 - (n_pos + 2) * _U64)
    return 2.0 * (2.0 * g) * gross + 1e-300 * (n_pos + 2) * (1.0 + size)


EXACT, FORMED, WITH_REST = 0, 1, 2  # how trial_tail finds the candidates


@njit(cache=True)
def trial_tail(mode, instrument_pnl, instrument_index, quantity, n_pos, confidence, k, bs,
               scratch, rest, rest_max, changed_row, changed_nq, row_bound, approx, subset,
               n_sub):
    """Uniform VaR and ES of the positions ``0:n_pos``, bitwise the tail kernels' (module
    docstring); ``scratch = (loss, block_max, work, cand_val, cand_idx, eq_idx)`` sized for
    the scenarios. ``mode``:

    * ``EXACT``: the float64 pass (the loss vector, its block maxima for ``bs``, the
      candidates);
    * ``FORMED``: ``rest`` already is that loss vector, formed by ``accumulate_loss`` with its
      block maxima ``rest_max`` (left unchanged);
    * ``WITH_REST``: ``rest`` is the exact loss of every position but the changed one (row
      ``changed_row``, ``-quantity`` equal to ``changed_nq``, one of the ``n_pos``), which
      screens the candidates (``row_bound`` the rows' largest ``|P&L|``, ``approx`` a scratch;
      ``bs > 0``); with ``n_sub >= 0`` only the scenarios ``subset[:n_sub]`` are screened
      (:func:`rest_subset`, perhaps narrowed by :func:`narrow_subset`: for every size of the
      changed position in the range it serves, which holds this one, it holds every
      scenario at or above the VaR and the ``m`` largest approximate losses).

    Returns ``(var, es)``.
    """
    loss, block_max, work, cand_val, cand_idx, eq_idx = scratch
    n = loss.size
    m = n - k + 1
    c = -1
    if mode == WITH_REST and n_sub >= 0:
        c = _subset_candidates(instrument_pnl, instrument_index, quantity, n_pos, m, rest,
                               changed_row, changed_nq, row_bound, approx, subset, n_sub,
                               cand_val, cand_idx)
    elif mode == WITH_REST:
        c = _rest_candidates(instrument_pnl, instrument_index, quantity, n_pos, m, bs, rest,
                             changed_row, changed_nq, row_bound, approx, block_max, work,
                             cand_val, cand_idx)
    if c >= 0:
        candidate_losses(instrument_pnl, instrument_index, quantity, 0, n_pos, c, cand_val,
                         cand_idx, loss)
        var = select_kth(cand_val, np.int64(0), c, c - m)
    elif mode == FORMED:
        loss = rest
        var, c = tail_uniform(rest, k, rest_max, bs, work, cand_val, cand_idx)
    else:
        accumulate_loss(instrument_pnl, instrument_index, quantity, 0, n_pos, loss, block_max,
                        bs)
        var, c = tail_uniform(loss, k, block_max, bs, work, cand_val, cand_idx)
    es = tail_es(loss, var, c, np.empty(0), confidence, cand_idx, eq_idx)[0]
    return var, es


@njit(cache=True, inline="always")
def _approx_blocks(rest, instrument_pnl, changed_row, changed_nq, bs, approx, block_max, lower):
    """The rest plus the changed position's product, ``A_i = rest_i + changed_nq x P_i``, into
    ``approx``, and the maximum over each block of ``bs`` scenarios of ``A_i`` (of
    ``min(A_i, rest_i)`` with ``lower``) into ``block_max``; returns the number of blocks."""
    n = rest.size
    nb = (n + bs - 1) // bs
    for b in range(nb):
        top = -np.inf
        for i in range(b * bs, min(n, (b + 1) * bs)):
            v = rest[i] + changed_nq * instrument_pnl[changed_row, i]
            approx[i] = v
            if lower:
                v = v if v < rest[i] else rest[i]
            top = v if v > top else top
        block_max[b] = top
    return nb


@njit(cache=True)
def _rest_candidates(instrument_pnl, instrument_index, quantity, n_pos, m, bs, rest,
                     changed_row, changed_nq, row_bound, approx, block_max, work, cand_val,
                     cand_idx):
    """The ``WITH_REST`` candidates of :func:`trial_tail` (``cand_val`` zeroed), or -1 where
    the screen does not apply (the bound could overflow): then the exact pass decides."""
    n = rest.size
    eps = rest_eps(instrument_index, quantity, n_pos, row_bound)
    if eps < 0.0:
        return -1
    nb = _approx_blocks(rest, instrument_pnl, changed_row, changed_nq, bs, approx, block_max,
                        False)
    # at least m approximate losses reach t, so the exact VaR is >= t - eps, and a scenario at
    # or above it has an approximate loss >= t - 2 eps
    cut = block_threshold(block_max, nb, work, m) - 2.0 * eps
    c = gather_reaching(approx[:n], cut, block_max, bs, cand_val, cand_idx)
    return c if c >= m else -1  # fewer cannot happen (see above): the exact pass decides


@njit(cache=True)
def rest_subset(instrument_pnl, instrument_index, quantity, n_pos, m, bs, rest, changed_row,
                changed_nq, row_bound, approx, block_max, work, subset):
    """The scenarios that can be candidates of a ``WITH_REST`` tail whatever the changed
    position's size between 0 and the one given (``changed_nq``, its ``-quantity``), into
    ``subset`` in scenario order; returns their count, or -1 where the bound could overflow.

    At a size in between, ``A_i = rest_i + nq x P_i`` lies between ``rest_i`` and
    ``A0_i = rest_i + changed_nq x P_i`` (each rounding is monotone in ``nq``), and the bound
    ``eps`` of :func:`rest_eps` is at most its value here (it grows with ``|nq|``). With ``T``
    the ``m``-th largest maximum of the blocks of ``bs`` scenarios of ``min(rest_i, A0_i)``,
    at least ``m`` of the ``A_i`` reach ``T``, so the exact VaR is ``>= T - eps`` and every
    scenario at or above it has ``max(rest_i, A0_i) >= A_i >= T - 2 eps``; the subset keeps
    those with margin (``4 eps``). ``approx`` (the ``A0_i``), ``block_max`` and ``work`` are
    scratch.
    """
    n = rest.size
    eps = rest_eps(instrument_index, quantity, n_pos, row_bound)
    if eps < 0.0:
        return -1
    nb = _approx_blocks(rest, instrument_pnl, changed_row, changed_nq, bs, approx, block_max,
                        True)
    cut = block_threshold(block_max, nb, work, m) - 4.0 * eps
    # branch-free compaction: a tenth of the scenarios or so are kept, too many for the branch
    # to predict (every index is written, the count advances on the kept ones: 9 -> 4 us)
    c = 0
    for i in range(n):
        a0 = approx[i]
        subset[c] = i
        c += (a0 if a0 > rest[i] else rest[i]) >= cut
    return c


@njit(cache=True)
def narrow_subset(instrument_pnl, instrument_index, quantity, n_pos, m, rest, changed_row,
                  nq_a, nq_b, row_bound, lows, highs, subset, n_sub):
    """The scenarios of ``subset[:n_sub]`` (a :func:`rest_subset` of a range of sizes of the
    changed position that holds ``nq_a`` to ``nq_b``) that can be candidates of a ``WITH_REST``
    tail whatever the changed position's ``-quantity`` between ``nq_a`` and ``nq_b``, compacted
    in place in scenario order; returns their count (``n_sub`` where no bound applies).

    ``quantity`` is the reduced set's at the end of the larger size (whose :func:`rest_eps`
    bounds every size between). As in :func:`rest_subset`, ``A_i`` at a size in between lies
    between its values at the ends; with ``T`` the ``m``-th largest over the subset of the
    smaller of the two, at least ``m`` of the ``A_i`` reach ``T``, so every scenario at or above
    the VaR, and each of the ``m`` largest ``A_i`` (all in the subset already), has the larger
    of the two ``>= T - 2 eps``; kept with margin (``4 eps``). A narrow bracket keeps little
    more than ``m`` scenarios, where the whole range kept hundreds more: the Illinois steps
    then screen those few. ``lows`` and ``highs`` are scratch of ``n_sub`` values at least."""
    eps = rest_eps(instrument_index, quantity, n_pos, row_bound)
    if eps < 0.0 or n_sub <= m:
        return n_sub
    for t in range(n_sub):
        i = subset[t]
        a = rest[i] + nq_a * instrument_pnl[changed_row, i]
        b = rest[i] + nq_b * instrument_pnl[changed_row, i]
        lows[t] = a if a < b else b
        highs[t] = b if a < b else a
    cut = select_kth(lows, np.int64(0), n_sub, n_sub - m) - 4.0 * eps
    c = 0
    for t in range(n_sub):  # branch-free, as in rest_subset (c <= t: in place)
        subset[c] = subset[t]
        c += highs[t] >= cut
    return c


@njit(cache=True)
def _subset_candidates(instrument_pnl, instrument_index, quantity, n_pos, m, rest, changed_row,
                       changed_nq, row_bound, approx, subset, n_sub, cand_val, cand_idx):
    """:func:`_rest_candidates` over ``subset[:n_sub]`` alone: every scenario outside it has
    an approximate loss below the ``m`` largest, so the ``m``-th largest of the subset's is
    the whole vector's; the candidates reach it less ``2 eps``, in scenario order."""
    eps = rest_eps(instrument_index, quantity, n_pos, row_bound)
    if eps < 0.0 or n_sub < m:
        return -1
    for t in range(n_sub):
        i = subset[t]
        approx[t] = rest[i] + changed_nq * instrument_pnl[changed_row, i]
        cand_val[t] = approx[t]
    cut = select_kth(cand_val, np.int64(0), n_sub, n_sub - m) - 2.0 * eps
    c = 0
    for t in range(n_sub):  # branch-free, as in rest_subset
        cand_idx[c] = subset[t]
        cand_val[c] = 0.0
        c += approx[t] >= cut
    return c if c >= m else -1
