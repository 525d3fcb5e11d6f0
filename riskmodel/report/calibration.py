"""The calibration diagnostics report: plots, parameter tables and Ljung-Box tables, as pages.

:func:`write_report` renders the diagnostics that :mod:`calibration.diagnostics` computed for
each factor (:class:`FactorDiagnostics`: the fitted parameters, the filtered volatility, the
residuals, the Ljung-Box tables and the QQ quantiles) and writes, into ``out_dir``:

* ``vol_<stem>.png``: daily conditional volatility (return units) over the absolute residuals;
* ``qq_<stem>.png``: QQ plot of the standardised residuals against the fitted innovation
  distribution (arch's unit-variance normal, Student's t or Hansen skew-t);
* ``report.md``: a summary table, then per factor the parameters with standard errors and
  t-statistics, loglik/AIC/BIC, the runners-up, the fallback reason and Ljung-Box tests;
* ``report.html``: the same content in one self-contained file (images inlined as base64).

``<stem>`` is the factor name made safe for a file name (:func:`file_stems`). Both pages are
rendered from one list of blocks, so they say the same. Files are written into a staging folder
and moved into ``out_dir`` only when complete (:func:`riskmodel.io.outputs.staged_output`);
files of the same name are replaced, others kept.

This module takes plain data (riskmodel's parameter set, pandas series and numbers); the
statistics themselves are calibration's (:mod:`calibration.diagnostics`), which calls it.
"""

from __future__ import annotations

import hashlib
import html
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from riskmodel.io.outputs import staged_output
from riskmodel.report.common import new_figure, png_data_uri, save_png
from riskmodel.volatility.filters import FilteredFactor
from riskmodel.volatility.params import FactorParams, ParameterSet

__all__ = ["FactorDiagnostics", "file_stems", "write_report"]


@dataclass(frozen=True)
class FactorDiagnostics:
    """The diagnostics of one factor, as the report shows them.

    Attributes
    ----------
    name : str, the factor.
    stem : str, its file-name stem (:func:`file_stems`).
    params : FactorParams, its fitted parameters.
    filtered : FilteredFactor, the filter run with them over the diagnosed returns.
    resid : ndarray, ``r - mu`` on the filtered dates, return units.
    lb_z, lb_r : DataFrame, Ljung-Box tables (index lag; ``Q``, ``df``, ``p_value``) of the
        squared standardised residuals and of the squared returns less the mean.
    qq_theoretical : ndarray, quantiles of the fitted innovation law at the plotting positions
        ``(i - 0.5) / n`` of the ``n`` sorted standardised residuals.
    """

    name: str
    stem: str
    params: FactorParams
    filtered: FilteredFactor
    resid: np.ndarray
    lb_z: pd.DataFrame
    lb_r: pd.DataFrame
    qq_theoretical: np.ndarray


_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def file_stems(names: Sequence[str]) -> dict[str, str]:
    """Safe, distinct file-name stems for factor names.

    Unsafe characters become ``_``; a short hash of the original name is appended when that
    changed the name or when two names would collide on a case-insensitive file system, so a
    stem never depends on the order of the factors.
    """
    base: dict[str, str] = {}
    for name in names:
        s = _UNSAFE.sub("_", name).strip("._")[:80] or "factor"
        base[name] = s
    counts: dict[str, int] = {}
    for s in base.values():
        counts[s.casefold()] = counts.get(s.casefold(), 0) + 1
    out = {}
    for name, s in base.items():
        if s != name or counts[s.casefold()] > 1:
            s = f"{s}-{hashlib.sha1(name.encode()).hexdigest()[:8]}"
        out[name] = s
    return out


# --------------------------------------------------------------------------------------------
# Report content: a small list of blocks rendered to both Markdown and HTML
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Block:
    kind: str  # "h1", "h2", "h3", "p", "table", "img"
    text: str = ""
    header: tuple[str, ...] = ()
    rows: tuple[tuple[str, ...], ...] = ()
    anchor: str = ""


def _fmt(x: Any, spec: str = ".4g") -> str:
    if x is None:
        return "—"
    try:
        v = float(x)
    except (TypeError, ValueError):
        return str(x)
    if not math.isfinite(v):
        return "—" if math.isnan(v) else str(v)
    return format(v, spec)


def _fmt_p(p: float) -> str:
    if not math.isfinite(p):
        return "—"
    # chi2.sf is accurate down to ~1e-300; an exact 0 means underflow, not certainty.
    return "< 1e-300" if p == 0 else format(p, ".3g")


