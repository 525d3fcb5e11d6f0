"""Every class of bad input data fails the eod run with exit 3 and a message that names the file,
the line/row or date, the column and the value, and leaves nothing under ``--out``.

Each case goes through ``expect_failure`` (see ``eod_testdata.py``), which runs it twice: into an
``--out`` that does not exist yet and into one that already holds files that must survive. The
expected locations and values are computed here from how the test wrote the file (CSV: header
is line 1, so data row ``k`` is line ``k + 2``; Parquet: first data row is row 1).
"""

from __future__ import annotations

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from eod_testdata import (
    ACCOUNTS,
    INSTRUMENTS,
    POSITIONS,
    csv_with_cell,
    date_text,
    gbm_prices,
    to_long,
    write_csv,
    write_parquet,
)

INPUT = 3  # exit code for invalid input data

DATES = pd.bdate_range("2021-01-04", periods=400)  # the calendar gbm_prices() uses


def _iso(day: pd.Timestamp) -> str:
    return day.strftime("%Y-%m-%dT%H:%M:%S")


# --- missing columns --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "dropped"),
    [
        ("prices", "date"),
        ("instruments", "kind"),
        ("instruments", "underlying"),
        ("positions", "quantity"),
        ("positions", "account_id"),
        ("accounts", "collateral"),
        ("accounts", "account_id"),
    ],
)
def test_missing_column(name, dropped, dataset_csv, tmp_path, expect_failure):
    frame = pd.read_csv(getattr(dataset_csv, name), dtype=str, keep_default_na=False)
    bad = tmp_path / f"{name}.csv"
    frame.drop(columns=dropped).to_csv(bad, index=False)
    expect_failure(
        lambda out: dataset_csv.argv(out, **{name: bad}),
        INPUT, str(bad), "missing column", repr(dropped),
    )


@pytest.mark.parametrize("dropped", ["price", "asset"])
def test_missing_column_long_prices(dropped, tmp_path, dataset_csv, expect_failure):
    # a long file without its 'price' (or 'asset') column is reported as such, not read as wide
    bad = write_csv(date_text(to_long(gbm_prices())).drop(columns=dropped), tmp_path / "p.csv")
    expect_failure(lambda out: dataset_csv.argv(out, prices=bad),
                   INPUT, str(bad), "missing column", repr(dropped))


def test_extra_column_in_long_prices(tmp_path, dataset_csv, expect_failure):
    # long means exactly date, asset, price: an extra column is named, not read as wide
    long = date_text(to_long(gbm_prices())).assign(source="feed")
    bad = write_csv(long, tmp_path / "prices.csv")
    expect_failure(lambda out: dataset_csv.argv(out, prices=bad),
                   INPUT, str(bad), "unexpected column", "'source'")


def test_missing_column_parquet(tmp_path, dataset_parquet, expect_failure):
    bad = write_parquet(POSITIONS.drop(columns="quantity"), tmp_path / "positions.parquet")
    expect_failure(lambda out: dataset_parquet.argv(out, positions=bad),
                   INPUT, str(bad), "missing column", "'quantity'")


def test_prices_with_unnamed_date_index_in_parquet(tmp_path, dataset_parquet, expect_failure):
    # an index named "date" is read as the date column (test_io_formats); an unnamed one is
    # pandas' anonymous index, which carries no name we could trust
    bad = tmp_path / "prices.parquet"
    frame = gbm_prices()
    frame.index.name = None
    frame.to_parquet(bad)
    expect_failure(lambda out: dataset_parquet.argv(out, prices=bad),
                   INPUT, str(bad), "missing column", "'date'")


# --- dates ------------------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["2021-13-01", "2021-02-30", "not a date", "07/01/2021"])
def test_unparsable_date(value, tmp_path, dataset_csv, expect_failure):
    bad = tmp_path / "prices.csv"
    line = csv_with_cell(dataset_csv.prices, bad, 5, "date", value)
    expect_failure(lambda out: dataset_csv.argv(out, prices=bad),
                   INPUT, f"{bad} line {line}", "'date'", "unparsable date", repr(value))


def test_empty_date_cell(tmp_path, dataset_csv, expect_failure):
    bad = tmp_path / "prices.csv"
    line = csv_with_cell(dataset_csv.prices, bad, 9, "date", "")
    expect_failure(lambda out: dataset_csv.argv(out, prices=bad),
                   INPUT, f"{bad} line {line}", "'date'", "empty value")


