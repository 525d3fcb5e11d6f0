"""``[waterfall]``: what happens when margin is not enough (``riskmodel waterfall``,
:mod:`riskmodel.waterfall`): insurance fund, auto-deleveraging, socialised loss, cover-N.

Every key is a field of :class:`WaterfallConfig` (``RUN.toml`` keys map one to one); a value
out of range raises :class:`~riskmodel.errors.UsageError` (exit 2) naming ``waterfall.<key>``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

from riskmodel.errors import UsageError
from riskmodel.validation import check_choice, check_int, check_number

ADL_RANKINGS = ("profit_x_leverage", "profit", "leverage")
SOCIALISATION = ("pro_rata_profit", "none")
CLOSEOUTS = ("partial", "full")
SOURCES = ("stress", "grid", "map")


@dataclass(frozen=True)
class WaterfallConfig:
    """Settings of the default waterfall.

    Attributes
    ----------
    insurance_fund : float
        The fund's size in the reporting currency before any scenario (0).
    penalty_to_fund : float
        Share of the liquidation penalties collected that feeds the fund, in [0, 1] (1).
    adl_ranking : str
        How opposite positions with profit are ranked for auto-deleveraging:
        ``profit_x_leverage`` (default: the position's profit per unit of its notional times
        its set's leverage, the venues' ranking), ``profit`` or ``leverage``.
    socialisation : str
        ``pro_rata_profit`` (what ADL leaves is shared by every profitable netting set in
        proportion to its profit, never beyond it) or ``none`` (it stays uncovered).
    closeout : str
        ``partial`` (default: a liquidated set is reduced as the eod liquidation stage reduces
        it, :func:`riskmodel.liquidation.partial.partial_liquidation`; a set with no equity left
        is closed in full) or ``full`` (every liquidated set is closed in full).
    slippage_coefficient : float
        Close-out slippage ``k x sigma_1d x sqrt(N / ADV)`` of the price for a set closing a
        notional ``N`` on one side of an underlying (1.0); ADV from ``adv`` (else
        ``[liquidation.impact_adv]``, else ``[addons.adv]``).
    adv : mapping
        Average daily volume (reporting currency) per underlying.
    depth_file : str or None
        An order-book depth file (``underlying, side, price_offset, size``) used instead of the
        square-root rule for the underlyings it lists.
    cover : int
        N of cover-N: the default fund covers the N members with the largest stress losses
        beyond margin (2, EMIR Article 43).
    screen_band : float
        The engine re-margins, at a scenario's prices, every set whose equity there is below
        ``(1 + screen_band x |move|)`` times its maintenance margin scaled pro rata to the move
        (the liquidation map's rule; ``|move|`` the largest move of the set's underlyings);
        other sets are taken as not in liquidation. ``inf`` re-margins every set the scenario
        moves (2.0).
    sources : tuple of str
        The scenarios run when no ``--scenarios`` file is given: ``stress`` (the run's historical
        windows and user shock files), ``grid`` (the stress grid's implied-vol shifts, and its
        price moves that the map's moves do not hold), ``map`` (the liquidation map's moves of
        each underlying and of all together).
    workers : int
        Processes the scenarios are spread over, each running the engine on one thread
        (1: in the calling process). Results do not depend on it.
    """

    insurance_fund: float = 0.0
    penalty_to_fund: float = 1.0
    adl_ranking: str = "profit_x_leverage"
    socialisation: str = "pro_rata_profit"
    closeout: str = "partial"
    slippage_coefficient: float = 1.0
    adv: Mapping[str, float] = field(default_factory=dict)
    depth_file: str | None = None
    cover: int = 2
    screen_band: float = 2.0
    sources: tuple[str, ...] = SOURCES
    workers: int = 1

    def __post_init__(self) -> None:
        for name in ("insurance_fund", "penalty_to_fund", "slippage_coefficient"):
            check_number(f"waterfall.{name}", getattr(self, name))
        if self.insurance_fund < 0:
            raise UsageError(f"config: waterfall.insurance_fund = {self.insurance_fund!r} must "
                             "be >= 0 (a negative fund is a debt, not a fund)")
        if not 0.0 <= self.penalty_to_fund <= 1.0:
            raise UsageError("config: waterfall.penalty_to_fund = "
                             f"{self.penalty_to_fund!r} must be in [0, 1]")
        if self.slippage_coefficient < 0:
            raise UsageError("config: waterfall.slippage_coefficient = "
                             f"{self.slippage_coefficient!r} must be >= 0")
        check_choice("waterfall.adl_ranking", self.adl_ranking, ADL_RANKINGS)
        check_choice("waterfall.socialisation", self.socialisation, SOCIALISATION)
        check_choice("waterfall.closeout", self.closeout, CLOSEOUTS)
        for key, value in self.adv.items():
            check_number(f"waterfall.adv.{key}", value)
            if value <= 0:
                raise UsageError(f"config: waterfall.adv.{key} = {value!r} must be > 0")
        if self.depth_file is not None and not isinstance(self.depth_file, str):
            raise UsageError(f"config: waterfall.depth_file = {self.depth_file!r} must be a path")
        check_int("waterfall.cover", self.cover, low=1, high=100)
        band = self.screen_band
        if (isinstance(band, bool) or not isinstance(band, (int, float)) or math.isnan(band)
                or band < 0):
            raise UsageError(f"config: waterfall.screen_band = {band!r} must be a number >= 0 "
                             "(inf: re-margin every set a scenario moves)")
        sources = self.sources
        if isinstance(sources, str) or not all(isinstance(s, str) for s in sources):
            raise UsageError(f"config: waterfall.sources = {sources!r} must be a list of "
                             f"{', '.join(SOURCES)}")
        for s in sources:
            check_choice("waterfall.sources", s, SOURCES)
        if len(set(sources)) != len(sources):
            raise UsageError(f"config: waterfall.sources = {list(sources)!r} names a source "
                             "twice")
        object.__setattr__(self, "sources", tuple(sources))
        check_int("waterfall.workers", self.workers, low=1, high=256)
