"""Backtest report: one self-contained page, ``report.html``, and its figures as PNG files.

The page opens with the verdict (the Basel traffic light of the pooled VaR exceptions, the
coverage tests) and the headline in words: model margin against the flat rate, and against the
flat rate that would give equal coverage (the flat-rate equivalent: the lowest flat rate with no
more margin breaches than the model). Then the figures (:mod:`.backtest_plots`): the pooled
margin, the model against the flat rate, every netting set's margin (up to
``max_portfolios_plotted``, the sets with the most breaches first; a note names the sets left
out), the clustering of exceptions. Then the detail: the per-netting-set table, the pooled
statistics (also on non-overlapping loss windows), volatility refits and fallbacks, warnings,
what the tests mean, the run's settings and timings.

Files written under ``out_dir``: ``margin_pooled.png``, ``margin_NN.png`` (one per plotted
set, NN = 01, 02, ...), ``im_vs_flat_rate.png``, ``exception_clustering.png``,
``report.html``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from riskmodel.report import formats as f
from riskmodel.report.backtest_plots import (
    clustering_figure,
    flat_rate_figure,
    pooled_figure,
    portfolio_figure,
    portfolio_rows,
)
from riskmodel.report.columns import columns
from riskmodel.report.page import (
    Column,
    PageFigure,
    PageTable,
    frame_table,
    key_values,
    page_context,
    write_page,
)

__all__ = ["write_report"]

_TONE = {"green": "good", "yellow": "attention", "red": "alarm"}

# pooled statistics as the page names and formats them
_STATISTICS: tuple[tuple[str, str, Any], ...] = (
    ("n_portfolios", "netting sets", f.count),
    ("n_obs", "observations (dates x netting sets)", f.count),
    ("exceptions", "exceptions (loss > VaR)", f.count),
    ("exception_rate", "exception rate", lambda v: f.pct(v, 2)),
    ("expected_rate", "expected rate (1 - confidence)", lambda v: f.pct(v, 2)),
    ("kupiec_pvalue", "Kupiec p-value (coverage)", f.pvalue),
    ("christoffersen_pvalue", "Christoffersen p-value (independence)", f.pvalue),
    ("cc_pvalue", "conditional coverage p-value", f.pvalue),
    ("traffic_light", "Basel traffic light", str),
    ("es_z2", "Acerbi-Szekely Z2 of ES (0 expected)", lambda v: f.number(v, 3)),
    ("es_z2_pvalue", "Z2 p-value (simulated)", f.pvalue),
    ("margin_breaches", "margin breaches (loss > initial margin)", f.count),
    ("margin_breach_rate", "margin breach rate", lambda v: f.pct(v, 2)),
    ("mean_margin", "mean initial margin", f.number),
    ("peak_to_trough", "total margin, peak over trough", lambda v: f"{f.number(v, 3)} x"),
    ("max_increase_1d", "largest 1-observation rise of total margin", f.pct),
    ("max_increase_5d", "largest 5-observation rise of total margin", f.pct),
)

_NOTES = (
    "An exception is a date whose realised loss over the margin period of risk exceeds the VaR "
    "forecast with data up to that date; a margin breach, one whose loss exceeds the initial "
    "margin.",
    "P-values: Kupiec (1995) proportion of failures (chi2(1)), Christoffersen (1998) Markov "
    "independence (chi2(1)) and conditional coverage (chi2(2)); small values reject the model.",
    "Traffic light: Basel Committee (1996) zones from the binomial CDF of the exception count "
    "(green below 95%, yellow below 99.99%, red otherwise), scaled to the number of "
    "observations.",
    "ES Z2: Acerbi-Szekely (2014), 0 expected, negative when realised tail losses exceed ES; "
    "its p-value simulated under per-date laws matched to VaR and ES.",
    "Flat-rate equivalent: the lowest flat rate on gross notional with no more margin breaches "
    "than the model margin. Pooled: counts summed over netting sets (treated as independent).",
    "Realisable flat rate: the flat rate a venue could have run without hindsight: each set's "
    "quantile, at the model's confidence, of its past losses per unit of notional over the "
    "lookback, using only losses known at the date, re-set on a schedule (the configured flat "
    "rate until enough history is known); at equal coverage it is scaled by the smallest "
    "factor with no more margin breaches than the model.",
    "With a margin period of risk longer than one day the loss windows of consecutive dates "
    "overlap, which makes hits serially correlated even under a correct model.",
)


def _statistics_table(pooled: dict[str, Any], caption: str = "") -> PageTable:
    pairs = [(label, fmt(pooled[key])) for key, label, fmt in _STATISTICS if key in pooled]
    flat = pooled.get("flat_rate") or {}
    eq = pooled.get("flat_rate_equivalent") or {}
    pairs += [("flat-rate margin: breaches", f.count(flat.get("breaches"))),
              ("flat-rate margin: mean", f.number(flat.get("mean_margin"))),
              ("flat-rate equivalent: rate", f.pct(eq.get("rate"), 2)),
              ("flat-rate equivalent: mean margin", f.number(eq.get("mean_margin")))]
    real = pooled.get("realisable_flat_rate") or {}
    real_eq = pooled.get("realisable_flat_rate_equivalent") or {}
    if real:
        pairs += [("realisable flat rate: breaches", f.count(real.get("breaches"))),
                  ("realisable flat rate: mean rate", f.pct(real.get("mean_rate"), 2)),
                  ("realisable flat rate: mean margin", f.number(real.get("mean_margin"))),
                  ("realisable at equal coverage: factor", f.number(real_eq.get("scale"), 3)),
                  ("realisable at equal coverage: mean margin",
                   f.number(real_eq.get("mean_margin")))]
    medians = pooled.get("median_cost_ratios") or {}
    pairs += [(f"median netting set: model / {name.replace('_', ' ')}", f.pct(value))
              for name, value in medians.items()]
    return key_values(pairs, caption)


def _verdict(summary: dict[str, Any]) -> tuple[str, str, list[str]]:
    p = summary["pooled"]
    light = str(p.get("traffic_light"))
    coverage = (f"{f.count(p['exceptions'])} exceptions in {f.count(p['n_obs'])} observations "
                f"({f.pct(p['exception_rate'], 2)} against {f.pct(p['expected_rate'], 2)} "
                f"expected), Kupiec p {f.pvalue(p['kupiec_pvalue'])}")
    verdict = {
        "green": f"The model's VaR passes the coverage test (Basel green zone): {coverage}.",
        "yellow": f"The model's VaR is in the Basel yellow zone: {coverage}.",
        "red": f"The model's VaR fails the coverage test (Basel red zone): {coverage}.",
    }.get(light, f"Coverage: {coverage}.")
    flat = p.get("flat_rate") or {}
    eq = p.get("flat_rate_equivalent") or {}
    im = float(p["mean_margin"])
    findings = []
    if flat.get("mean_margin"):
        findings.append(
            f"Model initial margin averages {f.number(im)}, {f.pct(im / flat['mean_margin'])} "
            f"of the flat-rate margin ({f.number(flat['mean_margin'])}); the model has "
            f"{f.count(p['margin_breaches'])} margin breaches, the flat rate "
            f"{f.count(flat.get('breaches'))}.")
    if eq.get("rate") is not None and eq.get("mean_margin"):
        findings.append(
            f"At equal coverage, a flat rate would need {f.pct(eq['rate'], 2)} of gross "
            f"notional (no more than {f.count(eq.get('breaches'))} breaches) and average "
            f"{f.number(eq['mean_margin'])}: the model asks {f.pct(im / eq['mean_margin'])} "
            "of that.")
    findings += _realisable_findings(p, im)
    findings.append(
        f"Procyclicality: total margin ranged {f.number(p.get('peak_to_trough'), 3)} x from "
        f"trough to peak; its largest rise was {f.pct(p.get('max_increase_1d'))} in one "
        f"observation and {f.pct(p.get('max_increase_5d'))} in five.")
    overlap = summary.get("non_overlapping")
    if isinstance(overlap, dict) and isinstance(overlap.get("pooled"), dict):
        q = overlap["pooled"]
        findings.append(
            f"On non-overlapping loss windows: {f.count(q['exceptions'])} exceptions in "
            f"{f.count(q['n_obs'])} ({f.pct(q['exception_rate'], 2)}), Kupiec p "
            f"{f.pvalue(q['kupiec_pvalue'])}, traffic light {q['traffic_light']}.")
    return verdict, _TONE.get(light, "neutral"), findings


def _realisable_findings(p: dict[str, Any], im: float) -> list[str]:
    """The flat rate a venue could have run, as run and at the model's coverage, and the
    median netting set's cost ratios."""
    real = p.get("realisable_flat_rate") or {}
    real_eq = p.get("realisable_flat_rate_equivalent") or {}
    out = []
    if real.get("mean_margin"):
        out.append(
            f"A flat rate a venue could have run (each set's {f.pct(1 - p['expected_rate'])} "
            f"quantile of its past losses per unit of notional, re-set on a schedule) averages "
            f"{f.number(real['mean_margin'])} (mean rate {f.pct(real.get('mean_rate'), 2)}) "
            f"with {f.count(real.get('breaches'))} breaches; scaled to the model's coverage "
            f"(factor {f.number(real_eq.get('scale'), 3)}) it averages "
            f"{f.number(real_eq.get('mean_margin'))}: the model asks "
            f"{f.pct(im / real_eq['mean_margin']) if real_eq.get('mean_margin') else f.DASH} "
            "of that.")
    medians = p.get("median_cost_ratios") or {}
    passes = p.get("coverage_passes") or {}
    if medians.get("flat_rate_equivalent") is not None:
        text = (f"For the median netting set the model asks "
                f"{f.pct(medians['flat_rate_equivalent'])} of the flat rate at equal coverage")
        if medians.get("realisable_flat_rate_equivalent") is not None:
            text += (f" and {f.pct(medians['realisable_flat_rate_equivalent'])} of the "
                     "realisable flat rate at equal coverage")
        if passes:
            text += (f"; {f.count(passes.get('both'))} of {f.count(passes.get('of'))} sets pass "
                     f"both Kupiec and Christoffersen at {f.pct(passes.get('level'))}")
        out.append(text + ".")
    return out


