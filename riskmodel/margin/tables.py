"""The margin and attribution tables of a book: from tail results, stress losses and collateral
to the output columns of DESIGN.md, through the margin policy.

One policy behind :func:`assemble_margins` (the tables) and :func:`initial_margin` (the figure
alone, which each partial-liquidation step asks for), so that every one of them applies the very
same margin. Both are called by the engine (:func:`riskmodel.engine.margin_book`) only.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from riskmodel.config import RunConfig
from riskmodel.errors import ModelError
from riskmodel.io.positions import id_text
from riskmodel.margin.addons import position_addons, set_addons
from riskmodel.margin.liquidation_distance import distance_columns
from riskmodel.margin.policy import margin_base, per_set_sum, policy_columns
from riskmodel.portfolio.netting import Book
from riskmodel.pricing.revaluation import COLLATERAL_KIND, at_labels, unit_greek_array

MARGIN_COLUMNS = [
    "account_id", "netting_set", "n_positions", "gross_notional", "var", "es", "model_margin",
    "addons", "initial_margin", "maintenance_floor", "maintenance_margin", "flat_rate_margin",
    "equity", "margin_level", "status", "call_amount", "stress_loss", "stress_scenario",
    "dominant_underlying", "liq_move_dominant", "liq_move_uniform", "liq_sigmas_dominant",
    "liq_sigmas_uniform", "liquidation_price",
]
ATTRIBUTION_COLUMNS = [
    "account_id", "netting_set", "instrument_id", "quantity", "market_value", "notional",
    "contribution", "liquidity_addon", "concentration_addon", "delta", "gamma", "vega",
]

@dataclass
class TailArrays:
    """Tail results of the whole book, filled horizon group by horizon group."""

    var: np.ndarray
    es: np.ndarray
    model_measure: np.ndarray
    contribution: np.ndarray

    @classmethod
    def empty(cls, n_sets: int, n_positions: int) -> TailArrays:
        return cls(np.zeros(n_sets), np.zeros(n_sets), np.zeros(n_sets), np.zeros(n_positions))

    def put(self, sets: np.ndarray, rows: np.ndarray | None, part: Any) -> None:
        self.var[sets] = part.var
        self.es[sets] = part.es
        self.model_measure[sets] = part.model_measure
        if rows is None:
            self.contribution[:] = part.contribution
        else:
            self.contribution[rows] = part.contribution


def set_horizons(book: Book, used: pd.DataFrame, config: RunConfig,
                 types: Mapping[str, str] | None = None,
                 arrays: InstrumentArrays | None = None) -> np.ndarray:
    """Margin period of risk of each netting set: the longest of its positions' kinds and of its
    account's type (``[horizons.account_type]``, ``types`` maps account to type); ``arrays``
    (``used``'s, when at hand) saves coding the kinds again."""
    out = np.zeros(book.n_sets, dtype=np.int64)
    np.maximum.at(out, book.set_of_position(), position_horizons(book, used, config, arrays))
    if types and config.horizons_by_account_type:
        out = np.maximum(out, account_horizons(book, config, types))
    return out


def position_horizons(book: Book, used: pd.DataFrame, config: RunConfig,
                      arrays: InstrumentArrays | None = None) -> np.ndarray:
    """The margin period of risk of each position's kind (``[horizons.kind]``), shape
    (n_positions,)."""
    # one lookup per distinct kind (a what-if or a liquidation step margins a few sets against
    # every instrument of the run)
    if arrays is not None:  # the kinds coded once per market
        kind_code, kinds = arrays.kind_code, arrays.kinds.categories
    else:
        kind_code, kinds = pd.factorize(used["kind"].to_numpy(dtype=object))
    by_instrument = np.array([config.horizon_of_kind(k) for k in kinds],
                             dtype=np.int64)[kind_code]
    return by_instrument[book.instrument_index]


def account_horizons(book: Book, config: RunConfig, types: Mapping[str, str] | None
                     ) -> np.ndarray:
    """The margin period of risk of each set's account type (``[horizons.account_type]``;
    0 where none applies), shape (n_sets,)."""
    by_type = config.horizons_by_account_type
    if not types or not by_type:
        return np.zeros(book.n_sets, dtype=np.int64)
    return np.array([by_type.get(types.get(a, ""), 0) for a in book.sets["account_id"]],
                    dtype=np.int64)


@dataclass(frozen=True)
class InstrumentArrays:
    """Per instrument of the book's axis, what the margin tables look up for each position:
    per-unit ``value, delta, gamma, vega`` (:func:`riskmodel.pricing.revaluation.unit_greeks`),
    the price and volatility code of its factor, and its kind and underlying as codes. Built once
    per market (:attr:`riskmodel.engine.market.PricedMarket.instrument_arrays`): a liquidation
    margins a hundred small books against the same axis, and looking labels up per book cost
    more than the margin arithmetic."""

    unit: np.ndarray  # (n_instruments, 4)
    price: np.ndarray  # spot of each instrument's factor
    factor_code: np.ndarray  # each instrument's factor, as its position in factor_names
    factor_names: np.ndarray  # sigma_rel's factors
    sigma_rel: np.ndarray  # relative one-day volatility of each of factor_names
    kind_code: np.ndarray
    kinds: pd.CategoricalDtype
    underlying_code: np.ndarray
    underlyings: pd.CategoricalDtype

    @classmethod
    def of(cls, used: pd.DataFrame, spot: pd.Series, valuation_time: pd.Timestamp,
           sigma_rel: pd.Series, unit: np.ndarray | None = None) -> InstrumentArrays:
        """``used`` indexed by ``instrument_id`` in axis order (``kind, underlying, factor`` and
        the option columns), ``spot`` and ``sigma_rel`` by factor."""
        if unit is None:
            unit = unit_greek_array(used, spot, valuation_time)
        kind_code, kinds = pd.factorize(used["kind"].to_numpy(dtype=object))
        underlying_code, underlyings = pd.factorize(used["underlying"].to_numpy(dtype=object))
        factor_names = np.asarray(sigma_rel.index, dtype=object)
        return cls(
            unit=np.asarray(unit, dtype=np.float64),
            price=at_labels(spot, used["factor"]),
            factor_code=pd.Index(factor_names).get_indexer(used["factor"]).astype(np.int64),
            factor_names=factor_names,
            sigma_rel=sigma_rel.to_numpy(np.float64),
            kind_code=kind_code, kinds=_labels(kinds),
            underlying_code=underlying_code, underlyings=_labels(underlyings),
        )

    def per_position(self, instrument_index: np.ndarray) -> tuple[pd.Categorical,
                                                                  pd.Categorical]:
        """Each position's kind and underlying as categoricals of the instruments' labels: the
        rate tables then look up each distinct (kind, underlying) once."""
        return (
            pd.Categorical.from_codes(self.kind_code[instrument_index], dtype=self.kinds,
                                      validate=False),
            pd.Categorical.from_codes(self.underlying_code[instrument_index],
                                      dtype=self.underlyings, validate=False),
        )


def _labels(values: pd.Index) -> pd.CategoricalDtype:
    # object categories: a categorical then skips inferring (and Arrow-converting) its labels
    return pd.CategoricalDtype(pd.Index(np.asarray(values, dtype=object), dtype=object))


@dataclass(frozen=True)
class _PositionLookups:
    """Each position's kind, underlying, factor price and per-unit greeks, and its notional
    (``|quantity x delta x price|``; 0 for collateral)."""

    kinds: pd.Categorical
    underlyings: pd.Categorical
    price: np.ndarray
    unit: np.ndarray
    is_collateral: np.ndarray
    notional: np.ndarray

    @classmethod
    def of(cls, book: Book, arrays: InstrumentArrays) -> _PositionLookups:
        kinds, underlyings = arrays.per_position(book.instrument_index)
        price = arrays.price[book.instrument_index]
        unit = arrays.unit[book.instrument_index]
        is_collateral = np.asarray(kinds == COLLATERAL_KIND)
        notional = np.where(is_collateral, 0.0, np.abs(book.quantity * unit[:, 1] * price))
        return cls(kinds, underlyings, price, unit, is_collateral, notional)


#: The per-set figures of :func:`margin_figures`: the margin table less the ids and the
#: distance to liquidation.
FIGURE_COLUMNS = [c for c in MARGIN_COLUMNS if c not in (
    "account_id", "netting_set", "dominant_underlying", "liq_move_dominant", "liq_move_uniform",
    "liq_sigmas_dominant", "liq_sigmas_uniform", "liquidation_price")]


@dataclass(frozen=True, eq=False)
class _Figures:
    """Per set, the margin figures (:data:`FIGURE_COLUMNS` with the policy's columns, in order);
    per position, the lookups, whether its set's tail measure is positive and its add-ons."""

    columns: dict[str, np.ndarray]
    positions: _PositionLookups
    positive: np.ndarray
    liquidity: np.ndarray
    concentration: np.ndarray


def _figures(book: Book, arrays: InstrumentArrays, tail: Any, stress_loss: np.ndarray,
             stress_label: np.ndarray | None, equity: np.ndarray, config: RunConfig,
             apc_base: np.ndarray | None, *, policy_only: bool = False,
             maintenance: np.ndarray | None = None) -> _Figures:
    """The margin policy of every set (:func:`riskmodel.margin.policy.policy_columns`) and,
    unless ``policy_only``, the other per-set figures."""
    positions = _PositionLookups.of(book, arrays)
    # A book that gains even in its tail needs no model margin: floor the measure at zero (the
    # contributions are dropped with it, so they always sum to the model margin).
    positive = tail.model_measure > 0
    model_margin = np.where(positive, tail.model_measure, 0.0)
    base = margin_base(model_margin if apc_base is None else apc_base, stress_loss,
                       config.stress.mode, config.stress.weight)
    liquidity, concentration = position_addons(positions.notional, positions.kinds,
                                               positions.underlyings, config.addons,
                                               config.addon_adv)
    policy = policy_columns(
        model_margin, set_addons(liquidity, concentration, book.indptr), positions.notional,
        positions.kinds, positions.underlyings, book.indptr, equity, config.margin, base=base,
        maintenance_base=maintenance, tiers=config.tiers,  # a rule's maintenance; [tiers]
    )
    if policy_only:
        return _Figures(policy, positions, positive, liquidity, concentration)
    columns = {
        "n_positions": (np.diff(book.indptr) - per_set_sum(
            positions.is_collateral.astype(np.float64), book.indptr)).astype(np.int64),
        "gross_notional": per_set_sum(positions.notional, book.indptr),
        "var": tail.var,
        "es": tail.es,
        **policy,
        "stress_loss": stress_loss,
        "stress_scenario": (np.full(book.n_sets, "", dtype=object) if stress_label is None
                            else stress_label),
    }
    return _Figures(columns, positions, positive, liquidity, concentration)


def initial_margin(book: Book, arrays: InstrumentArrays, tail: Any, stress_loss: np.ndarray,
                   equity: np.ndarray, config: RunConfig,
                   apc_base: np.ndarray | None = None) -> np.ndarray:
    """The ``initial_margin`` column of :func:`assemble_margins` (same arguments), without the
    tables: a liquidation step needs nothing else, and building them was most of its cost.
    Raises :class:`ModelError` where it is not finite."""
    im = _figures(book, arrays, tail, stress_loss, None, equity, config, apc_base,
                  policy_only=True).columns["initial_margin"]
    if not np.isfinite(im).all():
        row = int(np.flatnonzero(~np.isfinite(im))[0])
        raise ModelError(f"non-finite initial_margin for account "
                         f"{book.sets['account_id'].iat[row]!r} netting set "
                         f"{book.sets['netting_set'].iat[row]!r}")
    return im


def margin_figures(book: Book, arrays: InstrumentArrays, tail: Any, stress_loss: np.ndarray,
                   stress_label: np.ndarray, equity: np.ndarray, config: RunConfig,
                   apc_base: np.ndarray | None = None,
                   maintenance: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """The per-set figures of :func:`assemble_margins` (same arguments), column by column
    (:data:`FIGURE_COLUMNS`), without the ids, the distance to liquidation and the
    attribution: what a backtest date records."""
    return _figures(book, arrays, tail, stress_loss, stress_label, equity, config,
                    apc_base, maintenance=maintenance).columns


def assemble_margins(
    book: Book,
    arrays: InstrumentArrays,
    tail: Any,
    stress_loss: np.ndarray,
    stress_label: np.ndarray,
    equity: np.ndarray,
    config: RunConfig,
    apc_base: np.ndarray | None = None,
    maintenance: np.ndarray | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Margin table (one row per netting set) and attribution table (one row per position).

    ``arrays`` are the lookups of the book's instrument axis (:class:`InstrumentArrays`);
    ``tail`` has ``var, es, model_measure`` per set and ``contribution`` per position;
    ``stress_loss`` and ``stress_label`` are each set's worst stress loss and its scenario;
    ``equity`` is each set's collateral.

    Per position: ``market_value = quantity x value`` (the premium of an option, the price of
    spot and coin collateral, 0 for contracts settled by variation margin), ``notional =
    |quantity x delta x price|`` (delta-adjusted for options; the face value of inverse
    contracts; 0 for collateral, which is no position and carries no floor, add-on or flat
    rate), and ``delta, gamma, vega`` in the reporting currency
    (:func:`riskmodel.pricing.revaluation.unit_greeks`).
    ``apc_base``: the model margin after the anti-procyclicality floor and buffer (default: the
    model margin), which the stress combination then starts from. ``maintenance``: a rule's
    own maintenance requirement per set (``--method grid``), in place of ``mm_ratio x`` the
    initial margin.

    Raises :class:`ModelError` where a figure of the margin table is not finite
    (:func:`check_finite`).
    """
    figures = _figures(book, arrays, tail, stress_loss, stress_label, equity, config, apc_base,
                       maintenance=maintenance)
    positions, columns = figures.positions, figures.columns
    price, unit = positions.price, positions.unit
    # first order: each position as a linear one of the same delta (collateral included)
    distance = distance_columns(
        book.indptr, book.quantity, unit[:, 1], price,
        arrays.factor_code[book.instrument_index], len(arrays.factor_names), equity,
        columns["maintenance_margin"], arrays.sigma_rel,
    )
    distance["dominant_underlying"] = arrays.factor_names[distance["dominant_underlying"]]
    flat = np.diff(book.indptr) == 0
    if flat.any():  # no position, no underlying: no price move can liquidate it
        distance["dominant_underlying"][flat] = ""
        solvent = flat & (equity >= 0)
        for c in distance:
            if c != "dominant_underlying":
                distance[c][solvent] = np.inf
    table = {**columns, **distance}
    # checked before the frames are built: a small book's frames cost more than its figures
    check_finite(table, book.sets)
    # the ids as the book holds them (categoricals at venue size)
    table["account_id"] = book.sets["account_id"].array
    table["netting_set"] = book.sets["netting_set"].array
    margins = pd.DataFrame({c: table[c] for c in MARGIN_COLUMNS})
    return margins, _attribution(book, figures, tail)


def _attribution(book: Book, figures: _Figures, tail: Any) -> pd.DataFrame:
    """The attribution table: each column an array of its own (``copy=False``), copied here
    where the book or the figures hold it. pandas' default would stack the nine float columns
    into one block, 36 MB per 50,000 sets: above malloc's largest reuse threshold, so fresh
    memory for the system to zero at every partition (80 ms each)."""
    pos, positions = book.positions, figures.positions
    price, unit = positions.price, positions.unit
    return pd.DataFrame(
        {
            "account_id": id_text(pos["account_id"]),
            "netting_set": id_text(pos["netting_set"]),
            "instrument_id": id_text(pos["instrument_id"]),
            "quantity": book.quantity.copy(),
            "market_value": book.quantity * unit[:, 0],
            "notional": positions.notional.copy(),
            "contribution": np.where(figures.positive[book.set_of_position()],
                                     tail.contribution, 0.0),
            "liquidity_addon": figures.liquidity.copy(),
            "concentration_addon": figures.concentration.copy(),
            "delta": book.quantity * unit[:, 1] * price,
            "gamma": book.quantity * unit[:, 2] * price * price / 100.0,
            "vega": book.quantity * unit[:, 3] / 100.0,
        },
        columns=ATTRIBUTION_COLUMNS, copy=False,
    )


KEY_COLUMNS = ("account_id", "netting_set")
# Distance-to-liquidation columns are +inf where no move of that kind can liquidate the set;
# the margin level is +inf (or -inf) where a set has no requirement at all (no position).
MAY_BE_INFINITE = ("liq_move_dominant", "liq_move_uniform", "liq_sigmas_dominant",
                   "liq_sigmas_uniform", "liquidation_price", "margin_level")


def check_finite(margins: pd.DataFrame | dict[str, np.ndarray],
                 sets: pd.DataFrame | None = None) -> None:
    """No NaN anywhere, and no infinity in any margin figure; ``sets`` (``account_id,
    netting_set`` of each row) when the table has no ids of its own."""
    for column in margins:
        values = np.asarray(margins[column])
        if values.dtype.kind != "f":
            continue
        bad = np.isnan(values) if column in MAY_BE_INFINITE else ~np.isfinite(values)
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            keys = margins if sets is None else sets
            account, netting_set = (np.asarray(keys[c])[row] for c in KEY_COLUMNS)
            raise ModelError(f"non-finite {column} for account {account!r} "
                             f"netting set {netting_set!r}")
