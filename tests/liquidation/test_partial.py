"""Partial liquidation: closed form for one perpetual, and re-runs of the reduced demo book."""

import json

import numpy as np
import pandas as pd
import pytest

from riskmodel.cli import main
from riskmodel.config import RateTable
from riskmodel.demo import write_demo_inputs
from riskmodel.liquidation.partial import partial_liquidation
from riskmodel.whatif import LoadedRun, load_run


def _liquidate(state: LoadedRun, **kwargs):
    """The orders of a written run's under-margined sets, as eod's liquidation stage computes
    them (its tables read back from disk)."""
    margins = pd.read_parquet(state.run_dir / "margins.parquet")
    attribution = pd.read_parquet(state.run_dir / "attribution.parquet")
    return partial_liquidation(state.market, state.config, margins, attribution,
                               previous=state.stored.previous,
                               account_types=state.collateral.account_types, **kwargs)


def _eod(files, out, positions=None):
    argv = ["eod", "--prices", str(files.prices), "--instruments", str(files.instruments),
            "--positions", str(positions or files.positions), "--accounts", str(files.accounts),
            "--config", str(files.config), "--out", str(out), "--quiet", "--method", "hs"]
    assert main(argv) == 0


def test_single_over_leveraged_perpetual_matches_closed_form(tmp_path):
    files = write_demo_inputs(tmp_path / "in", n_accounts=3)
    pd.DataFrame({"account_id": ["lev"], "instrument_id": ["SPX-PERP"], "quantity": [400.0]}) \
        .to_csv(files.positions, index=False)
    pd.DataFrame({"account_id": ["lev"], "collateral": [20_000.0]}).to_csv(files.accounts,
                                                                           index=False)
    _eod(files, tmp_path / "run")
    run = pd.read_parquet(tmp_path / "run" / "margins.parquet").iloc[0]
    assert run["status"] == "liquidation"
    state = load_run(tmp_path / "run")
    p = 0.005
    result = _liquidate(state, penalty=RateTable(default=p))
    # IM is linear in the position for a single linear position: IM(q) = c q. Closing d at
    # price P with penalty rate p: E - p P d = c (q - d)  =>  d = (c q - E) / (c - p P).
    q, e, price = 400.0, 20_000.0, float(state.market.spot["SPX"])
    c = run["initial_margin"] / q
    d = (c * q - e) / (c - p * price)
    order = result.orders.iloc[0]
    np.testing.assert_allclose(order["quantity_to_close"], d, rtol=1e-9)
    np.testing.assert_allclose(order["equity_after"], e - p * price * d, rtol=1e-9)
    np.testing.assert_allclose(order["margin_after"], order["equity_after"], rtol=1e-9)
    assert result.sets["restored"].all()


def test_demo_orders_restore_every_liquidated_set_on_a_rerun(tmp_path):
    files = write_demo_inputs(tmp_path / "in", n_accounts=80)
    _eod(files, tmp_path / "run")
    state = load_run(tmp_path / "run")
    result = _liquidate(state, penalty=RateTable(default=0.002))
    margins = pd.read_parquet(tmp_path / "run" / "margins.parquet")
    liquidated = margins[margins["status"] == "liquidation"]
    assert len(liquidated) > 0 and len(result.sets) == len(liquidated)
    # apply the orders to the positions file and re-run eod from scratch
    book = pd.read_parquet(tmp_path / "run" / "attribution.parquet")
    book = book[["account_id", "netting_set", "instrument_id", "quantity"]].copy()
    orders = result.orders.rename(columns={"quantity_to_close": "close"})
    book = book.merge(orders[["account_id", "netting_set", "instrument_id", "close"]],
                      on=["account_id", "netting_set", "instrument_id"], how="left")
    book["quantity"] -= book["close"].fillna(0.0)
    reduced = tmp_path / "reduced.csv"
    book.drop(columns="close").to_csv(reduced, index=False)
    _eod(files, tmp_path / "rerun", positions=reduced)
    rerun = pd.read_parquet(tmp_path / "rerun" / "margins.parquet") \
        .set_index(["account_id", "netting_set"])
    for _, s in result.sets.iterrows():
        key = (s["account_id"], s["netting_set"])
        if key not in rerun.index:  # fully closed
            assert s["margin_after"] == 0.0
            continue
        im = rerun.loc[key, "initial_margin"]
        np.testing.assert_allclose(im, s["margin_after"], rtol=1e-9)
        assert s["equity_after"] >= im * (1 - 1e-12)


