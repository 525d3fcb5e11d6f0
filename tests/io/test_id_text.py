"""``id_text``: an id column's values as pandas makes them from its strings, by Arrow for a
categorical, compared with the plain conversion (``to_numpy``) it stands in for."""

import numpy as np
import pandas as pd
import pytest

from riskmodel.io.positions import id_categorical, id_text


def _as_column(values) -> pd.Series:
    return pd.DataFrame({"id": values})["id"]


@pytest.mark.parametrize("column", [
    pd.Series(id_categorical(np.array([2, 0, 1, 2, 2], dtype=np.int8),
                             np.array(["ACC-2", "b", "ünï"], dtype=object))),
    pd.Series(id_categorical(np.zeros(0, dtype=np.int8), np.array(["x"], dtype=object))),
    pd.Series(pd.Categorical(["a", None, "b"])),  # a missing id: the plain conversion
    pd.Series(pd.Categorical([3, 1, 3])),  # ids that are not strings: the plain conversion
    pd.Series(np.array(["p", "q"], dtype=object)),  # not a categorical
])
def test_id_text_is_the_column_pandas_makes_from_the_values(column):
    expected = _as_column(column.to_numpy())
    got = _as_column(id_text(column))
    assert got.dtype == expected.dtype
    pd.testing.assert_series_equal(got, expected, check_exact=True)
    assert got.tolist() == column.tolist() or column.isna().any()


def test_id_text_decodes_with_arrow_where_pandas_keeps_text_in_arrow():
    column = pd.Series(id_categorical(np.array([1, 0, 1], dtype=np.int16),
                                      np.array(["a", "b"], dtype=object)))
    text = pd.Series(np.array(["x"], dtype=object)).dtype
    got = id_text(column)
    if getattr(text, "storage", None) == "pyarrow":
        assert isinstance(got, pd.api.extensions.ExtensionArray)  # not Python strings
    else:
        assert isinstance(got, np.ndarray)
    assert list(got) == ["b", "a", "b"]


def test_id_text_of_slices_sharing_categories_and_then_others():
    # eod's partitions are slices of one book, sharing its categories (decoded to Arrow once):
    # each slice gets its own ids; then other categories, equal in content or not all text,
    # are not taken for the last ones
    names = np.array([f"ACC{i:03d}" for i in range(50)], dtype=object)
    book = pd.Series(id_categorical(np.arange(100, dtype=np.int32) % 50, names))
    for start, stop in ((0, 30), (30, 100), (10, 11)):
        part = book.iloc[start:stop].reset_index(drop=True)
        assert part.cat.categories is book.cat.categories
        assert list(id_text(part)) == [f"ACC{i % 50:03d}" for i in range(start, stop)]
    reversed_names = pd.Series(id_categorical(np.array([0, 1], dtype=np.int8), names[::-1].copy()))
    assert list(id_text(reversed_names)) == ["ACC049", "ACC048"]
    numbers = pd.Series(pd.Categorical([7, 5]))
    assert list(id_text(numbers)) == [7, 5]
    assert list(id_text(book.iloc[:2])) == ["ACC000", "ACC001"]


def test_id_text_decodes_each_of_three_alternating_categories_once(monkeypatch):
    # a partition's attribution decodes its account, netting set and instrument ids in turn:
    # each column's categories are converted to Arrow once for the whole book, not once per
    # partition
    from riskmodel.io import positions

    columns = [pd.Series(id_categorical(np.arange(60, dtype=np.int32) % n,
                                        np.array([f"{tag}{i}" for i in range(n)], dtype=object)))
               for tag, n in (("A", 60), ("S", 3), ("I", 7))]
    converted = []
    to_numpy = pd.Index.to_numpy

    def counted(self, *args, **kwargs):
        converted.append(len(self))
        return to_numpy(self, *args, **kwargs)

    monkeypatch.setattr(pd.Index, "to_numpy", counted)
    monkeypatch.setattr(positions, "_last_names", [])
    for start, stop in ((0, 20), (20, 40), (40, 60)):
        for column in columns:
            part = column.iloc[start:stop].reset_index(drop=True)
            assert list(id_text(part)) == list(column.iloc[start:stop])
    assert sorted(converted) == [3, 7, 60]
