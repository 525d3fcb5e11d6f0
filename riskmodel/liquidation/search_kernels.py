"""The partial-liquidation search of :mod:`riskmodel.liquidation.partial` for each netting set,
in compiled code (numba; ndarrays, scalars and tuples of them only).

:func:`liquidate_sets` runs, set after set, the very search that ``partial._Lockstep`` runs for
all sets together (the full close of the riskiest position left, the interior search of
``_highest_bound`` when that is short, the Illinois regula falsi of ``_Bracket``; module
docstring of :mod:`~riskmodel.liquidation.partial`), with the same floating-point operations in
the same order: each set's trials are independent of the others', so the order in which the sets
advance changes nothing, and the sums of its penalties are numpy's pairwise sums
(:func:`pairwise_sum`). Every trial margin is the engine's compiled margin of the reduced set
(:func:`riskmodel.engine.trial_kernels.trial_initial_margin`, bitwise
:func:`riskmodel.engine.margin_book`'s); the loss of the positions other than the one being
reduced is formed once per position and reused by every trial of it. The function releases the
GIL: the caller runs it on several threads, each with its share of the sets.
"""

from __future__ import annotations

import numpy as np

from riskmodel.engine.trial_kernels import (
    form_rest,
    narrow_screen,
    rest_screen,
    tail_scratch,
    trial_initial_margin,
)
from riskmodel.kernel_cache import njit

MAX_ITERATIONS = 200
FRACTION_TOL = 1e-13
SURPLUS_TOL = 1e-13
_PAIRWISE_BLOCK = 128  # numpy's PW_BLOCKSIZE

# outcome codes per set
DONE, NO_HORIZON, NOT_FINITE = 0, 1, 2


@njit(cache=True)
def _block_sum(a, lo, n):
    """numpy's pairwise sum of a block of at most 128 elements: eight accumulators."""
    if n < 8:
        res = 0.0
        for i in range(lo, lo + n):
            res += a[i]
        return res
    r0, r1, r2, r3 = a[lo], a[lo + 1], a[lo + 2], a[lo + 3]
    r4, r5, r6, r7 = a[lo + 4], a[lo + 5], a[lo + 6], a[lo + 7]
    i = 8
    while i < n - (n % 8):
        r0 += a[lo + i]
        r1 += a[lo + i + 1]
        r2 += a[lo + i + 2]
        r3 += a[lo + i + 3]
        r4 += a[lo + i + 4]
        r5 += a[lo + i + 5]
        r6 += a[lo + i + 6]
        r7 += a[lo + i + 7]
        i += 8
    res = ((r0 + r1) + (r2 + r3)) + ((r4 + r5) + (r6 + r7))
    while i < n:
        res += a[lo + i]
        i += 1
    return res


@njit(cache=True)
def pairwise_sum(a, lo, n):
    """``np.sum(a[lo:lo + n])`` for float64, bit for bit: numpy's pairwise summation (blocks of
    at most 128 elements, :func:`_block_sum`; above, the two halves, the first a multiple of 8,
    summed apart and added). Written with an explicit stack: numba's cache cannot hold a
    recursive function (it crashes on loading it)."""
    if n <= _PAIRWISE_BLOCK:
        return _block_sum(a, lo, n)
    depth = 64  # halving n > 128 down to 128 takes fewer levels than n has bits
    los = np.empty(depth, dtype=np.int64)
    ns = np.empty(depth, dtype=np.int64)
    stage = np.zeros(depth, dtype=np.int64)
    sums = np.empty(depth)
    los[0], ns[0], stage[0] = lo, n, 0
    top, done = 1, 0
    while top > 0:
        x = top - 1
        m = ns[x]
        if m <= _PAIRWISE_BLOCK:
            sums[done] = _block_sum(a, los[x], m)
            done += 1
            top -= 1
            continue
        half = m // 2
        half -= half % 8
        if stage[x] == 0:  # the first half
            stage[x] = 1
            los[top], ns[top], stage[top] = los[x], half, 0
            top += 1
        elif stage[x] == 1:  # then the second
            stage[x] = 2
            los[top], ns[top], stage[top] = los[x] + half, m - half, 0
            top += 1
        else:  # both summed: first + second
            sums[done - 2] = sums[done - 2] + sums[done - 1]
            done -= 1
            top -= 1
    return sums[0]


@njit(cache=True, inline="always")
def _penalty(fractions, quantity, unit_notional, rates, n, terms):
    """``np.sum(|fractions x quantity| x unit_notional x rates)``: the penalty of a close."""
    for r in range(n):
        terms[r] = abs(fractions[r] * quantity[r]) * unit_notional[r] * rates[r]
    return pairwise_sum(terms, np.int64(0), n)