def _param_rows(fp: FactorParams) -> list[tuple[str, ...]]:
    """(name, estimate, std. error, t-stat) for the parameters the model actually has."""
    if fp.model == "ewma":
        names = ["decay"]
    else:
        names = ["omega", "alpha"] + (["gamma"] if fp.model != "garch" else []) + ["beta"]
    if fp.mean == "constant":
        names.insert(0, "mu")
    if fp.dist in ("t", "skewt"):
        names.append("nu")
    if fp.dist == "skewt":
        names.append("lambda")
    rows: list[tuple[str, ...]] = []
    for name in names:
        est = getattr(fp, "skew" if name == "lambda" else name)
        se = fp.std_errors.get(name)
        t = est / se if est is not None and se is not None and se > 0 else None
        rows.append((name, _fmt(est, ".6g"), _fmt(se), _fmt(t, ".2f")))
    return rows


def _runner_rows(fp: FactorParams) -> list[tuple[str, ...]]:
    rows: list[tuple[str, ...]] = []
    for r in fp.runners_up:
        bic = r.get("bic")
        delta = bic - fp.bic if bic is not None and fp.bic is not None else None
        rows.append((
            f"{r.get('model', '?')}/{r.get('dist', '?')}", _fmt(bic, ".2f"),
            _fmt(delta, "+.2f"), str(r.get("rejected") or ""),
        ))
    return rows


def _factor_blocks(res: FactorDiagnostics) -> list[_Block]:
    fp, ff = res.params, res.filtered
    z = ff.std_resid.to_numpy()
    idx = ff.sigma2.index
    blocks = [
        _Block("h2", res.name, anchor=res.stem),
        _Block("p", (
            f"Model {fp.model}/{fp.dist}, mean {fp.mean}, return scale {_fmt(fp.return_scale)} "
            f"(parameters are in scaled-return units). Diagnostics over {len(idx)} returns "
            f"{_date(idx[0]) if len(idx) else '—'} to {_date(idx[-1]) if len(idx) else '—'} "
            f"(filter start: {ff.start}). Converged: {'yes' if fp.converged else 'no'}."
        )),
        _Block("p", f"Fallback: {fp.fallback}" if fp.fallback else "Fallback: none."),
        _Block("h3", "Parameters"),
        _Block("table", header=("parameter", "estimate", "std. error", "t-stat"),
               rows=tuple(_param_rows(fp))),
        _Block("table", header=("loglik", "AIC", "BIC", "persistence", "unconditional vol",
                                "next-day vol"),
               rows=((_fmt(fp.loglik, ".2f"), _fmt(fp.aic, ".2f"), _fmt(fp.bic, ".2f"),
                      _fmt(fp.persistence), _fmt(fp.unconditional_vol), _fmt(ff.sigma_1d)),)),
    ]
    runners = _runner_rows(fp)
    blocks.append(_Block("h3", "Runners-up"))
    if runners:
        blocks.append(_Block("table", header=("model/dist", "BIC", "ΔBIC", "rejected"),
                             rows=tuple(runners)))
    else:
        blocks.append(_Block("p", "None recorded."))
    blocks.append(_Block("h3", "Ljung-Box on squares"))
    lb_rows = tuple(
        (str(m), _fmt(res.lb_z.at[m, "Q"], ".2f"), _fmt_p(res.lb_z.at[m, "p_value"]),
         _fmt(res.lb_r.at[m, "Q"], ".2f"), _fmt_p(res.lb_r.at[m, "p_value"]),
         str(res.lb_z.at[m, "df"]))
        for m in res.lb_z.index
    )
    blocks.append(_Block("table", header=("lag", "Q (z²)", "p (z²)", "Q (r²)", "p (r²)", "df"),
                         rows=lb_rows))
    if z.size > 3:
        blocks.append(_Block("p", (
            f"Standardised residuals z: mean {_fmt(np.mean(z), '.3f')}, "
            f"std {_fmt(np.std(z), '.3f')}, skewness {_fmt(stats.skew(z), '.3f')}, "
            f"excess kurtosis {_fmt(stats.kurtosis(z), '.3f')}."
        )))
    blocks.append(_Block("img", f"vol_{res.stem}.png", anchor=f"{res.name}: volatility"))
    blocks.append(_Block("img", f"qq_{res.stem}.png", anchor=f"{res.name}: QQ plot"))
    return blocks


