"""The end-of-day page's aggregates on books small enough to work out by hand."""

import json

import numpy as np
import pandas as pd
import pytest

from riskmodel.config.rates import RateTable
from riskmodel.report import eod_data as data
from riskmodel.report.eod_changes import compare_previous


def _margins(rows):
    cols = ["account_id", "netting_set", "n_positions", "gross_notional", "model_margin",
            "addons", "initial_margin", "maintenance_floor", "maintenance_margin",
            "flat_rate_margin", "equity", "margin_level", "status", "call_amount",
            "stress_loss", "stress_scenario"]
    return pd.DataFrame(rows, columns=cols)


@pytest.fixture
def book(tmp_path):
    """Set A holds X (future on U, notional 100) and Y (future on V, 300); set B holds Z (spot
    on U, 200). Flat rates: 10%, V 20%."""
    margins = _margins([
        ["A", "default", 2, 400.0, 45.0, 0.0, 50.0, 4.0, 37.5, 70.0, 60.0, 1.6, "warning", 0.0,
         70.0, "grid"],
        ["B", "default", 1, 200.0, 8.0, 0.0, 8.0, 2.0, 6.0, 20.0, 4.0, 0.667, "liquidation",
         4.0, 5.0, "w:1"],
    ])
    attribution = pd.DataFrame({
        "account_id": ["A", "A", "B"], "netting_set": ["default"] * 3,
        "instrument_id": ["X", "Y", "Z"], "quantity": [1.0, 3.0, 2.0],
        "notional": [100.0, 300.0, 200.0], "contribution": [-5.0, 50.0, 8.0]})
    path = tmp_path / "attribution.parquet"
    attribution.to_parquet(path)
    instruments = pd.DataFrame({"instrument_id": ["X", "Y", "Z"],
                                "kind": ["future", "future", "spot"],
                                "underlying": ["U", "V", "U"]})
    return margins, path, instruments


def test_margin_is_allocated_by_flat_rate_margin(book):
    margins, path, instruments = book
    pos = data.read_positions(path, margins)
    by_und, by_kind = data.exposure_tables(pos, margins, instruments,
                                           RateTable(default=0.1, underlying={"V": 0.2}))
    # flat: X 10, Y 60, Z 20; A's 50 shared 10:60 -> X 7.142857, Y 42.857143; B's 8 to Z
    und = by_und.set_index("group")
    assert und.loc["U", "initial_margin"] == pytest.approx(50 * 10 / 70 + 8)
    assert und.loc["V", "initial_margin"] == pytest.approx(50 * 60 / 70)
    assert und.loc["U", "flat_rate_margin"] == pytest.approx(30.0)
    assert und.loc["V", "gross_notional"] == pytest.approx(300.0)
    assert und.loc["total", "initial_margin"] == pytest.approx(58.0)
    kind = by_kind.set_index("group")
    assert kind.loc["future", "initial_margin"] == pytest.approx(50.0)
    assert kind.loc["spot", "im_over_flat"] == pytest.approx(8 / 20)
    assert kind.loc["future", "im_over_gross"] == pytest.approx(50 / 400)
    assert list(by_und["group"]) == ["V", "U", "total"]  # largest margin first


def test_status_table_tops_and_stress(book):
    margins, path, _ = book
    codes = data.status_codes(margins)
    status = data.status_table(margins, codes).set_index("status")
    assert status.loc["warning", "sets"] == 1 and status.loc["liquidation", "sets"] == 1
    assert status.loc["total", "initial_margin"] == 58.0
    assert status.loc["total", "im_over_flat"] == pytest.approx(58 / 90)
    assert status.loc["ok", "sets"] == 0
    # nearest liquidation: B is in liquidation already, so A
    assert list(data.nearest_liquidation(margins, codes)["account_id"]) == ["A"]
    assert list(data.largest_calls(margins)["account_id"]) == ["B"]
    top = data.top_contributors(data.read_positions(path, margins), margins, k=2)
    assert list(top["instrument_id"]) == ["Y", "Z"]
    assert list(top["set_model_margin"]) == [45.0, 8.0]
    stress = data.stress_table(margins).set_index("scenario")
    assert stress.loc["grid", "above_im"] == 1 and stress.loc["w:1", "above_im"] == 0


