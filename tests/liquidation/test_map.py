"""Venue liquidation map and cascades: monotone on a directional book, equal to brute-force
re-runs of eod on moved prices, and a cascade that converges to a hand-calculated fixed point."""

import json

import numpy as np
import pandas as pd
import pytest

from riskmodel.cli import main
from riskmodel.config import LiquidationConfig, RunConfig
from riskmodel.demo import write_demo_inputs
from riskmodel.liquidation.map import (
    ALL,
    Cascade,
    MapBook,
    liquidation_map,
    load_map_book,
)


def _eod(files, out, positions=None, accounts=None, prices=None, config=None):
    argv = ["eod", "--prices", str(prices or files.prices), "--instruments",
            str(files.instruments), "--positions", str(positions or files.positions),
            "--accounts", str(accounts or files.accounts), "--config",
            str(config or files.config), "--out", str(out), "--quiet", "--method", "hs"]
    assert main(argv) == 0


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    """The demo's linear book: every margin part of spot, futures and perpetuals is
    proportional to the price level (options with fixed strikes and inverse contracts, whose
    P&L is relative, are not), which the exactness of the map rests on."""
    root = tmp_path_factory.mktemp("map")
    files = write_demo_inputs(root / "in", n_accounts=90)
    instruments = pd.read_csv(files.instruments)
    linear = instruments.loc[instruments["kind"].isin(["spot", "future", "perpetual"]),
                             "instrument_id"]
    positions = pd.read_csv(files.positions, dtype={"netting_set": str})
    positions[positions["instrument_id"].isin(linear)].to_csv(files.positions, index=False)
    # the convex concentration add-on is the one margin part not proportional to the price level
    config = root / "run.toml"
    config.write_text(files.config.read_text().replace("default = 5000000.0", "default = 1e300"))
    _eod(files, root / "run", config=config)
    return files, config, root


def _brute_force(files, config, root, name, moves, positions=None):
    """Re-run eod with each moved asset's whole price history scaled by (1 + x) (returns, and so
    the HS scenarios in relative terms, unchanged) and each set's collateral credited with its
    positions' P&L, computed here position by position; returns the status counts."""
    prices = pd.read_csv(files.prices)
    last = prices.set_index("date").ffill().iloc[-1]
    for asset, x in moves.items():
        prices[asset] = prices[asset] * (1.0 + x)
    moved_prices = root / f"{name}_prices.csv"
    prices.to_csv(moved_prices, index=False)
    instruments = pd.read_csv(files.instruments).set_index("instrument_id")
    book = pd.read_csv(positions or files.positions, dtype={"netting_set": str})
    book["netting_set"] = book["netting_set"].fillna("")
    pnl = {}
    for _, p in book.iterrows():
        inst = instruments.loc[p["instrument_id"]]
        x = moves.get(inst["underlying"], 0.0)
        key = (p["account_id"], p["netting_set"])
        pnl[key] = pnl.get(key, 0.0) + p["quantity"] * inst["multiplier"] * last[
            inst["underlying"]] * x
    accounts = pd.read_csv(files.accounts, dtype={"netting_set": str})
    accounts["netting_set"] = accounts["netting_set"].fillna("")
    accounts["collateral"] = [c + pnl.get((a, s), 0.0) for a, s, c in
                              zip(accounts["account_id"], accounts["netting_set"],
                                  accounts["collateral"])]
    moved_accounts = root / f"{name}_accounts.csv"
    accounts.to_csv(moved_accounts, index=False)
    _eod(files, root / name, positions=positions, accounts=moved_accounts,
         prices=moved_prices, config=config)
    status = pd.read_parquet(root / name / "margins.parquet")["status"]
    return int((status == "margin_call").sum()), int((status == "liquidation").sum())


def test_all_underlyings_together_match_brute_force_reruns(demo):
    files, config, root = demo
    table = liquidation_map(load_map_book(root / "run"), scopes=[ALL])
    assert len(table) == 41
    for x in (-0.3, -0.1, 0.075):
        row = table[np.isclose(table["move"], x)].iloc[0]
        moves = {"SPX": x, "NASDAQ": x, "WTI": x}
        counts = _brute_force(files, config, root, f"all_{x}", moves)
        assert counts == (row["n_margin_call"], row["n_liquidation"]), x


