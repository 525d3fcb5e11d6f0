"""Numba tail kernels: VaR, expected shortfall and Euler contributions per netting set.

The one definition used by every kernel, twin and test
-------------------------------------------------------
Losses are positive (loss = -P&L). Scenario ``i`` has probability weight ``w_i``: ``1/n`` when no
weights are given, otherwise the given non-negative weights normalised to sum 1.

* VaR at confidence ``a`` is the smallest loss ``l`` with ``P(L <= l) >= a``.
* ES is the Acerbi-Tasche tail mean, exact for ties and weighted scenarios::

      ES = 1/(1-a) * ( sum_{i: L_i > VaR} w_i L_i + VaR * (P(L <= VaR) - a) )

Floating-point rule for ``P(L <= l)``:

* Uniform weights: ``P(L <= l) = count/n`` in float64 (count = number of scenarios with
  ``L_i <= l``), compared exactly as ``count/n >= a``. For ``a = 0.99, n = 500`` this gives the
  495th smallest loss (``495/500 == 0.99`` in float64), never ``ceil(a*n)`` with its rounding.
* Weights: ``P(L <= l) = 1 - sum_{i: L_i > l} w_i`` (the cumulative weight of the upper tail, which
  is the accurate sum where the decision is made) compared with a tolerance,
  ``P(L <= l) >= a - WEIGHT_TOL`` with ``WEIGHT_TOL = 1e-12``. The tolerance absorbs rounding in the
  weight sums, so the selected scenario depends neither on the order of summation nor on whether
  uniform weights are passed explicitly (up to confidences within 1e-12 of a step of the
  distribution function, where the weighted rule takes the lower step).

Euler contributions of position ``k`` (``loss_k,i = -quantity_k * instrument_pnl[j_k, i]``), which
sum to the measure:

* ES: ``1/(1-a) * ( sum_{i: L_i > VaR} w_i loss_k,i + (P(L <= VaR) - a) * tie_k )``
* VaR: ``tie_k``

where ``tie_k`` is the ``w``-weighted mean of ``loss_k,i`` over the scenarios tied at
``L_i == VaR``. (Where scenarios tie exactly the measure is not differentiable and the Euler
allocation is not unique; averaging over the tied scenarios is the convention used.)

Implementation notes
--------------------
Kernels take only ndarrays and scalars and do no validation (see :mod:`riskmodel.measures.api`).
The netting-set loss vectors are formed one set at a time in scratch buffers allocated once per
block of sets (the ``n_sets x n_scenarios`` matrix is never materialised); ``prange`` runs over
the blocks. Every set is computed with a fixed sequence of floating-point operations, so results
are bitwise identical for any thread count, block size or chunking; no fastmath touches the
arithmetic (so no FMA contraction either), and the loss vectors equal the twins' bit for bit.

The VaR order statistic is found by selection, never by a full sort. While each tile of the loss
vector is formed, the maxima of its blocks of 16 scenarios are kept; the m-th largest block
maximum ``t`` (``m = n - k + 1``, the VaR's rank from the top) is a threshold with at least m
losses ``>= t``, hence ``t <= VaR``. Only the scenarios of the blocks that reach ``t`` are
gathered, in scenario order, and an introselect (or, with weights, a partition-and-accumulate
weighted selection) runs on those few candidates. With weights the threshold is checked exactly
(the weight at or above it must exceed ``1 - a``) and lowered until it holds, so the threshold
affects speed only, never the result.

Uniform tails may first be screened in float32 (:func:`netting_set_tail_screened`, with a
float32 copy of the P&L): the loss vector is formed in float32, half the bytes streamed, and
the threshold taken from its block maxima. A rigorous bound ``eps`` on the float32 rounding
(:func:`_screen_eps`) makes every scenario with ``L32 >= t - 2 eps`` a candidate, which
provably includes every scenario at or above the float64 VaR; only the candidates' float64
losses are formed, with the same operations in the same order as the full float64 pass, so
every result is bitwise that of the float64 pass.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange, uint64

WEIGHT_TOL = 1e-12
"""Tolerance of the weighted rule ``P(L <= l) >= a - WEIGHT_TOL``."""

_TILE = 1024  # scenarios per accumulation tile: 8 KiB of loss stays in L1 while positions stream
_SCEN_BLOCK_MAX = 16  # scenarios per block of the tail threshold (block maxima); divides _TILE
_SCEN_BLOCK_MIN = 4
_MIN_BLOCKED = 1024  # below this many scenarios, select on all of them
_SMALL = 16  # ranges this short are finished by insertion sort
# Netting sets are split into at most this many prange blocks (load balance for up to dozens of
# threads). Not derived from the thread count: get_num_threads() would stop numba caching the
# kernel, and results do not depend on it anyway.
_MAX_SET_BLOCKS = 128


@njit(cache=True)
def uniform_rank(n_scenarios, confidence):
    """1-based rank ``k`` of the uniform VaR: the smallest ``k`` with ``k / n >= a`` in float64."""
    n = n_scenarios
    k = int(np.ceil(confidence * n))
    k = min(max(k, 1), n)
    # ceil(a*n) can be off by one either way after rounding; settle it with the rule itself
    while k > 1 and (k - 1) / n >= confidence:
        k -= 1
    while k < n and k / n < confidence:
        k += 1
    return k


@njit(cache=True)
def _accumulate_loss(instrument_pnl, instrument_index, quantity, p0, p1, loss, block_max, bs):
    """Form one netting set's loss vector, and the maxima of its blocks of ``bs`` scenarios.

    ``loss[i] = sum over positions p0..p1-1, in that order, of -quantity[p] * pnl[index[p], i]``;
    ``block_max[b] = max(loss[b*bs:(b+1)*bs])`` when ``bs > 0`` (computed while the tile is in L1).
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


