"""Order statistics by selection, never a full sort (numba; ndarrays and scalars only).

The selection kernels of the tail measures (:mod:`riskmodel.measures.kernels`): the value of a
given ascending rank among the candidates of a loss vector (:func:`select_kth`, an introselect)
and its weighted counterpart, the smallest candidate that passes the weighted VaR rule
(:func:`select_weighted`). Both reorder their input in place and do no validation.

The small private helpers are compiled without a CPython entry point (``no_cpython_wrapper``):
they are called from kernels only (never from Python, where they have no entry), and a first
run compiles a few tenths of a second less.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from riskmodel.kernel_cache import njit

KERNEL_ONLY: dict[str, Any] = {"no_cpython_wrapper": True}
"""numba options of a helper called from kernels only: no CPython entry point to compile."""

_SMALL = 16  # ranges this short are finished by insertion sort


@njit(cache=True, **KERNEL_ONLY)
def _median3(a, b, c):
    if a < b:
        if b < c:
            return b
        return c if a < c else a
    if a < c:
        return a
    return c if b < c else b


@njit(cache=True, **KERNEL_ONLY)
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


@njit(cache=True, **KERNEL_ONLY)
def _partition_le(x, lo, hi, pivot):
    """:func:`_partition_lt` for the values ``<= pivot``."""
    le = lo
    for i in range(lo, hi):
        v = x[i]
        x[i] = x[le]
        x[le] = v
        le += v <= pivot
    return le


@njit(cache=True, **KERNEL_ONLY)
def _insertion_sort(x, lo, hi):
    for i in range(lo + 1, hi):
        v = x[i]
        j = i - 1
        while j >= lo and x[j] > v:
            x[j + 1] = x[j]
            j -= 1
        x[j + 1] = v


@njit(cache=True, **KERNEL_ONLY)
def _sift_down(x, lo, root, end):
    """Restore the max-heap below ``root`` of the heap ``x[lo:lo + end]``."""
    while True:
        child = 2 * root + 1
        if child >= end:
            return
        if child + 1 < end and x[lo + child] < x[lo + child + 1]:
            child += 1
        if not x[lo + root] < x[lo + child]:
            return
        x[lo + root], x[lo + child] = x[lo + child], x[lo + root]
        root = child


@njit(cache=True)
def _heapsort(x, lo, hi):
    """Sort ``x[lo:hi]`` ascending in place (the fallback of :func:`select_kth`: O(n log n)
    whatever the data, and cheap to compile, unlike numba's quicksort)."""
    n = hi - lo
    for root in range(n // 2 - 1, -1, -1):
        _sift_down(x, lo, root, n)
    for end in range(n - 1, 0, -1):
        x[lo], x[lo + end] = x[lo + end], x[lo]
        _sift_down(x, lo, np.int64(0), end)  # not a literal: one specialisation, not two


@njit(cache=True)
def select_kth(x, lo, hi, kth):
    """Value of ascending rank ``kth`` (``lo <= kth < hi``) within ``x[lo:hi]``; reorders it.

    Introselect: median-of-three quickselect with branch-free partitions, three-way in effect
    (``< pivot``, then ``== pivot`` split from ``> pivot`` when needed, so a run of ties ends the
    search at once), falling back to a sort of the remaining range if partitioning degenerates.

    Parameters
    ----------
    x : ndarray of float64, shape (>= hi,)
    lo, hi, kth : int
        The range ``x[lo:hi]`` and the rank sought, ``lo <= kth < hi``.
    """
    depth_left = 2 * int(np.log2(hi - lo + 1)) + 8
    while hi - lo > _SMALL:
        if depth_left == 0:
            _heapsort(x, lo, hi)
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
    """Fallback of :func:`select_weighted`: sort ``x[lo:hi]`` and walk down from the top."""
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
def select_weighted(x, w, c, a_tol):
    """Smallest ``v`` among ``x[:c]`` with ``1 - W(x > v) >= a_tol``; reorders ``x``, ``w``.

    ``W`` sums the weights ``w``. Precondition: every loss below ``min(x[:c])`` fails the rule, so
    the answer is one of the candidates. Quickselect that partitions around a pivot (descending:
    ``> pivot``, ``== pivot``, ``< pivot``) and accumulates the weight above the range instead of
    counting ranks.

    Parameters
    ----------
    x, w : ndarray of float64, shape (>= c,)
        Candidate losses and their weights.
    c : int
        Number of candidates.
    a_tol : float
        The rule's level, ``confidence - WEIGHT_TOL``.
    """
    lo = np.int64(0)  # not a literal: one compiled specialisation of the callees
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