def test_one_underlying_matches_brute_force_on_single_underlying_sets(demo):
    """For a set on one underlying the proportional margin rule is exact, so a book of such
    sets must match the brute-force re-run exactly."""
    files, config, root = demo
    positions = pd.read_csv(files.positions, dtype={"netting_set": str})
    instruments = pd.read_csv(files.instruments).set_index("instrument_id")
    positions["und"] = instruments.loc[positions["instrument_id"], "underlying"].to_numpy()
    positions["netting_set"] = positions["netting_set"].fillna("")
    n_und = positions.groupby(["account_id", "netting_set"])["und"].transform("nunique")
    single = positions[(n_und == 1) & (positions["und"] == "SPX")].drop(columns="und")
    assert len(single) > 10
    path = root / "single.csv"
    single.to_csv(path, index=False)
    _eod(files, root / "single_run", positions=path, config=config)
    table = liquidation_map(load_map_book(root / "single_run"), scopes=["SPX"])
    for x in (-0.2, 0.1):
        row = table[np.isclose(table["move"], x)].iloc[0]
        counts = _brute_force(files, config, root, f"spx_{x}", {"SPX": x}, positions=path)
        assert counts == (row["n_margin_call"], row["n_liquidation"]), x


def test_directional_book_is_monotone(demo):
    """A book of long-only sets: a larger fall never liquidates fewer sets, a larger rise never
    more; and the count at zero is the run's own."""
    files, config, root = demo
    positions = pd.read_csv(files.positions, dtype={"netting_set": str})
    positions["netting_set"] = positions["netting_set"].fillna("")
    long_only = positions.groupby(["account_id", "netting_set"])["quantity"].transform("min") > 0
    path = root / "long.csv"
    positions[long_only].to_csv(path, index=False)
    _eod(files, root / "long_run", positions=path, config=config)
    table = liquidation_map(load_map_book(root / "long_run"))
    run = pd.read_parquet(root / "long_run" / "margins.parquet")
    for scope, rows in table.groupby("scope"):
        rows = rows.sort_values("move")
        n = rows["n_liquidation"].to_numpy()
        assert (np.diff(n) <= 0).all(), scope
        assert n[0] > n[-1]
        at_zero = rows[rows["move"] == 0.0].iloc[0]
        assert at_zero["n_liquidation"] == (run["status"] == "liquidation").sum()
        assert at_zero["new_liquidation"] == 0


def _one_factor_book(equity, quantity=1000.0):
    """Three long perpetuals on X at 100: MM 5,000 and IM 6,000 each, equity as given."""
    n = len(equity)
    sets = pd.DataFrame({"account_id": [f"A{i}" for i in range(n)], "netting_set": "default",
                         "equity": equity, "initial_margin": 6000.0,
                         "maintenance_margin": 5000.0, "status": "ok"})
    config = RunConfig(liquidation=LiquidationConfig(impact_adv={"X": 1e6},
                                                     impact_coefficient=1.0))
    return MapBook(
        sets=sets, indptr=np.arange(n + 1, dtype=np.int64),
        instrument=np.zeros(n, dtype=np.int64), quantity=np.full(n, quantity),
        instruments=pd.DataFrame({"instrument_id": ["X-PERP"], "kind": ["perpetual"],
                                  "underlying": ["X"], "multiplier": [1.0], "factor": ["X"]}),
        factors=["X"], spot=pd.Series([100.0], index=["X"]), return_kinds={"X": "log"},
        sigma_rel=pd.Series([0.02], index=["X"]), config=config)


