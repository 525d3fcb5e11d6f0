"""Close-out slippage: what closing a notional costs beyond the mark.

A netting set closing positions on an underlying trades a delta-equivalent notional ``N`` on
each side of that underlying's book (selling to close longs hits the bids, buying to close
shorts lifts the asks; the legs of a hedge are not netted against each other: they trade in
different books). The cost of each side, in the reporting currency:

* square-root rule (default): ``N x k x sigma_1d x sqrt(N / ADV)``, ``k`` the
  ``[waterfall] slippage_coefficient``, ``sigma_1d`` the underlying's one-day relative
  volatility from the run and ``ADV`` its average daily volume (``[waterfall.adv]``, else
  ``[liquidation.impact_adv]``, else ``[addons.adv]``): the average execution cost of a block
  under the square-root law of market impact;
* an order-book depth file (``[waterfall] depth_file``; CSV or Parquet ``underlying, side,
  price_offset, size``): ``side`` ``bid`` or ``ask``, ``price_offset`` the level's distance
  from the mid as a fraction of the price (0.001 = 10 bp), ``size`` the notional available
  there. The close walks the levels from the nearest; a close larger than the whole file's
  depth fills the rest at the deepest level (the book is taken to refill there: list a deep
  last level). Underlyings the file lists use it; others fall back to the square-root rule.

A side with neither depth nor ADV costs nothing (a note names the underlying).

Each set's slippage depends on its own close only: the joint effect of many sets closing at once
is the cascade's price impact (``--cascade``), not slippage.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from riskmodel.config import RunConfig
from riskmodel.errors import UsageError
from riskmodel.io.tables import read_table

SIDES = ("bid", "ask")


@dataclass(frozen=True)
class DepthSide:
    """One side of a book: cumulative size and cost at each level's end (both starting at 0)
    and the deepest level's offset."""

    size: np.ndarray
    cost: np.ndarray
    last_offset: float

    def walk(self, notional: np.ndarray) -> np.ndarray:
        """Cost of trading ``notional`` (>= 0) through the levels, the deepest repeating."""
        inside = np.interp(notional, self.size, self.cost)
        beyond = np.maximum(notional - self.size[-1], 0.0) * self.last_offset
        return inside + beyond


@dataclass(frozen=True)
class DepthBook:
    """Depth per underlying: ``sides[factor] = (bid, ask)``; ``path`` the file."""

    sides: dict[str, tuple[DepthSide, DepthSide]]
    path: str


def read_depth(path: str | Path, factors: list[str]) -> DepthBook:
    """Read and check an order-book depth file (module docstring).

    Raises
    ------
    UsageError
        The file does not exist (``waterfall.depth_file``).
    InputDataError
        An underlying that is not a factor of the run, a side that is not ``bid``/``ask``, a
        negative or non-finite offset, a size that is not > 0, a level listed twice, or an
        underlying with levels on one side only; each names the row, column and value.
    """
    path = Path(path)
    if not path.is_file():
        raise UsageError(f"config: waterfall.depth_file = {str(path)!r}: no such file")
    table = read_table(path, "order-book depth")
    table.require_columns(["underlying", "side", "price_offset", "size"])
    underlying = table.text("underlying")
    side = table.text("side")
    offset = table.numbers("price_offset", what="price offset")
    size = table.numbers("size", what="size")
    seen: dict[tuple[str, str, float], int] = {}
    for i in range(len(underlying)):
        if underlying[i] not in factors:
            raise table.fail(i, "underlying", underlying[i], "not an underlying of the run "
                             f"(its factors: {', '.join(factors)})")
        if side[i] not in SIDES:
            raise table.fail(i, "side", side[i], "must be bid or ask")
        if not offset[i] >= 0:
            raise table.fail(i, "price_offset", float(offset[i]), "must be >= 0 (a fraction "
                             "of the price away from the mid)")
        if not size[i] > 0:
            raise table.fail(i, "size", float(size[i]), "must be > 0 (notional at the level)")
        key = (str(underlying[i]), str(side[i]), float(offset[i]))
        if key in seen:
            raise table.fail(i, "price_offset", float(offset[i]), f"level listed twice for "
                             f"{key[0]} {key[1]} (also at {table.where(seen[key])})")
        seen[key] = i
    sides: dict[str, tuple[DepthSide, DepthSide]] = {}
    for u in sorted(set(underlying.tolist())):
        built = []
        for s in SIDES:
            rows = np.flatnonzero((underlying == u) & (side == s))
            if len(rows) == 0:
                other = next(x for x in SIDES if x != s)
                first = int(np.flatnonzero(underlying == u)[0])
                raise table.fail(first, "side", other, f"inconsistent book: {u} has {other} "
                                 f"levels but no {s} levels (a close can go either way)")
            order = rows[np.argsort(offset[rows], kind="stable")]
            cum_size = np.concatenate([[0.0], np.cumsum(size[order])])
            cum_cost = np.concatenate([[0.0], np.cumsum(size[order] * offset[order])])
            built.append(DepthSide(cum_size, cum_cost, float(offset[order[-1]])))
        sides[u] = (built[0], built[1])
    return DepthBook(sides, str(path))


@dataclass
class Slippage:
    """Close-out cost per (underlying, side) notional (module docstring)."""

    factors: list[str]
    sigma: np.ndarray
    adv: np.ndarray
    coefficient: float
    depth: DepthBook | None = None
    notes: dict[str, None] = field(default_factory=dict)

    @classmethod
    def of(cls, config: RunConfig, factors: list[str], sigma_rel: np.ndarray) -> Slippage:
        w = config.waterfall
        table = {**config.addon_adv, **config.liquidation.impact_adv, **w.adv}
        depth = read_depth(w.depth_file, factors) if w.depth_file else None
        return cls(factors, np.asarray(sigma_rel, dtype=np.float64),
                   np.array([table.get(f, np.nan) for f in factors], dtype=np.float64),
                   w.slippage_coefficient, depth)

    def cost(self, factor: np.ndarray, sells: np.ndarray, buys: np.ndarray) -> np.ndarray:
        """Cost of selling ``sells`` and buying ``buys`` (notionals >= 0) on the factors
        ``factor`` (codes), elementwise, shape (n,)."""
        factor = np.asarray(factor, dtype=np.int64)
        out = np.zeros(len(factor))
        sqrt_rule = np.ones(len(factor), dtype=bool)
        if self.depth is not None:
            for code in np.unique(factor):
                name = self.factors[int(code)]
                if name not in self.depth.sides:
                    continue
                rows = factor == code
                bid, ask = self.depth.sides[name]
                out[rows] = bid.walk(sells[rows]) + ask.walk(buys[rows])
                sqrt_rule[rows] = False
        adv = self.adv[factor]
        known = sqrt_rule & np.isfinite(adv)
        scale = np.zeros(len(factor))
        scale[known] = self.coefficient * self.sigma[factor[known]] / np.sqrt(adv[known])
        out[known] = scale[known] * (sells[known] ** 1.5 + buys[known] ** 1.5)
        for code in np.unique(factor[sqrt_rule & ~known & ((sells > 0) | (buys > 0))]):
            self.notes[f"no ADV or depth for {self.factors[int(code)]!r}: its close-outs cost "
                       "no slippage (set [waterfall.adv] or waterfall.depth_file)"] = None
        return out
