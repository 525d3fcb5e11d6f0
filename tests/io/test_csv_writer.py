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


def test_text_columns_arrow_backed_or_object_with_missing_cells_read_back_as_pandas(tmp_path):
    rng = np.random.default_rng(8)
    n = 2_000
    floats = rng.standard_normal(n) * 10.0 ** rng.integers(-12, 20, n)
    floats[:8] = [1.0, -0.0, 0.0, np.nan, np.inf, -np.inf, 1e16, 123456789012.0]
    frame = pd.DataFrame({
        "account_id": pd.array([f"ACC{i:05d}" if i % 7 else None for i in range(n)],
                               dtype="str"),
        "margin": floats,
        "level": np.round(floats, 2),
        "status": np.array([None if i % 11 == 0 else "ok" for i in range(n)], dtype=object),
        "restored": rng.random(n) < 0.5,
        "n_positions": rng.integers(0, 50, n),
    })
    write_csv(frame, tmp_path / "ours.csv")
    frame.to_csv(tmp_path / "pandas.csv", index=False)
    ours = pd.read_csv(tmp_path / "ours.csv")
    pd.testing.assert_frame_equal(ours, pd.read_csv(tmp_path / "pandas.csv"), check_exact=True)
    # and the floats are the frame's own, bit for bit
    np.testing.assert_array_equal(ours["margin"].to_numpy(), floats)


def test_chunks_write_the_bytes_of_one_pass_and_a_late_quote_restarts_with_pandas(
        tmp_path, monkeypatch):
    from riskmodel.io import outputs

    rng = np.random.default_rng(9)
    frame = pd.DataFrame({"id": [f"S{i}" for i in range(10)], "x": rng.standard_normal(10),
                          "n": np.arange(10)})
    write_csv(frame, tmp_path / "whole.csv")
    monkeypatch.setattr(outputs, "CSV_CHUNK_ROWS", 3)  # chunks of 3, 3, 3 and 1 rows
    write_csv(frame, tmp_path / "chunks.csv")
    assert (tmp_path / "chunks.csv").read_bytes() == (tmp_path / "whole.csv").read_bytes()
    assert len((tmp_path / "chunks.csv").read_text().splitlines()) == 11
    write_csv(frame.iloc[:0], tmp_path / "empty.csv")
    assert (tmp_path / "empty.csv").read_text() == "id,x,n\n"
    late = frame.assign(id=[f"S{i}" if i < 8 else f"S,{i}" for i in range(10)])
    write_csv(late, tmp_path / "late.csv")  # the quote in the third chunk
    late.to_csv(tmp_path / "pandas.csv", index=False)
    assert (tmp_path / "late.csv").read_bytes() == (tmp_path / "pandas.csv").read_bytes()