def _headline(p: dict[str, Any]) -> list[dict[str, str]]:
    flat = (p.get("flat_rate") or {}).get("mean_margin")
    eq = p.get("flat_rate_equivalent") or {}
    items = [
        (f"{f.count(p['exceptions'])} / {f.count(p['n_obs'])}", "exceptions / observations"),
        (f.pct(p["exception_rate"], 2), f"exception rate ({f.pct(p['expected_rate'], 2)} "
                                        "expected)"),
        (str(p.get("traffic_light")), "Basel traffic light"),
        (f.count(p["margin_breaches"]), "margin breaches"),
        (f.pct(p["mean_margin"] / flat) if flat else f.DASH, "model margin / flat rate"),
        (f.pct(eq.get("rate"), 2), "flat rate at equal coverage"),
    ]
    real_eq = (p.get("realisable_flat_rate_equivalent") or {}).get("mean_margin")
    if real_eq:
        items.append((f.pct(p["mean_margin"] / real_eq),
                      "model / realisable flat rate at equal coverage"))
    return [{"value": v, "label": k} for v, k in items]


def _portfolio_table(portfolios: Sequence[dict[str, Any]], max_rows: int | None) -> PageTable:
    frame = pd.DataFrame([{**p, "flat_mean": (p.get("flat_rate") or {}).get("mean_margin"),
                           "flat_rate_equivalent": (p.get("flat_rate_equivalent") or {})
                           .get("rate"),
                           "im_over_eq": (p.get("cost_ratios") or {}).get(
                               "flat_rate_equivalent"),
                           "im_over_real_eq": (p.get("cost_ratios") or {}).get(
                               "realisable_flat_rate_equivalent")}
                          for p in portfolios])
    if frame.empty:
        return PageTable(("netting set",), (), (False,), note="No netting sets.")
    frame["period"] = [f"{f.date(a)} to {f.date(b)}" for a, b in zip(frame["start"],
                                                                        frame["end"])]
    frame["im_over_flat"] = frame["mean_margin"] / frame["flat_mean"]
    light = {"green": "green", "yellow": "yellow", "red": "red"}
    return frame_table(frame, columns(
        "account_id", "netting_set", "period", "n_obs", "exceptions", "exception_rate",
        "kupiec_pvalue", "christoffersen_pvalue", "traffic_light", "es_z2", "margin_breaches",
        "mean_margin", "im_over_flat", "flat_rate_equivalent", "peak_to_trough",
        headers={"exceptions": "exceptions", "exception_rate": "rate"}) + [
            Column("im_over_eq", "IM / flat at equal coverage", f.pct),
            Column("im_over_real_eq", "IM / realisable at equal coverage", f.pct)],
        max_rows=max_rows, where="backtest_summary.json",
        classes={"traffic_light": lambda v: light.get(str(v), "")})


