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

The kernels are split by concern:

* :mod:`riskmodel.measures.losses`: the loss vectors (:func:`~.losses.accumulate_loss`, the one
  place the losses are summed), the block-maximum thresholds, the gathering of candidates, and
  :func:`~.losses.netting_set_max_loss`;
* :mod:`riskmodel.measures.selection`: the order statistics (introselect, weighted selection);
* :mod:`riskmodel.measures.screening`: the coarse first pass and :func:`~.screening.quantise_rows`;
* this module: the definition above, the VaR/ES/Euler kernels of the netting sets, and the
  names of the others that callers import from here.

The VaR order statistic is found by selection, never by a full sort. While each tile of the loss
vector is formed, the maxima of its blocks of 16 scenarios are kept; the m-th largest block
maximum ``t`` (``m = n - k + 1``, the VaR's rank from the top) is a threshold with at least m
losses ``>= t``, hence ``t <= VaR``. Only the scenarios of the blocks that reach ``t`` are
gathered, in scenario order, and an introselect (or, with weights, a partition-and-accumulate
weighted selection) runs on those few candidates. With weights the threshold is checked exactly
(the weight at or above it must exceed ``1 - a``) and lowered until it holds, so the threshold
affects speed only, never the result.

Uniform tails may first be screened on a coarse copy of the P&L (:func:`tail_screened_parallel`,
with the P&L as 16-bit codes times a scale per row): the loss vector is formed in float32 from
the codes, a quarter of the bytes streamed, and the threshold taken from its block maxima. A
rigorous bound ``eps`` on the coding and the float32 rounding
(:func:`~riskmodel.measures.screening.screen_eps`) makes every scenario with
``L32 >= t - 2 eps`` a candidate, which provably includes every scenario at or above the float64
VaR; only the candidates' float64 losses are formed, with the same operations in the same order
as the full float64 pass, so every result is bitwise that of the float64 pass.

Kernels
-------
A numba kernel compiles every function it can reach, so each kind of tail has kernels of its
own and a run compiles only those it calls (:func:`netting_set_tail` chooses): equally likely
scenarios (:func:`tail_uniform_parallel`, :func:`tail_uniform_serial`), weighted ones
(:func:`tail_weighted_parallel`, :func:`tail_weighted_serial`) and the coarse first pass
(:func:`tail_screened_parallel`, partitions of many sets only). A book of less work than
:data:`SERIAL_MAX_WORK` positions x scenarios (the demo, a what-if, a liquidation step) runs,
and compiles, no parallel region, unless the parallel kernel is compiled in the process already
and more than one thread may run it, from :data:`PARALLEL_COMPILED_WORK`
(:func:`prefer_parallel`: the live loop's refresh slices). Each runs the set-level function of
its kind (:func:`set_tail_uniform`, :func:`set_tail_weighted`, :func:`set_tail_screened`) for
every set, so all give the same bits.
"""

from __future__ import annotations

import numpy as np
from numba import prange

from riskmodel.kernel_cache import njit
from riskmodel.measures.background import parallel_pays
from riskmodel.measures.background import wait as wait_for_background
from riskmodel.measures.losses import (
    SCEN_BLOCK_MIN,
    accumulate_loss,
    block_threshold,
    gather,
    netting_set_max_loss,
    set_blocks,
    threshold_block_size,
)
from riskmodel.measures.screening import SCREEN_LIMIT, quantise_rows, tail_screened
from riskmodel.measures.selection import KERNEL_ONLY, select_kth, select_weighted

__all__ = [
    "SCREEN_LIMIT",
    "WEIGHT_TOL",
    "netting_set_max_loss",
    "netting_set_tail",
    "prefer_parallel",
    "quantise_rows",
    "set_tail_screened",
    "set_tail_uniform",
    "set_tail_weighted",
    "uniform_rank",
]

WEIGHT_TOL = 1e-12
"""Tolerance of the weighted rule ``P(L <= l) >= a - WEIGHT_TOL``."""


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
def tail_uniform(loss, k, block_max, bs, work, cand_val, cand_idx):
    """VaR (the k-th smallest loss) and the candidates, all the losses >= some t <= VaR.

    Returns ``(var, c)``; ``cand_idx[:c]`` holds the candidate scenarios in scenario order.
    """
    n = loss.size
    m = n - k + 1  # descending rank of the VaR
    threshold = -np.inf
    if bs > 0:
        # m blocks have a maximum >= this threshold, so at least m losses do: VaR >= threshold
        threshold = block_threshold(block_max, (n + bs - 1) // bs, work, m)
    c = gather(loss, threshold, block_max, bs, cand_val, cand_idx)
    var = select_kth(cand_val, np.int64(0), c, c - m)
    return var, c


@njit(cache=True)
def _tail_weighted(loss, weights, confidence, block_max, bs, work, cand_val, cand_w, cand_idx):
    """Weighted counterpart of :func:`tail_uniform`; returns ``(var, c)``."""
    n = loss.size
    a_tol = confidence - WEIGHT_TOL
    nb = (n + bs - 1) // bs if bs > 0 else 0
    rank = int((1.0 - confidence) * n) + 1  # first guess as if uniform, widened below if needed
    while True:
        threshold = -np.inf
        if rank <= nb // 2:
            threshold = block_threshold(block_max, nb, work, rank)
        c = gather(loss, threshold, block_max, bs, cand_val, cand_idx)
        w_cand = 0.0
        for t in range(c):
            w_cand += weights[cand_idx[t]]
        # every loss below the threshold fails the rule when P(L < threshold) < a - tol
        if threshold == -np.inf or 1.0 - w_cand < a_tol:
            break
        rank *= 4
    for t in range(c):
        cand_w[t] = weights[cand_idx[t]]
    var = select_weighted(cand_val, cand_w, c, a_tol)
    return var, c


@njit(cache=True, **KERNEL_ONLY)
def _split_at_var(loss, var, c, weights, cand_idx, eq_idx):
    """One pass over the candidates in scenario order: the tail sums, and the scenarios above
    the VaR (compacted in place to the front of ``cand_idx``) and tied with it (``eq_idx``).

    Returns ``(n_gt, n_eq, s_gt, w_gt, w_eq)``: the counts above and at the VaR, the (weighted)
    sum of the losses above it, and the weights above and at it (0 without weights).
    """
    weighted = weights.size > 0
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
    return n_gt, n_eq, s_gt, w_gt, w_eq


@njit(cache=True)
def tail_es(loss, var, c, weights, confidence, cand_idx, eq_idx):
    """The ES of a loss vector from its VaR and candidates (:func:`_split_at_var`, which
    reorders ``cand_idx`` and fills ``eq_idx``): the definition's formula, the one place it is
    written. Returns ``(es, n_gt, n_eq, p_le, w_eq)``: the ES, the counts above and at the VaR,
    ``P(L <= VaR)`` and the weight at the VaR (0 without weights)."""
    n = loss.size
    a = confidence
    n_gt, n_eq, s_gt, w_gt, w_eq = _split_at_var(loss, var, c, weights, cand_idx, eq_idx)
    if weights.size > 0:
        p_le = 1.0 - w_gt
        es = (s_gt + var * (p_le - a)) / (1.0 - a)
    else:
        p_le = (n - n_gt) / n
        es = (s_gt / n + var * (p_le - a)) / (1.0 - a)
    return es, n_gt, n_eq, p_le, w_eq


@njit(cache=True, inline="always")
def _position_sum(instrument_pnl, j, nq, scenarios, count, weights, weighted):
    """One position's loss summed over the scenarios ``i`` in ``scenarios[:count]``, in that
    order: ``sum w_i (nq * instrument_pnl[j, i])`` if ``weighted``, else ``sum nq *
    instrument_pnl[j, i]`` (``nq`` the negated quantity, so ``nq * pnl`` is the loss)."""
    total = 0.0
    for t in range(count):
        i = scenarios[t]
        if weighted:
            total += weights[i] * (nq * instrument_pnl[j, i])
        else:
            total += nq * instrument_pnl[j, i]
    return total


@njit(cache=True, inline="always")
def _finish(instrument_pnl, instrument_index, quantity, p0, p1, weights, confidence, use_es,
            loss, var, c, cand_idx, eq_idx, contribution_out):
    """The ES of the set of positions ``p0:p1`` from its VaR and candidates, and the Euler
    contribution of each position (written to ``contribution_out[p0:p1]``); returns the ES."""
    n = loss.size
    weighted = weights.size > 0
    a = confidence
    es, n_gt, n_eq, p_le, w_eq = tail_es(loss, var, c, weights, confidence, cand_idx, eq_idx)
    # zero-weight ties only arise in degenerate inputs; fall back to their plain mean
    tie_weighted = weighted and w_eq > 0.0
    for p in range(p0, p1):
        j = instrument_index[p]
        nq = -quantity[p]
        tie = _position_sum(instrument_pnl, j, nq, eq_idx, n_eq, weights, tie_weighted)
        tie = tie / w_eq if tie_weighted else tie / n_eq
        if use_es:
            tail = _position_sum(instrument_pnl, j, nq, cand_idx, n_gt, weights, weighted)
            if not weighted:
                tail = tail / n
            contribution_out[p] = (tail + (p_le - a) * tie) / (1.0 - a)
        else:
            contribution_out[p] = tie
    return es


@njit(cache=True)
def scratch_uniform(n):
    """The scratch of :func:`set_tail_uniform` for ``n`` scenarios, allocated once per block of
    netting sets and reused by each of its sets: ``(loss, block_max, work, cand_val, cand_idx,
    eq_idx)``."""
    nb = n // SCEN_BLOCK_MIN + 1
    return (np.empty(n), np.empty(nb), np.empty(nb), np.empty(n), np.empty(n, dtype=np.int64),
            np.empty(n, dtype=np.int64))


@njit(cache=True, inline="always")
def set_tail_uniform(instrument_pnl, instrument_index, quantity, p0, p1, no_weights,
                     confidence, use_es, k, bs, scratch, contribution_out):
    """VaR, ES and the Euler contributions (written to ``contribution_out[p0:p1]``) of one set
    with equally likely scenarios: the float64 pass. ``no_weights`` is an empty array,
    ``scratch`` :func:`scratch_uniform`'s. Returns ``(var, es)``."""
    loss, block_max, work, cand_val, cand_idx, eq_idx = scratch
    accumulate_loss(instrument_pnl, instrument_index, quantity, p0, p1, loss, block_max, bs)
    var, c = tail_uniform(loss, k, block_max, bs, work, cand_val, cand_idx)
    es = _finish(instrument_pnl, instrument_index, quantity, p0, p1, no_weights, confidence,
                 use_es, loss, var, c, cand_idx, eq_idx, contribution_out)
    return var, es


@njit(cache=True)
def set_tail_weighted(instrument_pnl, instrument_index, quantity, p0, p1, weights, confidence,
                      use_es, bs, scratch, cand_w, contribution_out):
    """:func:`set_tail_uniform` with scenario ``weights`` (normalised); ``cand_w`` a scratch of
    the scenarios' length."""
    loss, block_max, work, cand_val, cand_idx, eq_idx = scratch
    accumulate_loss(instrument_pnl, instrument_index, quantity, p0, p1, loss, block_max, bs)
    var, c = _tail_weighted(loss, weights, confidence, block_max, bs, work, cand_val, cand_w,
                            cand_idx)
    es = _finish(instrument_pnl, instrument_index, quantity, p0, p1, weights, confidence,
                 use_es, loss, var, c, cand_idx, eq_idx, contribution_out)
    return var, es


@njit(cache=True)
def set_tail_screened(instrument_pnl, instrument_index, quantity, p0, p1, no_weights,
                      confidence, use_es, k, bs, scratch, screen, contribution_out):
    """:func:`set_tail_uniform` from the coarse first pass
    (:func:`~riskmodel.measures.screening.tail_screened`; ``screen = (codes, scaled32,
    row_bound, slack, loss32, block_max32)``), or the float64 pass where it does not apply: the
    same bits either way."""
    loss, block_max, work, cand_val, cand_idx, eq_idx = scratch
    codes, scaled32, row_bound, slack, loss32, block_max32 = screen
    var, c = 0.0, -1
    if bs > 0:
        var, c = tail_screened(instrument_pnl, codes, instrument_index, quantity, scaled32,
                               row_bound, slack, p0, p1, k, bs, loss, loss32, block_max32,
                               work, cand_val, cand_idx)
    if c < 0:
        accumulate_loss(instrument_pnl, instrument_index, quantity, p0, p1, loss, block_max, bs)
        var, c = tail_uniform(loss, k, block_max, bs, work, cand_val, cand_idx)
    es = _finish(instrument_pnl, instrument_index, quantity, p0, p1, no_weights, confidence,
                 use_es, loss, var, c, cand_idx, eq_idx, contribution_out)
    return var, es


# below this much work (positions x scenarios) a parallel region costs more than it saves, and
# compiling one costs seconds
SERIAL_MAX_WORK = 2**25
# ... unless it is compiled already and more than one thread may run it: from this much work a
# parallel region of two threads saves more than it costs (the live loop's refresh slices)
PARALLEL_COMPILED_WORK = 2**20


@njit(cache=True, inline="always")
def _uniform_block(b, block, instrument_pnl, indptr, instrument_index, quantity, confidence,
                   use_es, var_out, es_out, contribution_out):
    """The sets of block ``b`` (``block`` sets per block), equally likely scenarios."""
    n_sets = indptr.size - 1
    n = instrument_pnl.shape[1]
    k = uniform_rank(n, confidence)
    bs = threshold_block_size(n, n - k + 1)
    scratch = scratch_uniform(n)
    no_weights = np.empty(0)
    for s in range(b * block, min(n_sets, (b + 1) * block)):
        var_out[s], es_out[s] = set_tail_uniform(
            instrument_pnl, instrument_index, quantity, indptr[s], indptr[s + 1], no_weights,
            confidence, use_es, k, bs, scratch, contribution_out)


@njit(cache=True, parallel=True)
def tail_uniform_parallel(instrument_pnl, indptr, instrument_index, quantity, confidence,
                          use_es, var_out, es_out, contribution_out):
    """VaR, ES and Euler contributions of every netting set, equally likely scenarios.

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
    confidence : float
        Confidence level ``a`` in (0, 1).
    use_es : bool
        Contributions to ES if true, to VaR otherwise.
    var_out, es_out : ndarray of float64, shape (n_sets,)
        Filled with the VaR and ES of each set.
    contribution_out : ndarray of float64, shape (n_positions,)
        Filled with the Euler contribution of each position to the chosen measure.

    Notes
    -----
    No validation: the caller guarantees shapes, dtypes, finite values, indices in range and
    ``n_scenarios >= 1``. An empty netting set has a zero loss vector (VaR = ES = 0).
    """
    n_blocks, block = set_blocks(indptr.size - 1)
    for b in prange(n_blocks):
        # np.int64: prange counts in uint64, and the serial kernel's int64 would compile twice
        _uniform_block(np.int64(b), block, instrument_pnl, indptr, instrument_index, quantity,
                       confidence, use_es, var_out, es_out, contribution_out)


@njit(cache=True)
def tail_uniform_serial(instrument_pnl, indptr, instrument_index, quantity, confidence, use_es,
                        var_out, es_out, contribution_out):
    """:func:`tail_uniform_parallel` on one thread (same arguments, same bits)."""
    n_blocks, block = set_blocks(indptr.size - 1)
    for b in range(n_blocks):
        _uniform_block(b, block, instrument_pnl, indptr, instrument_index, quantity,
                       confidence, use_es, var_out, es_out, contribution_out)


@njit(cache=True)
def _weighted_block(b, block, instrument_pnl, indptr, instrument_index, quantity, weights,
                    confidence, use_es, var_out, es_out, contribution_out):
    """The sets of block ``b``, scenario ``weights`` (normalised)."""
    n = weights.size
    # the threshold blocks sized as if the tail were uniform (widened when it is not)
    bs = threshold_block_size(n, int((1.0 - confidence) * n) + 1)
    scratch, cand_w = scratch_uniform(n), np.empty(n)
    first, last = b * block, min(indptr.size - 1, (b + 1) * block)
    for s in range(first, last):
        var_out[s], es_out[s] = set_tail_weighted(
            instrument_pnl, instrument_index, quantity, indptr[s], indptr[s + 1], weights,
            confidence, use_es, bs, scratch, cand_w, contribution_out)


@njit(cache=True, parallel=True)
def tail_weighted_parallel(instrument_pnl, indptr, instrument_index, quantity, weights,
                           confidence, use_es, var_out, es_out, contribution_out):
    """:func:`tail_uniform_parallel` with scenario ``weights`` (float64, shape (n_scenarios,),
    normalised to sum 1)."""
    n_blocks, block = set_blocks(indptr.size - 1)
    for b in prange(n_blocks):
        _weighted_block(np.int64(b), block, instrument_pnl, indptr, instrument_index, quantity,
                        weights, confidence, use_es, var_out, es_out, contribution_out)


@njit(cache=True)
def tail_weighted_serial(instrument_pnl, indptr, instrument_index, quantity, weights,
                         confidence, use_es, var_out, es_out, contribution_out):
    """:func:`tail_weighted_parallel` on one thread (same arguments, same bits)."""
    n_blocks, block = set_blocks(indptr.size - 1)
    for b in range(n_blocks):
        _weighted_block(b, block, instrument_pnl, indptr, instrument_index, quantity, weights,
                        confidence, use_es, var_out, es_out, contribution_out)


@njit(cache=True, parallel=True)
def tail_screened_parallel(instrument_pnl, indptr, instrument_index, quantity, confidence,
                           use_es, var_out, es_out, contribution_out, codes, scaled32,
                           row_bound, slack):
    """:func:`tail_uniform_parallel` from the coarse first pass: ``codes``, ``row_bound`` and
    ``slack`` the P&L's (:func:`~riskmodel.measures.screening.quantise_rows`), ``scaled32``
    each position's quantity times its row's scale, rounded to float32. The results are
    bitwise the float64 pass's (:mod:`riskmodel.measures.screening`)."""
    n_sets = indptr.size - 1
    n = instrument_pnl.shape[1]
    k = uniform_rank(n, confidence)
    bs = threshold_block_size(n, n - k + 1)
    n_blocks, block = set_blocks(n_sets)
    for b in prange(n_blocks):
        scratch = scratch_uniform(n)
        screen = (codes, scaled32, row_bound, slack, np.empty(n, dtype=np.float32),
                  np.empty(n // SCEN_BLOCK_MIN + 1, dtype=np.float32))
        no_weights = np.empty(0)
        for s in range(b * block, min(n_sets, (b + 1) * block)):
            var, es = set_tail_screened(instrument_pnl, instrument_index, quantity, indptr[s],
                                        indptr[s + 1], no_weights, confidence, use_es, k, bs,
                                        scratch, screen, contribution_out)
            var_out[s] = var
            es_out[s] = es


def prefer_parallel(work: int, *, weighted: bool) -> bool:
    """Whether a book of ``work`` positions x scenarios runs the parallel kernel of its kind:
    from :data:`SERIAL_MAX_WORK`, or from :data:`PARALLEL_COMPILED_WORK` where the kernel is
    compiled in this process already and numba may run more than one thread (the same bits
    either way)."""
    return parallel_pays(work, SERIAL_MAX_WORK, PARALLEL_COMPILED_WORK,
                         tail_weighted_parallel if weighted else tail_uniform_parallel)


def netting_set_tail(instrument_pnl: np.ndarray, indptr: np.ndarray, instrument_index: np.ndarray,
             quantity: np.ndarray, weights: np.ndarray, confidence: float, use_es: bool,
             var_out: np.ndarray, es_out: np.ndarray, contribution_out: np.ndarray,
             screen: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None = None,
             parallel: bool | None = None) -> None:
    """VaR, ES and Euler contributions of every netting set of a CSR book, with the kernel that
    fits it (module docstring, "Kernels"): ``weights`` normalised, or empty for equally likely
    scenarios; ``screen = (codes, scaled32, row_bound, slack)`` for the coarse first pass of an
    unweighted book; ``parallel`` (default: :func:`prefer_parallel`) whether to run on every
    thread. Other arguments as :func:`tail_uniform_parallel`'s."""
    if parallel is None:
        parallel = prefer_parallel(instrument_index.size * instrument_pnl.shape[1],
                                   weighted=bool(weights.size))
    args = (instrument_pnl, indptr, instrument_index, quantity)
    out = (var_out, es_out, contribution_out)
    if weights.size:
        weighted = tail_weighted_parallel if parallel else tail_weighted_serial
        weighted(*args, weights, confidence, use_es, *out)
    elif screen is not None:
        tail_screened_parallel(*args, confidence, use_es, *out, *screen)
    elif parallel:
        tail_uniform_parallel(*args, confidence, use_es, *out)
    else:
        wait_for_background()  # a first run may be compiling it in the background
        tail_uniform_serial(*args, confidence, use_es, *out)
