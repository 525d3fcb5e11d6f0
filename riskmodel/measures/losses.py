"""Netting-set loss vectors and the block-maximum thresholds of their tails (numba).

Kernels that take only ndarrays and scalars and do no validation. A netting set's loss vector
``loss[i] = sum_p -quantity[p] * instrument_pnl[instrument_index[p], i]`` is formed tile by tile
(:func:`accumulate_loss`, the one place the losses are summed, so every kernel forms them with
the same operations in the same order), keeping the maxima of its blocks of scenarios. The
m-th largest block maximum is a threshold with at least m losses at or above it
(:func:`block_threshold`), and :func:`gather` collects the candidates that reach it. The
definitions of the measures built on them are in :mod:`riskmodel.measures.kernels`.
"""

from __future__ import annotations

import numpy as np
from numba import prange, uint64

from riskmodel.kernel_cache import njit
from riskmodel.measures.selection import KERNEL_ONLY, select_kth

_TILE = 1024  # scenarios per accumulation tile: 8 KiB of loss stays in L1 while positions stream
SCEN_BLOCK_MAX = 16  # scenarios per block of the tail threshold (block maxima); divides _TILE
SCEN_BLOCK_MIN = 4
_MIN_BLOCKED = 1024  # below this many scenarios, select on all of them
# Netting sets are split into at most this many prange blocks (load balance for up to dozens of
# threads). Not derived from the thread count: get_num_threads() would stop numba caching the
# kernel, and results do not depend on it anyway.
_MAX_SET_BLOCKS = 128


@njit(cache=True)
def set_blocks(n_sets):
    """``(n_blocks, block)``: the prange blocks of ``block`` consecutive netting sets each."""
    n_blocks = max(1, min(n_sets, _MAX_SET_BLOCKS))
    return n_blocks, (n_sets + n_blocks - 1) // n_blocks


@njit(cache=True)
def accumulate_loss(instrument_pnl, instrument_index, quantity, p0, p1, loss, block_max, bs):
    """Form one netting set's loss vector, and the maxima of its blocks of ``bs`` scenarios.

    ``loss[i] = sum over positions p0..p1-1, in that order, of -quantity[p] * pnl[index[p], i]``;
    ``block_max[b] = max(loss[b*bs:(b+1)*bs])`` when ``bs > 0`` (computed while the tile is in L1).

    Parameters
    ----------
    instrument_pnl : ndarray of float64, shape (n_instruments, n_scenarios); or the int16
        codes of the coarse first pass (:mod:`riskmodel.measures.screening`)
    instrument_index : ndarray of int64, shape (n_positions,)
    quantity : ndarray, shape (n_positions,): float64; float32 with the codes (each
        quantity times its row's scale), whose products and sums are then float32
    p0, p1 : int
        The set's positions ``p0:p1``.
    loss : ndarray, shape (n_scenarios,), of the dtype of ``quantity``
        Filled with the loss vector.
    block_max : ndarray, shape (>= ceil(n_scenarios / bs),)
        Filled with the block maxima when ``bs > 0``.
    bs : int
        Scenarios per block (divides ``_TILE``), or 0 for no block maxima.
    """
    n = loss.size
    for c0 in range(0, n, _TILE):
        c1 = min(n, c0 + _TILE)
        # Unsigned loop bounds: numba then emits no negative-index wraparound and LLVM vectorises
        # the axpy. Each element sees the same operations in the same order as an untiled loop.
        u0 = uint64(c0)
        u1 = uint64(c1)
        for i in range(u0, u1):
            loss[i] = 0.0
        p = p0
        # Four positions per pass over the tile: the loss is loaded and stored once per four
        # products, not once per product (20% faster). Each element still adds the products one
        # at a time in position order, so the sums are bitwise those of one position per pass.
        while p + 4 <= p1:
            j0 = uint64(instrument_index[p])
            j1 = uint64(instrument_index[p + 1])
            j2 = uint64(instrument_index[p + 2])
            j3 = uint64(instrument_index[p + 3])
            w0 = -quantity[p]
            w1 = -quantity[p + 1]
            w2 = -quantity[p + 2]
            w3 = -quantity[p + 3]
            for i in range(u0, u1):
                t = loss[i]
                t += w0 * instrument_pnl[j0, i]
                t += w1 * instrument_pnl[j1, i]
                t += w2 * instrument_pnl[j2, i]
                t += w3 * instrument_pnl[j3, i]
                loss[i] = t
            p += 4
        while p < p1:
            j = uint64(instrument_index[p])
            nq = -quantity[p]
            for i in range(u0, u1):
                loss[i] += nq * instrument_pnl[j, i]
            p += 1
        if bs > 0:
            _block_max(loss, c0, c1, bs, block_max)


