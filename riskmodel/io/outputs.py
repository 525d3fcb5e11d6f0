"""Output folder handling: build everything in a temporary folder, move it in only when complete.

The temporary folder sits beside the target (same file system, so moves are renames). On any
failure it is removed and the target is untouched: nothing partial appears, and files already
under ``--out`` survive. On success each output replaces its namesake; other files are kept.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pandas as pd

from riskmodel.errors import UsageError


def _existing_ancestor(path: Path) -> Path:
    for candidate in [path, *path.parents]:
        if candidate.exists():
            return candidate
    return Path.cwd()


@contextmanager
def staged_output(out: str | Path) -> Iterator[Path]:
    """Yield a temporary folder; on normal exit move its contents into ``out``."""
    target = Path(out).absolute()
    if target.exists() and not target.is_dir():
        raise UsageError(f"--out {out}: exists and is not a folder")
    anchor = _existing_ancestor(target.parent)
    if not os.access(anchor, os.W_OK):
        raise UsageError(f"--out {out}: {anchor} is not writable")
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.staging-", dir=anchor))
    try:
        yield staging
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    target.mkdir(parents=True, exist_ok=True)
    for item in sorted(staging.iterdir()):
        dest = target / item.name
        if dest.is_dir() and not dest.is_symlink():
            shutil.rmtree(dest)
        os.replace(item, dest)
    staging.rmdir()


def write_table(frame: pd.DataFrame, path: Path) -> None:
    """Write a DataFrame as Parquet or CSV, chosen by the path's extension."""
    if path.suffix == ".parquet":
        frame.to_parquet(path, index=False)
    elif path.suffix == ".csv":
        frame.to_csv(path, index=False)
    else:  # pragma: no cover - programming error
        raise ValueError(f"unsupported output extension: {path}")


def write_json(data: Any, path: Path) -> None:
    path.write_text(json.dumps(data, indent=2, sort_keys=False, default=str) + "\n")
