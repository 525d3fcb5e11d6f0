"""``--method grid`` through the whole engine: eod, what-if and the partial liquidation give what
an ``eod`` re-run on the changed positions gives (the rule is margined by ``margin_book`` like
every method); the grid columns are reported; the scenario export refuses the method."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from riskmodel.cli import main
from riskmodel.demo import write_demo_inputs
from riskmodel.engine.grid import GRID_COLUMNS, GRID_POSITION_COLUMNS
from riskmodel.margin.tables import ATTRIBUTION_COLUMNS, MARGIN_COLUMNS
from riskmodel.whatif import load_run, what_if

KEY = ["account_id", "netting_set"]


def _eod(files, positions, out):
    rc = main(["eod", "--prices", str(files.prices), "--instruments", str(files.instruments),
               "--positions", str(positions), "--accounts", str(files.accounts),
               "--config", str(files.config), "--method", "grid", "--out", str(out),
               "--quiet"])
    assert rc == 0
    return pd.read_parquet(out / "margins.parquet").set_index(KEY)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("grid-run")
    files = write_demo_inputs(tmp / "inputs", n_accounts=40)
    return files, tmp, _eod(files, files.positions, tmp / "run")


def _rerun(files, tmp, rows: pd.DataFrame, name: str) -> pd.DataFrame:
    positions = pd.concat([pd.read_csv(files.positions, dtype=str, keep_default_na=False),
                           rows.astype(str)], ignore_index=True)
    positions.to_csv(tmp / f"{name}.csv", index=False)
    return _eod(files, tmp / f"{name}.csv", tmp / name)


def test_grid_columns_follow_the_tables(run):
    _, tmp, margins = run
    assert list(margins.reset_index().columns[:len(MARGIN_COLUMNS)]) == MARGIN_COLUMNS
    assert [c for c in margins.columns if c.startswith("grid_")] == GRID_COLUMNS
    attribution = pd.read_parquet(tmp / "run" / "attribution.parquet")
    assert list(attribution.columns) == ATTRIBUTION_COLUMNS + GRID_POSITION_COLUMNS
    # shares add up: the contributions to the rule's initial requirement (the model margin)
    sums = attribution.groupby(KEY)["contribution"].sum()
    np.testing.assert_allclose(sums, margins.loc[sums.index, "model_margin"], rtol=1e-9)
    held = margins["n_positions"] > 0
    assert (margins.loc[held, "grid_scenario"] != "").all()
    np.testing.assert_allclose(margins["var"], margins["es"])


def test_whatif_equals_rerun(run):
    files, tmp, before = run
    attribution = pd.read_parquet(tmp / "run" / "attribution.parquet")
    options = attribution[attribution["instrument_id"].str.contains(r"-[CP]\d+$", regex=True)]
    opt_set = options.iloc[0]
    trades = pd.DataFrame([
        ("ACC0000", "SPX", 10.0, ""),
        (opt_set["account_id"], opt_set["instrument_id"], -2.0 * opt_set["quantity"],
         opt_set["netting_set"]),
        ("ACC0003", "NQ", 1.0, ""),
    ], columns=["account_id", "instrument_id", "quantity", "netting_set"])
    result = what_if(load_run(tmp / "run"), trades).set_index(KEY)
    rerun = _rerun(files, tmp, trades, "whatif-rerun")
    expect = rerun.loc[result.index]
    for col in ("model_margin", "initial_margin", "maintenance_margin"):
        np.testing.assert_allclose(result[f"{col}_after"], expect[col], rtol=1e-9)
    assert (result["status_after"] == expect["status"]).all()
    assert (result["initial_margin_before"] == before.loc[result.index, "initial_margin"]).all()


def test_liquidation_orders_restore_what_a_rerun_confirms(run):
    files, tmp, before = run
    orders = pd.read_parquet(tmp / "run" / "liquidation_orders.parquet")
    assert len(orders) > 0
    reduce = orders.rename(columns={"quantity_to_close": "quantity"})
    reduce["quantity"] = -reduce["quantity"]
    rerun = _rerun(files, tmp, reduce[["account_id", "instrument_id", "quantity",
                                       "netting_set"]], "liquidated")
    last = orders.groupby(KEY).tail(1).set_index(KEY)
    np.testing.assert_allclose(rerun.loc[last.index, "initial_margin"], last["margin_after"],
                               rtol=1e-9)
    assert (last["equity_after"] >= last["margin_after"] * (1 - 1e-12)).all()
    assert (before.loc[last.index, "status"] == "liquidation").all()


def test_scenario_export_refuses_the_grid(run, capsys):
    files, tmp, _ = run
    rc = main(["scenarios", "--prices", str(files.prices), "--out",
               str(tmp / "grid-scenarios.parquet"), "--method", "grid", "--quiet"])
    assert rc == 2
    assert "no model scenario set" in capsys.readouterr().err


def test_the_rule_loads_the_prices_it_reads():
    from riskmodel.config import config_from_mapping
    from riskmodel.engine.build import book_factors

    used = pd.DataFrame({"instrument_id": ["BTC-PERP"], "kind": ["perpetual"],
                         "underlying": ["BTC"], "factor": ["BTC-PERP"]})
    assets = {"BTC", "BTC-PERP", "USDC", "ETH"}
    grid = config_from_mapping({"method": "grid", "grid": {"peg_asset": "USDC"}})
    assert book_factors(used, grid, assets, []) == ["BTC", "BTC-PERP", "USDC"]
    model = config_from_mapping({"grid": {"peg_asset": "USDC"}})
    assert book_factors(used, model, assets, []) == ["BTC-PERP"]
