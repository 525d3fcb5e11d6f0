"""The default waterfall as a person reads it: one self-contained HTML page.

:func:`page_content` turns a waterfall run's tables and manifest into plain data (headline
sentences, figures as PNG bytes with titles and alt text, tables as DataFrames of display
strings), which :func:`render` lays out; the content does not depend on the layout, so it can
move onto the report layer's templates as it is. The page opens with the verdict in words (the
worst scenario, its bankruptcy loss and how it was paid, the insurance fund used and left, the
clearing-house's cover-1 and cover-2 funds), then the figures, then the tables, each scrolling
inside itself. It imports nothing of :mod:`riskmodel.waterfall`: the tables' columns are its
interface.
"""

from __future__ import annotations

import html
import io
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from riskmodel.report.common import new_figure, png_data_uri

PAID = (("fund_used", "insurance fund", "#4c72b0"), ("adl_amount", "auto-deleveraging",
        "#dd8452"), ("socialised", "socialised", "#c44e52"), ("uncovered", "uncovered",
                                                                "#222222"))
SCENARIO_COLUMNS = ["scenario", "source", "liquidated", "defaults", "notional_closed",
                    "slippage", "penalties_to_fund", "bankruptcy_loss", "fund_used",
                    "fund_left", "adl_amount", "adl_count", "socialised", "uncovered",
                    "cover_1", "cover_2", "rounds"]
TABLE_ROWS = 200


@dataclass
class Figure:
    title: str
    alt: str
    png: bytes


@dataclass
class Content:
    """What the page says, in order: ``title``, ``headline`` (sentences), ``facts`` (label,
    value), ``figures``, ``tables`` (title, note, frame of display strings), ``notes``."""

    title: str
    headline: list[str]
    facts: list[tuple[str, str]]
    figures: list[Figure] = field(default_factory=list)
    tables: list[tuple[str, str, pd.DataFrame]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def money(value: Any) -> str:
    """An amount in the reporting currency, thousands separated (``12,345,678``)."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        return "—"
    if not math.isfinite(v):
        return "—"
    return f"{v:,.0f}"


def page_content(waterfall: pd.DataFrame, adl: pd.DataFrame, cover: pd.DataFrame,
                 manifest: dict[str, Any]) -> Content:
    """The page's content (module docstring)."""
    w = waterfall
    title = "Default waterfall: when margin is not enough"
    if w.empty:
        return Content(title, ["No scenario was run."], [])
    worst = w.loc[w["bankruptcy_loss"].idxmax()]
    cfg = manifest.get("waterfall", {})
    cover_info = manifest.get("cover", {})
    c1, c2 = cover_info.get("cover_1", {}), cover_info.get("cover_2", {})
    loss = float(worst["bankruptcy_loss"])
    if loss > 0:
        verdict = (f"In the worst of {len(w):,} scenarios, “{worst['scenario']}”, "
                   f"{int(worst['defaults']):,} netting sets end below zero after their "
                   f"close-out, a bankruptcy loss of {money(loss)}. The insurance fund pays "
                   f"{money(worst['fund_used'])} and has {money(worst['fund_left'])} left; "
                   f"auto-deleveraging takes {money(worst['adl_amount'])} from "
                   f"{int(worst['adl_count']):,} profitable positions, "
                   f"{money(worst['socialised'])} is socialised and "
                   f"{money(worst['uncovered'])} stays uncovered.")
    else:
        verdict = (f"No scenario of {len(w):,} leaves a bankruptcy loss: every liquidated "
                   "netting set's own collateral covers its close-out.")
    covered = (f"Clearing-house view: a default fund of {money(c1.get('fund'))} covers the "
               f"member with the largest stress loss beyond margin (cover-1, in "
               f"“{c1.get('scenario')}”), {money(c2.get('fund'))} the two largest (cover-2, in "
               f"“{c2.get('scenario')}”: {', '.join(c2.get('members') or []) or 'none'}).")
    short = w[w["uncovered"] > 0]
    gaps = (f"{len(short):,} scenario(s) leave a loss uncovered." if len(short)
            else "No scenario leaves a loss uncovered.")
    facts = [
        ("insurance fund before any scenario", money(cfg.get("insurance_fund"))),
        ("penalty share feeding the fund", f"{float(cfg.get('penalty_to_fund', 0)):.0%}"),
        ("ADL ranking", str(cfg.get("adl_ranking"))),
        ("socialisation", str(cfg.get("socialisation"))),
        ("close-out", f"{cfg.get('closeout')}; slippage by {manifest.get('slippage')}"),
        ("cascade", "yes: close-outs move prices to a fixed point"
         if manifest.get("cascade") else "no"),
        ("scenarios", ", ".join(f"{k} {v:,}" for k, v in
                                manifest.get("scenarios", {}).get("by_source", {}).items())),
        ("netting sets / members", f"{manifest.get('netting_sets', 0):,} / "
                                   f"{manifest.get('members', {}).get('count', 0):,} "
                                   f"(members from {manifest.get('members', {}).get('source')})"),
        ("EMIR Art. 42(3) minimum (largest, or 2nd + 3rd)",
         money(cover_info.get("emir_art42_minimum", {}).get("fund"))),
        ("run", str(manifest.get("run"))),
    ]
    content = Content(title, [verdict, gaps, covered], facts,
                      notes=list(manifest.get("notes", [])))
    content.figures = _figures(w, cover)
    content.tables = _tables(w, adl, cover)
    return content


def _png(fig: Any) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100)
    fig.clear()
    return buffer.getvalue()


