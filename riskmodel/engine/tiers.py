"""Collateral rates by amount held (``[tiers.collateral]``) applied to a book's equity.

:func:`riskmodel.engine.margin_book` lowers each netting set's equity by
:func:`riskmodel.margin.tiers.collateral_charge` of its coin holdings (the ``collateral:<asset>``
positions) before any figure is computed, for every method alike; nothing changes without
collateral tiers.
"""

from __future__ import annotations

import numpy as np

from riskmodel.config import RunConfig
from riskmodel.engine.market import PricedMarket
from riskmodel.margin.tiers import collateral_charge
from riskmodel.portfolio.netting import Book
from riskmodel.pricing.revaluation import COLLATERAL_KIND

__all__ = ["tiered_equity"]


def tiered_equity(market: PricedMarket, book: Book, config: RunConfig,
                  equity: np.ndarray) -> np.ndarray:
    """``equity`` (per set) less the collateral tiers' charge of each set's holdings."""
    inst = market.instruments
    i = book.instrument_index
    kinds = inst["kind"].to_numpy(dtype=object)[i]
    charge = collateral_charge(
        book.quantity, inst["multiplier"].to_numpy(np.float64)[i],
        market.instrument_arrays.price[i], inst["underlying"].to_numpy(dtype=object)[i],
        kinds == COLLATERAL_KIND, book.indptr, config.tiers.collateral)
    return equity - charge
