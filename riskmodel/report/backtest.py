"""Backtest report: PNG plots and one self-contained HTML page (images embedded as data URIs).

Plots are drawn on matplotlib's Agg canvas directly, never through ``pyplot``
(:mod:`riskmodel.report.common`).

Files written under ``out_dir``:

* ``margin_pooled.png``: total initial margin, total VaR and total realised loss per date over
  all netting sets, dates where the total loss exceeded the total VaR marked; below, the number
  of netting sets with an exception on each date.
* ``margin_NN.png`` (``NN`` = 01, 02, ...): the same for each of the first
  ``max_portfolios_plotted`` netting sets of the summary, exceptions (loss > VaR) and margin
  breaches (loss > IM) marked.
* ``im_vs_flat_rate.png``: total model initial margin against the total flat-rate margin and the
  flat-rate-equivalent margin (the pooled ``flat_rate_equivalent`` rate x gross notional), and
  their ratio.
* ``exception_clustering.png``: the hit sequence of each netting set (one line per set, up to
  40 sets) and the histogram of the number of observations between consecutive exceptions of a
  set against the geometric law expected when hits are independent with the expected rate.
* ``report.html``: the run's facts (``summary["run"]``, when present), settings, pooled table,
  the pooled statistics on non-overlapping loss windows (``summary["non_overlapping"]``, when
  present), warnings (``summary["warnings"]``), per-netting-set table and every plot.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from riskmodel.report.common import new_figure, png_data_uri, save_png

__all__ = ["write_report"]

_MAX_RASTER_SETS = 40


def _dates(values: pd.Series) -> np.ndarray:
    """Dates as datetime64 for the x axis when they parse, else as they are."""
    try:
        return np.asarray(pd.to_datetime(values).to_numpy())
    except (TypeError, ValueError):
        return np.asarray(values.to_numpy())


def _portfolio_rows(frame: pd.DataFrame, account_id: Any, netting_set: Any) -> pd.DataFrame:
    acc = frame["account_id"]
    ns = frame["netting_set"]
    mask = (acc.isna() if account_id is None else acc.astype(str) == str(account_id)) & (
        ns.isna() if netting_set is None else ns.astype(str) == str(netting_set)
    )
    return frame.loc[mask.to_numpy()].sort_values("date", kind="stable")


def _margin_axes(
    ax: Any, x: np.ndarray, im: np.ndarray, var: np.ndarray, loss: np.ndarray, title: str
) -> None:
    ax.plot(x, im, color="tab:blue", lw=1.2, label="initial margin")
    ax.plot(x, var, color="tab:green", lw=1.0, ls="--", label="VaR")
    ax.plot(x, loss, color="0.45", lw=0.6, label="realised loss")
    hit = loss > var
    if hit.any():
        ax.scatter(x[hit], loss[hit], color="tab:red", marker="x", s=28, zorder=3,
                   label=f"exception (loss > VaR): {int(hit.sum())}")
    breach = loss > im
    if breach.any():
        ax.scatter(x[breach], loss[breach], facecolors="none", edgecolors="black", s=60,
                   zorder=4, label=f"margin breach (loss > IM): {int(breach.sum())}")
    ax.axhline(0.0, color="0.8", lw=0.5)
    ax.set_title(title, fontsize=10)
    ax.set_ylabel("amount (loss positive)")
    ax.legend(fontsize=8, loc="upper left")


def _plot_portfolio(rows: pd.DataFrame, title: str, path: Path) -> Path:
    fig = new_figure(10, 4)
    ax = fig.subplots()
    _margin_axes(
        ax,
        _dates(rows["date"]),
        rows["initial_margin"].to_numpy(),
        rows["var"].to_numpy(),
        rows["realized_loss"].to_numpy(),
        title,
    )
    return save_png(fig, path)


def _plot_pooled(frame: pd.DataFrame, path: Path) -> Path:
    frame = frame.assign(_hit=frame["realized_loss"] > frame["var"])
    totals = frame.groupby("date", sort=True)[
        ["initial_margin", "var", "realized_loss", "_hit"]
    ].sum()
    x = _dates(totals.index.to_series())
    fig = new_figure(10, 6)
    top, bottom = fig.subplots(2, 1, sharex=True, height_ratios=[3, 1])
    _margin_axes(
        top,
        x,
        totals["initial_margin"].to_numpy(),
        totals["var"].to_numpy(),
        totals["realized_loss"].to_numpy(),
        "All netting sets: totals per date (marked: total loss > total VaR)",
    )
    top.legend(fontsize=8, loc="upper left")
    # vertical lines, not bars: a one-day bar is narrower than a pixel over a long backtest
    hits = totals["_hit"].to_numpy()
    some = hits > 0
    bottom.vlines(x[some], 0, hits[some], color="tab:red", lw=1.0)
    bottom.set_ylim(0, max(1, int(hits.max())) * 1.1)
    bottom.set_ylabel("sets with\nexception")
    return save_png(fig, path)


def _plot_flat_rate(frame: pd.DataFrame, summary: dict[str, Any], path: Path) -> Path:
    totals = frame.groupby("date", sort=True)[
        ["initial_margin", "flat_rate_margin", "gross_notional", "realized_loss"]
    ].sum()
    x = _dates(totals.index.to_series())
    im = totals["initial_margin"].to_numpy()
    flat = totals["flat_rate_margin"].to_numpy()
    fig = new_figure(10, 6)
    top, bottom = fig.subplots(2, 1, sharex=True, height_ratios=[3, 1])
    top.plot(x, im, color="tab:blue", lw=1.2, label="model initial margin")
    top.plot(x, flat, color="tab:orange", lw=1.2, label="flat-rate margin")
    equivalent = summary.get("pooled", {}).get("flat_rate_equivalent") or {}
    rate = equivalent.get("rate")
    if rate is not None:
        top.plot(x, rate * totals["gross_notional"].to_numpy(), color="tab:purple", lw=1.0,
                 ls="--", label=f"flat-rate equivalent ({rate:.4%} of gross notional)")
    top.plot(x, totals["realized_loss"].to_numpy(), color="0.6", lw=0.6,
             label="realised loss")
    top.set_title("Model initial margin against flat-rate margin (totals per date)",
                  fontsize=10)
    top.set_ylabel("amount")
    top.legend(fontsize=8, loc="upper left")
    ratio = np.divide(im, flat, out=np.full(im.shape, np.nan), where=flat > 0)
    bottom.plot(x, ratio, color="tab:blue", lw=1.0)
    bottom.axhline(1.0, color="0.6", lw=0.6)
    bottom.set_ylabel("IM / flat")
    return save_png(fig, path)


def _plot_clustering(frame: pd.DataFrame, expected_rate: float, path: Path) -> Path:
    fig = new_figure(10, 6)
    raster, hist = fig.subplots(2, 1, height_ratios=[1, 1])
    gaps: list[np.ndarray] = []
    shown = 0
    groups = frame.groupby(["account_id", "netting_set"], sort=True, dropna=False)
    for _, rows in groups:  # the order of summarise()
        rows = rows.sort_values("date", kind="stable")
        hit_pos = np.flatnonzero(rows["realized_loss"].to_numpy() > rows["var"].to_numpy())
        if hit_pos.size > 1:
            gaps.append(np.diff(hit_pos))
        if shown < _MAX_RASTER_SETS:
            x = _dates(rows["date"])
            raster.scatter(x[hit_pos], np.full(hit_pos.size, shown), marker="|",
                           color="tab:red", s=40)
            shown += 1
    raster.set_ylim(-1, max(shown, 1))
    raster.set_ylabel("netting set")
    more = groups.ngroups - shown
    raster.set_title(
        "Exceptions (loss > VaR) of each netting set"
        + (f" (first {shown}; {more} more not shown)" if more > 0 else ""),
        fontsize=10,
    )
    all_gaps = np.concatenate(gaps) if gaps else np.zeros(0, dtype=np.int64)
    if all_gaps.size:
        top = int(all_gaps.max())
        edges = (
            np.arange(1, top + 2) if top <= 60 else np.unique(np.linspace(1, top + 1, 31).round())
        )
        counts, edges = np.histogram(all_gaps, bins=edges)
        hist.bar(edges[:-1], counts, width=np.diff(edges), align="edge", color="tab:red",
                 alpha=0.6, label=f"observed ({all_gaps.size} gaps)")
        # Independent hits: the gap is geometric, P(G >= k) = (1 - p)^(k - 1).
        survival = (1.0 - expected_rate) ** (edges - 1.0)
        expected = all_gaps.size * (survival[:-1] - survival[1:])
        hist.step(edges, np.append(expected, expected[-1]), where="post", color="black",
                  label=f"geometric, rate {expected_rate:.3g} (independent hits)")
        hist.legend(fontsize=8)
    else:
        hist.text(0.5, 0.5, "fewer than two exceptions in every netting set",
                  ha="center", va="center", transform=hist.transAxes)
    hist.set_xlabel("observations between consecutive exceptions of a netting set")
    hist.set_ylabel("count")
    return save_png(fig, path)


# --------------------------------------------------------------------------------------------
# HTML
# --------------------------------------------------------------------------------------------

_CSS = """
body { font-family: -apple-system, Segoe UI, Helvetica, Arial, sans-serif; margin: 2em;
       color: #222; }
table { border-collapse: collapse; margin: 1em 0; font-size: 0.85em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: right; }
th { background: #f0f0f0; }
td.label, th.label { text-align: left; }
td.green { background: #d9f2d9; } td.yellow { background: #fff3bf; }
td.red { background: #f8d0d0; }
img { max-width: 100%; border: 1px solid #ddd; }
figure { margin: 1.5em 0; }
.note { color: #555; font-size: 0.85em; max-width: 60em; }
"""


def _flatten(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(_flatten(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def _fmt(value: Any) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, bool) or isinstance(value, str):
        return str(value)
    if isinstance(value, (int, np.integer)):
        return f"{int(value):,}"
    if isinstance(value, (float, np.floating)):
        v = float(value)
        if v != 0.0 and (abs(v) >= 1e4 or abs(v) < 1e-3):
            return f"{v:.4g}" if abs(v) < 1e4 else f"{v:,.0f}"
        return f"{v:.4f}"
    return str(value)


_LABELS = ("account_id", "netting_set", "start", "end")


def _cell(key: str, value: Any) -> str:
    if key in _LABELS:  # identifiers as they are: account 1000, not 1,000
        return f'<td class="label">{html.escape("n/a" if value is None else str(value))}</td>'
    text = html.escape(_fmt(value))
    if key.endswith("traffic_light") and value in ("green", "yellow", "red"):
        return f'<td class="{value}">{text}</td>'
    if isinstance(value, str):
        return f'<td class="label">{text}</td>'
    return f"<td>{text}</td>"


def _key_value_table(d: dict[str, Any]) -> str:
    rows = "".join(
        f'<tr><th class="label">{html.escape(k)}</th>{_cell(k, v)}</tr>'
        for k, v in _flatten(d).items()
    )
    return f"<table>{rows}</table>"


def _portfolio_table(portfolios: Sequence[dict[str, Any]], max_rows: int | None) -> str:
    if not portfolios:
        return "<p>No netting sets.</p>"
    flat = [_flatten(p) for p in portfolios]
    columns: list[str] = []
    for row in flat:
        columns.extend(c for c in row if c not in columns)
    shown = flat if max_rows is None else flat[:max_rows]
    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    body = "".join(
        "<tr>" + "".join(_cell(c, row.get(c)) for c in columns) + "</tr>" for row in shown
    )
    note = ""
    if len(shown) < len(flat):
        note = (
            f'<p class="note">First {len(shown)} of {len(flat)} netting sets; the summary JSON '
            "holds all of them.</p>"
        )
    return f"<table><tr>{head}</tr>{body}</table>{note}"


def _img(path: Path, caption: str) -> str:
    return (
        f'<figure><img src="{png_data_uri(path.read_bytes())}" alt="{html.escape(caption)}">'
        f"<figcaption>{html.escape(caption)}</figcaption></figure>"
    )


_NOTES = """
<p class="note">An exception is a date whose realised loss over the margin period of risk exceeds
the VaR forecast with data up to that date; a margin breach, one whose loss exceeds the initial
margin. P-values: Kupiec (1995) proportion of failures (chi2(1)), Christoffersen (1998) Markov
independence (chi2(1)) and conditional coverage (chi2(2)); small values reject the model.
Traffic light: Basel Committee (1996) zones from the binomial CDF of the exception count (green
below 95%, yellow below 99.99%, red otherwise), scaled to the number of observations. es_z2:
Acerbi-Szekely (2014) Z2 (0 expected, negative when realised tail losses exceed ES), its p-value
simulated under per-date laws matched to VaR and ES. Peak-to-trough: maximum over minimum margin
of the window; max increases: largest relative rise over 1 and 5 observations. Flat-rate
equivalent: the lowest flat rate on gross notional with no more breaches than the model margin.
Pooled: counts summed over netting sets (treated as independent), procyclicality of the total
margin per date. With a margin period of risk longer than one day the loss windows of
consecutive dates overlap, which makes hits serially correlated even under a correct model.</p>
"""


def _plot_all(
    frame: pd.DataFrame, summary: dict[str, Any], out: Path, max_portfolios_plotted: int
) -> list[tuple[Path, str]]:
    """Every plot of the report, written under ``out``: (path, caption) in page order."""
    figures: list[tuple[Path, str]] = []
    figures.append((_plot_pooled(frame, out / "margin_pooled.png"),
                    "All netting sets: margin and VaR against realised loss"))
    for i, p in enumerate(list(summary["portfolios"])[:max_portfolios_plotted], start=1):
        rows = _portfolio_rows(frame, p["account_id"], p["netting_set"])
        title = (
            f"account {p['account_id']}, netting set {p['netting_set']}: "
            f"{p['exceptions']} exceptions in {p['n_obs']} ({p['traffic_light']}), "
            f"{p['margin_breaches']} margin breaches"
        )
        figures.append((_plot_portfolio(rows, title, out / f"margin_{i:02d}.png"), title))
    figures.append((_plot_flat_rate(frame, summary, out / "im_vs_flat_rate.png"),
                    "Model initial margin against flat-rate margin"))
    figures.append((_plot_clustering(frame, float(summary["pooled"]["expected_rate"]),
                                     out / "exception_clustering.png"),
                    "Exception clustering"))
    return figures


def _page(
    summary: dict[str, Any], figures: Sequence[tuple[Path, str]], max_table_rows: int | None
) -> str:
    """The HTML page: run, settings, pooled tables, warnings, per-set table, notes and plots."""
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8"><title>Margin model backtest</title>',
        f"<style>{_CSS}</style></head><body>",
        "<h1>Margin model backtest</h1>",
    ]
    run = summary.get("run")
    if isinstance(run, dict) and run:
        parts += ["<h2>Run</h2>", _key_value_table(run)]
    settings = summary.get("settings", {})
    if settings:
        parts += ["<h2>Settings</h2>", _key_value_table(settings)]
    parts += [
        "<h2>Pooled over all netting sets</h2>",
        _key_value_table(summary["pooled"]),
    ]
    overlap = summary.get("non_overlapping")
    if isinstance(overlap, dict) and isinstance(overlap.get("pooled"), dict):
        parts += [
            "<h2>Pooled, non-overlapping loss windows</h2>",
            f'<p class="note">{html.escape(str(overlap.get("note", "")))}</p>',
            _key_value_table(overlap["pooled"]),
        ]
    warnings = summary.get("warnings")
    if isinstance(warnings, list) and warnings:
        items = "".join(f"<li>{html.escape(str(w))}</li>" for w in warnings)
        parts += ["<h2>Warnings</h2>", f"<ul>{items}</ul>"]
    parts += [
        "<h2>Per netting set</h2>",
        _portfolio_table(list(summary["portfolios"]), max_table_rows),
        _NOTES,
        "<h2>Plots</h2>",
    ]
    parts += [_img(path, caption) for path, caption in figures]
    parts.append("</body></html>")
    return "\n".join(parts)


def write_report(
    backtest: pd.DataFrame,
    summary: dict[str, Any],
    out_dir: Path,
    *,
    max_portfolios_plotted: int = 6,
    max_table_rows: int | None = 1000,
) -> list[Path]:
    """Write the backtest plots (PNG) and ``report.html`` under ``out_dir``.

    Parameters
    ----------
    backtest : DataFrame, the table given to :func:`~riskmodel.backtest.statistics.summarise`
        (one row per date and netting set), already checked by it (the report renders, it
        does not validate).
    summary : dict, what :func:`~riskmodel.backtest.statistics.summarise` returned for it.
    out_dir : Path, created if missing; files of the same names are overwritten.
    max_portfolios_plotted : int, how many netting sets (the first of ``summary["portfolios"]``)
        get their own margin plot.
    max_table_rows : int or None, rows of the per-netting-set HTML table (None: all).

    Returns
    -------
    list of Path: the PNG files, then ``report.html``.
    """
    if max_portfolios_plotted < 0:
        raise ValueError(f"max_portfolios_plotted = {max_portfolios_plotted!r} must be >= 0")
    for key in ("portfolios", "pooled"):
        if key not in summary:
            raise ValueError(f"summary is missing {key!r}; pass what summarise() returned")
    frame = backtest
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    figures = _plot_all(frame, summary, out, max_portfolios_plotted)
    html_path = out / "report.html"
    html_path.write_text(_page(summary, figures, max_table_rows), encoding="utf-8")
    return [path for path, _ in figures] + [html_path]