def test_target_must_be_positive(tmp_path):
    with pytest.raises(ValueError, match="target"):
        partial_liquidation(None, None, None, None, target=0.0)  # type: ignore[arg-type]


def test_eod_writes_the_orders_and_penalties_that_a_loaded_run_gives(tmp_path):
    """eod computes the orders on its in-memory state; the same computation on the written run
    (what-if state read back from disk) must give the same orders, and the margins table carries
    each set's penalty: rate x |notional closed| by hand from the orders."""
    files = write_demo_inputs(tmp_path / "in", n_accounts=60)
    _eod(files, tmp_path / "run")
    run = tmp_path / "run"
    orders = pd.read_parquet(run / "liquidation_orders.parquet")
    margins = pd.read_parquet(run / "margins.parquet")
    state = load_run(run)
    config = state.config.liquidation
    again = _liquidate(state, target=config.target_margin_level,
                                penalty=config.penalty_rates)
    pd.testing.assert_frame_equal(orders.reset_index(drop=True),
                                  again.orders.reset_index(drop=True), check_dtype=False)
    liquidated = margins["status"] == "liquidation"
    assert liquidated.sum() > 0
    assert (margins.loc[~liquidated, "liquidation_penalty"] == 0).all()
    # the demo charges 0.5% on perpetuals and 0.2% on everything else
    instruments = pd.read_csv(files.instruments).set_index("instrument_id")
    last = pd.read_csv(files.prices).set_index("date").ffill().iloc[-1]  # carried over
    by_hand = {}
    for _, o in orders.iterrows():
        inst = instruments.loc[o["instrument_id"]]
        rate = 0.005 if inst["kind"] == "perpetual" else 0.002
        price = float(last[inst["underlying"]])
        key = (o["account_id"], o["netting_set"])
        by_hand[key] = by_hand.get(key, 0.0) + rate * abs(o["quantity_to_close"] * price
                                                          * inst["multiplier"])
    got = margins[liquidated].set_index(["account_id", "netting_set"])["liquidation_penalty"]
    for key, value in by_hand.items():
        np.testing.assert_allclose(got.loc[key], value, rtol=1e-12)
    manifest = json.loads((run / "manifest.json").read_text())
    np.testing.assert_allclose(manifest["totals"]["liquidation_penalty"],
                               margins["liquidation_penalty"].sum(), rtol=1e-12)
    assert manifest["liquidation"]["netting_sets"] == int(liquidated.sum())


# --- reference values from outside the code under test -------------------------------------
# The demo's [liquidation.penalty_rates] (riskmodel/demo.py RUN_TOML), written out by hand.
DEMO_PENALTY = {"default": 0.002, "kind": {"perpetual": 0.005}, "underlying": {}}
KEY = ["account_id", "netting_set"]
PARTS = (0.02, 0.05, 0.1, 0.2, 0.35, 0.5, 0.75, 0.9)


def _rate_by_hand(table, kind, underlying):
    """The README's lookup written out: the underlying's rate, else the kind's, else default."""
    if underlying in table["underlying"]:
        return table["underlying"][underlying]
    return table["kind"].get(kind, table["default"])


def _run(files, out, positions=None, accounts=None, config=None):
    argv = ["eod", "--prices", str(files.prices), "--instruments", str(files.instruments),
            "--positions", str(positions or files.positions),
            "--accounts", str(accounts or files.accounts), "--config", str(config or files.config),
            "--out", str(out), "--quiet", "--method", "hs"]
    assert main(argv) == 0
    return out


def _book_with_orders(files, run, table):
    """The run's netted positions with each order's ``close`` (0 where none), the per-unit
    notional as the margin table reports it (|q x delta x P| / |q|), the penalty rate by hand
    and the Euler contribution; and the run's margins."""
    margins = pd.read_parquet(run / "margins.parquet")
    orders = pd.read_parquet(run / "liquidation_orders.parquet")
    book = pd.read_parquet(run / "attribution.parquet",
                           columns=[*KEY, "instrument_id", "quantity", "notional", "contribution"])
    instruments = pd.read_csv(files.instruments).set_index("instrument_id")
    book["unit_notional"] = book["notional"] / book["quantity"].abs()
    book["rate"] = [_rate_by_hand(table, instruments.at[i, "kind"],
                                  instruments.at[i, "underlying"]) for i in book["instrument_id"]]
    book = book.merge(orders[[*KEY, "instrument_id", "quantity_to_close"]],
                      on=[*KEY, "instrument_id"], how="left")
    book["close"] = book.pop("quantity_to_close").fillna(0.0)
    return book, margins, orders


