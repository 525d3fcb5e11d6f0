"""The state an ``eod`` run keeps under ``DIR/state/`` so that what-if margin needs no re-run.

Written by :func:`riskmodel.batch.eod.write_eod` inside the same staged output as the margin
tables (so atomically), read by :func:`read_state` (and :func:`riskmodel.margin.whatif.load_run`).
Plain formats only: ``.npy`` (read with ``allow_pickle=False``), Parquet and JSON.

Files (``h`` is a margin period of risk in days; one set of files per distinct horizon the run
computed, i.e. the horizons of its netting sets):

``state.json``
    ``format`` (``"riskmodel-run-state"``), ``version`` (1), ``horizons`` (sorted list of int),
    ``valuation_time`` (ISO timestamp: the market date, from which options' time to expiry
    counts),
    ``config`` (``raw``: the parsed RUN.toml mapping, ``overrides``: the flag overrides,
    ``source``: where the TOML came from; ``RunConfig`` is rebuilt with
    :func:`riskmodel.config.config_from_mapping`), ``config_sha256`` (digest of the resolved
    config, checked on load), ``weights`` (per horizon: whether ``weights_{h}d.npy`` exists) and
    ``stress`` (per horizon: ``labels``, one per stress scenario column, and ``sets``, a list of
    ``{kind, start, stop}`` column ranges in the order the run reduced them: historical windows
    first, then each user shock file).
``instruments.parquet``
    Every instrument of the instruments file: ``instrument_id, kind, underlying, multiplier,
    factor, price`` (the factor's price at the market date; NaN when not priced) and
    ``pnl_row`` (int64, the row in the P&L arrays; -1 when the run did not price the instrument's
    factor). Every instrument whose factor the run priced has a row, held by the book or not,
    so what-if trades can open positions in it.
``factors.parquet``
    ``factor, price, return_kind, sigma_1d, sigma_rel`` (one-day volatility in return units and
    as a relative move, as the distance to liquidation uses it).
``collateral.parquet``
    The accounts file as loaded: ``account_id, netting_set, collateral``.
``pnl_{h}d.npy``
    float64 (n_priced, n_scenarios): model-scenario P&L per unit quantity of each priced
    instrument (row = ``pnl_row``).
``weights_{h}d.npy``
    float64 (n_scenarios,): scenario weights, only when the scenario set is weighted.
``stress_pnl_{h}d.npy``
    float64 (n_priced, n_stress_scenarios): P&L per unit of the historical-window and user
    stress scenarios (the grid is recomputed from prices and configuration).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from riskmodel.config import RunConfig, config_from_mapping, read_toml
from riskmodel.errors import InputDataError

STATE_DIR = "state"
FORMAT = "riskmodel-run-state"
VERSION = 1


@dataclass
class StressBlock:
    """Columns ``start:stop`` of a horizon's stress P&L that came from one scenario set."""

    kind: str
    start: int
    stop: int


@dataclass
class RunStateData:
    """Everything :mod:`riskmodel.margin.whatif` needs from a finished run (see module doc).

    Attributes
    ----------
    instruments : DataFrame
        ``instrument_id, kind, underlying, multiplier, factor, price, pnl_row``.
    factors : DataFrame
        ``factor, price, return_kind, sigma_1d, sigma_rel``.
    collateral : DataFrame
        ``account_id, netting_set, collateral``.
    config_source : dict
        ``raw``, ``overrides``, ``source``: how to rebuild the run's ``RunConfig``.
    config_sha256 : str
        Digest of the resolved configuration the run used.
    pnl, weights, stress_pnl, stress_labels, stress_blocks : dict keyed by horizon (days)
    """

    instruments: pd.DataFrame
    factors: pd.DataFrame
    collateral: pd.DataFrame
    config_source: dict[str, Any]
    config_sha256: str
    pnl: dict[int, np.ndarray] = field(default_factory=dict)
    weights: dict[int, np.ndarray | None] = field(default_factory=dict)
    stress_pnl: dict[int, np.ndarray] = field(default_factory=dict)
    stress_labels: dict[int, list[str]] = field(default_factory=dict)
    stress_blocks: dict[int, list[StressBlock]] = field(default_factory=dict)
    valuation_time: str = ""  # ISO timestamp the options were valued at (the market date)

    def config(self) -> RunConfig:
        """The run's configuration, rebuilt from the stored TOML mapping and overrides."""
        src = self.config_source
        return config_from_mapping(src["raw"], src.get("overrides") or {},
                                   source=str(src.get("source", "stored config")))


