"""The first-use compile notice: one line when numba starts compiling, one with the count and
the time at the end; nothing when every kernel was compiled (or cached) already."""

import numpy as np
from numba import njit

from riskmodel.batch.compile_notice import CompileNotice


def test_a_compilation_is_announced_once_and_timed():
    @njit  # defined here: compiled afresh on its first call
    def total(x):
        return x.sum()

    @njit
    def twice(x):
        return 2.0 * total(x)  # its callee compiles inside it: one kernel, counted once

    lines = []
    with CompileNotice(lines.append, background=False) as notice:
        assert twice(np.ones(3)) == 6.0
        assert twice(np.ones(4)) == 8.0  # the same types: no second compilation
    assert notice.kernels == 1 and notice.seconds > 0
    assert len(lines) == 2
    assert "compiling numerical kernels for their first use" in lines[0]
    assert lines[1].startswith("riskmodel: compiled 1 kernel(s) in ")
    quiet = []
    with CompileNotice(quiet.append, background=False):
        twice(np.ones(5))
    assert quiet == []
