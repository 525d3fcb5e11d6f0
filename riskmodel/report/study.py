"""The parameter study's page, ``report.html``, and its frontier figure, ``study.png``.

The page opens with the verdict: which grid points are on the frontier of coverage (margin
breach rate) against cost (mean initial margin), i.e. beaten on both by no other grid point and
no flat rate, and what a flat rate would cost at their coverage. Then the figures: the frontier
(every grid point, coloured by the Basel traffic light of its VaR exceptions, the flat-rate
curves, efficient points ringed) and VaR exceptions against cost. Then the table of grid points
(each with its settings, coverage, cost and, when beaten, what beats it) and the study's facts.

It takes the tables :mod:`calibration.studies` computed (the study table and the frontier
table with its ``efficient`` mask); it computes no statistic of its own.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from riskmodel.report import formats as f
from riskmodel.report import page
from riskmodel.report.columns import columns
from riskmodel.report.common import new_figure

__all__ = ["write_study_report"]

LIGHTS = {"green": "#2da44e", "yellow": "#d4a72c", "red": "#cf222e"}


def _settings(row: pd.Series, keys: Sequence[str]) -> str:
    return ", ".join(f"{k} = {row[k]}" for k in keys)


def _varying(table: pd.DataFrame, keys: Sequence[str]) -> list[str]:
    """The grid keys that take more than one value (the others name no point apart)."""
    return [k for k in keys if table[k].astype(str).nunique() > 1] or list(keys)


_NOTE = re.compile(r"^point (\d+) \(.*?\): (.*)$", re.S)


def _grouped_notes(notes: Sequence[str]) -> list[str]:
    """The study's warnings, one per distinct message, naming the points that gave it."""
    points: dict[str, list[str]] = {}
    for note in notes:
        match = _NOTE.match(note)
        text, point = (match.group(2), match.group(1)) if match else (note, "")
        points.setdefault(text, []).append(point)
    return [(f"points {', '.join(p)}: " if any(p) else "") + text
            for text, p in points.items()]


def frontier_figure(table: pd.DataFrame, frontier: pd.DataFrame, path: Path) -> page.PageFigure:
    """Breach rate against mean margin: grid points, flat-rate curves, the frontier."""
    fig = new_figure(11, 5.4)
    ax = fig.subplots()
    grid = frontier[frontier["kind"] == "grid"]
    flat = frontier[frontier["kind"] == "flat rate"]
    # the view is the grid points' neighbourhood: flat rates far cheaper or dearer run off it
    top = float(grid["mean_margin"].max()) * 2 if len(grid) else np.inf
    ceiling = max(3 * float(grid["breach_rate"].max()) if len(grid) else 0.0, 0.01)
    _rule_curves(ax, flat, top, "flat rate on gross notional", color="0.45", lw=1.0,
                 marker=".", ms=3)
    _realisable_and_configurations(ax, frontier, grid, top)
    light = table.set_index("point")["traffic_light"].reindex(grid["point"]).astype(str)
    ax.scatter(grid["mean_margin"], 100 * grid["breach_rate"],
               c=[LIGHTS.get(t, "0.5") for t in light], s=46, zorder=3, edgecolors="black",
               linewidths=0.5, label="grid point (colour: traffic light)")
    best = grid[grid["efficient"]]
    ax.scatter(best["mean_margin"], 100 * best["breach_rate"], s=190, facecolors="none",
               edgecolors="black", linewidths=1.6, zorder=4, label="on the frontier")
    edge = frontier[frontier["efficient"] & (frontier["mean_margin"] <= top)] \
        .sort_values("mean_margin")
    ax.step(edge["mean_margin"], 100 * edge["breach_rate"], where="post", color="#0969da",
            lw=1.0, alpha=0.7, label="frontier")
    for x, y, n in zip(grid["mean_margin"], grid["breach_rate"], grid["point"]):
        ax.annotate(str(n), (x, 100 * y), xytext=(5, 4), textcoords="offset points",
                    fontsize=8)
    ax.set_xlim(0, top if np.isfinite(top) and top > 0 else None)
    ax.set_ylim(0, 100 * ceiling)
    ax.set_xlabel("cost: mean initial margin per (date, netting set), reporting currency")
    ax.set_ylabel("margin breach rate, % of (date, netting set)")
    ax.set_title("Coverage against cost: grid points and flat rates")
    page.legend_beside(fig, ax)
    return page.embed(fig, title="The frontier of coverage against cost", path=path,
                 alt="Scatter of margin breach rate against mean initial margin for every grid "
                     "point, with the flat-rate curves and the efficient points ringed.",
                 caption="Down and to the left is better. A ringed point is beaten on both "
                         "coverage and cost by no other grid point and no flat rate; the blue "
                         "step joins every efficient point, flat rates included. Purple: the "
                         "flat rate a venue could have run (re-set from the history it had), "
                         "scaled by a factor; thin lines join the confidences of one "
                         "configuration.")


