"""The scenario set: a value that every generator returns and the repricing consumes."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass(frozen=True)
class ScenarioSet:
    """Horizon moves of each risk factor in each scenario.

    Attributes
    ----------
    shocks : ndarray of shape (n_scenarios, n_factors)
        The h-day move of each factor in its return units (log return, or price difference for
        factors with absolute returns).
    factors : tuple of str, length n_factors
    labels : ndarray of shape (n_scenarios,)
        What each scenario is (for historical kinds, the first date of its h-day window).
    weights : ndarray of shape (n_scenarios,) or None
        Probability weights summing to 1; None means equally likely.
    kind : ``"hs"`` or ``"fhs"`` (``"mc"`` and ``"stress"`` later).
    horizon : int, days.
    """

    shocks: np.ndarray
    factors: tuple[str, ...]
    labels: np.ndarray
    kind: str
    horizon: int
    weights: np.ndarray | None = None
    provenance: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        n_scen, n_fac = self.shocks.shape
        if n_fac != len(self.factors):
            raise ValueError(f"shocks have {n_fac} columns for {len(self.factors)} factors")
        if len(self.labels) != n_scen:
            raise ValueError(f"{len(self.labels)} labels for {n_scen} scenarios")
        if not np.isfinite(self.shocks).all():
            raise ValueError("scenario shocks must be finite")

    @property
    def n_scenarios(self) -> int:
        return int(self.shocks.shape[0])
