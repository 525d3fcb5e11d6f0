"""What-if margin from a finished run equals a full eod re-run with the trades appended."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from riskmodel.cli import main
from riskmodel.demo import write_demo_inputs
from riskmodel.engine.margin import WHOLE_BOOK_SETS
from riskmodel.errors import InputDataError
from riskmodel.margin.tables import set_horizons
from riskmodel.portfolio.netting import net_positions
from riskmodel.whatif import (
    WHATIF_COLUMNS,
    book_initial_margin,
    book_margins,
    load_run,
    what_if,
)

KEY = ["account_id", "netting_set"]


def _eod(files, positions, out, method):
    rc = main(["eod", "--prices", str(files.prices), "--instruments", str(files.instruments),
               "--positions", str(positions), "--accounts", str(files.accounts),
               "--config", str(files.config), "--method", method, "--out", str(out), "--quiet"])
    assert rc == 0
    return pd.read_parquet(out / "margins.parquet")


@pytest.fixture(scope="module", params=["hs", "fhs"])
def run(request, tmp_path_factory):
    tmp = tmp_path_factory.mktemp(f"whatif-{request.param}")
    files = write_demo_inputs(tmp / "inputs", n_accounts=30)
    accounts = pd.read_csv(files.accounts, dtype=str, keep_default_na=False)
    # an account with collateral but no position yet: trades may open its first set
    accounts.loc[len(accounts)] = {"account_id": "NEWACC", "collateral": "50000",
                                   "netting_set": ""}
    accounts.to_csv(files.accounts, index=False)
    _eod(files, files.positions, tmp / "run", request.param)
    return request.param, files, tmp


def _trades(attribution: pd.DataFrame) -> pd.DataFrame:
    """Trades that open, increase, reduce, flip and close positions, close a whole set, open a
    new netting set and a new account, and move a set to a longer horizon."""
    a = attribution.set_index(["account_id", "netting_set", "instrument_id"])["quantity"]
    q = lambda acc, inst, ns="default": float(a.loc[(acc, ns, inst)])  # noqa: E731
    rows = [
        ("ACC0000", "SPX", 10.0, ""),                                   # increase
        ("ACC0000", "SPX-PERP", -2.0 * q("ACC0000", "SPX-PERP"), ""),    # flip
        ("ACC0000", "NQ", -q("ACC0000", "NQ"), "default"),                # close one position
        ("ACC0007", "ES", -0.5 * q("ACC0007", "ES"), ""),                # reduce
        ("ACC0001", "CL", -q("ACC0001", "CL"), ""),                      # close the whole set
        ("ACC0004", "ES", 1.0, ""),                                      # open; 1d -> 2d
        ("ACC0012", "SPX-PERP", 5.0, "isolated-SPX"),                    # new set, no collateral
        ("ACC0026", "WTI-PERP", 3.0, "isolated-WTI"),                    # isolated set
        ("NEWACC", "NQ", 2.0, ""),                                       # new account
        ("NEWACC", "CL", -1.0, ""),
        ("NEWACC", "CL", 0.5, ""),                                       # trades net too
    ]
    return pd.DataFrame(rows, columns=["account_id", "instrument_id", "quantity", "netting_set"])


def test_whatif_equals_full_rerun(run):
    method, files, tmp = run
    state = load_run(tmp / "run")
    before = pd.read_parquet(tmp / "run" / "margins.parquet").set_index(KEY)
    trades = _trades(pd.read_parquet(tmp / "run" / "attribution.parquet"))
    result = what_if(state, trades)
    assert list(result.columns) == WHATIF_COLUMNS

    appended = pd.concat([pd.read_csv(files.positions, dtype=str, keep_default_na=False),
                          trades.astype(str)], ignore_index=True)
    appended.to_csv(tmp / "positions_after.csv", index=False)
    rerun = _eod(files, tmp / "positions_after.csv", tmp / f"rerun-{method}", method)
    rerun = rerun.set_index(KEY)

    touched = set(zip(trades["account_id"],
                      trades["netting_set"].replace("", "default")))
    assert set(zip(result["account_id"], result["netting_set"])) == touched
    assert list(zip(result["account_id"], result["netting_set"])) == sorted(touched)
    closed = result["status_after"] == "closed"
    assert list(result.loc[closed, "account_id"]) == ["ACC0001"]
    # eod keeps the closed set (its collateral row): zero requirements, no position
    assert rerun.loc[("ACC0001", "default"), ["n_positions", "initial_margin"]].tolist() == [0, 0]
    assert (result.loc[closed, ["model_margin_after", "initial_margin_after",
                                "maintenance_margin_after"]] == 0).all().all()
    live = result[~closed].set_index(KEY)
    expect = rerun.loc[live.index]
    for col in ("model_margin", "initial_margin", "maintenance_margin"):
        np.testing.assert_allclose(live[f"{col}_after"], expect[col], rtol=1e-9, atol=1e-9)
    assert (live["status_after"] == expect["status"]).all()
    for col in ("model_margin", "initial_margin"):
        old = before[col].reindex(result.set_index(KEY).index).fillna(0.0)
        np.testing.assert_array_equal(result[f"{col}_before"], old.to_numpy())
    # the horizon change and the new sets really happened
    assert live.loc[("ACC0004", "default"), "model_margin_after"] != \
        before.loc[("ACC0004", "default"), "model_margin"]
    assert live.loc[("NEWACC", "default"), "initial_margin_before"] == 0.0
    assert rerun.loc[("ACC0012", "isolated-SPX"), "equity"] == 0.0
    # sets not touched are unchanged in the re-run (what-if recomputes only touched sets)
    untouched = before.index.difference(pd.MultiIndex.from_tuples(sorted(touched)))
    np.testing.assert_allclose(rerun.loc[untouched, "initial_margin"],
                               before.loc[untouched, "initial_margin"], rtol=1e-12)


def test_state_format(run):
    _, _, tmp = run
    state_dir = tmp / "run" / "state"
    meta = json.loads((state_dir / "state.json").read_text())
    instruments = pd.read_parquet(state_dir / "instruments.parquet")
    assert list(instruments.columns) == ["instrument_id", "kind", "underlying", "multiplier",
                                         "factor", "strike", "expiry", "option_type",
                                         "implied_vol", "rate", "carry", "settlement", "model",
                                         "price", "pnl_row"]
    n_priced = int((instruments["pnl_row"] >= 0).sum())
    assert n_priced == len(instruments)  # every demo instrument is on a priced factor
    assert meta["horizons"] == [1, 2]
    for h in meta["horizons"]:
        pnl = np.load(state_dir / f"pnl_{h}d.npy", allow_pickle=False)
        assert pnl.dtype == np.float64 and pnl.shape[0] == n_priced
        stress = np.load(state_dir / f"stress_pnl_{h}d.npy", allow_pickle=False)
        assert stress.shape == (n_priced, len(meta["stress"][str(h)]["labels"]))


def test_cli_whatif_and_errors(run, tmp_path, capsys):
    _, _, tmp = run
    trades = _trades(pd.read_parquet(tmp / "run" / "attribution.parquet"))
    trades.to_parquet(tmp_path / "trades.parquet", index=False)
    out = tmp_path / "whatif.csv"
    assert main(["whatif", "--run", str(tmp / "run"), "--trades",
                 str(tmp_path / "trades.parquet"), "--out", str(out), "--quiet"]) == 0
    api = what_if(load_run(tmp / "run"), trades)
    cli = pd.read_csv(out, keep_default_na=False)
    np.testing.assert_allclose(cli["initial_margin_after"], api["initial_margin_after"],
                               rtol=1e-15)

    bad = tmp_path / "bad.csv"
    bad.write_text("account_id,instrument_id,quantity\nACC0000,SPX,1\nACC0000,NOPE,2\n")
    capsys.readouterr()
    assert main(["whatif", "--run", str(tmp / "run"), "--trades", str(bad),
                 "--out", str(tmp_path / "x.csv")]) == 3
    err = capsys.readouterr().err
    assert "bad.csv line 3" in err and "'instrument_id'" in err and "NOPE" in err
    assert not (tmp_path / "x.csv").exists()

    bad.write_text("account_id,instrument_id,quantity\nACC0000,SPX,inf\n")
    assert main(["whatif", "--run", str(tmp / "run"), "--trades", str(bad),
                 "--out", str(tmp_path / "x.csv")]) == 3
    assert "line 2" in capsys.readouterr().err
    with pytest.raises(InputDataError, match="unknown instrument"):
        what_if(load_run(tmp / "run"), pd.DataFrame(
            {"account_id": ["ACC0000"], "instrument_id": ["NOPE"], "quantity": [1.0]}))
    with pytest.raises(InputDataError, match="no collateral row"):
        what_if(load_run(tmp / "run"), pd.DataFrame(
            {"account_id": ["NOBODY"], "instrument_id": ["SPX"], "quantity": [1.0]}))
    for blank in (None, " "):
        with pytest.raises(InputDataError, match="row 2, column 'account_id': missing"):
            what_if(load_run(tmp / "run"), pd.DataFrame(
                {"account_id": ["ACC0000", blank], "instrument_id": ["SPX", "SPX"],
                 "quantity": [1.0, 1.0]}))


def test_unpriced_factor_and_missing_horizon(tmp_path, capsys):
    files = write_demo_inputs(tmp_path / "inputs", n_accounts=30)
    positions = pd.read_csv(files.positions, dtype=str, keep_default_na=False)
    # no WTI instrument and no perpetual: the run prices SPX and NASDAQ at 2 days only
    keep = positions["instrument_id"].isin(["SPX", "ES", "MES", "NQ"])
    positions[keep].to_csv(tmp_path / "positions.csv", index=False)
    _eod(files, tmp_path / "positions.csv", tmp_path / "run", "hs")
    state = load_run(tmp_path / "run")
    with pytest.raises(InputDataError, match="factor 'WTI'.*did not price"):
        what_if(state, pd.DataFrame(
            {"account_id": ["ACC0000"], "instrument_id": ["CL"], "quantity": [1.0]}))
    with pytest.raises(InputDataError, match="1-day horizon"):
        what_if(state, pd.DataFrame({"account_id": ["ACC0000"], "netting_set": ["perp"],
                                     "instrument_id": ["SPX-PERP"], "quantity": [1.0]}))
    trades = tmp_path / "trades.csv"
    trades.write_text("account_id,instrument_id,quantity\nACC0000,CL,1\n")
    capsys.readouterr()
    assert main(["whatif", "--run", str(tmp_path / "run"), "--trades", str(trades),
                 "--out", str(tmp_path / "x.csv")]) == 3
    err = capsys.readouterr().err
    assert "trades.csv line 2" in err and "WTI" in err
    # a perpetual on a priced factor is fine when its set keeps a 2-day position
    out = what_if(state, pd.DataFrame({"account_id": ["ACC0000"], "instrument_id": ["SPX-PERP"],
                                       "quantity": [1.0]}))
    assert out["status_after"].iat[0] != "closed"


def test_set_collateral_is_the_accounts_row_of_each_set(run):
    _, _, tmp = run
    state = load_run(tmp / "run")
    margins = pd.read_parquet(tmp / "run" / "margins.parquet")
    sets = pd.concat([margins[KEY].iloc[::7],
                      pd.DataFrame({"account_id": ["ACC0012", "NEWACC"],
                                    "netting_set": ["isolated-SPX", "default"]})],
                     ignore_index=True)
    # reference: a plain dict of the stored accounts table; no row of its own means 0
    table = state.stored.collateral
    by_key = dict(zip(zip(table["account_id"], table["netting_set"]), table["collateral"]))
    want = [by_key.get(key, 0.0) for key in zip(sets["account_id"], sets["netting_set"])]
    np.testing.assert_array_equal(state.collateral.of_sets(sets), want)
    # and the run's own equity column is that collateral
    np.testing.assert_array_equal(state.collateral.of_sets(margins[KEY]), margins["equity"])


def test_initial_margin_alone_is_the_margin_tables_column(run):
    # what each liquidation step asks for: bitwise the table's figure, on the whole run and on
    # books with positions scaled down, flipped and closed (so floors, add-ons and a set gone)
    _, _, tmp = run
    state = load_run(tmp / "run")
    positions = pd.read_parquet(tmp / "run" / "attribution.parquet",
                                columns=[*KEY, "instrument_id", "quantity"])
    rng = np.random.default_rng(3)
    for scale in (np.ones(len(positions)), rng.choice([0.0, 0.3, -1.0, 2.5], len(positions))):
        book = net_positions(positions.assign(quantity=positions["quantity"] * scale),
                             state.axis)
        table = book_margins(state, book)
        np.testing.assert_array_equal(book_initial_margin(state, book),
                                      table["initial_margin"].to_numpy())
        assert (table["initial_margin"] > 0).any()


def test_floor_and_buffer_runs_are_answered_as_an_eod_rerun(tmp_path):
    # the run keeps the floor's scenarios and the previous run's margins in its state, so a
    # what-if applies the floor and the buffer exactly as an eod re-run with the trades does
    files = write_demo_inputs(tmp_path / "inputs", n_accounts=30)
    accounts = pd.read_csv(files.accounts, dtype=str, keep_default_na=False)
    accounts.loc[len(accounts)] = {"account_id": "NEWACC", "collateral": "50000",
                                   "netting_set": ""}
    accounts.to_csv(files.accounts, index=False)
    config = tmp_path / "apc.toml"
    config.write_text(files.config.read_text() + "\n[anti_procyclicality]\n"
                      "tools = [\"floor\", \"buffer\"]\nfloor_lookback = 1500\n")

    def eod(positions, out, *extra):
        assert main(["eod", "--prices", str(files.prices), "--instruments",
                     str(files.instruments), "--positions", str(positions), "--accounts",
                     str(files.accounts), "--config", str(config), "--method", "hs",
                     "--out", str(out), "--quiet", *extra]) == 0
        return pd.read_parquet(out / "margins.parquet").set_index(KEY)

    eod(files.positions, tmp_path / "yesterday", "--as-of", "2018-12-27")
    today = ["--as-of", "2018-12-28", "--previous-run", str(tmp_path / "yesterday")]
    before = eod(files.positions, tmp_path / "run", *today)
    manifest = json.loads((tmp_path / "run" / "manifest.json").read_text())
    assert manifest["anti_procyclicality"]["floor"]["bound_sets"] > 0
    assert manifest["anti_procyclicality"]["buffer"]["applied_sets"] > 0
    assert not manifest["liquidation"].get("skipped")  # orders are computed now
    trades = _trades(pd.read_parquet(tmp_path / "run" / "attribution.parquet"))
    result = what_if(load_run(tmp_path / "run"), trades).set_index(KEY)
    appended = pd.concat([pd.read_csv(files.positions, dtype=str, keep_default_na=False),
                          trades.astype(str)], ignore_index=True)
    appended.to_csv(tmp_path / "positions_after.csv", index=False)
    rerun = eod(tmp_path / "positions_after.csv", tmp_path / "rerun", *today)
    live = result[result["status_after"] != "closed"]
    for col in ("model_margin", "initial_margin", "maintenance_margin"):
        np.testing.assert_allclose(live[f"{col}_after"], rerun.loc[live.index, col],
                                   rtol=1e-9, atol=1e-9)
    # and a buffered set margins above its model margin in both
    assert (rerun["initial_margin"] > 1.2 * rerun["model_margin"]).any()
    # the liquidation orders, computed under the floor and the buffer, restore the sets on an
    # eod re-run of the reduced positions against the same previous run
    orders = pd.read_parquet(tmp_path / "run" / "liquidation_orders.parquet")
    assert len(orders) > 0 and (before["status"] == "liquidation").any()
    book = pd.read_parquet(tmp_path / "run" / "attribution.parquet",
                           columns=[*KEY, "instrument_id", "quantity"])
    book = book[~book["instrument_id"].str.startswith("collateral:")]
    book = book.merge(orders[[*KEY, "instrument_id", "quantity_to_close"]], how="left",
                      on=[*KEY, "instrument_id"])
    book["quantity"] -= book.pop("quantity_to_close").fillna(0.0)
    book.to_csv(tmp_path / "reduced.csv", index=False)
    reduced = eod(tmp_path / "reduced.csv", tmp_path / "reduced", *today)
    after = orders.groupby(KEY)["margin_after"].first()
    kept = after.index.intersection(reduced.index)
    np.testing.assert_allclose(reduced.loc[kept, "initial_margin"], after.loc[kept],
                               rtol=1e-9)


def test_a_new_account_funded_by_its_deposit_and_the_before_after_columns(run, capsys):
    # a new account could not be priced (no collateral row); the output lacked status_before,
    # equity and call amounts; the CLI said "1 netting sets touched"
    _, files, tmp = run
    state = load_run(tmp / "run")
    trades = pd.DataFrame({"account_id": ["BRANDNEW", "ACC0000"],
                           "instrument_id": ["NQ", "SPX"], "quantity": [2.0, 1.0],
                           "netting_set": ["", ""], "collateral": [60000.0, 1000.0]})
    result = what_if(state, trades).set_index(KEY)
    assert list(result.reset_index().columns) == WHATIF_COLUMNS
    new = result.loc[("BRANDNEW", "default")]
    assert new["status_before"] == "new" and new["equity_before"] == 0.0
    assert new["equity_after"] == 60000.0 and new["initial_margin_before"] == 0.0
    assert new["initial_margin_after"] > 0 and new["status_after"] == "ok"
    np.testing.assert_allclose(new["margin_level_after"],
                               60000.0 / new["maintenance_margin_after"], rtol=1e-12)
    old = result.loc[("ACC0000", "default")]
    run_margins = pd.read_parquet(tmp / "run" / "margins.parquet").set_index(KEY)
    before = run_margins.loc[("ACC0000", "default")]
    for column in ("status", "equity", "call_amount", "margin_level", "maintenance_margin"):
        assert old[f"{column}_before"] == before[column], column
    assert old["equity_after"] == before["equity"] + 1000.0
    np.testing.assert_allclose(old["call_amount_after"],
                               max(0.0, old["initial_margin_after"] - old["equity_after"]))
    # without the deposit the new account is refused, as in eod
    with pytest.raises(InputDataError, match="BRANDNEW"):
        what_if(state, trades.drop(columns="collateral"))
    ticket = tmp / "ticket.csv"
    trades.iloc[:1].to_csv(ticket, index=False)
    capsys.readouterr()
    assert main(["whatif", "--run", str(tmp / "run"), "--trades", str(ticket), "--out",
                 str(tmp / "ticket-out.csv")]) == 0
    assert "1 netting set touched" in capsys.readouterr().out
    written = pd.read_csv(tmp / "ticket-out.csv")
    assert written["equity_after"].iat[0] == 60000.0


def test_after_columns_are_the_margin_tables_and_a_closed_set_keeps_its_equity(run):
    # what-if reads the engine's per-set figures (detail="figures"); the reference is the
    # engine's margin table of the same netted book (detail="tables"), row by row
    _, _, tmp = run
    state = load_run(tmp / "run")
    attribution = pd.read_parquet(tmp / "run" / "attribution.parquet")
    trades = _trades(attribution)
    trades["collateral"] = [0.0, 0.0, 0.0, 0.0, 0.0, 250.0, 0.0, 0.0, 60000.0, 0.0, 0.0]
    result = what_if(state, trades).set_index(KEY)
    touched = sorted(set(zip(trades["account_id"], trades["netting_set"].replace("", "default"))))
    rows = attribution[[*KEY, "instrument_id", "quantity"]]
    held = rows[pd.MultiIndex.from_frame(rows[KEY]).isin(touched)]
    ticket = trades.assign(netting_set=trades["netting_set"].replace("", "default"))
    book = net_positions(pd.concat([held, ticket[held.columns]], ignore_index=True), state.axis)
    deposits = ticket.groupby(KEY)["collateral"].sum()
    table = book_margins(state, book, deposits.reindex(
        pd.MultiIndex.from_frame(book.sets)).to_numpy()).set_index(KEY)
    live = result[result["status_after"] != "closed"]
    assert len(live) == len(table) == len(touched) - 1
    for column in ("model_margin", "initial_margin", "maintenance_margin", "call_amount",
                   "equity", "margin_level", "status"):
        assert live[f"{column}_after"].tolist() == table.loc[live.index, column].tolist()
    # ACC0001's only position closes: no requirement, its collateral stays
    closed = result.loc[("ACC0001", "default")]
    before = pd.read_parquet(tmp / "run" / "margins.parquet").set_index(KEY)
    assert closed["status_after"] == "closed" and closed["initial_margin_after"] == 0.0
    assert closed["equity_after"] == before.loc[("ACC0001", "default"), "equity"]
    assert closed["margin_level_after"] == np.inf
    # a ticket that closes every set it touches margins no book at all
    alone = what_if(state, trades.iloc[[4]])
    assert alone["status_after"].tolist() == ["closed"]
    assert alone["equity_after"].tolist() == [before.loc[("ACC0001", "default"), "equity"]]


def test_a_small_book_of_two_horizons_margins_as_a_split_one(run):
    # up to WHOLE_BOOK_SETS sets the engine margins a book of several horizons whole at each
    # and keeps each set's own horizon's results; the reference is the same sets within a
    # book large enough to be split by horizon (Book.subset), every column bitwise
    _, _, tmp = run
    state = load_run(tmp / "run")
    rows = state.positions
    small = net_positions(rows, state.axis)
    assert small.n_sets <= WHOLE_BOOK_SETS
    copies = [rows.assign(account_id="Z" + rows["account_id"].astype(str) + f"-{i}")
              for i in range(WHOLE_BOOK_SETS // small.n_sets + 1)]
    large = net_positions(pd.concat([rows, *copies], ignore_index=True), state.axis)
    assert large.n_sets > WHOLE_BOOK_SETS
    for detail in ("tables", "figures"):
        got = state.margin(small, detail=detail)
        want = state.margin(large, detail=detail)
        if detail == "tables":
            keep = want.margins["account_id"].isin(small.sets["account_id"]).to_numpy()
            pd.testing.assert_frame_equal(
                got.margins, want.margins[keep].reset_index(drop=True), check_exact=True)
            held = want.attribution["account_id"].isin(small.sets["account_id"]).to_numpy()
            pd.testing.assert_frame_equal(
                got.attribution, want.attribution[held].reset_index(drop=True),
                check_exact=True)
        else:
            for column, values in got.figures.items():
                np.testing.assert_array_equal(values, want.figures[column][keep], column)
    # both horizons are there (the ES future moves a set to 2 days)
    horizons = set_horizons(small, state.market.instruments, state.config)
    assert set(horizons.tolist()) == {1, 2}
