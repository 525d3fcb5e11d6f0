"""``riskmodel waterfall``: its outputs, and bad inputs refused with a clear message and exit
code, nothing written and nothing already there lost."""

import json

import pandas as pd
import pytest
from waterfall_venues import CONFIG, HAND_ACCOUNTS, HAND_POSITIONS, write_moves, write_venue

from riskmodel.cli import main
from riskmodel.waterfall.allocation import ADL_COLUMNS
from riskmodel.waterfall.cover import COVER_COLUMNS
from riskmodel.waterfall.run import WATERFALL_COLUMNS


def _waterfall(run, out, *extra):
    return main(["waterfall", "--run", str(run), "--out", str(out), "--quiet", *extra])


def test_outputs(hand_run, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["waterfall", "--run", str(hand_run), "--out", str(out), "--cascade"]) == 0
    assert "cover-2 fund" in capsys.readouterr().out
    assert sorted(p.name for p in out.iterdir()) == [
        "adl.parquet", "cover.parquet", "manifest.json", "report.html", "waterfall.parquet"]
    waterfall = pd.read_parquet(out / "waterfall.parquet")
    assert list(waterfall.columns) == WATERFALL_COLUMNS
    assert list(pd.read_parquet(out / "adl.parquet").columns) == ADL_COLUMNS
    assert list(pd.read_parquet(out / "cover.parquet").columns) == COVER_COLUMNS
    # default scenarios: now, the map's moves (X alone; ALL is the same move) and the grid's
    assert waterfall["scenario"].iloc[0] == "now"
    assert set(waterfall["source"]) == {"now", "map"}
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["cascade"] is True
    assert manifest["scenarios"]["count"] == len(waterfall) == 41
    again = tmp_path / "again"
    assert _waterfall(hand_run, again, "--cascade") == 0
    assert pd.read_parquet(again / "waterfall.parquet").equals(waterfall)


def _config(tmp_path, text):
    path = tmp_path / "wf.toml"
    path.write_text(text)
    return path


@pytest.mark.parametrize("text, words", [
    ("[waterfall]\ninsurance_fund = -1.0\n", ["waterfall.insurance_fund", "-1.0"]),
    ("[waterfall]\nadl_ranking = \"age\"\n", ["waterfall.adl_ranking", "age"]),
    ("[waterfall]\ncover = 0\n", ["waterfall.cover", "0"]),
    ("[waterfall]\nsources = [\"map\", \"dice\"]\n", ["waterfall.sources", "dice"]),
    ("[waterfall]\nscreen_band = -1.0\n", ["waterfall.screen_band", "-1.0"]),
    ("[waterfall]\ndepth_file = \"/no/such/book.csv\"\n", ["waterfall.depth_file",
                                                          "/no/such/book.csv"]),
])
def test_bad_settings_exit_2(hand_run, tmp_path, capsys, text, words):
    out = tmp_path / "out"
    assert _waterfall(hand_run, out, "--config", str(_config(tmp_path, text))) == 2
    err = capsys.readouterr().err
    for w in words:
        assert w in err
    assert not out.exists()


def _keeps(out):
    out.mkdir()
    (out / "keep.txt").write_text("mine")


def _kept(out):
    return [p.name for p in out.iterdir()] == ["keep.txt"]


def test_inconsistent_order_book_exits_3(hand_run, tmp_path, capsys):
    book = tmp_path / "book.csv"
    pd.DataFrame({"underlying": ["X", "X"], "side": ["bid", "bid"],
                  "price_offset": [0.001, 0.002], "size": [1e5, 1e5]}).to_csv(book, index=False)
    out = tmp_path / "out"
    _keeps(out)
    config = _config(tmp_path, f"[waterfall]\ndepth_file = \"{book}\"\n")
    assert _waterfall(hand_run, out, "--config", str(config)) == 3
    err = capsys.readouterr().err
    assert str(book) in err and "no ask levels" in err
    assert _kept(out)


def test_unknown_asset_in_scenarios_exits_3(hand_run, tmp_path, capsys):
    moves = write_moves(tmp_path / "moves.csv", {"crash": {"X": -0.3, "GOLD": -0.1}})
    out = tmp_path / "out"
    _keeps(out)
    assert _waterfall(hand_run, out, "--scenarios", str(moves)) == 3
    err = capsys.readouterr().err
    assert "moves.csv line 3" in err and "'GOLD'" in err and "asset" in err
    assert _kept(out)
    assert _waterfall(hand_run, tmp_path / "o2", "--scenarios", str(tmp_path / "no.csv")) == 2


def test_not_a_run_exits_3(tmp_path, capsys):
    assert _waterfall(tmp_path, tmp_path / "out") == 3
    assert "state.json" in capsys.readouterr().err


def test_unknown_member_exits_3(tmp_path, capsys):
    members = {"A": "M1", "B": "M1", "C": "", "D": "M2", "G": "M3"}
    run = write_venue(tmp_path / "venue", HAND_POSITIONS, HAND_ACCOUNTS, members=members)
    out = tmp_path / "out"
    assert _waterfall(run, out) == 3
    err = capsys.readouterr().err
    assert "accounts.csv line 4" in err and "'member'" in err and "unknown member" in err
    assert not out.exists()


def test_an_account_of_two_members_exits_3(tmp_path, capsys):
    root = tmp_path / "venue"
    run = write_venue(root, HAND_POSITIONS, HAND_ACCOUNTS,
                      members={"A": "M1", "B": "M1", "C": "M2", "D": "M2", "G": "M3"})
    accounts = pd.read_csv(root / "accounts.csv")
    extra = pd.DataFrame({"account_id": ["A"], "collateral": [10.0], "member": ["M9"],
                          "netting_set": ["iso"]})
    pd.concat([accounts, extra], ignore_index=True).to_csv(root / "accounts.csv", index=False)
    assert main(["eod", "--prices", str(root / "prices.csv"), "--instruments",
                 str(root / "instruments.csv"), "--positions", str(root / "positions.csv"),
                 "--accounts", str(root / "accounts.csv"), "--config", str(root / "run.toml"),
                 "--out", str(run), "--quiet"]) == 0
    assert _waterfall(run, tmp_path / "out") == 3
    err = capsys.readouterr().err
    assert "already belongs to member 'M1'" in err and "'M9'" in err


def test_members_group_accounts(tmp_path):
    members = {"A": "M1", "B": "M1", "C": "M2", "D": "M2", "G": "M3"}
    run = write_venue(tmp_path / "venue", HAND_POSITIONS, HAND_ACCOUNTS, members=members,
                      config=CONFIG)
    out = tmp_path / "out"
    moves = write_moves(tmp_path / "moves.csv", {"crash": {"X": -0.5}})
    assert _waterfall(run, out, "--scenarios", str(moves)) == 0
    cover = pd.read_parquet(out / "cover.parquet").set_index("member")
    assert sorted(cover.index) == ["M1", "M2", "M3"]
    assert cover.loc["M1", "n_accounts"] == 2
    assert json.loads((out / "manifest.json").read_text())["members"]["source"].startswith(
        "member column of")
