"""The liquidation map as a person reads it: ``report.html`` and ``liquidation_map.png``.

The page opens with its verdict in words: how many netting sets are in liquidation now, the
worst move of the grid and what it would liquidate, the nearest cliff of each underlying (the
smallest move that puts a tenth of the sets into liquidation) and, with cascades, how far the
closing flow moves prices and how many more sets it liquidates. Then the figures: the heatmap
(share of sets in liquidation and notional liquidated, scope x move), the sets in liquidation
against the move per scope, and the cascades' extra liquidations and extra moves. Then the
tables, moves printed as signed percentages.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from riskmodel.report import formats as f
from riskmodel.report.columns import columns
from riskmodel.report.common import new_figure
from riskmodel.report.page import (
    Column,
    PageFigure,
    embed,
    frame_table,
    legend_beside,
    page_context,
    write_page,
)

__all__ = ["worst_text", "write_map_report"]

CLIFF_SHARE = 0.10  # a "cliff": the smallest move that puts this share of sets into liquidation


def heatmap_figure(table: pd.DataFrame, n_sets: int, path: Path) -> PageFigure:
    """Share of sets in liquidation and notional liquidated, scope x move (also ``path``)."""
    scopes = list(dict.fromkeys(table["scope"]))
    moves = np.sort(table["move"].unique())
    share = table.pivot(index="scope", columns="move", values="n_liquidation") \
        .reindex(index=scopes, columns=moves) / max(n_sets, 1)
    notional = table.pivot(index="scope", columns="move", values="notional_liquidated") \
        .reindex(index=scopes, columns=moves)
    fig = new_figure(11, 1.8 + 0.9 * len(scopes))
    axes = fig.subplots(1, 2, sharey=True)
    step = max(1, len(moves) // 10)
    ticks = np.arange(0, len(moves), step)
    for ax, values, title, unit, cmap in (
        (axes[0], 100 * share.to_numpy(), "Netting sets in liquidation", "% of sets", "Reds"),
        (axes[1], notional.to_numpy() / 1e6, "Notional liquidated", "millions, reporting "
         "currency", "Purples"),
    ):
        image = ax.imshow(values, aspect="auto", cmap=cmap, interpolation="nearest")
        ax.set_title(title, fontsize=10)
        ax.set_xticks(ticks, [f.signed_pct(moves[i], 0) for i in ticks], rotation=45)
        ax.set_yticks(np.arange(len(scopes)), scopes)
        ax.set_xlabel("instant move of the scope's price(s)")
        ax.set_ylabel("scope (ALL: every underlying)")
        fig.colorbar(image, ax=ax, shrink=0.9).set_label(unit)
    return _embed(fig, path, "Liquidation heatmap",
                  f"Heatmap of the share of {f.count(n_sets)} netting sets in liquidation and "
                  "of the notional liquidated, for each scope and instant move.")


def _embed(fig: Any, path: Path | None, title: str, alt: str, caption: str = "") -> PageFigure:
    return embed(fig, title=title, alt=alt, caption=caption, path=path, dpi=110)


def curves_figure(table: pd.DataFrame, n_sets: int, now: int) -> PageFigure:
    """Sets in liquidation against the move, one line per scope; ``now``: in liquidation at
    today's prices."""
    fig = new_figure(11, 4.2)
    ax = fig.subplots()
    for scope, rows in table.groupby("scope", sort=False):
        rows = rows.sort_values("move")
        ax.plot(100 * rows["move"], rows["n_liquidation"], lw=1.6 if scope == "ALL" else 1.1,
                label=str(scope), color="black" if scope == "ALL" else None)
    ax.axvline(0, color="0.7", lw=0.8)
    ax.axhline(now + CLIFF_SHARE * n_sets, color="0.6", lw=0.8, ls=":")
    ax.set(xlabel="instant move of the scope's price(s), %", ylabel="netting sets in liquidation",
           title="Netting sets in liquidation by move")
    legend_beside(fig, ax, title="scope")
    return _embed(fig, None, "Sets in liquidation by move",
                  "Lines of the number of netting sets in liquidation against the instant "
                  "move, one per underlying and one for all together.",
                  f"The dotted line is today's count plus {f.pct(CLIFF_SHARE, 0)} of the sets: "
                  "where a line crosses it is the cliff the verdict names.")


