"""The input formats that must be accepted, and how outputs land under ``--out``.

CSV and Parquet, long and wide prices, intraday stamps with a ``Z`` or an offset: the same data
must give the same margins. The reference values (netting sets, positions, last prices, a
one-position HS VaR) are computed here from the data the test wrote, not read from the engine.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from eod_testdata import (
    ACCOUNTS,
    KEEP_TEXT,
    OLD_MARGINS,
    POSITIONS,
    copy_dataset,
    date_text,
    gbm_prices,
    make_dataset,
    prefill_out,
    staging_leftovers,
    to_long,
    write_csv,
    write_parquet,
)

# ``state`` is the what-if state folder (riskmodel.engine.store)
OUTPUTS = {"margins.parquet", "margins.csv", "attribution.parquet", "factors.csv",
           "manifest.json", "state", "liquidation_orders.parquet", "report.html"}


@pytest.fixture(scope="module")
def baseline(tmp_path_factory, dataset_csv):
    """Outputs of the valid CSV dataset (wide prices), run once for the module."""
    import io
    from contextlib import redirect_stderr

    from riskmodel.cli import main

    out = tmp_path_factory.mktemp("baseline") / "out"
    err = io.StringIO()
    with redirect_stderr(err):
        code = main(dataset_csv.argv(out))
    assert code == 0, err.getvalue()
    return out


def _frames_equal(a, b, name):
    left = pd.read_parquet(a / name) if name.endswith(".parquet") else pd.read_csv(a / name)
    right = pd.read_parquet(b / name) if name.endswith(".parquet") else pd.read_csv(b / name)
    pd.testing.assert_frame_equal(left, right, check_exact=True)


def test_baseline_outputs_match_the_input(baseline):
    assert {p.name for p in baseline.iterdir()} == OUTPUTS
    margins = pd.read_parquet(baseline / "margins.parquet")
    # one row per (account, netting set) holding positions: 10 cross-margined sets + A10's 'iso'
    expected_sets = {(a, s or "default") for a, s in
                     zip(POSITIONS["account_id"], POSITIONS["netting_set"])}
    assert set(zip(margins["account_id"], margins["netting_set"])) == expected_sets
    counts = POSITIONS.assign(netting_set=POSITIONS["netting_set"].replace("", "default"))
    counts = counts.groupby(["account_id", "netting_set"]).size()
    got = margins.set_index(["account_id", "netting_set"])["n_positions"]
    assert got.sort_index().tolist() == counts.sort_index().tolist()
    # equity = collateral of the set
    collateral = ACCOUNTS.assign(netting_set=ACCOUNTS["netting_set"].replace("", "default"))
    collateral = collateral.set_index(["account_id", "netting_set"])["collateral"]
    equity = margins.set_index(["account_id", "netting_set"])["equity"]
    np.testing.assert_allclose(equity.loc[collateral.index].to_numpy(), collateral.to_numpy())
    # the last prices reached the factors table unchanged
    factors = pd.read_csv(baseline / "factors.csv").set_index("asset")
    last = gbm_prices().iloc[-1]
    np.testing.assert_allclose(factors.loc[list(last.index), "price"], last.to_numpy(),
                               rtol=1e-15)
    manifest = json.loads((baseline / "manifest.json").read_text())
    assert manifest["market_date"].startswith("2022-07-15")


def test_single_position_var_matches_an_independent_quantile(baseline):
    # A06 holds 7 AAA-SPOT only. HS, 1-day horizon, lookback 300: its losses are
    # -7 * P0 * expm1(r) over the last 300 daily log returns; VaR(0.99) is the smallest loss l
    # with P(L <= l) >= 0.99 (numpy's inverted_cdf quantile).
    prices = gbm_prices()["AAA"].to_numpy()
    r = np.diff(np.log(prices))[-300:]
    loss = -7.0 * prices[-1] * np.expm1(r)
    var = np.quantile(loss, 0.99, method="inverted_cdf")
    margins = pd.read_parquet(baseline / "margins.parquet").set_index("account_id")
    assert margins.loc["A06", "var"] == pytest.approx(var, rel=1e-9)


def test_parquet_inputs_give_identical_margins(baseline, dataset_parquet, run_eod, tmp_path):
    out = tmp_path / "out"
    code, err = run_eod(dataset_parquet.argv(out))
    assert code == 0, err
    for name in ("margins.parquet", "margins.csv", "attribution.parquet", "factors.csv"):
        _frames_equal(baseline, out, name)
    assert (baseline / "margins.csv").read_bytes() == (out / "margins.csv").read_bytes()


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_long_and_wide_prices_give_identical_outputs(fmt, baseline, tmp_path, run_eod):
    long_ds = make_dataset(tmp_path / "long", fmt, "long")
    out = tmp_path / "out"
    code, err = run_eod(long_ds.argv(out))
    assert code == 0, err
    for name in ("margins.parquet", "attribution.parquet", "factors.csv"):
        _frames_equal(baseline, out, name)
    for name in ("margins.csv", "factors.csv"):
        assert (baseline / name).read_bytes() == (out / name).read_bytes()


def test_long_prices_in_any_row_and_column_order(baseline, dataset_csv, tmp_path, run_eod):
    long = date_text(to_long(gbm_prices()))
    long = long.sample(frac=1.0, random_state=7).reset_index(drop=True)
    prices = write_csv(long[["asset", "price", "date"]], tmp_path / "prices.csv")
    out = tmp_path / "out"
    code, err = run_eod(dataset_csv.argv(out, prices=prices))
    assert code == 0, err
    _frames_equal(baseline, out, "margins.parquet")


def test_existing_out_folder_keeps_other_files(baseline, dataset_csv, tmp_path, run_eod):
    out = tmp_path / "out"
    prefill_out(out)
    (out / "sub").mkdir()
    (out / "sub" / "notes.txt").write_text("nested\n")
    code, err = run_eod(dataset_csv.argv(out))
    assert code == 0, err
    assert {p.name for p in out.iterdir()} == OUTPUTS | {"keep.txt", "sub"}
    assert (out / "keep.txt").read_text() == KEEP_TEXT
    assert (out / "sub" / "notes.txt").read_text() == "nested\n"
    # the old margins.csv is replaced by this run's
    assert (out / "margins.csv").read_text() != OLD_MARGINS
    assert (out / "margins.csv").read_bytes() == (baseline / "margins.csv").read_bytes()
    assert not staging_leftovers(out)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_out_folder_is_created_with_parents(dataset_csv, tmp_path, run_eod):
    out = tmp_path / "a" / "b" / "out"
    code, err = run_eod(dataset_csv.argv(out))
    assert code == 0, err
    assert {p.name for p in out.iterdir()} == OUTPUTS
    assert not staging_leftovers(out)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a"]


@pytest.mark.parametrize(
    "stamp",
    [
        "%Y-%m-%dT16:00:00Z",
        "%Y-%m-%dT17:00:00+01:00",
        "%Y-%m-%dT11:00:00-05:00",
        "%Y-%m-%d 16:00:00.000+00:00",
    ],
)
def test_intraday_timestamps_with_zone_are_accepted(stamp, baseline, dataset_csv, tmp_path,
                                                    run_eod):
    # every stamp below is 16:00 UTC on the business day: the same calendar, the same margins
    wide = gbm_prices().reset_index()
    wide["date"] = [d.strftime(stamp) for d in wide["date"]]
    prices = write_csv(wide, tmp_path / "prices.csv")
    out = tmp_path / "out"
    code, err = run_eod(dataset_csv.argv(out, prices=prices))
    assert code == 0, err
    _frames_equal(baseline, out, "margins.parquet")
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["market_date"] == "2022-07-15T16:00:00"


def test_intraday_timestamps_in_parquet(baseline, dataset_parquet, tmp_path, run_eod):
    wide = gbm_prices().reset_index()
    wide["date"] = (wide["date"] + pd.Timedelta(hours=16)).dt.tz_localize("UTC")
    prices = tmp_path / "prices.parquet"
    wide.to_parquet(prices, index=False)
    out = tmp_path / "out"
    code, err = run_eod(dataset_parquet.argv(out, prices=prices))
    assert code == 0, err
    _frames_equal(baseline, out, "margins.parquet")


@pytest.mark.parametrize(("as_of", "market_date"), [
    ("2022-07-15", "2022-07-15T16:00:00"),  # a date means the whole day, stamps included
    ("2022-07-14", "2022-07-14T16:00:00"),
    ("2022-07-15T15:59:59Z", "2022-07-14T16:00:00"),
    ("2022-07-15T18:00:00+02:00", "2022-07-15T16:00:00"),
])
def test_as_of_against_intraday_stamps(as_of, market_date, dataset_csv, tmp_path, run_eod):
    wide = gbm_prices().reset_index()
    wide["date"] = [d.strftime("%Y-%m-%dT16:00:00Z") for d in wide["date"]]
    prices = write_csv(wide, tmp_path / "prices.csv")
    out = tmp_path / "out"
    code, err = run_eod(dataset_csv.argv(out, "--as-of", as_of, prices=prices))
    assert code == 0, err
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["market_date"] == market_date


def test_as_of_between_dates_takes_the_previous_date(dataset_csv, tmp_path, run_eod):
    out = tmp_path / "out"
    code, err = run_eod(dataset_csv.argv(out, "--as-of", "2022-07-10"))  # a Sunday
    assert code == 0, err
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["market_date"] == "2022-07-08T00:00:00"
    factors = pd.read_csv(out / "factors.csv").set_index("asset")
    expected = gbm_prices().loc["2022-07-08"]
    np.testing.assert_allclose(factors.loc[list(expected.index), "price"], expected.to_numpy(),
                               rtol=1e-15)


def test_missing_prices_are_gaps_not_errors(baseline, dataset_csv, tmp_path, run_eod):
    # an empty cell (CSV) is "no price that day"; the previous price is carried over
    wide = date_text(gbm_prices().reset_index()).astype({"BBB": object})
    wide.loc[10, "BBB"] = None
    prices = write_csv(wide, tmp_path / "prices.csv")
    out = tmp_path / "out"
    code, err = run_eod(dataset_csv.argv(out, prices=prices))
    assert code == 0, err
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["calendar"]["carried_prices"]["BBB"] == 1


def test_csv_with_bom_crlf_and_padded_cells(baseline, dataset_csv, tmp_path, run_eod):
    ds = copy_dataset(dataset_csv, tmp_path / "in")
    text = ds.positions.read_text().replace(",", ", ")
    ds.positions.write_bytes(("\ufeff" + text.replace("\n", "\r\n")).encode())
    out = tmp_path / "out"
    code, err = run_eod(ds.argv(out))
    assert code == 0, err
    _frames_equal(baseline, out, "margins.parquet")


def test_parquet_null_netting_set_means_default(baseline, dataset_parquet, tmp_path, run_eod):
    positions = POSITIONS.astype(object)
    positions.loc[positions["netting_set"] == "", "netting_set"] = None
    path = write_parquet(positions, tmp_path / "positions.parquet")
    out = tmp_path / "out"
    code, err = run_eod(dataset_parquet.argv(out, positions=path))
    assert code == 0, err
    _frames_equal(baseline, out, "margins.parquet")


def test_parquet_written_with_a_date_index_is_read(tmp_path):
    """pandas' df.to_parquet() keeps a DatetimeIndex named "date" as a column: accept it, and
    ignore an anonymous RangeIndex column in the other files."""
    from riskmodel.io.prices import load_prices

    dates = pd.bdate_range("2021-01-04", periods=5, name="date")
    prices = pd.DataFrame({"AAA": [1.0, 2.0, 3.0, 4.0, 5.0]}, index=dates)
    path = tmp_path / "p.parquet"
    prices.to_parquet(path)
    loaded = load_prices(path, lambda a: "log")
    assert loaded.assets == ["AAA"]
    assert list(loaded.frame.index) == list(dates)
    other = tmp_path / "q.parquet"
    prices.reset_index(drop=True).iloc[1:].to_parquet(other)  # a non-default RangeIndex
    from riskmodel.io.tables import read_table

    assert list(read_table(other, "x").frame.columns) == ["AAA"]


def test_integer_ids_stored_as_floats_in_parquet_keep_their_text(tmp_path):
    """A Parquet id column with nulls is stored as float: 1001.0 must still match '1001'."""
    from riskmodel.io.tables import read_table

    path = tmp_path / "ids.parquet"
    pd.DataFrame({"account_id": [1001, None, 1002.0], "x": [1, 2, 3]}).to_parquet(path)
    text = read_table(path, "accounts").text("account_id", allow_missing=True)
    assert list(text) == ["1001", "", "1002"]
