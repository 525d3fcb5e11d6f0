"""The liquidation map as a person reads it: a heatmap (PNG) and a self-contained HTML page.

The heatmap has one row per scope (each underlying, then ``ALL``) and one column per move of the
grid; the colour is the share of netting sets in liquidation at that move, and a second panel
shows the notional that would be liquidated. The HTML page embeds the PNG (base64) and the
tables, so it opens in any browser with no other file.
"""

from __future__ import annotations

import html
from pathlib import Path

import numpy as np
import pandas as pd

from riskmodel.report.common import new_figure, png_data_uri, save_png


def heatmap_png(table: pd.DataFrame, n_sets: int, path: Path) -> Path:
    """Write the heatmap of ``table`` (:data:`riskmodel.liquidation.map.MAP_COLUMNS`)."""
    scopes = list(dict.fromkeys(table["scope"]))
    moves = np.sort(table["move"].unique())
    share = table.pivot(index="scope", columns="move", values="n_liquidation") \
        .reindex(index=scopes, columns=moves) / max(n_sets, 1)
    notional = table.pivot(index="scope", columns="move", values="notional_liquidated") \
        .reindex(index=scopes, columns=moves)
    fig = new_figure(11, 1.6 + 0.9 * len(scopes))
    axes = fig.subplots(1, 2, sharey=True)
    step = max(1, len(moves) // 10)
    ticks = np.arange(0, len(moves), step)
    for ax, values, title, cmap in (
        (axes[0], 100 * share.to_numpy(), "netting sets in liquidation (%)", "Reds"),
        (axes[1], notional.to_numpy() / 1e6, "notional liquidated (millions)", "Purples"),
    ):
        image = ax.imshow(values, aspect="auto", cmap=cmap, interpolation="nearest")
        ax.set_title(title)
        ax.set_xticks(ticks, [f"{100 * moves[i]:+.0f}%" for i in ticks], rotation=45)
        ax.set_yticks(np.arange(len(scopes)), scopes)
        ax.set_xlabel("instant move of the scope's price(s)")
        fig.colorbar(image, ax=ax, shrink=0.9)
    return save_png(fig, path, dpi=110)


def html_page(table: pd.DataFrame, png: Path, path: Path, *, title: str,
              summary: dict[str, object], cascade: pd.DataFrame | None = None) -> Path:
    """Write the self-contained report page: summary, heatmap and tables."""
    e = html.escape
    parts = [
        "<!DOCTYPE html><html><head><meta charset='utf-8'>",
        f"<title>{e(title)}</title>",
        "<style>body{font-family:sans-serif;margin:2em;max-width:80em}"
        "table{border-collapse:collapse;font-size:85%}td,th{border:1px solid #ccc;"
        "padding:2px 6px;text-align:right}th{background:#f3f3f3}</style></head><body>",
        f"<h1>{e(title)}</h1>",
        "<table>" + "".join(f"<tr><th>{e(str(k))}</th><td>{e(str(v))}</td></tr>"
                            for k, v in summary.items()) + "</table>",
        f'<h2>Heatmap</h2><img alt="liquidation map" src="{png_data_uri(png.read_bytes())}">',
        "<h2>Map</h2>",
        table.to_html(index=False, float_format=lambda v: f"{v:,.4g}", na_rep=""),
    ]
    if cascade is not None:
        parts += ["<h2>Cascades (a stress tool, not a forecast)</h2>",
                  cascade.to_html(index=False, float_format=lambda v: f"{v:,.4g}")]
    parts.append("</body></html>")
    path.write_text("\n".join(parts), encoding="utf-8")
    return path
