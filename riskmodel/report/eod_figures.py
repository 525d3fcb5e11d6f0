"""The end-of-day page's figures, each drawn from whole-book aggregates (histograms, sums):
their cost does not grow with the number of points drawn, so a million netting sets plot as
fast as a thousand.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from riskmodel.margin.policy import STATUSES
from riskmodel.report.common import new_figure
from riskmodel.report.formats import count, pct, short_amount
from riskmodel.report.page import PageFigure, embed, legend_beside

__all__ = ["changes_figure", "contributors_figure", "exposure_figure", "level_figure",
           "stress_figure", "unit_scale"]

STATUS_COLOURS = {"ok": "#2da44e", "warning": "#d4a72c", "margin_call": "#e16f24",
                  "liquidation": "#cf222e"}
_LEVEL_RANGE = (0.1, 100.0)


def unit_scale(values: np.ndarray, currency: str) -> tuple[float, str]:
    """(divisor, unit label) that keeps the largest of ``values`` readable on an axis."""
    top = float(np.nanmax(np.abs(values))) if np.size(values) else 0.0
    for scale, word in ((1e9, "billion"), (1e6, "million"), (1e3, "thousand")):
        if top >= 10 * scale:
            return scale, f"{word} {currency}"
    return 1.0, currency


def level_figure(margins: pd.DataFrame, codes: np.ndarray, margin_cfg: Mapping[str, Any]
                 ) -> PageFigure:
    """Histogram of margin levels (equity / maintenance margin), stacked by status, on a log
    axis, with the liquidation, margin-call and warning thresholds drawn."""
    level = margins["margin_level"].to_numpy(np.float64)
    lo, hi = _LEVEL_RANGE
    edges = np.geomspace(lo, hi, 61)
    clipped = np.clip(level, lo, hi * 0.999)
    fig = new_figure(11, 4.6)
    ax = fig.subplots()
    bottom = np.zeros(len(edges) - 1)
    for i, status in enumerate(STATUSES):
        counts, _ = np.histogram(clipped[codes == i], bins=edges)
        # one filled step outline per status, not a bar per bin: the same picture, drawn
        # (and laid out) in half the time
        ax.stairs(bottom + counts, edges, baseline=bottom.copy(), fill=True,
                  color=STATUS_COLOURS[status], label=f"{status} ({count(np.sum(codes == i))})",
                  linewidth=0)
        bottom += counts
    mm_ratio = float(margin_cfg.get("mm_ratio", 0.75))
    warning = float(margin_cfg.get("warning_multiple", 1.2))
    for x, text in ((1.0, "liquidation below 1"),
                    (1.0 / mm_ratio, f"margin call below {1 / mm_ratio:.3g}"),
                    (warning / mm_ratio, f"warning below {warning / mm_ratio:.3g}")):
        ax.axvline(x, color="black", lw=1.0, ls="--")
        ax.annotate(text, (x, 1.0), xycoords=("data", "axes fraction"), rotation=90,
                    xytext=(-4, -4), textcoords="offset points", ha="right", va="top",
                    fontsize=8)
    ax.set_xscale("log")
    ax.set_xlim(lo, hi)
    ax.set_xlabel("margin level = equity / maintenance margin (log scale; outside 0.1-100 "
                  "counted in the end bins)")
    ax.set_ylabel("netting sets")
    ax.set_title("Distribution of margin levels by status")
    legend_beside(fig, ax)
    below, above = int(np.sum(level < lo)), int(np.sum(level >= hi))
    floor_bound = float(np.mean(margins["maintenance_margin"].to_numpy() >
                                mm_ratio * margins["initial_margin"].to_numpy() * (1 + 1e-12))) \
        if len(margins) else 0.0
    return embed(
        fig, title="Margin levels",
        alt=f"Histogram of the margin level of {count(len(margins))} netting sets on a log "
            f"scale, coloured by status, with dashed lines at 1 (liquidation), "
            f"{1 / mm_ratio:.3g} (margin call) and {warning / mm_ratio:.3g} (warning).",
        caption=f"The call and warning lines are where maintenance margin is {mm_ratio:g} x "
                f"initial margin; for the {pct(floor_bound)} of sets whose maintenance floor "
                f"binds, the call starts lower. {count(below)} sets are below 0.1 (negative "
                f"equity included) and drawn in the first bin, {count(above)} at 100 or above "
                "(little or no margin) in the last.")


def exposure_figure(by_underlying: pd.DataFrame, by_kind: pd.DataFrame, currency: str,
                    top: int = 12) -> PageFigure:
    """Initial margin against flat-rate margin, by underlying and by instrument kind."""
    fig = new_figure(11, 1.8 + 0.32 * max(min(top, len(by_underlying) - 1), len(by_kind) - 1))
    axes = fig.subplots(1, 2)
    shown = []
    for ax, table, what in ((axes[0], by_underlying, "underlying"),
                            (axes[1], by_kind, "instrument kind")):
        part = table[table["group"] != "total"].head(top).iloc[::-1]
        shown.append(len(table) - 1 - len(part))
        scale, unit = unit_scale(part[["initial_margin", "flat_rate_margin"]].to_numpy(),
                                 currency)
        y = np.arange(len(part))
        ax.barh(y + 0.2, part["flat_rate_margin"] / scale, height=0.4, color="#afb8c1",
                label="flat-rate margin")
        ax.barh(y - 0.2, part["initial_margin"] / scale, height=0.4, color="#0969da",
                label="initial margin")
        ax.set_yticks(y, part["group"].astype(str))
        ax.set_xlabel(unit)
        ax.set_ylabel(what)
        ax.set_title(f"By {what}")
        ends = np.maximum(part["initial_margin"], part["flat_rate_margin"]).to_numpy() / scale
        for yi, ratio, end in zip(y, part["im_over_flat"], ends):
            if np.isfinite(ratio):
                ax.annotate(f"IM {pct(ratio, 0)} of flat", (end, yi), xytext=(4, 0),
                            textcoords="offset points", va="center", fontsize=8)
        ax.set_xlim(0, float(ends.max(initial=0.0)) * 1.3 or 1.0)
    # below both charts: inside, the legend covered the last bars' labels
    legend_beside(fig, axes[0], where="lower center", ncols=2)
    left_out = "" if not shown[0] else f" ({shown[0]} smaller underlyings in the table only)"
    return embed(fig, title="Initial margin against flat-rate margin",
                 alt="Horizontal bars of allocated initial margin and flat-rate margin per "
                     "underlying and per instrument kind.",
                 caption="Each set's initial margin is shared among its positions as their "
                         "flat-rate margin (|notional| x flat rate) is." + left_out)


def stress_figure(margins: pd.DataFrame) -> PageFigure:
    """Histogram of each set's worst stress loss over its initial margin."""
    im = margins["initial_margin"].to_numpy(np.float64)
    loss = margins["stress_loss"].to_numpy(np.float64)
    ratio = np.divide(loss, im, out=np.zeros_like(loss), where=im > 0)
    hi = max(2.0, float(np.ceil(np.quantile(ratio, 0.995)))) if ratio.size else 2.0
    edges = np.linspace(0.0, hi, 51)
    counts, _ = np.histogram(np.clip(ratio, 0.0, hi * 0.9999), bins=edges)
    fig = new_figure(11, 3.6)
    ax = fig.subplots()
    ax.stairs(counts, edges, fill=True, color="#8250df", lw=0)
    ax.axvline(1.0, color="black", ls="--", lw=1.0)
    ax.annotate("stress loss = initial margin", (1.0, 1.0),
                xycoords=("data", "axes fraction"), xytext=(4, -4),
                textcoords="offset points", va="top", fontsize=8)
    ax.set_xlabel(f"worst stress loss / initial margin (above {hi:g} counted in the last bin)")
    ax.set_ylabel("netting sets")
    ax.set_title("Worst stress loss against initial margin")
    above = int(np.sum(loss > im))
    return embed(fig, title="Stress losses",
                 alt=f"Histogram of the ratio of worst stress loss to initial margin; "
                     f"{count(above)} sets lose more than their initial margin under stress.",
                 caption="Sets to the right of the dashed line would lose more than their "
                         "initial margin in their worst stress scenario.")


