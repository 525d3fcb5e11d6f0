"""Re-marking a stored priced market (riskmodel.engine.remark): the stored scenario shocks give
back the stored P&L; a factor repriced alone gives the rows of the whole matrix priced at the
same marks; the engine margins a view exactly as a market built afresh; a restore is bitwise."""

from __future__ import annotations

import dataclasses
import json
import shutil

import numpy as np
import pandas as pd
import pytest

from riskmodel.engine import ModelPnl, PricedMarket, margin_book
from riskmodel.engine.remark import RemarkedMarket
from riskmodel.engine.store import read_run
from riskmodel.errors import InputDataError
from riskmodel.portfolio.netting import net_positions
from riskmodel.pricing.revaluation import scenario_pnl


@pytest.fixture(scope="module")
def run(demo_run):
    return demo_run.load()


def _moved(run) -> RemarkedMarket:
    market = RemarkedMarket(run.market, run.config)
    for name, x in (("SPX", 0.93), ("VIX", 1.4), ("WTI", 1.05), ("NASDAQ", 0.9)):
        k = market.factor_index[name]
        market.set_mark(k, market.spot[k] * x)
        market.follow(k)
    return market


def test_shocks_are_stored_with_the_run(demo_run, run):
    meta = json.loads((demo_run.folder / "state" / "state.json").read_text())
    assert set(meta["shocks"]) == {str(h) for h in run.market.horizons}
    for h, shocks in run.market.shocks.items():
        assert shocks.model.shocks.shape == (run.market.model[h].pnl.shape[1],
                                             len(shocks.model.factors))
        assert [s.n_scenarios for s in shocks.stress] == [
            b.stop - b.start for b in run.market.stress[h].blocks]


def test_stored_shocks_give_the_stored_pnl(run):
    market = RemarkedMarket(run.market, run.config)
    for k in range(len(market.factors)):
        market.follow(k)  # at the run's own marks
    for h in run.market.horizons:
        assert np.array_equal(market.rows[h].model, run.market.model[h].pnl)
        assert np.array_equal(market.rows[h].stress, run.market.stress[h].pnl)


def test_a_factor_repriced_alone_is_the_whole_matrix(run):
    market = _moved(run)
    view = market.view()
    spot = pd.Series(market.spot, index=market.factors)
    for h in run.market.horizons:
        whole = scenario_pnl(view.instruments, run.market.shocks[h].model, spot,
                             market.return_kinds, run.market.valuation_time,
                             run.config.implied_vol)
        assert np.array_equal(whole, market.rows[h].model)


def test_the_engine_margins_a_view_as_a_fresh_market(run):
    market = _moved(run)
    view = market.view()
    fresh = PricedMarket(view.instruments, view.factors, view.valuation_time,
                         {h: ModelPnl(m.pnl.copy(), m.weights) for h, m in view.model.items()},
                         {h: dataclasses.replace(s, pnl=s.pnl.copy())
                          for h, s in view.stress.items()}, {}, view.unpriced)
    book = net_positions(run.positions, run.axis)
    equity = run.collateral.of_sets(book.sets)
    kwargs = {"collateral": equity, "account_types": run.collateral.account_types}
    a = margin_book(view, book, run.config, **kwargs)
    b = margin_book(fresh, book, run.config, **kwargs)
    c = margin_book(market.at_marks(np.arange(market.n_instruments)), book, run.config,
                    **kwargs)
    for other in (b, c):
        pd.testing.assert_frame_equal(a.margins, other.margins, check_exact=True)
        pd.testing.assert_frame_equal(a.attribution, other.attribution, check_exact=True)


def test_restore_is_bitwise(run):
    market = _moved(run)
    again = RemarkedMarket(run.market, run.config)
    again.restore(market.state())
    for h in run.market.horizons:
        for name in ("model", "stress", "grid"):
            assert np.array_equal(getattr(again.rows[h], name), getattr(market.rows[h], name))
    assert np.array_equal(again.unit_r, market.unit_r)


