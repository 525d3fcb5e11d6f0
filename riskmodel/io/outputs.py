"""Output folder handling: build everything in a temporary folder, move it in only when complete.

The temporary folder sits beside the target (same file system, so moves are renames). On any
failure it is removed and the target is untouched: nothing partial appears, and files already
under ``--out`` survive. On success each output replaces its namesake; other files are kept.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv

from riskmodel.errors import UsageError


def _existing_ancestor(path: Path) -> Path:
    for candidate in [path, *path.parents]:
        if candidate.exists():
            return candidate
    return Path.cwd()


def writable_folder(out: str | Path, flag: str = "--out") -> Path:
    """The existing folder that the output ``out`` will be created in, checked writable by
    creating (and removing) a folder there: a usage error (exit 2) naming the path the user
    gave and the reason otherwise, before any work is done. ``os.access`` alone says yes to
    root on a read-only or virtual file system."""
    target = Path(out).absolute()
    anchor = _existing_ancestor(target.parent)
    if not anchor.is_dir():
        raise UsageError(f"{flag} {out}: {anchor} is a file, not a folder")
    return _probe(anchor, out, flag)


def writable_parent(out: str | Path, flag: str = "--out") -> Path:
    """The folder an output file ``out`` goes into: it must exist and be writable (a usage
    error naming ``flag`` and the path otherwise)."""
    parent = Path(out).absolute().parent
    if not parent.is_dir():
        raise UsageError(f"{flag} {out}: folder {parent} does not exist")
    return _probe(parent, out, flag)


def _probe(folder: Path, out: str | Path, flag: str) -> Path:
    try:
        probe = Path(tempfile.mkdtemp(prefix=".riskmodel-probe-", dir=folder))
        probe.rmdir()
    except OSError as exc:
        raise UsageError(f"{flag} {out}: cannot write in {folder}: "
                         f"{exc.strerror or exc}") from None
    return folder


@contextmanager
def staged_output(out: str | Path, flag: str = "--out") -> Iterator[Path]:
    """Yield a temporary folder; on normal exit move its contents into ``out``."""
    target = Path(out).absolute()
    if target.exists() and not target.is_dir():
        raise UsageError(f"{flag} {out}: exists and is not a folder")
    anchor = writable_folder(out, flag)
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
        write_parquet(frame, path)
    elif path.suffix == ".csv":
        write_csv(frame, path)
    else:  # pragma: no cover - programming error
        raise ValueError(f"unsupported output extension: {path}")


def write_parquet(frame: pd.DataFrame, path: Path) -> None:
    """Write ``frame`` as Parquet, dictionary-encoding only the columns that are not floats."""
    frame.to_parquet(path, index=False, use_dictionary=dictionary_columns(frame.dtypes))


def dictionary_columns(dtypes: pd.Series | pa.Schema) -> list[str]:
    """The columns worth a Parquet dictionary: all but the floats. Ids, statuses and counts
    repeat; margins, P&L and contributions are nearly all distinct, so pyarrow would build a
    float dictionary only to drop it once it outgrows its page, a third of the write's time."""
    if isinstance(dtypes, pa.Schema):
        return [f.name for f in dtypes if not pa.types.is_floating(f.type)]
    return [str(name) for name, dtype in dtypes.items()
            if not pd.api.types.is_float_dtype(dtype)]


def write_json(data: Any, path: Path) -> None:
    path.write_text(json.dumps(data, indent=2, sort_keys=False, default=str) + "\n")


_NEEDS_QUOTING = '[,"\r\n]'  # characters that a CSV field must be quoted for


def _float_text(numbers: np.ndarray) -> pa.Array:
    """Floats as pandas writes them: the shortest text that reads back to the same value, with
    ``.0`` after an integral one, NaN as null (an empty field)."""
    text = pc.cast(pa.array(numbers, mask=np.isnan(numbers)), pa.string())
    integral = pc.invert(pc.match_substring_regex(text, "[.eEn]"))
    return pc.if_else(integral, pc.binary_join_element_wise(text, pa.scalar(".0"),
                                                            pa.scalar("")), text)


CSV_CHUNK_ROWS = 1 << 17
"""Rows formatted at a time by :func:`write_csv`: its text is held a chunk at a time."""


def write_csv(frame: pd.DataFrame, path: Path) -> None:
    """Write ``frame`` as CSV with Arrow's writer (five times pandas' ``to_csv`` on wide float
    tables), in pandas' conventions so that any reader gets back what pandas would have
    written: floats as the shortest text that reads back to the same value, always with a
    decimal point or an exponent (``1.0``, never ``1``, so the column reads back as floats), NaN
    as an empty field, booleans ``True``/``False``, no quotes. A name or text value that needs
    quoting (a comma, quote or line break), or a repeated name, sends the table to pandas'
    writer. The rows are formatted and written :data:`CSV_CHUNK_ROWS` at a time, so a table of
    a million rows never holds all its text at once (0.4 GiB for eod's margins)."""
    names = [str(name) for name in frame.columns]
    if len(set(names)) < len(names) or any(re.search(_NEEDS_QUOTING, n) for n in names):
        frame.to_csv(path, index=False)
        return
    with open(path, "wb") as sink:
        sink.write((",".join(names) + "\n").encode())
        for first in range(0, len(frame), CSV_CHUNK_ROWS):
            chunk = _csv_text(frame.iloc[first:first + CSV_CHUNK_ROWS], names)
            if chunk is None:
                break
            pa_csv.write_csv(chunk, sink, pa_csv.WriteOptions(include_header=False,
                                                              quoting_style="none"))
        else:
            return
    frame.to_csv(path, index=False)  # a value needs quoting: pandas' writer, from the start


def _csv_text(frame: pd.DataFrame, names: list[str]) -> pa.Table | None:
    """The rows of ``frame`` as text columns in :func:`write_csv`'s conventions, or None where
    a text value needs quoting."""
    # Arrow's kernels release the GIL: the float columns are formatted on every core
    with ThreadPoolExecutor(max_workers=max(1, min(4, os.cpu_count() or 1))) as pool:
        floats = {name: pool.submit(_float_text, values.to_numpy(np.float64))
                  for name, (_, values) in zip(names, frame.items())
                  if pd.api.types.is_float_dtype(values.dtype)}
        columns = {}
        for name, (_, values) in zip(names, frame.items()):
            if name in floats:
                columns[name] = floats[name].result()
            elif pd.api.types.is_bool_dtype(values.dtype):
                columns[name] = pa.array(np.where(values.to_numpy(bool), "True", "False"))
            elif pd.api.types.is_integer_dtype(values.dtype):
                columns[name] = pa.array(values.to_numpy())
            else:
                text = (pa.array(values, type=pa.string())  # Arrow-backed: no copy per cell
                        if isinstance(values.dtype, pd.StringDtype) else
                        pa.array(values.astype(object).where(values.notna(), None).to_numpy(),
                                 type=pa.string()))
                if pc.any(pc.match_substring_regex(text, _NEEDS_QUOTING)).as_py():
                    return None
                columns[name] = text
    return pa.table(columns)