@njit(cache=True, inline="always")
def _closed_notional(fractions, quantity, unit_notional, n, terms):
    for r in range(n):
        terms[r] = abs(fractions[r] * quantity[r]) * unit_notional[r]
    return pairwise_sum(terms, np.int64(0), n)


@njit(cache=True)
def highest_bound(xs, gs, n):
    """``partial._highest_bound`` on the samples ``xs[:n], gs[:n]``: ``(x, True)``, or
    ``(0.0, False)`` for None."""
    best = -np.inf
    have = False
    wx, wa, wb = 0.0, 0.0, 0.0
    for i in range(n):
        a = xs[i]
        b = xs[i + 1] if i + 1 < n else 1.0
        n_lines = 0
        s0, v0, s1, v1 = 0.0, 0.0, 0.0, 0.0
        if i >= 1:
            s0 = (gs[i] - gs[i - 1]) / (xs[i] - xs[i - 1])
            v0 = gs[i]
            n_lines = 1
        if i + 2 < n:
            slope = (gs[i + 2] - gs[i + 1]) / (xs[i + 2] - xs[i + 1])
            value = gs[i + 1] + slope * (a - xs[i + 1])
            if n_lines == 0:
                s0, v0 = slope, value
            else:
                s1, v1 = slope, value
            n_lines += 1
        if b - a <= FRACTION_TOL:
            continue
        if n_lines == 0:
            return 0.5 * (a + b), True
        n_points = 2
        cross = 0.0
        if n_lines == 2 and s0 != s1:
            cross = a + (v1 - v0) / (s0 - s1)
            if a < cross < b:
                n_points = 3
        for t in range(n_points):
            x = a if t == 0 else (b if t == 1 else cross)
            bound = v0 + s0 * (x - a)
            if n_lines == 2:
                other = v1 + s1 * (x - a)
                bound = other if other < bound else bound
            if bound > best:
                best, wx, wa, wb, have = bound, x, a, b, True
    if not have or best < 0:
        return 0.0, False
    x = wx
    if x - wa <= 1e-9 * (wb - wa) or wb - x <= 1e-9 * (wb - wa):
        x = 0.5 * (wa + wb)
    return x, True


NOT_SCREENED = -2  # the subset of the position being reduced is not formed yet
# the Illinois steps narrow the subset to their bracket at its first step that has one, then
# each time the bracket has shrunk to this fraction of the width last narrowed to
NARROW_SHRINK = 0.125


@njit(cache=True, inline="always")
def _margin(ctx, s, fractions, memo):
    """The engine's initial margin of set ``s`` with its positions reduced by ``fractions``
    (search order); ``memo = (changed, rest, rest_max, rest_hx, scratch, trial_qty, subset,
    n_sub, base)``.

    ``subset[:n_sub[0]]`` are the scenarios that the trials of position ``changed`` screen
    (:func:`~riskmodel.engine.trial_kernels.rest_screen`), formed for the fractions ``base``
    (those before its trials) at the first trial that screens: not before its full close,
    the first trial, which takes the rest as it is, since a set that the full close does not
    restore often moves on to its next position with no other trial of this one. The
    Illinois steps then narrow it to their bracket (:func:`_narrow`), inside which every
    later trial lies."""
    changed, rest, rest_max, rest_hx, scratch, trial_qty, subset, n_sub, base = memo
    p0, p1 = ctx[3][s], ctx[3][s + 1]
    quantity = _book_quantity(ctx, s, fractions, trial_qty)
    if n_sub[0] == NOT_SCREENED and quantity[changed - p0] != 0.0:
        n_sub[0] = rest_screen(ctx[0], ctx[1], ctx[2], p0, p1, ctx[4][s],
                               _book_quantity(ctx, s, base, trial_qty), changed, rest, rest_hx,
                               scratch, subset)
        quantity = _book_quantity(ctx, s, fractions, trial_qty)
    return trial_initial_margin(ctx[0], ctx[1], ctx[2], p0, p1, ctx[4][s], ctx[5][s], quantity,
                                rest, rest_max, rest_hx, changed, scratch, subset, n_sub[0])


