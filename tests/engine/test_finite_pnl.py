"""The scenario P&L's one finiteness check: a NaN or an infinity anywhere is named by its
instrument, scenario and value; a finite matrix passes, however large its values."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from riskmodel.engine.build import finite_pnl
from riskmodel.errors import ModelError
from riskmodel.scenarios.scenario_set import ScenarioSet

INSTRUMENTS = pd.DataFrame({"instrument_id": ["FUT", "CALL", "PUT"]})
SCENARIOS = ScenarioSet(np.zeros((4, 1)), ("X",), np.array(["s0", "s1", "s2", "s3"]), "mc", 1)


def _pnl() -> np.ndarray:
    return np.random.default_rng(3).standard_normal((3, 4)) * 1e3


def test_a_finite_matrix_passes_even_at_the_largest_floats():
    pnl = _pnl()
    pnl[0, 0], pnl[2, 3] = np.finfo(float).max, -np.finfo(float).max
    assert finite_pnl(pnl, INSTRUMENTS, SCENARIOS) is pnl


@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize(("row", "col"), [(0, 0), (1, 2), (2, 3)])
def test_a_non_finite_value_is_named(value, row, col):
    pnl = _pnl()
    pnl[row, col] = value
    with pytest.raises(ModelError) as err:
        finite_pnl(pnl, INSTRUMENTS, SCENARIOS)
    message = str(err.value)
    assert repr(INSTRUMENTS["instrument_id"][row]) in message
    assert f"scenario 's{col}'" in message and repr(value) in message


def test_the_first_of_several_is_named():
    pnl = _pnl()
    pnl[1, 3], pnl[2, 0] = np.nan, np.inf
    with pytest.raises(ModelError, match="'CALL' in mc scenario 's3'"):
        finite_pnl(pnl, INSTRUMENTS, SCENARIOS)
