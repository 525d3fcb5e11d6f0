"""Rate tables: a rate per position by underlying, then instrument kind, then a default."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from riskmodel.errors import UsageError
from riskmodel.validation import check_number

INSTRUMENT_KINDS = (
    "spot",
    "future",
    "perpetual",
    "inverse_perpetual",
    "inverse_future",
    "option",
)


@dataclass(frozen=True)
class RateTable:
    """A rate applied to |notional|, resolved by underlying first, then kind, then default.

    Used for maintenance-floor rates, initial-floor rates and flat rates.
    """

    default: float
    kind: Mapping[str, float] = field(default_factory=dict)
    underlying: Mapping[str, float] = field(default_factory=dict)

    def rate(self, kind: str, underlying: str) -> float:
        if underlying in self.underlying:
            return self.underlying[underlying]
        if kind in self.kind:
            return self.kind[kind]
        return self.default

    def entries(self, name: str) -> list[tuple[str, float]]:
        """``(config key, value)`` of every rate in the table, for validation messages."""
        return [(f"{name}.default", self.default),
                *((f"{name}.kind.{k}", v) for k, v in self.kind.items()),
                *((f"{name}.underlying.{k}", v) for k, v in self.underlying.items())]

    def check_kinds(self, name: str, error: type[Exception] = UsageError) -> None:
        """Every ``kind.*`` key must be a known instrument kind."""
        for k in self.kind:
            if k not in INSTRUMENT_KINDS:
                raise error(
                    f"config: {name}.kind.{k}: unknown instrument kind {k!r} "
                    f"(known: {', '.join(INSTRUMENT_KINDS)})"
                )

    def validate(self, name: str, *, strictly_positive: bool = False,
                 error: type[Exception] = UsageError) -> None:
        """Raise ``error`` unless every rate is a number in [0, 10] (in (0, 10] when
        ``strictly_positive``) and every ``kind.*`` key a known instrument kind."""
        for key, value in self.entries(name):
            check_number(key, value, error=error)
            if not (0.0 <= value <= 10.0) or (strictly_positive and value <= 0.0):
                bound = "in (0, 10]" if strictly_positive else "in [0, 10]"
                raise error(f"config: {key} = {value!r} must be {bound}")
        self.check_kinds(name, error)
