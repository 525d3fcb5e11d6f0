"""Tail kernels against their twins and against references from outside the code under test.

References used here: hand-computed examples, ``numpy.quantile(method="inverted_cdf")`` (the
empirical-distribution quantile, which is exactly ``min{l : P(L <= l) >= a}``), the classical
"mean of the worst n(1-a) scenarios" when n(1-a) is an integer, a naive sort-based evaluation of
the Acerbi-Tasche formula written below, finite differences (Euler contributions are the
derivatives of a positively homogeneous measure), and the normal closed forms
``VaR = z_a``, ``ES = phi(z_a) / (1 - a)`` (scipy.stats.norm).
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import norm

from riskmodel.measures import kernels, twins
from riskmodel.measures.kernels import WEIGHT_TOL

# ---------------------------------------------------------------------------------------------
# Oracles: naive, sort-based, written straight from the definition, independent of the package.


def oracle_var_es(losses, a, weights=None):
    """VaR and ES by sorting, from the definition (module docstring of kernels)."""
    x = np.asarray(losses, dtype=float)
    n = x.size
    if weights is None:
        xs = np.sort(x)
        # P(L <= xs[j]) = count/n, counting every copy of xs[j]; the VaR is the first that passes
        counts = np.searchsorted(xs, xs, side="right")
        var = xs[np.flatnonzero(counts / n >= a)[0]]
        count_le = int(np.sum(x <= var))
        es = (np.sum(x[x > var]) / n + var * (count_le / n - a)) / (1 - a)
        return float(var), float(es)
    w = np.asarray(weights, dtype=float)
    w = w / w.sum()
    order = np.argsort(-x, kind="stable")  # descending
    xs, ws = x[order], w[order]
    # walk down the distinct values, P(L <= v) = 1 - (weight strictly above v)
    var, above, j = xs[0], 0.0, 0
    while j < n:
        v = xs[j]
        if 1.0 - above < a - WEIGHT_TOL:
            break
        var = v
        while j < n and xs[j] == v:
            above += ws[j]
            j += 1
    gt = x > var
    es = (np.sum(w[gt] * x[gt]) + var * ((1.0 - np.sum(w[gt])) - a)) / (1 - a)
    return float(var), float(es)


def book_losses(pnl, indptr, idx, qty):
    """Dense (n_sets, n_scenarios) losses, formed independently with a dense matrix product."""
    q = np.zeros((indptr.size - 1, pnl.shape[0]))
    for s in range(indptr.size - 1):
        for p in range(indptr[s], indptr[s + 1]):
            q[s, idx[p]] += qty[p]
    return -(q @ pnl)


def run(module, pnl, indptr, idx, qty, a, weights=None, use_es=True):
    n_sets = indptr.size - 1
    var, es, contrib = np.empty(n_sets), np.empty(n_sets), np.empty(idx.size)
    w = np.empty(0) if weights is None else np.asarray(weights, float) / np.sum(weights)
    module.netting_set_tail(
        np.ascontiguousarray(pnl, dtype=float),
        np.asarray(indptr, np.int64),
        np.asarray(idx, np.int64),
        np.asarray(qty, float),
        w,
        a,
        use_es,
        var,
        es,
        contrib,
    )
    return var, es, contrib


def single_set(losses):
    """A book of one netting set whose loss vector is exactly ``losses`` (pnl = -loss, q = 1)."""
    losses = np.asarray(losses, dtype=float)
    return -losses[None, :], np.array([0, 1]), np.array([0]), np.array([1.0])


def random_book(rng, n_sets, n_scen, n_instr, max_pos, integer=False):
    pnl = rng.standard_normal((n_instr, n_scen)) * rng.uniform(0.5, 3.0, (n_instr, 1))
    if integer:
        pnl = np.round(pnl * 2)
    n_pos = rng.integers(0, max_pos + 1, n_sets)
    indptr = np.concatenate(([0], np.cumsum(n_pos))).astype(np.int64)
    idx = rng.integers(0, n_instr, indptr[-1]).astype(np.int64)
    qty = rng.integers(-5, 6, indptr[-1]).astype(float) if integer else rng.normal(0, 3, indptr[-1])
    return pnl, indptr, idx, qty


def set_sums(contrib, indptr):
    return np.array([contrib[indptr[s] : indptr[s + 1]].sum() for s in range(indptr.size - 1)])


# ---------------------------------------------------------------------------------------------
# The float rule for the uniform VaR rank


def test_uniform_rank_follows_count_over_n_rule():
    # a = 0.99, n = 500: 495/500 == 0.99 in float64, so the VaR is the 495th smallest loss
    assert kernels.uniform_rank(500, 0.99) == 495
    assert kernels.uniform_rank(10_000, 0.99) == 9900
    rng = np.random.default_rng(7)
    for n in list(range(1, 60)) + [100, 250, 500, 999, 1000, 4096]:
        for a in np.concatenate((rng.uniform(0.001, 0.999, 20), [0.5, 0.9, 0.95, 0.975, 0.99])):
            k = kernels.uniform_rank(n, float(a))
            assert k / n >= a
            assert k == 1 or (k - 1) / n < a


@pytest.mark.parametrize("n, a, k", [(100, 0.07, 7), (50, 0.14, 7), (200, 0.55, 110)])
def test_rank_where_ceil_of_a_times_n_overshoots(n, a, k):
    # 0.07 * 100 == 7.000000000000001 in float64, so ceil(a*n) = 8; but 7/100 == 0.07, so the
    # rule count/n >= a makes the 7th smallest loss the VaR. (numpy's inverted_cdf takes
    # ceil(n*a) and returns the 8th here, so it serves as a reference only where they agree.)
    assert k / n >= a and np.ceil(a * n) == k + 1
    losses = np.random.default_rng(n).permutation(np.arange(1.0, n + 1.0))  # 1..n
    es_ref = np.arange(k + 1, n + 1).sum() / n / (1 - a)  # P(L <= k) - a == 0 exactly
    for weights in (None, np.ones(n)):
        for module in (kernels, twins):
            var, es, _ = run(module, *single_set(losses), a, weights=weights)
            assert var[0] == k
            assert es[0] == pytest.approx(es_ref, rel=1e-12)


# ---------------------------------------------------------------------------------------------
# Single loss vectors: hand examples and outside references


def test_hand_computed_ties():
    # losses 1,2,2,2,3 (uniform) at a = 0.5: P(L<=1) = 0.2, P(L<=2) = 0.8 >= 0.5 -> VaR = 2;
    # ES = (3 * 0.2 + 2 * (0.8 - 0.5)) / 0.5 = 2.4 (the worst half: 0.2 at 3 and 0.3 at 2)
    losses = [2.0, 3.0, 1.0, 2.0, 2.0]
    for module in (kernels, twins):
        var, es, contrib = run(module, *single_set(losses), 0.5)
        assert var[0] == 2.0
        assert es[0] == pytest.approx(2.4, rel=1e-15)
        assert contrib[0] == pytest.approx(2.4, rel=1e-15)
    assert twins.var_es(losses, 0.5) == pytest.approx((2.0, 2.4), rel=1e-15)


def test_hand_computed_weighted():
    # losses 10, 20, 30 with weights 0.5, 0.3, 0.2 at a = 0.6: P(L<=10) = 0.5, P(L<=20) = 0.8
    # -> VaR = 20; ES = (30 * 0.2 + 20 * (0.8 - 0.6)) / 0.4 = 25
    losses, w = [30.0, 10.0, 20.0], [0.2, 0.5, 0.3]
    for module in (kernels, twins):
        var, es, _ = run(module, *single_set(losses), 0.6, weights=w)
        assert var[0] == 20.0
        assert es[0] == pytest.approx(25.0, rel=1e-14)
    # the step P(L<=20) = 0.8 at a = 0.8 exactly: the tolerance keeps VaR at 20, ES = 30*0.2/0.2
    for module in (kernels, twins):
        var, es, _ = run(module, *single_set(losses), 0.8, weights=w)
        assert var[0] == 20.0
        assert es[0] == pytest.approx(30.0, rel=1e-12)


@pytest.mark.parametrize("n", [500, 333, 1000, 4000, 10_000])
@pytest.mark.parametrize("a", [0.9, 0.975, 0.99, 0.995])
def test_continuous_losses_against_quantile_and_sort(n, a):
    rng = np.random.default_rng(n)
    losses = rng.standard_t(4, n) * 3.0 - 0.5
    ref_var = np.quantile(losses, a, method="inverted_cdf")
    ref_var2, ref_es = oracle_var_es(losses, a)
    assert ref_var == ref_var2  # the two references agree with each other
    for module in (kernels, twins):
        var, es, contrib = run(module, *single_set(losses), a)
        assert var[0] == ref_var
        assert es[0] == pytest.approx(ref_es, rel=1e-12)
        assert contrib[0] == pytest.approx(es[0], rel=1e-12)
    if n * (1 - a) == round(n * (1 - a)):  # integral tail: ES is the mean of the worst n(1-a)
        m = round(n * (1 - a))
        assert es[0] == pytest.approx(np.sort(losses)[-m:].mean(), rel=1e-12)


def test_500_scenarios_at_99_percent_is_495th_loss():
    losses = np.random.default_rng(1).permutation(np.arange(1.0, 501.0))  # 1..500
    var, es, _ = run(kernels, *single_set(losses), 0.99)
    assert var[0] == 495.0
    assert es[0] == pytest.approx(np.mean([496, 497, 498, 499, 500]), rel=1e-14)


@pytest.mark.parametrize("n", [200, 3000, 20_000])
@pytest.mark.parametrize("a", [0.5, 0.9, 0.97, 0.99, 0.999])
def test_heavy_ties_integer_losses(n, a):
    rng = np.random.default_rng(n + int(a * 1000))
    losses = rng.integers(-4, 5, n).astype(float)  # 9 values only: every quantile is a tie
    ref_var = np.quantile(losses, a, method="inverted_cdf")
    _, ref_es = oracle_var_es(losses, a)
    for module in (kernels, twins):
        var, es, contrib = run(module, *single_set(losses), a)
        assert var[0] == ref_var
        assert es[0] == pytest.approx(ref_es, rel=1e-12, abs=1e-12)
        assert contrib[0] == pytest.approx(es[0], rel=1e-12, abs=1e-12)


def test_negative_losses():
    rng = np.random.default_rng(3)
    losses = -rng.uniform(1.0, 5.0, 2500)  # every scenario is a profit
    for a in (0.9, 0.99):
        _, ref_es = oracle_var_es(losses, a)
        var, es, _ = run(kernels, *single_set(losses), a)
        assert var[0] == np.quantile(losses, a, method="inverted_cdf") < 0
        assert es[0] == pytest.approx(ref_es, rel=1e-12)


@pytest.mark.parametrize(
    "layout",
    ["ascending", "descending", "tail_in_one_block", "constant", "top_heavy_ties", "stride"],
)
@pytest.mark.parametrize("weighted", [False, True])
def test_adversarial_layouts(layout, weighted):
    """Scenario orders that stress the block-maximum threshold; the result must not care."""
    rng = np.random.default_rng(11)
    n = 8192
    base = rng.standard_normal(n)
    if layout == "ascending":
        losses = np.sort(base)
    elif layout == "descending":
        losses = np.sort(base)[::-1].copy()
    elif layout == "tail_in_one_block":
        losses = base
        losses[4000:4200] = 50.0 + rng.standard_normal(200)
    elif layout == "constant":
        losses = np.full(n, 1.25)
    elif layout == "top_heavy_ties":
        losses = np.where(rng.random(n) < 0.3, 7.0, base)
    else:  # the large losses all sit at the start of the threshold blocks
        losses = base
        losses[::16] += 100.0
    w = None
    if weighted:  # EWMA-style weights: recent (last) scenarios heavier, as in filtered HS
        w = 0.999 ** np.arange(n)[::-1]
    for a in (0.95, 0.99, 0.999):
        ref_var, ref_es = oracle_var_es(losses, a, w)
        if not weighted:
            assert ref_var == np.quantile(losses, a, method="inverted_cdf")
        for module in (kernels, twins):
            var, es, contrib = run(module, *single_set(losses), a, weights=w)
            assert var[0] == ref_var
            assert es[0] == pytest.approx(ref_es, rel=1e-12)
            assert contrib[0] == pytest.approx(es[0], rel=1e-12)


@pytest.mark.parametrize("n", [50, 777, 6000])
def test_weighted_against_sorted_cumulative_weights(n):
    rng = np.random.default_rng(n)
    losses = np.round(rng.standard_normal(n) * 4)  # ties as well
    for w in (rng.random(n), rng.random(n) ** 4, np.where(rng.random(n) < 0.2, 0.0, 1.0)):
        for a in (0.6, 0.9, 0.99):
            ref_var, ref_es = oracle_var_es(losses, a, w)
            for module in (kernels, twins):
                var, es, contrib = run(module, *single_set(losses), a, weights=w)
                assert var[0] == ref_var
                assert es[0] == pytest.approx(ref_es, rel=1e-12, abs=1e-12)
            assert twins.var_es(losses, a, w) == pytest.approx((ref_var, ref_es), rel=1e-12)


def test_explicit_uniform_weights_match_the_fast_path():
    rng = np.random.default_rng(5)
    for n in (500, 4000):
        losses = rng.standard_normal(n)
        for a in (0.9, 0.975, 0.99):
            var_u, es_u, _ = run(kernels, *single_set(losses), a)
            var_w, es_w, _ = run(kernels, *single_set(losses), a, weights=np.ones(n))
            assert var_w[0] == var_u[0]
            assert es_w[0] == pytest.approx(es_u[0], rel=1e-12)


# ---------------------------------------------------------------------------------------------
# Books: kernel == twin == independent dense computation, and Euler contributions


@pytest.mark.parametrize("n_scen", [1, 9, 500, 2048])
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("integer", [False, True])
def test_book_kernel_twin_oracle(n_scen, weighted, integer):
    rng = np.random.default_rng(n_scen * 4 + 2 * weighted + integer)
    pnl, indptr, idx, qty = random_book(rng, 25, n_scen, 12, 6, integer=integer)
    w = rng.random(n_scen) if weighted else None
    dense = book_losses(pnl, indptr, idx, qty)
    scale = np.abs(dense).max() + 1.0
    for a in (0.5, 0.95, 0.99):
        for use_es in (True, False):
            vk, ek, ck = run(kernels, pnl, indptr, idx, qty, a, w, use_es)
            vt, et, ct = run(twins, pnl, indptr, idx, qty, a, w, use_es)
            # the same loss vectors bit for bit, so the same order statistic
            np.testing.assert_array_equal(vk, vt)
            np.testing.assert_allclose(ek, et, rtol=1e-12, atol=1e-12 * scale)
            np.testing.assert_allclose(ck, ct, rtol=1e-10, atol=1e-10 * scale)
            measure = ek if use_es else vk
            np.testing.assert_allclose(
                set_sums(ck, indptr), measure, rtol=1e-10, atol=1e-10 * scale
            )
        for s in range(indptr.size - 1):
            ref_var, ref_es = oracle_var_es(dense[s], a, w)
            assert vk[s] == pytest.approx(ref_var, rel=1e-12, abs=1e-12 * scale)
            assert ek[s] == pytest.approx(ref_es, rel=1e-12, abs=1e-12 * scale)
            if w is None:
                q = np.quantile(dense[s], a, method="inverted_cdf")
                assert vk[s] == pytest.approx(q, rel=1e-12, abs=1e-12 * scale)


def test_empty_netting_set_has_zero_measures():
    pnl = np.random.default_rng(0).standard_normal((3, 100))
    indptr, idx, qty = np.array([0, 0, 2, 2]), np.array([0, 2]), np.array([1.0, -1.0])
    var, es, _ = run(kernels, pnl, indptr, idx, qty, 0.99)
    assert var[0] == es[0] == var[2] == es[2] == 0.0
    assert es[1] > 0.0


@pytest.mark.parametrize("use_es", [True, False])
@pytest.mark.parametrize("weighted", [False, True])
def test_euler_contributions_are_finite_difference_derivatives(use_es, weighted):
    """Euler: contribution_k = q_k * d measure / d q_k (the measures are homogeneous of degree 1).

    Continuous losses, so the tail scenarios do not change under a tiny bump and the measure is
    locally linear in the quantities: central differences are exact up to rounding.
    """
    rng = np.random.default_rng(21 + weighted)
    n = 3000
    pnl = rng.standard_normal((6, n)) * np.arange(1, 7)[:, None]
    indptr, idx, qty = np.array([0, 6]), np.arange(6), rng.normal(0, 2, 6)
    w = rng.random(n) if weighted else None
    a = 0.99
    _, _, contrib = run(kernels, pnl, indptr, idx, qty, a, w, use_es)
    for k in range(6):
        # small enough to keep the tail scenarios, large enough that rounding of the measure
        # (~1e-15 relative) stays far below the tolerance after dividing by 2h
        h = 1e-6
        up, down = qty.copy(), qty.copy()
        up[k] += h
        down[k] -= h
        pick = 1 if use_es else 0
        m_up = run(kernels, pnl, indptr, idx, up, a, w, use_es)[pick][0]
        m_down = run(kernels, pnl, indptr, idx, down, a, w, use_es)[pick][0]
        derivative = (m_up - m_down) / (2 * h)
        assert contrib[k] == pytest.approx(qty[k] * derivative, rel=1e-6, abs=1e-7)


def test_var_contributions_average_over_ties():
    # two positions; the loss vector has the VaR tied in two scenarios with different splits
    pnl = -np.array([[1.0, 5.0, 2.0, 0.0, 4.0], [1.0, 0.0, 3.0, 5.0, 0.0]])
    # losses (q = 1, 1): [2, 5, 5, 5, 4] -> at a = 0.5, VaR = 5 (tied in scenarios 1, 2, 3)
    indptr, idx, qty = np.array([0, 2]), np.array([0, 1]), np.array([1.0, 1.0])
    var, _, contrib = run(kernels, pnl, indptr, idx, qty, 0.5, use_es=False)
    assert var[0] == 5.0
    np.testing.assert_allclose(contrib, [(5 + 2 + 0) / 3, (0 + 3 + 5) / 3], rtol=1e-15)


# ---------------------------------------------------------------------------------------------
# Closed form: standard normal losses


@pytest.mark.parametrize("a", [0.975, 0.99])
def test_normal_closed_form(a):
    """N(0,1) losses: VaR -> z_a and ES -> phi(z_a) / (1 - a).

    Tolerance: 4 asymptotic standard errors of the empirical estimators, with
    n Var(VaR_hat) -> a (1 - a) / phi(z_a)^2 and
    n Var(ES_hat) -> (Var(L | L > z_a) + a (ES - z_a)^2) / (1 - a), where for the normal
    Var(L | L > z) = 1 + z ES - ES^2. The seed is fixed, so the test is deterministic; 4 SE
    keeps it meaningful (a wrong tail rank or tail mean misses by many SE at this n).
    """
    n = 400_000
    z = norm.ppf(a)
    es_true = norm.pdf(z) / (1 - a)
    se_var = np.sqrt(a * (1 - a) / n) / norm.pdf(z)
    se_es = np.sqrt((1 + z * es_true - es_true**2 + a * (es_true - z) ** 2) / ((1 - a) * n))
    losses = np.random.default_rng(2024).standard_normal(n)
    var, es, _ = run(kernels, *single_set(losses), a)
    assert abs(var[0] - z) < 4 * se_var
    assert abs(es[0] - es_true) < 4 * se_es


def test_max_loss_kernel_matches_dense_maximum():
    rng = np.random.default_rng(8)
    pnl, indptr, idx, qty = random_book(rng, 30, 2500, 10, 5)
    out, out_twin = np.empty(30), np.empty(30)
    kernels.netting_set_max_loss(pnl, indptr, idx, qty, out)
    twins.netting_set_max_loss(pnl, indptr, idx, qty, out_twin)
    np.testing.assert_array_equal(out, out_twin)
    np.testing.assert_allclose(
        out, book_losses(pnl, indptr, idx, qty).max(axis=1), rtol=1e-12, atol=1e-12
    )


def test_loss_vectors_are_sequential_sums_for_every_set_size():
    # sets of 0 to 13 positions: four positions per pass over a tile and the rest one at a
    # time must give the sums of one position at a time, in position order, bit for bit,
    # across a tile boundary (1,500 scenarios)
    rng = np.random.default_rng(11)
    n_scen, sizes = 1500, np.arange(14)
    pnl = rng.standard_normal((20, n_scen)) * rng.uniform(0.1, 1e4, (20, 1))
    indptr = np.concatenate(([0], np.cumsum(sizes))).astype(np.int64)
    idx = rng.integers(0, 20, indptr[-1]).astype(np.int64)
    qty = rng.normal(0, 50, indptr[-1])
    out = np.empty(len(sizes))
    kernels.netting_set_max_loss(pnl, indptr, idx, qty, out)
    for s in range(len(sizes)):
        loss = np.zeros(n_scen)
        for p in range(indptr[s], indptr[s + 1]):
            loss = loss + (-qty[p]) * pnl[idx[p]]  # one rounded product and sum per position
        assert out[s] == loss.max(), s