def _figures(w: pd.DataFrame, cover: pd.DataFrame) -> list[Figure]:
    out = []
    top = w[w["bankruptcy_loss"] > 0].nlargest(20, "bankruptcy_loss")
    if len(top):
        fig = new_figure(11, 1.4 + 0.32 * len(top))
        ax = fig.subplots()
        left = np.zeros(len(top))
        y = np.arange(len(top))[::-1]
        for column, layer, colour in PAID:
            values = top[column].to_numpy(np.float64) / 1e6
            ax.barh(y, values, left=left, color=colour, label=layer)
            left += values
        ax.set_yticks(y, top["scenario"].tolist(), fontsize=8)
        ax.set_xlabel("bankruptcy loss (millions, reporting currency)")
        ax.set_title("Who pays: the largest bankruptcy losses, by layer of the waterfall")
        ax.legend(loc="lower right", fontsize=8)
        out.append(Figure("Who pays the largest losses", "stacked bars of the bankruptcy loss "
                          "of the worst scenarios, split into insurance fund, ADL, socialised "
                          "and uncovered", _png(fig)))
    maps = w[w["source"] == "map"]
    if len(maps):
        fig = new_figure(11, 4.2)
        axes = fig.subplots(1, 2)
        scopes = maps["scope"].nunique()
        for scope, rows in maps.groupby("scope", sort=False):
            rows = rows.sort_values("move")
            style = {"color": "black", "linewidth": 2.2} if scope == "ALL" else \
                {"linewidth": 0.8, "alpha": 0.6}
            label: str | None = ("all underlyings" if scope == "ALL"
                                 else str(scope) if scopes <= 9 else None)
            axes[0].plot(100 * rows["move"], rows["bankruptcy_loss"] / 1e6, **style,
                         label=label)
            axes[1].plot(100 * rows["move"], rows["defaults"], **style)
        axes[0].set_title("Bankruptcy loss by instant move")
        axes[0].set_ylabel("millions")
        axes[1].set_title("Netting sets in default by instant move")
        axes[1].set_ylabel("netting sets")
        for ax in axes:
            ax.set_xlabel("move of the scope's price(s) (%): one line per underlying")
        axes[0].legend(fontsize=8)
        out.append(Figure("Losses along the liquidation map's moves", "lines of bankruptcy "
                          "loss and defaults against the instant move of each underlying and "
                          "of all together", _png(fig)))
    exposed = cover[cover["cover_exposure"] > 0].nlargest(20, "cover_exposure")
    if len(exposed):
        fig = new_figure(11, 1.4 + 0.3 * len(exposed))
        ax = fig.subplots()
        y = np.arange(len(exposed))[::-1]
        ax.barh(y, exposed["cover_exposure"] / 1e6, color="#8172b3")
        ax.set_yticks(y, exposed["member"].tolist(), fontsize=8)
        ax.set_xlabel("stress loss beyond margin (millions) in the cover-N worst scenario")
        ax.set_title("Members' exposure in the scenario that sizes the default fund")
        out.append(Figure("Members' exposure", "bars of each member's stress loss beyond "
                          "margin in the worst scenario for cover-N", _png(fig)))
    return out