def _check_orders_on_a_rerun(files, run, root, *, target, table, statuses, config=None):
    """Every order set, re-margined by an eod re-run of the reduced book (requirements do not
    depend on the collateral: the re-run funds every set amply, so that it has nothing to
    liquidate, and the equity after the penalty is computed here, collateral - rate x |closed|
    x unit notional):

    * at most one position is reduced partially, the ones closed in full come before it and the
      untouched ones after it in order of the run's Euler contributions (riskiest first);
    * the equity after the penalty is ``target x`` the re-run's initial margin, to 1e-9
      relative (the smallest reduction: exactly on the target, not merely above it);
    * closing only 99.9% of that partially reduced position leaves the set short of the target
      (re-margined in the same re-run, as a copy of the set under another account id);
    * so does closing any fraction of a grid (``PARTS``) of a position closed in full (with
      the riskier ones closed and the rest untouched): a full close was needed;
    * a set closed entirely cannot be restored: its equity after the penalty is negative.

    Returns the number of sets checked on the target."""
    book, margins, orders = _book_with_orders(files, run, table)
    chosen = margins[margins["status"].isin(statuses)].set_index(KEY)
    order_sets = set(zip(orders["account_id"], orders["netting_set"]))
    assert order_sets == set(chosen.index)
    book["partial"] = (book["close"] != 0) & (book["close"].abs() < book["quantity"].abs())
    book["full"] = book["close"] == book["quantity"]
    rows, equity_after, checked, parts = [], {}, [], []
    collateral = margins.set_index(KEY)["equity"]
    for key, pos in book.groupby(KEY, sort=False):
        equity = float(collateral.loc[key])
        if key not in chosen.index:
            assert (pos["close"] == 0).all()
            rows.append(pos.assign(quantity=pos["quantity"]))
            equity_after[key] = equity
            continue
        assert pos["partial"].sum() <= 1, key
        touched = pos[pos["close"] != 0]
        assert (np.sign(touched["close"]) == np.sign(touched["quantity"])).all(), key
        ranked = pos.sort_values("contribution", ascending=False, kind="stable")
        state = np.where(ranked["full"], 2, np.where(ranked["partial"], 1, 0))
        assert (np.diff(state) <= 0).all(), (key, ranked)  # full ..., partial, untouched ...
        penalty = float((pos["rate"] * pos["close"].abs() * pos["unit_notional"]).sum())
        if not pos["partial"].any():  # closed in full: only when even that cannot restore it
            assert pos["full"].all(), key
            assert equity - penalty < 0, key
            continue
        rows.append(pos.assign(quantity=pos["quantity"] - pos["close"]))
        equity_after[key] = equity - penalty
        # the same set with 99.9% of its partial close: its own copy in the re-run
        smaller = pos["close"].where(~pos["partial"], 0.999 * pos["close"])
        short_penalty = float((pos["rate"] * smaller.abs() * pos["unit_notional"]).sum())
        rows.append(pos.assign(quantity=pos["quantity"] - smaller,
                               account_id=key[0] + "-short"))
        equity_after[(key[0] + "-short", key[1])] = equity - short_penalty
        # a position closed in full before the partial one: no part of it was enough either
        # (a grid of fractions, the riskier positions closed, the others untouched)
        for r, label in enumerate(ranked.index[ranked["full"]]):
            for f in PARTS:
                trial = pd.Series(0.0, index=ranked.index)
                trial[ranked.index[:r]] = ranked["quantity"].iloc[:r]
                trial[label] = f * ranked.at[label, "quantity"]
                trial = trial.loc[pos.index]
                account = f"{key[0]}-part-{r}-{f}"
                rows.append(pos.assign(quantity=pos["quantity"] - trial, account_id=account))
                equity_after[(account, key[1])] = equity - float(
                    (pos["rate"] * trial.abs() * pos["unit_notional"]).sum())
                parts.append((account, key[1]))
        checked.append(key)
    assert checked
    reduced = pd.concat(rows)
    reduced = reduced.loc[reduced["quantity"] != 0, [*KEY, "instrument_id", "quantity"]]
    reduced.to_csv(root / "reduced_positions.csv", index=False)
    pd.DataFrame([(*k, 1e12) for k in equity_after], columns=[*KEY, "collateral"]) \
        .to_csv(root / "reduced_accounts.csv", index=False)
    rerun = _run(files, root / "rerun", positions=root / "reduced_positions.csv",
                 accounts=root / "reduced_accounts.csv", config=config)
    im = pd.read_parquet(rerun / "margins.parquet").set_index(KEY)["initial_margin"]
    by_set = orders.groupby(KEY).first()
    for key in checked:
        np.testing.assert_allclose(equity_after[key], target * im[key], rtol=1e-9,
                                   err_msg=str(key))
        np.testing.assert_allclose(by_set.loc[key, ["margin_after", "equity_after"]],
                                   [im[key], equity_after[key]], rtol=1e-9, err_msg=str(key))
        short = (key[0] + "-short", key[1])
        assert equity_after[short] < target * im[short], key
    for key in parts:
        assert equity_after[key] < target * im[key], key
    return len(checked)