def _rule_curves(ax: Any, rules: pd.DataFrame, top: float, name: str, **style: Any
                 ) -> list[pd.DataFrame]:
    """One line per distinct curve of a flat-rate rule (the rows of the points it was computed
    on named when there are several), cut at the view's cost ``top``; returns the curves."""
    groups = list(rules.groupby("points", sort=False))
    curves = []
    for i, (points, curve) in enumerate(groups):
        curve = curve[curve["mean_margin"] <= top]
        label = name + (f" (rows of points {points})" if len(groups) > 1 else "")
        ax.plot(curve["mean_margin"], 100 * curve["breach_rate"],
                ls=["-", "--", ":", "-."][i % 4], label=label, **style)
        curves.append(curve)
    return curves


def _realisable_and_configurations(ax: Any, frontier: pd.DataFrame, grid: pd.DataFrame,
                                   top: float) -> None:
    """The realisable flat rate's curves (its schedule scaled by a factor; the schedule as it
    ran marked) and, where a configuration has several confidences, the line through them."""
    real = frontier[frontier["kind"] == "realisable flat rate"]
    curves = _rule_curves(ax, real, top, "realisable flat rate x factor", color="#8250df",
                          lw=0.9, alpha=0.55)
    for i, curve in enumerate(curves):
        ran = curve[curve["rate"] == 1.0]
        ax.scatter(ran["mean_margin"], 100 * ran["breach_rate"], marker="D", s=30,
                   color="#8250df", zorder=3, label="realisable flat rate as run" if i == 0
                   else None)
    if "configuration" not in grid.columns:
        return
    for _, line in grid.groupby("configuration", sort=False):
        if len(line) > 1:
            line = line.sort_values("confidence")
            ax.plot(line["mean_margin"], 100 * line["breach_rate"], color="0.25", lw=0.7,
                    alpha=0.6, zorder=2)


def exceptions_figure(table: pd.DataFrame) -> page.PageFigure:
    """VaR exception rate against cost relative to the flat rate."""
    fig = new_figure(11, 4.2)
    ax = fig.subplots()
    cost = pd.to_numeric(table["im_over_flat"], errors="coerce").to_numpy(np.float64)
    y = 100 * table["exception_rate"].to_numpy(np.float64)
    ax.scatter(cost, y, c=[LIGHTS.get(str(t), "0.5") for t in table["traffic_light"]], s=46,
               zorder=3, edgecolors="black", linewidths=0.5)
    for x_i, y_i, n in zip(cost, y, table["point"]):
        if np.isfinite(x_i) and np.isfinite(y_i):
            ax.annotate(str(n), (x_i, y_i), xytext=(5, 4), textcoords="offset points",
                        fontsize=8)
    for rate in sorted(set(table["expected_rate"])):
        ax.axhline(100 * rate, color="0.4", ls="--", lw=0.8)
        ax.annotate(f"expected: 1 - confidence = {f.pct(rate, 2)}", (0.01, 100 * rate),
                    xycoords=("axes fraction", "data"), xytext=(0, 3),
                    textcoords="offset points", fontsize=8, color="0.3")
    ax.set_xlabel("cost: mean initial margin / mean flat-rate margin")
    ax.set_ylabel("VaR exception rate, %")
    ax.set_title("VaR exceptions against cost (colour: Basel traffic light)")
    return page.embed(fig, title="VaR exceptions against cost",
                 alt="Scatter of each grid point's VaR exception rate against its mean initial "
                     "margin over mean flat-rate margin, with the expected rate dashed.")


