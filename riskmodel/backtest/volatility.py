"""Volatility in a backtest: parameters fitted on a schedule, one causal filter pass per factor
and parameter set, sliced at each date.

Each factor is filtered once over its whole history with fixed parameters
(:func:`~riskmodel.volatility.filters.filter_factor`, numba recursion) and the result is sliced
at each backtest date ``t``: the conditional variances and standardised residuals up to ``t``
and ``sigma2_next``, the variance for ``t + 1`` known at ``t``. The recursion is causal, so the
slice equals a filter stopped at ``t``. Where the recursion starts (:func:`causal_filter`): at
the parameters' own calibration sample with its stored backcast when that sample covers the
first scenario window (what ``eod`` does), otherwise at the factor's first return with a
backcast computed from the returns *before the first backtest date* only.

Parameters (:func:`fit_schedule`): those of ``--params`` or, with ``volatility.model =
"garch"``, fitted by the injected fitter on the returns before the first backtest date; then
refitted on the first backtest date at least ``recalibrate_every`` calendar rows after the
previous fit, on the returns up to and including that date, each factor on its last
``max(garch_fit_window, window + 250)`` returns as ``eod`` fits it (and with the fitter's
proxy rule for factors whose own history is too short). With ``recalibrate_every = 1`` every
date is margined with the fit an ``eod`` without ``--params`` makes on that date.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from riskmodel.config import RunConfig
from riskmodel.errors import ModelError
from riskmodel.scenarios.model import FILTER_BURN_IN, VolatilityFitter, parameters_for
from riskmodel.volatility.filters import FilteredFactor, backcast_value, filter_factor
from riskmodel.volatility.params import FactorParams, ParameterSet


@dataclass(frozen=True)
class FilterPath:
    """One factor filtered over its history with fixed parameters; :meth:`at` slices it.

    Attributes
    ----------
    asset : str
    params : FactorParams, the parameters (as given or fitted).
    sigma2 : Series (dates of the filtered returns), conditional variance of each return.
    std_resid : Series (same dates), standardised residuals.
    forecast : ndarray of shape (n + 1,), ``sigma2`` followed by the one-step forecast after
        the last return: ``forecast[j + 1]`` is the variance for the day after date ``j``.
    start : str, how the recursion was started (for the manifest).
    """

    asset: str
    params: FactorParams
    sigma2: pd.Series
    std_resid: pd.Series
    forecast: np.ndarray
    start: str

    def at(self, date: pd.Timestamp, keep: int | None = None) -> FilteredFactor:
        """What :func:`~riskmodel.volatility.filters.filter_factor` stopped at ``date`` gives.

        ``keep``: only the last ``keep`` filtered returns up to ``date`` (the scenario
        generators read the window's dates only; a shorter series is cheaper to index).
        """
        index = self.sigma2.index
        j = int(index.searchsorted(date))
        if j >= len(index) or index[j] != date:
            raise ModelError(f"factor {self.asset!r}: no filtered return on {date.isoformat()}")
        first = 0 if keep is None else max(0, j + 1 - keep)
        return FilteredFactor(
            asset=self.asset,
            params=self.params,
            sigma2=self.sigma2.iloc[first : j + 1],
            std_resid=self.std_resid.iloc[first : j + 1],
            sigma2_next=float(self.forecast[j + 1]),
            start=self.start,
        )


def causal_filter(
    asset: str,
    returns: pd.Series,
    params: FactorParams,
    cover_from: pd.Timestamp,
    first_date: pd.Timestamp,
) -> FilterPath:
    """Filter a factor's whole history without looking beyond ``first_date`` for its start.

    Parameters
    ----------
    asset : str
    returns : Series of the factor's daily returns (its own history, no NaN, sorted dates),
        possibly running past the backtest dates: the recursion is causal.
    params : FactorParams
    cover_from : Timestamp, the first date the filtered range must include (the start of the
        first scenario window, or of the floor's longer window).
    first_date : Timestamp, the first date the parameters are used on.
    """
    sample_start = pd.Timestamp(params.sample_start) if params.sample_start else None
    if (
        sample_start is not None
        and params.backcast_value is not None
        and sample_start in returns.index
        and sample_start <= cover_from
    ):
        ff = filter_factor(asset, returns, params, cover_from=cover_from)
        start = ff.start
    else:
        before = returns.loc[returns.index < first_date]
        if len(before) == 0:
            raise ModelError(f"factor {asset!r}: no return before the first backtest date "
                             f"{first_date.isoformat()} to start its volatility filter from")
        resid = before.to_numpy(np.float64) * params.return_scale - params.mu
        value = max(backcast_value(resid, params.backcast), float(np.finfo(float).tiny))
        pinned = dataclasses.replace(params, sample_start=returns.index[0].isoformat(),
                                     backcast_value=value)
        ff = filter_factor(asset, returns, pinned, cover_from=cover_from)
        start = (f"{params.backcast} backcast of the {len(before)} returns before "
                 f"{first_date.isoformat()}, filtered from {returns.index[0].isoformat()}")
    forecast = np.append(ff.sigma2.to_numpy(np.float64), ff.sigma2_next)
    return FilterPath(asset, params, ff.sigma2, ff.std_resid, forecast, start)


@dataclass
class VolatilitySchedule:
    """Per factor, the filter paths in force from each calendar row on (fit or refit rows),
    and what each fit was (for the summary)."""

    from_rows: list[int] = field(default_factory=list)
    paths: list[dict[str, FilterPath]] = field(default_factory=list)
    fits: list[dict[str, Any]] = field(default_factory=list)

    def at(self, row: int, date: pd.Timestamp, keep: int | None = None
           ) -> dict[str, FilteredFactor]:
        if not self.paths:
            return {}
        k = int(np.searchsorted(np.asarray(self.from_rows), row, side="right")) - 1
        return {f: p.at(date, keep) for f, p in self.paths[k].items()}

    def fallbacks(self) -> list[dict[str, Any]]:
        """Each factor's fallback with the dates it was in force: ``factor, reason, from,
        until`` (until: the next fit's date, None for the last)."""
        out = []
        for k, fit in enumerate(self.fits):
            until = self.fits[k + 1]["date"] if k + 1 < len(self.fits) else None
            for f, facts in fit["factors"].items():
                if facts["fallback"]:
                    out.append({"factor": f, "reason": facts["fallback"], "model":
                                facts["model"], "from": fit["date"], "until": until})
        return out


def fit_rows(rows: np.ndarray, recalibrate_every: int) -> list[int]:
    """The backtest rows the parameters are (re)fitted on: the first, then the first at least
    ``recalibrate_every`` rows after the previous fit (0: the first only)."""
    out = [int(rows[0])]
    if recalibrate_every:
        for r in rows[1:]:
            if r - out[-1] >= recalibrate_every:
                out.append(int(r))
    return out


def fit_schedule(
    returns: pd.DataFrame,
    dates: pd.DatetimeIndex,
    rows: np.ndarray,
    factors: list[str],
    config: RunConfig,
    window_at: Callable[[int], tuple[pd.DataFrame, pd.DataFrame]],
    *,
    params: ParameterSet | None,
    fitter: VolatilityFitter | None,
    recalibrate_every: int,
) -> VolatilitySchedule:
    """The parameters in force at each backtest date and their filter paths (module doc).

    ``window_at(row)`` gives the model window and the longest window (the floor's) at a row.
    """
    schedule = VolatilitySchedule()
    if config.method == "hs":
        return schedule
    first_date = dates[int(rows[0])]
    for k, r in enumerate(fit_rows(rows, recalibrate_every)):
        _, long = window_at(r)
        sample_len = max(config.garch_fit_window, len(long) + FILTER_BURN_IN)
        refit = k > 0
        if params is not None and not refit:
            chosen = parameters_for(params, factors)
            source = "parameter set"
        elif config.vol_model == "garch" or refit:
            if fitter is None:
                raise ModelError("GARCH volatility needs --params or a fitter")
            # the first fit: data before the first date; a refit: up to its date
            samples = {}
            for f in factors:
                series = returns[f].dropna()
                upto = (series.loc[: dates[r]] if refit
                        else series.loc[series.index < dates[r]])
                samples[f] = upto.iloc[-sample_len:]
            chosen = fitter(samples, config)
            source = "fitted"
        else:
            chosen = {f: FactorParams(model="ewma", decay=config.ewma_lambda) for f in factors}
            source = f"ewma lambda {config.ewma_lambda}"
        paths = {f: causal_filter(f, returns[f].dropna(), chosen[f], long.index[0], first_date)
                 for f in factors}
        schedule.from_rows.append(r)
        schedule.paths.append(paths)
        schedule.fits.append({
            "date": dates[r].isoformat(), "source": source,
            "factors": {f: {"model": p.params.model, "dist": p.params.dist,
                            "fallback": p.params.fallback,
                            "sample_start": p.params.sample_start,
                            "sample_end": p.params.sample_end,
                            "filter_start": p.start} for f, p in paths.items()},
        })
    return schedule