def test_unparsable_date_parquet_text_column(tmp_path, dataset_parquet, expect_failure):
    frame = date_text(gbm_prices().reset_index())
    frame.loc[12, "date"] = "2021-01-32"
    bad = write_parquet(frame, tmp_path / "prices.parquet")
    expect_failure(lambda out: dataset_parquet.argv(out, prices=bad),
                   INPUT, f"{bad} row 13", "'date'", "'2021-01-32'")


def test_null_date_parquet(tmp_path, dataset_parquet, expect_failure):
    frame = gbm_prices().reset_index()
    stamps = [ts.to_pydatetime() for ts in frame["date"]]
    stamps[7] = None
    table = pa.table({"date": pa.array(stamps, type=pa.timestamp("us")),
                      "AAA": frame["AAA"].to_numpy(), "BBB": frame["BBB"].to_numpy()})
    bad = tmp_path / "prices.parquet"
    pq.write_table(table, bad)
    expect_failure(lambda out: dataset_parquet.argv(out, prices=bad),
                   INPUT, f"{bad} row 8", "'date'", "missing date")


def test_duplicate_date_wide(tmp_path, dataset_csv, expect_failure):
    frame = date_text(gbm_prices().reset_index())
    frame = pd.concat([frame.iloc[:21], frame.iloc[[20]], frame.iloc[21:]], ignore_index=True)
    bad = write_csv(frame, tmp_path / "prices.csv")
    # rows 20 and 21 carry the same date: lines 22 and 23
    expect_failure(lambda out: dataset_csv.argv(out, prices=bad),
                   INPUT, f"{bad} line 23", f"{bad} line 22", "'date'", "duplicate date",
                   _iso(DATES[20]))


def test_duplicate_instant_with_different_offsets(tmp_path, dataset_csv, expect_failure):
    frame = gbm_prices().reset_index()
    text = [d.strftime("%Y-%m-%dT16:00:00Z") for d in frame["date"]]
    text[31] = DATES[30].strftime("%Y-%m-%dT17:00:00+01:00")  # the same instant as row 30
    frame["date"] = text
    bad = write_csv(frame, tmp_path / "prices.csv")
    expect_failure(lambda out: dataset_csv.argv(out, prices=bad),
                   INPUT, f"{bad} line 33", f"{bad} line 32", "duplicate date",
                   DATES[30].strftime("%Y-%m-%dT16:00:00"))


def test_duplicate_date_long(tmp_path, dataset_csv, expect_failure):
    long = date_text(to_long(gbm_prices()))
    frame = pd.concat([long, long.iloc[[405]]], ignore_index=True)  # row 405: BBB, day 5
    bad = write_csv(frame, tmp_path / "prices.csv")
    expect_failure(lambda out: dataset_csv.argv(out, prices=bad),
                   INPUT, f"{bad} line 802", f"{bad} line 407", "'date'", "duplicate date",
                   _iso(DATES[5]), "'BBB'")


def test_duplicate_date_long_parquet(tmp_path, dataset_parquet, expect_failure):
    long = to_long(gbm_prices())
    frame = pd.concat([long.iloc[:10], long.iloc[[3]], long.iloc[10:]], ignore_index=True)
    frame.loc[10, "price"] = 999.0  # a conflicting second price for AAA on day 3
    bad = write_parquet(frame, tmp_path / "prices.parquet")
    expect_failure(lambda out: dataset_parquet.argv(out, prices=bad),
                   INPUT, f"{bad} row 11", f"{bad} row 4", "duplicate date", _iso(DATES[3]),
                   "'AAA'")


def test_duplicate_asset_column_wide(tmp_path, dataset_csv, expect_failure):
    # pandas would silently rename the second column to 'AAA.1'
    lines = dataset_csv.prices.read_text().splitlines()
    lines[0] = "date,AAA,AAA"
    bad = tmp_path / "prices.csv"
    bad.write_text("\n".join(lines) + "\n")
    expect_failure(lambda out: dataset_csv.argv(out, prices=bad),
                   INPUT, str(bad), "duplicate column", "'AAA'")


# --- prices -----------------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["nan", "NaN", "inf", "-inf", "Infinity"])
def test_non_finite_price_csv(value, tmp_path, dataset_csv, expect_failure):
    bad = tmp_path / "prices.csv"
    line = csv_with_cell(dataset_csv.prices, bad, 17, "BBB", value)
    expect_failure(lambda out: dataset_csv.argv(out, prices=bad),
                   INPUT, f"{bad} line {line}", "'BBB'", "non-finite price", repr(value))


