"""Each netting set's requirements in force: the row of the margin table the engine gave it at
its last refresh, and the status rule that the live loop applies between refreshes.

Between two refreshes of a set its requirements (initial and maintenance margin, stress,
add-ons, the distance to liquidation) stay what the engine computed; its equity moves with
every tick. Its margin level and status are then the margin policy's rule applied to the
current equity and the requirements in force (:func:`status_codes`, the rule of
:func:`riskmodel.margin.policy.policy_columns`, which a test checks against the engine).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from riskmodel.margin.policy import STATUSES, margin_level
from riskmodel.margin.tables import MARGIN_COLUMNS

#: Status codes: positions in :data:`riskmodel.margin.policy.STATUSES`, and ``FLAT`` for a
#: set without an open position (not margined; ``closed`` in events).
OK, WARNING, MARGIN_CALL, LIQUIDATION, FLAT = 0, 1, 2, 3, 4
STATUS_NAMES = np.array([*STATUSES, "closed"], dtype=object)
TEXT_COLUMNS = ("stress_scenario", "dominant_underlying")
#: the margin table's columns after the ids, and the penalty of the set's standing orders
FIGURES = [c for c in MARGIN_COLUMNS if c not in ("account_id", "netting_set")] + [
    "liquidation_penalty"]


def status_codes(equity: np.ndarray, initial: np.ndarray, maintenance: np.ndarray,
                 warning_multiple: float) -> np.ndarray:
    """The margin policy's status of each set at ``equity`` against its requirements:
    liquidation below maintenance margin, margin call below initial margin, warning below
    ``warning_multiple`` x initial margin, else ok (as codes)."""
    return np.select([equity < maintenance, equity < initial, equity < warning_multiple * initial],
                     [LIQUIDATION, MARGIN_CALL, WARNING], default=OK).astype(np.int64)


class Requirements:
    """The margin table of every set as of its last refresh, column by column.

    Parameters
    ----------
    n_sets : int
    """

    def __init__(self, n_sets: int) -> None:
        self.columns: dict[str, np.ndarray] = {}
        for name in FIGURES:
            if name in TEXT_COLUMNS:
                self.columns[name] = np.full(n_sets, "", dtype=object)
            elif name == "status":
                self.columns[name] = np.full(n_sets, FLAT, dtype=np.int64)
            elif name == "n_positions":
                self.columns[name] = np.zeros(n_sets, dtype=np.int64)
            else:
                self.columns[name] = np.zeros(n_sets)

    def __len__(self) -> int:
        return len(self.columns["initial_margin"])

    def grow(self, n_sets: int) -> None:
        """Room for ``n_sets`` sets (new ones flat, zero requirements)."""
        extra = n_sets - len(self)
        if extra <= 0:
            return
        extra = max(extra, len(self) // 4 + 16)
        for name, values in self.columns.items():
            fill = "" if name in TEXT_COLUMNS else (FLAT if name == "status" else 0)
            self.columns[name] = np.concatenate(
                [values, np.full(extra, fill, dtype=values.dtype)])

    def put(self, sets: np.ndarray, margins: pd.DataFrame | dict[str, np.ndarray]) -> None:
        """The engine's margin table rows of ``sets`` (in that order), or its figures alone
        (the distance to liquidation then stays as it was); the status column is the published
        one, kept by the caller."""
        for name in FIGURES:
            if name in ("status", "liquidation_penalty") or name not in margins:
                continue
            self.columns[name][sets] = np.asarray(margins[name])

    def clear(self, sets: np.ndarray) -> None:
        """``sets`` hold no open position: no requirement."""
        for name, values in self.columns.items():
            if name in TEXT_COLUMNS:
                values[sets] = ""
            elif name not in ("status", "liquidation_penalty"):
                values[sets] = 0

    def level(self, sets: np.ndarray, equity: np.ndarray) -> np.ndarray:
        """Margin level of ``sets`` at their ``equity``: equity over maintenance margin (the
        policy's :func:`~riskmodel.margin.policy.margin_level`)."""
        return margin_level(equity, self.columns["maintenance_margin"][sets])

    def status(self, sets: np.ndarray, equity: np.ndarray, warning_multiple: float
               ) -> np.ndarray:
        """The status of ``sets`` at ``equity`` against their requirements in force."""
        c = self.columns
        return status_codes(equity, c["initial_margin"][sets], c["maintenance_margin"][sets],
                            warning_multiple)

    def table(self, sets: np.ndarray, equity: np.ndarray, status: np.ndarray,
              account: np.ndarray, netting_set: np.ndarray) -> pd.DataFrame:
        """The margin table of ``sets`` now: requirements and distance to liquidation as of
        each set's last refresh, equity, level, status and call at the current equity."""
        c = self.columns
        im = c["initial_margin"][sets]
        out = {"account_id": account, "netting_set": netting_set}
        for name in FIGURES:
            out[name] = c[name][sets]
        out["equity"] = equity
        out["margin_level"] = self.level(sets, equity)
        out["status"] = STATUS_NAMES[status]
        out["call_amount"] = np.maximum(0.0, im - equity)
        return pd.DataFrame(out)

    def state(self) -> dict[str, np.ndarray]:
        return {f"req_{k}": v.astype(str) if v.dtype == object else v.copy()
                for k, v in self.columns.items()}

    def restore(self, state: dict[str, np.ndarray]) -> None:
        for k in self.columns:
            v = state[f"req_{k}"]
            self.columns[k] = v.astype(object) if k in TEXT_COLUMNS else v.copy()