def test_positions_out_of_set_order_are_refused(book, tmp_path):
    margins, path, _ = book
    swapped = pd.read_parquet(path).iloc[[2, 0, 1]]
    swapped.to_parquet(tmp_path / "bad.parquet")
    with pytest.raises(ValueError, match="set order"):
        data.read_positions(tmp_path / "bad.parquet", margins)
    with pytest.raises(ValueError, match="positions"):
        data.read_positions(path, margins.assign(n_positions=[2, 2]))


def _run_folder(folder, margins, attribution, factors, date):
    folder.mkdir()
    margins.to_parquet(folder / "margins.parquet")
    attribution.to_parquet(folder / "attribution.parquet")
    factors.to_csv(folder / "factors.csv", index=False)
    (folder / "manifest.json").write_text(json.dumps({"market_date": date}))


def test_changes_since_the_previous_run_split_by_hand(tmp_path):
    """a: same position, gross 1000 -> 1100, IM 100 -> 120: prices 100 x 0.1 = 10, volatility
    the other 10; b: quantity 5 -> 6, IM 50 -> 80: positions +30; c closed (-30); d new (+40).
    Positions 30 + 40 - 30 = 40, prices 10, volatility 10: the change 240 - 180 = 60."""
    cols = ["account_id", "netting_set", "n_positions", "gross_notional", "initial_margin",
            "status"]
    prev = pd.DataFrame([["a", "default", 1, 1000.0, 100.0, "ok"],
                         ["b", "default", 1, 500.0, 50.0, "ok"],
                         ["c", "default", 1, 300.0, 30.0, "warning"]], columns=cols)
    prev_attr = pd.DataFrame({"account_id": ["a", "b", "c"], "netting_set": ["default"] * 3,
                              "instrument_id": ["X", "Y", "X"], "quantity": [10.0, 5.0, 3.0]})
    factors = pd.DataFrame({"asset": ["P"], "price": [100.0], "vol_model": ["ewma"],
                            "sigma_1d": [0.01]})
    _run_folder(tmp_path / "prev", prev, prev_attr, factors, "2024-01-02T00:00:00")
    today = pd.DataFrame([["a", "default", 1, 1100.0, 120.0, "ok"],
                          ["b", "default", 1, 600.0, 80.0, "margin_call"],
                          ["d", "default", 1, 400.0, 40.0, "ok"]], columns=cols)
    positions = data.Positions(np.arange(3), np.array([0, 1, 0]), np.array(["X", "Y"], object),
                               np.array([1100.0, 600.0, 400.0]), np.zeros(3),
                               np.array([10.0, 6.0, 4.0]))
    now_factors = factors.assign(price=[110.0], sigma_1d=[0.012])
    changes = compare_previous(tmp_path / "prev", today, positions, now_factors, {"P": "log"})
    assert changes.initial_margin == (180.0, 240.0)
    assert changes.split["change"].tolist() == pytest.approx([40.0, 10.0, 10.0])
    assert changes.split["sets"].tolist() == [3, 1, 1]
    assert changes.market_date.startswith("2024-01-02")
    m = changes.migration
    assert m.loc["ok", "ok"] == 1 and m.loc["ok", "margin_call"] == 1
    assert m.loc["warning", "closed"] == 1 and m.loc["new", "ok"] == 1
    assert int(m.to_numpy().sum()) == 4
    f = changes.factors.set_index("asset")
    assert f.loc["P", "price_change"] == pytest.approx(0.10)
    assert f.loc["P", "sigma_change"] == pytest.approx(0.20)
    movers = changes.movers.set_index("account_id")
    assert movers.loc["d", "reason"] == "new set" and movers.loc["b", "reason"] == \
        "positions changed" and movers.loc["a", "reason"] == "market"
    assert list(changes.movers["account_id"])[0] == "d"  # the largest move, +40
