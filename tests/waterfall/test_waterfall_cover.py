"""The clearing-house view against a brute-force enumeration on a small venue: every member's
stress loss beyond margin worked out from the positions (linear contracts, no slippage: the
loss is quantity x price x move), then every single member and every pair of members tried in
every scenario."""

import itertools
import json

import numpy as np
import pandas as pd
import pytest
from waterfall_venues import write_moves, write_venue

from riskmodel.cli import main

MOVES = {"x -40%": {"X": -0.4}, "x +35%": {"X": 0.35}, "y -30%": {"Y": -0.3},
         "both -25%": {"X": -0.25, "Y": -0.25}, "x -20% y +20%": {"X": -0.2, "Y": 0.2},
         "y +45%": {"Y": 0.45}}


@pytest.fixture(scope="module")
def venue(tmp_path_factory):
    root = tmp_path_factory.mktemp("cover")
    rng = np.random.default_rng(3)
    accounts = [f"A{i:02d}" for i in range(14)]
    members = {a: f"M{i % 5}" for i, a in enumerate(accounts)}
    positions = [(a, inst, float(np.round(rng.normal(0, 8), 2))) for a in accounts
                 for inst in rng.choice(["PERP", "FUT", "YPERP"], 2, replace=False)]
    collateral = [(a, float(np.round(rng.uniform(50, 400), 2))) for a in accounts]
    run = write_venue(root, positions, collateral, members=members)
    out = root / "out"
    moves = write_moves(root / "moves.csv", MOVES)
    assert main(["waterfall", "--run", str(run), "--out", str(out), "--scenarios",
                 str(moves), "--quiet"]) == 0
    return run, out, positions, members


def _exposures(run, positions, members):
    """Per scenario (``now`` first) and member: max(0, loss - margin held), by hand."""
    margins = pd.read_parquet(run / "margins.parquet").set_index("account_id")
    held: dict[str, float] = {}
    for a, row in margins.iterrows():
        margin = min(row["initial_margin"], max(row["equity"], 0.0))
        held[members[a]] = held.get(members[a], 0.0) + margin
    underlying = {"PERP": "X", "FUT": "X", "YPERP": "Y"}
    names = sorted(set(members.values()))
    table = {"now": {m: max(0.0, -held[m]) for m in names}}
    for scenario, moves in MOVES.items():
        loss = dict.fromkeys(names, 0.0)
        for a, inst, q in positions:
            loss[members[a]] -= q * 100.0 * moves.get(underlying[inst], 0.0)
        table[scenario] = {m: max(0.0, loss[m] - held[m]) for m in names}
    return pd.DataFrame(table).T


def test_cover_1_and_2_against_every_member_and_pair(venue):
    run, out, positions, members = venue
    exposure = _exposures(run, positions, members)
    waterfall = pd.read_parquet(out / "waterfall.parquet").set_index("scenario")
    manifest = json.loads((out / "manifest.json").read_text())
    best = {1: (-1.0, None, ()), 2: (-1.0, None, ())}
    for scenario, row in exposure.iterrows():
        for k in (1, 2):
            value, who = max(((sum(row[list(c)]), c) for c in
                              itertools.combinations(row.index, k)), key=lambda t: t[0])
            assert waterfall.loc[scenario, f"cover_{k}"] == pytest.approx(value, abs=1e-6)
            if value > best[k][0] + 1e-9:
                best[k] = (value, scenario, who)
    for k in (1, 2):
        value, scenario, who = best[k]
        assert value > 0
        got = manifest["cover"][f"cover_{k}"]
        assert got["fund"] == pytest.approx(value, abs=1e-6)
        assert got["scenario"] == scenario
        assert sorted(got["members"]) == sorted(who)


def test_each_member_pays_its_share_of_peak_exposure(venue):
    run, out, positions, members = venue
    peak = _exposures(run, positions, members).max()
    cover = pd.read_parquet(out / "cover.parquet").set_index("member")
    manifest = json.loads((out / "manifest.json").read_text())
    fund = manifest["cover"]["cover_2"]["fund"]
    np.testing.assert_allclose(cover.loc[peak.index, "peak_exposure"], peak, atol=1e-6)
    np.testing.assert_allclose(cover.loc[peak.index, "share"], peak / peak.sum(), rtol=1e-9)
    assert cover["contribution"].sum() == pytest.approx(fund, rel=1e-12)
    assert set(cover["n_accounts"]) == {2, 3}  # 14 accounts over 5 members
