"""What must hold in every scenario of a real book (the demo venue: futures, perpetuals, an
inverse perpetual, options, stress windows): the loss is allocated exactly, a flat account
never pays, no counterparty loses more than its profit, and a larger fund never increases ADL.
"""

import dataclasses

import numba
import numpy as np
import pytest
from waterfall_venues import DEMO_MOVES, write_moves

from riskmodel.waterfall.allocation import allocate
from riskmodel.waterfall.book import load_book
from riskmodel.waterfall.rounds import ScenarioRunner
from riskmodel.waterfall.run import run_waterfall
from riskmodel.waterfall.scenarios import file_scenarios, universe_of

FUNDS = (0.0, 1e4, 1e5, 1e6, 1e7, 1e9)


@pytest.fixture(scope="module")
def outcomes(demo_run, tmp_path_factory):
    """The demo's scenarios (the file's and the map's largest moves), no cascade and with."""
    moves = write_moves(tmp_path_factory.mktemp("moves") / "moves.csv", DEMO_MOVES)
    book = load_book(demo_run)
    scenarios = file_scenarios(moves, universe_of(book.view.market,
                                                  book.map_book.underlyings()))
    threads = numba.get_num_threads()
    numba.set_num_threads(1)
    try:
        out = [ScenarioRunner(book, cascade).run(s) for cascade in (False, True)
               for s in scenarios]
    finally:
        numba.set_num_threads(threads)
    return book, out


def test_conservation_in_every_scenario(outcomes):
    book, runs = outcomes
    assert max(float(o.state.bankrupt.sum()) for o in runs) > 0
    for o in runs:
        for fund in FUNDS:
            a = allocate(book, o, fund=fund)
            paid = a.fund_used + a.adl_amount + a.socialised + a.uncovered
            assert paid == pytest.approx(a.bankruptcy_loss, abs=1e-9 * max(1.0, paid))
            assert min(a.fund_used, a.adl_amount, a.socialised, a.uncovered) >= 0.0


def test_a_flat_account_never_pays(outcomes):
    book, runs = outcomes
    flat = np.flatnonzero(np.bincount(book.set_of, book.tradeable, minlength=book.n_sets)
                          == 0)
    assert "FLAT" in set(book.account_id[flat])
    for o in runs:
        a = allocate(book, o)
        assert not set(a.adl["account_id"]) & set(book.account_id[flat])
        assert np.all(a.socialised_by_set[flat] == 0.0)
        assert np.all(o.state.bankrupt[flat] == 0.0)


def test_no_counterparty_loses_more_than_its_profit(outcomes):
    book, runs = outcomes
    hit = 0
    for o in runs:
        a = allocate(book, o)
        keys = list(zip(book.account_id, book.netting_set))
        taken = a.adl.groupby(["account_id", "netting_set"])["loss_taken"].sum()
        adl = np.array([taken.get(k, 0.0) for k in keys])
        paid = adl + a.socialised_by_set
        assert np.all(paid <= np.maximum(a.profit, 0.0) * (1 + 1e-12) + 1e-9)
        assert np.all(a.adl["loss_taken"] <= a.adl["profit"] * (1 + 1e-12) + 1e-9)
        assert np.all(np.abs(a.adl["amount_reduced"]) <= np.abs(a.adl["position"]) + 1e-9)
        assert np.all(np.sign(a.adl["amount_reduced"]) == np.sign(a.adl["position"]))
        hit += len(a.adl)
    assert hit > 0


def test_a_larger_fund_never_increases_adl(outcomes):
    book, runs = outcomes
    for o in runs:
        adl = [allocate(book, o, fund=f).adl_amount for f in FUNDS]
        assert all(b <= a + 1e-9 for a, b in zip(adl, adl[1:]))
    assert any(allocate(book, o, fund=0.0).adl_amount > 0 for o in runs)


def test_the_twin_allocates_as_the_kernel(outcomes):
    book, runs = outcomes
    for o in runs:
        k, t = allocate(book, o), allocate(book, o, twin=True)
        assert t.adl_amount == pytest.approx(k.adl_amount, rel=1e-12, abs=1e-9)
        np.testing.assert_allclose(t.adl["loss_taken"], k.adl["loss_taken"], rtol=1e-12,
                                   atol=1e-9)


def test_same_seedless_inputs_same_outputs_whatever_the_workers(hand_run, tmp_path):
    """The scenarios spread over two processes give the tables of one pass."""
    moves = write_moves(tmp_path / "moves.csv", {"crash": {"X": -0.5}, "up": {"X": 0.3}})
    book = load_book(hand_run)
    one = run_waterfall(hand_run, scenarios_file=moves)
    two = run_waterfall(hand_run, scenarios_file=moves,
                        waterfall=dataclasses.replace(book.wcfg, workers=2))
    assert two.facts["workers"] == 2
    for a, b in ((one.waterfall, two.waterfall), (one.adl, two.adl), (one.cover, two.cover)):
        assert a.equals(b)
    assert one.facts["cover"] == two.facts["cover"]
