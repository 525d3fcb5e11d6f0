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
