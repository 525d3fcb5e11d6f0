"""The backtest page's figures (Agg canvas, :mod:`riskmodel.report.common`); each is embedded
in the page and written beside it as a PNG file.

* ``margin_pooled.png``: total initial margin, VaR and realised loss per date over all netting
  sets, dates where the total loss exceeded the total VaR marked; below, the number of sets
  with an exception on each date;
* ``margin_NN.png``: the same for one netting set, exceptions and margin breaches marked;
* ``im_vs_flat_rate.png``: total model initial margin against the flat-rate margin and the
  flat-rate equivalent, and their ratio;
* ``exception_clustering.png``: each set's hit sequence (up to 40 sets) and the histogram of
  the gaps between consecutive exceptions against the geometric law of independent hits.

Legends sit outside the plotting area, so they never cover the data.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from riskmodel.report.common import new_figure
from riskmodel.report.formats import count, pct
from riskmodel.report.page import PageFigure, embed, legend_beside

__all__ = ["clustering_figure", "flat_rate_figure", "pooled_figure", "portfolio_figure",
           "portfolio_rows"]

MAX_RASTER_SETS = 40


def _dates(values: pd.Series) -> np.ndarray:
    """Dates as datetime64 for the x axis when they parse, else as they are."""
    try:
        return np.asarray(pd.to_datetime(values).to_numpy())
    except (TypeError, ValueError):
        return np.asarray(values.to_numpy())


def portfolio_rows(frame: pd.DataFrame, account_id: Any, netting_set: Any) -> pd.DataFrame:
    """The rows of one netting set, by date."""
    acc = frame["account_id"]
    ns = frame["netting_set"]
    mask = (acc.isna() if account_id is None else acc.astype(str) == str(account_id)) & (
        ns.isna() if netting_set is None else ns.astype(str) == str(netting_set)
    )
    return frame.loc[mask.to_numpy()].sort_values("date", kind="stable")


def _margin_axes(ax: Any, x: np.ndarray, im: np.ndarray, var: np.ndarray, loss: np.ndarray,
                 title: str) -> None:
    ax.plot(x, im, color="#0969da", lw=1.2, label="initial margin")
    ax.plot(x, var, color="#1a7f37", lw=1.0, ls="--", label="VaR")
    ax.plot(x, loss, color="0.5", lw=0.6, label="realised loss")
    hit = loss > var
    ax.scatter(x[hit], loss[hit], color="#cf222e", marker="x", s=26, zorder=3,
               label=f"exception, loss > VaR ({count(hit.sum())})")
    breach = loss > im
    ax.scatter(x[breach], loss[breach], facecolors="none", edgecolors="black", s=58,
               zorder=4, label=f"margin breach, loss > IM ({count(breach.sum())})")
    ax.axhline(0.0, color="0.8", lw=0.5)
    ax.set_title(title, fontsize=10)
    ax.set_ylabel("amount, loss positive\n(reporting currency)")
    ax.set_xlabel("date")


def portfolio_figure(rows: pd.DataFrame, name: str, title: str, path: Path) -> PageFigure:
    """Margin, VaR and realised loss of one netting set (``name`` on the plot, ``title``
    above it on the page)."""
    fig = new_figure(7.2, 3.4)
    ax = fig.subplots()
    loss = rows["realized_loss"].to_numpy()
    _margin_axes(ax, _dates(rows["date"]), rows["initial_margin"].to_numpy(),
                 rows["var"].to_numpy(), loss, name)
    legend_beside(fig, ax, where="lower center", fontsize=7, ncols=3)
    return embed(fig, title=title, path=path,
                 alt=f"Initial margin, VaR and realised loss of {name} per date, "
                     f"{count(np.sum(loss > rows['var'].to_numpy()))} exceptions marked.")


def pooled_figure(frame: pd.DataFrame, path: Path) -> PageFigure:
    """Totals per date over every netting set, and the sets with an exception per date."""
    frame = frame.assign(_hit=frame["realized_loss"] > frame["var"])
    totals = frame.groupby("date", sort=True)[
        ["initial_margin", "var", "realized_loss", "_hit"]].sum()
    x = _dates(totals.index.to_series())
    fig = new_figure(11, 5.6)
    top, bottom = fig.subplots(2, 1, sharex=True, height_ratios=[3, 1])
    _margin_axes(top, x, totals["initial_margin"].to_numpy(), totals["var"].to_numpy(),
                 totals["realized_loss"].to_numpy(),
                 "All netting sets: totals per date (marked: total loss > total VaR)")
    top.set_xlabel("")
    # vertical lines, not bars: a one-day bar is narrower than a pixel over a long backtest
    hits = totals["_hit"].to_numpy()
    some = hits > 0
    sets = frame.groupby("date", sort=True).size().to_numpy()
    bottom.vlines(x[some], 0, hits[some], color="#cf222e", lw=1.0,
                  label="sets with an exception")
    # the totals jump where a set enters or leaves the backtest: show how many are in them
    bottom.step(x, sets, where="mid", color="0.55", lw=0.8, label="sets in the totals")
    bottom.set_ylim(0, max(1, int(sets.max(initial=0))) * 1.15)
    bottom.set_ylabel("netting sets")
    bottom.set_xlabel("date")
    legend_beside(fig, top, bottom)
    return embed(fig, title="All netting sets: margin and VaR against realised loss",
                 path=path,
                 alt="Total initial margin, VaR and realised loss per date over all netting "
                     "sets, with the number of sets having an exception each date below.")


def flat_rate_figure(frame: pd.DataFrame, summary: dict[str, Any], path: Path) -> PageFigure:
    """Total model margin against flat-rate margin and the flat-rate equivalent, and ratio."""
    totals = frame.groupby("date", sort=True)[
        ["initial_margin", "flat_rate_margin", "gross_notional", "realized_loss"]].sum()
    x = _dates(totals.index.to_series())
    im = totals["initial_margin"].to_numpy()
    flat = totals["flat_rate_margin"].to_numpy()
    fig = new_figure(11, 5.6)
    top, bottom = fig.subplots(2, 1, sharex=True, height_ratios=[3, 1])
    top.plot(x, im, color="#0969da", lw=1.2, label="model initial margin")
    top.plot(x, flat, color="#bc4c00", lw=1.2, label="flat-rate margin")
    rate = (summary.get("pooled", {}).get("flat_rate_equivalent") or {}).get("rate")
    if rate is not None:
        top.plot(x, rate * totals["gross_notional"].to_numpy(), color="#8250df", lw=1.0,
                 ls="--", label=f"flat-rate equivalent ({pct(rate, 2)} of gross notional)")
    top.plot(x, totals["realized_loss"].to_numpy(), color="0.6", lw=0.6,
             label="realised loss")
    top.set_title("Model initial margin against flat-rate margin (totals per date)",
                  fontsize=10)
    top.set_ylabel("amount (reporting currency)")
    ratio = np.divide(im, flat, out=np.full(im.shape, np.nan), where=flat > 0)
    bottom.plot(x, ratio, color="#0969da", lw=1.0)
    bottom.axhline(1.0, color="0.6", lw=0.6)
    bottom.set_ylabel("IM / flat")
    bottom.set_xlabel("date")
    legend_beside(fig, top)
    return embed(fig, title="Model initial margin against flat-rate margin", path=path,
                 alt="Total model initial margin, flat-rate margin and flat-rate-equivalent "
                     "margin per date, and the ratio of model to flat-rate margin below.")


def _gaps(frame: pd.DataFrame, raster: Any) -> tuple[np.ndarray, int, int]:
    """Draw each set's hits on ``raster`` (up to :data:`MAX_RASTER_SETS`); return the gaps
    between consecutive hits of every set, the sets drawn and the sets in all."""
    gaps: list[np.ndarray] = []
    shown = 0
    groups = frame.groupby(["account_id", "netting_set"], sort=True, dropna=False)
    for _, rows in groups:
        rows = rows.sort_values("date", kind="stable")
        hit_pos = np.flatnonzero(rows["realized_loss"].to_numpy() > rows["var"].to_numpy())
        if hit_pos.size > 1:
            gaps.append(np.diff(hit_pos))
        if shown < MAX_RASTER_SETS:
            x = _dates(rows["date"])
            raster.scatter(x[hit_pos], np.full(hit_pos.size, shown), marker="|",
                           color="#cf222e", s=40)
            shown += 1
    all_gaps = np.concatenate(gaps) if gaps else np.zeros(0, dtype=np.int64)
    return all_gaps, shown, groups.ngroups


def clustering_figure(frame: pd.DataFrame, expected_rate: float, path: Path) -> PageFigure:
    """Hit sequences and the gaps between hits against independent (geometric) gaps."""
    fig = new_figure(11, 6)
    raster, hist = fig.subplots(2, 1, height_ratios=[1, 1])
    all_gaps, shown, n_sets = _gaps(frame, raster)
    raster.set_ylim(-1, max(shown, 1))
    raster.set_ylabel("netting set (row)")
    raster.set_xlabel("date")
    more = n_sets - shown
    raster.set_title("Exceptions (loss > VaR) of each netting set"
                     + (f" (first {shown}; {more} more not shown)" if more > 0 else ""),
                     fontsize=10)
    if all_gaps.size:
        top = int(all_gaps.max())
        edges = (np.arange(1, top + 2) if top <= 60
                 else np.unique(np.linspace(1, top + 1, 31).round()))
        counts, edges = np.histogram(all_gaps, bins=edges)
        hist.bar(edges[:-1], counts, width=np.diff(edges), align="edge", color="#cf222e",
                 alpha=0.6, label=f"observed ({count(all_gaps.size)} gaps)")
        # Independent hits: the gap is geometric, P(G >= k) = (1 - p)^(k - 1).
        survival = (1.0 - expected_rate) ** (edges - 1.0)
        expected = all_gaps.size * (survival[:-1] - survival[1:])
        hist.step(edges, np.append(expected, expected[-1]), where="post", color="black",
                  label=f"geometric, rate {expected_rate:.3g} (independent hits)")
        legend_beside(fig, hist, where="right lower")
    else:
        hist.text(0.5, 0.5, "fewer than two exceptions in every netting set",
                  ha="center", va="center", transform=hist.transAxes)
    hist.set_xlabel("observations between consecutive exceptions of a netting set")
    hist.set_ylabel("count of gaps")
    hist.set_title("Gaps between exceptions against independent hits", fontsize=10)
    return embed(fig, title="Exception clustering", path=path,
                 alt="Raster of the dates of each netting set's exceptions, and a histogram "
                     "of the gaps between consecutive exceptions against the geometric law.")
