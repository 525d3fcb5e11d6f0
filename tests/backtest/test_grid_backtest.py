"""Rule against model on the same portfolios and dates: ``backtest --method grid`` and a study
with ``method = ["fhs", "grid"]``.

The built-in portfolios hold spot positions (``long_U``, ``short_U``, ``hedge_U_V``), which the
default grid margins at its worst regular move: 16% of each position's notional (the extended
moves count at most 16% / 5 of a linear position; no contingency applies to spot, and no
diversification across underlyings), so a date's initial margin and VaR are 0.16 x its gross
notional by hand, and the study's grid row costs 1.6 x the 10% flat rate.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from riskmodel.cli import main


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("grid-backtest")
    rng = np.random.default_rng(11)
    n = 320
    r = rng.standard_normal((n, 2)) * 0.02
    prices = pd.DataFrame(80.0 * np.exp(np.cumsum(r, axis=0)), columns=["XX", "YY"],
                          index=pd.bdate_range("2021-01-01", periods=n).strftime("%Y-%m-%d"))
    prices.index.name = "date"
    prices.to_csv(folder / "prices.csv")
    pd.DataFrame({"instrument_id": ["XX", "YY"], "kind": "spot", "underlying": ["XX", "YY"],
                  "multiplier": 1.0}).to_csv(folder / "instruments.csv", index=False)
    (folder / "run.toml").write_text('horizon = 1\nlookback = 250\n[volatility]\n'
                                     'model = "ewma"\n')
    return folder


def _common(folder):
    return ["--prices", str(folder / "prices.csv"), "--instruments",
            str(folder / "instruments.csv"), "--config", str(folder / "run.toml"), "--quiet"]


def test_backtest_charges_the_rule(files, tmp_path):
    assert main(["backtest", *_common(files), "--method", "grid", "--out",
                 str(tmp_path / "bt")]) == 0
    table = pd.read_parquet(tmp_path / "bt" / "backtest.parquet")
    assert len(table) > 100 and table["netting_set"].nunique() == 5
    np.testing.assert_allclose(table["initial_margin"], 0.16 * table["gross_notional"],
                               rtol=1e-12)
    np.testing.assert_allclose(table["var"], 0.16 * table["gross_notional"], rtol=1e-12)
    assert (table["exception"] == (table["realized_loss"] > table["var"])).all()


def test_study_puts_rule_model_and_flat_rate_side_by_side(files, tmp_path):
    grid = tmp_path / "grid.toml"
    grid.write_text('method = ["fhs", "grid"]\n')
    assert main(["study", *_common(files), "--grid", str(grid), "--out",
                 str(tmp_path / "study")]) == 0
    study = pd.read_csv(tmp_path / "study" / "study.csv").set_index("method")
    assert list(study.index) == ["fhs", "grid"]
    assert study["n_obs"].nunique() == 1  # the same portfolios and dates
    assert study.loc["grid", "im_over_flat"] == pytest.approx(1.6, rel=1e-9)
    assert study.loc["grid", "exceptions"] <= study.loc["fhs", "exceptions"]
    for column in ("exception_rate", "kupiec_pvalue", "margin_breaches",
                   "mean_initial_margin", "mean_flat_rate_margin", "flat_rate_equivalent"):
        assert study[column].notna().all()
