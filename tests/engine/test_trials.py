"""The compiled trial margin (``riskmodel.engine.trials``) is the engine's: for many books of
reduced positions, under several configurations, ``trial_margins`` gives the very bits that
``margin_book(..., detail="initial_margin")`` gives for the reduced book (netted again with
``net_positions``), with and without the loss of the other positions reused."""

import dataclasses

import numpy as np
import pytest

from riskmodel.batch.eod import EodInputs, run_eod
from riskmodel.config import RateTable, load_config
from riskmodel.demo import write_demo_inputs
from riskmodel.engine import margin_book
from riskmodel.engine.trials import trial_inputs, trial_margins, unsupported
from riskmodel.portfolio.netting import net_positions


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    root = tmp_path_factory.mktemp("trials")
    files = write_demo_inputs(root / "in", n_accounts=40)
    inputs = EodInputs(files.prices, files.instruments, files.positions, files.accounts)
    # 1,500 historical days: more than 1,024 scenarios, so the tails use blocked thresholds and
    # the trial margins the screen of the other positions' loss
    return inputs, load_config(files.config, {"method": "hs", "lookback": 1500})


def _variant(config, name):
    apc = config.anti_procyclicality
    if name == "apc":  # the floor's longer window binds, the buffer against a previous run
        return dataclasses.replace(config, lookback=600, anti_procyclicality=dataclasses.replace(
            apc, tools=("floor", "buffer")))
    if name == "stress max, var":
        return dataclasses.replace(config, measure="var", stress=dataclasses.replace(
            config.stress, mode="max", weight=0.8))
    if name == "blend, floors":
        return dataclasses.replace(
            config, stress=dataclasses.replace(config.stress, mode="blend", weight=0.3),
            margin=dataclasses.replace(config.margin, min_initial_margin=2_000.0,
                                       initial_floor_rates=RateTable(0.02, {"option": 0.05})))
    if name == "account types":  # some accounts' sets move to the two-day horizon
        return dataclasses.replace(config, horizons_by_account_type={"slow": 2})
    return config


def _reduced(book, rng, how):
    """Each set with one position scaled by ``1 - x`` (x: 0, 1, a fraction; or several
    positions at once), and the position changed per set."""
    quantity = book.quantity.copy()
    changed = np.full(book.n_sets, -1)
    for s in range(book.n_sets):
        p0, p1 = book.indptr[s], book.indptr[s + 1]
        if p1 == p0:
            continue
        p = int(rng.integers(p0, p1))
        changed[s] = p
        x = {"keep": 0.0, "close": 1.0, "part": rng.uniform()}.get(how, rng.uniform())
        quantity[p] *= 1.0 - x
        if how == "several" and p1 - p0 > 1:
            other = p0 + (p - p0 + 1) % (p1 - p0)
            quantity[other] *= rng.uniform(0.0, 1.5)
            changed[s] = -1  # two positions moved: no reusable rest
    return quantity, changed


@pytest.mark.parametrize("variant", ["demo", "apc", "stress max, var", "blend, floors",
                                     "account types"])
def test_trial_margins_are_margin_books_bits(demo, variant):
    inputs, config = demo
    config = _variant(config, variant)
    result = run_eod(inputs, config)
    market = result.state.market
    assert unsupported(market, config) is None
    if variant == "apc":
        assert result.manifest["anti_procyclicality"]["floor"]["bound_sets"] > 5
    book = net_positions(result.attribution[["account_id", "netting_set", "instrument_id",
                                             "quantity"]], market.axis)
    rng = np.random.default_rng(len(variant))
    previous = np.where(rng.uniform(size=book.n_sets) < 0.3, np.nan,
                        result.margins["model_margin"].to_numpy() * rng.uniform(0.3, 1.5,
                                                                                book.n_sets))
    types = ({a: "slow" for a in book.sets["account_id"].iloc[::3]}
             if variant == "account types" else None)
    inputs_ = trial_inputs(market, book, config, previous=previous, account_types=types)
    served = ~inputs_.concentrated()
    assert served.sum() > 0.8 * book.n_sets
    for how in ("keep", "close", "part", "several"):
        quantity, changed = _reduced(book, rng, how)
        rows = book.positions[["account_id", "netting_set", "instrument_id"]].astype(object)
        reduced = net_positions(rows.assign(quantity=quantity), market.axis)
        keys = list(zip(reduced.sets["account_id"], reduced.sets["netting_set"]))
        at = dict(zip(zip(book.sets["account_id"], book.sets["netting_set"]), previous))
        engine = margin_book(market, reduced, config, collateral=np.zeros(reduced.n_sets),
                             previous=np.array([at[k] for k in keys]), account_types=types,
                             detail="initial_margin").initial_margin
        by_key = dict(zip(keys, engine))
        expected = np.array([by_key.get(k, 0.0) for k in zip(book.sets["account_id"],
                                                             book.sets["netting_set"])])
        got = trial_margins(inputs_, quantity)
        np.testing.assert_array_equal(got[served], expected[served], err_msg=how)
        if how != "several":  # the rest formed at the book's quantities, the changed one moved
            got = trial_margins(inputs_, quantity, changed)
            np.testing.assert_array_equal(got[served], expected[served], err_msg=how)


def test_unsupported_names_what_the_compiled_path_leaves_to_margin_book(demo):
    inputs, config = demo
    result = run_eod(inputs, config)
    market = result.state.market
    assert unsupported(market, config) is None
    grid = dataclasses.replace(config, method="grid")
    assert "grid" in unsupported(market, grid)
    weighted = dataclasses.replace(market, model={
        h: dataclasses.replace(m, weights=np.ones(m.pnl.shape[1])) for h, m in
        market.model.items()})
    assert "weighted" in unsupported(weighted, config)


def test_row_bounds_are_the_pnl_rows_largest_magnitude_with_or_without_the_screen(demo):
    """The trial kernels' bounds: numpy's largest |P&L| per row, whether the coarse first
    pass's build found them (kept after the screen is dropped: no second pass) or the market
    made a pass of its own."""
    inputs, config = demo
    state = run_eod(inputs, config).state
    for built_screen in (False, True):
        market = dataclasses.replace(state.market, _cache={})
        for h in market.horizons:
            screen = market.screen(h) if built_screen else None
            assert (screen is not None) == built_screen
            market.drop_screens()
            got = market.row_bound(h)
            assert np.array_equal(got, np.abs(market.model[h].pnl).max(axis=1))
            if screen is not None:
                assert got is screen.row_bound