def _beaten_by(frontier: pd.DataFrame) -> dict[int, str]:
    """For each grid point not on the frontier, one point that beats it (in words)."""
    out: dict[int, str] = {}
    cost = frontier["mean_margin"].to_numpy()
    rate = frontier["breach_rate"].to_numpy()
    for i in np.flatnonzero((frontier["kind"] == "grid").to_numpy()
                            & ~frontier["efficient"].to_numpy()):
        wins = np.flatnonzero((cost <= cost[i]) & (rate <= rate[i])
                              & ((cost < cost[i]) | (rate < rate[i])))
        # prefer a grid point, then the cheapest
        j = min(wins.tolist(), key=lambda k: (frontier["kind"].iat[k] != "grid", cost[k]))
        out[int(frontier["point"].iat[i])] = (
            f"point {frontier['point'].iat[j]}" if frontier["kind"].iat[j] == "grid"
            else f"flat rate {f.pct(frontier['rate'].iat[j], 2)}")
    return out


def _verdict(table: pd.DataFrame, frontier: pd.DataFrame, keys: Sequence[str]
             ) -> tuple[str, str, list[str], list[dict[str, str]]]:
    grid = frontier[frontier["kind"] == "grid"]
    best = table[table["point"].isin(grid.loc[grid["efficient"], "point"])]
    n = len(table)
    if len(best):
        names = "; ".join(f"{p} ({_settings(r, keys)})" for p, (_, r) in
                          zip(best["point"], best.iterrows()))
        verdict = (f"{len(best)} of {n} grid points are on the frontier of coverage against "
                   f"cost (no grid point and no flat rate has both fewer margin breaches and a "
                   f"lower mean margin): {names}.")
        tone = "good"
    else:
        verdict = (f"None of the {n} grid points is on the frontier: for each, a flat rate or "
                   "another point has both fewer margin breaches and a lower mean margin.")
        tone = "attention"
    findings = []
    green = table[table["traffic_light"] == "green"].sort_values("mean_initial_margin")
    if len(green):
        g = green.iloc[0]
        findings.append(f"The cheapest point whose VaR is in the green zone is {g['point']} "
                        f"({_settings(g, keys)}): mean initial margin "
                        f"{f.number(g['mean_initial_margin'])}, "
                        f"{f.pct(g['im_over_flat'])} of the flat rate, margin breach rate "
                        f"{f.pct(g['margin_breach_rate'], 2)}.")
    else:
        findings.append("No grid point's VaR is in the Basel green zone.")
    for _, row in best.head(3).iterrows():
        flat_cost = row.get("flat_rate_equivalent_margin")
        if row["flat_rate_equivalent"] is not None and flat_cost:
            findings.append(
                f"At point {row['point']}'s coverage a flat rate needs "
                f"{f.pct(row['flat_rate_equivalent'], 2)} of gross notional, mean margin "
                f"{f.number(flat_cost)}: the model asks "
                f"{f.pct(row['mean_initial_margin'] / flat_cost)} of that.")
        real_cost = row.get("realisable_flat_rate_equivalent_margin")
        if real_cost is not None and np.isfinite(real_cost) and real_cost > 0:
            findings.append(
                f"The flat rate a venue could have run (re-set from its history), scaled to "
                f"point {row['point']}'s coverage, averages {f.number(real_cost)}: the model "
                f"asks {f.pct(row['mean_initial_margin'] / real_cost)} of that.")
    cheapest = best.sort_values("mean_initial_margin").head(1)
    headline = [{"value": f.count(n), "label": "grid points"},
                {"value": f.count(len(best)), "label": "on the frontier"}]
    if len(cheapest):
        c = cheapest.iloc[0]
        headline += [{"value": f.number(c["mean_initial_margin"]),
                      "label": f"mean margin of point {c['point']}, the cheapest efficient"},
                     {"value": f.pct(c["margin_breach_rate"], 2),
                      "label": "its margin breach rate"},
                     {"value": f.pct(c["flat_rate_equivalent"], 2),
                      "label": "flat rate at its coverage"}]
    return verdict, tone, findings, headline