def _stressed_demo(folder, n_accounts, collateral_scale):
    """The demo book with every account's collateral scaled down, so that more sets are in
    liquidation and several need more than one position reduced."""
    files = write_demo_inputs(folder, n_accounts=n_accounts)
    accounts = pd.read_csv(files.accounts, dtype={"netting_set": str})
    accounts["collateral"] *= collateral_scale
    accounts.to_csv(files.accounts, index=False)
    return files


def test_demo_orders_meet_the_target_exactly_and_a_smaller_close_falls_short(tmp_path):
    """Minimality, checked by an eod re-run of the reduced book (``_check_orders_on_a_rerun``)
    on a demo with 30% of its collateral: the orders bring equity after the penalty to the
    initial margin exactly, closing 99.9% of the last reduction does not restore it, and no
    fraction of a position closed in full would have (a hedged set, ACC0043, was restored by 2%
    of its first position while the engine closed all of it and more)."""
    files = _stressed_demo(tmp_path / "in", 80, 0.3)
    run = _run(files, tmp_path / "run")
    orders = pd.read_parquet(run / "liquidation_orders.parquet")
    assert (orders.groupby(KEY).size() > 1).sum() >= 3  # full closes before a partial one
    n = _check_orders_on_a_rerun(files, run, tmp_path, target=1.0, table=DEMO_PENALTY,
                                 statuses={"liquidation"})
    assert n >= 20


def test_target_level_and_margin_call_sets_reach_the_target_on_a_rerun(tmp_path):
    """``target_margin_level = 1.25`` with ``include_margin_call = true``: the orders of the
    sets in liquidation and in margin call bring equity after the penalty to 1.25 x the
    initial margin of an eod re-run of the reduced book, and no less a reduction does."""
    files = _stressed_demo(tmp_path / "in", 60, 0.6)
    text = files.config.read_text()
    assert "target_margin_level = 1.0" in text
    config = tmp_path / "run.toml"
    config.write_text(text.replace("target_margin_level = 1.0",
                                   "target_margin_level = 1.25\ninclude_margin_call = true"))
    run = _run(files, tmp_path / "run", config=config)
    margins = pd.read_parquet(run / "margins.parquet")
    assert (margins["status"] == "margin_call").sum() >= 2
    n = _check_orders_on_a_rerun(files, run, tmp_path, target=1.25, table=DEMO_PENALTY,
                                 statuses={"liquidation", "margin_call"}, config=config)
    assert n >= 5
    manifest = json.loads((run / "manifest.json").read_text())["liquidation"]
    assert manifest["target_margin_level"] == 1.25 and manifest["include_margin_call"] is True
    assert manifest["netting_sets"] == int(margins["status"].isin(["liquidation",
                                                                  "margin_call"]).sum())
    # a margin-call set pays its penalty too
    called = margins[margins["status"] == "margin_call"]
    assert (called["liquidation_penalty"] > 0).all()


def _write(frame, path):
    frame.to_csv(path, index=False)
    return path


