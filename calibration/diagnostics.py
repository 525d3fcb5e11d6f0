"""Diagnostics report for a calibrated parameter set: plots, residual tests, parameter tables.

:func:`write_report` filters every factor with its parameters
(:func:`riskmodel.volatility.filters.filter_factor`) and writes, into ``out_dir``:

* ``vol_<factor>.png``: daily conditional volatility (return units) over the absolute residuals;
* ``qq_<factor>.png``: QQ plot of the standardised residuals against the fitted innovation
  distribution (arch's unit-variance normal, Student's t or Hansen skew-t);
* ``report.md``: a summary table, then per factor the parameters with standard errors and
  t-statistics, loglik/AIC/BIC, the runners-up, the fallback reason and Ljung-Box tests;
* ``report.html``: the same content in one self-contained file (images inlined as base64).

Sample: the diagnostics cover the calibration sample (``sample_start`` .. ``sample_end``) when the
returns contain it, so they describe what the fit saw and the filter starts from the recorded
backcast, reproducing arch's conditional variance; otherwise all of the factor's returns.

Ljung-Box degrees of freedom: for squared standardised residuals of a fitted GARCH model the
statistic is not exactly chi-square with any integer number of degrees of freedom (Li and Mak
1994); subtracting the number of fitted dynamic parameters (m - 2 for GARCH(1,1), Tsay 2010) is a
heuristic. The report uses ``m`` degrees of freedom (no subtraction, statsmodels'
``model_df=0``) for the residuals and the raw squared returns alike, so the two columns compare
like with like; this errs slightly towards accepting the model. :func:`ljung_box` takes
``model_df`` for callers who prefer the adjustment.

Files are written into a staging folder and moved into ``out_dir`` only when complete
(:func:`riskmodel.io.outputs.staged_output`); files of the same name are replaced, others kept.
"""

from __future__ import annotations

import base64
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
from arch.univariate import SkewStudent, StudentsT
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from numpy.typing import ArrayLike
from scipy import stats

from riskmodel.io.outputs import staged_output
from riskmodel.volatility.filters import FilteredFactor, filter_factor
from riskmodel.volatility.params import FactorParams, ParameterSet

LB_LAGS: tuple[int, ...] = (5, 10, 20)
SUMMARY_LAG = 10

__all__ = ["LB_LAGS", "innovation_ppf", "ljung_box", "write_report"]


# --------------------------------------------------------------------------------------------
# Statistics
# --------------------------------------------------------------------------------------------


def ljung_box(
    x: ArrayLike, lags: Sequence[int] = LB_LAGS, model_df: int = 0
) -> pd.DataFrame:
    """Ljung-Box portmanteau test of ``x`` for autocorrelation up to each lag.

    ``Q(m) = n (n + 2) sum_{k=1..m} rho_k^2 / (n - k)`` with ``rho_k`` the lag-k sample
    autocorrelation of the demeaned series; the p-value is the chi-square survival function with
    ``m - model_df`` degrees of freedom.

    Parameters
    ----------
    x : array_like
        One-dimensional series, contiguous in time (apply the square beforehand to test for
        ARCH effects).
    lags : sequence of int
        Maximum lags ``m`` (each >= 1).
    model_df : int
        Degrees of freedom to subtract for fitted parameters (default 0; see the module
        docstring).

    Returns
    -------
    pandas.DataFrame
        Indexed by lag, columns ``Q``, ``df`` and ``p_value``. ``Q`` is NaN for a constant
        series or when ``m >= n``; ``p_value`` is NaN when ``Q`` is, or when ``df <= 0``.

    Raises
    ------
    ValueError
        If ``x`` is not one-dimensional, holds non-finite values (dropping them would silently
        join returns that are not adjacent) or a lag is < 1.
    """
    a = np.asarray(x, dtype=np.float64)
    if a.ndim != 1:
        raise ValueError(f"ljung_box needs a one-dimensional series (shape {a.shape})")
    if not np.all(np.isfinite(a)):
        raise ValueError("ljung_box: series has non-finite values")
    lag_list = [int(m) for m in lags]
    if any(m < 1 for m in lag_list):
        raise ValueError(f"ljung_box: lags must be >= 1 (got {lag_list})")
    n = a.shape[0]
    d = a - a.mean() if n else a
    denom = float(d @ d)
    max_lag = min(max(lag_list, default=0), n - 1)
    # Terms rho_k^2 / (n - k) for k = 1..max_lag; cumulative sums give every Q at once.
    terms = np.empty(max(max_lag, 0))
    if denom > 0:
        for k in range(1, max_lag + 1):
            rho = float(d[k:] @ d[:-k]) / denom
            terms[k - 1] = rho * rho / (n - k)
    cum = np.cumsum(terms)
    rows = []
    for m in lag_list:
        df = m - model_df
        if denom > 0 and m < n:
            q = n * (n + 2.0) * float(cum[m - 1])
            p = float(stats.chi2.sf(q, df)) if df > 0 else math.nan
        else:
            q, p = math.nan, math.nan
        rows.append((m, q, df, p))
    frame = pd.DataFrame(rows, columns=["lag", "Q", "df", "p_value"]).set_index("lag")
    return frame