def _tables(w: pd.DataFrame, adl: pd.DataFrame, cover: pd.DataFrame
            ) -> list[tuple[str, str, pd.DataFrame]]:
    ranked = w.sort_values("bankruptcy_loss", ascending=False, kind="stable")
    scen = _display(ranked[[c for c in SCENARIO_COLUMNS if c in ranked.columns]]
                    .head(TABLE_ROWS))
    out = [("Scenarios, largest bankruptcy loss first",
            f"{min(len(w), TABLE_ROWS):,} of {len(w):,} scenarios (all in waterfall.parquet)",
            scen)]
    if len(adl):
        top = adl.sort_values("loss_taken", ascending=False, kind="stable").head(TABLE_ROWS)
        out.append(("Auto-deleveraging: the largest losses taken",
                    f"{len(top):,} of {len(adl):,} positions reduced (all in adl.parquet)",
                    _display(top.drop(columns=["score"], errors="ignore"))))
    out.append(("Members: default-fund contributions (cover-N)",
                f"{min(len(cover), TABLE_ROWS):,} of {len(cover):,} members (all in "
                "cover.parquet)", _display(cover.head(TABLE_ROWS))))
    return out


def _quantity(value: float) -> str:
    """A quantity or price: thousands separated, up to four decimals, no trailing zeros."""
    if pd.isna(value):
        return "—"
    text = f"{value:,.4f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def _display(frame: pd.DataFrame) -> pd.DataFrame:
    """Every cell as people read it: amounts thousands-separated, shares as percentages."""
    out = frame.copy()
    for column in out.columns:
        values = out[column]
        if column in ("share", "move", "vol_shift"):
            out[column] = [("—" if pd.isna(v) else f"{v:+.1%}" if column != "share"
                            else f"{v:.2%}") for v in values]
        elif column in ("position", "amount_reduced", "bankruptcy_price", "loss_per_unit"):
            out[column] = [_quantity(v) for v in values]
        elif pd.api.types.is_float_dtype(values):
            out[column] = [money(v) for v in values]
        elif pd.api.types.is_integer_dtype(values):
            out[column] = [f"{int(v):,}" for v in values]
    return out.astype(str)


def render(content: Content) -> str:
    """The page's HTML (self-contained: the figures inlined, no external resource)."""
    e = html.escape
    parts = [
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>{e(content.title)}</title><style>",
        "body{font-family:system-ui,sans-serif;margin:2em auto;max-width:78em;padding:0 1em;"
        "color:#222}h1{margin-bottom:.3em}.headline p{font-size:1.08em;line-height:1.5;"
        "margin:.4em 0}.facts td,.facts th{text-align:left;padding:2px 10px 2px 0;"
        "border:none}.scroll{max-height:28em;overflow:auto;border:1px solid #ddd;"
        "margin-bottom:.5em}table.data{border-collapse:collapse;font-size:82%;"
        "white-space:nowrap}table.data td,table.data th{border-bottom:1px solid #eee;"
        "padding:2px 8px;text-align:right}table.data th{position:sticky;top:0;"
        "background:#f3f3f3}table.data td:first-child,table.data th:first-child"
        "{text-align:left}img{max-width:100%}.note{color:#555;font-size:90%}"
        "</style></head><body>",
        f"<h1>{e(content.title)}</h1>",
        "<div class='headline'>" + "".join(f"<p>{e(s)}</p>" for s in content.headline)
        + "</div>",
        "<table class='facts'>" + "".join(f"<tr><th>{e(k)}</th><td>{e(v)}</td></tr>"
                                          for k, v in content.facts) + "</table>",
    ]
    for f in content.figures:
        parts.append(f"<h2>{e(f.title)}</h2><img alt='{e(f.alt)}' "
                     f"src='{png_data_uri(f.png)}'>")
    for title, note, frame in content.tables:
        parts.append(f"<h2>{e(title)}</h2><p class='note'>{e(note)}</p><div class='scroll'>"
                     + frame.to_html(index=False, classes="data", border=0, escape=True)
                     + "</div>")
    if content.notes:
        parts.append("<h2>Notes</h2><ul>" + "".join(f"<li>{e(n)}</li>"
                                                    for n in content.notes) + "</ul>")
    parts.append("</body></html>")
    return "\n".join(parts)


def write_report(waterfall: pd.DataFrame, adl: pd.DataFrame, cover: pd.DataFrame,
                 manifest: dict[str, Any], path: Path) -> Path:
    """Write the page of a waterfall run to ``path``."""
    path.write_text(render(page_content(waterfall, adl, cover, manifest)), encoding="utf-8")
    return path
