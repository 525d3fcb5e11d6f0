"""Fixtures for the CLI tests: the same valid input set and runners as tests/io."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parents[1] / "io"))

from eod_testdata import (  # noqa: E402
    dataset_csv,
    dataset_parquet,
    expect_failure,
    run_eod,
)

__all__ = ["dataset_csv", "dataset_parquet", "expect_failure", "run_eod"]
