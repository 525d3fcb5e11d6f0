"""The first run's background compilation of the margin kernels: started only when it can help,
always reaped, and compiling exactly the specialisations the engine's calls then load from
numba's cache (checked in a fresh process with an empty cache: the run itself compiles none)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

from riskmodel.measures import background, precompile

_RUN = textwrap.dedent("""
    import numpy as np
    from numba.core import event
    from riskmodel.batch.compile_notice import CompileNotice
    from riskmodel.measures import background, kernels, stress_kernels, twins

    rng = np.random.default_rng(3)
    pnl = rng.normal(size=(6, 400))
    indptr = np.array([0, 2, 5], dtype=np.int64)
    index = np.array([0, 3, 1, 4, 5], dtype=np.int64)
    quantity = rng.normal(size=5)
    var, es, con = np.empty(2), np.empty(2), np.empty(5)
    worst, arg, grid = np.empty(2), np.empty(2, dtype=np.int64), np.empty(2)
    lines = []
    with CompileNotice(lines.append) as notice:
        started = background._running is not None
        kernels.netting_set_tail(pnl, indptr, index, quantity, np.empty(0), 0.99, True, var,
                                 es, con)
        stress_kernels.worst_loss(pnl, indptr, index, quantity, worst, arg)
        stress_kernels.grid_set_loss(pnl[:, :7].copy(), np.ones(7), indptr, index, quantity,
                                     np.array([0, 1, 0, 1, 2, 2], dtype=np.int64), grid)
    here = notice.kernels
    want = np.empty(2), np.empty(2), np.empty(5)
    twins.netting_set_tail(pnl, indptr, index, quantity, np.empty(0), 0.99, True, *want)
    assert np.array_equal(var, want[0]) and np.array_equal(es, want[1])
    assert np.array_equal(worst, stress_kernels.worst_loss_python(pnl, indptr, index,
                                                                  quantity)[0])
    print(started, here, background._running is None)
    print(lines[-1])
""")


def test_an_empty_cache_compiles_the_margin_kernels_beside_the_run(tmp_path):
    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path))
    done = subprocess.run([sys.executable, "-c", _RUN], env=env, capture_output=True,
                          text=True, check=True, timeout=300)
    flags, notice = done.stdout.strip().splitlines()
    # started on the empty cache; the engine's calls compiled nothing themselves (they found
    # the background's specialisations in the cache); the process was reaped
    assert flags.split() == ["True", "0", "True"]
    assert notice.startswith("riskmodel: compiled 3 kernel(s) in ")
    assert "3 of them in" in notice and "background process" in notice


def test_nothing_starts_when_the_kernels_are_compiled_or_on_one_cpu(monkeypatch):
    for kernel, args in precompile.examples():
        kernel(*args)  # compiled (or loaded from the cache) in this process
    assert not precompile.start_if_cold()
    monkeypatch.setattr(precompile, "_cached", lambda kernel: False)
    monkeypatch.setattr(precompile, "usable_cpus", lambda: 1)
    assert not precompile.start_if_cold()
    assert background._running is None


def test_stop_kills_and_reaps_a_background_process_the_run_did_not_need():
    background.start(precompile.__name__)
    process = background._running
    assert process is not None
    assert background.stop() == (0, 0.0)
    assert process.returncode is not None and background._running is None
