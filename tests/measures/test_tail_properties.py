"""Property tests (hypothesis) of VaR / ES / Euler contributions on small random books.

Properties of the measures themselves, not of an implementation: ES >= VaR, monotonicity in the
confidence level, translation invariance, positive homogeneity, invariance to the order of the
scenarios, netting additivity; plus kernel == twin and contributions summing to the measure.
Comparisons that go through different floating-point paths use a tolerance relative to the
book's scale ``max|pnl| * sum|quantity|``.
"""

from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from riskmodel.measures import kernels, tail_measures, twins

SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
TOL = 1e-9

confidences = st.one_of(
    st.sampled_from([0.5, 0.75, 0.8, 0.9, 0.95, 0.975, 0.99]),  # hit exact steps of the cdf
    st.floats(0.01, 0.995),
)


@st.composite
def books(draw, max_scenarios=48):
    n_scen = draw(st.integers(1, max_scenarios))
    n_instr = draw(st.integers(1, 4))
    if draw(st.booleans()):  # integer P&L: many exact ties
        elements = st.integers(-5, 5).map(float)
    else:
        elements = st.floats(-100, 100, allow_nan=False, allow_subnormal=False)
    pnl = draw(arrays(np.float64, (n_instr, n_scen), elements=elements))
    sizes = draw(st.lists(st.integers(0, 4), min_size=1, max_size=3))
    indptr = np.concatenate(([0], np.cumsum(sizes))).astype(np.int64)
    n_pos = int(indptr[-1])
    idx = draw(arrays(np.int64, n_pos, elements=st.integers(0, n_instr - 1)))
    qty = draw(
        arrays(
            np.float64,
            n_pos,
            elements=st.one_of(
                st.integers(-5, 5).map(float), st.floats(-10, 10, allow_subnormal=False)
            ),
        )
    )
    weights = draw(
        st.one_of(
            st.none(),
            arrays(np.float64, n_scen, elements=st.integers(0, 5).map(float)),  # ties of weight
            arrays(np.float64, n_scen, elements=st.floats(0.0, 1.0, allow_subnormal=False)),
        )
    )
    if weights is not None:
        assume(weights.sum() > 1e-3)
    return pnl, indptr, idx, qty, weights


def scale(pnl, indptr, qty):
    gross = max(
        (np.abs(qty[indptr[s] : indptr[s + 1]]).sum() for s in range(indptr.size - 1)), default=0.0
    )
    return (np.abs(pnl).max() + 1.0) * (gross + 1.0)


def close(x, y, s):
    np.testing.assert_allclose(x, y, rtol=TOL, atol=TOL * s)


@SETTINGS
@given(books(), confidences, st.booleans())
def test_kernel_equals_twin_and_contributions_add_up(book, a, use_es):
    pnl, indptr, idx, qty, w = book
    s = scale(pnl, indptr, qty)
    wn = np.empty(0) if w is None else w / w.sum()
    outs = []
    for module in (kernels, twins):
        out = (np.empty(indptr.size - 1), np.empty(indptr.size - 1), np.empty(idx.size))
        module.netting_set_tail(pnl, indptr, idx, qty, wn, a, use_es, *out)
        outs.append(out)
    (vk, ek, ck), (vt, et, ct) = outs
    np.testing.assert_array_equal(vk, vt)  # identical loss vectors, identical order statistic
    np.testing.assert_allclose(ek, et, rtol=1e-12, atol=1e-12 * s)
    np.testing.assert_allclose(ck, ct, rtol=1e-10, atol=1e-10 * s)
    measure = ek if use_es else vk
    sums = [ck[indptr[t] : indptr[t + 1]].sum() for t in range(indptr.size - 1)]
    np.testing.assert_allclose(sums, measure, rtol=1e-10, atol=1e-10 * s)


@SETTINGS
@given(books(), confidences)
def test_es_dominates_var(book, a):
    pnl, indptr, idx, qty, w = book
    r = tail_measures(pnl, indptr, idx, qty, a, weights=w)
    assert np.all(r.es >= r.var - 1e-12 * scale(pnl, indptr, qty))