def test_non_numeric_price_csv(tmp_path, dataset_csv, expect_failure):
    bad = tmp_path / "prices.csv"
    line = csv_with_cell(dataset_csv.prices, bad, 3, "AAA", "12,5")
    expect_failure(lambda out: dataset_csv.argv(out, prices=bad),
                   INPUT, f"{bad} line {line}", "'AAA'", "not a price", "'12,5'")


def test_non_finite_price_long_csv(tmp_path, dataset_csv, expect_failure):
    frame = date_text(to_long(gbm_prices())).astype(object)
    frame.loc[410, "price"] = "inf"
    bad = write_csv(frame, tmp_path / "prices.csv")
    expect_failure(lambda out: dataset_csv.argv(out, prices=bad),
                   INPUT, f"{bad} line 412", "'price'", "non-finite price", "'inf'")


def test_nan_value_in_parquet_is_an_error(tmp_path, dataset_parquet, expect_failure):
    frame = gbm_prices().reset_index().astype({"AAA": object})
    frame.loc[40, "AAA"] = float("nan")  # written as a NaN value, not as null
    bad = write_parquet(frame, tmp_path / "prices.parquet")
    assert pq.read_table(bad).column("AAA").null_count == 0
    expect_failure(lambda out: dataset_parquet.argv(out, prices=bad),
                   INPUT, f"{bad} row 41", "'AAA'", "non-finite price", "nan")


def test_null_in_parquet_is_a_missing_price(tmp_path, dataset_parquet, run_eod):
    frame = gbm_prices().reset_index().astype({"AAA": object})
    frame.loc[40, "AAA"] = None  # a null: no price that day, carried over
    ok = write_parquet(frame, tmp_path / "prices.parquet")
    assert pq.read_table(ok).column("AAA").null_count == 1
    code, err = run_eod(dataset_parquet.argv(tmp_path / "out", prices=ok))
    assert code == 0, err
    assert (tmp_path / "out" / "margins.parquet").is_file()


@pytest.mark.parametrize("value", ["-1.5", "0"])
def test_non_positive_price_with_log_returns(value, tmp_path, dataset_csv, expect_failure):
    bad = tmp_path / "prices.csv"
    csv_with_cell(dataset_csv.prices, bad, 60, "AAA", value)
    expect_failure(lambda out: dataset_csv.argv(out, prices=bad),
                   INPUT, str(bad), f"date {_iso(DATES[60])}", "'AAA'", "non-positive price",
                   f"(value {float(value)!r})", 'returns.assets.AAA = "absolute"')


def test_non_positive_price_parquet(tmp_path, dataset_parquet, expect_failure):
    frame = gbm_prices().reset_index()
    frame.loc[61, "BBB"] = -2.0
    bad = write_parquet(frame, tmp_path / "prices.parquet")
    expect_failure(lambda out: dataset_parquet.argv(out, prices=bad),
                   INPUT, str(bad), f"date {_iso(DATES[61])}", "'BBB'", "(value -2.0)")


def test_non_positive_price_accepted_with_absolute_returns(tmp_path, dataset_csv, run_eod):
    frame = gbm_prices()
    # A series that crosses zero (as some commodity futures did): shift AAA down in the middle.
    frame.iloc[100:150, 0] -= 160.0
    assert (frame["AAA"] <= 0).any()
    prices = write_csv(date_text(frame.reset_index()), tmp_path / "prices.csv")
    config = tmp_path / "run.toml"
    config.write_text('[returns.assets]\nAAA = "absolute"\n')
    code, err = run_eod(dataset_csv.argv(tmp_path / "out", "--config", str(config),
                                         prices=prices))
    assert code == 0, err
    factors = pd.read_csv(tmp_path / "out" / "factors.csv")
    assert factors.set_index("asset").loc["AAA", "price"] == pytest.approx(frame["AAA"].iloc[-1])
    # the same file without the setting is rejected
    code, err = run_eod(dataset_csv.argv(tmp_path / "out2", prices=prices))
    assert code == INPUT and "non-positive price" in err and "'AAA'" in err


# --- instruments ------------------------------------------------------------------------------