def test_cascade_converges_to_the_hand_calculated_fixed_point():
    """Liquidation of a long of 1,000 at 100 when E + 100,000 x < 5,000 (1 + x): thresholds
    -10% (A), -11.5% (B), -30% (C). From x0 = -11%: A is liquidated, selling 1,000 units moves
    the price by -0.02 sqrt(100,000 (1 + x) / 1e6) = -0.00597, past B's threshold; A and B
    together sell 2,000 units, and the price settles where x = x0 - k sqrt(1 + x) with
    k = 0.02 sqrt(0.2), i.e. sqrt(1 + x) = (-k + sqrt(k^2 + 4 (1 + x0))) / 2. C survives."""
    thresholds = np.array([-0.10, -0.115, -0.30])
    equity = 5000.0 * (1 + thresholds) - 100_000.0 * thresholds
    result = Cascade(_one_factor_book(equity)).run(np.array([-0.11]))
    k = 0.02 * np.sqrt(2 * 1000 * 100 / 1e6)
    s = (-k + np.sqrt(k * k + 4 * (1 - 0.11))) / 2
    np.testing.assert_allclose(result.final_move["X"], s * s - 1, rtol=0, atol=1e-12)
    assert result.liquidated_initial == 1 and result.liquidated_final == 2
    assert result.extra_liquidations == 1
    assert list(result.liquidated) == [True, True, False]
    assert result.rounds >= 2


def test_cascade_without_a_liquidation_does_nothing():
    equity = np.array([50_000.0, 60_000.0])
    result = Cascade(_one_factor_book(equity)).run(np.array([-0.05]))
    assert result.rounds == 0 and result.extra_move["X"] == 0.0
    assert result.extra_liquidations == 0