@njit(cache=True, fastmath=True, **KERNEL_ONLY)
def _block_max(loss, c0, c1, bs, block_max):
    """``block_max[b] = max(loss[b*bs:(b+1)*bs])`` for the blocks in ``[c0, c1)``.

    ``bs`` divides ``_TILE`` and ``c0``, so blocks never straddle tiles. fastmath lets LLVM turn
    the branches into branch-free max instructions; a maximum of finite values is exact in any
    order (a +0.0/-0.0 tie is irrelevant: the result is only compared with ``>=``), so it cannot
    change any result.
    """
    ubs = uint64(bs)
    full_end = uint64(c0 + (c1 - c0) // bs * bs)
    for b0 in range(uint64(c0), full_end, ubs):
        top = loss[b0]
        for i in range(b0 + uint64(1), b0 + ubs):
            v = loss[i]
            top = v if v > top else top
        block_max[b0 // ubs] = top
    if full_end < uint64(c1):  # the short last block of the last tile
        top = loss[full_end]
        for i in range(full_end + uint64(1), uint64(c1)):
            v = loss[i]
            top = v if v > top else top
        block_max[full_end // ubs] = top


@njit(cache=True)
def threshold_block_size(n_scenarios, m):
    """Scenarios per threshold block for a tail of ``m`` scenarios, or 0 to select on all."""
    if n_scenarios < _MIN_BLOCKED:
        return 0
    bs = SCEN_BLOCK_MAX
    # at least 2m blocks, so that the m-th largest block maximum sits close to the VaR
    while bs > SCEN_BLOCK_MIN and (n_scenarios + bs - 1) // bs < 2 * m:
        bs //= 2
    return bs if (n_scenarios + bs - 1) // bs >= 2 * m else 0


@njit(cache=True)
def block_threshold(block_max, nb, work, rank):
    """Block maximum of descending rank ``rank`` (1-based): at least ``rank`` losses are >= it.

    ``block_max[:nb]`` is copied to the float64 scratch ``work`` and selected there.
    """
    for b in range(nb):
        work[b] = block_max[b]
    return select_kth(work, np.int64(0), nb, nb - rank)


@njit(cache=True)
def gather(loss, threshold, block_max, bs, cand_val, cand_idx):
    """Copy the losses ``>= threshold`` and their scenario indices, in scenario order.

    With ``bs > 0`` only the blocks whose maximum reaches the threshold are scanned. Branch-free
    compaction: write every value, advance the count only for the hits (``cand_*`` have room
    for ``loss.size`` entries, so the write one past the last hit is harmless). Returns the
    number of candidates.
    """
    n = loss.size
    c = 0
    if bs == 0:
        for i in range(n):
            v = loss[i]
            cand_val[c] = v
            cand_idx[c] = i
            c += v >= threshold
        return c
    for b in range((n + bs - 1) // bs):
        if block_max[b] >= threshold:
            for i in range(b * bs, min(n, (b + 1) * bs)):
                v = loss[i]
                cand_val[c] = v
                cand_idx[c] = i
                c += v >= threshold
    return c


@njit(cache=True)
def candidate_losses(instrument_pnl, instrument_index, quantity, p0, p1, c, cand_val, cand_idx,
                     loss):
    """The exact losses of the candidates ``cand_idx[:c]`` (``cand_val`` zeroed), each summed
    from 0.0 one product at a time in position order, exactly as :func:`accumulate_loss` sums
    them, into ``cand_val[:c]`` and ``loss`` at the candidates. Position by position over all
    candidates: independent reads of one row."""
    for p in range(p0, p1):
        j = instrument_index[p]
        nq = -quantity[p]
        for t in range(c):
            cand_val[t] += nq * instrument_pnl[j, cand_idx[t]]
    for t in range(c):
        loss[cand_idx[t]] = cand_val[t]


@njit(cache=True)
def gather_reaching(values, cut, block_max, bs, cand_val, cand_idx):
    """The scenarios whose ``values`` reach ``cut`` (only the blocks whose maximum
    ``block_max`` does are scanned), in scenario order, into ``cand_idx`` with ``cand_val``
    zeroed: the candidates of a screened tail, whose exact losses the caller then sums. Returns
    their count."""
    n = values.size
    c = 0
    for b in range((n + bs - 1) // bs):
        if block_max[b] >= cut:
            for i in range(b * bs, min(n, (b + 1) * bs)):
                if values[i] >= cut:
                    cand_idx[c] = i
                    cand_val[c] = 0.0
                    c += 1
    return c


@njit(cache=True, parallel=True)
def netting_set_max_loss(instrument_pnl, indptr, instrument_index, quantity, max_out):
    """Largest scenario loss of every netting set (the worst-scenario stress loss).

    Forms each set's loss vector exactly as :func:`riskmodel.measures.kernels.netting_set_tail`
    does and keeps only its maximum, so it is also the accumulation floor that the tail
    selection adds to.

    Parameters
    ----------
    instrument_pnl : ndarray of float64, shape (n_instruments, n_scenarios), C-contiguous
    indptr : ndarray of int64, shape (n_sets + 1,)
    instrument_index : ndarray of int64, shape (n_positions,)
    quantity : ndarray of float64, shape (n_positions,)
    max_out : ndarray of float64, shape (n_sets,)
        Filled with ``max_i L_i`` of each set.
    """
    n_sets = indptr.size - 1
    n = instrument_pnl.shape[1]
    n_blocks, block = set_blocks(n_sets)
    bs = SCEN_BLOCK_MAX
    nb = (n + bs - 1) // bs
    for b in prange(n_blocks):
        loss = np.empty(n)
        block_max = np.empty(nb)
        for s in range(b * block, min(n_sets, (b + 1) * block)):
            p0 = indptr[s]
            p1 = indptr[s + 1]
            accumulate_loss(
                instrument_pnl, instrument_index, quantity, p0, p1, loss, block_max, bs
            )
            worst = block_max[0]
            for t in range(1, nb):
                if block_max[t] > worst:
                    worst = block_max[t]
            max_out[s] = worst