def test_the_position_with_the_largest_euler_contribution_is_reduced_first(tmp_path):
    """One set: a large long S&P perpetual partly hedged by a short NASDAQ perpetual, and a
    smaller long oil perpetual (December 2018: oil fell by a third, the indices moved together).
    The oil position has half the notional of the S&P one but nearly all the risk. Its Euler
    contribution, measured here by finite differences of re-run model margins (each position
    scaled by 1 + 1e-4 in a copy of the set), is the largest by far: it is the one reduced
    first, whatever the file order; when closing it in full is not enough, the next riskiest
    (S&P) is reduced and the hedge is left alone."""
    files = write_demo_inputs(tmp_path / "in", n_accounts=3)
    last = pd.read_csv(files.prices).set_index("date").ffill().iloc[-1]
    book = pd.DataFrame({"instrument_id": ["NASDAQ-PERP", "SPX-PERP", "WTI-PERP"],
                         "quantity": [-136.0, 399.0, 111.0],
                         "unit_notional": [last["NASDAQ"], last["SPX"], 100.0 * last["WTI"]]})
    notional = book["quantity"].abs() * book["unit_notional"]
    assert notional.idxmax() == 1  # the S&P position is the largest ...
    h = 1e-4
    probe = [book.assign(account_id="A")]
    for i, iid in enumerate(book["instrument_id"]):
        bumped = book.assign(account_id=f"A+{iid}")
        bumped.loc[i, "quantity"] *= 1 + h
        probe.append(bumped)
    probe.append(book[book["instrument_id"] != "WTI-PERP"].assign(account_id="PAIR"))
    probe = pd.concat(probe)
    accounts = pd.DataFrame({"account_id": probe["account_id"].unique(), "collateral": 1e9})
    run = _run(files, tmp_path / "probe",
               positions=_write(probe[["account_id", "instrument_id", "quantity"]],
                                tmp_path / "probe.csv"),
               accounts=_write(accounts, tmp_path / "probe_accounts.csv"))
    margins = pd.read_parquet(run / "margins.parquet").set_index("account_id")
    base = margins.at["A", "model_margin"]
    euler = np.array([(margins.at[f"A+{iid}", "model_margin"] - base) / h
                      for iid in book["instrument_id"]])
    # ... but the oil position carries most of the margin: Euler contributions sum to it
    np.testing.assert_allclose(euler.sum(), base, rtol=1e-3)
    assert np.argmax(euler) == 2 and euler[2] > 5 * euler[1] and euler[1] > euler[0]
    attribution = pd.read_parquet(run / "attribution.parquet")
    mine = attribution[attribution["account_id"] == "A"].set_index("instrument_id")
    np.testing.assert_allclose(mine.loc[book["instrument_id"], "contribution"], euler,
                               rtol=1e-3, atol=1e-3 * base)
    # ONE: reducing the oil position restores it. TWO: closing all the oil leaves it 2% short
    # of the margin of the index pair (its notional floor), so the S&P perpetual, the next
    # riskiest, is reduced next (which lowers the floor) and the hedge is left alone
    wti_penalty = 0.005 * notional[2]
    pair_im = margins.at["PAIR", "initial_margin"]
    positions = pd.concat([book.assign(account_id=a) for a in ("ONE", "TWO")])
    accounts = pd.DataFrame({"account_id": ["ONE", "TWO"],
                             "collateral": [0.5 * margins.at["A", "initial_margin"],
                                            wti_penalty + 0.98 * pair_im]})
    run = _run(files, tmp_path / "run",
               positions=_write(positions[["account_id", "instrument_id", "quantity"]],
                                tmp_path / "positions.csv"),
               accounts=_write(accounts, tmp_path / "accounts.csv"))
    status = pd.read_parquet(run / "margins.parquet").set_index("account_id")["status"]
    assert (status == "liquidation").all()
    orders = pd.read_parquet(run / "liquidation_orders.parquet").set_index("account_id")
    one = orders.loc[["ONE"]]
    assert list(one["instrument_id"]) == ["WTI-PERP"]
    assert 0 < one["quantity_to_close"].iloc[0] < 111.0
    two = orders.loc[["TWO"]]
    assert list(two["instrument_id"]) == ["WTI-PERP", "SPX-PERP"]
    assert two["quantity_to_close"].iloc[0] == 111.0
    # closing the S&P leg in full would unhedge the NASDAQ short (its margin alone is above
    # the pair's): a few per cent of it restores the set, and no less does (eod re-run)
    assert 0 < two["quantity_to_close"].iloc[1] < 0.1 * 399.0
    assert _check_orders_on_a_rerun(files, run, tmp_path, target=1.0, table=DEMO_PENALTY,
                                    statuses={"liquidation"}) == 2


