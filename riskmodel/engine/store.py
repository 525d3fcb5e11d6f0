"""A finished run's priced market on disk (``DIR/state/``): what-if, the liquidation map and the
intraday loop margin books against it without re-running the batch.

Written by :func:`riskmodel.batch.eod.write_eod` inside the same staged output as the margin
tables (so atomically), read by :func:`read_run`. Plain formats only: ``.npy`` (read with
``allow_pickle=False``; the large ones written past the page cache, the same bytes as
``np.save``: :func:`riskmodel.io.direct.save_npy`), Parquet and JSON.

Files (``h`` is a margin period of risk in days; one set of files per horizon the run priced):

``state.json``
    ``format`` (``"riskmodel-run-state"``), ``version`` (1), ``horizons`` (sorted list of int),
    ``valuation_time`` (ISO timestamp: the market date, from which options' time to expiry
    counts), ``config`` (``raw``: the parsed RUN.toml mapping, ``overrides``: the flag
    overrides, ``source``: where the TOML came from; the configuration is rebuilt with
    :func:`riskmodel.config.config_from_mapping`), ``config_sha256`` (digest of the resolved
    configuration, checked on load), ``weights`` (per horizon: whether ``weights_{h}d.npy``
    exists), ``stress`` (per horizon: ``labels``, one per stress scenario column, and ``sets``,
    ``{kind, start, stop}`` column ranges in the order the engine reduces them), and, only when
    the run had them, ``floor`` (per horizon: whether ``floor_weights_{h}d.npy`` exists) and
    ``previous`` (true: ``previous.parquet`` exists).
``instruments.parquet``
    Every instrument of the instruments file: ``instrument_id, kind, underlying, multiplier,
    factor`` (and the option columns), ``price`` (the factor's price at the market date; NaN
    when not priced) and ``pnl_row`` (int64, the row in the P&L arrays; -1 when the run did not
    price the instrument's factor). Every instrument whose factor the run priced has a row,
    held by the book or not, so what-if trades can open positions in it.
``factors.parquet``
    ``factor, price, return_kind, sigma_1d, sigma_rel``.
``collateral.parquet``
    The accounts as margined: ``account_id, netting_set, collateral, account_type``.
``pnl_{h}d.npy``, ``weights_{h}d.npy``
    float64 (n_priced, n_scenarios): model-scenario P&L per unit of each priced instrument
    (row = ``pnl_row``); the scenario weights (n_scenarios,), only when weighted.
``stress_pnl_{h}d.npy``
    float64 (n_priced, n_stress_scenarios): P&L per unit of the historical-window and user
    stress scenarios (the grid is recomputed from prices and configuration).
``floor_pnl_{h}d.npy``, ``floor_weights_{h}d.npy``
    The anti-procyclicality floor's long-lookback scenarios, when the tool is on.
``previous.parquet``
    ``account_id, netting_set, model_margin`` of the previous run (``--previous-run``), which
    the buffer compares against.
``shocks_{h}d.npy``, ``floor_shocks_{h}d.npy``, ``stress_shocks_{h}d_{k}.npy``
    float64 (n_scenarios, n_factors): the factor moves (return units) of the model scenario
    set, of the floor's and of the ``k``-th stress scenario set (block order), from which the
    P&L arrays above were priced; ``state.json`` ``shocks`` (per horizon: ``model``, ``floor``
    (or null) and ``stress``, each ``{kind, horizon, factors}``) describes them. Written by
    runs of this version; the intraday loop (:mod:`riskmodel.engine.remark`) reprices the
    P&L at new marks from them. A run stored without them loads with no shocks.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from riskmodel.config import RunConfig, config_from_mapping, read_toml
from riskmodel.engine.market import (
    ModelPnl,
    PricedMarket,
    ScenarioShocks,
    StressBlock,
    StressPnl,
)
from riskmodel.errors import InputDataError
from riskmodel.io.direct import save_npy
from riskmodel.scenarios.scenario_set import ScenarioSet

STATE_DIR = "state"
FORMAT = "riskmodel-run-state"
VERSION = 1


@dataclass(frozen=True, eq=False)
class StoredRun:
    """A run's priced market and what goes with it on disk (module docstring).

    Attributes
    ----------
    market : PricedMarket
    instrument_table : DataFrame, every instrument with ``price`` and ``pnl_row``.
    collateral : DataFrame, ``account_id, netting_set, collateral, account_type``.
    config_source : dict, ``raw``, ``overrides``, ``source``: how to rebuild the configuration.
    config_sha256 : str, the digest of the configuration the run used.
    previous : DataFrame or None, the previous run's ``account_id, netting_set, model_margin``.
    """

    market: PricedMarket
    instrument_table: pd.DataFrame
    collateral: pd.DataFrame
    config_source: dict[str, Any]
    config_sha256: str
    previous: pd.DataFrame | None = None

    def config(self) -> RunConfig:
        """The run's configuration, rebuilt from the stored TOML mapping and overrides."""
        src = self.config_source
        return config_from_mapping(src["raw"], src.get("overrides") or {},
                                   source=str(src.get("source", "stored config")))


