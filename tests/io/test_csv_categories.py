"""CSV read as categories (pyarrow, for position files) gives what pandas' reader gives: the same
text per cell, the same numbers, the same line numbers in errors; files where the two readers
could differ are read by pandas."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from riskmodel.errors import InputDataError
from riskmodel.io.tables import read_table

MESSY = (
    "\ufeffaccount_id, instrument_id ,quantity,netting_set,note\r\n"
    "A1,BTC-PERP,1.5,,\r\n"
    "\r\n"
    "  A2 ,ETH-PERP , -2,iso,\r\n"
    '"A,3",BTC-PERP,1e3,   ,\r\n'
    "A1,BTC-PERP,0.25,default,\r\n"
    '"A 4","ETH-PERP","7",x,\r\n'
)


def _both(tmp_path, text: str):
    path = tmp_path / "positions.csv"
    path.write_bytes(text.encode("utf-8"))
    return read_table(path, "positions"), read_table(path, "positions", text_as_categories=True)


def test_messy_csv_reads_the_same_as_with_pandas(tmp_path):
    plain, coded = _both(tmp_path, MESSY)
    assert all(isinstance(coded.frame[c].dtype, pd.CategoricalDtype) for c in coded.frame)
    assert list(coded.frame.columns) == list(plain.frame.columns)
    for column in plain.frame.columns:
        np.testing.assert_array_equal(coded.text(column, allow_missing=True),
                                      plain.text(column, allow_missing=True))
    np.testing.assert_array_equal(coded.numbers("quantity"), [1.5, -2.0, 1000.0, 0.25, 7.0])
    np.testing.assert_array_equal(coded.numbers("quantity"), plain.numbers("quantity"))
    assert [coded.where(i) for i in range(5)] == [plain.where(i) for i in range(5)]
    # a cell of spaces is missing for both, and the errors name the same line and value
    for table in (plain, coded):
        with pytest.raises(InputDataError, match=r"line 2, column 'netting_set': empty value "
                                                 r"\(value ''\)"):
            table.text("netting_set")
    assert pd.isna(coded.frame["netting_set"].iat[2])  # "A,3"'s cell of three spaces
    assert plain.frame["netting_set"].iat[2] is None


HEADER = "account_id,instrument_id,quantity,netting_set\n"


@pytest.mark.parametrize("text", [
    'account_id,instrument_id,quantity\nA1, "BTC-PERP",1\n',  # a quote after spaces
    "account_id,instrument_id,quantity\nA1,BTC-PERP,1,extra\n",  # a row wider than the header
    "account_id,instrument_id,quantity\nA1,BTC-PERP\n",  # a short row
    "account_id,account_id,quantity\nA1,B,1\n",  # a repeated name
    "account_id,instrument_id,quantity, quantity\nA1,X,1,2\n",  # repeated once stripped
    'account_id, "instrument_id",quantity\nA1,X,1\n',  # a header name quoted after a space
    HEADER + 'A,X,1,"iso\nB,X,2,iso\nC,Y,3,iso\n',  # a quote never closed
    HEADER + 'A,X,1,"abc',  # ... at the end of the file
    HEADER + '"multi\nline",X,1,iso\n',  # a cell over two lines
    HEADER + '"a""b",X,1,iso\n',  # a doubled quote
    HEADER + 'ab"c,X,1,iso\n',  # a quote inside a field
    (HEADER + "A1,X,1,iso\n").encode() + b"A\xe9,X,1,iso\n",  # bad UTF-8 in a cell
    b"account_id,instrument_id,quantity,n\xe9\nA,X,1,2\n",  # ... in the header
])
def test_files_the_readers_could_disagree_on_are_read_by_pandas(tmp_path, text):
    path = tmp_path / "positions.csv"
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    try:
        plain = read_table(path, "positions")
    except InputDataError as exc:
        with pytest.raises(InputDataError) as got:
            read_table(path, "positions", text_as_categories=True)
        assert str(got.value) == str(exc)
        return
    coded = read_table(path, "positions", text_as_categories=True)
    pd.testing.assert_frame_equal(coded.frame, plain.frame)


@pytest.mark.parametrize("cell", ['"multi\nline",X,1,iso\n', 'A,X,1,"a\nb,c,d,e"\n'])
@pytest.mark.parametrize("pad", range(38, 56))
def test_a_cell_over_two_lines_at_a_read_block_boundary(tmp_path, cell, pad):
    # pyarrow reads 1 MiB blocks and splits them at line breaks, inside quotes too: shifted by
    # the padding, the block boundary falls on each byte around the cell's line break; the file
    # must still read as pandas reads it
    row = "ACCOUNT0001,X,1,iso\n"
    rows = row * (((1 << 20) - len(HEADER)) // len(row) - 3)
    path = tmp_path / "positions.csv"
    path.write_text(HEADER + rows + "P" * (pad + 1) + ",X,1,iso\n" + cell + row * 10)
    plain = read_table(path, "positions")
    coded = read_table(path, "positions", text_as_categories=True)
    for column in plain.frame.columns:
        np.testing.assert_array_equal(coded.text(column), plain.text(column))


def test_bad_quantity_names_its_line(tmp_path):
    text = "account_id,instrument_id,quantity\nA1,X,1\n\nA2,X,ten\nA3,X,inf\n"
    _, coded = _both(tmp_path, text)
    with pytest.raises(InputDataError, match=r"line 4, column 'quantity': not a quantity "
                                             r"\(value 'ten'\)"):
        coded.numbers("quantity", what="quantity")


@pytest.mark.parametrize("content", [b"", b"not parquet at all", b"PAR1\x00\x00PAR1"])
def test_unreadable_parquet_reports_pyarrows_own_reading_error(tmp_path, content):
    path = tmp_path / "positions.parquet"
    path.write_bytes(content)
    with pytest.raises((pa.ArrowInvalid, OSError)) as arrow:
        pq.read_table(path)
    want = f"{path}: cannot read positions Parquet: {arrow.value}"
    for categories in (False, True):
        with pytest.raises(InputDataError) as got:
            read_table(path, "positions", text_as_categories=categories)
        assert str(got.value) == want