def test_penalty_rates_by_underlying_override_kind_and_default(tmp_path):
    """``[liquidation.penalty_rates]`` with an underlying table: WTI's rate (2%) applies to the
    WTI perpetual and the WTI future over their kinds' rates (0.5%, 0.3%); the S&P perpetual
    pays the perpetual rate and the NASDAQ inverse perpetual (a kind without a rate) the
    default (0.1%). Each single-position set matches the closed form of partial liquidation
    with its own rate, ``d = (c q - E) / (c - p u)``, ``c = IM / q`` and ``u`` the notional per
    unit (price x multiplier; the 100 USD face of the inverse contract), and a mixed set's
    penalty is the sum of rate x notional closed over its orders, with the rates by hand."""
    files = write_demo_inputs(tmp_path / "in", n_accounts=3)
    text = files.config.read_text()
    demo_table = ("[liquidation.penalty_rates]  # fee on the notional liquidated\n"
                  "default = 0.002\n[liquidation.penalty_rates.kind]\nperpetual = 0.005\n")
    assert demo_table in text
    config = tmp_path / "run.toml"
    config.write_text(text.replace(demo_table, (
        "[liquidation.penalty_rates]\ndefault = 0.001\n"
        "[liquidation.penalty_rates.kind]\nperpetual = 0.005\nfuture = 0.003\n"
        "[liquidation.penalty_rates.underlying]\nWTI = 0.02\n")))
    table = {"default": 0.001, "kind": {"perpetual": 0.005, "future": 0.003},
             "underlying": {"WTI": 0.02}}
    last = pd.read_csv(files.prices).set_index("date").ffill().iloc[-1]
    # instrument, quantity, notional per unit, rate by hand, collateral as a share of notional
    singles = {
        "WTI_PERP": ("WTI-PERP", 100.0, 100.0 * last["WTI"], 0.02, 0.04),
        "WTI_FUT": ("CL", 10.0, 1000.0 * last["WTI"], 0.02, 0.05),
        "SPX_PERP": ("SPX-PERP", 200.0, last["SPX"], 0.005, 0.015),
        "NDX_INV": ("NDX-INV", -3000.0, 100.0, 0.001, 0.02),
    }
    for iid, _, _, rate, _ in singles.values():
        inst = pd.read_csv(files.instruments).set_index("instrument_id").loc[iid]
        assert _rate_by_hand(table, inst["kind"], inst["underlying"]) == rate
    mixed = [("WTI-PERP", 40.0), ("SPX-PERP", -150.0), ("ES", 3.0), ("NDX-INV", 2000.0)]
    positions = pd.DataFrame(
        [(a, iid, q) for a, (iid, q, *_) in singles.items()]
        + [("MIXED", iid, q) for iid, q in mixed],
        columns=["account_id", "instrument_id", "quantity"])
    accounts = pd.DataFrame(
        [(a, share * abs(q) * u) for a, (_, q, u, _, share) in singles.items()]
        + [("MIXED", 5_000.0)], columns=["account_id", "collateral"])
    run = _run(files, tmp_path / "run", config=config,
               positions=_write(positions, tmp_path / "positions.csv"),
               accounts=_write(accounts, tmp_path / "accounts.csv"))
    margins = pd.read_parquet(run / "margins.parquet").set_index("account_id")
    assert (margins["status"] == "liquidation").all()
    orders = pd.read_parquet(run / "liquidation_orders.parquet").set_index("account_id")
    for account, (iid, q, u, p, share) in singles.items():
        e, im = share * abs(q) * u, margins.at[account, "initial_margin"]
        c = im / q
        d = (c * q - e) / (c - np.sign(q) * p * u)
        order = orders.loc[account]
        assert order["instrument_id"] == iid
        np.testing.assert_allclose(order["quantity_to_close"], d, rtol=1e-9, err_msg=account)
        np.testing.assert_allclose(margins.at[account, "liquidation_penalty"], p * u * abs(d),
                                   rtol=1e-9, err_msg=account)
        np.testing.assert_allclose(order["equity_after"], e - p * u * abs(d), rtol=1e-9)
    unit = {"WTI-PERP": (100.0 * last["WTI"], 0.02), "SPX-PERP": (last["SPX"], 0.005),
            "ES": (50.0 * last["SPX"], 0.003), "NDX-INV": (100.0, 0.001)}
    mine = orders.loc[["MIXED"]]
    assert len(mine) >= 2
    by_hand = sum(unit[i][1] * unit[i][0] * abs(c)
                  for i, c in zip(mine["instrument_id"], mine["quantity_to_close"]))
    np.testing.assert_allclose(margins.at["MIXED", "liquidation_penalty"], by_hand, rtol=1e-12)
    manifest = json.loads((run / "manifest.json").read_text())
    np.testing.assert_allclose(manifest["liquidation"]["penalties"],
                               margins["liquidation_penalty"].sum(), rtol=1e-12)


