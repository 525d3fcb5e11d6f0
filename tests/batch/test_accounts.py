"""Which accounts eod margins: closed-out accounts need no collateral row, accounts holding only
collateral are margined (zero requirements), and with ``[run] on_account_error = "skip"`` one
bad account no longer stops the batch."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "io"))
from eod_testdata import ACCOUNTS, POSITIONS, make_dataset, run_cli  # noqa: E402

KEY = ["account_id", "netting_set"]


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return make_dataset(tmp_path_factory.mktemp("accounts"), "csv", "wide")


def _write(frame: pd.DataFrame, path: Path) -> Path:
    frame.to_csv(path, index=False)
    return path


def _margins(out: Path) -> pd.DataFrame:
    return pd.read_parquet(out / "margins.parquet").set_index(KEY)


def test_closed_out_account_needs_no_collateral_row(data, tmp_path, capsys):
    # A6 closed its SOL position: a zero row for an account with no collateral row exited 3
    positions = pd.concat([POSITIONS, pd.DataFrame({
        "account_id": ["A99", "A98", "A98"], "instrument_id": ["BBB-PERP", "AAA-FUT", "AAA-FUT"],
        "quantity": [0.0, 2.0, -2.0], "netting_set": ["", "", ""]})], ignore_index=True)
    out = tmp_path / "out"
    code, err = run_cli(data.argv(out, positions=_write(positions, tmp_path / "p.csv")), capsys)
    assert code == 0, err
    assert not {"A99", "A98"} & set(_margins(out).index.get_level_values(0))


def test_an_account_holding_only_collateral_is_margined(data, tmp_path, capsys):
    accounts = pd.concat([ACCOUNTS, pd.DataFrame({
        "account_id": ["CASH", "DEBT"], "collateral": [777.0, -5.0], "netting_set": ["", ""]})],
        ignore_index=True)
    out = tmp_path / "out"
    code, err = run_cli(data.argv(out, accounts=_write(accounts, tmp_path / "a.csv")), capsys)
    assert code == 0, err
    margins = _margins(out)
    cash = margins.loc[("CASH", "default")]
    assert cash["status"] == "ok" and cash["equity"] == 777.0 and cash["n_positions"] == 0
    for column in ("var", "es", "model_margin", "addons", "initial_margin", "maintenance_margin",
                   "flat_rate_margin", "call_amount", "gross_notional", "stress_loss"):
        assert cash[column] == 0.0, column
    assert cash["margin_level"] == np.inf and cash["liq_move_uniform"] == np.inf
    # a negative balance and nothing to close: below its (zero) maintenance margin, called
    debt = margins.loc[("DEBT", "default")]
    assert debt["status"] == "liquidation" and debt["call_amount"] == 5.0
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["counts"]["accounts"] == 12 and manifest["counts"]["netting_sets"] == 13
    csv = pd.read_csv(out / "margins.csv").set_index(KEY)
    assert csv.loc[("CASH", "default"), "margin_level"] == np.inf  # written as "inf"
    assert list(margins.index) == sorted(margins.index)  # in (account, netting set) order
    assert not pd.read_parquet(out / "attribution.parquet")["account_id"].isin(
        ["CASH", "DEBT"]).any()


def _bad_inputs(tmp_path: Path) -> dict[str, Path]:
    positions = POSITIONS.astype({"quantity": object}).copy()
    positions.loc[3, "instrument_id"] = "NO-SUCH"     # A03: unknown instrument
    positions.loc[6, "quantity"] = "abc"              # A05: not a number
    positions = pd.concat([positions, pd.DataFrame({  # A13: positions, no collateral row
        "account_id": ["A13"], "instrument_id": ["AAA-SPOT"], "quantity": [1.0],
        "netting_set": [""]})], ignore_index=True)
    accounts = pd.concat([ACCOUNTS, pd.DataFrame({    # A07: two collateral rows
        "account_id": ["A07"], "collateral": [1.0], "netting_set": [""]})], ignore_index=True)
    return {"positions": _write(positions, tmp_path / "bad-positions.csv"),
            "accounts": _write(accounts, tmp_path / "bad-accounts.csv")}


def test_a_bad_account_stops_the_batch_by_default(data, tmp_path, capsys):
    out = tmp_path / "out"
    code, err = run_cli(data.argv(out, **_bad_inputs(tmp_path)), capsys)
    assert code == 3 and "bad-positions.csv" in err and "line 8" in err and "abc" in err
    assert not out.exists()


def test_skip_leaves_the_bad_accounts_out_and_says_so(data, tmp_path, capsys):
    toml = tmp_path / "skip.toml"
    toml.write_text('[run]\non_account_error = "skip"\n')
    out = tmp_path / "out"
    code, err = run_cli(data.argv(out, "--config", str(toml), **_bad_inputs(tmp_path)), capsys)
    assert code == 5, err  # partial: completed without some accounts
    bad = {"A03", "A05", "A07", "A13"}
    manifest = json.loads((out / "manifest.json").read_text())
    skipped = {e["account_id"]: e["error"] for e in manifest["skipped_accounts"]}
    assert set(skipped) == bad
    assert "NO-SUCH" in skipped["A03"] and "line 5" in skipped["A03"]
    assert "'abc'" in skipped["A05"] and "duplicate collateral row" in skipped["A07"]
    assert "no collateral row" in skipped["A13"]
    for account in bad:
        assert f"account {account!r} left out" in err
    margins = _margins(out)
    assert not bad & set(margins.index.get_level_values(0))
    # the others exactly as a run on files without the bad accounts
    clean = tmp_path / "clean"
    positions = POSITIONS[~POSITIONS["account_id"].isin(bad)]
    accounts = ACCOUNTS[~ACCOUNTS["account_id"].isin(bad)]
    code, err = run_cli(data.argv(clean, positions=_write(positions, tmp_path / "p.csv"),
                                  accounts=_write(accounts, tmp_path / "a.csv")), capsys)
    assert code == 0, err
    pd.testing.assert_frame_equal(margins, _margins(clean))
