"""Run the whole benchmark suite, one script after another, each in a fresh process.

Every script warms the JIT, reports medians and times its plain numpy/scipy reference in the same
process (see each script's docstring and ``benchmarks/README.md``). The output of each goes to
the terminal and to ``--log`` (default ``benchmarks-<date>.log`` in the current folder), from
which the results table of ``benchmarks/README.md`` is filled. Sizes are the issues' targets;
``--quick`` runs small sizes to check that everything still runs.

    python benchmarks/run_all.py                 # full sizes (about 20 minutes on 2 cores)
    python benchmarks/run_all.py --skip-1m       # without the million-account run
    python benchmarks/run_all.py --quick
"""

from __future__ import annotations

import argparse
import datetime as dt
import platform
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent

FULL = [
    ("tail kernels", ["bench_tail_kernels.py"]),
    ("tail kernels, the eod book's 2,500 instruments",
     ["bench_tail_kernels.py", "--instruments", "2500", "--reference-sets", "2000"]),
    ("option repricing", ["bench_pricing.py"]),
    ("Monte Carlo scenarios", ["bench_scenarios.py"]),
    ("calibration", ["bench_calibration.py"]),
    ("what-if", ["bench_whatif.py"]),
    ("backtest", ["bench_backtest.py"]),
    ("liquidation map", ["bench_liquidation_map.py", "--sets", "100000"]),
    ("eod 10k and 100k accounts", ["bench_eod.py", "--accounts", "10000", "100000",
                                   "--repeats", "3"]),
    ("eod 1M accounts", ["bench_eod.py", "--accounts", "1000000", "--repeats", "1"]),
]
QUICK = [
    ("tail kernels", ["bench_tail_kernels.py", "--sets", "2000", "--repeats", "1"]),
    ("option repricing", ["bench_pricing.py", "--options", "200", "--scenarios", "1000",
                          "--repeats", "1"]),
    ("liquidation map", ["bench_liquidation_map.py", "--sets", "2000", "--repeats", "1"]),
    ("eod 2k accounts", ["bench_eod.py", "--accounts", "2000", "--options", "100",
                         "--scenarios", "1000", "--repeats", "1"]),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes")
    parser.add_argument("--skip-1m", action="store_true", help="leave out the 1M-account run")
    parser.add_argument("--log", type=Path,
                        default=Path(f"benchmarks-{dt.date.today().isoformat()}.log"))
    args = parser.parse_args()
    suite = QUICK if args.quick else [s for s in FULL
                                      if not (args.skip_1m and s[0] == "eod 1M accounts")]
    failed = []
    with args.log.open("w") as log:
        header = (f"riskmodel benchmarks {dt.datetime.now().isoformat(timespec='seconds')} on "
                  f"{platform.processor() or platform.machine()}, Python "
                  f"{platform.python_version()}\n")
        log.write(header)
        print(header, end="")
        for name, argv in suite:
            banner = f"\n=== {name}: {' '.join(argv)}\n"
            print(banner, end="", flush=True)
            log.write(banner)
            start = time.perf_counter()
            done = subprocess.run([sys.executable, str(HERE / argv[0]), *argv[1:]],
                                  capture_output=True, text=True)
            text = done.stdout + (done.stderr if done.returncode else "")
            text += f"--- {name}: exit {done.returncode}, {time.perf_counter() - start:.0f} s\n"
            print(text, end="", flush=True)
            log.write(text)
            log.flush()
            if done.returncode:
                failed.append(name)
    if failed:
        sys.exit(f"failed: {', '.join(failed)}")


if __name__ == "__main__":
    main()
