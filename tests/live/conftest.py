"""Fixtures for the live-margining tests: the demo's real-data book (S&P 500 and NASDAQ
Composite closes, WTI, VIX; linear, inverse and option positions) and its end-of-day run."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest

from riskmodel.cli import main
from riskmodel.demo import DemoFiles, write_demo_inputs
from riskmodel.whatif import LoadedRun, load_run


@dataclass(frozen=True)
class DemoRun:
    files: DemoFiles
    folder: Path

    def load(self) -> LoadedRun:
        return load_run(self.folder)


def eod(files: DemoFiles, out: Path, *, prices: Path | None = None,
        instruments: Path | None = None, positions: Path | None = None,
        accounts: Path | None = None) -> None:
    """``riskmodel eod`` on the demo's inputs (any of them replaced), historical simulation."""
    rc = main(["eod", "--prices", str(prices or files.prices),
               "--instruments", str(instruments or files.instruments),
               "--positions", str(positions or files.positions),
               "--accounts", str(accounts or files.accounts), "--config", str(files.config),
               "--method", "hs", "--out", str(out), "--quiet"])
    assert rc == 0


@pytest.fixture(scope="session")
def run_eod():
    """:func:`eod`, for the tests that run it on inputs of their own (a fixture: a test module
    importing ``conftest`` by name gets whichever directory's conftest was loaded last)."""
    return eod


@pytest.fixture(scope="session")
def demo_run(tmp_path_factory: pytest.TempPathFactory) -> DemoRun:
    """The demo book of 40 accounts margined by eod (HS, the demo's RUN.toml)."""
    tmp = tmp_path_factory.mktemp("live-demo")
    files = write_demo_inputs(tmp / "inputs", n_accounts=40)
    accounts = pd.read_csv(files.accounts, dtype=str, keep_default_na=False)
    # accounts with collateral and no position yet (trades open their sets in the tests)
    for account, collateral in (("FRESH", "100000"), ("FRESH2", "10")):
        accounts.loc[len(accounts)] = {"account_id": account, "collateral": collateral,
                                       "netting_set": ""}
    accounts.to_csv(files.accounts, index=False)
    eod(files, tmp / "run")
    return DemoRun(files, tmp / "run")