def _chosen(portfolios: Sequence[dict[str, Any]], limit: int) -> list[int]:
    """Which sets get a plot: all when they fit, else those with the most margin breaches,
    then exceptions (in summary order otherwise), shown in summary order."""
    if len(portfolios) <= limit:
        return list(range(len(portfolios)))
    rank = sorted(range(len(portfolios)), key=lambda i: (-portfolios[i]["margin_breaches"],
                                                          -portfolios[i]["exceptions"], i))
    return sorted(rank[:limit])


def _name(p: dict[str, Any]) -> str:
    return f"{p['account_id']} / {p['netting_set']}"


def _portfolio_figures(frame: pd.DataFrame, portfolios: Sequence[dict[str, Any]], out: Path,
                       limit: int) -> tuple[list[PageFigure], str]:
    chosen = _chosen(portfolios, limit)
    figures = []
    for n, i in enumerate(chosen, start=1):
        p = portfolios[i]
        title = (f"{_name(p)}: {p['exceptions']} exceptions in {p['n_obs']} "
                 f"({p['traffic_light']}), {p['margin_breaches']} margin breaches")
        rows = portfolio_rows(frame, p["account_id"], p["netting_set"])
        figures.append(portfolio_figure(rows, _name(p), title, out / f"margin_{n:02d}.png"))
    left = [_name(p) for i, p in enumerate(portfolios) if i not in set(chosen)]
    note = ""
    if left:
        listed = ", ".join(left[:60]) + (f" and {len(left) - 60:,} more" if len(left) > 60
                                         else "")
        note = (f"Every netting set is plotted but {len(left):,}, left out to keep the page "
                f"light (the {len(chosen)} plotted have the most margin breaches, then "
                f"exceptions): {listed}. Their rows are in backtest.parquet.")
    return figures, note


