"""The calibration diagnostics report: one page in HTML and Markdown, and its figures.

:func:`write_report` renders the diagnostics that :mod:`calibration.diagnostics` computed for
each factor (:class:`FactorDiagnostics`: the fitted parameters, the filtered volatility, the
residuals, the Ljung-Box tables and the QQ quantiles) and the parameter set's dependence, and
writes into ``out_dir``:

* ``vol_<stem>.png``: daily conditional volatility (return units) over the absolute residuals;
* ``qq_<stem>.png``: QQ plot of the standardised residuals against the fitted innovation
  distribution (arch's unit-variance normal, Student's t or Hansen skew-t);
* ``report.md`` and ``report.html`` (self-contained, figures inlined): the verdict (fits and
  fallbacks, whether the filter removed the ARCH effects, the dependence) in words first; the
  figures (volatility now against its long-run level, the correlation); the summary table; the
  dependence (shrinkage, copula degrees of freedom, strongest correlations); per factor its
  estimation status in words, parameters with standard errors and t-statistics,
  loglik/AIC/BIC, runners-up, Ljung-Box tests and its two figures.

``<stem>`` is the factor name made safe for a file name (:func:`file_stems`). Both pages take
their rows from the same functions, so they say the same. Files are written into a staging
folder and moved into ``out_dir`` only when complete
(:func:`riskmodel.io.outputs.staged_output`); files of the same name are replaced, others kept.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from riskmodel.io.outputs import staged_output
from riskmodel.report import formats as f
from riskmodel.report.calibration_data import FactorDiagnostics, file_stems
from riskmodel.report.calibration_plots import correlation_figure, vol_levels_figure
from riskmodel.report.calibration_plots import qq_plot as _qq_plot
from riskmodel.report.calibration_plots import vol_plot as _vol_plot
from riskmodel.report.page import PageTable, key_values, page_context, write_page
from riskmodel.volatility.params import FactorParams, ParameterSet

__all__ = ["FactorDiagnostics", "file_stems", "write_report"]

Rows = tuple[tuple[str, ...], ...]
_SIGNIFICANCE = 0.05


def _fmt(x: Any, spec: str = ".4g") -> str:
    if x is None:
        return f.DASH
    try:
        v = float(x)
    except (TypeError, ValueError):
        return str(x)
    if not math.isfinite(v):
        return f.DASH if math.isnan(v) else str(v)
    return format(v, spec)


def _param_rows(fp: FactorParams) -> Rows:
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
    rows = []
    for name in names:
        est = getattr(fp, "skew" if name == "lambda" else name)
        se = fp.std_errors.get(name)
        t = est / se if est is not None and se is not None and se > 0 else None
        rows.append((name, _fmt(est, ".6g"), _fmt(se), _fmt(t, ".2f")))
    return tuple(rows)


def _runner_rows(fp: FactorParams) -> Rows:
    rows = []
    for r in fp.runners_up:
        bic = r.get("bic")
        delta = bic - fp.bic if bic is not None and fp.bic is not None else None
        rows.append((f"{r.get('model', '?')}/{r.get('dist', '?')}", _fmt(bic, ".2f"),
                     _fmt(delta, "+.2f"), str(r.get("rejected") or "")))
    return tuple(rows)


def _fit_rows(res: FactorDiagnostics) -> Rows:
    fp = res.params
    return ((_fmt(fp.loglik, ".2f"), _fmt(fp.aic, ".2f"), _fmt(fp.bic, ".2f"),
             _fmt(fp.persistence), _fmt(fp.unconditional_vol), _fmt(res.filtered.sigma_1d)),)


def _lb_rows(res: FactorDiagnostics) -> Rows:
    return tuple(
        (str(m), _fmt(res.lb_z.at[m, "Q"], ".2f"), f.pvalue(res.lb_z.at[m, "p_value"]),
         _fmt(res.lb_r.at[m, "Q"], ".2f"), f.pvalue(res.lb_r.at[m, "p_value"]),
         str(res.lb_z.at[m, "df"]))
        for m in res.lb_z.index)


def _estimation(fp: FactorParams) -> str:
    """The factor's estimation status in words (an EWMA is not estimated, so it has no
    convergence to report)."""
    if fp.model == "ewma":
        text = f"Not estimated: EWMA with decay {_fmt(fp.decay, '.4g')}"
        return text + (f", the fallback because {fp.fallback}." if fp.fallback else ".")
    if fp.fallback:
        return f"Fallback: {fp.fallback}."
    return ("Maximum likelihood; the optimiser converged." if fp.converged else
            "Maximum likelihood; the optimiser did not report convergence.")


def _date(ts: Any) -> str:
    return ts.date().isoformat() if isinstance(ts, pd.Timestamp) else str(ts)


def _factor_text(res: FactorDiagnostics) -> tuple[str, str]:
    """(model sentence, sample and residual sentence) of one factor."""
    fp, ff = res.params, res.filtered
    idx = ff.sigma2.index
    z = ff.std_resid.to_numpy()
    model = (f"Model {fp.model}/{fp.dist}, mean {fp.mean}, return scale "
             f"{_fmt(fp.return_scale)} (parameters in scaled-return units). "
             + _estimation(fp))
    sample = (f"Diagnostics over {len(idx):,} returns "
              f"{_date(idx[0]) if len(idx) else f.DASH} to "
              f"{_date(idx[-1]) if len(idx) else f.DASH} (filter start: {ff.start}).")
    if z.size > 3:
        sample += (f" Standardised residuals: mean {_fmt(np.mean(z), '.3f')}, std "
                   f"{_fmt(np.std(z), '.3f')}, skewness {_fmt(stats.skew(z), '.3f')}, excess "
                   f"kurtosis {_fmt(stats.kurtosis(z), '.3f')}.")
    return model, sample


SUMMARY_HEADER = ("factor", "model/dist", "persistence", "unconditional vol",
                  "LB({lag}) p z²", "LB({lag}) p r²", "fallback")


def _summary_rows(results: Sequence[FactorDiagnostics], lag: int) -> Rows:
    return tuple((r.name, f"{r.params.model}/{r.params.dist}", _fmt(r.params.persistence),
                  _fmt(r.params.unconditional_vol), f.pvalue(r.lb_z.at[lag, "p_value"]),
                  f.pvalue(r.lb_r.at[lag, "p_value"]), r.params.fallback or "")
                 for r in results)


def _data_text(pset: ParameterSet) -> str:
    """Where the parameter set comes from, in words."""
    data = dict(pset.data)
    if not data:
        return f"Parameter set {pset.id}, created {pset.created_at}; data source not recorded."
    source = Path(str(data.get("file", "?"))).name
    sha = str(data.get("sha256", ""))[:12]
    span = (f", returns from {f.date(data['start'])} to {f.date(data['end'])}"
            if data.get("start") and data.get("end") else "")
    most = (f", at most {f.count(data['max_returns_per_factor'])} per factor"
            if data.get("max_returns_per_factor") else "")
    return (f"Parameter set {pset.id}, created {f.date(pset.created_at)}, fitted on {source}"
            + (f" (SHA-256 {sha}…)" if sha else "") + span + most + ".")


def _pairs(dep: Mapping[str, Any], k: int = 10) -> Rows:
    """The ``k`` strongest pairwise correlations: (pair, correlation)."""
    names = [str(x) for x in dep["factors"]]
    corr = np.asarray(dep["correlation"], np.float64)
    i, j = np.triu_indices(len(names), 1)
    order = np.argsort(-np.abs(corr[i, j]), kind="stable")[:k]
    return tuple((f"{names[i[o]]} – {names[j[o]]}", f"{corr[i[o], j[o]]:+.3f}") for o in order)


def _dependence_facts(dep: Mapping[str, Any] | None) -> tuple[str, Rows]:
    """(one sentence, key-value rows) of the dependence, or a sentence saying there is none."""
    if not dep or not dep.get("factors"):
        return ("The parameter set holds no dependence: Monte Carlo runs estimate correlation "
                "and copula at run time.", ())
    nu = (dep.get("copula") or {}).get("nu")
    pairs = _pairs(dep, 1)
    sentence = (f"Dependence of {len(dep['factors'])} factors: Ledoit-Wolf shrinkage "
                f"{f.pct(dep.get('shrinkage'), 2)} towards the identity, Student-t copula with "
                f"{_fmt(nu, '.3g')} degrees of freedom"
                + (f"; strongest correlation {pairs[0][0]} {pairs[0][1]}." if pairs else "."))
    rows = (("method", str(dep.get("method", ""))),
            ("factors", f.count(len(dep["factors"]))),
            ("shrinkage intensity", f.pct(dep.get("shrinkage"), 2)),
            ("copula", f"{(dep.get('copula') or {}).get('family', 't')}, ν = {_fmt(nu, '.4g')}"),
            ("complete-case dates", f.count(dep.get("n_complete"))))
    return sentence, rows


def _verdict(pset: ParameterSet, results: Sequence[FactorDiagnostics], lag: int
             ) -> tuple[str, str, list[str], list[dict[str, str]]]:
    n = len(results)
    fell = [r for r in results if r.params.fallback]
    models: dict[str, int] = {}
    for r in results:
        key = f"{r.params.model}/{r.params.dist}"
        models[key] = models.get(key, 0) + 1
    mix = ", ".join(f"{k} {v}" for k, v in sorted(models.items(), key=lambda kv: -kv[1]))
    if fell:
        names = "; ".join(f"{r.name} ({r.params.fallback})" for r in fell[:5])
        verdict = (f"{n - len(fell)} of {n} factors fitted ({mix}); {len(fell)} fell back: "
                   f"{names}" + (" …" if len(fell) > 5 else "") + ".")
    else:
        verdict = f"All {n} factors fitted ({mix}); no fallback."
    z_ok = sum(1 for r in results if r.lb_z.at[lag, "p_value"] > _SIGNIFICANCE)
    r_rej = sum(1 for r in results if r.lb_r.at[lag, "p_value"] <= _SIGNIFICANCE)
    findings = [
        f"ARCH effects: at lag {lag}, Ljung-Box finds autocorrelation (5% level) in the "
        f"squared returns of {r_rej} of {n} factors and in the squared standardised residuals "
        f"of {n - z_ok} of {n}: the filter removed the ARCH effects in {z_ok} of {n}.",
        _dependence_facts(pset.dependence)[0],
    ]
    ratio = [(r.filtered.sigma_1d / r.params.unconditional_vol, r.name) for r in results
             if r.params.unconditional_vol]
    if ratio:
        top = max(ratio)
        findings.append(f"Volatility now: the next-day volatility is furthest above its "
                        f"long-run level for {top[1]} ({_fmt(top[0], '.2f')} x).")
    tone = "good" if not fell and z_ok == n else "attention"
    nu = ((pset.dependence or {}).get("copula") or {}).get("nu")
    headline = [
        {"value": f.count(n), "label": "factors"},
        {"value": f.count(len(fell)), "label": "fallbacks"},
        {"value": f"{z_ok} / {n}", "label": f"filter passes LB({lag}) on z²"},
        {"value": _fmt(nu, ".3g"), "label": "t-copula degrees of freedom"},
        {"value": f.pct((pset.dependence or {}).get("shrinkage"), 2),
         "label": "correlation shrinkage"},
    ]
    return verdict, tone, findings, headline


_INTRO = ("Volatility in return units per day. Unconditional vol is the parameter set's "
          "long-run daily volatility (EGARCH: sqrt(exp(omega / (1 - beta))), a geometric-mean "
          "level that understates the mean variance). Next-day vol is the filter's forecast for "
          "the day after the last diagnosed return. Ljung-Box tests at lags {lags} use the "
          "squared standardised residuals z² and, for comparison, the squared returns r² (less "
          "the fitted mean); degrees of freedom = lag (no subtraction for fitted parameters). A "
          "small p on r² and a large one on z² means the filter removed the ARCH effects.")


# Markdown --------------------------------------------------------------------------------------

_MD_SPECIAL = re.compile(r"([\\`*_\[\]<>|#])")


def _md(text: str) -> str:
    return _MD_SPECIAL.sub(r"\\\1", text).replace("\n", " ")


def _md_table(header: Sequence[str], rows: Rows) -> list[str]:
    out = ["| " + " | ".join(_md(h) for h in header) + " |",
           "|" + "|".join("---" for _ in header) + "|"]
    out += ["| " + " | ".join(_md(c) for c in row) + " |" for row in rows]
    return out + [""]


def _markdown(pset: ParameterSet, results: Sequence[FactorDiagnostics], lags: Sequence[int],
              lag: int) -> str:
    verdict, _, findings, _ = _verdict(pset, results, lag)
    out = ["# Volatility calibration diagnostics\n", _md(_data_text(pset)) + "\n",
           "**" + _md(verdict) + "**\n", *(_md(x) + "\n" for x in findings),
           _md(_INTRO.format(lags=", ".join(map(str, lags)))) + "\n", "## Summary\n"]
    out += _md_table([h.format(lag=lag) for h in SUMMARY_HEADER], _summary_rows(results, lag))
    sentence, dep_rows = _dependence_facts(pset.dependence)
    out += ["## Dependence\n", _md(sentence) + "\n"]
    if dep_rows:
        out += _md_table(("", ""), dep_rows)
        out += _md_table(("pair", "correlation"), _pairs(pset.dependence or {}))
    for res in results:
        model, sample = _factor_text(res)
        out += [f"## {_md(res.name)}\n", _md(model) + "\n", _md(sample) + "\n",
                "### Parameters\n"]
        out += _md_table(("parameter", "estimate", "std. error", "t-stat"),
                         _param_rows(res.params))
        out += _md_table(("loglik", "AIC", "BIC", "persistence", "unconditional vol",
                          "next-day vol"), _fit_rows(res))
        runners = _runner_rows(res.params)
        out += ["### Runners-up\n"]
        out += (_md_table(("model/dist", "BIC", "ΔBIC", "rejected"), runners) if runners
                else ["None recorded.\n"])
        out += ["### Ljung-Box on squares\n"]
        out += _md_table(("lag", "Q (z²)", "p (z²)", "Q (r²)", "p (r²)", "df"), _lb_rows(res))
        out += [f"![{_md(res.name)}: volatility](vol_{res.stem}.png)\n",
                f"![{_md(res.name)}: QQ plot](qq_{res.stem}.png)\n"]
    return "\n".join(out)


# HTML ------------------------------------------------------------------------------------------


def _table(header: Sequence[str], rows: Rows, caption: str = "", first_label: bool = True
           ) -> PageTable:
    numeric = tuple(not (i == 0 and first_label) for i in range(len(header)))
    return PageTable(tuple(header), rows, numeric, caption)


def _factor_context(res: FactorDiagnostics, figures: Sequence[Any]) -> dict[str, Any]:
    model, sample = _factor_text(res)
    runners = _runner_rows(res.params)
    return {
        "name": res.name, "anchor": res.stem, "model": model, "sample": sample,
        "figures": figures,
        "params": _table(("parameter", "estimate", "std. error", "t-stat"),
                         _param_rows(res.params), "Parameters"),
        "fit": _table(("loglik", "AIC", "BIC", "persistence", "unconditional vol",
                       "next-day vol"), _fit_rows(res), "Fit", first_label=False),
        "runners": _table(("model/dist", "BIC", "ΔBIC", "rejected"), runners, "Runners-up")
        if runners else None,
        "lb": _table(("lag", "Q (z²)", "p (z²)", "Q (r²)", "p (r²)", "df"), _lb_rows(res),
                     "Ljung-Box on squares"),
    }


def write_report(
    pset: ParameterSet,
    factors: Sequence[FactorDiagnostics],
    out_dir: Path,
    *,
    lags: Sequence[int],
    summary_lag: int,
) -> Path:
    """Write the figures, ``report.md`` and ``report.html`` of ``factors`` into ``out_dir``.

    Parameters
    ----------
    pset : ParameterSet
        The calibrated parameter set (its id, data source and dependence head the pages).
    factors : sequence of FactorDiagnostics
        One per factor, in page order, with distinct stems.
    out_dir : pathlib.Path
        Output folder, created if missing; see the module docstring for its contents.
    lags : sequence of int
        The Ljung-Box lags of the tables (named in the introduction).
    summary_lag : int
        The lag whose p-values the summary table and the verdict use; one of ``lags``.

    Returns
    -------
    pathlib.Path
        ``out_dir / "report.md"``.
    """
    verdict, tone, findings, headline = _verdict(pset, factors, summary_lag)
    sentence, dep_rows = _dependence_facts(pset.dependence)
    with staged_output(out_dir) as stage:
        sections = [_factor_context(res, (_vol_plot(res, stage / f"vol_{res.stem}.png"),
                                          _qq_plot(res, stage / f"qq_{res.stem}.png")))
                    for res in factors]
        overview = [vol_levels_figure([r.name for r in factors],
                                      [r.filtered.sigma_1d for r in factors],
                                      [r.params.unconditional_vol for r in factors])]
        if dep_rows:
            overview.append(correlation_figure(pset.dependence or {}))
        (stage / "report.md").write_text(_markdown(pset, factors, lags, summary_lag),
                                         encoding="utf-8")
        write_page(
            stage / "report.html", "calibration.html.j2",
            **page_context(title="Volatility calibration diagnostics", subtitle=_data_text(pset),
                           verdict=verdict, tone=tone, findings=findings, headline=headline),
            overview=overview, intro=_INTRO.format(lags=", ".join(map(str, lags))),
            summary=_table([h.format(lag=summary_lag) for h in SUMMARY_HEADER],
                           _summary_rows(factors, summary_lag)),
            dependence_text=sentence,
            dependence=key_values([(k, v) for k, v in dep_rows]) if dep_rows else None,
            pairs=(_table(("pair", "correlation"), _pairs(pset.dependence or {}),
                          "Strongest correlations") if dep_rows else None),
            factors=sections)
    return Path(out_dir) / "report.md"
