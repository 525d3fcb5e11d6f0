"""The variance recursions: numba kernel == plain-Python twin, bit for bit, for every model."""

import numpy as np
import pytest

from riskmodel.volatility.kernels import EGARCH, EWMA, GARCH, GJR, conditional_variance
from riskmodel.volatility.recursions_python import conditional_variance_python

PARAMS = {
    EWMA: (0.0, 0.0, 0.0, 0.0, 0.94),
    GARCH: (0.02, 0.09, 0.0, 0.89, 0.0),
    GJR: (0.02, 0.01, 0.15, 0.88, 0.0),
    EGARCH: (0.0, 0.12, -0.1, 0.98, 0.0),
}


@pytest.mark.parametrize("code", sorted(PARAMS))
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_kernel_equals_twin_bitwise(code, seed):
    """The twin states each recursion term by term; summed in the same order, it is the
    kernel's arithmetic exactly (the Monte Carlo twins rely on that)."""
    rng = np.random.default_rng(seed)
    resids = rng.standard_t(4, 500) * rng.uniform(0.5, 2.0)
    resids[::17] = 0.0  # the GJR indicator at e == 0, and z == 0 for EGARCH
    backcast = float(np.mean(resids[:75] ** 2))
    kernel = conditional_variance(code, resids, *PARAMS[code], backcast)
    twin = conditional_variance_python(code, resids, *PARAMS[code], backcast)
    assert twin.dtype == kernel.dtype and twin.shape == (resids.size + 1,)
    np.testing.assert_array_equal(twin, kernel)


def test_empty_sample_is_the_initial_variance():
    for code, params in PARAMS.items():
        kernel = conditional_variance(code, np.zeros(0), *params, 1.5)
        np.testing.assert_array_equal(
            conditional_variance_python(code, np.zeros(0), *params, 1.5), kernel
        )
