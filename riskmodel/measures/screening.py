"""The coarse first pass of uniform tails: 16-bit codes of the P&L (numba; ndarrays and
scalars only).

Uniform tails may first be screened on a coarse copy of the P&L (:func:`quantise_rows`): each
row is stored as 16-bit integer codes times a scale of its own, the row's largest ``|P&L|`` mapped
to :data:`CODE_MAX`, a quarter of the float64 bytes and half of float32's. The loss vector is
formed in float32 from those codes (the very kernel of the float64 pass,
:func:`~riskmodel.measures.losses.accumulate_loss`, on ``quantity x scale`` rounded to float32),
and the threshold taken from its block maxima. The first pass is memory-bound, so it runs in
about half the time of a float32 copy's (0.26 to 0.14 s for 20,000 sets of 5-15 positions on
10,000 scenarios, one thread). A rigorous bound ``eps`` on the coding and the float32 rounding
(:func:`screen_eps`) makes every scenario with ``L32 >= t - 2 eps`` a candidate, which provably
includes every scenario at or above the float64 VaR; only the candidates' float64 losses are
formed, with the same operations in the same order as the full float64 pass
(:func:`riskmodel.measures.losses.accumulate_loss`), so every result is bitwise that of the
float64 pass (:func:`tail_screened`). The coding error, half a code step per unit of quantity,
is a few parts in 100,000 of a row's largest P&L: it widens the candidates by a fraction of one
scenario on typical books.
"""

from __future__ import annotations

import numpy as np
from numba import prange

from riskmodel.kernel_cache import njit
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
CODE_MAX = 32766  # a row's largest |P&L| codes to this: rounding cannot leave int16's range
# |P - scale x code| <= _SLACK x scale: half a step from rounding to nearest, plus the float64
# rounding of P / scale (below 2^-35 of a step at codes up to 32766)
_SLACK = 0.5 + 2.0**-20
# rows whose scale would be this small (largest |P&L| below 3e-286) get no codes (all 0), their
# whole |P&L| bound as slack: 1 / scale stays finite
_SCALE_MIN = 1e-290


@njit(cache=True)
def screen_eps(instrument_index, quantity, row_bound, slack, p0, p1):
    """A bound on ``|L32_i - L_i|`` for every scenario ``i``: the float32 loss of the first
    pass against the float64 loss of :func:`~riskmodel.measures.losses.accumulate_loss`, or -1
    when float32 could overflow.

    The first pass sums, in order, ``k`` rounded products of ``fl32(quantity x scale)`` and the
    codes, which differ from ``-quantity x P`` by at most ``|quantity| x slack`` before rounding
    (:func:`quantise_rows`); the float64 pass sums ``k`` rounded products of the P&L. Each sum
    is within ``gamma_(k+2) * sum |q| |P|`` of its exact value (``gamma_j = j u / (1 - j u)``,
    and ``|P| <= row_bound``), so the two differ by at most ``(g32 + g64) * gross + sum |q| x
    slack``; doubled for margin. Rounding into float32's subnormal range adds at most
    ``2^-149`` to a factor or a product (times a code, at most 32766), hence the absolute term,
    far above that."""
    k = p1 - p0
    gross = 0.0
    coding = 0.0
    size = 0.0
    rows = 0.0
    for p in range(p0, p1):
        r = instrument_index[p]
        q = abs(quantity[p])
        size += q
        rows += row_bound[r]
        gross += q * row_bound[r]
        coding += q * slack[r]
    if not (size < SCREEN_LIMIT and gross < SCREEN_LIMIT):
        return -1.0
    g32 = (k + 2) * _U32 / (1.0 - (k + 2) * _U32)
    g64 = (k + 2) * _U64 / (1.0 - (k + 2) * _U64)
    return 2.0 * ((g32 + g64) * gross + coding) + 1e-30 * (k + 2) * (1.0 + size + rows)


@njit(cache=True)
def tail_screened(instrument_pnl, codes, instrument_index, quantity, scaled32, row_bound,
                  slack, p0, p1, k, bs, loss, loss32, block_max32, work, cand_val, cand_idx):
    """The uniform tail of one set from the coarse first pass, which streams a quarter of the
    bytes: the float32 losses ``L32`` of the ``codes`` (same positions, same order; ``scaled32``
    the quantities times their rows' scales, rounded to float32) are within ``eps`` of the
    float64 ones ``L`` (:func:`screen_eps`). At least ``m`` values of ``L32`` reach the block
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
    eps = screen_eps(instrument_index, quantity, row_bound, slack, p0, p1)
    if eps < 0.0:
        return 0.0, -1
    accumulate_loss(codes, instrument_index, scaled32, p0, p1, loss32, block_max32, bs)
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
def quantise_rows(instrument_pnl, codes, scale, slack, row_bound):
    """The first pass's copy of ``instrument_pnl``, in one parallel pass over its rows: each
    row's largest ``|P&L|`` into ``row_bound`` (+inf for a row holding a NaN), its scale
    (``row_bound / CODE_MAX``) into ``scale``, and ``codes[r, i] = rint(P[r, i] / scale[r])``,
    so that ``|P[r, i] - scale[r] x codes[r, i]| <= slack[r]`` (``_SLACK x scale``). A row
    whose scale would fall below ``_SCALE_MIN`` (zeros, or values of 3e-286 at most) or that is
    not finite gets codes 0, scale 0 and its ``row_bound`` as slack.

    Parameters
    ----------
    instrument_pnl : ndarray of float64, shape (n_instruments, n_scenarios), C-contiguous
    codes : ndarray of int16, same shape, C-contiguous
    scale, slack, row_bound : ndarray of float64, shape (n_instruments,)
    """
    n = instrument_pnl.shape[1]
    for r in prange(instrument_pnl.shape[0]):
        bound = 0.0
        for i in range(n):
            x = instrument_pnl[r, i]
            if not abs(x) <= bound:  # a larger magnitude, or a NaN
                bound = abs(x) if x == x else np.inf
        row_bound[r] = bound
        s = bound / CODE_MAX
        if s >= _SCALE_MIN and bound < np.inf:
            # |x| <= CODE_MAX (1 + 5u): rint stays within int16
            inverse = 1.0 / s
            for i in range(n):
                codes[r, i] = np.int16(np.rint(instrument_pnl[r, i] * inverse))
            scale[r] = s
            slack[r] = _SLACK * s
        else:
            for i in range(n):
                codes[r, i] = 0
            scale[r] = 0.0
            slack[r] = bound
