"""The CSV writer of the outputs: what pandas reads back is the frame, dtypes included."""

import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from riskmodel.io.outputs import write_csv

floats = st.floats(allow_nan=True, allow_infinity=True, width=64)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(floats, st.integers(-10**12, 10**12), st.booleans(),
                          st.sampled_from(["A1", "BTC-PERP", "x y", "ñ"])), min_size=1,
                max_size=30))
def test_read_back_equals_the_frame(rows):
    frame = pd.DataFrame(rows, columns=["value", "count", "flag", "id"])
    frame["whole"] = np.round(frame["count"].to_numpy(np.float64))  # integral floats
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "t.csv"
        write_csv(frame, path)
        back = pd.read_csv(path, keep_default_na=True)
    pd.testing.assert_frame_equal(back, frame, check_exact=True, check_dtype=False)
    assert back["whole"].dtype == np.float64 and back["value"].dtype == np.float64


def test_same_values_as_pandas_and_falls_back_when_quoting_is_needed(tmp_path):
    frame = pd.DataFrame({"id": ["a,b", "c"], "x": [1.0, 2.5]})
    write_csv(frame, tmp_path / "q.csv")
    frame.to_csv(tmp_path / "p.csv", index=False)
    assert (tmp_path / "q.csv").read_bytes() == (tmp_path / "p.csv").read_bytes()
    plain = pd.DataFrame({"id": ["a", "b"], "x": [1e-5, 1e16], "y": [np.nan, -0.0]})
    write_csv(plain, tmp_path / "r.csv")
    plain.to_csv(tmp_path / "s.csv", index=False)
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "r.csv"),
                                  pd.read_csv(tmp_path / "s.csv"), check_exact=True)
    assert (tmp_path / "r.csv").read_text().splitlines()[0] == "id,x,y"
