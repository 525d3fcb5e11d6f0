"""The program's process: its BLAS runs on one thread unless the user chose a count, whether
numpy and scipy are loaded before the program starts (an in-process caller) or after (the
console script, whose commands import them lazily)."""

from __future__ import annotations

import gc
import json
import os
import subprocess
import sys

import pytest

from riskmodel.cli.process import BLAS_THREAD_VARIABLES

# Report the BLAS libraries' thread counts after hold_blas_at_one_thread, with numpy and scipy
# imported before it (argv[1] == "before") or after it.
PROBE = """
import json, sys
if sys.argv[1] == "before":
    import numpy, scipy.linalg
from riskmodel.cli import process
process.hold_blas_at_one_thread()
import numpy, scipy.linalg
from threadpoolctl import threadpool_info
print(json.dumps([i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"]))
"""


def _blas_threads(when: str, **env: str) -> list[int]:
    base = {k: v for k, v in os.environ.items() if k not in BLAS_THREAD_VARIABLES}
    done = subprocess.run([sys.executable, "-c", PROBE, when], capture_output=True, text=True,
                          env={**base, **env}, timeout=120, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def _cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()


@pytest.mark.parametrize("when", ["before", "after"])
def test_program_holds_blas_at_one_thread(when):
    if _cores() < 2:
        pytest.skip("one core: BLAS has one thread anyway")
    threads = _blas_threads(when)
    assert threads and threads == [1] * len(threads)


def test_a_count_the_user_set_is_kept():
    if _cores() < 2:
        pytest.skip("one core: BLAS has one thread anyway")
    threads = _blas_threads("after", OPENBLAS_NUM_THREADS="2")
    assert threads and threads == [2] * len(threads)


def test_imports_are_frozen_with_the_collector_off_in_the_program(monkeypatch):
    from riskmodel.cli import process

    monkeypatch.setattr(process, "IN_PROGRAM", True)
    assert gc.isenabled()
    gc.unfreeze()
    try:
        with process.frozen_imports():
            assert not gc.isenabled()
            made = [[i] for i in range(1000)]  # containers the collector tracks
        assert gc.isenabled()
        assert gc.get_freeze_count() >= len(made)
    finally:
        gc.unfreeze()


def test_imports_are_plain_outside_the_program():
    from riskmodel.cli import process

    assert not process.IN_PROGRAM
    gc.unfreeze()
    with process.frozen_imports():
        assert gc.isenabled()
        made = [[i] for i in range(1000)]
    assert gc.get_freeze_count() == 0 and made
