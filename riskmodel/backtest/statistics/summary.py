"""The summary of a backtest table: every statistic per netting set and pooled, JSON-ready.

:func:`summarise` turns the long backtest table (one row per date and netting set,
:mod:`.table`) into a dict of plain Python values: per netting set the VaR coverage tests
(:mod:`.coverage`), the ES test Z2 (:mod:`.es_test`), margin breaches, the procyclicality of
its initial margin (:mod:`.procyclicality`) and the flat-rate comparison (:mod:`.flat_rate`);
then the same over all netting sets. Row order of the input does not change a bit of it.

Pooling
-------
* counts are sums; Kupiec and the traffic light use total exceptions over total observations
  (netting sets treated as independent);
* Christoffersen uses the transition counts summed over netting sets (no transition across two
  sets) and ``cc`` = pooled ``LR_pof`` + pooled ``LR_ind``, chi2(2);
* Z2 is computed over all rows (``T`` = total observations) of the netting sets where it is
  defined, its null simulated by summing independent per-set simulations;
* ``mean_margin`` and the flat-rate means are means over all rows (per netting set and date,
  like the per-set values); the flat-rate equivalent is one rate for all sets, matched to the
  total margin breaches;
* the realisable flat rate (:mod:`.realisable`, when the table has its columns) is each set's
  own schedule; its coverage equivalent is one scale factor for all sets, matched to the total
  margin breaches; ``median_cost_ratios`` are the medians over the netting sets of their own
  ``cost_ratios`` and ``coverage_passes`` counts the sets whose Kupiec and Christoffersen
  p-values are at least 1%;
* procyclicality (peak-to-trough, max increases) is of the total initial margin per date,
  summed over the netting sets present on that date.

Undefined statistics are None, never NaN: Christoffersen and cc with fewer than 2
observations; Z2 where some ``es <= 0``; ``es_z2_pvalue`` when ``n_sim == 0``; peak-to-trough
when the minimum margin is 0; max increases with no pair of dates. The tests assume
independent dates: see the independence caveat of :mod:`.coverage`.
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from riskmodel.backtest.statistics._validation import complement, valid_rate
from riskmodel.backtest.statistics.coverage import (
    independence_lr_from_counts,
    kupiec_pof,
    traffic_light,
    transition_counts,
)
from riskmodel.backtest.statistics.es_test import null_tail_sums, z2_pvalue, z2_statistic
from riskmodel.backtest.statistics.flat_rate import flat_rate_equivalent
from riskmodel.backtest.statistics.procyclicality import max_increase, peak_to_trough
from riskmodel.backtest.statistics.realisable import realisable_equivalent
from riskmodel.backtest.statistics.table import validate_backtest_table

__all__ = ["summarise"]


def _json_scalar(value: Any) -> Any:
    """A label as a JSON value: numpy scalars to Python, NaN/NA to None, dates to ISO text."""
    if value is None:
        return None
    if isinstance(value, (pd.Timestamp, np.datetime64)):
        ts = pd.Timestamp(value)
        return ts.date().isoformat() if ts == ts.normalize() else ts.isoformat()
    try:
        if pd.isna(value):
            return None
    except (TypeError, ValueError):
        pass
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, (str, int, float, bool)):
        return value
    return str(value)


def _split_key(key: Hashable) -> tuple[Any, Any]:
    """Split a ``(account_id, netting_set)`` group key."""
    assert isinstance(key, tuple) and len(key) == 2
    return key[0], key[1]


def _coverage_block(
    n_obs: int, exceptions: int, counts: tuple[int, int, int, int], confidence: float
) -> dict[str, Any]:
    p = complement(confidence)
    lr_pof, p_pof = kupiec_pof(n_obs, exceptions, p)
    if sum(counts) > 0:
        lr_ind, p_ind = independence_lr_from_counts(*counts)
        p_ind_out: float | None = p_ind
        p_cc: float | None = float(stats.chi2.sf(lr_pof + lr_ind, 2))
    else:
        p_ind_out = p_cc = None
    return {
        "n_obs": n_obs,
        "exceptions": exceptions,
        "exception_rate": exceptions / n_obs,
        "expected_rate": p,
        "kupiec_pvalue": p_pof,
        "christoffersen_pvalue": p_ind_out,
        "cc_pvalue": p_cc,
        "traffic_light": traffic_light(n_obs, exceptions, confidence),
    }


#: Significance level of the coverage passes counted in the pooled block.
PASS_LEVEL = 0.01


def _ratio(numerator: float, denominator: float | None) -> float | None:
    return numerator / denominator if denominator else None


def _realisable_block(loss: np.ndarray, margin: np.ndarray, rows: pd.DataFrame,
                      margin_breaches: int, benchmark: dict[str, Any]) -> dict[str, Any]:
    """The realisable flat rate and its coverage equivalent beside the model (module doc);
    ``benchmark``: the block so far (its flat-rate means), to which the cost ratios add."""
    mean_margin = float(np.mean(margin))
    ratios = {"flat_rate": _ratio(mean_margin, benchmark["flat_rate"]["mean_margin"]),
              "flat_rate_equivalent": _ratio(
                  mean_margin, benchmark["flat_rate_equivalent"]["mean_margin"])}
    out: dict[str, Any] = {}
    if "realisable_flat_rate_margin" in rows.columns:
        schedule = rows["realisable_flat_rate_margin"].to_numpy()
        breaches = int(np.count_nonzero(loss > schedule))
        scaled = realisable_equivalent(loss, schedule, margin_breaches)
        out["realisable_flat_rate"] = {
            "breaches": breaches, "breach_rate": breaches / loss.size,
            "mean_margin": float(np.mean(schedule)),
            "mean_rate": (float(np.mean(rows["realisable_flat_rate"].to_numpy()))
                          if "realisable_flat_rate" in rows.columns else None)}
        out["realisable_flat_rate_equivalent"] = {
            "scale": scaled["rate"], "breaches": scaled["breaches"],
            "mean_margin": scaled["mean_margin"]}
        ratios["realisable_flat_rate"] = _ratio(mean_margin, float(np.mean(schedule)))
        ratios["realisable_flat_rate_equivalent"] = _ratio(mean_margin, scaled["mean_margin"])
    out["cost_ratios"] = ratios
    return out


def _margin_block(
    loss: np.ndarray,
    margin: np.ndarray,
    flat: np.ndarray,
    notional: np.ndarray,
    series: np.ndarray,
    rows: pd.DataFrame,
) -> dict[str, Any]:
    n = loss.size
    margin_breaches = int(np.count_nonzero(loss > margin))
    flat_breaches = int(np.count_nonzero(loss > flat))
    block: dict[str, Any] = {
        "margin_breaches": margin_breaches,
        "margin_breach_rate": margin_breaches / n,
        "mean_margin": float(np.mean(margin)),
        "peak_to_trough": peak_to_trough(series),
        "max_increase_1d": max_increase(series, 1),
        "max_increase_5d": max_increase(series, 5),
        "flat_rate": {
            "breaches": flat_breaches,
            "breach_rate": flat_breaches / n,
            "mean_margin": float(np.mean(flat)),
        },
        "flat_rate_equivalent": dict(flat_rate_equivalent(loss, notional, margin_breaches)),
    }
    block.update(_realisable_block(loss, margin, rows, margin_breaches, block))
    return block


@dataclass
class _PooledZ2:
    """Running sums of the pooled Z2 over the netting sets where Z2 is defined."""

    tail_sum: float  # sum over sets of sum_t L_t 1{L_t > VaR_t} / ES_t
    n_obs: int  # observations of those sets
    simulated: np.ndarray  # the same sum on each simulated path, shape (n_sim,)


def _set_z2(
    loss: np.ndarray,
    var: np.ndarray,
    es: np.ndarray,
    alpha: float,
    n_sim: int,
    seed: np.random.SeedSequence,
    pool: _PooledZ2,
) -> tuple[float | None, float | None]:
    """Z2 of one netting set and its p-value (None where undefined); adds the set to ``pool``."""
    if not (es > 0).all():
        return None, None
    z2 = z2_statistic(loss, var, es, alpha)
    pool.tail_sum += (1.0 - z2) * loss.size * alpha
    pool.n_obs += loss.size
    if not n_sim:
        return z2, None
    sums = null_tail_sums(var, es, alpha, n_sim, np.random.default_rng(seed))
    pool.simulated += sums
    return z2, z2_pvalue(z2, 1.0 - sums / (loss.size * alpha))


def _set_entry(
    key: Hashable,
    rows: pd.DataFrame,
    confidence: float,
    alpha: float,
    n_sim: int,
    seed: np.random.SeedSequence,
    pool: _PooledZ2,
) -> tuple[dict[str, Any], tuple[int, int, int, int]]:
    """The summary of one netting set and its hit transition counts (for the pooled test)."""
    rows = rows.sort_values("date", kind="stable")
    loss = rows["realized_loss"].to_numpy()
    var = rows["var"].to_numpy()
    hits = loss > var
    counts = transition_counts(hits)
    account_id, netting_set = _split_key(key)
    entry: dict[str, Any] = {
        "account_id": _json_scalar(account_id),
        "netting_set": _json_scalar(netting_set),
        "start": _json_scalar(rows["date"].iloc[0]),
        "end": _json_scalar(rows["date"].iloc[-1]),
    }
    entry.update(_coverage_block(loss.size, int(hits.sum()), counts, confidence))
    es = rows["es"].to_numpy()
    entry["es_z2"], entry["es_z2_pvalue"] = _set_z2(loss, var, es, alpha, n_sim, seed, pool)
    margin = rows["initial_margin"].to_numpy()
    entry.update(
        _margin_block(
            loss,
            margin,
            rows["flat_rate_margin"].to_numpy(),
            rows["gross_notional"].to_numpy(),
            margin,
            rows,
        )
    )
    return entry, counts


def _pooled_entry(
    frame: pd.DataFrame,
    n_sets: int,
    counts: tuple[int, int, int, int],
    pool: _PooledZ2,
    confidence: float,
    alpha: float,
    n_sim: int,
) -> dict[str, Any]:
    """The summary over all netting sets (the module docstring says how each part pools)."""
    loss = frame["realized_loss"].to_numpy()
    pooled: dict[str, Any] = {"n_portfolios": n_sets}
    exceptions = int(np.count_nonzero(loss > frame["var"].to_numpy()))
    pooled.update(_coverage_block(len(frame), exceptions, counts, confidence))
    z2: float | None = None
    z2_p: float | None = None
    if pool.n_obs:
        z2 = 1.0 - pool.tail_sum / (pool.n_obs * alpha)
        if n_sim:
            z2_p = z2_pvalue(z2, 1.0 - pool.simulated / (pool.n_obs * alpha))
    pooled["es_z2"] = z2
    pooled["es_z2_pvalue"] = z2_p
    total_margin = frame.groupby("date", sort=True)["initial_margin"].sum().to_numpy()
    pooled.update(
        _margin_block(
            loss,
            frame["initial_margin"].to_numpy(),
            frame["flat_rate_margin"].to_numpy(),
            frame["gross_notional"].to_numpy(),
            total_margin,
            frame,
        )
    )
    return pooled


def _across_sets(portfolios: list[dict[str, Any]]) -> dict[str, Any]:
    """Medians of the sets' cost ratios and how many sets pass the coverage tests."""
    names = portfolios[0]["cost_ratios"].keys() if portfolios else []
    medians = {}
    for name in names:
        values = [p["cost_ratios"][name] for p in portfolios
                  if p["cost_ratios"].get(name) is not None]
        medians[name] = float(np.median(values)) if values else None

    def passes(key: str, p: dict[str, Any]) -> bool:
        return p[key] is not None and p[key] >= PASS_LEVEL

    return {"median_cost_ratios": medians, "coverage_passes": {
        "level": PASS_LEVEL,
        "kupiec": sum(passes("kupiec_pvalue", p) for p in portfolios),
        "christoffersen": sum(passes("christoffersen_pvalue", p) for p in portfolios),
        "both": sum(passes("kupiec_pvalue", p) and passes("christoffersen_pvalue", p)
                    for p in portfolios),
        "of": len(portfolios)}}


