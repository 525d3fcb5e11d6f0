"""``riskmodel liquidation-map``: the venue liquidation map (and cascades) of a finished run,
written atomically under ``--out``.

Files: ``liquidation_map.parquet`` and ``.csv`` (:data:`MAP_COLUMNS`), ``liquidation_map.png``
(heatmap), ``cascades.parquet`` (with ``--cascade``), ``report.html`` (self-contained: summary,
heatmap, tables) and ``manifest.json`` (run folder, grid, counts, timings, notes).
"""

from __future__ import annotations

import datetime as _dt
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
from riskmodel.report.liquidation_map import heatmap_png, html_page


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
        png = heatmap_png(table, book.n_sets, staging / "liquidation_map.png")
        if cascades is not None:
            write_table(cascades, staging / "cascades.parquet")
        summary = {k: manifest[k] for k in ("run", "netting_sets", "liquidation_now")}
        summary["worst"] = manifest["worst"]
        html_page(table, png, staging / "report.html", title="Liquidation map",
                  summary=summary, cascade=cascades)
        write_json(manifest, staging / "manifest.json")
    return manifest
