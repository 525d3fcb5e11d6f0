"""Fixtures for the end-to-end engine tests."""

import pandas as pd
import pytest
from engine_inputs import load_index_closes


@pytest.fixture(scope="session")
def index_closes() -> pd.DataFrame:
    """Real S&P 500 and NASDAQ Composite daily closes (arch.data), 1999-2018."""
    return load_index_closes()
