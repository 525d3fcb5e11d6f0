"""The grid rule's numba kernel against its plain-Python twin, and the identities of the scan:
shares that add up to the loss, a loss never below the basis contingency, a set's loss the
sum of its underlyings' (scanned on their own)."""

from __future__ import annotations

import numpy as np
import pytest

from riskmodel.margin import grid_twins
from riskmodel.margin.grid_kernels import grid_rule_losses, grid_rule_losses_serial


def _case(seed: int, n_sets: int = 40, n_scan: int = 12):
    rng = np.random.default_rng(seed)
    n_und, n_groups = 3, 5
    group_und = rng.integers(0, n_und, n_groups)
    n_inst = 30
    group = np.where(rng.random(n_inst) < 0.6, rng.integers(0, n_groups, n_inst), -1)
    und = np.where(group >= 0, group_und[np.maximum(group, 0)], rng.integers(0, n_und, n_inst))
    base = np.where(group >= 0, rng.uniform(0, 50, n_inst), 0.0)
    pnl = rng.normal(0, 10, (n_inst, n_scan + 2))
    pnl[:, n_scan - 2:n_scan] = np.where(group[:, None] >= 0, pnl[:, n_scan - 2:n_scan], 0.0)
    counts = rng.integers(0, 8, n_sets)
    indptr = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    index = rng.integers(0, n_inst, indptr[-1]).astype(np.int64)
    quantity = rng.normal(0, 3, indptr[-1])
    damp = np.where(rng.random(n_scan) < 0.7, 1.0, rng.uniform(0.01, 0.2, n_scan))
    skew = np.zeros(n_scan, dtype=bool)
    skew[-2:] = True
    args = (np.ascontiguousarray(pnl), base, und.astype(np.int64), group.astype(np.int64),
            rng.uniform(0.8, 1.0, n_groups), rng.uniform(1.0, 1.2, n_groups),
            rng.uniform(0.5, 1.5, n_groups), damp, skew, indptr, index, quantity)
    return args


def _kernel(args, kernel=grid_rule_losses):
    n_sets, n_pos, n_scan = len(args[9]) - 1, len(args[11]), len(args[7])
    worst, basis = np.empty(n_sets), np.empty(n_sets)
    scenario, share = np.empty(n_pos, dtype=np.int64), np.empty(n_pos)
    totals = np.empty((n_sets, n_scan))
    kernel(*args, worst, basis, scenario, share, totals)
    return worst, basis, scenario, share, totals


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("kernel", [grid_rule_losses, grid_rule_losses_serial],
                         ids=["parallel", "serial"])
def test_kernel_equals_twin_bitwise(seed, kernel):
    args = _case(seed)
    for got, want in zip(_kernel(args, kernel), grid_twins.grid_rule_losses(*args)):
        np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("seed", range(3))
def test_scan_identities(seed):
    args = _case(seed)
    worst, basis, scenario, share, totals = _kernel(args)
    indptr = args[9]
    set_of = np.repeat(np.arange(len(indptr) - 1), np.diff(indptr))
    np.testing.assert_allclose(np.bincount(set_of, share, len(worst)), worst, atol=1e-9)
    assert (worst >= basis - 1e-12).all() and (basis >= 0).all()
    # a set's loss is at least every scenario's loss summed over its underlyings
    assert (worst[:, None] >= totals - 1e-9).all()
    # one set's loss is the sum of its underlyings' losses margined apart
    und = args[2][args[10]]
    s = int(np.argmax([len(set(und[a:b])) for a, b in zip(indptr[:-1], indptr[1:])]))
    rows = np.arange(indptr[s], indptr[s + 1])
    parts = 0.0
    for u in np.unique(und[rows]):
        keep = rows[und[rows] == u]
        sub = (*args[:9], np.array([0, len(keep)], dtype=np.int64), args[10][keep],
               args[11][keep])
        parts += _kernel(sub)[0][0]
    assert worst[s] == pytest.approx(parts, rel=1e-12)


def test_a_set_without_positions_owes_nothing():
    args = list(_case(0, n_sets=3))
    args[9] = np.zeros(4, dtype=np.int64)
    args[10], args[11] = np.zeros(0, dtype=np.int64), np.zeros(0)
    worst, basis, *_ = _kernel(tuple(args))
    assert worst.tolist() == [0.0, 0.0, 0.0] and basis.tolist() == [0.0, 0.0, 0.0]