@SETTINGS
@given(books(), confidences, confidences)
def test_monotone_in_confidence(book, a1, a2):
    assume(a1 != a2)
    a1, a2 = min(a1, a2), max(a1, a2)
    pnl, indptr, idx, qty, w = book
    lo = tail_measures(pnl, indptr, idx, qty, a1, weights=w)
    hi = tail_measures(pnl, indptr, idx, qty, a2, weights=w)
    assert np.all(lo.var <= hi.var)  # order statistics: exact
    assert np.all(lo.es <= hi.es + 1e-12 * scale(pnl, indptr, qty))


@SETTINGS
@given(books(), confidences, st.floats(-1e3, 1e3, allow_subnormal=False))
def test_translation_invariance(book, a, cash):
    """A cash loss c in every scenario (an instrument with P&L -1, quantity c) adds c."""
    pnl, indptr, idx, qty, w = book
    base = tail_measures(pnl, indptr, idx, qty, a, weights=w)
    cash_row = np.vstack((pnl, -np.ones(pnl.shape[1])))
    n_sets = indptr.size - 1
    # append one cash position to the end of every set
    new_idx, new_qty, new_ptr = [], [], [0]
    for s in range(n_sets):
        new_idx += list(idx[indptr[s] : indptr[s + 1]]) + [pnl.shape[0]]
        new_qty += list(qty[indptr[s] : indptr[s + 1]]) + [cash]
        new_ptr.append(len(new_idx))
    moved = tail_measures(cash_row, new_ptr, new_idx, new_qty, a, weights=w)
    s = scale(pnl, indptr, qty) + abs(cash)
    close(moved.var, base.var + cash, s)
    close(moved.es, base.es + cash, s)


@SETTINGS
@given(books(), confidences, st.floats(0.01, 100.0))
def test_positive_homogeneity(book, a, k):
    pnl, indptr, idx, qty, w = book
    base = tail_measures(pnl, indptr, idx, qty, a, weights=w)
    scaled = tail_measures(pnl, indptr, idx, qty * k, a, weights=w)
    s = scale(pnl, indptr, qty) * k
    close(scaled.var, k * base.var, s)
    close(scaled.es, k * base.es, s)


@SETTINGS
@given(books(), confidences, st.integers(-6, 6))
def test_contributions_homogeneous_under_exact_scaling(book, a, j):
    """Scaling quantities by 2**j scales every loss exactly, so the contributions follow.

    (Under a general factor, rounding can break or create exact ties between scenarios, where
    the Euler allocation is not continuous; that is why this uses exact scalings.)
    """
    pnl, indptr, idx, qty, w = book
    k = 2.0**j
    base = tail_measures(pnl, indptr, idx, qty, a, weights=w)
    scaled = tail_measures(pnl, indptr, idx, qty * k, a, weights=w)
    np.testing.assert_allclose(scaled.contribution, k * base.contribution, rtol=1e-12, atol=1e-300)


@SETTINGS
@given(books(), confidences, st.randoms(use_true_random=False))
def test_scenario_order_invariance(book, a, rnd):
    pnl, indptr, idx, qty, w = book
    perm = list(range(pnl.shape[1]))
    rnd.shuffle(perm)
    base = tail_measures(pnl, indptr, idx, qty, a, weights=w)
    shuffled = tail_measures(
        pnl[:, perm], indptr, idx, qty, a, weights=None if w is None else w[perm]
    )
    s = scale(pnl, indptr, qty)
    if w is None:
        np.testing.assert_array_equal(shuffled.var, base.var)  # same multiset of losses
    else:
        close(shuffled.var, base.var, s)
    close(shuffled.es, base.es, s)


@SETTINGS
@given(books(), confidences, st.data())
def test_netting_additivity(book, a, data):
    """Splitting a position into two rows of the same instrument changes nothing."""
    pnl, indptr, idx, qty, w = book
    assume(idx.size > 0)
    p = data.draw(st.integers(0, idx.size - 1))
    t = data.draw(st.floats(-2.0, 2.0))
    split_idx = np.insert(idx, p + 1, idx[p])
    split_qty = np.insert(qty, p + 1, qty[p] * (1 - t))
    split_qty[p] = qty[p] * t
    split_ptr = indptr + (np.arange(indptr.size) > np.searchsorted(indptr, p, side="right") - 1)
    base = tail_measures(pnl, indptr, idx, qty, a, weights=w)
    split = tail_measures(pnl, split_ptr, split_idx, split_qty, a, weights=w)
    s = scale(pnl, indptr, qty) * (abs(t) + abs(1 - t) + 1)
    close(split.var, base.var, s)
    close(split.es, base.es, s)