def _run_table(summary: dict[str, Any]) -> PageTable | None:
    run = summary.get("run")
    if not isinstance(run, dict) or not run:
        return None
    tools = run.get("anti_procyclicality_tools") or []
    pairs = [
        ("period", f"{f.date(run.get('start'))} to {f.date(run.get('end'))}, "
                   f"{f.count(run.get('n_dates'))} dates, every {run.get('step', 1)}"),
        ("method", f"{str(run.get('method', '')).upper()}, {str(run.get('measure')).upper()} "
                   f"at {f.pct(run.get('confidence'))}"),
        ("margin period of risk", ", ".join(f"{h} days" for h in run.get("horizons_days", []))),
        ("lookback", f"{f.count(run.get('lookback'))} returns"),
        ("volatility", f"{run.get('volatility_model')} (EWMA lambda "
                       f"{run.get('ewma_lambda')}), refit every "
                       f"{run.get('recalibrate_every')} rows"),
        ("anti-procyclicality tools", ", ".join(tools) or "none"),
        ("portfolios", f"{run.get('portfolios')}, {f.count(run.get('n_portfolios'))} netting "
                       "sets"),
        ("parameter set", str(run.get("parameter_set") or "fitted during the backtest")),
    ]
    settings = summary.get("settings") or {}
    if settings:
        pairs.append(("statistics", f"Z2 simulations {f.count(settings.get('n_sim'))}, "
                                    f"seed {settings.get('seed')}"))
    return key_values(pairs)


