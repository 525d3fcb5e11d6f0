"""Diagnostics of a calibrated parameter set: residual tests, innovation quantiles, the report.

:func:`write_report` filters every factor with its parameters
(:func:`riskmodel.volatility.filters.filter_factor`), computes the diagnostics (Ljung-Box tests
of the squared standardised residuals and of the squared returns, quantiles of the fitted
innovation law for the QQ plot) and hands them to :func:`riskmodel.report.calibration.write_report`,
which writes into ``out_dir`` the plots ``vol_<factor>.png`` and ``qq_<factor>.png``,
``report.md`` and a self-contained ``report.html`` (staged: files appear only when complete).

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
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from arch.univariate import SkewStudent, StudentsT
from numpy.typing import ArrayLike
from scipy import stats

from riskmodel.report.calibration import FactorDiagnostics, file_stems
from riskmodel.report.calibration import write_report as write_pages
from riskmodel.volatility.filters import filter_factor
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
# Entry point
# --------------------------------------------------------------------------------------------


def _diagnostic_sample(series: pd.Series, fp: FactorParams) -> pd.Series:
    """The calibration sample when ``series`` contains it, else all of ``series``."""
    if fp.sample_start and fp.sample_end:
        start, end = pd.Timestamp(fp.sample_start), pd.Timestamp(fp.sample_end)
        if start in series.index and end in series.index:
            return series.loc[start:end]
    return series


def _analyse(name: str, fp: FactorParams, series: pd.Series, stem: str) -> FactorDiagnostics:
    """Filter one factor over its diagnostic sample and compute what the report shows of it."""
    ff = filter_factor(name, _diagnostic_sample(series, fp), fp)
    z = ff.std_resid.to_numpy()
    r = series.loc[ff.sigma2.index].to_numpy(np.float64) - ff.mu
    n = z.size
    # The QQ plot's theoretical quantiles, at plotting positions (i - 0.5) / n.
    theo = innovation_ppf(fp, (np.arange(1, n + 1) - 0.5) / n) if n else np.empty(0)
    return FactorDiagnostics(
        name=name, stem=stem, params=fp, filtered=ff, resid=r,
        lb_z=ljung_box(z**2, LB_LAGS), lb_r=ljung_box(r**2, LB_LAGS), qq_theoretical=theo,
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
    stems = file_stems(names)
    results = []
    for name in names:
        series = returns[name].dropna()
        if series.empty:
            raise ValueError(f"write_report: factor {name!r} has no returns")
        results.append(_analyse(name, pset.factors[name], series, stems[name]))
    return write_pages(pset, results, out_dir, lags=LB_LAGS, summary_lag=SUMMARY_LAG)
