"""Netting: same-key rows summed, zero positions dropped, order independent of input order."""

import numpy as np
import pandas as pd

from riskmodel.io.positions import load_positions
from riskmodel.portfolio.netting import _key_order, net_positions

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


def test_ids_read_as_categories_from_parquet_net_like_the_csv(tmp_path):
    # padded ids, a blank, a null and a written "default" netting set: one set, as in CSV
    messy = ROWS.assign(
        account_id=[" b", "a ", "a", "a", " a ", "b", "c", "c", "c"],
        netting_set=["default", "", "default", " iso", None, "default ", "", None, "default"],
        instrument_id=["X ", "Y", " X", "X", "Y", "X", "Y", "Y ", "Y"])
    messy.to_parquet(tmp_path / "p.parquet", index=False)
    messy.to_csv(tmp_path / "p.csv", index=False)
    loaded = load_positions(tmp_path / "p.parquet", ["X", "Y"])
    assert isinstance(loaded.frame["account_id"].dtype, pd.CategoricalDtype)
    from_csv = load_positions(tmp_path / "p.csv", ["X", "Y"])
    for frame in (loaded.frame, from_csv.frame):
        ids = frame[["account_id", "netting_set", "instrument_id"]].astype(str)
        pd.testing.assert_frame_equal(ids, ROWS[["account_id", "netting_set", "instrument_id"]])
    want = net_positions(ROWS, pd.Index(["X", "Y"]))
    for book in (net_positions(loaded.frame, pd.Index(["X", "Y"])),
                 net_positions(from_csv.frame, pd.Index(["X", "Y"]))):
        pd.testing.assert_frame_equal(book.sets, want.sets)
        pd.testing.assert_frame_equal(book.positions, want.positions)
        np.testing.assert_array_equal(book.indptr, want.indptr)


def test_key_order_is_the_lexsort_order_on_either_path():
    rng = np.random.default_rng(3)
    a, s, i = rng.integers(0, 50, 2000), rng.integers(0, 3, 2000), rng.integers(0, 40, 2000)
    want = np.lexsort((i, s, a))
    np.testing.assert_array_equal(_key_order(a, s, i, 3, 40), want)  # one combined key
    np.testing.assert_array_equal(_key_order(a, s, i, 2**40, 2**30), want)  # too wide: lexsort


def test_position_ids_are_categoricals_a_slice_can_cut_to_its_own():
    book = net_positions(ROWS, pd.Index(["X", "Y"]))
    ids = book.positions["account_id"]
    assert isinstance(ids.dtype, pd.CategoricalDtype)
    # the rows' distinct ids, sorted (c's positions netted away, its id stays a category)
    assert list(ids.cat.categories) == ["a", "b", "c"]
    assert list(ids.astype(object)) == ["a", "a", "b"]
    part = book.slice(2, 3).own_ids()
    assert list(part.positions["account_id"].cat.categories) == ["b"]
    assert list(part.positions["instrument_id"].astype(object)) == ["X"]
    pd.testing.assert_frame_equal(part.positions.astype({"account_id": object,
                                                         "netting_set": object,
                                                         "instrument_id": object}),
                                  book.slice(2, 3).positions.astype(
                                      {"account_id": object, "netting_set": object,
                                       "instrument_id": object}))
