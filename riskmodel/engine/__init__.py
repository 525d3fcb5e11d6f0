"""The engine room: the priced market and the one function that margins a book against it.

* :class:`PricedMarket` (:mod:`riskmodel.engine.market`): per margin period of risk, the
  instruments' scenario P&L and weights, stress blocks, the floor's scenarios, prices, one-day
  volatilities, the valuation time;
* :func:`price_market` (:mod:`riskmodel.engine.build`): builds it for a valuation;
* :func:`margin_book` (:mod:`riskmodel.engine.margin`): margins a netted book against it under a
  policy, with the collateral and the previous run as inputs; every path that produces a margin
  calls it;
* :mod:`riskmodel.engine.store`: the priced market of a finished run on disk.
"""

from riskmodel.engine.build import price_market
from riskmodel.engine.margin import BookMargins, margin_book
from riskmodel.engine.market import ModelPnl, PricedMarket, StressBlock, StressPnl

__all__ = ["BookMargins", "ModelPnl", "PricedMarket", "StressBlock", "StressPnl",
           "margin_book", "price_market"]
