"""Benchmark: a fresh install's first ``riskmodel demo`` (empty numba cache) against the warm demo.

Each of ``--pairs`` pairs runs, back to back, in fresh processes started as a user starts the
program (``riskmodel demo --out DIR --quiet``, interpreter start, imports and teardown included):

* the cold demo, with ``NUMBA_CACHE_DIR`` a new empty folder, so every kernel the run uses is
  compiled (as on a fresh install);
* the warm demo right after it, with the same cache folder, so every kernel is loaded from it.

Reports each pair's wall seconds, the compile notice's figures ("compiled N kernel(s) in S s",
printed once on standard error by the cold run) and the machine's load average before and
after the pair, then the medians and the ratio of the medians (target: cold <= 3 x warm). The
reference is the warm demo itself, measured right after each cold one on the same machine
state. Other processes on the machine lengthen the cold run more than the warm one (it is
longer), so read the ratio with the load average beside it.

    python benchmarks/bench_first_run.py --pairs 3
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

_NOTICE = re.compile(r"compiled (\d+) kernel\(s\) in ([0-9.]+) s")


@dataclass
class Run:
    """One demo process: its wall seconds and the compile notice's count and seconds."""

    seconds: float
    kernels: int
    compile_seconds: float


def _program() -> list[str]:
    """The ``riskmodel`` program of this interpreter's environment (its console script if
    installed, else the same entry point through ``-c``)."""
    script = Path(sys.executable).parent / "riskmodel"
    if script.exists():
        return [str(script)]
    return [sys.executable, "-c", "import sys; from riskmodel.cli import console; "
            "sys.exit(console())"]


def _demo(out: Path, cache: Path, accounts: int) -> Run:
    """One ``riskmodel demo`` in a fresh process with ``NUMBA_CACHE_DIR=cache``."""
    env = dict(os.environ, NUMBA_CACHE_DIR=str(cache))
    cmd = [*_program(), "demo", "--out", str(out), "--quiet", "--accounts", str(accounts)]
    t0 = time.perf_counter()
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - t0
    if done.returncode != 0:
        raise SystemExit(f"demo failed ({done.returncode}):\n{done.stderr}")
    notice = _NOTICE.search(done.stderr)
    kernels, compiled = (int(notice[1]), float(notice[2])) if notice else (0, 0.0)
    return Run(seconds, kernels, compiled)


def _load() -> str:
    return "/".join(f"{x:.2f}" for x in os.getloadavg())


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--pairs", type=int, default=3)
    parser.add_argument("--accounts", type=int, default=300, help="demo accounts (300)")
    args = parser.parse_args()
    import numba

    print(f"machine: {os.cpu_count()} cores, {platform.machine()}, Python "
          f"{platform.python_version()}, numba {numba.__version__}; load average (1/5/15 min) "
          f"at start {_load()}")
    print(f"demo: {args.accounts} accounts; {args.pairs} pairs of (cold, warm) in fresh processes")
    cold: list[Run] = []
    warm: list[Run] = []
    root = Path(tempfile.mkdtemp(prefix="bench-first-run-"))
    try:
        for k in range(max(1, args.pairs)):
            cache = root / f"cache{k}"
            cache.mkdir()
            before = _load()
            cold.append(_demo(root / f"cold{k}", cache, args.accounts))
            warm.append(_demo(root / f"warm{k}", cache, args.accounts))
            c, w = cold[-1], warm[-1]
            print(f"pair {k + 1}: cold {c.seconds:.2f} s (compiled {c.kernels} kernel(s) in "
                  f"{c.compile_seconds:.1f} s), warm {w.seconds:.2f} s (compiled {w.kernels}), "
                  f"ratio {c.seconds / w.seconds:.2f}; load {before} -> {_load()}", flush=True)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    mc = statistics.median(r.seconds for r in cold)
    mw = statistics.median(r.seconds for r in warm)
    print(f"median cold {mc:.2f} s, median warm {mw:.2f} s, cold/warm {mc / mw:.2f} "
          f"(target <= 3.0); compile notice: median "
          f"{statistics.median(r.compile_seconds for r in cold):.1f} s for "
          f"{statistics.median(r.kernels for r in cold):.0f} kernel(s); load at end {_load()}")


if __name__ == "__main__":
    main()