def innovation_ppf(params: FactorParams, q: ArrayLike) -> np.ndarray:
    """Quantiles of the factor's fitted innovation distribution (unit variance, as in arch).

    Parameters
    ----------
    params : FactorParams
        ``dist`` selects the distribution: ``normal`` (scipy), ``t`` (arch's standardised
        Student's t with ``nu``), ``skewt`` (arch's Hansen skew-t with ``nu`` and ``lambda``).
    q : array_like
        Probabilities in (0, 1).

    Returns
    -------
    numpy.ndarray
        The quantiles, same shape as ``q``.
    """
    p = np.asarray(q, dtype=np.float64)
    if params.dist == "t":
        return np.asarray(StudentsT().ppf(p, [float(params.nu or math.nan)]))
    if params.dist == "skewt":
        shape = [float(params.nu or math.nan), float(params.skew or 0.0)]
        return np.asarray(SkewStudent().ppf(p, shape))
    return np.asarray(stats.norm.ppf(p))


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


@dataclass(frozen=True)
class _FactorResult:
    name: str
    stem: str
    params: FactorParams
    filtered: FilteredFactor
    resid: np.ndarray  # r - mu on the filtered dates, return units
    lb_z: pd.DataFrame
    lb_r: pd.DataFrame


_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def _file_stems(names: Sequence[str]) -> dict[str, str]:
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


def _factor_blocks(res: _FactorResult) -> list[_Block]:
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


def _summary_block(results: Sequence[_FactorResult]) -> _Block:
    rows = []
    for r in results:
        fp = r.params
        rows.append((
            r.name, f"{fp.model}/{fp.dist}", _fmt(fp.persistence), _fmt(fp.unconditional_vol),
            _fmt_p(r.lb_z.at[SUMMARY_LAG, "p_value"]), _fmt_p(r.lb_r.at[SUMMARY_LAG, "p_value"]),
            fp.fallback or "",
        ))
    header = ("factor", "model/dist", "persistence", "unconditional vol",
              f"LB({SUMMARY_LAG}) p z²", f"LB({SUMMARY_LAG}) p r²", "fallback")
    return _Block("table", header=header, rows=tuple(rows))


def _intro_blocks(pset: ParameterSet, results: Sequence[_FactorResult]) -> list[_Block]:
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
            f"Ljung-Box tests at lags {', '.join(map(str, LB_LAGS))} use the squared "
            "standardised residuals z² and, for comparison, the squared returns r² (less the "
            "fitted mean); degrees of freedom = lag (no subtraction for fitted parameters). "
            "A small p on r² and a large one on z² means the filter removed the ARCH effects."
        )),
        _Block("h2", "Summary"),
        _summary_block(results),
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
            data = base64.b64encode(images[b.text]).decode("ascii")
            out.append(f'<img alt="{e(b.anchor)}" src="data:image/png;base64,{data}">')
    out.append("</body></html>")
    return "\n".join(out) + "\n"