def _instruments(tmp_path, row, column, value, suffix="csv"):
    frame = INSTRUMENTS.astype(object)
    frame.loc[row, column] = value
    write = write_csv if suffix == "csv" else write_parquet
    return write(frame, tmp_path / f"instruments.{suffix}")


def test_unknown_instrument_kind(tmp_path, dataset_csv, expect_failure):
    bad = _instruments(tmp_path, 2, "kind", "swap")
    expect_failure(lambda out: dataset_csv.argv(out, instruments=bad),
                   INPUT, f"{bad} line 4", "'kind'", "unknown instrument kind", "'swap'")


OPTION = {"instrument_id": "AAA-C100", "kind": "option", "underlying": "AAA",
          "multiplier": 1.0, "strike": 100.0, "expiry": "2031-06-20T08:00:00Z",
          "option_type": "call", "implied_vol": 0.4}


def _with_option(tmp_path, drop=None, **changes):
    """The instruments plus one option (data row 5: CSV line 6)."""
    frame = pd.concat([INSTRUMENTS.astype(object), pd.DataFrame([{**OPTION, **changes}])],
                      ignore_index=True)
    if drop:
        frame = frame.drop(columns=drop)
    return write_csv(frame, tmp_path / "instruments.csv")


@pytest.mark.parametrize(("column", "value", "problem"), [
    ("option_type", "straddle", "must be call or put"),
    ("strike", -5.0, "strike must be > 0"),
    ("implied_vol", 0.0, "implied volatility must be > 0"),
    ("expiry", "next friday", "not an ISO 8601 timestamp"),
    ("settlement", "gold", "must be one of quote, coin"),
    ("rate", 5.0, "must be in [-1, 1]"),
])
def test_bad_option_field(column, value, problem, tmp_path, dataset_csv, expect_failure):
    bad = _with_option(tmp_path, **{column: value})
    expect_failure(lambda out: dataset_csv.argv(out, instruments=bad),
                   INPUT, f"{bad} line 6", repr(column), problem)


def test_option_without_expiry_column(tmp_path, dataset_csv, expect_failure):
    bad = _with_option(tmp_path, drop=["expiry"])
    expect_failure(lambda out: dataset_csv.argv(out, instruments=bad),
                   INPUT, str(bad), "missing column", "'expiry'")


def test_expired_option_held_is_an_input_error(tmp_path, dataset_csv, expect_failure):
    """The price file ends in 2022; an option that expired in 2021 cannot be margined."""
    bad = _with_option(tmp_path, expiry="2021-03-19T08:00:00Z")
    positions = pd.concat([POSITIONS, pd.DataFrame([{"account_id": "A01",
                                                     "instrument_id": "AAA-C100",
                                                     "quantity": -3.0, "netting_set": ""}])],
                          ignore_index=True)
    held = write_csv(positions, tmp_path / "positions.csv")
    expect_failure(lambda out: dataset_csv.argv(out, instruments=bad, positions=held),
                   INPUT, f"{bad} line 6", "'expiry'", "expired", "2021-03-19T08:00:00+00:00")


def test_underlying_without_prices(tmp_path, dataset_csv, expect_failure):
    bad = _instruments(tmp_path, 3, "underlying", "CCC")
    expect_failure(lambda out: dataset_csv.argv(out, instruments=bad),
                   INPUT, f"{bad} line 5", "'underlying'", "no prices", "'CCC'")


@pytest.mark.parametrize(("value", "problem", "shown"),
                         [("-10", "must be > 0", "-10.0"), ("0", "must be > 0", "0.0"),
                          ("ten", "not a multiplier", "'ten'"),
                          ("nan", "non-finite multiplier", "'nan'")])
def test_bad_multiplier(value, problem, shown, tmp_path, dataset_csv, expect_failure):
    bad = _instruments(tmp_path, 1, "multiplier", value)
    expect_failure(lambda out: dataset_csv.argv(out, instruments=bad),
                   INPUT, f"{bad} line 3", "'multiplier'", problem, f"(value {shown})")


def test_duplicate_instrument(tmp_path, dataset_csv, expect_failure):
    bad = _instruments(tmp_path, 3, "instrument_id", "AAA-SPOT")
    expect_failure(lambda out: dataset_csv.argv(out, instruments=bad),
                   INPUT, f"{bad} line 5", f"{bad} line 2", "'instrument_id'", "duplicate",
                   "'AAA-SPOT'")


# --- positions --------------------------------------------------------------------------------


