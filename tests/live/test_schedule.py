"""The refresh queue's first page is the head of the whole order (reference: ``np.lexsort`` of
every due set, the order before pages)."""

from __future__ import annotations

import numpy as np
import pytest

from riskmodel.live.schedule import first_in_order


@pytest.mark.parametrize("seed", range(6))
def test_first_in_order_is_the_head_of_the_full_sort(seed):
    rng = np.random.default_rng(seed)
    for _ in range(40):
        n, m = int(rng.integers(0, 2000)), int(rng.integers(1, 300))
        # ties in both keys (levels of sets in liquidation are all inf in the first), infinities
        key = rng.choice([0.5, 1.0, 2.0, np.inf, -np.inf], n) if seed % 2 else rng.normal(size=n)
        key[rng.random(n) < 0.3] = np.inf
        second = rng.choice([1.0, -2.0, np.inf], n) if seed % 3 else rng.normal(size=n)
        np.testing.assert_array_equal(first_in_order(key, second, m),
                                      np.lexsort((second, key))[:m])


def test_a_breach_that_heals_before_the_batch_is_published_as_exact_publishes_it(demo_run):
    """A set pushed below its maintenance margin and back before the next order batch (two
    transfers, one second apart): ``--exact`` puts it in liquidation; the default mode too, at
    once, on the requirements in force (here the exact ones: no price moved), and it leaves
    liquidation only when the batch's exact marks show it healed; neither sends orders."""
    import pandas as pd

    from riskmodel.live import LiveMargin, events_frame
    from riskmodel.live.compare import liquidations_found

    run = demo_run.load()
    start = pd.read_parquet(run.run_dir / "margins.parquet").set_index(["account_id",
                                                                       "netting_set"])
    ok = start[(start["status"] == "ok") & (start["maintenance_margin"] > 0)].index
    account = next(a for a, s in ok if s == "default")
    row = start.loc[(account, "default")]
    gap = float(row["equity"] - 0.99 * row["maintenance_margin"])
    t0 = pd.Timestamp(run.market.valuation_time).tz_localize("UTC") + pd.Timedelta(hours=15)
    frames = {}
    for exact in (True, False):
        live = LiveMargin(run, exact=exact)
        events = live.on_transfer(t0, account, -gap)
        assert any(e.event == "status_change" and e.status_after == "liquidation"
                   for e in events), exact
        healed = live.on_transfer(t0 + pd.Timedelta(seconds=1), account, gap)
        # --exact lifts it at once; the default waits for the batch's exact marks (the flush)
        assert any(e.status_before == "liquidation" for e in healed) == exact
        frames[exact] = events_frame(events + healed + live.flush())
    found = liquidations_found(frames[True], frames[False], start["status"])
    assert len(found) == 1 and found["lag_s"].iat[0] == 0.0
    for frame in frames.values():
        mine = frame[frame["account_id"] == account]
        assert not (mine["event"] == "liquidation_orders").any()
        assert mine["status_after"].iat[-1] != "liquidation"
