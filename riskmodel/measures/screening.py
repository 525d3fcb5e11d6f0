"""The float32 first pass of uniform tails (numba; ndarrays and scalars only).

Uniform tails may first be screened in float32 (a float32 copy of the P&L, made by
:func:`float32_rows`): the loss vector is formed in float32, half the bytes streamed, and the
threshold taken from its block maxima. A rigorous bound ``eps`` on the float32 rounding
(:func:`screen_eps`) makes every scenario with ``L32 >= t - 2 eps`` a candidate, which provably
includes every scenario at or above the float64 VaR; only the candidates' float64 losses are
formed, with the same operations in the same order as the full float64 pass
(:func:`riskmodel.measures.losses.accumulate_loss`), so every result is bitwise that of the
float64 pass (:func:`tail_screened`).
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from riskmodel.measures.losses import (
    accumulate_loss,
    block_threshold,
    candidate_losses,
    gather_reaching,
)
from riskmodel.measures.selection import select_kth

_U32 = 2.0**-24  # unit roundoff of float32
_U64 = 2.0**-53
SCREEN_LIMIT = 1e30  # float32 overflows at 3.4e38: beyond this scale, no first pass


@njit(cache=True)
def screen_eps(instrument_index, quantity, row_bound, p0, p1):
    """A bound on ``|L32_i - L_i|`` for every scenario ``i``: the float32 loss of the first
    pass against the float64 loss of :func:`~riskmodel.measures.losses.accumulate_loss`, or -1
    when float32 could overflow. Both are ``k`` rounded products summed in order, from inputs
    rounded to their precision, so each is within ``gamma_(k+2) * sum |q| |P|`` of the exact sum
    (``gamma_j = j u / (1 - j u)``), and ``|P| <= row_bound``; doubled for margin. Rounding into
    float32's subnormal range adds at most ``2^-149`` to an input or a product (sums of floats
    round relatively), hence the absolute term, far above ``2^-149 * sum(|q| + |P| + 1)``."""
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
def tail_screened(instrument_pnl, pnl32, instrument_index, quantity, quantity32, row_bound,
                  p0, p1, k, bs, loss, loss32, block_max32, work, cand_val, cand_idx):
    """The uniform tail of one set from a float32 first pass, which streams half the bytes.

    The float32 losses ``L32`` (same positions, same order) are within ``eps`` of the float64
    ones ``L`` (:func:`screen_eps`). At least ``m`` values of ``L32`` reach the block
    threshold ``t``, so the VaR (the ``m``-th largest ``L``) is ``>= t - eps``, and every
    scenario with ``L >= VaR`` has ``L32 >= t - 2 eps``. Those candidates get their float64
    loss, computed exactly as :func:`~riskmodel.measures.losses.accumulate_loss` computes it (a
    sum from 0.0, one product at a time, in position order), and the VaR is selected among
    them: the candidates, the VaR and every tail sum are bitwise those of the float64 pass.

    Returns ``(var, c)`` as the float64 pass does (the VaR and the number of candidates, whose
    scenarios ``cand_idx[:c]`` are in scenario order), with ``loss`` filled at the candidates
    only; ``c = -1`` where the first pass does not apply (float32 could overflow).
    """
    n = loss.size
    m = n - k + 1
    eps = screen_eps(instrument_index, quantity, row_bound, p0, p1)
    if eps < 0.0:
        return 0.0, -1
    accumulate_loss(pnl32, instrument_index, quantity32, p0, p1, loss32, block_max32, bs)
    nb = (n + bs - 1) // bs
    cut = block_threshold(block_max32, nb, work, m) - 2.0 * eps
    c = gather_reaching(loss32, cut, block_max32, bs, cand_val, cand_idx)
    if c < m:  # cannot happen (see above); the float64 pass decides then
        return 0.0, -1
    candidate_losses(instrument_pnl, instrument_index, quantity, p0, p1, c, cand_val, cand_idx,
                     loss)
    var = select_kth(cand_val, np.int64(0), c, c - m)
    return var, c


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