def _positions(tmp_path, row, column, value, suffix="csv"):
    frame = POSITIONS.astype(object)
    frame.loc[row, column] = value
    write = write_csv if suffix == "csv" else write_parquet
    return write(frame, tmp_path / f"positions.{suffix}")


@pytest.mark.parametrize("value", ["ten", "1.0.0", "5 lots", "0x10"])
def test_non_numeric_quantity(value, tmp_path, dataset_csv, expect_failure):
    bad = _positions(tmp_path, 4, "quantity", value)
    expect_failure(lambda out: dataset_csv.argv(out, positions=bad),
                   INPUT, f"{bad} line 6", "'quantity'", "not a quantity", repr(value))


@pytest.mark.parametrize("value", ["nan", "inf", "-inf"])
def test_non_finite_quantity(value, tmp_path, dataset_csv, expect_failure):
    bad = _positions(tmp_path, 9, "quantity", value)
    expect_failure(lambda out: dataset_csv.argv(out, positions=bad),
                   INPUT, f"{bad} line 11", "'quantity'", "non-finite quantity", repr(value))


def test_empty_quantity(tmp_path, dataset_csv, expect_failure):
    bad = _positions(tmp_path, 9, "quantity", "")
    expect_failure(lambda out: dataset_csv.argv(out, positions=bad),
                   INPUT, f"{bad} line 11", "'quantity'", "empty value")


def test_non_finite_quantity_parquet(tmp_path, dataset_parquet, expect_failure):
    bad = _positions(tmp_path, 9, "quantity", float("inf"), suffix="parquet")
    expect_failure(lambda out: dataset_parquet.argv(out, positions=bad),
                   INPUT, f"{bad} row 10", "'quantity'", "non-finite quantity", "inf")


def test_null_quantity_parquet(tmp_path, dataset_parquet, expect_failure):
    bad = _positions(tmp_path, 2, "quantity", None, suffix="parquet")
    assert pq.read_table(bad).column("quantity").null_count == 1
    expect_failure(lambda out: dataset_parquet.argv(out, positions=bad),
                   INPUT, f"{bad} row 3", "'quantity'", "missing quantity")


def test_boolean_quantity_parquet(tmp_path, dataset_parquet, expect_failure):
    # a bool column is not a quantity, even though pandas counts bool as numeric
    frame = POSITIONS.assign(quantity=POSITIONS["quantity"] > 0)
    bad = tmp_path / "positions.parquet"
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), bad)
    assert pq.read_table(bad).schema.field("quantity").type == pa.bool_()
    expect_failure(lambda out: dataset_parquet.argv(out, positions=bad),
                   INPUT, f"{bad} row 1", "'quantity'", "not a quantity", "'True'")


def test_position_on_unknown_instrument(tmp_path, dataset_csv, expect_failure):
    bad = _positions(tmp_path, 7, "instrument_id", "ZZZ-PERP")
    expect_failure(lambda out: dataset_csv.argv(out, positions=bad),
                   INPUT, f"{bad} line 9", "'instrument_id'", "unknown instrument",
                   "'ZZZ-PERP'")


def test_position_on_unknown_instrument_parquet(tmp_path, dataset_parquet, expect_failure):
    bad = _positions(tmp_path, 12, "instrument_id", "CCC-SPOT", suffix="parquet")
    expect_failure(lambda out: dataset_parquet.argv(out, positions=bad),
                   INPUT, f"{bad} row 13", "'instrument_id'", "unknown instrument",
                   "'CCC-SPOT'")


def test_empty_account_id(tmp_path, dataset_csv, expect_failure):
    bad = _positions(tmp_path, 3, "account_id", "")
    expect_failure(lambda out: dataset_csv.argv(out, positions=bad),
                   INPUT, f"{bad} line 5", "'account_id'", "empty value")


def test_line_numbers_count_blank_lines(tmp_path, dataset_csv, expect_failure):
    # blank lines (skipped when reading) must not shift the line an error points at
    lines = POSITIONS.astype(object).to_csv(index=False).splitlines()
    assert lines[10].startswith("A07,BBB-SPOT,")  # data row 9
    fields = lines[10].split(",")
    fields[2] = "twelve"
    lines[10] = ",".join(fields)
    text = "\n".join(lines[:3] + ["", "   "] + lines[3:]) + "\n\n"
    bad = tmp_path / "positions.csv"
    bad.write_text(text)
    # two blank lines before it: the bad row is now line 13
    assert bad.read_text().split("\n")[12].startswith("A07,BBB-SPOT,twelve")
    expect_failure(lambda out: dataset_csv.argv(out, positions=bad),
                   INPUT, f"{bad} line 13,", "'quantity'", "'twelve'")


