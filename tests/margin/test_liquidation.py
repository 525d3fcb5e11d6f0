"""Partial liquidation: closed form for one perpetual, and re-runs of the reduced demo book."""

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
