"""Close-out slippage: the square-root rule and an order-book walk, worked out by hand, and
the depth file's checks."""

import numpy as np
import pandas as pd
import pytest

from riskmodel.errors import InputDataError, UsageError
from riskmodel.waterfall.slippage import Slippage, read_depth


def _depth(tmp_path, rows):
    path = tmp_path / "depth.csv"
    pd.DataFrame(rows, columns=["underlying", "side", "price_offset", "size"]).to_csv(
        path, index=False)
    return path


def test_square_root_rule():
    """Selling 400 and buying 100 on a factor with sigma 2% and ADV 10,000:
    400 x 0.02 x sqrt(0.04) + 100 x 0.02 x sqrt(0.01) = 1.6 + 0.2; no ADV: no cost, a note."""
    s = Slippage(["X", "Y"], np.array([0.02, 0.03]), np.array([1e4, np.nan]), 1.0)
    cost = s.cost(np.array([0, 1]), np.array([400.0, 50.0]), np.array([100.0, 0.0]))
    np.testing.assert_allclose(cost, [1.8, 0.0], rtol=1e-14)
    assert any("'Y'" in note for note in s.notes)


def test_depth_walk(tmp_path):
    """Bids 100 at 10 bp and 200 at 20 bp: selling 250 costs 100 x 0.001 + 150 x 0.002 = 0.4;
    selling 400, beyond the book, 0.1 + 0.4 + 100 x 0.002 (the last level repeats) = 0.7.
    Asks 1,000 at 5 bp: buying 50 costs 0.025."""
    path = _depth(tmp_path, [("X", "bid", 0.002, 200), ("X", "bid", 0.001, 100),
                             ("X", "ask", 0.0005, 1000)])
    s = Slippage(["X"], np.array([0.02]), np.array([np.nan]), 1.0, read_depth(path, ["X"]))
    cost = s.cost(np.zeros(3, np.int64), np.array([250.0, 400.0, 0.0]),
                  np.array([0.0, 0.0, 50.0]))
    np.testing.assert_allclose(cost, [0.4, 0.7, 0.025], rtol=1e-12)


@pytest.mark.parametrize("rows, words", [
    ([("X", "bid", 0.001, 100)], ["no ask levels", "X"]),
    ([("Z", "bid", 0.001, 100), ("Z", "ask", 0.001, 100)], ["not an underlying", "'Z'"]),
    ([("X", "buy", 0.001, 100)], ["bid or ask", "'buy'"]),
    ([("X", "bid", -0.001, 100), ("X", "ask", 0.001, 1)], ["price_offset", "-0.001"]),
    ([("X", "bid", 0.001, 0), ("X", "ask", 0.001, 1)], ["size", "0.0"]),
    ([("X", "bid", 0.001, 5), ("X", "bid", 0.001, 6), ("X", "ask", 0.001, 1)],
     ["listed twice", "line 2"]),
])
def test_inconsistent_depth_files_name_the_row(tmp_path, rows, words):
    with pytest.raises(InputDataError) as err:
        read_depth(_depth(tmp_path, rows), ["X"])
    assert err.value.exit_code == 3
    for w in words:
        assert w in str(err.value)


def test_missing_depth_file_is_a_usage_error(tmp_path):
    with pytest.raises(UsageError, match="waterfall.depth_file"):
        read_depth(tmp_path / "nope.csv", ["X"])