def summarise(
    backtest: pd.DataFrame,
    confidence: float,
    measure_alpha: float | None = None,
    *,
    n_sim: int = 2_000,
    seed: int | np.random.Generator | None = 0,
) -> dict[str, Any]:
    """JSON-ready summary of a backtest table, per netting set and pooled.

    Parameters
    ----------
    backtest : DataFrame, one row per date and netting set, with columns ``date, account_id,
        netting_set, var, es, initial_margin, flat_rate_margin, realized_loss, gross_notional``
        and optionally ``exception, margin_breach, flat_rate_breach``, which must equal
        ``realized_loss > var``, ``> initial_margin`` and ``> flat_rate_margin``, and the
        realisable flat rate's ``realisable_flat_rate, realisable_flat_rate_margin``
        (:mod:`riskmodel.backtest.benchmarks`; without them no realisable block). Rows whose
        ``realized_loss`` is unknown (NaN: the last horizon dates) must have been dropped.
    confidence : float, the VaR confidence level; ``expected_rate = 1 - confidence``.
    measure_alpha : float, optional
        Tail probability at which the ``var`` and ``es`` columns were computed, for Z2 (both
        at the same level); default ``1 - confidence``.
    n_sim : int, simulated paths of the Z2 p-value (0: no p-value, ``es_z2_pvalue`` None).
    seed : int, Generator or None; the default 0 makes the summary reproducible.

    Returns
    -------
    dict with keys ``settings`` (``confidence, measure_alpha, n_sim, seed``; seed None unless
    an int was given), ``portfolios`` (one dict per ``(account_id, netting_set)``, sorted by
    that key: ``account_id, netting_set, start, end, n_obs, exceptions, exception_rate,
    expected_rate, kupiec_pvalue, christoffersen_pvalue, cc_pvalue, traffic_light, es_z2,
    es_z2_pvalue, margin_breaches, margin_breach_rate, mean_margin, peak_to_trough,
    max_increase_1d, max_increase_5d, flat_rate: {breaches, breach_rate, mean_margin},
    flat_rate_equivalent: {rate, breaches, mean_margin}``, when the table has the realisable
    columns ``realisable_flat_rate: {breaches, breach_rate, mean_margin, mean_rate}`` and
    ``realisable_flat_rate_equivalent: {scale, breaches, mean_margin}``, and ``cost_ratios``:
    the mean margin over each benchmark's, ``{flat_rate, flat_rate_equivalent[,
    realisable_flat_rate, realisable_flat_rate_equivalent]}``) and ``pooled`` (the same
    statistics over all netting sets, pooled as the module docstring says, plus
    ``n_portfolios``, ``median_cost_ratios`` and ``coverage_passes: {level, kupiec,
    christoffersen, both, of}``). Undefined statistics are None, never NaN.

    Raises
    ------
    ValueError
        Missing columns, no rows, non-finite numbers (in particular NaN ``realized_loss``),
        negative ``gross_notional``, duplicate ``(account_id, netting_set, date)``, a flag
        column that disagrees with its definition, or ``es < var`` (beyond rounding).
    """
    conf = valid_rate("confidence", confidence)
    # 1 - 0.99 is 0.010000000000000009 in binary; report the decimal the user meant.
    a = valid_rate("measure_alpha", complement(conf) if measure_alpha is None else measure_alpha)
    if int(n_sim) != n_sim or n_sim < 0:
        raise ValueError(f"n_sim = {n_sim!r} must be a non-negative integer")
    n_sim = int(n_sim)
    frame = validate_backtest_table(backtest)
    # Row order of the input must not change a single bit of the result.
    frame = frame.sort_values(["account_id", "netting_set", "date"], kind="stable")
    frame = frame.reset_index(drop=True)
    seed_seq = np.random.SeedSequence(
        seed.integers(2**63) if isinstance(seed, np.random.Generator) else seed
    )
    groups = list(frame.groupby(["account_id", "netting_set"], sort=True, dropna=False))
    pool = _PooledZ2(tail_sum=0.0, n_obs=0, simulated=np.zeros(n_sim))
    counts = np.zeros(4, dtype=np.int64)
    portfolios: list[dict[str, Any]] = []
    for (key, rows), child in zip(groups, seed_seq.spawn(len(groups))):
        entry, set_counts = _set_entry(key, rows, conf, a, n_sim, child, pool)
        counts += set_counts
        portfolios.append(entry)
    pooled_counts = (int(counts[0]), int(counts[1]), int(counts[2]), int(counts[3]))
    pooled = _pooled_entry(frame, len(groups), pooled_counts, pool, conf, a, n_sim)
    pooled.update(_across_sets(portfolios))
    settings = {
        "confidence": conf,
        "measure_alpha": a,
        "n_sim": n_sim,
        "seed": seed if isinstance(seed, int) else None,
    }
    return {"settings": settings, "portfolios": portfolios, "pooled": pooled}