def cascade_figure(cascades: pd.DataFrame) -> PageFigure:
    """Extra liquidations and the scope's extra move, against the initial move."""
    fig = new_figure(11, 5.2)
    top, bottom = fig.subplots(2, 1, sharex=True)
    for scope, rows in cascades.groupby("scope", sort=False):
        rows = rows.sort_values("move")
        colour = "black" if scope == "ALL" else None
        top.plot(100 * rows["move"], rows["extra_liquidations"], label=str(scope),
                 color=colour)
        column = f"extra_move_{scope}"
        if column in rows:
            extra = rows[column].to_numpy()
        else:  # ALL: the extra move of largest size, with its sign
            moved = rows.filter(like="extra_move_").to_numpy()
            extra = moved[np.arange(len(moved)), np.argmax(np.abs(moved), axis=1)] \
                if moved.size else np.zeros(len(rows))
        bottom.plot(100 * rows["move"], 100 * extra, color=colour)
    top.set_ylabel("extra sets liquidated")
    top.set_title("Cascades: what closing the liquidated sets adds")
    bottom.set_ylabel("extra move, %")
    bottom.set_xlabel("initial instant move of the scope's price(s), %")
    legend_beside(fig, top, title="scope")
    return _embed(fig, None, "Cascades",
                  "Extra netting sets liquidated by the cascade and the extra price move of "
                  "the scope's underlying (ALL: the largest), against the initial move.",
                  "Square-root impact of closing every liquidated set in full, iterated until "
                  "no new liquidation: a stress tool, not a forecast.")


def worst_text(worst: dict[str, Any], n_sets: int) -> str:
    """The worst point of the map in words."""
    scope = "all underlyings together" if worst["scope"] == "ALL" else worst["scope"]
    kind = "fall" if worst["move"] < 0 else "rise"
    return (f"a {kind} of {round(100 * abs(worst['move']), 6):g}% of {scope} puts "
            f"{f.count(worst['n_liquidation'])} of {f.count(n_sets)} netting sets "
            f"({f.pct(worst['n_liquidation'] / max(n_sets, 1))}) in liquidation")


def _cliffs(table: pd.DataFrame, n_sets: int) -> list[str]:
    """Per scope: the smallest move that puts :data:`CLIFF_SHARE` of the sets in liquidation."""
    out = []
    for scope, rows in table.groupby("scope", sort=False):
        hit = rows[rows["n_liquidation"] >= CLIFF_SHARE * n_sets + rows.loc[
            rows["move"].abs().idxmin(), "n_liquidation"]]
        if len(hit):
            row = hit.loc[hit["move"].abs().idxmin()]
            out.append(f"{scope} {f.signed_pct(row['move'], 1)}")
    return out


