"""The refresh queue's first page is the head of the whole order (reference: ``np.lexsort`` of
every due set, the order before pages)."""

from __future__ import annotations

import numpy as np
import pytest

from riskmodel.live.schedule import first_in_order


@pytest.mark.parametrize("seed", range(6))
def test_first_in_order_is_the_head_of_the_full_sort(seed):
    rng = np.random.default_rng(seed)
    for _ in range(40):
        n, m = int(rng.integers(0, 2000)), int(rng.integers(1, 300))
        # ties in both keys (levels of sets in liquidation are all inf in the first), infinities
        key = rng.choice([0.5, 1.0, 2.0, np.inf, -np.inf], n) if seed % 2 else rng.normal(size=n)
        key[rng.random(n) < 0.3] = np.inf
        second = rng.choice([1.0, -2.0, np.inf], n) if seed % 3 else rng.normal(size=n)
        np.testing.assert_array_equal(first_in_order(key, second, m),
                                      np.lexsort((second, key))[:m])
