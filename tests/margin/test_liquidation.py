"""Partial liquidation: closed form for one perpetual, and re-runs of the reduced demo book."""

import json

import numpy as np
import pandas as pd
import pytest

from riskmodel.cli import main
from riskmodel.config import RateTable
from riskmodel.demo import write_demo_inputs
from riskmodel.margin.liquidation import partial_liquidation
from riskmodel.margin.whatif import load_run


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
    result = partial_liquidation(state, penalty=RateTable(default=p))
    # IM is linear in the position for a single linear position: IM(q) = c q. Closing d at
    # price P with penalty rate p: E - p P d = c (q - d)  =>  d = (c q - E) / (c - p P).
    q, e, price = 400.0, 20_000.0, float(state.spot["SPX"])
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
    result = partial_liquidation(state, penalty=RateTable(default=0.002))
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
        partial_liquidation(None, target=0.0)  # type: ignore[arg-type]


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
    again = partial_liquidation(state, target=config.target_margin_level,
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