def _points_table(table: pd.DataFrame, frontier: pd.DataFrame, keys: Sequence[str]) -> Any:
    beaten = _beaten_by(frontier)
    efficient = set(frontier.loc[(frontier["kind"] == "grid") & frontier["efficient"], "point"])
    frame = table.assign(frontier=[("yes" if p in efficient else f"no: beaten by "
                                    f"{beaten.get(p, '?')}") for p in table["point"]])
    light = {"green": "green", "yellow": "yellow", "red": "red"}
    grid = [page.Column(k, k.replace(".", ".\u200b"), str, False) for k in keys]  # wraps at dots
    extra = [page.Column(k, h, fmt) for k, h, fmt in _EXTRA_COLUMNS if k in frame.columns]
    return page.frame_table(frame, [*columns("point"), *grid, *columns(
        "exceptions", "exception_rate", "kupiec_pvalue", "traffic_light", "margin_breaches",
        "margin_breach_rate", "mean_initial_margin", "im_over_flat", "flat_rate_equivalent",
        "peak_to_trough"), *extra, *columns("frontier")],
        where="study.csv", classes={"traffic_light": lambda v: light.get(str(v), "")})


# the cost's peak and jumps and the realisable flat rate, where the study table has them
_EXTRA_COLUMNS: tuple[tuple[str, str, Any], ...] = (
    ("peak_initial_margin", "peak mean IM", f.number),
    ("max_jump_1d", "largest 1-date rise", f.number),
    ("im_over_flat_rate_equivalent", "IM / flat rate at equal coverage", f.pct),
    ("im_over_realisable_equivalent", "IM / realisable flat rate at equal coverage", f.pct),
    ("median_im_over_flat_rate_equivalent", "median set: IM / flat at equal coverage", f.pct),
    ("median_im_over_realisable_equivalent", "median set: IM / realisable at equal coverage",
     f.pct),
    ("coverage_passes", "sets passing Kupiec and Christoffersen at 1%",
     lambda v: v if isinstance(v, str) else f.DASH),
)


def write_study_report(folder: Path, table: pd.DataFrame, keys: Sequence[str],
                       frontier: pd.DataFrame, manifest: dict[str, Any],
                       notes: Sequence[str] = ()) -> Path:
    """Write ``study.png`` (the frontier) and ``report.html`` into ``folder``.

    ``table``: the study table (:func:`calibration.studies.run_study`); ``keys``: the grid's
    keys; ``frontier``: :func:`calibration.studies.frontier_table`; ``manifest``: the study's.
    """
    folder = Path(folder)
    figures = [frontier_figure(table, frontier, folder / "study.png"),
               exceptions_figure(table)]
    verdict, tone, findings, headline = _verdict(table, frontier, _varying(table, keys))
    window = manifest.get("window", {})
    first = table.iloc[0] if len(table) else None
    facts = page.key_values([
        ("grid", "; ".join(f"{k}: {', '.join(map(str, v))}"
                           for k, v in manifest.get("grid", {}).items())),
        ("dates", f"{f.date(first['start'])} to {f.date(first['end'])}, "
                  f"{f.count(first['n_dates'])} dates, step {window.get('step', 1)}"
         if first is not None else f.DASH),
        ("netting sets", f.count(first["n_portfolios"]) if first is not None else f.DASH),
        ("flags", ", ".join(f"{k} = {v}" for k, v in manifest.get("overrides", {}).items())
         or "none"),
        ("inputs", ", ".join(str(v.get("path", "")) for v in
                             manifest.get("inputs", {}).values())),
    ])
    return page.write_page(
        folder / "report.html", "study.html.j2",
        **page.page_context(title="Parameter study: coverage against cost", verdict=verdict,
                       tone=tone, findings=findings, headline=headline,
                       subtitle=f"{f.count(len(table))} grid points over "
                                f"{', '.join(keys)}"),
        figures=figures, points=_points_table(table, frontier, keys), facts=facts,
        warnings=_grouped_notes(notes))
