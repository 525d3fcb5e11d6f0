"""``riskmodel liquidation-map``: the venue liquidation map (and cascades) of a finished run,
written atomically under ``--out``.

Files: ``liquidation_map.parquet`` and ``.csv`` (:data:`MAP_COLUMNS`), ``liquidation_map.png``
(heatmap), ``cascades.parquet`` and ``.csv`` (with ``--cascade``), ``report.html``
(self-contained: verdict, figures, tables; :mod:`riskmodel.report.liquidation_map`) and
``manifest.json`` (run folder, grid, counts, the worst point also in words, timings, notes).
Moves are written rounded to 12 decimals (the grid's 0.025, not 0.025000000000000022).
"""

from __future__ import annotations

import datetime as _dt
import json
import time
from pathlib import Path
from typing import Any

from riskmodel import __version__
from riskmodel.io.outputs import staged_output, write_json, write_table
from riskmodel.liquidation.map import (
    cascade_table,
    liquidation_map,
    load_map_book,
    move_grid,
)
from riskmodel.report.liquidation_map import worst_text, write_map_report


def write_liquidation_map(run_dir: str | Path, out: str | Path, *, cascade: bool = False
                          ) -> dict[str, Any]:
    """Compute and write the map of ``run_dir`` under ``out``; returns the manifest."""
    timings: dict[str, float] = {}
    start = time.perf_counter()
    book = load_map_book(run_dir)
    timings["load"] = round(time.perf_counter() - start, 4)
    start = time.perf_counter()
    table = liquidation_map(book)
    timings["map"] = round(time.perf_counter() - start, 4)
    cascades = None
    if cascade:
        start = time.perf_counter()
        cascades = cascade_table(book)
        timings["cascades"] = round(time.perf_counter() - start, 4)
    grid = move_grid(book.config)
    table["move"] = table["move"].round(12)  # linspace's 0.025000000000000022 is the grid's 0.025
    now = table[table["move"] == 0.0]
    manifest: dict[str, Any] = {
        "riskmodel_version": __version__,
        "created_at": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "run": str(Path(run_dir)),
        "netting_sets": book.n_sets,
        "scopes": list(dict.fromkeys(table["scope"])),
        "grid": {"from": float(grid[0]), "to": float(grid[-1]), "points": len(grid)},
        "liquidation_now": int(now["n_liquidation"].iloc[0]) if len(now) else None,
        "worst": {
            "scope": str(table.loc[table["n_liquidation"].idxmax(), "scope"]),
            "move": float(table.loc[table["n_liquidation"].idxmax(), "move"]),
            "n_liquidation": int(table["n_liquidation"].max()),
        },
        "timings_s": timings,
    }
    manifest["worst"]["text"] = worst_text(manifest["worst"], book.n_sets)
    if cascades is not None:
        manifest["cascades"] = {
            "max_rounds": int(cascades["rounds"].max()),
            "max_extra_liquidations": int(cascades["extra_liquidations"].max()),
            "notes": cascades.attrs.get("notes", []),
            "note": "a stress tool, not a forecast: square-root impact of closing every "
                    "liquidated set in full, re-evaluated until no new liquidation",
        }
    with staged_output(out) as staging:
        write_table(table, staging / "liquidation_map.parquet")
        write_table(table, staging / "liquidation_map.csv")
        if cascades is not None:
            cascades["move"] = cascades["move"].round(12)
            write_table(cascades, staging / "cascades.parquet")
            write_table(cascades, staging / "cascades.csv")
        write_map_report(staging, table, manifest, cascades, **_run_facts(run_dir))
        write_json(manifest, staging / "manifest.json")
    return manifest


def _run_facts(run_dir: str | Path) -> dict[str, str]:
    """The market date and reporting currency of the run the map is of, for its page."""
    try:
        run = json.loads((Path(run_dir) / "manifest.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    currency = (run.get("config", {}).get("collateral", {}) or {}).get("reporting_currency")
    return {"run_date": str(run.get("market_date", ""))[:10],
            "currency": str(currency or "USD")}
