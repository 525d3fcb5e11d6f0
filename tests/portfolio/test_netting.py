"""Netting: same-key rows summed, zero positions dropped, order independent of input order."""

import numpy as np
import pandas as pd

from riskmodel.portfolio.netting import net_positions

ROWS = pd.DataFrame(
    {
        "account_id": ["b", "a", "a", "a", "a", "b", "c", "c", "c"],
        "netting_set": ["default", "default", "default", "iso", "default", "default"]
        + ["default"] * 3,
        "instrument_id": ["X", "Y", "X", "X", "Y", "X", "Y", "Y", "Y"],
        # c's three fills net to floating dust (5.6e-17), which must not survive as a position
        "quantity": [1.0, 2.0, 3.0, -1.0, -2.0, 0.5, 0.1, 0.2, -0.3],
    }
)


def test_netting_sums_and_drops_zeros():
    book = net_positions(ROWS, pd.Index(["X", "Y"]))
    # a/default: X 3, Y 2-2=0 (dropped); a/iso: X -1; b/default: X 1.5; c: dust (dropped)
    assert list(zip(book.sets.account_id, book.sets.netting_set)) == [
        ("a", "default"), ("a", "iso"), ("b", "default"),
    ]
    np.testing.assert_array_equal(book.indptr, [0, 1, 2, 3])
    np.testing.assert_array_equal(book.quantity, [3.0, -1.0, 1.5])
    np.testing.assert_array_equal(book.instrument_index, [0, 0, 0])


def test_netting_is_independent_of_row_order():
    a = net_positions(ROWS, pd.Index(["X", "Y"]))
    b = net_positions(ROWS.sample(frac=1.0, random_state=5), pd.Index(["X", "Y"]))
    pd.testing.assert_frame_equal(a.sets, b.sets)
    np.testing.assert_array_equal(a.indptr, b.indptr)
    np.testing.assert_array_equal(a.quantity, b.quantity)
