"""Reading CSV or Parquet tables (chosen by extension) with errors that point at the bad cell.

CSV cells are read as text so that nothing is silently coerced: an empty cell is "missing", any
other text must parse, and ``nan``/``inf`` are reported as non-finite rather than treated as gaps.
Every error names the file, the line (CSV, header = line 1) or row (Parquet, first row = 1), the
column and the value.
"""

from __future__ import annotations

import csv
import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

from riskmodel.errors import InputDataError

CSV_SUFFIXES = (".csv",)
# on_bad(row, message): what a reader reports a bad cell to instead of raising
BadRow = Callable[[int, str], None]
PARQUET_SUFFIXES = (".parquet", ".pq")


@dataclass(frozen=True)
class Table:
    """A loaded input table and where it came from.

    ``frame`` keeps the file's row order; for CSV every column is text (``object`` dtype, empty
    cells as ``None``), for Parquet the stored types are kept. Read with ``text_as_categories``
    (:func:`read_table`), Parquet string columns and, unless the file fell back to pandas' reader,
    every CSV column are pandas categoricals instead (missing cells NaN).
    """

    path: Path
    frame: pd.DataFrame
    is_csv: bool
    # Parquet only: per float column, True where the cell is null (missing) rather than a NaN
    # written as a value; pandas shows both as NaN.
    null_masks: Mapping[str, np.ndarray] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.path.name

    def where(self, row: int) -> str:
        """Human location of 0-based data row ``row``: ``prices.csv line 7``."""
        if self.is_csv:
            return f"{self.path} line {_csv_line(self.path, row)}"
        return f"{self.path} row {row + 1}"

    def fail(self, row: int, column: str, value: object, problem: str) -> InputDataError:
        return InputDataError(f"{self.where(row)}, column {column!r}: {problem} (value {value!r})")

    def require_columns(self, columns: tuple[str, ...] | list[str]) -> None:
        missing = [c for c in columns if c not in self.frame.columns]
        if missing:
            raise InputDataError(
                f"{self.path}: missing column(s) {', '.join(repr(c) for c in missing)}; "
                f"found {', '.join(repr(c) for c in self.frame.columns)}"
            )

    def text(self, column: str, *, allow_missing: bool = False,
             on_bad: BadRow | None = None) -> np.ndarray:
        """Column as an array of stripped strings; missing cells raise unless allowed (then '').

        One Python string per distinct value, shared by its rows: ids repeat (ten positions per
        account, a few thousand instruments for ten million positions), and a string object per
        row would be most of a large book's memory.
        """
        codes, names = self.coded(column, allow_missing=allow_missing, on_bad=on_bad)
        return names[codes]

    def coded(self, column: str, *, allow_missing: bool = False,
              on_bad: BadRow | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Column as integer codes into its distinct stripped strings: ``names[codes]`` is
        :meth:`text`. ``names`` may hold a value no row has (``""`` for a column read as
        categories); test rows through ``codes``. An empty value raises, or with ``on_bad``
        is reported row by row (``on_bad(row, message)``) and kept as ``""``."""
        series = self.frame[column]
        if isinstance(series.dtype, pd.CategoricalDtype) and pd.api.types.infer_dtype(
                series.cat.categories) in ("string", "empty"):
            # a column read dictionary-encoded (text_as_categories): strip and merge the
            # distinct values only (stripping may make two equal); code -1 (a missing cell)
            # picks the appended ""
            stripped = np.append(series.cat.categories.str.strip().to_numpy(dtype=object), "")
            merged, distinct = pd.factorize(stripped)
            codes = merged[series.cat.codes.to_numpy()]
            names = np.asarray(distinct, dtype=object)
        elif pd.api.types.infer_dtype(series, skipna=True) in ("string", "empty"):
            # every cell a string or missing: one vectorised pass (a million ids in ~0.1 s)
            codes, distinct = pd.factorize(series.str.strip().fillna(""))
            names = np.asarray(distinct, dtype=object)
        else:
            codes, names = self._coded_cell_by_cell(column, allow_missing or on_bad is not None)
        if not allow_missing:
            empty = (names == "")[codes]
            for i in np.flatnonzero(empty).tolist():
                value = series.iat[i]
                error = self.fail(i, column, "" if pd.isna(value) else value, "empty value")
                if on_bad is None:
                    raise error
                on_bad(i, str(error))
        return codes, names

    def _coded_cell_by_cell(self, column: str,
                            allow_missing: bool) -> tuple[np.ndarray, np.ndarray]:
        values = self.frame[column].to_numpy(dtype=object)
        out = np.empty(len(values), dtype=object)
        for i, v in enumerate(values):
            if v is None or (isinstance(v, float) and np.isnan(v)) or v is pd.NA:
                if not allow_missing:
                    raise self.fail(i, column, "", "empty value")
                out[i] = ""
            else:
                # Parquet stores integer ids in a column with nulls as floats: 1001.0 is "1001"
                is_whole = isinstance(v, (float, np.floating)) and float(v).is_integer()
                s = str(int(v)) if is_whole else str(v).strip()
                if not s and not allow_missing:
                    raise self.fail(i, column, v, "empty value")
                out[i] = s
        codes, distinct = pd.factorize(out)
        return codes, np.asarray(distinct, dtype=object)

    def numbers(
        self,
        column: str,
        *,
        what: str = "number",
        allow_missing: bool = False,
        finite: bool = True,
        on_bad: BadRow | None = None,
    ) -> np.ndarray:
        """Column as float64; missing cells become NaN only when ``allow_missing``.

        Raises on text that is not a number and, when ``finite``, on NaN/inf written in the file;
        with ``on_bad``, each such row is reported instead (``on_bad(row, message)``) and its
        value is NaN.
        """
        raw = self.frame[column]
        # bool counts as numeric for pandas; True is not a quantity: it fails as text below
        numeric = pd.api.types.is_numeric_dtype(raw.dtype)
        if not self.is_csv and numeric and not pd.api.types.is_bool_dtype(raw.dtype):
            values = raw.to_numpy(dtype=np.float64, na_value=np.nan)
            # Parquet stores nulls (missing) apart from NaN (a written non-finite value).
            null = self.null_masks.get(column, raw.isna().to_numpy())
            present = ~null
            problems: list[tuple[int, object, str]] = []
            if not allow_missing:
                problems += [(int(i), None, f"missing {what}") for i in np.flatnonzero(null)]
            if finite:
                problems += [(int(i), float(values[i]), f"non-finite {what}")
                             for i in np.flatnonzero(present & ~np.isfinite(values))]
            return self._report(column, values, sorted(problems, key=lambda p: p[0]), on_bad)
        # text: each distinct value parsed once, as Python's float() parses it (numpy's cast
        # from str objects calls it in C); the first bad row in file order is reported
        codes, names = self.coded(column, allow_missing=allow_missing, on_bad=on_bad)
        value = np.full(len(names), np.nan)
        problem = np.zeros(len(names), dtype=np.int8)  # 1: not a number, 2: non-finite
        filled = np.flatnonzero(names != "")
        try:
            value[filled] = names[filled].astype(np.float64)
        except ValueError:
            for j in filled:
                try:
                    value[j] = float(names[j])
                except ValueError:
                    problem[j] = 1
        if finite:
            problem[filled[~np.isfinite(value[filled]) & (problem[filled] == 0)]] = 2
        bad = problem[codes]
        found: list[tuple[int, object, str]] = [
            (int(i), names[codes[i]], f"{'not a' if bad[i] == 1 else 'non-finite'} {what}")
            for i in np.flatnonzero(bad)]
        return self._report(column, value[codes], found, on_bad)

    def _report(self, column: str, values: np.ndarray,
                problems: list[tuple[int, object, str]], on_bad: BadRow | None) -> np.ndarray:
        """Raise the first of ``problems`` (row, value, what is wrong), or report each to
        ``on_bad`` and make its value NaN."""
        if problems and on_bad is not None:
            values = values.copy()  # never write into the table's own data
        for i, value, problem in problems:
            error = self.fail(int(i), column, value, problem)
            if on_bad is None:
                raise error
            on_bad(int(i), str(error))
            values[i] = np.nan
        return values


def read_table(path: str | Path, what: str, *, text_as_categories: bool = False) -> Table:
    """Read a CSV or Parquet file chosen by its extension.

    Parameters
    ----------
    path : the file.
    what : what the file is (``"prices"``), for error messages.
    text_as_categories : Parquet string columns, and every CSV column, are read
        dictionary-encoded, as pandas categoricals (int32 codes per row, one string per distinct
        value): for tables of millions of rows with repeating ids, where a string per row would
        cost seconds and gigabytes. CSV then goes through pyarrow's multi-threaded reader,
        or through pandas' where the two could differ (:func:`_csv_as_categories`). Read the
        columns through :meth:`Table.coded`, :meth:`Table.text` or :meth:`Table.numbers`, which
        give the same for either.
    """
    p = Path(path)
    suffix = p.suffix.lower()
    if not p.exists():
        raise InputDataError(f"{what} file not found: {p}")
    if not p.is_file():
        raise InputDataError(f"{what} path is not a file: {p}")
    if suffix in CSV_SUFFIXES:
        _require_commas(p, what)
        if text_as_categories:
            coded = _csv_as_categories(p, _csv_header(p))
            if coded is not None:
                coded.columns = [str(c).strip() for c in coded.columns]
                return Table(p, coded, is_csv=True)
        try:
            frame = pd.read_csv(
                p, dtype=str, keep_default_na=False, na_values=[""], skipinitialspace=True
            )
        except pd.errors.EmptyDataError:
            raise InputDataError(f"{p}: {what} file is empty") from None
        except (pd.errors.ParserError, UnicodeDecodeError) as exc:
            raise InputDataError(f"{p}: cannot parse {what} CSV: {exc}") from None
        frame = frame.astype(object).where(frame.notna(), None)
        # pandas renames a repeated header name ("AAA", "AAA.1"): check the header as written.
        _require_unique_columns(p, _csv_header(p))
        frame.columns = [str(c).strip() for c in frame.columns]
        return Table(p, frame, is_csv=True)
    if suffix in PARQUET_SUFFIXES:
        try:
            arrow = pq.read_table(p, read_dictionary=_text_columns(p) if text_as_categories
                                  else None)
        except (pa.ArrowInvalid, OSError) as exc:
            raise InputDataError(f"{p}: cannot read {what} Parquet: {exc}") from None
        _require_unique_columns(p, [str(c) for c in arrow.column_names])
        # A frame saved with pandas keeps its index as a column (a DatetimeIndex named "date"
        # is the usual way to write prices): read every stored column as a plain column, and
        # drop pandas' anonymous index columns, which carry no data of ours.
        anonymous = [n for n in arrow.column_names if n.startswith("__index_level_")]
        arrow = arrow.drop_columns(anonymous)
        frame = arrow.to_pandas(ignore_metadata=True)
        frame.columns = [str(c).strip() for c in frame.columns]
        null_masks = {
            str(name).strip(): arrow.column(name).is_null().to_numpy(zero_copy_only=False)
            for name in arrow.column_names
            if pa.types.is_floating(arrow.column(name).type)
        }
        return Table(p, frame, is_csv=False, null_masks=null_masks)
    raise InputDataError(
        f"{p}: unsupported {what} file extension {suffix!r} (use .csv or .parquet)"
    )


def _csv_as_categories(path: Path, header: list[str]) -> pd.DataFrame | None:
    """The CSV as pandas' reader (``read_table``) sees it, read by pyarrow with every column
    dictionary-encoded text; None when the file has anything on which the two readers may
    differ, or that pyarrow cannot read: the caller then reads it with pandas, which reports
    any error as it always has. Falls back on a header name that is blank, repeated (after
    stripping) or quoted after a space; an odd number of quote characters (an unclosed quote,
    which pyarrow accepts at the end of the file); any cell holding a quote or a line break
    (a doubled quote, a quote inside a field, a cell over several lines, which pyarrow splits
    at its block boundaries); a cell whose quote follows spaces; rows of another width; bad
    UTF-8; an empty file."""
    names = [n.strip() for n in header]
    if (not header or not all(names) or len(set(names)) < len(names)
            or any('"' in n for n in header) or _odd_quote_count(path)):
        return None
    text = pa.dictionary(pa.int32(), pa.string())
    try:
        table = pa_csv.read_csv(path, convert_options=pa_csv.ConvertOptions(
            column_types=dict.fromkeys(header, text), strings_can_be_null=True,
            null_values=[""]))
        if table.column_names != header or any(f.type != text for f in table.schema):
            return None
    except (pa.ArrowInvalid, OSError, UnicodeDecodeError):
        return None
    frame = table.to_pandas()
    for name in frame.columns:
        categories = frame[name].cat.categories
        if categories.str.contains(r'["\r\n]', regex=True).any():
            return None
        # pandas skips the spaces after a delimiter (skipinitialspace), pyarrow keeps them: a
        # cell of spaces is missing for pandas. (Quoted, pandas would keep it as text, which
        # every reader strips to an empty value anyway; only the value an error shows differs.)
        blank = categories[categories.str.lstrip(" ") == ""]
        if len(blank):
            frame[name] = frame[name].cat.remove_categories(blank)
    return frame


def _odd_quote_count(path: Path) -> bool:
    count = 0
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 24), b""):
            count += block.count(b'"')
    return count % 2 == 1


def _text_columns(path: Path) -> list[str] | None:
    """The string columns of a Parquet file; None when its schema cannot be read (the read
    itself then reports why, in pyarrow's words)."""
    try:
        schema = pq.read_schema(path)
    except (pa.ArrowInvalid, OSError):
        return None
    return [f.name for f in schema
            if pa.types.is_string(f.type) or pa.types.is_large_string(f.type)]


def _csv_header(path: Path) -> list[str]:
    """The first non-blank line of a CSV file, split into fields as written."""
    with path.open(encoding="utf-8-sig", errors="replace", newline="") as fh:
        for line in fh:
            if line.strip(" \t\r\n"):
                return next(csv.reader([line]))
    return []


SEPARATORS = {";": "semicolons", "\t": "tabs", "|": "vertical bars"}


def _require_commas(path: Path, what: str) -> None:
    """A header of one column holding another usual separator is a file written with that
    separator (a spreadsheet's export in a locale with decimal commas, say): name it, rather
    than let the reader fail on the first data row with a tokenizing error."""
    header = _csv_header(path)
    if len(header) != 1:
        return
    counts = {sep: header[0].count(sep) for sep in SEPARATORS}
    sep = max(counts, key=lambda k: counts[k])
    if counts[sep]:
        raise InputDataError(
            f"{path} line 1: the {what} header is one column; its fields are separated by "
            f"{SEPARATORS[sep]} ({sep!r}), but riskmodel reads comma-separated CSV: save the "
            f"file with commas (and decimal points), or as Parquet (value {header[0]!r})")


def _require_unique_columns(path: Path, names: list[str]) -> None:
    seen: set[str] = set()
    for name in (n.strip() for n in names):
        if name in seen:
            raise InputDataError(f"{path}: duplicate column {name!r} in the header")
        if name:  # pandas names empty headers "Unnamed: i" itself
            seen.add(name)


def _csv_line(path: Path, row: int) -> int:
    """1-based line of 0-based data row ``row``, counting the blank lines pandas skips.

    Falls back to ``row + 2`` (header on line 1, no blank lines) when the file cannot be mapped
    line by line (a quoted field spanning lines).
    """
    try:
        with path.open(encoding="utf-8-sig", errors="replace", newline="") as fh:
            text = fh.read()
    except OSError:
        return row + 2
    all_lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    if any(line.count('"') % 2 for line in all_lines):
        return row + 2
    # pandas skips empty and whitespace-only lines; the first line left is the header
    lines = [i + 1 for i, line in enumerate(all_lines) if line.strip(" \t")]
    return lines[row + 1] if row + 1 < len(lines) else row + 2


def sha256_file(path: str | Path) -> str:
    """SHA-256 of a file's bytes, for the manifest's input provenance."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