def _search(g, limit=200):
    """Drive the interior search as ``_Lockstep.interior`` does, on a function given here:
    returns ``(lo, hi, n_samples)`` of the first restoring sample, or ``(None, None, n)``."""
    from riskmodel.liquidation.partial import _highest_bound

    xs, gs = [0.0], [g(0.0)]
    for n in range(1, limit + 1):
        x = _highest_bound(xs, gs)
        if x is None:
            return None, None, n
        j = int(np.searchsorted(xs, x))
        if g(x) >= 0:
            return xs[j - 1], x, n
        xs.insert(j, x)
        gs.insert(j, g(x))
    raise AssertionError("no decision")


@pytest.mark.parametrize("peak, height", [(0.3, 0.5), (0.9, 1e-3), (0.02, 0.01), (0.6, 1e-6)])
def test_interior_search_brackets_the_smallest_root_of_a_concave_surplus(peak, height):
    """A tent ``g(x) = h - s |x - c|`` with ``g(0) = -1`` (closing part of a hedge leg helps,
    all of it hurts): the search must find a restoring fraction, with the smallest root
    ``c - h / s`` (by hand) inside its bracket, however narrow the restoring interval."""
    slope = (height + 1.0) / peak

    def g(x):
        return height - slope * abs(x - peak)

    lo, hi, n = _search(g)
    root = peak - height / slope
    assert lo is not None and lo < root <= hi and g(lo) < 0 <= g(hi)
    assert n <= 60


@pytest.mark.parametrize("g", [lambda x: -1.0 + 0.9 * x,  # rising, still short at 1
                               lambda x: -1.0 + 2.0 * x - 1.5 * x * x,  # hump below zero
                               lambda x: -1.0 - x,  # closing only hurts
                               lambda x: min(-1.0 + 3.0 * x, -0.01)])  # plateau just short
def test_interior_search_stops_when_no_fraction_restores(g):
    lo, hi, n = _search(g)
    assert lo is None and n <= 60


@pytest.mark.parametrize("variant", ["demo", "apc", "target", "stress max"])
def test_compiled_search_gives_the_lockstep_orders_bit_for_bit(tmp_path, monkeypatch, variant):
    """The compiled search (every set at once, its trial margins the engine's compiled twin)
    against the lockstep search through ``margin_book`` itself, on a demo with 30% of its
    collateral under several configurations: the same orders and outcomes, bit for bit, on
    one worker thread and on three taking slices of two sets. Sets with a concentration
    charge take the lockstep path in both (the demo's threshold)."""
    import dataclasses

    from riskmodel.batch.eod import EodInputs, run_eod
    from riskmodel.config import load_config
    from riskmodel.liquidation import search

    files = _stressed_demo(tmp_path / "in", 120, 0.3)
    config = load_config(files.config, {"method": "hs", "lookback": 1500})
    include_margin_call, target = False, 1.0
    if variant == "apc":
        config = dataclasses.replace(config, lookback=600, anti_procyclicality=dataclasses.replace(
            config.anti_procyclicality, tools=("floor", "buffer")))
    if variant == "target":
        include_margin_call, target = True, 1.25
    if variant == "stress max":
        config = dataclasses.replace(config, measure="var", stress=dataclasses.replace(
            config.stress, mode="max", weight=0.9))
    run = run_eod(EodInputs(files.prices, files.instruments, files.positions, files.accounts),
                  config)
    margins, attribution = run.margins, run.attribution
    rng = np.random.default_rng(3)
    previous = margins[KEY].assign(model_margin=margins["model_margin"].to_numpy()
                                   * rng.uniform(0.3, 1.5, len(margins)))

    def liquidate(minimum, threads=1):
        # the argument, not the module's constant: its default was bound when defined
        return partial_liquidation(run.state.market, config, margins, attribution,
                                   previous=previous, target=target,
                                   include_margin_call=include_margin_call,
                                   penalty=RateTable(0.002, {"perpetual": 0.005}),
                                   compiled_min_sets=minimum, search_threads=threads)

    lockstep = liquidate(10**9)
    monkeypatch.setattr(search, "SLICE_SETS", 2)
    assert len(lockstep.sets) >= 15 and (lockstep.orders.groupby(KEY).size() > 1).any()
    for compiled in (liquidate(0), liquidate(0, threads=3)):
        pd.testing.assert_frame_equal(compiled.orders, lockstep.orders, check_exact=True)
        pd.testing.assert_frame_equal(compiled.sets, lockstep.sets, check_exact=True)