def _verdict(table: pd.DataFrame, manifest: dict[str, Any], cascades: pd.DataFrame | None,
             currency: str) -> tuple[str, list[str], list[dict[str, str]]]:
    n = int(manifest["netting_sets"])
    now = manifest.get("liquidation_now") or 0
    worst = manifest["worst"]
    row = table[(table["scope"] == worst["scope"]) & np.isclose(table["move"], worst["move"])]
    notional = float(row["notional_liquidated"].iloc[0]) if len(row) else float("nan")
    verdict = (f"{f.count(now)} of {f.count(n)} netting sets are in liquidation at today's "
               f"prices; at the worst point of the grid, {worst_text(worst, n)}, closing "
               f"{f.short_amount(notional, currency)} of notional.")
    cliffs = _cliffs(table, n)
    findings = [
        ("Smallest moves that put a further "
         f"{f.pct(CLIFF_SHARE, 0)} of the sets into liquidation: " + ", ".join(cliffs) + "."
         ) if cliffs else f"No move of the grid puts a further {f.pct(CLIFF_SHARE, 0)} of the "
        "sets into liquidation.",
        f"The grid: {manifest['grid']['points']} instant moves from "
        f"{f.signed_pct(manifest['grid']['from'], 0)} to {f.signed_pct(manifest['grid']['to'], 0)}"
        " of each underlying alone and of all together; a liquidated set is closed in full.",
    ]
    headline = [
        {"value": f.count(n), "label": "netting sets"},
        {"value": f.count(now), "label": "in liquidation now"},
        {"value": f.count(worst["n_liquidation"]), "label": "in liquidation at the worst move"},
        {"value": f.short_amount(notional, currency),
         "label": "notional closed at the worst move"},
    ]
    if cascades is not None and len(cascades):
        moves = cascades.filter(like="extra_move_").abs().to_numpy()
        top = cascades.loc[cascades["extra_liquidations"].idxmax()]
        findings.append(
            f"Cascades: closing the liquidated sets moves prices by up to "
            f"{f.pct(float(moves.max(initial=0.0)), 2)} more and liquidates at most "
            f"{f.count(top['extra_liquidations'])} more sets ({top['scope']} at "
            f"{f.signed_pct(top['move'])}); every cascade settled within "
            f"{f.count(cascades['rounds'].max())} rounds.")
        headline.append({"value": f.count(top["extra_liquidations"]),
                         "label": "most extra sets liquidated by a cascade"})
    return verdict, findings, headline


def _map_table(table: pd.DataFrame) -> Any:
    return frame_table(table, columns(
        "scope", "move", "price", "n_margin_call", "n_liquidation", "new_margin_call",
        "new_liquidation", "notional_liquidated", "penalties"),
        caption="The map (liquidation_map.csv)")


def _cascade_table(cascades: pd.DataFrame) -> Any:
    extra = [Column(c, f"extra move {c.removeprefix('extra_move_')}",
                    lambda v: f.signed_pct(v, 2)) for c in cascades.columns
             if c.startswith("extra_move_")]
    return frame_table(cascades, [*columns(
        "scope", "move", "rounds", "liquidated_initial", "liquidated_final",
        "extra_liquidations", headers={"move": "initial move"}), *extra],
        caption="Cascades (cascades.csv)")


def write_map_report(folder: Path, table: pd.DataFrame, manifest: dict[str, Any],
                     cascades: pd.DataFrame | None = None, *, run_date: str = "",
                     currency: str = "USD") -> Path:
    """Write ``liquidation_map.png`` and ``report.html`` into ``folder``; returns the page.

    ``table``: the map (:data:`riskmodel.liquidation.map.MAP_COLUMNS`); ``manifest``: the
    map's manifest (``netting_sets``, ``liquidation_now``, ``worst``, ``grid``, ``run``);
    ``cascades``: the cascade table, when computed.
    """
    folder = Path(folder)
    n = int(manifest["netting_sets"])
    figures = [heatmap_figure(table, n, folder / "liquidation_map.png"),
               curves_figure(table, n, int(manifest.get("liquidation_now") or 0))]
    if cascades is not None and len(cascades):
        figures.append(cascade_figure(cascades))
    verdict, findings, headline = _verdict(table, manifest, cascades, currency)
    notes = list((manifest.get("cascades") or {}).get("notes", []))
    return write_page(
        folder / "report.html", "liquidation_map.html.j2",
        **page_context(title="Liquidation map" + (f" of the run of {run_date}" if run_date
                                                  else ""),
                       subtitle=f"Run {manifest['run']}", verdict=verdict, tone="neutral",
                       findings=findings, headline=headline),
        figures=figures, map_table=_map_table(table), notes=notes,
        cascade_table=_cascade_table(cascades) if cascades is not None else None)
