"""A finished run loaded for the waterfall: its priced market, netted positions, margins and
members, and the lookups every scenario reuses.

The positions, equity and requirements are the run's (``attribution.parquet``,
``margins.parquet``, read by :func:`riskmodel.liquidation.map.load_map_book`); the market is
the run's stored priced market (:func:`riskmodel.engine.store.read_run`), its configuration
checked against the digest the run recorded; ``[waterfall]`` may come from another
``RUN.toml`` (every other section is the run's: the market was priced under it).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp

from riskmodel.config import RunConfig, WaterfallConfig
from riskmodel.engine.store import StoredRun, read_run
from riskmodel.errors import InputDataError
from riskmodel.liquidation.map import Cascade, MapBook, load_map_book
from riskmodel.liquidation.partial import liquidated_statuses
from riskmodel.margin.policy import position_rates
from riskmodel.portfolio.collateral import CollateralTable
from riskmodel.waterfall.members import Members, read_members
from riskmodel.waterfall.remark import MarketView


@dataclass(eq=False)
class WaterfallBook:
    """Everything a scenario needs of the run (positions in CSR order by netting set).

    Attributes
    ----------
    map_book : MapBook, the run's sets and positions (``instrument`` are P&L rows).
    cascade : Cascade, the liquidation map's impact model on that book.
    view : MarketView, the priced market and its per-instrument constants.
    set_of : int ndarray of shape (n_positions,), each position's netting set.
    tradeable : bool ndarray of shape (n_positions,), not collateral.
    equity0, im0, mm0 : float ndarrays of shape (n_sets,), the run's figures.
    liquidated0 : bool ndarray of shape (n_sets,), in a status the liquidation stage reduces.
    rate : float ndarray of shape (n_instruments,), the liquidation penalty rate of each.
    members : Members.
    """

    run: StoredRun
    config: RunConfig
    map_book: MapBook
    cascade: Cascade
    view: MarketView
    members: Members

    def __post_init__(self) -> None:
        b = self.map_book
        self.n_sets = b.n_sets
        self.indptr = b.indptr
        self.instrument = b.instrument
        self.quantity = b.quantity
        self.set_of = np.repeat(np.arange(b.n_sets), np.diff(b.indptr))
        self.tradeable = ~self.view.collateral[self.instrument]
        self.account_id = b.sets["account_id"].to_numpy(dtype=object).astype(str)
        self.netting_set = b.sets["netting_set"].to_numpy(dtype=object).astype(str)
        self.equity0 = b.sets["equity"].to_numpy(np.float64)
        self.im0 = b.sets["initial_margin"].to_numpy(np.float64)
        self.mm0 = b.sets["maintenance_margin"].to_numpy(np.float64)
        self.liquidated0 = b.sets["status"].isin(liquidated_statuses(self.config)).to_numpy()
        instruments = self.view.instruments
        self.rate = position_rates(self.config.liquidation.penalty_rates,
                                   instruments["kind"].to_numpy(),
                                   instruments["underlying"].to_numpy())
        reval = self.cascade.reval
        self.by_instrument: sp.csc_matrix = reval.by_instrument
        self.share: sp.csr_matrix = reval.share.tocsr()
        # which factors each set holds (sets x factors), for the size of a move per set
        self.pattern = (reval.gross > 0).astype(np.float64).tocsr()
        self.size: sp.csr_matrix = reval.size.tocsr()  # |quantity|, sets x instruments
        self.n_instruments = len(instruments)
        key = self.set_of.astype(np.int64) * self.n_instruments + self.instrument
        self.position_key = pd.Index(key)
        self.set_key = pd.MultiIndex.from_arrays([self.account_id, self.netting_set])
        collateral = CollateralTable(self.run.collateral)
        self.account_types = collateral.account_types

    @property
    def wcfg(self) -> WaterfallConfig:
        return self.config.waterfall

    def positions_of(self, sets: np.ndarray) -> np.ndarray:
        """Position rows of the netting sets ``sets``, in CSR order."""
        if len(sets) == 0:
            return np.zeros(0, dtype=np.int64)
        starts, stops = self.indptr[sets], self.indptr[sets + 1]
        counts = stops - starts
        offsets = np.repeat(starts - np.cumsum(counts) + counts, counts)
        return np.arange(int(counts.sum()), dtype=np.int64) + offsets

    def sets_holding(self, cols: np.ndarray) -> np.ndarray:
        """Sorted netting sets with a position in any instrument of ``cols``."""
        if len(cols) == 0:
            return np.zeros(0, dtype=np.int64)
        m = self.by_instrument
        mask = np.zeros(self.n_sets, bool)
        for c in cols.tolist():  # a column's rows are a slice: no copy of the matrix
            mask[m.indices[m.indptr[c]:m.indptr[c + 1]]] = True
        return np.flatnonzero(mask)


def load_book(run_dir: str | Path, waterfall: WaterfallConfig | None = None) -> WaterfallBook:
    """Load ``run_dir`` (an ``eod`` output folder) for the waterfall; ``waterfall`` replaces the
    run's own ``[waterfall]`` section.

    Raises
    ------
    InputDataError
        No readable state, a configuration that no longer resolves to the run's, a run with
        the anti-procyclicality floor but no floor scenarios, tables of another run, or member
        errors (:func:`riskmodel.waterfall.members.read_members`).
    """
    run_dir = Path(run_dir)
    run = read_run(run_dir)
    config = run.config()
    stale = {
        "the stored configuration no longer resolves to the run's (config_sha256 differs; "
        "riskmodel version changed?)": bool(run.config_sha256)
        and config.digest() != run.config_sha256,
        "the run used the anti-procyclicality floor but its state holds no floor scenarios "
        "(an older run)": "floor" in config.anti_procyclicality.tools and not run.market.floor,
    }
    found = [problem for problem, bad in stale.items() if bad]
    if found:
        raise InputDataError(f"{run_dir}/state: {found[0]}: rerun eod")
    if waterfall is not None:
        config = dataclasses.replace(config, waterfall=waterfall)
    map_book = load_map_book(run_dir)
    map_book.config = config
    if (map_book.instrument < 0).any():
        raise InputDataError(f"{run_dir}: attribution.parquet holds an instrument the run's "
                             "state did not price (not written by the same run?)")
    members = read_members(run_dir, map_book.sets["account_id"].to_numpy(dtype=object))
    return WaterfallBook(run, config, map_book, Cascade(map_book),
                         MarketView(run.market, config), members)
