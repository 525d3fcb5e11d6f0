"""Blank prices inside a series: carried over with a warning, dropped, or refused
(``[returns] gaps``), and a date without any price is never a date of the calendar."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from riskmodel.cli import main
from riskmodel.io.prices import load_prices
from riskmodel.marketdata.returns import align


@pytest.fixture
def coins(tmp_path):
    """BTC on every calendar day; ETH blank on Saturdays and Sundays (a feed that skips
    weekends); one row with no price at all."""
    rng = np.random.default_rng(7)
    dates = pd.date_range("2023-01-01", periods=420, freq="D")
    btc = 20000 * np.exp(np.cumsum(rng.normal(0, 0.03, len(dates))))
    eth = 1500 * np.exp(np.cumsum(rng.normal(0, 0.04, len(dates))))
    eth[dates.day_of_week >= 5] = np.nan
    frame = pd.DataFrame({"date": dates.strftime("%Y-%m-%d"), "BTC": btc, "ETH": eth})
    frame.loc[100, ["BTC", "ETH"]] = np.nan  # a row of the file with no price at all
    frame.to_csv(tmp_path / "prices.csv", index=False)
    pd.DataFrame({"instrument_id": ["BTC-PERP", "ETH-PERP"], "kind": ["perpetual"] * 2,
                  "underlying": ["BTC", "ETH"], "multiplier": [1.0, 1.0]}).to_csv(
        tmp_path / "instruments.csv", index=False)
    pd.DataFrame({"account_id": ["A1", "A1"], "instrument_id": ["BTC-PERP", "ETH-PERP"],
                  "quantity": [1.0, -10.0]}).to_csv(tmp_path / "positions.csv", index=False)
    pd.DataFrame({"account_id": ["A1"], "collateral": [5000.0]}).to_csv(
        tmp_path / "accounts.csv", index=False)
    return tmp_path


def _eod(folder, out, gaps=None):
    toml = folder / f"run-{gaps}.toml"
    toml.write_text("" if gaps is None else f'[returns]\ngaps = "{gaps}"\n')
    return main(["eod", "--prices", str(folder / "prices.csv"), "--instruments",
                 str(folder / "instruments.csv"), "--positions", str(folder / "positions.csv"),
                 "--accounts", str(folder / "accounts.csv"), "--config", str(toml),
                 "--method", "hs", "--lookback", "250", "--horizon", "1", "--out", str(out),
                 "--quiet"])


def test_a_date_without_any_price_is_no_date(coins):
    history = load_prices(coins / "prices.csv", lambda a: "log")
    assert history.blank_dates == 1 and len(history.frame) == 419
    assert pd.Timestamp("2023-04-11") not in history.frame.index


def test_carry_warns_with_the_count_per_asset(coins, tmp_path, capsys):
    assert _eod(coins, tmp_path / "carry") == 0
    manifest = json.loads((tmp_path / "carry" / "manifest.json").read_text())
    weekend = int((pd.date_range("2023-01-01", periods=420).day_of_week >= 5).sum())
    saturday_first = 1  # 2023-01-01 is a Sunday: ETH is not listed yet, nothing to carry
    expected = weekend - saturday_first
    assert manifest["calendar"]["carried_prices"]["ETH"] == expected
    assert any(f"ETH {expected}" in w and "carried" in w for w in manifest["warnings"])
    assert any("1 date(s) without any price" in w for w in manifest["warnings"])
    # on stderr too, even with --quiet: it used to show only in the manifest's counts
    err = capsys.readouterr().err
    assert "riskmodel eod: warning:" in err and f"ETH {expected}" in err


def test_drop_leaves_the_gap_dates_out_and_changes_the_margin(coins, tmp_path):
    assert _eod(coins, tmp_path / "carry") == 0
    assert _eod(coins, tmp_path / "drop", "drop") == 0
    carry = pd.read_parquet(tmp_path / "carry" / "margins.parquet")
    drop = pd.read_parquet(tmp_path / "drop" / "margins.parquet")
    manifest = json.loads((tmp_path / "drop" / "manifest.json").read_text())
    assert manifest["calendar"]["carried_prices"] == {"BTC": 0, "ETH": 0}
    # weekend zero returns of ETH made the hedged book look safer: without them the margin rises
    assert drop["initial_margin"].iat[0] != carry["initial_margin"].iat[0]
    history = load_prices(coins / "prices.csv", lambda a: "log")
    prices, _, _ = align(history, ["BTC", "ETH"], history.frame.index[-1], lambda a: "log",
                         "drop")
    # the first date (a Sunday) stays: ETH is not listed yet there, which is no gap
    assert (prices.index[1:].day_of_week < 5).all() and not prices.isna().to_numpy()[1:].any()


def test_error_names_the_first_gap(coins, tmp_path, capsys):
    assert _eod(coins, tmp_path / "error", "error") == 3
    err = capsys.readouterr().err
    assert "prices.csv" in err and "2023-01-07" in err and "'ETH'" in err and "gaps" in err
    assert not (tmp_path / "error").exists()