# --------------------------------------------------------------------------------------------
# Plots
# --------------------------------------------------------------------------------------------


def _save(fig: Figure, path: Path) -> bytes:
    # An explicit Agg canvas on a bare Figure: no pyplot state, no global backend switch, and
    # nothing left open once the figure goes out of scope.
    FigureCanvasAgg(fig)
    fig.savefig(path, format="png", dpi=100)
    fig.clear()
    return path.read_bytes()


def _vol_plot(res: _FactorResult, path: Path) -> bytes:
    ff = res.filtered
    x = ff.sigma2.index.to_numpy()
    sigma = np.sqrt(ff.sigma2.to_numpy())
    abs_resid = np.abs(res.resid)
    fig = Figure(figsize=(9, 3.4), layout="constrained")
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
    return _save(fig, path)


def _qq_plot(res: _FactorResult, path: Path) -> bytes:
    z = np.sort(res.filtered.std_resid.to_numpy())
    n = z.size
    theo = innovation_ppf(res.params, (np.arange(1, n + 1) - 0.5) / n) if n else z
    fig = Figure(figsize=(4.8, 4.6), layout="constrained")
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
    return _save(fig, path)


# --------------------------------------------------------------------------------------------
# Entry point
# --------------------------------------------------------------------------------------------


def _diagnostic_sample(series: pd.Series, fp: FactorParams) -> pd.Series:
    """The calibration sample when ``series`` contains it, else all of ``series``."""
    if fp.sample_start and fp.sample_end:
        start, end = pd.Timestamp(fp.sample_start), pd.Timestamp(fp.sample_end)
        if start in series.index and end in series.index:
            return series.loc[start:end]
    return series


def _analyse(name: str, fp: FactorParams, series: pd.Series, stem: str) -> _FactorResult:
    ff = filter_factor(name, _diagnostic_sample(series, fp), fp)
    z = ff.std_resid.to_numpy()
    r = series.loc[ff.sigma2.index].to_numpy(np.float64) - ff.mu
    return _FactorResult(
        name=name, stem=stem, params=fp, filtered=ff, resid=r,
        lb_z=ljung_box(z**2, LB_LAGS), lb_r=ljung_box(r**2, LB_LAGS),
    )


def write_report(pset: ParameterSet, returns: pd.DataFrame, out_dir: Path) -> Path:
    """Write the diagnostics report of ``pset`` on ``returns`` into ``out_dir``.

    Parameters
    ----------
    pset : ParameterSet
        Calibrated parameters (e.g. from :func:`calibration.runner.calibrate`).
    returns : pandas.DataFrame
        Dates x factors, the returns the parameters were fitted on (NaN before a factor's
        first return is dropped); it must have a column for every factor in ``pset``.
    out_dir : pathlib.Path
        Output folder, created if missing; see the module docstring for its contents.

    Returns
    -------
    pathlib.Path
        ``out_dir / "report.md"``.

    Raises
    ------
    ValueError
        If a factor of ``pset`` has no column in ``returns`` or no returns at all.
    """
    names = sorted(pset.factors)
    missing = [n for n in names if n not in returns.columns]
    if missing:
        raise ValueError(f"write_report: no returns for factor(s) {missing}")
    stems = _file_stems(names)
    results = []
    for name in names:
        series = returns[name].dropna()
        if series.empty:
            raise ValueError(f"write_report: factor {name!r} has no returns")
        results.append(_analyse(name, pset.factors[name], series, stems[name]))

    blocks = _intro_blocks(pset, results)
    for res in results:
        blocks.extend(_factor_blocks(res))

    with staged_output(out_dir) as stage:
        images: dict[str, bytes] = {}
        for res in results:
            vol, qq = f"vol_{res.stem}.png", f"qq_{res.stem}.png"
            images[vol] = _vol_plot(res, stage / vol)
            images[qq] = _qq_plot(res, stage / qq)
        (stage / "report.md").write_text(_to_markdown(blocks), encoding="utf-8")
        (stage / "report.html").write_text(_to_html(blocks, images), encoding="utf-8")
    return Path(out_dir) / "report.md"