def instrument_table(instruments: pd.DataFrame, factors: list[str], spot: pd.Series
                     ) -> pd.DataFrame:
    """Every instrument with ``price`` (its factor's, NaN when the run does not price it) and
    ``pnl_row`` (its row in the P&L arrays, file order; -1 when not priced)."""
    table = instruments.reset_index(drop=True).copy()
    priced = table["factor"].isin(factors).to_numpy()
    table["price"] = [float(spot[f]) if f in factors else np.nan for f in table["factor"]]
    pnl_row = np.full(len(table), -1, dtype=np.int64)
    pnl_row[priced] = np.arange(int(priced.sum()))
    table["pnl_row"] = pnl_row
    return table


def priced_rows(table: pd.DataFrame) -> pd.DataFrame:
    """The priced instruments of an :func:`instrument_table`, in P&L-row order, indexed by
    ``instrument_id``: the instrument axis of the run."""
    priced = table[table["pnl_row"] >= 0].sort_values("pnl_row")
    return priced.set_index("instrument_id", drop=False)


def unpriced_factors(table: pd.DataFrame) -> dict[str, str]:
    """``instrument_id -> factor`` of the instruments the run did not price."""
    rows = table[table["pnl_row"] < 0]
    return dict(zip(rows["instrument_id"], rows["factor"]))


def load_config_source(
    path: str | Path | None, overrides: Mapping[str, Any] | None = None
) -> tuple[RunConfig, dict[str, Any]]:
    """Read RUN.toml like :func:`riskmodel.config.load_config`, also returning what to store:
    ``raw`` (the parsed TOML mapping), ``overrides`` (the non-None flag values) and
    ``source``; :meth:`StoredRun.config` rebuilds the configuration from it."""
    raw = read_toml(path)
    kept = {k: v for k, v in (overrides or {}).items() if v is not None}
    source = str(path) if path else "defaults"
    config = config_from_mapping(raw, kept, source=source)
    return config, {"raw": raw, "overrides": kept, "source": source}


def write_run(folder: Path, run: StoredRun) -> None:
    """Write ``run`` under ``folder`` (created); see the module docstring for the format."""
    folder.mkdir(parents=True, exist_ok=True)
    market = run.market
    horizons = market.horizons
    run.instrument_table.to_parquet(folder / "instruments.parquet", index=False)
    market.factors.to_parquet(folder / "factors.parquet", index=False)
    run.collateral.to_parquet(folder / "collateral.parquet", index=False)
    stress = market.stress or {h: StressPnl.empty(len(market.instruments)) for h in horizons}
    for h in horizons:
        _save_pnl(folder, "", h, market.model[h])
        save_npy(folder / f"stress_pnl_{h}d.npy",
                 np.ascontiguousarray(stress[h].pnl, dtype=np.float64))
        if h in market.floor:
            _save_pnl(folder, "floor_", h, market.floor[h])
    meta: dict[str, Any] = {
        "format": FORMAT,
        "version": VERSION,
        "horizons": horizons,
        "config": run.config_source,
        "config_sha256": run.config_sha256,
        "valuation_time": market.valuation_time.isoformat(),
        "weights": {str(h): market.model[h].weights is not None for h in horizons},
        "stress": {
            str(h): {"labels": [str(x) for x in stress[h].labels],
                     "sets": [vars(b) for b in stress[h].blocks]}
            for h in horizons
        },
    }
    if market.floor:
        meta["floor"] = {str(h): f.weights is not None for h, f in sorted(market.floor.items())}
    if run.previous is not None:
        run.previous.to_parquet(folder / "previous.parquet", index=False)
        meta["previous"] = True
    if market.shocks:
        meta["shocks"] = {str(h): _save_shocks(folder, h, s)
                          for h, s in sorted(market.shocks.items())}
    (folder / "state.json").write_text(json.dumps(meta, indent=1) + "\n")


def _save_pnl(folder: Path, prefix: str, h: int, pnl: ModelPnl) -> None:
    save_npy(folder / f"{prefix}pnl_{h}d.npy", np.ascontiguousarray(pnl.pnl, dtype=np.float64))
    if pnl.weights is not None:
        np.save(folder / f"{prefix}weights_{h}d.npy", np.asarray(pnl.weights, dtype=np.float64))


def _save_shocks(folder: Path, h: int, shocks: ScenarioShocks) -> dict[str, Any]:
    """Write a horizon's scenario sets' moves; returns their ``state.json`` description."""
    def save(name: str, scenarios: ScenarioSet) -> dict[str, Any]:
        save_npy(folder / name, np.ascontiguousarray(scenarios.shocks, dtype=np.float64))
        return {"kind": scenarios.kind, "horizon": int(scenarios.horizon),
                "factors": list(scenarios.factors)}

    return {"model": save(f"shocks_{h}d.npy", shocks.model),
            "floor": (None if shocks.floor is None
                      else save(f"floor_shocks_{h}d.npy", shocks.floor)),
            "stress": [save(f"stress_shocks_{h}d_{k}.npy", s)
                       for k, s in enumerate(shocks.stress)]}


