"""Settings of the liquidity and concentration add-ons (``[addons]``).

The arithmetic that reads them is :mod:`riskmodel.margin.addons`, which re-exports these names.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

from riskmodel.config.rates import RateTable
from riskmodel.errors import UsageError
from riskmodel.validation import is_finite_number, is_number


class AddonConfigError(UsageError, ValueError):
    """An add-on setting or input out of range; a :class:`ValueError` and a ``UsageError``.

    The message names the field and the offending value.
    """


@dataclass(frozen=True)
class ThresholdTable(RateTable):
    """Concentration thresholds (absolute notional, reporting currency) per position.

    Same lookup as :class:`~riskmodel.config.RateTable` (the inherited ``rate`` method:
    underlying, then instrument kind, then default), but the values are thresholds, not rates:
    each must be ``> 0`` and may be ``math.inf`` (no concentration charge). The default is
    ``math.inf``. (``RateTable.validate`` requires values in [0, 10], which does not fit.)
    """

    default: float = math.inf
    kind: Mapping[str, float] = field(default_factory=dict)
    underlying: Mapping[str, float] = field(default_factory=dict)

    def validate(self, name: str, *, strictly_positive: bool = True,
                 error: type[Exception] = AddonConfigError) -> None:
        """Raise ``error`` unless every threshold is a number in (0, inf] (NaN is not)."""
        for key, value in self.entries(name):
            if not (is_number(value) and value > 0.0):
                raise error(f"config: {key} = {value!r} must be a number > 0 (inf: no threshold)")
        self.check_kinds(name, error)


@dataclass(frozen=True)
class AddonPolicy:
    """Settings of the liquidity and concentration add-ons; validated on construction.

    Attributes
    ----------
    spreads : RateTable
        Full bid-ask spread as a fraction of price (default 0: no liquidity charge).
    concentration_threshold : ThresholdTable
        Threshold ``T`` in absolute notional (default ``math.inf``: no concentration charge).
    concentration_rate : RateTable
        ``rate`` of the concentration formula (default 0).
    concentration_power : float
        ``power`` of the concentration formula, in (1, 10] (default 1.5).
    threshold_adv_multiple : float or None
        When set (> 0) and an ADV is given for the underlying, ``T = multiple x ADV``.

    Raises
    ------
    AddonConfigError
        (a ``ValueError``) naming the field and value when a setting is out of range.
    """

    spreads: RateTable = field(default_factory=lambda: RateTable(default=0.0))
    concentration_threshold: ThresholdTable = field(default_factory=ThresholdTable)
    concentration_rate: RateTable = field(default_factory=lambda: RateTable(default=0.0))
    concentration_power: float = 1.5
    threshold_adv_multiple: float | None = None

    def __post_init__(self) -> None:
        for name in ("spreads", "concentration_rate"):
            table = getattr(self, name)
            if not isinstance(table, RateTable):
                raise AddonConfigError(f"config: addons.{name} = {table!r} must be a RateTable")
            table.validate(f"addons.{name}", error=AddonConfigError)
        if not isinstance(self.concentration_threshold, ThresholdTable):
            raise AddonConfigError("config: addons.concentration_threshold = "
                                   f"{self.concentration_threshold!r} must be a ThresholdTable")
        self.concentration_threshold.validate("addons.concentration_threshold")
        power = self.concentration_power
        if not is_finite_number(power) or not 1.0 < power <= 10.0:
            raise AddonConfigError(
                f"config: addons.concentration_power = {power!r} must be in (1, 10]"
            )
        multiple = self.threshold_adv_multiple
        if multiple is not None and (not is_finite_number(multiple) or multiple <= 0.0):
            raise AddonConfigError(
                f"config: addons.threshold_adv_multiple = {multiple!r} must be a finite "
                "number > 0 (or unset)"
            )
