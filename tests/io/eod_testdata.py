"""A small valid end-of-day input set and a helper that runs ``riskmodel eod`` in-process.

Shared by ``tests/io`` and ``tests/cli`` (their conftests expose it as fixtures). Everything is
built by the test from a seeded generator, so reference values never come from the engine.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from riskmodel.cli import main

ASSETS = ("AAA", "BBB")
N_DAYS = 400
# Fast settings: plain historical simulation, so no GARCH fit; one-day horizon.
FAST_ARGS = ("--method", "hs", "--lookback", "300", "--horizon", "1", "--quiet")

INSTRUMENTS = pd.DataFrame(
    {
        "instrument_id": ["AAA-SPOT", "AAA-FUT", "BBB-SPOT", "BBB-PERP"],
        "kind": ["spot", "future", "spot", "perpetual"],
        "underlying": ["AAA", "AAA", "BBB", "BBB"],
        "multiplier": [1.0, 10.0, 1.0, 1.0],
    }
)

POSITIONS = pd.DataFrame(
    {
        "account_id": ["A01", "A01", "A02", "A03", "A03", "A04", "A05", "A05", "A06", "A07",
                       "A08", "A08", "A09", "A10", "A10"],
        "instrument_id": ["AAA-SPOT", "BBB-PERP", "AAA-FUT", "BBB-SPOT", "AAA-SPOT", "BBB-PERP",
                          "AAA-FUT", "BBB-PERP", "AAA-SPOT", "BBB-SPOT", "AAA-FUT", "AAA-SPOT",
                          "BBB-PERP", "AAA-SPOT", "BBB-PERP"],
        "quantity": [10.0, -5.0, 2.0, 40.0, -3.0, 25.0, -1.5, 8.0, 7.0, -12.0, 1.0, -10.0,
                     -30.0, 4.0, 6.0],
        "netting_set": ["", "", "", "", "", "", "", "", "", "", "", "", "", "", "iso"],
    }
)

ACCOUNTS = pd.DataFrame(
    {
        "account_id": ["A01", "A02", "A03", "A04", "A05", "A06", "A07", "A08", "A09", "A10",
                       "A10"],
        "collateral": [5000.0, 800.0, 1500.0, 20.0, 3000.0, 900.0, 700.0, 50.0, 1200.0, 400.0,
                       300.0],
        "netting_set": ["", "", "", "", "", "", "", "", "", "", "iso"],
    }
)


def gbm_prices(n_days: int = N_DAYS, seed: int = 20240601) -> pd.DataFrame:
    """Seeded geometric Brownian motion on business days, wide (dates x assets)."""
    rng = np.random.default_rng(seed)
    dates = pd.bdate_range("2021-01-04", periods=n_days)
    start = np.array([100.0, 25.0])
    vol = np.array([0.02, 0.035])
    log_ret = rng.normal(-0.5 * vol**2, vol, size=(n_days - 1, len(ASSETS)))
    paths = start * np.exp(np.vstack([np.zeros(len(ASSETS)), np.cumsum(log_ret, axis=0)]))
    return pd.DataFrame(paths, index=pd.Index(dates, name="date"), columns=list(ASSETS))


def to_long(wide: pd.DataFrame) -> pd.DataFrame:
    long = wide.reset_index().melt(id_vars="date", var_name="asset", value_name="price")
    return long[["date", "asset", "price"]]


def date_text(frame: pd.DataFrame) -> pd.DataFrame:
    """Dates as ISO 8601 text (how the CSV files carry them)."""
    out = frame.copy()
    out["date"] = pd.DatetimeIndex(out["date"]).strftime("%Y-%m-%d")
    return out


def write_csv(frame: pd.DataFrame, path: Path) -> Path:
    # repr-exact floats so that CSV and Parquet inputs carry the same numbers
    frame.to_csv(path, index=False, float_format="%.17g")
    return path


def write_parquet(frame: pd.DataFrame, path: Path) -> Path:
    """Write with pyarrow directly: a float NaN stays a NaN value, ``None`` becomes null."""
    columns = {}
    for name in frame.columns:
        values = frame[name].tolist()
        if all(isinstance(v, float) or v is None for v in values):
            columns[str(name)] = pa.array(values, type=pa.float64(), from_pandas=False)
        elif name == "date" and all(isinstance(v, pd.Timestamp) for v in values):
            columns[str(name)] = pa.array([v.to_pydatetime() for v in values],
                                          type=pa.timestamp("us"))
        else:
            columns[str(name)] = pa.array(values)
    pq.write_table(pa.table(columns), path)
    return path


@dataclass
class Dataset:
    """Paths of one input set (all four files) in a folder."""

    root: Path
    prices: Path
    instruments: Path
    positions: Path
    accounts: Path
    extra: dict[str, Path] = field(default_factory=dict)

    def argv(self, out: Path, *extra: str, **files: Path) -> list[str]:
        """``eod`` argv with the fast settings; ``files`` replaces any of the four inputs."""
        paths = {name: files.get(name, getattr(self, name))
                 for name in ("prices", "instruments", "positions", "accounts")}
        argv = ["eod"]
        for name, path in paths.items():
            argv += [f"--{name}", str(path)]
        argv += ["--out", str(out), *FAST_ARGS, *extra]
        return argv


def make_dataset(root: Path, fmt: str = "csv", layout: str = "wide") -> Dataset:
    """Write the valid input set under ``root`` as ``fmt`` ("csv" or "parquet")."""
    root.mkdir(parents=True, exist_ok=True)
    wide = gbm_prices().reset_index()
    prices = wide if layout == "wide" else to_long(gbm_prices())
    if fmt == "csv":
        write = write_csv
        prices = date_text(prices)
    else:
        write = write_parquet
    return Dataset(
        root=root,
        prices=write(prices, root / f"prices.{fmt}"),
        instruments=write(INSTRUMENTS, root / f"instruments.{fmt}"),
        positions=write(POSITIONS, root / f"positions.{fmt}"),
        accounts=write(ACCOUNTS, root / f"accounts.{fmt}"),
    )


def copy_dataset(ds: Dataset, root: Path) -> Dataset:
    root.mkdir(parents=True, exist_ok=True)
    paths = {}
    for name in ("prices", "instruments", "positions", "accounts"):
        src = getattr(ds, name)
        paths[name] = Path(shutil.copy2(src, root / src.name))
    return Dataset(root=root, **paths)


def run_cli(argv: Sequence[str], capsys) -> tuple[int, str]:
    """Run ``riskmodel.cli.main`` in-process; return (exit code, stderr).

    argparse errors raise SystemExit; its code is returned like main()'s.
    """
    capsys.readouterr()
    try:
        code = main(list(argv))
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    err = capsys.readouterr().err
    return code, err


def staging_leftovers(out: Path) -> list[Path]:
    """Staging folders ``.NAME.staging-*`` anywhere from ``out``'s parent up to its anchor."""
    found: list[Path] = []
    for folder in [out.parent, *out.parent.parents][:3]:
        if folder.is_dir():
            found += list(folder.glob(f".{out.name}.staging-*"))
    return found


