"""Inputs of the compiled trial margin (:mod:`riskmodel.engine.trial_kernels`): the margin of
netting sets of a book with some positions resized, bitwise what
:func:`riskmodel.engine.margin_book` gives for the reduced book with ``detail="initial_margin"``.

:func:`trial_inputs` gathers, once, what every trial margin of a book's sets reads: the
market's per-horizon scenario P&L (model, floor, stress blocks, grid scan), the policy's
scalars and each position's lookups, taken through the margin tables' own functions
(:class:`riskmodel.margin.tables.InstrumentArrays`, :func:`riskmodel.margin.policy.
position_rates`, :func:`riskmodel.margin.tables.position_horizons`). It serves the books and
configurations whose chain the compiled twin composes (:func:`unsupported` names what it does
not: the venue-rule method, tiered floors, weighted scenarios; and sets whose positions carry a
concentration charge, :meth:`TrialInputs.concentrated`); everything else goes through
``margin_book`` itself. :func:`trial_margins` evaluates many trials at once (what the tests
compare with ``margin_book``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from riskmodel.config import RunConfig
from riskmodel.engine.market import PricedMarket
from riskmodel.engine.stress import _grid_units
from riskmodel.engine.trial_kernels import (
    MODE_BLEND,
    MODE_MAX,
    MODE_REPORT,
    form_rest,
    tail_scratch,
    trial_initial_margin,
)
from riskmodel.kernel_cache import njit
from riskmodel.margin.policy import position_rates
from riskmodel.margin.tables import account_horizons, position_horizons
from riskmodel.portfolio.netting import Book
from riskmodel.pricing.revaluation import COLLATERAL_KIND

__all__ = ["TrialInputs", "trial_inputs", "trial_margins", "unsupported"]

_MODES = {"report": MODE_REPORT, "max": MODE_MAX, "blend": MODE_BLEND}


def unsupported(market: PricedMarket, config: RunConfig) -> str | None:
    """Why the compiled trial margin does not serve books margined under ``config`` against
    ``market`` (None: it does)."""
    if config.method == "grid":
        return "the venue rule (--method grid)"
    if config.tiers.maintenance or config.tiers.initial:
        return "tiered maintenance or initial floors ([tiers])"
    if any(m.weights is not None for m in market.model.values()):
        return "weighted scenarios"
    if _use_floor(market, config) and any(m.weights is not None for m in market.floor.values()):
        return "weighted floor scenarios"
    return None


def _use_floor(market: PricedMarket, config: RunConfig) -> bool:
    return "floor" in config.anti_procyclicality.tools and bool(market.floor)


def _c(array: Any, dtype: Any = np.float64) -> np.ndarray:
    """C-contiguous and writable (the kernels' tuples need one array type)."""
    return np.require(array, dtype=dtype, requirements=["C", "W"])


@dataclass(frozen=True, eq=False)
class TrialInputs:
    """What the trial kernels read (:mod:`riskmodel.engine.trial_kernels`, module docstring),
    for the sets of one book: ``pos`` per position in the book's order, and per set its
    account's horizon and the previous run's model margin (NaN: none)."""

    mk: tuple
    pol: tuple
    pos: tuple
    indptr: np.ndarray
    account_h: np.ndarray
    previous: np.ndarray
    threshold: np.ndarray  # each position's concentration threshold
    scratch_n: int  # the longest scenario vector the kernels form
    max_positions: int

    def concentrated(self) -> np.ndarray:
        """Per set: does a position's notional exceed its concentration threshold (a charge
        the compiled path does not compute)? Trials only shrink positions, so the book's
        notionals decide."""
        unit_delta, price, collateral = self.pos[2], self.pos[3], self.pos[4]
        # as the margin tables compute it: |quantity x delta x price|, 0 for collateral
        notional = np.where(collateral, 0.0, np.abs(self.quantity * unit_delta * price))
        over = (notional > self.threshold).astype(np.int64)
        counts = np.add.reduceat(over, self.indptr[:-1]) if len(over) else over
        counts = np.where(np.diff(self.indptr) > 0, counts, 0)
        return counts > 0

    @property
    def quantity(self) -> np.ndarray:
        return self.pos[8]


def trial_inputs(market: PricedMarket, book: Book, config: RunConfig, *,
                 previous: np.ndarray | None = None,
                 account_types: Mapping[str, str] | None = None) -> TrialInputs:
    """The trial kernels' inputs for the sets of ``book`` (on ``market.axis``), margined as
    :func:`riskmodel.engine.margin_book` margins them with these ``previous`` model margins
    and ``account_types``. Call :func:`unsupported` first."""
    horizons = sorted(market.model)
    pnl = tuple(_c(market.model[h].pnl) for h in horizons)
    bounds = tuple(market.row_bound(h) for h in horizons)
    use_floor = _use_floor(market, config)
    dummy = np.zeros((1, 1))
    floor = tuple(_c(market.floor[h].pnl) if use_floor else dummy for h in horizons)
    stress, stress_h = [], []
    grid_on = market.stress is not None and config.stress.grid.enabled
    if market.stress is not None:
        for x, h in enumerate(horizons):
            for block, _ in market.stress_blocks(h):
                if block.shape[1]:
                    stress.append(_c(block))
                    stress_h.append(x)
    if not stress:
        stress, stress_h = [dummy], [-1]
    units = [_grid_units(market, config, h) if grid_on else (dummy, np.zeros(1),
                                                              np.zeros(1, np.int64))
             for h in horizons]
    mk = (np.asarray(horizons, dtype=np.int64), pnl, bounds, floor, tuple(stress),
          np.asarray(stress_h, dtype=np.int64), tuple(_c(u[0]) for u in units),
          tuple(_c(u[1]) for u in units), _c(units[0][2], np.int64))
    apc = config.anti_procyclicality
    pol = (float(config.confidence), config.measure == "es", use_floor, bool(grid_on),
           _MODES[config.stress.mode], float(config.stress.weight), "buffer" in apc.tools,
           float(apc.buffer), float(apc.release_trigger), float(config.margin.min_initial_margin))
    pos, threshold = _positions(market, book, config)
    widths = [p.shape[1] for p in (*pnl, *stress)] + ([f.shape[1] for f in floor]
                                                       if use_floor else [])
    sizes = np.diff(book.indptr)
    return TrialInputs(
        mk, pol, pos, _c(book.indptr, np.int64),
        _c(account_horizons(book, config, account_types), np.int64),
        _c(np.full(book.n_sets, np.nan) if previous is None else previous),
        threshold, int(max(widths)), int(sizes.max()) if len(sizes) else 0)



def _positions(market: PricedMarket, book: Book, config: RunConfig
               ) -> tuple[tuple, np.ndarray]:
    """Per position: ``(row, horizon, unit_delta, price, is_collateral, spread,
    maintenance_rate, initial_floor_rate, quantity)`` and the concentration threshold, looked
    up as the margin tables look them up."""
    arrays = market.instrument_arrays
    index = book.instrument_index
    kinds, underlyings = arrays.per_position(index)
    collateral = np.asarray(kinds == COLLATERAL_KIND)
    addons = config.addons
    threshold = position_rates(addons.concentration_threshold, kinds, underlyings)
    # riskmodel.margin.addons.position_addons: the ADV-based threshold where one is given
    if addons.threshold_adv_multiple is not None and config.addon_adv:
        adv = config.addon_adv
        labels = np.asarray(underlyings, dtype=object)
        has = np.array([u in adv for u in labels], dtype=bool)
        threshold[has] = [addons.threshold_adv_multiple * adv[u] for u in labels[has]]
    pos = (
        _c(index, np.int64),
        _c(position_horizons(book, market.instruments, config, arrays), np.int64),
        _c(arrays.unit[index, 1]),
        _c(arrays.price[index]),
        _c(collateral, np.bool_),
        _c(position_rates(addons.spreads, kinds, underlyings)),
        _c(position_rates(config.margin.maintenance_rates, kinds, underlyings)),
        _c(position_rates(config.margin.initial_floor_rates, kinds, underlyings)),
        _c(book.quantity),
    )
    return pos, threshold


def trial_margins(inputs: TrialInputs, quantity: np.ndarray, changed: np.ndarray | None = None
                  ) -> np.ndarray:
    """The initial margin of every set of the inputs' book at the trial ``quantity`` (one per
    position of the book, in its order; 0 closes it), shape (n_sets,). With ``changed`` (per
    set, a position of it or -1), each set's loss without that position is formed first at the
    book's quantities and reused (the partial liquidation's way); the results are the same
    bits. -1 marks a set that needs a horizon the market does not hold."""
    quantity = _c(quantity)
    changed = (np.full(len(inputs.indptr) - 1, -1, np.int64) if changed is None
               else _c(changed, np.int64))
    out = np.empty(len(inputs.indptr) - 1)
    _evaluate(inputs.mk, inputs.pol, inputs.pos, inputs.indptr, inputs.account_h,
              inputs.previous, quantity, changed, inputs.scratch_n,
              max(inputs.max_positions, 1), out)
    return out


@njit(cache=True)
def _evaluate(mk, pol, pos, indptr, account_h, previous, quantity, changed, scratch_n,
              max_positions, out):
    scratch = tail_scratch(scratch_n, max_positions)
    rest = np.empty(scratch_n)
    rest_max = np.empty(scratch_n // 4 + 2)
    no_subset = np.empty(0, dtype=np.int64)
    base = pos[8]
    for s in range(indptr.size - 1):
        p0, p1 = indptr[s], indptr[s + 1]
        rest_hx = -1
        if changed[s] >= 0:
            rest_hx = form_rest(mk, pol, pos, p0, p1, account_h[s], base[p0:p1], changed[s],
                                scratch, rest, rest_max)
        out[s] = trial_initial_margin(mk, pol, pos, p0, p1, account_h[s], previous[s],
                                      quantity[p0:p1], rest, rest_max, rest_hx, changed[s],
                                      scratch, no_subset, np.int64(-1))
