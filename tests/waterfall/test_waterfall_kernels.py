"""The ADL fill: kernel against its numpy twin and a hand-worked case, and its guarantees
(no one loses more than its profit nor is reduced beyond its position; more loss to move never
moves less, so a larger fund never increases ADL)."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from riskmodel.waterfall.kernels import adl_fill
from riskmodel.waterfall.twins import adl_fill_twin


def _kernel(loss, units, ptr, sets, cand_units, profit, cap):
    n = len(sets)
    out = np.zeros(n), np.zeros(n), np.zeros(len(loss))
    adl_fill(loss, units, ptr, sets, cand_units, profit, cap, *out)
    return out


def _random(seed, n_groups=12, n_sets=30):
    rng = np.random.default_rng(seed)
    counts = rng.integers(0, 8, n_groups)
    ptr = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    # within a group every set at most once (a set holds one position per instrument)
    sets = np.concatenate([rng.choice(n_sets, c, replace=False) for c in counts]
                          ).astype(np.int64)
    return (rng.uniform(0, 500, n_groups) * (rng.random(n_groups) < 0.8),
            rng.uniform(1, 20, n_groups), ptr, sets, rng.uniform(0.1, 10, len(sets)),
            rng.uniform(0, 300, len(sets)), rng.uniform(0, 400, n_sets))


def test_hand_case():
    """350 over 10 bankrupt units (35 a unit); B (2 units, profit 100) then C (1 unit, 50):
    70 and 35 (each its whole position), 245 left."""
    cap = np.array([100.0, 50.0])
    loss, reduced, moved = _kernel(np.array([350.0]), np.array([10.0]), np.array([0, 2]),
                                   np.array([0, 1]), np.array([2.0, 1.0]),
                                   np.array([100.0, 50.0]), cap)
    np.testing.assert_allclose(loss, [70.0, 35.0])
    np.testing.assert_allclose(reduced, [2.0, 1.0])
    np.testing.assert_allclose(moved, [105.0])
    np.testing.assert_allclose(cap, [30.0, 15.0])


@pytest.mark.parametrize("seed", range(20))
def test_kernel_equals_twin(seed):
    args = _random(seed)
    cap_k, cap_t = args[-1].copy(), args[-1].copy()
    kernel = _kernel(*args[:-1], cap_k)
    twin = adl_fill_twin(*args[:-1], cap_t)
    for a, b in zip(kernel, twin):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-9)
    np.testing.assert_allclose(cap_k, cap_t, rtol=1e-12, atol=1e-9)


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 10_000), st.floats(0.0, 1.0))
def test_guarantees_and_monotone_in_the_loss(seed, scale):
    loss, units, ptr, sets, cand_units, profit, cap0 = _random(seed)
    small = _kernel(loss * scale, units, ptr, sets, cand_units, profit, cap0.copy())
    cap = cap0.copy()
    taken, reduced, moved = _kernel(loss, units, ptr, sets, cand_units, profit, cap)
    assert moved.sum() >= small[2].sum() - 1e-9  # a larger fund leaves less: never more ADL
    assert np.all(taken <= profit + 1e-9)
    assert np.all(reduced <= cand_units * (1 + 1e-12) + 1e-12)
    paid = np.bincount(sets, taken, minlength=len(cap0))
    assert np.all(paid <= cap0 + 1e-9)
    np.testing.assert_allclose(cap, cap0 - paid, atol=1e-9)
    for g in range(len(loss)):
        rows = slice(ptr[g], ptr[g + 1])
        assert moved[g] <= loss[g] + 1e-9
        assert reduced[rows].sum() <= units[g] * (1 + 1e-12) + 1e-9
