"""Output files written in a background thread while the run goes on.

eod writes every output but the page and the manifest here. Two are final once the book is
margined: the attribution (streamed from the partition parts; first, because the page reads
it back) and the what-if state (mostly the scenario P&L matrix, 200 MB at venue size). Both are
Arrow encoding and copies into the page cache, which hold no GIL, so they run on the second
core while the liquidation stage (Python on the main thread) runs on the first; about 0.7 s of
a 100,000-account run's writing leaves its critical path. The margin tables, the factors and
the orders follow once the liquidation stage has added its column, while the main thread
draws the page (their CSV is Arrow's writer too): the write stage 0.1-0.2 s shorter at 100,000
accounts, 0.7 s at a million.

The files go into a folder of their own (``outputs/`` in the run's work folder, beside
``--out``) and are moved into the staged output by :func:`riskmodel.batch.eod.write_eod` with
renames, so the output stays all or nothing; a failed write is raised when the run collects it.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

from riskmodel.io.arrow_memory import return_arrow_memory


class BackgroundWrites:
    """Files written one after another in one thread, each to ``folder / name``."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        shutil.rmtree(folder, ignore_errors=True)  # a killed run's leftovers
        folder.mkdir(parents=True)
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="riskmodel-write")
        self._pending: dict[str, Future[float]] = {}
        self.seconds: dict[str, float] = {}

    def submit(self, name: str, write: Callable[..., Any], *args: Any) -> None:
        """Start ``write(folder / name, *args)`` after the files submitted before it."""

        def timed() -> float:
            start = time.perf_counter()
            write(self.folder / name, *args)
            return_arrow_memory()
            return time.perf_counter() - start

        self._pending[name] = self._pool.submit(timed)

    def written(self, name: str) -> Path:
        """Wait for the file ``name`` (and so for the ones submitted before it); its path in
        the background folder. Re-raises its failure."""
        self._pending[name].result()
        return self.folder / name

    def finish(self) -> None:
        """Wait for every write; re-raise the first that failed."""
        try:
            for name, future in self._pending.items():
                self.seconds[name] = future.result()
        finally:
            self._pool.shutdown(wait=True)

    def abandon(self) -> None:
        """Drop the writes not started and wait for the one running, ignoring their errors (the
        run failed: its error is the one to report), so that nothing writes into a folder its
        caller is about to remove."""
        self._pool.shutdown(wait=True, cancel_futures=True)

    def move_into(self, target: Path) -> None:
        """:meth:`finish`, then rename each file (or folder) into ``target``."""
        self.finish()
        for name in self._pending:
            os.replace(self.folder / name, target / name)
