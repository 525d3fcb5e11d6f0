"""The tail of a set with one position resized, from the loss of the others
(``riskmodel.measures.trial_tail``): bitwise the tail kernel's VaR and ES of the same set, and
the definition's (``twins.var_es``, sorted losses) to rounding."""

import numpy as np
import pytest

from riskmodel.measures import kernels, twins
from riskmodel.measures.losses import SCEN_BLOCK_MIN, accumulate_loss, threshold_block_size
from riskmodel.measures.trial_tail import (
    EXACT,
    FORMED,
    WITH_REST,
    narrow_subset,
    rest_eps,
    rest_subset,
    row_bounds,
    trial_tail,
)


def _scratch(n):
    nb = n // SCEN_BLOCK_MIN + 2
    return (np.empty(n), np.empty(nb), np.empty(nb), np.empty(n), np.empty(n, np.int64),
            np.empty(n, np.int64))


def _kernel(pnl, index, qty, a):
    """The tail kernel's VaR and ES of one set (the engine's float64 pass)."""
    var, es, contribution = np.empty(1), np.empty(1), np.empty(len(index))
    kernels.netting_set_tail(pnl, np.array([0, len(index)]), index, qty, np.empty(0), a, True,
                             var, es, contribution)
    return var[0], es[0]


def _rest(pnl, index, qty, changed, bs):
    """The exact loss of every position but ``changed`` (and its block maxima)."""
    n = pnl.shape[1]
    others = [p for p in range(len(index)) if p != changed]
    rest, rest_max = np.empty(n), np.empty(n // SCEN_BLOCK_MIN + 2)
    accumulate_loss(pnl, index[others].copy(), qty[others].copy(), 0, len(others), rest,
                    rest_max, bs)
    return rest, rest_max


def _row_bound(pnl):
    """Each row's largest ``|P&L|`` (:func:`row_bounds`), the screens' bound input."""
    bound = np.empty(pnl.shape[0])
    row_bounds(pnl, bound)
    return bound


def _trial(mode, pnl, index, qty, changed, a, subset=None):
    """``trial_tail``'s VaR and ES in ``mode``, the rest formed without ``changed`` (and the
    candidates screened among ``subset = (scenarios, count)`` when given)."""
    n = pnl.shape[1]
    k = kernels.uniform_rank(n, a)
    bs = threshold_block_size(n, n - k + 1)
    rest, rest_max = _rest(pnl, index, qty, changed, bs)
    bound = _row_bound(pnl)
    scenarios, count = subset if subset is not None else (np.empty(0, np.int64), -1)
    return trial_tail(mode, pnl, index, qty, len(index), a, k, bs, _scratch(n), rest, rest_max,
                      index[changed], -qty[changed], bound, np.empty(n), scenarios,
                      np.int64(count))


def _with_rest(pnl, index, qty, changed, a, subset=None):
    """VaR and ES from the loss of every position but ``changed`` (the screen)."""
    n = pnl.shape[1]
    assert threshold_block_size(n, n - kernels.uniform_rank(n, a) + 1) > 0
    return _trial(WITH_REST, pnl, index, qty, changed, a, subset)


def _subset(pnl, index, qty, changed, a):
    """``rest_subset`` of the set at ``qty``: the scenarios every smaller size of position
    ``changed`` screens among, and their count."""
    n = pnl.shape[1]
    m = n - kernels.uniform_rank(n, a) + 1
    bs = threshold_block_size(n, m)
    rest, _ = _rest(pnl, index, qty, changed, bs)
    bound = _row_bound(pnl)
    nb = n // SCEN_BLOCK_MIN + 2
    scenarios = np.empty(n, np.int64)
    count = rest_subset(pnl, index, qty, len(index), m, bs, rest, index[changed],
                        -qty[changed], bound, np.empty(n), np.empty(nb), np.empty(nb), scenarios)
    return scenarios, count


@pytest.mark.parametrize("kind", ["plain", "ties", "hedge", "scales"])
@pytest.mark.parametrize("seed", range(3))
def test_rest_subset_is_its_definition(kind, seed):
    # the subset is every scenario whose max(rest, A0) reaches the cut (A0 = rest + nq x P,
    # the cut the m-th largest of the blocks' maxima of min(rest, A0), less 4 eps), in
    # scenario order: numpy's scan
    rng = np.random.default_rng([seed, len(kind), 7])
    pnl, index, qty = _case(rng, kind)
    n = pnl.shape[1]
    bound = _row_bound(pnl)
    for a in (0.99, 0.9):
        m = n - kernels.uniform_rank(n, a) + 1
        bs = threshold_block_size(n, m)
        for changed in range(len(index)):
            rest, _ = _rest(pnl, index, qty, changed, bs)
            a0 = rest + (-qty[changed]) * pnl[index[changed]]
            block_max = np.maximum.reduceat(np.minimum(rest, a0), np.arange(0, n, bs))
            eps = rest_eps(index, qty, len(index), bound)
            cut = np.sort(block_max)[::-1][m - 1] - 4.0 * eps
            expected = np.flatnonzero(np.maximum(rest, a0) >= cut)
            scenarios, count = _subset(pnl, index, qty, changed, a)
            np.testing.assert_array_equal(scenarios[:count], expected)


def _case(rng, kind, n_scen=4000, n_pos=8, n_instr=30):
    pnl = rng.standard_t(4, (n_instr, n_scen)) * rng.uniform(0.5, 50, (n_instr, 1))
    if kind == "ties":  # integer P&L: many scenarios tie at the VaR
        pnl = np.round(pnl / 10.0)
    index = rng.choice(n_instr, n_pos, replace=False).astype(np.int64)
    qty = rng.normal(0, 10, n_pos)
    if kind == "hedge":  # the changed position nearly cancels the rest: losses ~ rounding
        pnl[index[1]] = -pnl[index[0]] * (1 + 1e-12)
        qty[1] = qty[0]
        qty[2:] *= 1e-9
    if kind == "scales":  # positions of wildly different sizes
        qty *= 10.0 ** rng.integers(-8, 9, n_pos)
    return np.ascontiguousarray(pnl), index, qty


@pytest.mark.parametrize("kind", ["plain", "ties", "hedge", "scales"])
@pytest.mark.parametrize("seed", range(4))
def test_rest_screen_gives_the_kernels_bits(kind, seed):
    rng = np.random.default_rng([seed, len(kind)])
    pnl, index, qty = _case(rng, kind)
    for a in (0.99, 0.975, 0.9):
        for changed in range(len(index)):
            # the scenarios any smaller size of the position screens among, found at its size
            subset = _subset(pnl, index, qty, changed, a)
            assert kind != "plain" or a != 0.99 or 0 <= subset[1] < pnl.shape[1] // 2
            for scale in (1.0, 0.37, 1e-7, 0.999999):
                q = qty.copy()
                q[changed] *= scale
                expected = _kernel(pnl, index, q, a)
                got = _with_rest(pnl, index, q, changed, a)
                assert got == expected, (kind, a, changed, scale)
                got = _with_rest(pnl, index, q, changed, a, subset)
                assert got == expected, (kind, a, changed, scale, "subset")
    # and the definition (sorted losses), to rounding
    loss = -(qty @ pnl[index])
    var, es = twins.var_es(loss, 0.99)
    got = _with_rest(pnl, index, qty, 0, 0.99)
    np.testing.assert_allclose(got, (var, es), rtol=1e-9, atol=1e-9 * np.abs(loss).max())


def _narrowed(pnl, index, qty, changed, a, subset, small, large):
    """``narrow_subset`` of ``subset`` to the sizes of position ``changed`` between ``small``
    and ``large`` times its quantity in ``qty``."""
    n = pnl.shape[1]
    m = n - kernels.uniform_rank(n, a) + 1
    rest, _ = _rest(pnl, index, qty, changed, threshold_block_size(n, m))
    bound = _row_bound(pnl)
    scenarios, count = subset[0].copy(), subset[1]
    q = qty.copy()
    q[changed] *= large
    count = narrow_subset(pnl, index, q, len(index), m, rest, index[changed], -q[changed],
                          -qty[changed] * small, bound, np.empty(n), np.empty(n), scenarios,
                          np.int64(count))
    return scenarios, count


@pytest.mark.parametrize("kind", ["plain", "ties", "hedge", "scales"])
@pytest.mark.parametrize("seed", range(3))
def test_a_subset_narrowed_to_a_bracket_gives_the_kernels_bits(kind, seed):
    # the subset of every size up to the position's, narrowed to sizes between two fractions of
    # it (an Illinois bracket), still gives the kernel's bits at every size between, and it
    # keeps fewer scenarios the narrower the bracket
    rng = np.random.default_rng([seed, len(kind), 7])
    pnl, index, qty = _case(rng, kind)
    n = pnl.shape[1]
    for a in (0.99, 0.9):
        m = n - kernels.uniform_rank(n, a) + 1
        for changed in range(0, len(index), 3):
            subset = _subset(pnl, index, qty, changed, a)
            for small, large in ((0.0, 1.0), (0.3, 0.6), (0.41, 0.4101)):
                narrowed = _narrowed(pnl, index, qty, changed, a, subset, small, large)
                assert m <= narrowed[1] <= subset[1]
                assert np.all(np.diff(narrowed[0][:narrowed[1]]) > 0)  # scenario order
                assert np.isin(narrowed[0][:narrowed[1]], subset[0][:subset[1]]).all()
                if kind == "plain" and (small, large) == (0.41, 0.4101):
                    assert narrowed[1] < min(subset[1], 2 * m)
                for scale in (small, large, 0.5 * (small + large),
                              small + 0.999 * (large - small)):
                    if scale == 0.0:
                        continue  # the position closed: the rest itself (FORMED)
                    q = qty.copy()
                    q[changed] *= scale
                    got = _with_rest(pnl, index, q, changed, a, narrowed)
                    assert got == _kernel(pnl, index, q, a), (kind, a, changed, scale)


def test_a_scale_too_large_to_bound_falls_back_to_the_exact_pass():
    rng = np.random.default_rng(5)
    pnl, index, qty = _case(rng, "plain")
    qty[0] = 1e305  # the bound would overflow: the float64 pass decides, same bits
    expected = _kernel(pnl, index, qty, 0.99)
    assert _with_rest(pnl, index, qty, 3, 0.99) == expected


def test_exact_and_formed_tails_are_the_kernels():
    rng = np.random.default_rng(9)
    for n_scen in (700, 3000):  # below 1,024 scenarios no blocks, above blocked thresholds
        pnl, index, qty = _case(rng, "plain", n_scen=n_scen)
        expected = _kernel(pnl, index, qty, 0.99)
        assert _trial(EXACT, pnl, index, qty, 2, 0.99) == expected
        # the rest of a set without its third position is that reduced set's loss itself
        reduced = np.delete(np.arange(len(index)), 2)
        expected = _kernel(pnl, index[reduced].copy(), qty[reduced].copy(), 0.99)
        assert _trial(FORMED, pnl, index, qty, 2, 0.99) == expected


def test_heapsort_fallback_of_the_selection_sorts():
    from riskmodel.measures.selection import _heapsort

    rng = np.random.default_rng(2)
    for n in (1, 2, 3, 17, 200):
        x = np.round(rng.normal(size=n), 1)  # ties
        y = np.concatenate([[9.0], x, [-9.0]])
        _heapsort(y, 1, n + 1)
        assert (y[1:-1] == np.sort(x)).all() and y[0] == 9.0 and y[-1] == -9.0


def test_a_scenario_the_rounding_moves_below_the_threshold_is_still_a_candidate():
    """Three scenarios whose rest-plus-row sum rounds differently from the position-order sum
    (found by a brute-force search over small integers near 2**53, where the spacing is 2):
    X's exact loss is above the VaR scenario V's, but its approximation below V's, and Y's the
    other way round; with the approximations' threshold alone X would be left out of the tail
    (ES too small): the bound ``eps`` keeps it in."""
    big = 2.0**53
    x = [big + 22, -7.0, 7.0, -1.0, 8.0]  # exact: big + 32, rest first: big + 28
    y = [big + 32, 9.0, -3.0, -7.0, 0.0]  # exact: big + 28, rest first: big + 32
    v = [big + 30, 0.0, 0.0, 0.0, 0.0]  # big + 30 either way
    n, a = 4096, 0.99
    m = n - kernels.uniform_rank(n, a) + 1  # 41 scenarios from the top: the VaR's rank
    pnl = np.zeros((5, n))
    for j in range(m - 2):  # m - 2 larger losses, one per block of 16 scenarios
        pnl[0, 16 * j] = 4 * big + 64 * j
    for j, column in enumerate((x, y, v)):
        pnl[:, 16 * (m - 2 + j)] = column
    index = np.arange(5, dtype=np.int64)
    qty = -np.ones(5)  # loss = the P&L row
    expected = _kernel(pnl, index, qty, a)
    assert expected[0] == big + 30  # V is the VaR, and X is in the tail above it
    assert _with_rest(pnl, index, qty, 0, a) == expected
    # and screened among the subset found at that size (or a larger one of the same sign)
    assert _with_rest(pnl, index, qty, 0, a, _subset(pnl, index, qty, 0, a)) == expected
    larger = qty.copy()
    larger[0] *= 3.0
    assert _with_rest(pnl, index, qty, 0, a, _subset(pnl, index, larger, 0, a)) == expected
