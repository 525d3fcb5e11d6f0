"""Margin policy: from the model measure to initial and maintenance margin, status and call.

Per netting set (all amounts in the reporting currency, losses positive):

* ``model_margin = max(ES, 0)`` (or VaR with ``--measure var``): a book whose worst scenarios
  still make money needs no model margin, but never a negative one.
* ``addons``: 0 in this version (liquidity and concentration add-ons come with the policy issue).
* ``stress_loss``: the worst stress loss; with ``[stress] mode`` ``max`` the margin base is
  ``max(model_margin, weight x stress_loss)``, with ``blend`` it is ``(1 - weight) x model_margin
  + weight x stress_loss``, with ``report`` (default) it is the model margin alone.
* ``maintenance_floor = sum |notional| x maintenance_rate``.
* ``initial_margin = max(base + addons, initial_floor)``, ``initial_floor =
  max(min_initial_margin, sum |notional| x initial_floor_rate, maintenance_floor)``: the initial
  floor includes the maintenance floor so that initial margin is never below maintenance margin
  (otherwise an account could hold its initial margin and still be liquidated).
* ``maintenance_margin = max(mm_ratio x initial_margin, maintenance_floor)`` (<= initial margin).
* ``flat_rate_margin = sum |notional| x flat_rate`` (the benchmark a risk committee compares).
* ``equity``: the netting set's collateral; ``margin_level = equity / maintenance_margin``.
* ``status``: ``liquidation`` if equity < maintenance margin, else ``margin_call`` if equity <
  initial margin, else ``warning`` if equity < warning_multiple x initial margin, else ``ok``.
* ``call_amount = max(0, initial_margin - equity)``.

Rates are looked up per position by underlying, then instrument kind, then the default.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from riskmodel.config import MarginPolicy, RateTable, TierConfig, TierTable
from riskmodel.margin.tiers import tiered_positions

STATUSES = ("ok", "warning", "margin_call", "liquidation")


def position_rates(
    table: RateTable, kinds: Sequence[str], underlyings: Sequence[str]
) -> np.ndarray:
    """The rate of each position, shape (n_positions,): looked up once per (kind, underlying)
    combination of the labels, so a million positions cost two factorisations (none when they
    come as ``pandas.Categorical``, as the margin tables pass them) and a gather."""
    if isinstance(kinds, pd.Categorical) and isinstance(underlyings, pd.Categorical):
        rates = _rates_of_categories(table, kinds.dtype, underlyings.dtype)
        return rates[kinds.codes.astype(np.int64), underlyings.codes.astype(np.int64)]
    kind_code, kind_values = _coded(kinds)
    und_code, und_values = _coded(underlyings)
    return _rate_matrix(table, kind_values, und_values)[kind_code, und_code]


def _rate_matrix(table: RateTable, kind_values: np.ndarray, und_values: np.ndarray
                 ) -> np.ndarray:
    # every (kind, underlying) combination of the labels, looked up once: a handful of kinds
    # times the underlyings is far fewer than the positions, and a gather beats a unique sort
    return np.array([[table.rate(str(k), str(u)) for u in und_values] for k in kind_values],
                    dtype=np.float64).reshape(len(kind_values), len(und_values))


#: rate matrices by (table, kinds' dtype, underlyings' dtype) identity, the objects kept
#: alive beside them so an id is never reused while cached: the margin tables' categoricals
#: share one dtype per market, and the live loop margins thousands of small books against it
_BY_CATEGORIES: dict[tuple[int, int, int], tuple[Any, ...]] = {}
_BY_CATEGORIES_MAX = 256


def _rates_of_categories(table: RateTable, kinds: pd.CategoricalDtype,
                         underlyings: pd.CategoricalDtype) -> np.ndarray:
    key = (id(table), id(kinds), id(underlyings))
    hit = _BY_CATEGORIES.get(key)
    if hit is not None and hit[0] is table and hit[1] is kinds and hit[2] is underlyings:
        return hit[3]  # type: ignore[no-any-return]
    rates = _rate_matrix(table, np.asarray(kinds.categories, dtype=object),
                         np.asarray(underlyings.categories, dtype=object))
    rates.setflags(write=False)
    if len(_BY_CATEGORIES) >= _BY_CATEGORIES_MAX:
        _BY_CATEGORIES.clear()
    _BY_CATEGORIES[key] = (table, kinds, underlyings, rates)
    return rates


def _coded(labels: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    # categories as a plain object array: indexing a pandas (Arrow-backed) Index label by
    # label costs microseconds each, which a liquidation's hundred small books pay many times
    if isinstance(labels, pd.Categorical):
        return labels.codes.astype(np.int64), np.asarray(labels.categories, dtype=object)
    codes, values = pd.factorize(np.asarray(labels, dtype=object), use_na_sentinel=False)
    return codes, np.asarray(values, dtype=object)


def per_set_sum(values: np.ndarray, indptr: np.ndarray) -> np.ndarray:
    """Sum position values into their netting sets (CSR ``indptr``)."""
    totals = np.zeros(len(indptr) - 1)
    set_of = np.repeat(np.arange(len(indptr) - 1), np.diff(indptr))
    np.add.at(totals, set_of, values)
    return totals


def margin_base(model_margin: np.ndarray, stress_loss: np.ndarray, mode: str, weight: float
                ) -> np.ndarray:
    """The amount add-ons are added to: the model margin, combined with stress per ``mode``."""
    if mode == "max":
        return np.maximum(model_margin, weight * stress_loss)
    if mode == "blend":
        return (1.0 - weight) * model_margin + weight * stress_loss
    return model_margin


def margin_level(equity: np.ndarray, maintenance: np.ndarray) -> np.ndarray:
    """``equity / maintenance_margin``; where a set has no requirement at all (no position:
    maintenance margin 0) the level is ``+inf`` (``-inf`` for a negative equity, a debt)."""
    level = np.where(equity >= 0, np.inf, -np.inf)
    np.divide(equity, maintenance, out=level, where=maintenance > 0)
    return level


def apply_policy(*args: Any, **kwargs: Any) -> pd.DataFrame:
    """:func:`policy_columns` as a table (one row per netting set; same arguments)."""
    return pd.DataFrame(policy_columns(*args, **kwargs))


def policy_columns(
    model_margin: np.ndarray,
    addons: np.ndarray,
    notional: np.ndarray,
    kinds: Sequence[str],
    underlyings: Sequence[str],
    indptr: np.ndarray,
    equity: np.ndarray,
    policy: MarginPolicy,
    base: np.ndarray | None = None,
    maintenance_base: np.ndarray | None = None,
    tiers: TierConfig | None = None,
) -> dict[str, np.ndarray]:
    """Margin columns per netting set, in table order (``model_margin`` to ``call_amount``).

    Parameters
    ----------
    model_margin, addons, equity : ndarray of shape (n_sets,)
    notional : ndarray of shape (n_positions,), |notional| of each position.
    kinds, underlyings : sequences of length n_positions.
    indptr : int64 ndarray of shape (n_sets + 1,), CSR offsets of the positions.
    base : ndarray of shape (n_sets,), the margin base (default: ``model_margin``); see
        :func:`margin_base`.
    maintenance_base : ndarray of shape (n_sets,), optional
        A rule's own maintenance requirement (``--method grid``): maintenance margin is
        ``max(maintenance_base, maintenance_floor)`` instead of ``mm_ratio x initial_margin``.
    tiers : TierConfig, optional
        ``[tiers]``: positions of an underlying with a maintenance (initial) bracket table are
        charged by it in the maintenance (initial) floor (:mod:`riskmodel.margin.tiers`).
    """

    def charge(table: RateTable, tiered: Mapping[str, TierTable] | None = None) -> np.ndarray:
        amount = notional * position_rates(table, kinds, underlyings)
        if tiered:  # bracket tables replace the flat rate of their underlyings' positions
            amount = tiered_positions(amount, notional, underlyings, tiered)
        return per_set_sum(amount, indptr)

    maintenance_floor = charge(policy.maintenance_rates, tiers.maintenance if tiers else None)
    initial_floor = np.maximum(
        np.maximum(policy.min_initial_margin,
                   charge(policy.initial_floor_rates, tiers.initial if tiers else None)),
        maintenance_floor,
    )
    initial = np.maximum((model_margin if base is None else base) + addons, initial_floor)
    maintenance = np.maximum(policy.mm_ratio * initial if maintenance_base is None
                             else maintenance_base, maintenance_floor)
    flat = charge(policy.flat_rates)
    status = np.select(
        [
            equity < maintenance,
            equity < initial,
            equity < policy.warning_multiple * initial,
        ],
        ["liquidation", "margin_call", "warning"],
        default="ok",
    )
    return {
        "model_margin": model_margin,
        "addons": addons,
        "initial_margin": initial,
        "maintenance_floor": maintenance_floor,
        "maintenance_margin": maintenance,
        "flat_rate_margin": flat,
        "equity": equity,
        "margin_level": margin_level(equity, maintenance),
        "status": status.astype(object),
        "call_amount": np.maximum(0.0, initial - equity),
    }