def _read_shocks(folder: Path, h: int, info: Mapping[str, Any], model: ModelPnl,
                 stress: StressPnl, floor: ModelPnl | None) -> ScenarioShocks:
    """A horizon's scenario sets as :func:`_save_shocks` wrote them: model and floor labels
    are scenario numbers (the stress labels are the stored ones)."""
    def read(name: str, spec: Mapping[str, Any], labels: np.ndarray | None,
             weights: np.ndarray | None) -> ScenarioSet:
        try:
            shocks = np.load(folder / name, allow_pickle=False)
            return ScenarioSet(shocks, tuple(spec["factors"]),
                               np.arange(len(shocks)) if labels is None else labels,
                               str(spec["kind"]), int(spec["horizon"]), weights)
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise InputDataError(f"{folder / name}: cannot read the scenario shocks: "
                                 f"{exc}") from None

    stress_sets = tuple(
        read(f"stress_shocks_{h}d_{k}.npy", spec,
             np.asarray(stress.labels[b.start:b.stop], dtype=object), None)
        for k, (spec, b) in enumerate(zip(info["stress"], stress.blocks, strict=True)))
    return ScenarioShocks(
        read(f"shocks_{h}d.npy", info["model"], None, model.weights),
        None if info.get("floor") is None or floor is None
        else read(f"floor_shocks_{h}d.npy", info["floor"], None, floor.weights),
        stress_sets)


def read_run(run_dir: str | Path) -> StoredRun:
    """Read ``run_dir/state/``; raises :class:`InputDataError` when absent or inconsistent."""
    folder = Path(run_dir) / STATE_DIR
    meta = _read_meta(run_dir, folder)

    def array(name: str) -> np.ndarray:
        try:
            return np.load(folder / name, allow_pickle=False)
        except (OSError, ValueError) as exc:
            raise InputDataError(f"{folder / name}: cannot read: {exc}") from None

    table = pd.read_parquet(folder / "instruments.parquet")
    n_priced = int((table["pnl_row"] >= 0).sum())

    def checked(name: str) -> np.ndarray:
        arr = array(name)
        if arr.ndim != 2 or arr.shape[0] != n_priced or arr.dtype != np.float64:
            raise InputDataError(f"{folder}/{name}: shape {arr.shape} dtype {arr.dtype}, "
                                 f"expected float64 ({n_priced}, n_scenarios)")
        if not np.isfinite(arr).all():  # checked once: the engine then skips the scan
            raise InputDataError(f"{folder}/{name}: non-finite values")
        return arr

    model, stress, floor, shocks = {}, {}, {}, {}
    for h in (int(x) for x in meta["horizons"]):
        weights = array(f"weights_{h}d.npy") if meta["weights"][str(h)] else None
        model[h] = ModelPnl(checked(f"pnl_{h}d.npy"), weights)
        info = meta["stress"][str(h)]
        stress[h] = StressPnl(checked(f"stress_pnl_{h}d.npy"),
                              np.asarray(info["labels"], dtype=object),
                              tuple(StressBlock(**b) for b in info["sets"]))
        if stress[h].pnl.shape[1] != len(stress[h].labels):
            raise InputDataError(f"{folder}/stress_pnl_{h}d.npy: {stress[h].pnl.shape[1]} "
                                 f"columns for {len(stress[h].labels)} labels")
        if str(h) in meta.get("floor", {}):
            floor[h] = ModelPnl(checked(f"floor_pnl_{h}d.npy"),
                                array(f"floor_weights_{h}d.npy") if meta["floor"][str(h)]
                                else None)
        if str(h) in meta.get("shocks", {}):
            shocks[h] = _read_shocks(folder, h, meta["shocks"][str(h)], model[h], stress[h],
                                     floor.get(h))
    market = PricedMarket(priced_rows(table), pd.read_parquet(folder / "factors.parquet"),
                          pd.Timestamp(meta.get("valuation_time") or 0), model, stress, floor,
                          unpriced_factors(table), shocks)
    previous = pd.read_parquet(folder / "previous.parquet") if meta.get("previous") else None
    return StoredRun(market, table, pd.read_parquet(folder / "collateral.parquet"),
                     meta["config"], meta.get("config_sha256", ""), previous)


def _read_meta(run_dir: str | Path, folder: Path) -> dict[str, Any]:
    meta_path = folder / "state.json"
    if not meta_path.is_file():
        raise InputDataError(f"{run_dir}: no {STATE_DIR}/state.json: not the output folder of an "
                             "eod run of this version (rerun eod)")
    try:
        meta = json.loads(meta_path.read_text())
    except json.JSONDecodeError as exc:
        raise InputDataError(f"{meta_path}: not valid JSON: {exc}") from None
    if meta.get("format") != FORMAT or meta.get("version") != VERSION:
        raise InputDataError(f"{meta_path}: format {meta.get('format')!r} version "
                             f"{meta.get('version')!r} (expected {FORMAT!r} {VERSION})")
    if not meta.get("config"):
        raise InputDataError(f"{meta_path}: the run did not record its configuration source")
    return meta
