"""``[waterfall]``: what happens when margin is not enough (``riskmodel waterfall``,
:mod:`riskmodel.waterfall`): insurance fund, auto-deleveraging, socialised loss, cover-N.

Every key is a field of :class:`WaterfallConfig` (``RUN.toml`` keys map one to one); a value
out of range raises :class:`~riskmodel.errors.UsageError` (exit 2) naming ``waterfall.<key>``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from riskmodel.errors import UsageError
from riskmodel.validation import check_choice, check_int, check_number

ADL_RANKINGS = ("profit_x_leverage", "profit", "leverage")
SOCIALISATION = ("pro_rata_profit", "none")


@dataclass(frozen=True)
class WaterfallConfig:
    """Settings of the default waterfall.

    Attributes
    ----------
    insurance_fund : float
        The fund's size in the reporting currency before any scenario (0).
    penalty_to_fund : float
        Share of the liquidation penalties that feeds the fund, in [0, 1] (1).
    adl_ranking : str
        How opposite positions with profit are ranked for auto-deleveraging:
        ``profit_x_leverage`` (default), ``profit`` or ``leverage``.
    socialisation : str
        ``pro_rata_profit`` (what ADL leaves is shared by every profitable account in
        proportion to its profit) or ``none`` (it stays uncovered).
    slippage_coefficient : float
        Close-out slippage ``k x sigma_1d x sqrt(|notional| / ADV)`` of the price (1.0);
        ADV from ``adv`` (else ``[liquidation.impact_adv]``, else ``[addons.adv]``).
    adv : mapping
        Average daily volume (reporting currency) per underlying.
    depth_file : str or None
        An order-book depth file (``underlying, side, price_offset, size``) used instead of the
        square-root rule.
    cover : int
        N of cover-N: the default fund covers the N members with the largest stress losses
        beyond margin (2, EMIR Article 43).
    """

    insurance_fund: float = 0.0
    penalty_to_fund: float = 1.0
    adl_ranking: str = "profit_x_leverage"
    socialisation: str = "pro_rata_profit"
    slippage_coefficient: float = 1.0
    adv: Mapping[str, float] = field(default_factory=dict)
    depth_file: str | None = None
    cover: int = 2

    def __post_init__(self) -> None:
        for name in ("insurance_fund", "penalty_to_fund", "slippage_coefficient"):
            check_number(f"waterfall.{name}", getattr(self, name))
        if self.insurance_fund < 0:
            raise UsageError(f"config: waterfall.insurance_fund = {self.insurance_fund!r} must "
                             "be >= 0")
        if not 0.0 <= self.penalty_to_fund <= 1.0:
            raise UsageError("config: waterfall.penalty_to_fund = "
                             f"{self.penalty_to_fund!r} must be in [0, 1]")
        if self.slippage_coefficient < 0:
            raise UsageError("config: waterfall.slippage_coefficient = "
                             f"{self.slippage_coefficient!r} must be >= 0")
        check_choice("waterfall.adl_ranking", self.adl_ranking, ADL_RANKINGS)
        check_choice("waterfall.socialisation", self.socialisation, SOCIALISATION)
        for key, value in self.adv.items():
            check_number(f"waterfall.adv.{key}", value)
            if value <= 0:
                raise UsageError(f"config: waterfall.adv.{key} = {value!r} must be > 0")
        if self.depth_file is not None and not isinstance(self.depth_file, str):
            raise UsageError(f"config: waterfall.depth_file = {self.depth_file!r} must be a path")
        check_int("waterfall.cover", self.cover, low=1, high=100)
