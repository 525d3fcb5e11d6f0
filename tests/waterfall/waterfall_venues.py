"""Small venues for the waterfall tests: a hand-sized one whose losses can be worked out on
paper, built through ``riskmodel eod`` like any run (a module of its own name: every test
folder has a conftest)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from riskmodel.cli import main

CONFIG = """method = "hs"
horizon = 1
lookback = 250
min_history = 250
[volatility]
model = "ewma"
[stress]
historical = false
[liquidation.impact_adv]
X = 1e5
Y = 1e5
[waterfall]
slippage_coefficient = 0.0
"""


def prices(n_days: int = 400, seed: int = 7) -> pd.DataFrame:
    """Two log-return underlyings X and Y, 2% daily vol, both ending at exactly 100."""
    rng = np.random.default_rng(seed)
    out = {"date": pd.date_range("2022-01-01", periods=n_days, freq="D").strftime("%Y-%m-%d")}
    for name in ("X", "Y"):
        path = np.exp(np.cumsum(rng.normal(0.0, 0.02, n_days)))
        out[name] = 100.0 * path / path[-1]
    return pd.DataFrame(out)


INSTRUMENTS = pd.DataFrame({
    "instrument_id": ["PERP", "FUT", "YPERP"],
    "kind": ["perpetual", "future", "perpetual"],
    "underlying": ["X", "X", "Y"],
    "multiplier": [1.0, 1.0, 1.0],
})


def write_venue(root: Path, positions: list[tuple[str, str, float]],
                accounts: list[tuple[str, float]], *, config: str = CONFIG,
                members: dict[str, str] | None = None) -> Path:
    """Inputs under ``root`` and an eod run in ``root / "run"``; returns the run folder."""
    root.mkdir(parents=True, exist_ok=True)
    prices().to_csv(root / "prices.csv", index=False)
    INSTRUMENTS.to_csv(root / "instruments.csv", index=False)
    pd.DataFrame(positions, columns=["account_id", "instrument_id", "quantity"]).to_csv(
        root / "positions.csv", index=False)
    frame = pd.DataFrame(accounts, columns=["account_id", "collateral"])
    if members is not None:
        frame["member"] = [members.get(a, "") for a in frame["account_id"]]
    frame.to_csv(root / "accounts.csv", index=False)
    (root / "run.toml").write_text(config)
    argv = ["eod", "--prices", str(root / "prices.csv"), "--instruments",
            str(root / "instruments.csv"), "--positions", str(root / "positions.csv"),
            "--accounts", str(root / "accounts.csv"), "--config", str(root / "run.toml"),
            "--out", str(root / "run"), "--quiet"]
    assert main(argv) == 0
    return root / "run"


def write_moves(path: Path, moves: dict[str, dict[str, float]]) -> Path:
    """A ``--scenarios`` file: ``{scenario: {asset: shock}}``."""
    rows = [(s, a, x) for s, assets in moves.items() for a, x in assets.items()]
    pd.DataFrame(rows, columns=["scenario", "asset", "shock"]).to_csv(path, index=False)
    return path


#: The hand-worked venue (README, "When margin is not enough"): A long 10 PERP with 150 of
#: collateral; B and C short PERP; G short the future on the same underlying; D flat.
HAND_POSITIONS = [("A", "PERP", 10.0), ("B", "PERP", -2.0), ("C", "PERP", -1.0),
                  ("G", "FUT", -3.0)]
HAND_ACCOUNTS = [("A", 150.0), ("B", 100.0), ("C", 1000.0), ("D", 500.0), ("G", 1000.0)]


DEMO_MOVES = {
    "all -40%": {"SPX": -0.4, "NASDAQ": -0.4, "WTI": -18.0},
    "spx -25% vix x3": {"SPX": -0.25, "VIX": 2.0},
    "spx +30%": {"SPX": 0.3},
    "nasdaq -30%": {"NASDAQ": -0.3},
    "wti +20": {"WTI": 20.0},
    "all +15%": {"SPX": 0.15, "NASDAQ": 0.15, "WTI": 6.0},
}
