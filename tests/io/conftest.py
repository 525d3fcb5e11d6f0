"""Fixtures for the input-validation tests: a valid synthetic input set and eod runners."""

import sys
from pathlib import Path

# The shared helper module sits beside this file; make it importable whatever the import mode.
sys.path.insert(0, str(Path(__file__).parent))

from eod_testdata import (  # noqa: E402
    dataset_csv,
    dataset_parquet,
    expect_failure,
    run_eod,
)

__all__ = ["dataset_csv", "dataset_parquet", "expect_failure", "run_eod"]
