"""Fixtures of the waterfall tests: the hand-worked venue and the demo venue, each run once."""

from __future__ import annotations

from pathlib import Path

import pytest
from waterfall_venues import HAND_ACCOUNTS, HAND_POSITIONS, write_venue

from riskmodel.cli import main


@pytest.fixture(scope="package")
def hand_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_venue(tmp_path_factory.mktemp("hand"), HAND_POSITIONS, HAND_ACCOUNTS)


@pytest.fixture(scope="package")
def demo_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo's venue (index futures, perpetuals, an inverse perpetual, S&P 500 options moved
    by the VIX, historical stress windows), 80 accounts plus one holding collateral only, run
    with HS and EWMA (no GARCH fit: fast)."""
    from riskmodel.demo import write_demo_inputs

    root = tmp_path_factory.mktemp("demo")
    files = write_demo_inputs(root / "in", n_accounts=80)
    config = files.config.read_text().replace('method = "fhs"', 'method = "hs"') \
        .replace('model = "garch"', 'model = "ewma"')
    files.config.write_text(config)
    with files.accounts.open("a") as f:
        f.write("FLAT,250000.0,\n")
    argv = ["eod", "--prices", str(files.prices), "--instruments", str(files.instruments),
            "--positions", str(files.positions), "--accounts", str(files.accounts),
            "--config", str(files.config), "--out", str(root / "run"), "--quiet"]
    assert main(argv) == 0
    return root / "run"