def _volatility_notes(summary: dict[str, Any]) -> list[str]:
    vol = summary.get("volatility") or {}
    lines = []
    fits = vol.get("fits") or []
    if fits:
        lines.append(f"{len(fits)} volatility fits, the first on {f.date(fits[0].get('date'))},"
                     f" the last on {f.date(fits[-1].get('date'))}.")
    for fb in vol.get("fallbacks") or []:
        lines.append(", ".join(f"{k}: {v}" for k, v in fb.items()) if isinstance(fb, dict)
                     else str(fb))
    stress = summary.get("stress") or {}
    if stress:
        lines.append(f"Stress mode {stress.get('mode')}: stress bound the margin on "
                     f"{f.count(stress.get('bound_rows', 0))} rows.")
    return lines


def write_report(
    backtest: pd.DataFrame,
    summary: dict[str, Any],
    out_dir: Path,
    *,
    max_portfolios_plotted: int = 24,
    max_table_rows: int | None = 1000,
) -> list[Path]:
    """Write the backtest figures (PNG) and ``report.html`` under ``out_dir``.

    Parameters
    ----------
    backtest : DataFrame, the table given to :func:`~riskmodel.backtest.statistics.summarise`
        (one row per date and netting set), already checked by it (the report renders, it
        does not validate).
    summary : dict, what :func:`~riskmodel.backtest.statistics.summarise` returned for it
        (with the run's ``run``, ``warnings``, ``volatility``, ... when the CLI wrote it).
    out_dir : Path, created if missing; files of the same names are overwritten.
    max_portfolios_plotted : int, how many netting sets get their own margin plot; the page
        names the sets left out.
    max_table_rows : int or None, rows of the per-netting-set table (None: all).

    Returns
    -------
    list of Path: the PNG files, then ``report.html``.
    """
    if max_portfolios_plotted < 0:
        raise ValueError(f"max_portfolios_plotted = {max_portfolios_plotted!r} must be >= 0")
    for key in ("portfolios", "pooled"):
        if key not in summary:
            raise ValueError(f"summary is missing {key!r}; pass what summarise() returned")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    portfolios = list(summary["portfolios"])
    pooled = pooled_figure(backtest, out / "margin_pooled.png")
    flat = flat_rate_figure(backtest, summary, out / "im_vs_flat_rate.png")
    per_set, left_out = _portfolio_figures(backtest, portfolios, out, max_portfolios_plotted)
    clustering = clustering_figure(backtest, float(summary["pooled"]["expected_rate"]),
                                   out / "exception_clustering.png")
    verdict, tone, findings = _verdict(summary)
    run = summary.get("run") or {}
    title = "Margin model backtest" + (f", {f.date(run['start'])} to {f.date(run['end'])}"
                                       if run.get("start") else "")
    overlap = summary.get("non_overlapping")
    page = write_page(
        out / "report.html", "backtest.html.j2",
        **page_context(title=title, verdict=verdict, tone=tone, findings=findings,
                       headline=_headline(summary["pooled"]),
                       subtitle=(f"{str(run.get('method', '')).upper()} "
                                 f"{str(run.get('measure', '')).upper()} at "
                                 f"{f.pct(run.get('confidence'))}, "
                                 f"{f.count(run.get('n_portfolios'))} netting sets"
                                 if run else "")),
        figures=[pooled, flat], portfolio_figures=per_set, left_out=left_out,
        clustering=clustering, n_portfolios=len(portfolios),
        portfolios=_portfolio_table(portfolios, max_table_rows),
        pooled=_statistics_table(summary["pooled"]),
        non_overlapping=(_statistics_table(overlap["pooled"])
                         if isinstance(overlap, dict) and isinstance(overlap.get("pooled"),
                                                                     dict) else None),
        overlap_note=str(overlap.get("note", "")) if isinstance(overlap, dict) else "",
        warnings=[str(w) for w in summary.get("warnings") or []],
        volatility=_volatility_notes(summary), notes=list(_NOTES), run=_run_table(summary),
        timings=[(k, f"{v:,.3f} s") for k, v in (run.get("timings_s") or {}).items()])
    figure_paths = [out / "margin_pooled.png",
                    *(out / f"margin_{n:02d}.png" for n in range(1, len(per_set) + 1)),
                    out / "im_vs_flat_rate.png", out / "exception_clustering.png"]
    return [*figure_paths, page]
