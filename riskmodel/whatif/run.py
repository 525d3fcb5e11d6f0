"""A finished ``eod`` run loaded for what-if questions: its priced market, configuration,
accounts, netted positions and margins.

The run keeps its priced market under ``DIR/state/`` (:mod:`riskmodel.engine.store`); the
positions and the figures before a what-if come from its ``attribution.parquet`` and
``margins.parquet``.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np
import pandas as pd

from riskmodel.config import RunConfig
from riskmodel.engine import BookMargins, PricedMarket, margin_book
from riskmodel.engine.store import StoredRun, read_run
from riskmodel.errors import InputDataError
from riskmodel.portfolio.collateral import CollateralTable, PreviousMargins
from riskmodel.portfolio.netting import Book

_Key = tuple[str, str]


@dataclass(frozen=True, eq=False)
class LoadedRun:
    """A finished run, loaded once for any number of what-ifs.

    Attributes
    ----------
    run_dir : Path
    stored : StoredRun, the priced market and what goes with it (:mod:`riskmodel.engine.store`).
    config : RunConfig, rebuilt from the stored TOML mapping and overrides.
    positions : DataFrame, the run's netted positions (``account_id, netting_set,
        instrument_id, quantity``).
    before : DataFrame, ``model_margin, initial_margin`` (and the other margin columns read) of
        the run's netting sets, indexed by ``(account_id, netting_set)``.
    """

    run_dir: Path
    stored: StoredRun
    config: RunConfig
    positions: pd.DataFrame
    before: pd.DataFrame

    @property
    def market(self) -> PricedMarket:
        return self.stored.market

    @property
    def axis(self) -> pd.Index:
        return self.stored.market.axis

    @cached_property
    def axis_ids(self) -> frozenset[str]:
        """The instrument ids of ``axis``, for membership tests."""
        return frozenset(self.axis.tolist())

    @cached_property
    def collateral(self) -> CollateralTable:
        return CollateralTable(self.stored.collateral)

    @cached_property
    def position_rows(self) -> dict[_Key, np.ndarray]:
        """``(account_id, netting_set) -> row numbers`` into ``positions``."""
        rows = self.positions.groupby(["account_id", "netting_set"], sort=False).indices
        return {(str(k[0]), str(k[1])): v for k, v in rows.items()}

    @cached_property
    def position_columns(self) -> dict[str, np.ndarray]:
        """``positions`` column by column (ids as object arrays of str): a what-if gathers the
        rows of the sets it touches from them, without a pandas selection per query."""
        p = self.positions
        return {**{c: p[c].to_numpy(dtype=object) for c in ("account_id", "netting_set",
                                                            "instrument_id")},
                "quantity": p["quantity"].to_numpy(np.float64)}

    @cached_property
    def before_rows(self) -> dict[_Key, int]:
        """``(account_id, netting_set) -> row`` of ``before``."""
        return {(str(a), str(s)): i for i, (a, s) in enumerate(self.before.index)}

    @cached_property
    def before_columns(self) -> dict[str, np.ndarray]:
        """``before`` column by column (``status`` as objects, the rest float64)."""
        return {c: self.before[c].to_numpy(dtype=object if c == "status" else np.float64)
                for c in self.before.columns}

    @cached_property
    def previous(self) -> PreviousMargins | None:
        """The previous run's model margins as a lookup (None without a previous run)."""
        previous = self.stored.previous
        return None if previous is None else PreviousMargins(previous)

    def margin(self, book: Book, detail: str = "tables",
               deposits: np.ndarray | None = None) -> BookMargins:
        """The engine's margin of ``book`` (on the run's axis) with each set's collateral
        (plus ``deposits``, per set) and previous margin as the run had them."""
        collateral = self.collateral.of_sets(book.sets)
        if deposits is not None:
            collateral = collateral + np.nan_to_num(np.asarray(deposits, dtype=np.float64))
        previous = None if self.previous is None else self.previous.of_sets(book.sets)
        return margin_book(self.market, book, self.config, collateral=collateral,
                           previous=previous, account_types=self.collateral.account_types,
                           detail=detail)  # type: ignore[arg-type]


def load_run(run_dir: str | Path) -> LoadedRun:
    """Load the ``eod`` output folder ``run_dir`` for what-if.

    Raises
    ------
    InputDataError
        When the folder holds no (readable) state, the configuration rebuilt from it does not
        reproduce the run's (its SHA-256 differs from the one recorded), or the run used the
        anti-procyclicality floor and its state lacks the floor's scenarios (an older run).
    """
    run_dir = Path(run_dir)
    stored = read_run(run_dir)
    config = stored.config()
    if stored.config_sha256 and config.digest() != stored.config_sha256:
        raise InputDataError(
            f"{run_dir}/state/state.json: the stored configuration no longer resolves to the "
            "run's (config_sha256 differs; riskmodel version changed?): rerun eod"
        )
    if "floor" in config.anti_procyclicality.tools and not stored.market.floor:
        raise InputDataError(f"{run_dir}/state: the run used the anti-procyclicality floor but "
                             "its state holds no floor scenarios (an older run): rerun eod")
    try:
        positions = pd.read_parquet(run_dir / "attribution.parquet",
                                    columns=["account_id", "netting_set", "instrument_id",
                                             "quantity"])
        margins = pd.read_parquet(run_dir / "margins.parquet",
                                  columns=["account_id", "netting_set", "model_margin",
                                           "initial_margin", "maintenance_margin", "status",
                                           "equity", "call_amount", "margin_level"])
    except (OSError, KeyError, ValueError) as exc:
        raise InputDataError(f"{run_dir}: cannot read the run's margin tables: {exc}") from None
    return LoadedRun(run_dir, stored, config, positions,
                     margins.set_index(["account_id", "netting_set"]))