# --- accounts ---------------------------------------------------------------------------------


def _accounts(tmp_path, row, column, value, suffix="csv"):
    frame = ACCOUNTS.astype(object)
    frame.loc[row, column] = value
    write = write_csv if suffix == "csv" else write_parquet
    return write(frame, tmp_path / f"accounts.{suffix}")


def test_account_with_positions_but_no_collateral_row(tmp_path, dataset_csv, expect_failure):
    bad = write_csv(ACCOUNTS[ACCOUNTS["account_id"] != "A05"], tmp_path / "accounts.csv")
    # A05's first position is data row 6 of positions.csv: line 8
    expect_failure(lambda out: dataset_csv.argv(out, accounts=bad),
                   INPUT, f"{dataset_csv.positions} line 8", "'account_id'", "'A05'",
                   "no collateral row", str(bad))


@pytest.mark.parametrize("value", ["nan", "inf", "-inf"])
def test_non_finite_collateral(value, tmp_path, dataset_csv, expect_failure):
    bad = _accounts(tmp_path, 5, "collateral", value)
    expect_failure(lambda out: dataset_csv.argv(out, accounts=bad),
                   INPUT, f"{bad} line 7", "'collateral'", "non-finite collateral", repr(value))


@pytest.mark.parametrize("value", ["lots", "1,000", "$500"])
def test_non_numeric_collateral(value, tmp_path, dataset_csv, expect_failure):
    frame = ACCOUNTS.astype(object)
    frame.loc[5, "collateral"] = value
    bad = tmp_path / "accounts.csv"
    frame.to_csv(bad, index=False)  # pandas quotes "1,000"
    expect_failure(lambda out: dataset_csv.argv(out, accounts=bad),
                   INPUT, f"{bad} line 7", "'collateral'", "not a collateral", repr(value))


def test_non_finite_collateral_parquet(tmp_path, dataset_parquet, expect_failure):
    bad = _accounts(tmp_path, 0, "collateral", float("nan"), suffix="parquet")
    expect_failure(lambda out: dataset_parquet.argv(out, accounts=bad),
                   INPUT, f"{bad} row 1", "'collateral'", "non-finite collateral")


def test_duplicate_collateral_row(tmp_path, dataset_csv, expect_failure):
    bad = _accounts(tmp_path, 2, "account_id", "A02")
    expect_failure(lambda out: dataset_csv.argv(out, accounts=bad),
                   INPUT, f"{bad} line 4", f"{bad} line 3", "'account_id'", "duplicate",
                   "'A02'")


# --- as-of date -------------------------------------------------------------------------------


@pytest.mark.parametrize("as_of", ["2020-12-31", "2021-01-01T12:00:00", "2022-07-16",
                                   "2030-01-01"])
def test_as_of_outside_the_data(as_of, dataset_csv, expect_failure):
    # the data runs from 2021-01-04 to 2022-07-15 (400 business days)
    assert DATES[0] == pd.Timestamp("2021-01-04") and DATES[-1] == pd.Timestamp("2022-07-15")
    expect_failure(lambda out: dataset_csv.argv(out, "--as-of", as_of),
                   INPUT, str(dataset_csv.prices), "outside the data", repr(as_of))


@pytest.mark.parametrize("as_of", ["yesterday", "2021-02-30", "15/07/2022", "31/12/2024", ""])
def test_as_of_unparsable_is_a_usage_error(as_of, dataset_csv, expect_failure):
    # a bad flag is a usage error (exit 2), not bad input data (issue: it exited 3)
    expect_failure(lambda out: dataset_csv.argv(out, "--as-of", as_of),
                   2, "--as-of", "unparsable date", repr(as_of))


# --- files ------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["prices", "instruments", "positions", "accounts"])
def test_semicolon_separated_csv_names_its_separator(name, tmp_path, dataset_csv,
                                                      expect_failure):
    # a spreadsheet export with ';' separators: pandas said "Error tokenizing data"
    src = getattr(dataset_csv, name)
    bad = tmp_path / f"{name}.csv"
    frame = pd.read_csv(src, dtype=str, keep_default_na=False)
    frame.to_csv(bad, index=False, sep=";")
    expect_failure(lambda out: dataset_csv.argv(out, **{name: bad}),
                   INPUT, f"{bad} line 1", "semicolons", "';'", "comma-separated")