def contributors_figure(by_instrument: pd.DataFrame, currency: str) -> PageFigure:
    """Horizontal bars: the instruments with the largest summed Euler contributions."""
    part = by_instrument.iloc[::-1]
    scale, unit = unit_scale(part["contribution"].to_numpy(), currency)
    fig = new_figure(11, 1.4 + 0.22 * max(len(part), 1))
    ax = fig.subplots()
    y = np.arange(len(part))
    ax.barh(y, part["contribution"] / scale, color="#0969da")
    ax.set_yticks(y, part["instrument_id"].astype(str))
    ax.set_xlabel(f"Euler contribution to model margin, summed over netting sets ({unit})")
    ax.set_ylabel("instrument")
    ax.set_title("Largest contributors to model margin")
    return embed(fig, title="Biggest Euler contributors",
                 alt="Horizontal bars of the instruments whose positions contribute most to "
                     "the model margin, summed over all netting sets.")


def changes_figure(before: float, split: pd.DataFrame, after: float, currency: str,
                   since: str) -> PageFigure:
    """The change of total initial margin since the previous run, by cause, and in total."""
    parts = split["change"].to_numpy(np.float64)
    values = np.append(parts, after - before)
    labels = ["positions", "prices", "volatility\nand scenarios", "total"]
    scale, unit = unit_scale(values, currency)
    fig = new_figure(9, 3.6)
    ax = fig.subplots()
    colours = ["#cf222e" if v > 0 else "#2da44e" for v in values[:-1]] + ["#0969da"]
    ax.bar(range(len(values)), values / scale, color=colours)
    ax.axhline(0.0, color="black", lw=0.8)
    for i, v in enumerate(values):
        ax.annotate(("+" if v > 0 else "") + short_amount(v, ""), (i, v / scale),
                    xytext=(0, 3 if v >= 0 else -11), textcoords="offset points",
                    ha="center", fontsize=8)
    ax.set_xticks(range(len(values)), labels)
    ax.set_ylabel(f"change of initial margin ({unit})")
    ax.set_xlabel(f"from {short_amount(before, currency)} on {since} to "
                  f"{short_amount(after, currency)} today")
    ax.set_title("What moved total initial margin")
    return embed(fig, title="Change since the previous run",
                 alt=f"Bars of the change of total initial margin from "
                     f"{short_amount(before, currency)} to {short_amount(after, currency)}, by "
                     "positions, prices, and volatility and scenarios, and in total.")