def csv_with_cell(src: Path, dst: Path, row: int, column: str, value: str) -> int:
    """Copy CSV ``src`` to ``dst`` with one cell replaced by ``value`` (as written text).

    Returns the 1-based line of the cell (header = line 1).
    """
    frame = pd.read_csv(src, dtype=str, keep_default_na=False).astype(object)
    frame.loc[row, column] = value
    frame.to_csv(dst, index=False)
    return row + 2


OLD_MARGINS = "account_id,initial_margin\nOLD,123.45\n"
KEEP_TEXT = "keep me\n"


def prefill_out(out: Path) -> dict[str, bytes]:
    """Create ``out`` with files a failed run must leave untouched; return their bytes."""
    out.mkdir(parents=True)
    (out / "keep.txt").write_text(KEEP_TEXT)
    (out / "margins.csv").write_text(OLD_MARGINS)
    return {p.name: p.read_bytes() for p in out.iterdir()}


def snapshot(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes()
            for p in sorted(folder.rglob("*")) if p.is_file()}


Runner = Callable[..., tuple[int, str]]


# --- fixtures (imported by tests/io/conftest.py and tests/cli/conftest.py) -----------------


@pytest.fixture(scope="session")
def dataset_csv(tmp_path_factory) -> Dataset:
    """The valid input set, wide CSV prices. Shared: tests must not modify it."""
    return make_dataset(tmp_path_factory.mktemp("valid-csv"), "csv", "wide")


@pytest.fixture(scope="session")
def dataset_parquet(tmp_path_factory) -> Dataset:
    """The same input set as Parquet (wide prices with a timestamp date column)."""
    return make_dataset(tmp_path_factory.mktemp("valid-parquet"), "parquet", "wide")


@pytest.fixture
def run_eod(capsys) -> Runner:
    """``run_eod(argv) -> (exit code, stderr)``, in-process."""

    def run(argv: Sequence[str]) -> tuple[int, str]:
        return run_cli(argv, capsys)

    return run


@pytest.fixture
def expect_failure(tmp_path, capsys) -> Callable[..., str]:
    """``expect_failure(make_argv, code, *fragments) -> stderr`` runs the command twice.

    ``make_argv(out)`` builds the argv for an ``--out`` folder. First with an ``--out`` that does
    not exist (it must still not exist afterwards, and its parent must stay empty), then with an
    ``--out`` that already holds ``keep.txt`` and an old ``margins.csv`` (both must survive
    byte for byte). Each time: the exit code, every fragment in stderr, no traceback and no
    staging folder left behind.
    """
    counter = [0]

    def check(make_argv: Callable[[Path], list[str]], code: int, *fragments: str) -> str:
        counter[0] += 1
        base = tmp_path / f"runs{counter[0]}"
        fresh_parent = base / "fresh"
        fresh_parent.mkdir(parents=True)
        fresh = fresh_parent / "out"
        kept = base / "kept" / "out"
        before = prefill_out(kept)
        first = ""
        for out in (fresh, kept):
            rc, err = run_cli(make_argv(out), capsys)
            assert rc == code, f"exit {rc}, expected {code}; stderr: {err}"
            assert "Traceback" not in err, err
            for fragment in fragments:
                assert fragment in err, f"{fragment!r} not in stderr: {err}"
            assert not staging_leftovers(out), staging_leftovers(out)
            first = first or err
        assert not fresh.exists(), sorted(fresh.rglob("*"))
        assert list(fresh_parent.iterdir()) == []
        assert snapshot(kept) == before
        assert sorted(p.name for p in kept.parent.iterdir()) == ["out"]
        return first

    return check