def test_a_run_without_shocks_cannot_be_remarked(demo_run, run, tmp_path):
    old = tmp_path / "old"
    shutil.copytree(demo_run.folder, old)
    meta = json.loads((old / "state" / "state.json").read_text())
    del meta["shocks"]
    (old / "state" / "state.json").write_text(json.dumps(meta))
    with pytest.raises(InputDataError, match="no scenario shocks"):
        RemarkedMarket(read_run(old).market, run.config)


def test_pnl_that_the_shocks_do_not_give_is_refused(run):
    h = run.market.horizons[0]
    pnl = run.market.model[h].pnl.copy()
    pnl[0] *= 1.01
    market = dataclasses.replace(run.market, model={**run.market.model,
                                                    h: ModelPnl(pnl, None)}, _cache={})
    with pytest.raises(InputDataError, match="cannot be re-marked"):
        RemarkedMarket(market, run.config)


def _afresh(run, spot, rows):
    """``rows`` priced at the marks ``spot`` by a market that follows no mark (no reuse but
    of the run's own rows, where a mark is the end-of-day one)."""
    fresh = RemarkedMarket(run.market, run.config)
    fresh.spot = spot.copy()
    return fresh.at_marks(rows)


def _assert_same_rows(got, expected):
    for h in expected.horizons:
        assert np.array_equal(got.model[h].pnl, expected.model[h].pnl)
        assert np.array_equal(got.stress[h].pnl, expected.stress[h].pnl)
        if h in expected.floor:
            assert np.array_equal(got.floor[h].pnl, expected.floor[h].pnl)


def test_rows_priced_before_are_reused_only_while_their_marks_stand(run):
    market = _moved(run)
    every = np.arange(market.n_instruments)
    market.at_marks(every)  # fills the reuse
    k = market.factor_index["SPX"]
    market.set_mark(k, market.spot[k] * 1.02)
    _assert_same_rows(market.at_marks(every), _afresh(run, market.spot, every))


def test_requirement_rows_at_the_current_marks_are_those_at_marks_prices(run):
    # SPX, VIX and NASDAQ followed their prices: their rows (the SPX options' vol index
    # included) are taken from the requirement marks; WTI moved on since, its rows are priced
    market = _moved(run)
    every = np.arange(market.n_instruments)
    wti = market.factor_index["WTI"]
    market.set_mark(wti, market.spot[wti] * 0.97)
    agree = market.rmark[market.factor_of] == market.spot[market.factor_of]
    assert agree.any() and (~agree).any()
    _assert_same_rows(market.at_marks(every), _afresh(run, market.spot, every))


def test_a_factor_never_moved_keeps_the_runs_own_rows(run):
    # NASDAQ stays at its end-of-day mark: its rows at the marks are the run's stored ones
    # (the requirement rows), while SPX's, moved and followed, are priced there
    market = RemarkedMarket(run.market, run.config)
    spx, nasdaq = market.factor_index["SPX"], market.factor_index["NASDAQ"]
    market.set_mark(spx, market.spot[spx] * 0.95)
    market.follow(spx)
    every = np.arange(market.n_instruments)
    got = market.at_marks(every)
    still = market.factor_of == nasdaq
    assert still.any()
    spot = market.spot.copy()
    spot[nasdaq] = np.nextafter(spot[nasdaq], np.inf)  # no reuse of the run's rows
    priced = _afresh(run, spot, every)
    for h in run.market.horizons:
        assert np.array_equal(got.model[h].pnl[still], run.market.model[h].pnl[still])
        # and the run's rows are those pricing gives at the marks, to rounding
        np.testing.assert_allclose(priced.model[h].pnl[still], got.model[h].pnl[still],
                                   rtol=1e-9, atol=1e-9 * np.abs(got.model[h].pnl).max())
        assert np.array_equal(got.model[h].pnl[~still], priced.model[h].pnl[~still])