@njit(cache=True, nogil=True)
def liquidate_sets(ctx, sets, scratch_n, max_positions, out_fractions, out_figures, out_code):
    """The search for each set of ``sets`` (module docstring).

    ``ctx = (mk, pol, pos, book_ptr, account_h, previous, set_ptr, to_book, quantity,
    unit_notional, rates, equity, initial_margin, n_tradeable, target)``: the trial kernels'
    inputs (``pos`` per position in each set's book order, ``book_ptr`` its sets), and per
    position in search order (riskiest first, ``set_ptr`` its sets) the book position, the
    quantity, the notional per unit and the penalty rate; per set its equity, initial margin
    and tradeable positions; the target level. Writes each set's fractions closed
    (``out_fractions``, search order), ``(margin_after, equity_after, notional_closed)``
    (``out_figures``) and its outcome code (``DONE``, or ``NO_HORIZON`` / ``NOT_FINITE`` when a
    trial margin failed: the caller asks the engine itself, which raises the error).
    """
    scratch = tail_scratch(scratch_n, max_positions)
    rest = np.empty(scratch_n)
    rest_max = np.empty(scratch_n // 4 + 2)
    subset = np.empty(scratch_n, dtype=np.int64)
    n_sub = np.full(1, NOT_SCREENED, dtype=np.int64)
    trial_qty = np.empty(max_positions)
    terms = np.empty(max_positions)
    f = np.empty(max_positions)
    trial = np.empty(max_positions)
    xs = np.empty(MAX_ITERATIONS + 2)
    gs = np.empty(MAX_ITERATIONS + 2)
    for s in sets:
        out_code[s] = _liquidate_set(ctx, s, scratch, rest, rest_max, subset, n_sub,
                                     trial_qty, terms, f, trial, xs, gs, out_fractions,
                                     out_figures)


@njit(cache=True, inline="always")
def _liquidate_set(ctx, s, scratch, rest, rest_max, subset, n_sub, trial_qty, terms, f, trial,
                   xs, gs, out_fractions, out_figures):
    """``partial._Lockstep.run`` for one set; returns its outcome code."""
    set_ptr, to_book, qty, unit_notional, rates = ctx[6], ctx[7], ctx[8], ctx[9], ctx[10]
    equity, im0, n_tradeable, target = ctx[11][s], ctx[12][s], ctx[13][s], ctx[14]
    r0 = set_ptr[s]
    n = set_ptr[s + 1] - r0
    q, un, rt = qty[r0:r0 + n], unit_notional[r0:r0 + n], rates[r0:r0 + n]
    for r in range(n):
        f[r] = 0.0
        out_fractions[r0 + r] = 0.0
    out_figures[s, 0], out_figures[s, 1], out_figures[s, 2] = im0, equity, 0.0
    scale = abs(equity)
    scale = im0 if im0 > scale else scale
    scale = 1.0 if 1.0 > scale else scale
    g_cur = (equity - _penalty(f, q, un, rt, n, terms)) - target * im0
    if not (g_cur < 0 and n_tradeable > 0):
        return 0
    k = 0
    while True:
        changed = to_book[r0 + k]
        rest_hx = form_rest(ctx[0], ctx[1], ctx[2], ctx[3][s], ctx[3][s + 1], ctx[4][s],
                            _book_quantity(ctx, s, f, trial_qty), changed, scratch, rest,
                            rest_max)
        # the scenarios any trial of position k can take as candidates, found once, when a
        # trial first needs them (_margin)
        n_sub[0] = NOT_SCREENED
        memo = (changed, rest, rest_max, rest_hx, scratch, trial_qty, subset, n_sub, f)
        for r in range(n):
            trial[r] = f[r]
        trial[k] = 1.0
        full = _margin(ctx, s, trial, memo)
        if not (full >= 0.0 and np.isfinite(full)):
            return 1 if full < 0.0 else 2
        g1 = (equity - _penalty(trial, q, un, rt, n, terms)) - target * full
        if g1 >= 0:
            bracket = (0.0, 1.0, g_cur, g1, g1, full)
        else:
            bracket, code = _interior(ctx, s, k, g_cur, f, trial, xs, gs, q, un, rt, n, terms,
                                      memo)
            if code > 0:
                return code
        if bracket[1] > bracket[0]:  # a bracket: solve it, and the set is done
            code = _solve(ctx, s, k, bracket, f, trial, q, un, rt, n, terms, scale, memo,
                          out_fractions, out_figures)
            return code
        # no fraction of position k restores the set: keep it closed, go on to the next
        for r in range(n):
            f[r] = trial[r]
        f[k] = 1.0
        _keep(f, full, equity, q, un, rt, n, terms, r0, s, out_fractions, out_figures)
        g_cur = g1
        if k + 1 >= n_tradeable:
            return 0
        k += 1


@njit(cache=True, inline="always")
def _book_quantity(ctx, s, f, trial_qty):
    """The set's quantities in book order at fractions ``f``."""
    set_ptr, to_book, qty = ctx[6], ctx[7], ctx[8]
    p0 = ctx[3][s]
    for r in range(set_ptr[s], set_ptr[s + 1]):
        trial_qty[to_book[r] - p0] = qty[r] * (1.0 - f[r - set_ptr[s]])
    return trial_qty


@njit(cache=True, inline="always")
def _keep(f, margin, equity, q, un, rt, n, terms, r0, s, out_fractions, out_figures):
    """``_SetToLiquidate.keep``: the fractions, the margin, the equity and notional after."""
    for r in range(n):
        out_fractions[r0 + r] = f[r]
    out_figures[s, 0] = margin
    out_figures[s, 1] = equity - _penalty(f, q, un, rt, n, terms)
    out_figures[s, 2] = _closed_notional(f, q, un, n, terms)


@njit(cache=True, inline="always")
def _interior(ctx, s, k, g0, f, trial, xs, gs, q, un, rt, n, terms, memo):
    """``_Lockstep.interior`` for one set: a bracket ``(lo, hi, g_lo, g_hi, g_hi, margin_hi)``
    inside ``(0, 1)``, or ``(0, 0, ...)`` when no fraction of position ``k`` restores the
    set; and an outcome code."""
    equity, target = ctx[11][s], ctx[14]
    xs[0], gs[0] = 0.0, g0
    count = 1
    for _ in range(MAX_ITERATIONS):
        x, ok = highest_bound(xs, gs, count)
        if not ok:
            break
        for r in range(n):
            trial[r] = f[r]
        trial[k] = x
        margin = _margin(ctx, s, trial, memo)
        if not (margin >= 0.0 and np.isfinite(margin)):
            return (0.0, 0.0, 0.0, 0.0, 0.0, 0.0), 1 if margin < 0.0 else 2
        g = (equity - _penalty(trial, q, un, rt, n, terms)) - target * margin
        j = np.searchsorted(xs[:count], x)
        if g >= 0:
            return (xs[j - 1], x, gs[j - 1], g, g, margin), 0
        for t in range(count, j, -1):
            xs[t] = xs[t - 1]
            gs[t] = gs[t - 1]
        xs[j], gs[j] = x, g
        count += 1
    return (0.0, 0.0, 0.0, 0.0, 0.0, 0.0), 0


@njit(cache=True, inline="always")
def _narrow(ctx, s, k, lo, hi, f, trial, n, memo):
    """Narrow the subset of position ``k``'s trials to the sizes of the bracket ``(lo, hi)``
    (:func:`~riskmodel.engine.trial_kernels.narrow_screen`); False while it is not formed."""
    changed, rest, _, rest_hx, scratch, trial_qty, subset, n_sub, _ = memo
    if n_sub[0] < 0:
        return False
    # position k at fraction hi, as _book_quantity forms it
    nq_hi = -(ctx[8][ctx[6][s] + k] * (1.0 - hi))
    for r in range(n):
        trial[r] = f[r]
    trial[k] = lo
    n_sub[0] = narrow_screen(ctx[0], ctx[1], ctx[2], ctx[3][s], ctx[3][s + 1], ctx[4][s],
                             _book_quantity(ctx, s, trial, trial_qty), changed, nq_hi, rest,
                             rest_hx, scratch, subset, n_sub[0])
    return True


@njit(cache=True, inline="always")
def _solve(ctx, s, k, bracket, f, trial, q, un, rt, n, terms, scale, memo, out_fractions,
           out_figures):
    """``_Lockstep.solve`` for one set: Illinois regula falsi on position ``k``'s fraction, a
    bisection every third step; keeps the restored end."""
    equity, target = ctx[11][s], ctx[14]
    lo, hi, w_lo, w_hi, g_hi, m_hi = bracket
    side = 0
    narrowed_at = np.inf  # the bracket's width when the subset was last narrowed to it
    for it in range(MAX_ITERATIONS):
        if not (hi - lo > FRACTION_TOL and g_hi > SURPLUS_TOL * scale):
            break
        if hi - lo <= NARROW_SHRINK * narrowed_at and _narrow(ctx, s, k, lo, hi, f, trial, n,
                                                                memo):
            narrowed_at = hi - lo
        x = 0.5 * (lo + hi) if it % 3 == 2 else hi - w_hi * (hi - lo) / (w_hi - w_lo)
        x = x if lo < x < hi else 0.5 * (lo + hi)
        for r in range(n):
            trial[r] = f[r]
        trial[k] = x
        margin = _margin(ctx, s, trial, memo)
        if not (margin >= 0.0 and np.isfinite(margin)):
            return 1 if margin < 0.0 else 2
        g = (equity - _penalty(trial, q, un, rt, n, terms)) - target * margin
        if g >= 0:
            if side > 0:  # hi moved twice: the lo end is stuck, halve its weight
                w_lo *= 0.5
            hi, w_hi, g_hi, m_hi, side = x, g, g, margin, 1
        else:
            if side < 0:
                w_hi *= 0.5
            lo, w_lo, side = x, g, -1
    for r in range(n):
        trial[r] = f[r]
    trial[k] = hi
    _keep(trial, m_hi, equity, q, un, rt, n, terms, ctx[6][s], s, out_fractions, out_figures)
    return 0
