"""The default waterfall as a person reads it: ``report.html`` on the report layer.

:func:`page_content` turns a waterfall run's tables and manifest into the page's content (the
verdict and headline numbers in words, the findings, figures with titles and alt text, tables
of formatted cells, the settings, the notes); :func:`write_report` renders it with the layer's
template (``templates/waterfall.html.j2``: one stylesheet, tables scrolling in their own box).
The page opens with the verdict: the worst scenario, its bankruptcy loss and how it was paid
(the insurance fund used and left, ADL, socialised, uncovered) and the clearing house's cover-1
and cover-2 funds; then who pays the largest losses, the losses along the liquidation map's
moves and the members' exposures; then the tables. It imports nothing of
:mod:`riskmodel.waterfall`: the tables' columns are its interface.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from riskmodel.report import formats as f
from riskmodel.report.columns import FORMATS
from riskmodel.report.common import new_figure
from riskmodel.report.page import (
    Column,
    PageFigure,
    PageTable,
    embed,
    frame_table,
    key_values,
    legend_beside,
    page_context,
    write_page,
)

__all__ = ["page_content", "write_report"]

PAID = (("fund_used", "insurance fund", "#4c72b0"),
        ("adl_amount", "auto-deleveraging", "#dd8452"),
        ("socialised", "socialised", "#c44e52"),
        ("uncovered", "uncovered", "#222222"))
TABLE_ROWS = 200

# column, header, format (riskmodel.report.columns.FORMATS)
_SCENARIOS = (("scenario", "scenario", "text"), ("source", "source", "text"),
              ("liquidated", "liquidated", "count"), ("defaults", "defaults", "count"),
              ("notional_closed", "notional closed", "amount"),
              ("slippage", "slippage", "amount"), ("penalties_to_fund", "penalties to fund",
                                                     "amount"),
              ("bankruptcy_loss", "bankruptcy loss", "amount"),
              ("fund_used", "fund used", "amount"), ("fund_left", "fund left", "amount"),
              ("adl_amount", "ADL", "amount"), ("adl_count", "positions deleveraged", "count"),
              ("socialised", "socialised", "amount"), ("uncovered", "uncovered", "amount"),
              ("cover_1", "cover-1", "amount"), ("cover_2", "cover-2", "amount"),
              ("rounds", "cascade rounds", "count"))
_ADL = (("scenario", "scenario", "text"), ("account_id", "account", "text"),
        ("netting_set", "netting set", "text"), ("member", "member", "text"),
        ("instrument_id", "instrument", "text"), ("position", "position", "number"),
        ("amount_reduced", "reduced", "number"), ("loss_taken", "loss taken", "amount"),
        ("loss_per_unit", "loss per unit", "number"),
        ("bankruptcy_price", "bankruptcy price", "number"), ("profit", "its profit", "amount"),
        ("rank", "rank", "count"))
_COVER = (("member", "member", "text"), ("n_accounts", "accounts", "count"),
          ("initial_margin", "initial margin", "amount"),
          ("margin_held", "margin held", "amount"), ("peak_exposure", "peak exposure", "amount"),
          ("peak_scenario", "in scenario", "text"),
          ("cover_exposure", "exposure in the cover-N scenario", "amount"),
          ("cover_rank", "rank there", "count"), ("share", "share", "pct2"),
          ("contribution", "contribution", "amount"))


def _columns(spec: tuple[tuple[str, str, str], ...]) -> list[Column]:
    return [Column(key, header, *FORMATS[fmt]) for key, header, fmt in spec]


def page_content(waterfall: pd.DataFrame, adl: pd.DataFrame, cover: pd.DataFrame,
                 manifest: dict[str, Any], currency: str = "USD") -> dict[str, Any]:
    """Everything the page shows, as plain data (module docstring): the keys of
    :func:`riskmodel.report.page.page_context` and ``figures``, ``tables``, ``settings``,
    ``notes``."""
    w = waterfall
    title = "Default waterfall: when margin is not enough"
    if w.empty:
        return {**page_context(title=title, verdict="No scenario was run."), "figures": [],
                "tables": [], "settings": key_values([]), "notes": []}
    worst = w.loc[w["bankruptcy_loss"].idxmax()]
    info = manifest.get("cover", {})
    c1, c2 = info.get("cover_1", {}), info.get("cover_2", {})
    verdict, tone = _verdict(w, worst, currency)
    headline = [
        {"value": f.short_amount(worst["bankruptcy_loss"], currency),
         "label": f"worst bankruptcy loss ({worst['scenario']})"},
        {"value": f.short_amount(worst["fund_used"], currency), "label": "fund used there"},
        {"value": f.short_amount(worst["fund_left"], currency), "label": "fund left"},
        {"value": f.short_amount(worst["adl_amount"], currency), "label": "ADL"},
        {"value": f.short_amount(worst["socialised"], currency), "label": "socialised"},
        {"value": f.short_amount(worst["uncovered"], currency), "label": "uncovered"},
        {"value": f.short_amount(c1.get("fund"), currency), "label": "cover-1 fund"},
        {"value": f.short_amount(c2.get("fund"), currency), "label": "cover-2 fund"},
    ]
    uncovered = w[w["uncovered"] > 0]
    findings = [
        (f"{f.count(len(uncovered))} of {f.count(len(w))} scenarios leave a loss uncovered, "
         f"{f.short_amount(uncovered['uncovered'].sum(), currency)} in all."
         if len(uncovered) else f"No scenario of {f.count(len(w))} leaves a loss uncovered."),
        (f"Clearing-house view: a default fund of {f.money(c1.get('fund'), currency)} covers "
         f"the member with the largest stress loss beyond margin (cover-1, in "
         f"“{c1.get('scenario')}”); {f.money(c2.get('fund'), currency)} covers the two largest "
         f"(cover-2, in “{c2.get('scenario')}”: {', '.join(c2.get('members') or []) or 'none'})"
         f"; EMIR Article 42(3)'s minimum (the largest, or the second and third): "
         f"{f.money(info.get('emir_art42_minimum', {}).get('fund'), currency)}."),
    ]
    return {
        **page_context(title=title, subtitle=f"Run {manifest.get('run')}", verdict=verdict,
                       tone=tone, headline=headline, findings=findings),
        "figures": _figures(w, cover, currency),
        "tables": _tables(w, adl, cover),
        "settings": _settings(manifest, currency),
        "notes": list(manifest.get("notes", [])),
    }


def _verdict(w: pd.DataFrame, worst: pd.Series, currency: str) -> tuple[str, str]:
    loss = float(worst["bankruptcy_loss"])
    if loss <= 0:
        return (f"No scenario of {f.count(len(w))} leaves a bankruptcy loss: every liquidated "
                "netting set's own collateral covers its close-out.", "good")
    text = (f"In the worst of {f.count(len(w))} scenarios, “{worst['scenario']}”, "
            f"{f.count(worst['defaults'])} netting sets end below zero after their close-out: "
            f"a bankruptcy loss of {f.money(loss, currency)}. The insurance fund pays "
            f"{f.money(worst['fund_used'], currency)} and has "
            f"{f.money(worst['fund_left'], currency)} left; auto-deleveraging takes "
            f"{f.money(worst['adl_amount'], currency)} from {f.count(worst['adl_count'])} "
            f"profitable positions, {f.money(worst['socialised'], currency)} is socialised "
            f"and {f.money(worst['uncovered'], currency)} stays uncovered.")
    tone = "alarm" if (w["uncovered"] > 0).any() else "attention"
    return text, tone


def _settings(manifest: dict[str, Any], currency: str) -> PageTable:
    cfg = manifest.get("waterfall", {})
    scenarios = manifest.get("scenarios", {})
    members = manifest.get("members", {})
    screen = manifest.get("screen", {})
    return key_values([
        ("insurance fund before any scenario", f.money(cfg.get("insurance_fund"), currency)),
        ("share of penalties feeding the fund", f.pct(cfg.get("penalty_to_fund"), 0)),
        ("ADL ranking; socialisation", f"{cfg.get('adl_ranking')}; {cfg.get('socialisation')}"),
        ("close-out; slippage", f"{cfg.get('closeout')}; {manifest.get('slippage')}"),
        ("cascade", "close-outs move prices to a fixed point" if manifest.get("cascade")
         else "no"),
        ("scenarios", ", ".join(f"{k} {f.count(v)}" for k, v in
                                scenarios.get("by_source", {}).items())),
        ("netting sets; members", f"{f.count(manifest.get('netting_sets'))}; "
                                  f"{f.count(members.get('count'))} ({members.get('source')})"),
        ("sets re-margined by the engine", f"{f.count(screen.get('engine_sets'))} (screen "
                                           f"band up to {f.number(screen.get('widest_band'))})"),
    ], caption="Settings")


def _figures(w: pd.DataFrame, cover: pd.DataFrame, currency: str) -> list[PageFigure]:
    out = []
    top = w[w["bankruptcy_loss"] > 0].nlargest(20, "bankruptcy_loss")
    if len(top):
        fig = new_figure(11, 1.6 + 0.32 * len(top))
        ax = fig.subplots()
        left = np.zeros(len(top))
        y = np.arange(len(top))[::-1]
        for column, layer, colour in PAID:
            values = top[column].to_numpy(np.float64) / 1e6
            ax.barh(y, values, left=left, color=colour, label=layer)
            left += values
        ax.set_yticks(y, top["scenario"].tolist(), fontsize=8)
        ax.set(xlabel=f"bankruptcy loss (millions {currency})", ylabel="scenario",
               title="The largest bankruptcy losses, by layer of the waterfall")
        legend_beside(fig, ax, title="paid by")
        out.append(embed(fig, title="Who pays the largest losses",
                         alt="Stacked bars of the bankruptcy loss of the worst scenarios, "
                         "split into insurance fund, ADL, socialised and uncovered."))
    maps = w[w["source"] == "map"]
    if len(maps):
        out.append(_map_figure(maps, currency))
    exposed = cover[cover["cover_exposure"] > 0].nlargest(20, "cover_exposure")
    if len(exposed):
        fig = new_figure(11, 1.6 + 0.3 * len(exposed))
        ax = fig.subplots()
        y = np.arange(len(exposed))[::-1]
        ax.barh(y, exposed["cover_exposure"] / 1e6, color="#8172b3")
        ax.set_yticks(y, exposed["member"].tolist(), fontsize=8)
        ax.set(xlabel=f"stress loss beyond margin (millions {currency})", ylabel="member",
               title="Members' exposure in the scenario that sizes the cover-N fund")
        out.append(embed(fig, title="Members' exposure",
                         alt="Bars of the largest members' stress losses beyond margin in the "
                         "worst scenario for cover-N."))
    return out


def _map_figure(maps: pd.DataFrame, currency: str) -> PageFigure:
    fig = new_figure(11, 4.4)
    axes = fig.subplots(1, 2)
    labelled = maps["scope"].nunique() <= 10
    for scope, rows in maps.groupby("scope", sort=False):
        rows = rows.sort_values("move")
        style = {"color": "black", "linewidth": 2.2} if scope == "ALL" else \
            {"linewidth": 0.8, "alpha": 0.7}
        label = "all underlyings" if scope == "ALL" else str(scope) if labelled else None
        axes[0].plot(100 * rows["move"], rows["bankruptcy_loss"] / 1e6, label=label, **style)
        axes[1].plot(100 * rows["move"], rows["defaults"], **style)
    axes[0].set(title="Bankruptcy loss by instant move",
                ylabel=f"millions {currency}")
    axes[1].set(title="Netting sets in default by instant move", ylabel="netting sets")
    for ax in axes:
        ax.set_xlabel("instant move of the scope's price(s), %")
    legend_beside(fig, axes[0], title="scope")
    return embed(fig, title="Losses along the liquidation map's moves",
                 alt="Lines of bankruptcy loss and of netting sets in default against the "
                 "instant move of each underlying and of all together.",
                 caption="One line per underlying moved alone; the black line moves all of "
                 "them together.")


def _tables(w: pd.DataFrame, adl: pd.DataFrame, cover: pd.DataFrame) -> list[PageTable]:
    ranked = w.sort_values("bankruptcy_loss", ascending=False, kind="stable")
    out = [frame_table(ranked, _columns(_SCENARIOS), max_rows=TABLE_ROWS,
                       where="waterfall.parquet",
                       caption="Scenarios, largest bankruptcy loss first")]
    if len(adl):
        top = adl.sort_values("loss_taken", ascending=False, kind="stable")
        out.append(frame_table(top, _columns(_ADL), max_rows=TABLE_ROWS, where="adl.parquet",
                               caption="Auto-deleveraging: the largest losses taken"))
    out.append(frame_table(cover, _columns(_COVER), max_rows=TABLE_ROWS,
                           where="cover.parquet",
                           caption="Members: default-fund contributions (cover-N)"))
    return out


def write_report(waterfall: pd.DataFrame, adl: pd.DataFrame, cover: pd.DataFrame,
                 manifest: dict[str, Any], path: Path, currency: str = "USD") -> Path:
    """Write the page of a waterfall run to ``path``."""
    return write_page(path, "waterfall.html.j2",
                      **page_content(waterfall, adl, cover, manifest, currency))
