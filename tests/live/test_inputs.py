"""Bad inputs are refused with an event naming them and the row, and the stream goes on; price
jumps are held until confirmed; silent assets are reported; files, JSON lines and the merge."""

from __future__ import annotations

import io
import json

import pandas as pd
import pytest

from riskmodel.config import LiveConfig
from riskmodel.errors import InputDataError
from riskmodel.live import LiveMargin, events_frame
from riskmodel.live.inputs import StdinRecords, apply, file_records, merged


@pytest.fixture(scope="module")
def run(demo_run):
    return demo_run.load()


@pytest.fixture
def t0(run):
    return pd.Timestamp(run.market.valuation_time).tz_localize("UTC") + pd.Timedelta(hours=15)


def _refused(events) -> list[str]:
    return [e.detail for e in events if e.event == "refused"]


def test_refusals_name_the_input_and_the_stream_goes_on(run, t0):
    live = LiveMargin(run)
    spx = float(run.market.spot["SPX"])
    cases = [
        (live.on_tick, (t0, "XYZ", 100.0), "asset = 'XYZ'"),
        (live.on_tick, (t0, "SPX", float("nan")), "price = nan"),
        (live.on_tick, (t0, "SPX", -5.0), "price = -5.0"),
        (live.on_tick, (t0, "SPX", "abc"), "price = 'abc'"),
        (live.on_tick, ("not a time", "SPX", spx), "time = 'not a time'"),
        (live.on_trade, (t0, "ACC0001", "NOPE", 1.0), "instrument_id = 'NOPE'"),
        (live.on_trade, (t0, "NOBODY", "ES", 1.0), "account_id = 'NOBODY'"),
        (live.on_trade, (t0, "ACC0001", "ES", float("inf")), "quantity = inf"),
        (live.on_transfer, (t0, "NOBODY", 10.0), "account_id = 'NOBODY'"),
        (live.on_transfer, (t0, "ACC0001", None), "amount = None"),
        (live.on_funding, (t0, "ES", 0.001), "instrument_id = 'ES'"),
    ]
    for n, (method, values, expected) in enumerate(cases):
        details = _refused(method(*values, source=f"input {n}"))
        assert len(details) == 1 and details[0].startswith(f"input {n}: ")
        assert expected in details[0], details[0]
    # WTI has absolute returns: a negative price is a price
    assert not _refused(live.on_tick(t0, "WTI", -1.5))
    assert not _refused(live.on_tick(t0 + pd.Timedelta(seconds=1), "SPX", spx * 1.001))
    back = _refused(live.on_tick(t0, "SPX", spx))
    assert len(back) == 1 and "goes backwards" in back[0]
    assert live.market.spot[live.market.factor_index["SPX"]] == spx * 1.001


def test_jumps_are_held_until_confirmed(run, t0):
    live = LiveMargin(run, live=LiveConfig(max_jump=0.2))
    k = live.market.factor_index["SPX"]
    spx = float(live.market.spot[k])
    kinds = [e.event for e in live.on_tick(t0, "SPX", spx * 1.5)]
    assert kinds == ["price_jump"] and live.market.spot[k] == spx  # held, not applied
    kinds = [e.event for e in live.on_tick(t0, "SPX", spx * 1.45)]
    assert "price_jump_confirmed" in kinds and live.market.spot[k] == spx * 1.45
    kinds = [e.event for e in live.on_tick(t0, "SPX", spx * 0.5)]
    assert kinds == ["price_jump"]
    kinds = [e.event for e in live.on_tick(t0, "SPX", spx * 1.46)]  # back near the last one
    assert "price_jump_discarded" in kinds and live.market.spot[k] == spx * 1.46


def test_silent_assets_are_reported_once(run, t0):
    live = LiveMargin(run, live=LiveConfig(stale_after=60.0))
    spx = float(run.market.spot["SPX"])
    events = []
    for s in range(0, 200, 10):
        events += live.on_tick(t0 + pd.Timedelta(seconds=s), "SPX", spx)
    stale = [e.detail.split(":")[0] for e in events if e.event == "stale_price"]
    assert sorted(stale) == sorted(set(run.market.factors["factor"]) - {"SPX"})


def test_file_rows_are_named_and_merged_in_time_order(run, t0, tmp_path):
    ticks = pd.DataFrame({"time": [t0, t0 + pd.Timedelta(seconds=2), t0 + pd.Timedelta(seconds=1)],
                          "asset": ["SPX", "XYZ", "SPX"],
                          "price": [float(run.market.spot["SPX"])] * 3})
    ticks["time"] = ticks["time"].astype(str)
    ticks.to_csv(tmp_path / "ticks.csv", index=False)
    pd.DataFrame({"time": [str(t0 + pd.Timedelta(seconds=1))], "account_id": ["NOBODY"],
                  "amount": [5.0]}).to_parquet(tmp_path / "transfers.parquet")
    stream = list(merged([file_records(tmp_path / "ticks.csv", "tick"),
                          file_records(tmp_path / "transfers.parquet", "transfer")]))
    assert [r.kind for r in stream] == ["tick", "transfer", "tick", "tick"]
    live = LiveMargin(run)
    details = [d for r in stream for d in _refused(apply(live, r))]
    assert any(d.startswith(f"{tmp_path / 'transfers.parquet'} row 1: account_id") for d in details)
    assert any(d.startswith(f"{tmp_path / 'ticks.csv'} line 3: asset = 'XYZ'") for d in details)
    # the row that goes back in time keeps its place and is refused
    assert any(d.startswith(f"{tmp_path / 'ticks.csv'} line 4: time") for d in details)


def test_missing_column_is_an_input_error(tmp_path):
    pd.DataFrame({"time": ["2020-01-01"], "asset": ["SPX"]}).to_csv(tmp_path / "t.csv",
                                                                   index=False)
    with pytest.raises(InputDataError, match="price"):
        list(file_records(tmp_path / "t.csv", "tick"))


def test_json_lines_carry_their_kind(run, t0):
    spx = float(run.market.spot["SPX"])
    lines = "\n".join([
        json.dumps({"time": str(t0), "asset": "SPX", "price": spx}),
        "{not json",
        json.dumps({"type": "transfer", "time": str(t0), "account_id": "ACC0001",
                    "amount": 100.0}),
        json.dumps({"type": "nonsense", "time": str(t0)}),
    ]) + "\n"
    reader = StdinRecords(io.StringIO(lines), "tick")
    live = LiveMargin(run)
    events = events_frame([e for r in merged([reader]) for e in apply(live, r)])
    refused = events.loc[events["event"] == "refused", "detail"].tolist()
    assert [d.split(":")[0] for d in refused] == ["stdin line 2", "stdin line 4"]
    assert live.ledger.cash[live.book.index[("ACC0001", "default")]] == pytest.approx(
        float(run.collateral.of_sets(pd.DataFrame({"account_id": ["ACC0001"],
                                                   "netting_set": ["default"]}))[0]) + 100.0)
    assert reader.digest.hexdigest()