@pytest.mark.parametrize("name", ["prices", "instruments", "positions", "accounts"])
def test_missing_input_file(name, tmp_path, dataset_csv, expect_failure):
    missing = tmp_path / f"no-such-{name}.csv"
    expect_failure(lambda out: dataset_csv.argv(out, **{name: missing}),
                   INPUT, f"{name} file not found", str(missing))


def test_missing_input_file_parquet(tmp_path, dataset_parquet, expect_failure):
    missing = tmp_path / "no-such-prices.parquet"
    expect_failure(lambda out: dataset_parquet.argv(out, prices=missing),
                   INPUT, "prices file not found", str(missing))


def test_input_path_is_a_folder(tmp_path, dataset_csv, expect_failure):
    folder = tmp_path / "accounts.csv"
    folder.mkdir()
    expect_failure(lambda out: dataset_csv.argv(out, accounts=folder),
                   INPUT, "not a file", str(folder))


def test_unsupported_extension(tmp_path, dataset_csv, expect_failure):
    bad = tmp_path / "positions.xlsx"
    bad.write_bytes(dataset_csv.positions.read_bytes())
    expect_failure(lambda out: dataset_csv.argv(out, positions=bad),
                   INPUT, str(bad), "'.xlsx'")


def test_corrupt_parquet(tmp_path, dataset_parquet, expect_failure):
    bad = tmp_path / "accounts.parquet"
    bad.write_bytes(b"PAR1 this is not parquet")
    expect_failure(lambda out: dataset_parquet.argv(out, accounts=bad),
                   INPUT, str(bad), "cannot read accounts Parquet")


def test_empty_csv(tmp_path, dataset_csv, expect_failure):
    bad = tmp_path / "instruments.csv"
    bad.write_text("")
    expect_failure(lambda out: dataset_csv.argv(out, instruments=bad),
                   INPUT, str(bad), "empty")


@pytest.mark.parametrize(("text", "problem"),
                         [(None, "parameter set not found"), ("{not json", "not valid JSON"),
                          ('{"schema_version": 0}', "schema_version")])
def test_bad_parameter_set_file(text, problem, tmp_path, dataset_csv, expect_failure):
    params = tmp_path / "params.json"
    if text is not None:
        params.write_text(text)
    expect_failure(lambda out: dataset_csv.argv(out, "--params", str(params)),
                   INPUT, str(params), problem)


@pytest.mark.parametrize("value", [None, "   "])
def test_null_or_blank_account_id_parquet(value, tmp_path, dataset_parquet, expect_failure):
    # ids are read dictionary-encoded from Parquet: a null or a blank id still names its row
    bad = _positions(tmp_path, 5, "account_id", value, suffix="parquet")
    assert pa.types.is_string(pq.read_schema(bad).field("account_id").type)
    expect_failure(lambda out: dataset_parquet.argv(out, positions=bad),
                   INPUT, f"{bad} row 6", "'account_id'", "empty value")


@pytest.mark.parametrize("first, second, problem", [("inf", "ten", "non-finite quantity"),
                                                    ("ten", "inf", "not a quantity")])
def test_first_bad_quantity_in_file_order_is_reported(first, second, problem, tmp_path,
                                                      dataset_csv, expect_failure):
    # quantities are parsed once per distinct text: the error is still the first bad line
    frame = POSITIONS.astype(object)
    frame.loc[3, "quantity"] = first
    frame.loc[8, "quantity"] = second
    frame.loc[10, "quantity"] = first
    bad = write_csv(frame, tmp_path / "positions.csv")
    expect_failure(lambda out: dataset_csv.argv(out, positions=bad),
                   INPUT, f"{bad} line 5", "'quantity'", problem, repr(first))


def test_account_with_two_types(tmp_path, dataset_csv, expect_failure):
    # A10 has two sets (rows 10 and 11, lines 11 and 12): typed "otc", then "retail"
    frame = ACCOUNTS.assign(account_type=[""] * 9 + ["otc", "retail"])
    bad = write_csv(frame, tmp_path / "accounts.csv")
    expect_failure(lambda out: dataset_csv.argv(out, accounts=bad),
                   INPUT, f"{bad} line 12", "'account_type'", "'retail'",
                   "account 'A10' already has type 'otc'", f"{bad} line 11")