def test_pairwise_sum_and_highest_bound_are_numpys_and_the_lockstep_ones():
    """The compiled search's two pieces of arithmetic outside the engine: numpy's pairwise sum
    (the penalties' ``np.sum``) and the interior search's next sample (``_highest_bound``)."""
    from riskmodel.liquidation.partial import _highest_bound
    from riskmodel.liquidation.search_kernels import highest_bound, pairwise_sum

    rng = np.random.default_rng(4)
    for n in (1, 5, 8, 9, 127, 128, 129, 300, 1000):
        a = rng.normal(size=n) * 10.0 ** rng.integers(-6, 7, size=n)
        assert pairwise_sum(np.concatenate([[7.0], a]), 1, n) == float(np.sum(a))
    for _ in range(500):
        n = int(rng.integers(1, 8))
        xs = np.sort(np.concatenate([[0.0], rng.uniform(0, 1, n - 1)]))
        gs = -np.abs(rng.normal(size=n)) * 10.0 ** rng.integers(-3, 3)
        expected = _highest_bound(list(xs), list(gs))
        x, ok = highest_bound(np.append(xs, [0.0, 0.0]), np.append(gs, [0.0, 0.0]), n)
        assert (x if ok else None) == expected


def test_a_set_the_search_left_without_an_outcome_is_an_error():
    from riskmodel.liquidation.search import NOT_SEARCHED, SearchResult, _searched

    result = SearchResult(np.zeros(2), np.zeros((2, 3)), np.array([0, NOT_SEARCHED]))
    assert _searched(result, np.array([0])) is result
    with pytest.raises(RuntimeError, match="without an outcome"):
        _searched(result, np.array([0, 1]))


def test_base_book_orders_each_sets_positions_by_instrument_id_as_text():
    """The search's book lists a set's positions as netting does (by the id's text, Python's
    ``sorted``), whatever the search order, and maps each search row to its book row."""
    from riskmodel.liquidation.search import SearchRows, base_book

    rng = np.random.default_rng(7)
    names = np.array(["B10", "B9", "a", "Z", "b\u00e9", "b", "B1", "10", "9"], dtype=object)
    counts = rng.integers(1, 6, size=40)
    set_ptr = np.concatenate([[0], np.cumsum(counts)])
    ids = np.concatenate([rng.choice(names, size=c, replace=False) for c in counts])
    n = len(ids)
    keys = pd.DataFrame({"account_id": [f"A{i}" for i in range(len(counts))],
                         "netting_set": "main"})
    rows = SearchRows(keys=keys, set_ptr=set_ptr, instrument_id=ids,
                      index=rng.integers(0, 50, size=n), quantity=rng.normal(size=n),
                      unit_notional=np.ones(n), rate=np.zeros(n), equity=np.ones(len(keys)),
                      initial_margin=np.ones(len(keys)), n_tradeable=counts,
                      previous=np.full(len(keys), np.nan))
    book, to_book = base_book(rows)
    for s, (lo, hi) in enumerate(zip(set_ptr[:-1], set_ptr[1:])):
        expected = sorted(ids[lo:hi])
        assert list(book.positions["instrument_id"][lo:hi]) == expected
        assert (book.positions["account_id"][lo:hi] == keys["account_id"][s]).all()
    assert np.array_equal(book.positions["instrument_id"].to_numpy()[to_book], ids)
    assert np.array_equal(book.quantity[to_book], rows.quantity)
    assert np.array_equal(book.instrument_index[to_book], rows.index)