def _date(ts: Any) -> str:
    return ts.date().isoformat() if isinstance(ts, pd.Timestamp) else str(ts)


def _summary_block(results: Sequence[FactorDiagnostics], summary_lag: int) -> _Block:
    rows = []
    for r in results:
        fp = r.params
        rows.append((
            r.name, f"{fp.model}/{fp.dist}", _fmt(fp.persistence), _fmt(fp.unconditional_vol),
            _fmt_p(r.lb_z.at[summary_lag, "p_value"]), _fmt_p(r.lb_r.at[summary_lag, "p_value"]),
            fp.fallback or "",
        ))
    header = ("factor", "model/dist", "persistence", "unconditional vol",
              f"LB({summary_lag}) p z²", f"LB({summary_lag}) p r²", "fallback")
    return _Block("table", header=header, rows=tuple(rows))


def _intro_blocks(
    pset: ParameterSet, results: Sequence[FactorDiagnostics], lags: Sequence[int],
    summary_lag: int,
) -> list[_Block]:
    data = dict(pset.data)
    source = ", ".join(f"{k}: {v}" for k, v in data.items()) if data else "not recorded"
    return [
        _Block("h1", "Volatility calibration diagnostics"),
        _Block("p", f"Parameter set {pset.id}, created {pset.created_at}; data {source}."),
        _Block("p", (
            "Volatility in return units per day. Unconditional vol is the parameter set's "
            "long-run daily volatility (EGARCH: sqrt(exp(omega / (1 - beta))), a geometric-mean "
            "level that understates the mean variance). Next-day vol is the filter's forecast "
            "for the day after the last diagnosed return. "
            f"Ljung-Box tests at lags {', '.join(map(str, lags))} use the squared "
            "standardised residuals z² and, for comparison, the squared returns r² (less the "
            "fitted mean); degrees of freedom = lag (no subtraction for fitted parameters). "
            "A small p on r² and a large one on z² means the filter removed the ARCH effects."
        )),
        _Block("h2", "Summary"),
        _summary_block(results, summary_lag),
    ]


# Markdown --------------------------------------------------------------------------------------

_MD_SPECIAL = re.compile(r"([\\`*_\[\]<>|#])")


def _md(text: str) -> str:
    return _MD_SPECIAL.sub(r"\\\1", text).replace("\n", " ")


def _to_markdown(blocks: Sequence[_Block]) -> str:
    out: list[str] = []
    for b in blocks:
        if b.kind in ("h1", "h2", "h3"):
            out.append(f"{'#' * int(b.kind[1])} {_md(b.text)}\n")
        elif b.kind == "p":
            out.append(_md(b.text) + "\n")
        elif b.kind == "table":
            out.append("| " + " | ".join(_md(h) for h in b.header) + " |")
            out.append("|" + "|".join("---" for _ in b.header) + "|")
            out.extend("| " + " | ".join(_md(c) for c in row) + " |" for row in b.rows)
            out.append("")
        elif b.kind == "img":
            out.append(f"![{_md(b.anchor)}]({b.text})\n")
    return "\n".join(out)


# HTML ------------------------------------------------------------------------------------------

_CSS = (
    "body{font-family:system-ui,sans-serif;max-width:1000px;margin:2em auto;padding:0 1em;"
    "color:#222}table{border-collapse:collapse;margin:.5em 0 1em}"
    "th,td{border:1px solid #ccc;padding:.2em .6em;text-align:right}"
    "th{background:#f3f3f3}td:first-child,th:first-child{text-align:left}"
    "img{max-width:100%;display:block;margin:.5em 0}h2{border-top:1px solid #ddd;padding-top:.8em}"
)


def _to_html(blocks: Sequence[_Block], images: dict[str, bytes]) -> str:
    e = html.escape
    out = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
           "<title>Volatility calibration diagnostics</title>", f"<style>{_CSS}</style>",
           "</head><body>"]
    for b in blocks:
        if b.kind in ("h1", "h2", "h3"):
            anchor = f' id="{e(b.anchor)}"' if b.anchor else ""
            out.append(f"<{b.kind}{anchor}>{e(b.text)}</{b.kind}>")
        elif b.kind == "p":
            out.append(f"<p>{e(b.text)}</p>")
        elif b.kind == "table":
            out.append("<table><thead><tr>" + "".join(f"<th>{e(h)}</th>" for h in b.header)
                       + "</tr></thead><tbody>")
            out.extend("<tr>" + "".join(f"<td>{e(c)}</td>" for c in row) + "</tr>"
                       for row in b.rows)
            out.append("</tbody></table>")
        elif b.kind == "img":
            # Inline the PNG so the file is self-contained (e-mail, artefact stores).
            out.append(f'<img alt="{e(b.anchor)}" src="{png_data_uri(images[b.text])}">')
    out.append("</body></html>")
    return "\n".join(out) + "\n"


