"""The venue rule's contingencies and loss factors (``--method grid``): from a netting set's
scan loss to its initial and maintenance requirements.

Per netting set (amounts in the reporting currency; ``q`` a position's quantity x multiplier,
``S_u`` the spot of its underlying, ``c(x, N) = (1 - x) x confidence_margin x N`` when the
oracle confidence ``x < confidence_threshold``, else 0):

* perpetuals and futures (``perp``): notional ``|q| S_u`` (inverse contracts: their face value
  ``|q|``); maintenance ``notional x mm_perp_rate``, initial ``notional x im_perp_rate``;
* naked short options (``option``): per expiry group and strike, calls ``C`` and puts ``P``
  (summed ``q``), ``naked = max(shorts - longs, 0)`` with ``shorts = -min(C, 0) - min(P, 0)``,
  ``longs = max(C, 0) + max(P, 0)`` (a long put covers a short call of the same strike and
  expiry, as the venue's rule counts it); maintenance ``naked x S_u x mm_option_rate``, initial
  ``naked x S_u x im_option_rate``, shared among the short legs by size;
* collateral (``collateral``): value ``q x P``; maintenance ``value x mm_haircut``, initial
  ``value x im_haircut`` (``[grid.collateral]``);
* oracle confidence (``oracle``, initial only): ``c(x, notional)`` of each perpetual with ``x``
  the lowest confidence of its underlying's spot and the set's perpetuals on it; ``c(x, sum |q|
  x S_u)`` of each expiry group with ``x`` also the lowest of its options'; ``c(x, value)`` of
  each coin with ``x`` the lower of its own and its ``[grid.collateral]`` underlying's spot.

With the scan loss ``W`` (:mod:`riskmodel.margin.grid_kernels`) and ``MMC``, ``IMC`` the sums
of the maintenance and initial contingencies: ``maintenance = mm_loss_factor x W + MMC`` and
``initial = f x W + IMC + MMC`` with ``f = im_loss_factor + peg_factor x (peg_threshold -
peg price)`` while the stablecoin ``peg_asset`` trades below ``peg_threshold``, else
``im_loss_factor``. The initial requirement carries the maintenance contingencies too, so it is
at least the maintenance one whenever ``f >= mm_loss_factor``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from riskmodel.config import GridConfig

__all__ = ["CONTINGENCIES", "OTHER", "LINEAR", "INVERSE", "OPTION", "COLLATERAL",
           "RuleInstruments", "contingencies", "im_loss_factor"]

#: Instrument classes of the rule.
OTHER, LINEAR, INVERSE, OPTION, COLLATERAL = 0, 1, 2, 3, 4
#: The contingencies, in the order of the margin table's columns.
CONTINGENCIES = ("perp_mm", "perp_im", "option_mm", "option_im", "collateral_mm",
                 "collateral_im", "oracle")


@dataclass(frozen=True)
class RuleInstruments:
    """Per instrument of the market's axis, what the contingencies read: ``kind`` (a class
    above), grid underlying code ``und``, expiry group code ``group`` (-1: not an option),
    ``strike``, ``is_call``, ``multiplier``, its own ``price``, the ``spot`` of its underlying,
    its own oracle ``confidence``, its underlying's ``spot_confidence``, and for coins
    ``im_haircut``, ``mm_haircut`` and ``coin_confidence``."""

    kind: np.ndarray
    und: np.ndarray
    group: np.ndarray
    strike: np.ndarray
    is_call: np.ndarray
    multiplier: np.ndarray
    price: np.ndarray
    spot: np.ndarray
    confidence: np.ndarray
    spot_confidence: np.ndarray
    im_haircut: np.ndarray
    mm_haircut: np.ndarray
    coin_confidence: np.ndarray


def im_loss_factor(grid: GridConfig, peg_price: float | None) -> float:
    """The initial loss factor, raised while the stablecoin trades below its threshold."""
    if peg_price is None or not peg_price < grid.peg_threshold:
        return grid.im_loss_factor
    return grid.im_loss_factor + (grid.peg_threshold - peg_price) * grid.peg_factor


def _charge(grid: GridConfig, confidence: np.ndarray, notional: np.ndarray) -> np.ndarray:
    """``c(x, N)`` of the module docstring."""
    return np.where(confidence < grid.confidence_threshold,
                    (1.0 - confidence) * grid.confidence_margin * notional, 0.0)


def _group_min(key: np.ndarray, values: np.ndarray, where: np.ndarray) -> np.ndarray:
    """Per element, the minimum of ``values`` over the elements of its ``key`` where
    ``where`` (+inf for a key with none)."""
    code, uniques = pd.factorize(key)
    out = np.full(len(uniques), np.inf)
    np.minimum.at(out, code[where], values[where])
    return out[code]


def _group_sum(key: np.ndarray, values: np.ndarray) -> np.ndarray:
    code, uniques = pd.factorize(key)
    return np.bincount(code, weights=values, minlength=len(uniques))[code]


def contingencies(grid: GridConfig, inst: RuleInstruments, set_of: np.ndarray,
                  instrument_index: np.ndarray, quantity: np.ndarray) -> dict[str, np.ndarray]:
    """Each position's share of every contingency (module docstring), keyed by
    :data:`CONTINGENCIES`, each of shape (n_positions,).

    ``set_of`` is each position's netting set; ``instrument_index`` its row in ``inst``.
    """
    i = instrument_index
    kind, q = inst.kind[i], quantity * inst.multiplier[i]
    spot, conf = inst.spot[i], inst.confidence[i]
    n_und = int(inst.und.max()) + 1 if len(inst.und) else 1
    set_und = set_of.astype(np.int64) * n_und + inst.und[i]
    out = {name: np.zeros(len(quantity)) for name in CONTINGENCIES}
    derivative = (kind == LINEAR) | (kind == INVERSE)
    notional = np.where(kind == INVERSE, np.abs(q), np.abs(q) * spot) * derivative
    out["perp_mm"] = notional * grid.mm_perp_rate
    out["perp_im"] = notional * grid.im_perp_rate
    # the underlying's spot and the set's perpetuals on it: what every expiry's oracle sees too
    held = derivative & (q != 0)
    portfolio_conf = np.minimum(inst.spot_confidence[i],
                                _group_min(set_und, conf, held))
    oracle = _charge(grid, portfolio_conf, notional)
    option = kind == OPTION
    if option.any():
        out["option_mm"], out["option_im"] = _naked_shorts(grid, inst, set_of, i, q, option)
        group_key = set_of.astype(np.int64) * (int(inst.group.max()) + 1) + inst.group[i]
        group_conf = np.minimum(portfolio_conf, _group_min(group_key, conf, option & (q != 0)))
        oracle = oracle + _charge(grid, group_conf, np.abs(q) * spot) * option
    coin = kind == COLLATERAL
    value = q * inst.price[i] * coin
    out["collateral_mm"] = value * inst.mm_haircut[i]
    out["collateral_im"] = value * inst.im_haircut[i]
    out["oracle"] = oracle + _charge(grid, inst.coin_confidence[i], value) * coin
    return out


def _naked_shorts(grid: GridConfig, inst: RuleInstruments, set_of: np.ndarray,
                  i: np.ndarray, q: np.ndarray, option: np.ndarray
                  ) -> tuple[np.ndarray, np.ndarray]:
    """Maintenance and initial charges of the naked shorts, per position (module docstring)."""
    rows = np.flatnonzero(option)
    # (expiry group, strike) coded once per instrument, then one integer key per position
    strike = pd.factorize(pd.MultiIndex.from_arrays([inst.group, inst.strike]))[0]
    key = set_of[rows].astype(np.int64) * (int(strike.max()) + 1) + strike[i[rows]]
    code = pd.factorize(key)[0]
    call = inst.is_call[i[rows]]
    calls = np.bincount(code, weights=np.where(call, q[rows], 0.0))
    puts = np.bincount(code, weights=np.where(call, 0.0, q[rows]))
    shorts = -np.minimum(calls, 0.0) - np.minimum(puts, 0.0)
    longs = np.maximum(calls, 0.0) + np.maximum(puts, 0.0)
    naked = np.maximum(shorts - longs, 0.0)
    # the short positions of a strike carry its naked amount in proportion to their size
    leg = -np.minimum(q[rows], 0.0)
    total = np.bincount(code, weights=leg)
    with np.errstate(divide="ignore", invalid="ignore"):
        share = np.where(total[code] > 0, naked[code] * leg / total[code], 0.0)
    notional = share * inst.spot[i[rows]]
    mm, im = np.zeros(len(q)), np.zeros(len(q))
    mm[rows] = notional * grid.mm_option_rate
    im[rows] = notional * grid.im_option_rate
    return mm, im
