"""The crypto profile against both flat rates on the shared coins (skips without ../shared/data).

The issue's setting: the daily BTC, ETH and DOGE closes from 2017-11-10, backtested 2019-01-01
to 2025-02-19 at one day and 99% on eight portfolios (calibration.crypto_study.write_inputs),
with the profile riskmodel/data/profiles/crypto.toml. The README's section "Crypto: the model
against flat rates" states what this run gives; the test checks the statements the profile was
chosen on and that the README's table is this run's. `python -m calibration.crypto_study`
reruns every candidate.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from calibration.crypto_study import CANDIDATES, SHARED, run_candidate, write_inputs

pytestmark = pytest.mark.skipif(not (SHARED / "crypto_daily_close.csv").exists(),
                                reason="../shared/data is not present")
README = Path(__file__).resolve().parents[2] / "README.md"


def test_profile_beats_both_flat_rates_at_equal_coverage(tmp_path):
    inputs = write_inputs(tmp_path)
    profile = CANDIDATES[-1]
    assert profile.profile and profile.recalibrate_every is None  # GARCH refit every 21 dates
    row, table = run_candidate(profile, inputs)
    assert row["status"] == "ok" and table is not None
    sets = table[table["portfolio"] != "pooled"].set_index("portfolio")
    pooled = table[table["portfolio"] == "pooled"].iloc[0]
    assert len(sets) == 8 and pooled["n_obs"] == 8 * 2242
    # coverage: at least 7 of 8 sets pass Kupiec and Christoffersen at 1%, pooled green
    passing = (sets["kupiec_pvalue"] >= 0.01) & (sets["christoffersen_pvalue"] >= 0.01)
    assert row["passes"] == int(passing.sum()) >= 7
    assert pooled["kupiec_pvalue"] >= 0.01 and pooled["traffic_light"] == "green"
    # VaR is the margin here: the breach rate is the 99% the tests check
    assert (sets["margin_breaches"] <= sets["exceptions"]).all()
    # cost: cheaper than either flat rate at the same coverage, for the median set and pooled
    assert row["median_over_flat_equivalent"] < 1.0
    assert row["median_over_realisable_equivalent"] < 1.0
    assert pooled["over_flat_equivalent"] < 1.0 and pooled["over_realisable_equivalent"] < 1.0
    # the README's table is this run's
    text = README.read_text()
    for portfolio, p in [*sets.iterrows(), ("pooled", pooled)]:
        line = (f"| {portfolio} | {p['exceptions']} | {p['kupiec_pvalue']:.3f} | "
                f"{p['christoffersen_pvalue']:.3f} | {p['traffic_light']} | "
                f"{p['margin_breaches']} | {p['mean_margin']:,.0f} |")
        assert line in text, f"README does not state {line!r}"
    headline = (f"median set {row['median_over_flat_equivalent']:.3f} of the hindsight flat "
                f"rate and {row['median_over_realisable_equivalent']:.3f} of the realisable")
    assert headline in text, f"README does not state {headline!r}"