# --------------------------------------------------------------------------------------------
# Plots
# --------------------------------------------------------------------------------------------


def _vol_plot(res: FactorDiagnostics, path: Path) -> bytes:
    ff = res.filtered
    x = ff.sigma2.index.to_numpy()
    sigma = np.sqrt(ff.sigma2.to_numpy())
    abs_resid = np.abs(res.resid)
    fig = new_figure(9, 3.4)
    ax = fig.add_subplot()
    ax.plot(x, abs_resid, color="0.55", alpha=0.35, lw=0.6, label="|return|")
    ax.plot(x, sigma, color="C0", lw=1.1, label="conditional σ")
    if res.params.unconditional_vol is not None:
        ax.axhline(res.params.unconditional_vol, color="C3", lw=0.8, ls="--",
                   label="unconditional σ")
    ax.set_title(f"{res.name}: conditional volatility ({res.params.model}/{res.params.dist})")
    ax.set_ylabel("daily, return units")
    ax.set_ylim(bottom=0)
    ax.legend(loc="upper right", fontsize="small", frameon=False)
    return save_png(fig, path).read_bytes()


def _qq_plot(res: FactorDiagnostics, path: Path) -> bytes:
    z = np.sort(res.filtered.std_resid.to_numpy())
    n = z.size
    theo = res.qq_theoretical
    fig = new_figure(4.8, 4.6)
    ax = fig.add_subplot()
    ax.scatter(theo, z, s=5, color="C0", alpha=0.6, linewidths=0)
    if n:
        lo = float(min(theo[0], z[0]))
        hi = float(max(theo[-1], z[-1]))
        ax.plot([lo, hi], [lo, hi], color="C3", lw=0.9)
    fp = res.params
    shape = {"normal": "", "t": f", ν={_fmt(fp.nu, '.3g')}",
             "skewt": f", ν={_fmt(fp.nu, '.3g')}, λ={_fmt(fp.skew, '.3g')}"}[fp.dist]
    ax.set_title(f"{res.name}: QQ vs {fp.dist}{shape}", fontsize="medium")
    ax.set_xlabel("theoretical quantile")
    ax.set_ylabel("standardised residual")
    return save_png(fig, path).read_bytes()


# --------------------------------------------------------------------------------------------
# Entry point
# --------------------------------------------------------------------------------------------


def write_report(
    pset: ParameterSet,
    factors: Sequence[FactorDiagnostics],
    out_dir: Path,
    *,
    lags: Sequence[int],
    summary_lag: int,
) -> Path:
    """Write the plots, ``report.md`` and ``report.html`` of ``factors`` into ``out_dir``.

    Parameters
    ----------
    pset : ParameterSet
        The calibrated parameter set (its id, creation time and data source head the pages).
    factors : sequence of FactorDiagnostics
        One per factor, in page order, with distinct stems.
    out_dir : pathlib.Path
        Output folder, created if missing; see the module docstring for its contents.
    lags : sequence of int
        The Ljung-Box lags of the tables (named in the introduction).
    summary_lag : int
        The lag whose p-values the summary table shows; one of ``lags``.

    Returns
    -------
    pathlib.Path
        ``out_dir / "report.md"``.
    """
    blocks = _intro_blocks(pset, factors, lags, summary_lag)
    for res in factors:
        blocks.extend(_factor_blocks(res))

    with staged_output(out_dir) as stage:
        images: dict[str, bytes] = {}
        for res in factors:
            vol, qq = f"vol_{res.stem}.png", f"qq_{res.stem}.png"
            images[vol] = _vol_plot(res, stage / vol)
            images[qq] = _qq_plot(res, stage / qq)
        (stage / "report.md").write_text(_to_markdown(blocks), encoding="utf-8")
        (stage / "report.html").write_text(_to_html(blocks, images), encoding="utf-8")
    return Path(out_dir) / "report.md"