def test_cli_writes_table_heatmap_report_and_cascades(demo, tmp_path):
    files, config, root = demo
    out = tmp_path / "map"
    assert main(["liquidation-map", "--run", str(root / "run"), "--out", str(out), "--cascade",
                 "--quiet"]) == 0
    names = {p.name for p in out.iterdir()}
    assert {"liquidation_map.parquet", "liquidation_map.csv", "liquidation_map.png",
            "cascades.parquet", "cascades.csv", "report.html", "manifest.json"} <= names
    assert (out / "liquidation_map.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    html = (out / "report.html").read_text()
    assert "data:image/png;base64," in html and "in liquidation at today" in html
    assert pd.read_csv(out / "cascades.csv").shape == pd.read_parquet(
        out / "cascades.parquet").shape
    table = pd.read_parquet(out / "liquidation_map.parquet")
    assert set(table["scope"]) == {"SPX", "NASDAQ", "WTI", ALL}
    assert not table.isna().drop(columns="price").any().any()
    cascades = pd.read_parquet(out / "cascades.parquet")
    assert (cascades["liquidated_final"] >= cascades["liquidated_initial"]).all()
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["netting_sets"] == len(pd.read_parquet(root / "run" / "margins.parquet"))


def test_cli_missing_run_is_an_input_error(tmp_path):
    assert main(["liquidation-map", "--run", str(tmp_path / "nope"), "--out",
                 str(tmp_path / "o"), "--quiet"]) == 3
    assert not (tmp_path / "o").exists()


# --- notional and penalties against brute-force eod re-runs ---------------------------------
KEY = ["account_id", "netting_set"]
INVERSE = ("inverse_perpetual", "inverse_future")


def _rate_by_hand(table, kind, underlying):
    """The README's lookup written out: the underlying's rate, else the kind's, else default."""
    if underlying in table["underlying"]:
        return table["underlying"][underlying]
    return table["kind"].get(kind, table["default"])


def _with_penalty_by_underlying(config, root, rates):
    """The run configuration with a ``[liquidation.penalty_rates.underlying]`` table."""
    text = config.read_text()
    assert "[liquidation.impact_adv]" in text and "penalty_rates.underlying" not in text
    extra = "[liquidation.penalty_rates.underlying]\n" + "".join(
        f"{u} = {r}\n" for u, r in rates.items())
    path = root / "penalty_by_underlying.toml"
    path.write_text(text.replace("[liquidation.impact_adv]", extra + "[liquidation.impact_adv]"))
    return path


def _brute_force_closing(files, root, run, name, moves, table, config):
    """The sets in liquidation after an instant move and the notional and penalty of closing
    them in full, by brute force: eod re-run on prices whose whole history is scaled by
    ``1 + x`` for each moved asset (every requirement, gross notional and position notional at
    the moved prices; none depends on the collateral), and each set's equity at the move by
    hand, ``collateral + P&L``: ``q m P0 x`` for spot, futures and perpetuals, ``q m x`` for
    inverse contracts (the coin P&L ``m (1/P0 - 1/P)`` worth ``m (P/P0 - 1)`` dollars at P),
    and the change of the runs' market values for options. A set is in liquidation when that
    equity is below the re-run's maintenance margin; the penalty is the rate (looked up by
    hand) x each position's notional in the re-run."""
    prices = pd.read_csv(files.prices)
    last = prices.set_index("date").ffill().iloc[-1]
    for asset, x in moves.items():
        prices[asset] = prices[asset] * (1.0 + x)
    prices.to_csv(root / f"{name}_prices.csv", index=False)
    positions = pd.read_parquet(run / "attribution.parquet")
    positions[[*KEY, "instrument_id", "quantity"]].to_csv(root / f"{name}_positions.csv",
                                                          index=False)
    _eod(files, root / name, positions=root / f"{name}_positions.csv",
         prices=root / f"{name}_prices.csv", config=config)
    after = pd.read_parquet(root / name / "margins.parquet").set_index(KEY)
    moved = pd.read_parquet(root / name / "attribution.parquet")
    key = [*KEY, "instrument_id"]
    moved = moved.set_index(key).loc[positions.set_index(key).index].reset_index()
    instruments = pd.read_csv(files.instruments).set_index("instrument_id")
    info = instruments.loc[positions["instrument_id"]]
    x = np.array([moves.get(u, 0.0) for u in info["underlying"]])
    q, m = positions["quantity"].to_numpy(), info["multiplier"].to_numpy()
    p0 = last[info["underlying"]].to_numpy()
    kind = info["kind"].to_numpy()
    pnl = np.where(np.isin(kind, INVERSE), q * m * x, q * m * p0 * x)
    option = kind == "option"
    pnl[option] = (moved["market_value"] - positions["market_value"]).to_numpy()[option]
    equity = (pd.read_parquet(run / "margins.parquet").set_index(KEY)["equity"]
              + pd.Series(pnl, index=pd.MultiIndex.from_frame(positions[KEY])).groupby(KEY).sum())
    liquidated = equity.index[equity < after.loc[equity.index, "maintenance_margin"]]
    rate = np.array([_rate_by_hand(table, k, u) for k, u in zip(kind, info["underlying"])])
    penalty = pd.Series(rate * moved["notional"].to_numpy(),
                        index=pd.MultiIndex.from_frame(positions[KEY])).groupby(KEY).sum()
    return (set(liquidated), float(after.loc[liquidated, "gross_notional"].sum()),
            float(penalty.loc[liquidated].sum()))


def test_notional_and_penalties_liquidated_match_brute_force_reruns(demo):
    """The map's ``notional_liquidated`` (gross notional at the moved prices of the sets in
    liquidation) and ``penalties`` (the penalty rates on it, here with a rate by underlying
    over the kind's) of the linear demo book, for moves of all underlyings together, against
    eod re-runs at the moved prices with the equity and the rates by hand."""
    files, config, root = demo
    table = {"default": 0.002, "kind": {"perpetual": 0.005}, "underlying": {"WTI": 0.01}}
    config = _with_penalty_by_underlying(config, root, table["underlying"])
    _eod(files, root / "penalty_run", config=config)
    run = root / "penalty_run"
    book = load_map_book(run)
    assert book.config.liquidation.penalty_rates.underlying == {"WTI": 0.01}
    grid = liquidation_map(book, scopes=[ALL])
    for x in (-0.3, 0.075):
        row = grid[np.isclose(grid["move"], x)].iloc[0]
        liquidated, notional, penalties = _brute_force_closing(
            files, root, run, f"closing_{x}", {"SPX": x, "NASDAQ": x, "WTI": x}, table, config)
        assert row["n_liquidation"] == len(liquidated) > 0, x
        np.testing.assert_allclose(row["notional_liquidated"], notional, rtol=1e-9)
        np.testing.assert_allclose(row["penalties"], penalties, rtol=1e-9)
        # the oil rate by underlying is used: an oil position is among those liquidated
        positions = pd.read_parquet(run / "attribution.parquet").set_index(KEY)
        held = positions.loc[positions.index.isin(list(liquidated)), "instrument_id"]
        assert held.isin(["CL", "WTI-PERP"]).any(), x


def test_notional_liquidated_is_at_the_moved_prices_for_inverse_and_option_sets(tmp_path):
    """Sets funded with 1 USD each, so that whether each is in liquidation after a move of 30%
    is plain (a loss of thousands or a gain of thousands): an inverse NASDAQ perpetual long and
    one short (face value 100 USD: the notional of an inverse contract is its face, whatever
    the price), a short S&P call (its delta-adjusted notional grows faster than the price) and
    a long S&P perpetual. The map's notional and penalties must be what an eod re-run at the
    moved prices counts for the sets in liquidation there."""
    files = write_demo_inputs(tmp_path / "in", n_accounts=3)
    positions = pd.DataFrame({"account_id": ["OPT", "INV_LONG", "INV_SHORT", "LIN"],
                              "instrument_id": ["SPX-1903-C2500", "NDX-INV", "NDX-INV",
                                                "SPX-PERP"],
                              "quantity": [-2.0, 500.0, -500.0, 100.0]})
    positions.to_csv(files.positions, index=False)
    pd.DataFrame({"account_id": positions["account_id"], "collateral": 1.0}) \
        .to_csv(files.accounts, index=False)
    table = {"default": 0.002, "kind": {"perpetual": 0.005}, "underlying": {"NASDAQ": 0.003}}
    config = _with_penalty_by_underlying(files.config, tmp_path, table["underlying"])
    _eod(files, tmp_path / "run", config=config)
    run = tmp_path / "run"
    grid = liquidation_map(load_map_book(run), scopes=["SPX", ALL])
    everything = {"SPX": 1.0, "NASDAQ": 1.0, "WTI": 1.0}
    for scope, x, expected in (
        (ALL, -0.3, {"INV_LONG", "LIN"}),
        (ALL, 0.3, {"INV_SHORT", "OPT"}),
        ("SPX", 0.3, {"INV_LONG", "INV_SHORT", "OPT"}),
    ):
        row = grid[(grid["scope"] == scope) & np.isclose(grid["move"], x)].iloc[0]
        moves = ({a: x * w for a, w in everything.items()} if scope == ALL else {scope: x})
        liquidated, notional, penalties = _brute_force_closing(
            files, tmp_path, run, f"{scope}_{x}", moves, table, config)
        assert {a for a, _ in liquidated} == expected, (scope, x)
        assert row["n_liquidation"] == len(expected), (scope, x)
        np.testing.assert_allclose(row["notional_liquidated"], notional, rtol=1e-9,
                                   err_msg=f"{scope} {x}")
        np.testing.assert_allclose(row["penalties"], penalties, rtol=1e-9,
                                   err_msg=f"{scope} {x}")


def test_cascade_of_inverse_contracts_trades_their_face_value():
    """The book of the hand-solved cascade above in inverse perpetuals of face 100 USD: 1,000
    contracts long, whose dollar P&L at a move x is 100,000 x as before, but whose closing
    flow is the face, 100,000 USD, at any price. From x0 = -11% A is liquidated, its flow moves
    the price by -0.02 sqrt(100,000 / 1e6) = -0.63%, past B's threshold (-11.5%); A and B sell
    200,000 USD: the fixed point is x0 - 0.02 sqrt(0.2) exactly (no sqrt(1 + x): the flow does
    not shrink with the price). C survives."""
    thresholds = np.array([-0.10, -0.115, -0.30])
    equity = 5000.0 * (1 + thresholds) - 100_000.0 * thresholds
    book = _one_factor_book(equity)
    book.instruments = pd.DataFrame({"instrument_id": ["X-INV"], "kind": ["inverse_perpetual"],
                                     "underlying": ["X"], "multiplier": [100.0],
                                     "factor": ["X"]})
    result = Cascade(book).run(np.array([-0.11]))
    np.testing.assert_allclose(result.final_move["X"], -0.11 - 0.02 * np.sqrt(0.2), rtol=0,
                               atol=1e-12)
    assert list(result.liquidated) == [True, True, False]
