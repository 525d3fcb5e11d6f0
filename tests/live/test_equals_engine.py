"""After the final flush the default mode's state equals ``--exact``'s and an ``eod`` re-run at
the final marks; every set ``--exact`` puts in liquidation the default has in liquidation then
or later.

The reference is outside the live code: ``riskmodel eod`` on the demo's price history scaled
(log-return factors) or shifted (WTI, absolute returns) so that it ends at the final marks,
which leaves every return, hence the historical scenario set, the stress windows and their
proxies unchanged while the prices are the marks; the options' implied vols scaled by the VIX
ratio (the sticky-strike rule of the README); the positions and the equity of each set as the
loop ends with them. The book holds linear, inverse and option positions.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from streams import feed, intraday

from riskmodel.live import LiveMargin, events_frame
from riskmodel.live.compare import liquidations_found
from riskmodel.margin.tables import MARGIN_COLUMNS

KEY = ["account_id", "netting_set"]


@pytest.fixture(scope="module")
def replays(demo_run):
    run = demo_run.load()
    rows = intraday(run)
    out = {}
    for exact in (False, True):
        live = LiveMargin(run, exact=exact)
        events = events_frame(feed(live, rows))
        out[exact] = (live, events)
    return run, rows, out


def _assert_tables_equal(a: pd.DataFrame, b: pd.DataFrame, columns: list[str]) -> None:
    a, b = a.set_index(KEY).sort_index(), b.set_index(KEY).sort_index()
    assert list(a.index) == list(b.index)
    for c in columns:
        if c in KEY:
            continue
        x, y = a[c].to_numpy(), b[c].to_numpy()
        if x.dtype.kind == "f" or y.dtype.kind == "f":
            x, y = x.astype(np.float64), y.astype(np.float64)
            with np.errstate(invalid="ignore"):  # inf - inf: the equal infinities pass
                same = (x == y) | (np.abs(x - y) <= 1e-9 * np.maximum(np.abs(x), np.abs(y)))
            assert same.all(), (c, a.index[~same][:3].tolist(), x[~same][:3], y[~same][:3])
        else:
            assert (x.astype(str) == y.astype(str)).all(), c


def test_book_has_every_kind(replays):
    run, _, _ = replays
    kinds = set(run.market.instruments.loc[run.positions["instrument_id"], "kind"])
    assert {"future", "perpetual", "inverse_perpetual", "option", "spot"} <= kinds


def test_default_equals_exact_after_flush(replays):
    _, _, out = replays
    default, exact = out[False][0].snapshot(), out[True][0].snapshot()
    _assert_tables_equal(default, exact, MARGIN_COLUMNS)


def test_equals_eod_rerun_at_final_marks(replays, demo_run, run_eod, tmp_path):
    run, _, out = replays
    live = out[False][0]
    files = demo_run.files
    marks = dict(zip(live.market.factors, live.market.spot))
    prices = pd.read_csv(files.prices, index_col=0)
    last = prices.ffill().iloc[-1]
    for name, mark in marks.items():
        if name == "WTI":  # absolute returns: a shifted history has the same differences
            prices[name] = prices[name] + (mark - last[name])
        else:
            prices[name] = prices[name] * (mark / last[name])
    prices.to_csv(tmp_path / "prices.csv", float_format="%.17g")
    instruments = pd.read_csv(files.instruments)
    spx_options = instruments["kind"].eq("option") & instruments["underlying"].eq("SPX")
    instruments.loc[spx_options, "implied_vol"] *= marks["VIX"] / last["VIX"]
    instruments.to_csv(tmp_path / "instruments.csv", index=False, float_format="%.17g")
    snap = live.snapshot()
    book, _ = live.book.book(live.open_sets())
    held = book.positions[["account_id", "netting_set", "instrument_id", "quantity"]]
    held.to_csv(tmp_path / "positions.csv", index=False, float_format="%.17g")
    accounts = snap[KEY + ["equity"]].rename(columns={"equity": "collateral"})
    accounts.to_csv(tmp_path / "accounts.csv", index=False, float_format="%.17g")
    run_eod(files, tmp_path / "rerun", prices=tmp_path / "prices.csv",
            instruments=tmp_path / "instruments.csv", positions=tmp_path / "positions.csv",
            accounts=tmp_path / "accounts.csv")
    rerun = pd.read_parquet(tmp_path / "rerun" / "margins.parquet")
    _assert_tables_equal(snap, rerun[MARGIN_COLUMNS], MARGIN_COLUMNS)


def test_every_exact_liquidation_is_found(replays):
    """Each entry of ``--exact`` into liquidation finds the set in liquidation in the default
    mode at that time or later (liquidations_found, checked here against a plain scan)."""
    run, _, out = replays
    start = pd.read_parquet(run.run_dir / "margins.parquet").set_index(KEY)["status"]
    found = liquidations_found(out[True][1], out[False][1], start)
    assert len(found) > 0
    assert found["found"].notna().all(), found[found["found"].isna()]
    # the same answer from a plain scan of the default's statuses
    default = out[False][1]
    changes = default[default["event"] == "status_change"]
    for row in found.itertuples():
        mine = changes[(changes["account_id"] == row.account_id)
                       & (changes["netting_set"] == row.netting_set)]
        before = mine[mine["time"] <= row.entered]
        status = (before["status_after"].iat[-1] if len(before)
                  else start[(row.account_id, row.netting_set)])
        later = mine[(mine["time"] > row.entered) & (mine["status_after"] == "liquidation")]
        expected = row.entered if status == "liquidation" else later["time"].iat[0]
        assert row.found == expected


def test_orders_are_the_lockstep_liquidations(replays):
    """The loop's orders (the compiled search from one set, ``orders.COMPILED_FROM``) are bit
    for bit what ``partial_liquidation``'s lockstep path through ``margin_book`` gives for the
    same sets at the same marks (after the flush the requirement marks are the marks)."""
    from riskmodel.engine import margin_book
    from riskmodel.liquidation.partial import partial_liquidation
    from riskmodel.live.orders import issue_orders

    _, _, out = replays
    live = out[False][0]
    sets = live.open_sets()
    market = live.view_market()
    book, _ = live.book.book(sets)
    tables = margin_book(market, book, live.config, collateral=live.ledger.equity[sets],
                         previous=live.previous[sets], account_types=live.account_types)
    margins = tables.margins[tables.margins["status"].isin(live.liquidated)]
    assert len(margins) > 1
    previous = live.run.stored.previous
    orders, per_set = issue_orders(market, live.config, margins, tables.attribution, previous,
                                   live.account_types)
    policy = live.config.liquidation
    lockstep = partial_liquidation(
        market, live.config, margins, tables.attribution, previous=previous,
        account_types=live.account_types, target=policy.target_margin_level,
        include_margin_call=policy.include_margin_call, penalty=policy.penalty_rates,
        compiled_min_sets=10**9)
    assert len(orders) > 0
    pd.testing.assert_frame_equal(orders, lockstep.orders, check_exact=True)
    pd.testing.assert_frame_equal(per_set, lockstep.sets, check_exact=True)