@njit(cache=True, fastmath=True)
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
def _median3(a, b, c):
    if a < b:
        if b < c:
            return b
        return c if a < c else a
    if a < c:
        return a
    return c if b < c else b


@njit(cache=True)
def _partition_lt(x, lo, hi, pivot):
    """Move the values ``< pivot`` of ``x[lo:hi]`` to its front; return where they end.

    Branch-free (an unconditional swap and a conditional increment): the comparisons of fresh
    data are unpredictable, and mispredicted branches would cost more than the partition itself.
    """
    lt = lo
    for i in range(lo, hi):
        v = x[i]
        x[i] = x[lt]
        x[lt] = v
        lt += v < pivot
    return lt


@njit(cache=True)
def _partition_le(x, lo, hi, pivot):
    """:func:`_partition_lt` for the values ``<= pivot``."""
    le = lo
    for i in range(lo, hi):
        v = x[i]
        x[i] = x[le]
        x[le] = v
        le += v <= pivot
    return le


@njit(cache=True)
def _insertion_sort(x, lo, hi):
    for i in range(lo + 1, hi):
        v = x[i]
        j = i - 1
        while j >= lo and x[j] > v:
            x[j + 1] = x[j]
            j -= 1
        x[j + 1] = v


@njit(cache=True)
def _select_kth(x, lo, hi, kth):
    """Value of ascending rank ``kth`` (``lo <= kth < hi``) within ``x[lo:hi]``; reorders it.

    Introselect: median-of-three quickselect with branch-free partitions, three-way in effect
    (``< pivot``, then ``== pivot`` split from ``> pivot`` when needed, so a run of ties ends the
    search at once), falling back to a sort of the remaining range if partitioning degenerates.
    """
    depth_left = 2 * int(np.log2(hi - lo + 1)) + 8
    while hi - lo > _SMALL:
        if depth_left == 0:
            x[lo:hi].sort()
            return x[kth]
        depth_left -= 1
        pivot = _median3(x[lo], x[lo + (hi - lo) // 2], x[hi - 1])
        lt = _partition_lt(x, lo, hi, pivot)  # [lo, lt) < pivot <= [lt, hi)
        if kth < lt:
            hi = lt
            continue
        eq = _partition_le(x, lt, hi, pivot)  # [lt, eq) == pivot < [eq, hi)
        if kth < eq:
            return pivot
        lo = eq
    _insertion_sort(x, lo, hi)
    return x[kth]


@njit(cache=True)
def _partition_w(x, w, lo, hi, pivot, strict):
    """Move the values ``> pivot`` (``strict``) or ``>= pivot`` of ``x[lo:hi]`` to its front,
    carrying the weights ``w`` along; branch-free. Returns where they end and their weight.
    """
    gt = lo
    w_moved = 0.0
    for i in range(lo, hi):
        v = x[i]
        wv = w[i]
        x[i] = x[gt]
        w[i] = w[gt]
        x[gt] = v
        w[gt] = wv
        hit = v > pivot if strict else v >= pivot
        w_moved += wv if hit else 0.0
        gt += hit
    return gt, w_moved


@njit(cache=True)
def _select_weighted_sorted(x, w, lo, hi, above, a_tol):
    """Fallback of :func:`_select_weighted`: sort ``x[lo:hi]`` and walk down from the top."""
    order = np.argsort(x[lo:hi])
    t = order.size - 1
    best = x[lo + order[t]]
    while t >= 0:
        v = x[lo + order[t]]
        if 1.0 - above < a_tol:
            break
        best = v
        while t >= 0 and x[lo + order[t]] == v:
            above += w[lo + order[t]]
            t -= 1
    return best


@njit(cache=True)
def _select_weighted(x, w, c, a_tol):
    """Smallest ``v`` among ``x[:c]`` with ``1 - W(x > v) >= a_tol``; reorders ``x``, ``w``.

    ``W`` sums the weights ``w``. Precondition: every loss below ``min(x[:c])`` fails the rule, so
    the answer is one of the candidates. Quickselect that partitions around a pivot (descending:
    ``> pivot``, ``== pivot``, ``< pivot``) and accumulates the weight above the range instead of
    counting ranks.
    """
    lo = 0
    hi = c
    above = 0.0  # weight of the losses known to lie above every value in x[lo:hi]
    depth_left = 2 * int(np.log2(c + 1)) + 8
    while hi - lo > 1:
        if depth_left == 0:
            return _select_weighted_sorted(x, w, lo, hi, above, a_tol)
        depth_left -= 1
        pivot = _median3(x[lo], x[lo + (hi - lo) // 2], x[hi - 1])
        gt, w_gt = _partition_w(x, w, lo, hi, pivot, True)  # [lo, gt) > pivot
        if 1.0 - (above + w_gt) < a_tol:
            # the pivot fails, so the VaR lies above it
            if gt == lo:
                return pivot  # only reachable through rounding; the pivot is the top value
            hi = gt
            continue
        eq, w_eq = _partition_w(x, w, gt, hi, pivot, False)  # [gt, eq) == pivot > [eq, hi)
        if eq == hi or 1.0 - (above + w_gt + w_eq) < a_tol:
            # the pivot passes and the next lower loss fails (or lies below the candidates)
            return pivot
        above += w_gt + w_eq
        lo = eq
    return x[lo]


@njit(cache=True)
def _threshold_block_size(n_scenarios, m):
    """Scenarios per threshold block for a tail of ``m`` scenarios, or 0 to select on all."""
    if n_scenarios < _MIN_BLOCKED:
        return 0
    bs = _SCEN_BLOCK_MAX
    # at least 2m blocks, so that the m-th largest block maximum sits close to the VaR
    while bs > _SCEN_BLOCK_MIN and (n_scenarios + bs - 1) // bs < 2 * m:
        bs //= 2
    return bs if (n_scenarios + bs - 1) // bs >= 2 * m else 0


@njit(cache=True)
def _block_threshold(block_max, nb, work, rank):
    """Block maximum of descending rank ``rank`` (1-based): at least ``rank`` losses are >= it."""
    for b in range(nb):
        work[b] = block_max[b]
    return _select_kth(work, 0, nb, nb - rank)


@njit(cache=True)
def _gather(loss, threshold, block_max, bs, cand_val, cand_idx):
    """Copy the losses ``>= threshold`` and their scenario indices, in scenario order.

    With ``bs > 0`` only the blocks whose maximum reaches the threshold are scanned. Branch-free
    compaction: write every value, advance the count only for the hits (``cand_*`` have room
    for ``loss.size`` entries, so the write one past the last hit is harmless).
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
def _tail_uniform(loss, k, block_max, bs, work, cand_val, cand_idx):
    """VaR (the k-th smallest loss) and the candidates, all the losses >= some t <= VaR.

    Returns ``(var, c)``; ``cand_idx[:c]`` holds the candidate scenarios in scenario order.
    """
    n = loss.size
    m = n - k + 1  # descending rank of the VaR
    threshold = -np.inf
    if bs > 0:
        # m blocks have a maximum >= this threshold, so at least m losses do: VaR >= threshold
        threshold = _block_threshold(block_max, (n + bs - 1) // bs, work, m)
    c = _gather(loss, threshold, block_max, bs, cand_val, cand_idx)
    var = _select_kth(cand_val, 0, c, c - m)
    return var, c


@njit(cache=True)
def _tail_weighted(loss, weights, confidence, block_max, bs, work, cand_val, cand_w, cand_idx):
    """Weighted counterpart of :func:`_tail_uniform`; returns ``(var, c)``."""
    n = loss.size
    a_tol = confidence - WEIGHT_TOL
    nb = (n + bs - 1) // bs if bs > 0 else 0
    rank = int((1.0 - confidence) * n) + 1  # first guess as if uniform, widened below if needed
    while True:
        threshold = -np.inf
        if rank <= nb // 2:
            threshold = _block_threshold(block_max, nb, work, rank)
        c = _gather(loss, threshold, block_max, bs, cand_val, cand_idx)
        w_cand = 0.0
        for t in range(c):
            w_cand += weights[cand_idx[t]]
        # every loss below the threshold fails the rule when P(L < threshold) < a - tol
        if threshold == -np.inf or 1.0 - w_cand < a_tol:
            break
        rank *= 4
    for t in range(c):
        cand_w[t] = weights[cand_idx[t]]
    var = _select_weighted(cand_val, cand_w, c, a_tol)
    return var, c


_U32 = 2.0**-24  # unit roundoff of float32
_U64 = 2.0**-53
SCREEN_LIMIT = 1e30  # float32 overflows at 3.4e38: beyond this scale, no first pass


@njit(cache=True)
def _screen_eps(instrument_index, quantity, row_bound, p0, p1):
    """A bound on ``|L32_i - L_i|`` for every scenario ``i``: the float32 loss of the first
    pass against the float64 loss of :func:`_accumulate_loss`, or -1 when float32 could
    overflow. Both are ``k`` rounded products summed in order, from inputs rounded to their
    precision, so each is within ``gamma_(k+2) * sum |q| |P|`` of the exact sum (``gamma_j =
    j u / (1 - j u)``), and ``|P| <= row_bound``; doubled for margin. Rounding into float32's
    subnormal range adds at most ``2^-149`` to an input or a product (sums of floats round
    relatively), hence the absolute term, far above ``2^-149 * sum(|q| + |P| + 1)``."""
    k = p1 - p0
    gross = 0.0
    size = 0.0
    rows = 0.0
    for p in range(p0, p1):
        bound = row_bound[instrument_index[p]]
        size += abs(quantity[p])
        rows += bound
        gross += abs(quantity[p]) * bound
    if not (size < SCREEN_LIMIT and gross < SCREEN_LIMIT):
        return -1.0
    g32 = (k + 2) * _U32 / (1.0 - (k + 2) * _U32)
    g64 = (k + 2) * _U64 / (1.0 - (k + 2) * _U64)
    return 2.0 * (g32 + g64) * gross + 1e-30 * (k + 2) * (1.0 + size + rows)


@njit(cache=True)
def _tail_screened(instrument_pnl, pnl32, instrument_index, quantity, quantity32, row_bound,
                   p0, p1, k, bs, loss, loss32, block_max32, work, cand_val, cand_idx):
    """:func:`_tail_uniform` from a float32 first pass, which streams half the bytes.

    The float32 losses ``L32`` (same positions, same order) are within ``eps`` of the float64
    ones ``L`` (:func:`_screen_eps`). At least ``m`` values of ``L32`` reach the block
    threshold ``t``, so the VaR (the ``m``-th largest ``L``) is ``>= t - eps``, and every
    scenario with ``L >= VaR`` has ``L32 >= t - 2 eps``. Those candidates get their float64
    loss, computed exactly as :func:`_accumulate_loss` computes it (a sum from 0.0, one product
    at a time, in position order), and the VaR is selected among them: the candidates, the VaR
    and every tail sum are bitwise those of the float64 pass. Returns ``(var, c)`` as
    :func:`_tail_uniform` does, with ``loss`` filled at the candidates only; ``c = -1`` where
    the first pass does not apply (float32 could overflow).
    """
    n = loss.size
    m = n - k + 1
    eps = _screen_eps(instrument_index, quantity, row_bound, p0, p1)
    if eps < 0.0:
        return 0.0, -1
    _accumulate_loss(pnl32, instrument_index, quantity32, p0, p1, loss32, block_max32, bs)
    nb = (n + bs - 1) // bs
    cut = _block_threshold(block_max32, nb, work, m) - 2.0 * eps
    c = 0
    for b in range(nb):
        if block_max32[b] >= cut:
            for i in range(b * bs, min(n, (b + 1) * bs)):
                if loss32[i] >= cut:
                    cand_idx[c] = i
                    cand_val[c] = 0.0
                    c += 1
    if c < m:  # cannot happen (see above); the float64 pass decides then
        return 0.0, -1
    # position by position over all candidates (independent reads of one row), each
    # candidate still summing its products in position order
    for p in range(p0, p1):
        j = instrument_index[p]
        nq = -quantity[p]
        for t in range(c):
            cand_val[t] += nq * instrument_pnl[j, cand_idx[t]]
    for t in range(c):
        loss[cand_idx[t]] = cand_val[t]
    var = _select_kth(cand_val, 0, c, c - m)
    return var, c


@njit(cache=True)
def _set_tail(
    instrument_pnl,
    instrument_index,
    quantity,
    p0,
    p1,
    weights,
    confidence,
    use_es,
    k,
    bs,
    loss,
    block_max,
    work,
    cand_val,
    cand_w,
    cand_idx,
    eq_idx,
    contribution_out,
    pnl32,
    quantity32,
    row_bound,
    loss32,
    block_max32,
):
    """VaR, ES and the Euler contributions (written to contribution_out[p0:p1]) of one set.

    With a float32 copy of the P&L (``pnl32`` has rows), uniform weights and blocked
    thresholds, the tail is found from a float32 first pass (:func:`_tail_screened`); the
    results are bitwise those of the float64 pass.
    """
    n = loss.size
    weighted = weights.size > 0
    a = confidence
    var = 0.0
    c = -1
    if pnl32.shape[0] > 0 and not weighted and bs > 0:
        var, c = _tail_screened(instrument_pnl, pnl32, instrument_index, quantity, quantity32,
                                row_bound, p0, p1, k, bs, loss, loss32, block_max32, work,
                                cand_val, cand_idx)
    if c < 0:
        _accumulate_loss(instrument_pnl, instrument_index, quantity, p0, p1, loss, block_max,
                         bs)
        if weighted:
            var, c = _tail_weighted(loss, weights, a, block_max, bs, work, cand_val, cand_w,
                                    cand_idx)
        else:
            var, c = _tail_uniform(loss, k, block_max, bs, work, cand_val, cand_idx)

    # One pass over the candidates in scenario order: tail sums, and the scenarios above the VaR
    # (compacted in place to the front of cand_idx) and tied with it (eq_idx).
    n_gt = 0
    n_eq = 0
    s_gt = 0.0
    w_gt = 0.0
    w_eq = 0.0
    for t in range(c):
        i = cand_idx[t]
        v = loss[i]
        if v > var:
            cand_idx[n_gt] = i
            n_gt += 1
            if weighted:
                s_gt += weights[i] * v
                w_gt += weights[i]
            else:
                s_gt += v
        elif v == var:
            eq_idx[n_eq] = i
            n_eq += 1
            if weighted:
                w_eq += weights[i]
    if weighted:
        p_le = 1.0 - w_gt
        es = (s_gt + var * (p_le - a)) / (1.0 - a)
    else:
        p_le = (n - n_gt) / n
        es = (s_gt / n + var * (p_le - a)) / (1.0 - a)
    # zero-weight ties only arise in degenerate inputs; fall back to their plain mean
    tie_weighted = weighted and w_eq > 0.0

    for p in range(p0, p1):
        j = instrument_index[p]
        nq = -quantity[p]
        tie = 0.0
        for t in range(n_eq):
            i = eq_idx[t]
            if tie_weighted:
                tie += weights[i] * (nq * instrument_pnl[j, i])
            else:
                tie += nq * instrument_pnl[j, i]
        tie = tie / w_eq if tie_weighted else tie / n_eq
        if use_es:
            tail = 0.0
            for t in range(n_gt):
                i = cand_idx[t]
                if weighted:
                    tail += weights[i] * (nq * instrument_pnl[j, i])
                else:
                    tail += nq * instrument_pnl[j, i]
            if not weighted:
                tail = tail / n
            contribution_out[p] = (tail + (p_le - a) * tie) / (1.0 - a)
        else:
            contribution_out[p] = tie
    return var, es


@njit(cache=True)
def netting_set_tail(
    instrument_pnl,
    indptr,
    instrument_index,
    quantity,
    weights,
    confidence,
    use_es,
    var_out,
    es_out,
    contribution_out,
):
    """:func:`netting_set_tail_screened` with the float64 pass only (no float32 copy)."""
    netting_set_tail_screened(
        instrument_pnl, indptr, instrument_index, quantity, weights, confidence, use_es,
        var_out, es_out, contribution_out,
        np.empty((0, instrument_pnl.shape[1]), dtype=np.float32),
        np.empty(0, dtype=np.float32), np.empty(0),
    )


@njit(cache=True, parallel=True)
def netting_set_tail_screened(
    instrument_pnl,
    indptr,
    instrument_index,
    quantity,
    weights,
    confidence,
    use_es,
    var_out,
    es_out,
    contribution_out,
    pnl32,
    quantity32,
    row_bound,
):
    """VaR, ES and Euler contributions of every netting set of a CSR book.

    Parameters
    ----------
    instrument_pnl : ndarray of float64, shape (n_instruments, n_scenarios), C-contiguous
        P&L per unit quantity of each unique instrument in each scenario.
    indptr : ndarray of int64, shape (n_sets + 1,)
        Netting set ``s`` holds positions ``indptr[s]:indptr[s + 1]``.
    instrument_index : ndarray of int64, shape (n_positions,)
        Row of ``instrument_pnl`` of each position.
    quantity : ndarray of float64, shape (n_positions,)
        Signed quantity of each position.
    weights : ndarray of float64, shape (n_scenarios,) or (0,)
        Normalised scenario weights; an empty array means uniform (the fast path).
    confidence : float
        Confidence level ``a`` in (0, 1).
    use_es : bool
        Contributions to ES if true, to VaR otherwise.
    var_out, es_out : ndarray of float64, shape (n_sets,)
        Filled with the VaR and ES of each set.
    contribution_out : ndarray of float64, shape (n_positions,)
        Filled with the Euler contribution of each position to the chosen measure.
    pnl32 : ndarray of float32, shape (n_instruments, n_scenarios) or (0, n_scenarios)
        ``instrument_pnl`` rounded to float32, for the first pass of uniform tails
        (:func:`_tail_screened`); no rows: every set takes the float64 pass. Either way the
        results are the same, bit for bit.
    quantity32 : ndarray of float32, shape (n_positions,) or (0,)
        ``quantity`` rounded to float32 (with ``pnl32``).
    row_bound : ndarray of float64, shape (n_instruments,) or (0,)
        ``max |instrument_pnl[j]|`` of each row (with ``pnl32``).

    Notes
    -----
    No validation: the caller guarantees shapes, dtypes, finite values, indices in range and
    ``n_scenarios >= 1``. An empty netting set has a zero loss vector (VaR = ES = 0).
    """
    n_sets = indptr.size - 1
    n = instrument_pnl.shape[1]
    weighted = weights.size > 0
    k = uniform_rank(n, confidence)
    m = n - k + 1 if not weighted else int((1.0 - confidence) * n) + 1
    bs = _threshold_block_size(n, m)
    n_blocks = max(1, min(n_sets, _MAX_SET_BLOCKS))
    block = (n_sets + n_blocks - 1) // n_blocks
    for b in prange(n_blocks):
        # per-block scratch, allocated once and reused by every set of the block
        loss = np.empty(n)
        block_max = np.empty(n // _SCEN_BLOCK_MIN + 1)
        work = np.empty(n // _SCEN_BLOCK_MIN + 1)
        cand_val = np.empty(n)
        cand_w = np.empty(n if weighted else 0)
        cand_idx = np.empty(n, dtype=np.int64)
        eq_idx = np.empty(n, dtype=np.int64)
        screening = pnl32.shape[0] > 0
        loss32 = np.empty(n if screening else 0, dtype=np.float32)
        block_max32 = np.empty(n // _SCEN_BLOCK_MIN + 1 if screening else 0, dtype=np.float32)
        for s in range(b * block, min(n_sets, (b + 1) * block)):
            var, es = _set_tail(
                instrument_pnl,
                instrument_index,
                quantity,
                indptr[s],
                indptr[s + 1],
                weights,
                confidence,
                use_es,
                k,
                bs,
                loss,
                block_max,
                work,
                cand_val,
                cand_w,
                cand_idx,
                eq_idx,
                contribution_out,
                pnl32,
                quantity32,
                row_bound,
                loss32,
                block_max32,
            )
            var_out[s] = var
            es_out[s] = es


@njit(cache=True, parallel=True)
def float32_rows(instrument_pnl, pnl32, row_bound):
    """The float32 copy of ``instrument_pnl`` (rounded to nearest, as numpy's cast) into
    ``pnl32`` and each row's largest ``|P&L|`` into ``row_bound`` (+inf for a row holding a
    NaN), in one parallel pass: the screened kernel's inputs, without numpy's three passes.

    Parameters
    ----------
    instrument_pnl : ndarray of float64, shape (n_instruments, n_scenarios), C-contiguous
    pnl32 : ndarray of float32, same shape, C-contiguous
    row_bound : ndarray of float64, shape (n_instruments,)
    """
    n = instrument_pnl.shape[1]
    for r in prange(instrument_pnl.shape[0]):
        bound = 0.0
        for i in range(n):
            x = instrument_pnl[r, i]
            pnl32[r, i] = np.float32(x)
            if not abs(x) <= bound:  # a larger magnitude, or a NaN
                bound = abs(x) if x == x else np.inf
        row_bound[r] = bound


@njit(cache=True, parallel=True)
def netting_set_max_loss(instrument_pnl, indptr, instrument_index, quantity, max_out):
    """Largest scenario loss of every netting set (the worst-scenario stress loss).

    Forms each set's loss vector exactly as :func:`netting_set_tail` does and keeps only its
    maximum, so it is also the accumulation floor that the tail selection adds to.

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
    n_blocks = max(1, min(n_sets, _MAX_SET_BLOCKS))
    block = (n_sets + n_blocks - 1) // n_blocks
    bs = _SCEN_BLOCK_MAX
    nb = (n + bs - 1) // bs
    for b in prange(n_blocks):
        loss = np.empty(n)
        block_max = np.empty(nb)
        for s in range(b * block, min(n_sets, (b + 1) * block)):
            p0 = indptr[s]
            p1 = indptr[s + 1]
            _accumulate_loss(
                instrument_pnl, instrument_index, quantity, p0, p1, loss, block_max, bs
            )
            worst = block_max[0]
            for t in range(1, nb):
                if block_max[t] > worst:
                    worst = block_max[t]
            max_out[s] = worst