def load_config_source(
    path: str | Path | None, overrides: Mapping[str, Any] | None = None
) -> tuple[RunConfig, dict[str, Any]]:
    """Read RUN.toml like :func:`riskmodel.config.load_config`, also returning what to store.

    Returns
    -------
    config : RunConfig
    source : dict
        ``raw`` (the parsed TOML mapping), ``overrides`` (the non-None flag values) and
        ``source``; :meth:`RunStateData.config` rebuilds ``config`` from it.
    """
    raw = read_toml(path)
    kept = {k: v for k, v in (overrides or {}).items() if v is not None}
    source = str(path) if path else "defaults"
    config = config_from_mapping(raw, kept, source=source)
    return config, {"raw": raw, "overrides": kept, "source": source}


def write_state(folder: Path, state: RunStateData) -> None:
    """Write ``state`` under ``folder`` (created); see the module docstring for the format."""
    folder.mkdir(parents=True, exist_ok=True)
    horizons = sorted(state.pnl)
    state.instruments.to_parquet(folder / "instruments.parquet", index=False)
    state.factors.to_parquet(folder / "factors.parquet", index=False)
    state.collateral.to_parquet(folder / "collateral.parquet", index=False)
    for h in horizons:
        np.save(folder / f"pnl_{h}d.npy", np.ascontiguousarray(state.pnl[h], dtype=np.float64))
        w = state.weights.get(h)
        if w is not None:
            np.save(folder / f"weights_{h}d.npy", np.asarray(w, dtype=np.float64))
        np.save(folder / f"stress_pnl_{h}d.npy",
                np.ascontiguousarray(state.stress_pnl[h], dtype=np.float64))
    meta = {
        "format": FORMAT,
        "version": VERSION,
        "horizons": horizons,
        "config": state.config_source,
        "config_sha256": state.config_sha256,
        "valuation_time": state.valuation_time,
        "weights": {str(h): state.weights.get(h) is not None for h in horizons},
        "stress": {
            str(h): {
                "labels": [str(x) for x in state.stress_labels[h]],
                "sets": [vars(b) for b in state.stress_blocks[h]],
            }
            for h in horizons
        },
    }
    (folder / "state.json").write_text(json.dumps(meta, indent=1) + "\n")


def read_state(run_dir: str | Path) -> RunStateData:
    """Read ``run_dir/state/``; raises :class:`InputDataError` when absent or inconsistent."""
    folder = Path(run_dir) / STATE_DIR
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

    def array(name: str) -> np.ndarray:
        try:
            return np.load(folder / name, allow_pickle=False)
        except (OSError, ValueError) as exc:
            raise InputDataError(f"{folder / name}: cannot read: {exc}") from None

    instruments = pd.read_parquet(folder / "instruments.parquet")
    n_priced = int((instruments["pnl_row"] >= 0).sum())
    state = RunStateData(
        instruments=instruments,
        factors=pd.read_parquet(folder / "factors.parquet"),
        collateral=pd.read_parquet(folder / "collateral.parquet"),
        config_source=meta["config"],
        config_sha256=meta.get("config_sha256", ""),
        valuation_time=meta.get("valuation_time", ""),
    )
    for h in (int(x) for x in meta["horizons"]):
        state.pnl[h] = array(f"pnl_{h}d.npy")
        state.weights[h] = array(f"weights_{h}d.npy") if meta["weights"][str(h)] else None
        state.stress_pnl[h] = array(f"stress_pnl_{h}d.npy")
        info = meta["stress"][str(h)]
        state.stress_labels[h] = list(info["labels"])
        state.stress_blocks[h] = [StressBlock(**b) for b in info["sets"]]
        for name, arr in (("pnl", state.pnl[h]), ("stress_pnl", state.stress_pnl[h])):
            if arr.ndim != 2 or arr.shape[0] != n_priced or arr.dtype != np.float64:
                raise InputDataError(f"{folder}/{name}_{h}d.npy: shape {arr.shape} dtype "
                                     f"{arr.dtype}, expected float64 ({n_priced}, n_scenarios)")
            if not np.isfinite(arr).all():  # checked once: what-if then skips the scan
                raise InputDataError(f"{folder}/{name}_{h}d.npy: non-finite values")
        if state.stress_pnl[h].shape[1] != len(state.stress_labels[h]):
            raise InputDataError(f"{folder}/stress_pnl_{h}d.npy: "
                                 f"{state.stress_pnl[h].shape[1]} columns for "
                                 f"{len(state.stress_labels[h])} labels")
    return state
