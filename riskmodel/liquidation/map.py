"""The venue liquidation map and liquidation cascades, on a finished ``eod`` run.

A risk team asks two questions of the whole book: how many netting sets cross into margin call
and into liquidation if an underlying (or every underlying together) moves by ``x`` at once, and
what happens when the liquidations themselves move the price.

The map
-------
For each *scope* (one underlying's price series, and ``ALL`` for every one together; an
implied-vol index is no underlying and stays still) and each
move ``x`` of the grid (``[liquidation] map_points`` evenly spaced relative moves in
``[-map_range, +map_range]``), every netting set is re-valued instantly:

* ``equity(x) = equity + P&L(x)``, the set's positions repriced at the moved prices through
  :func:`riskmodel.pricing.revaluation.scenario_pnl`, as ``eod`` reprices its scenarios (once
  per unique instrument, then the sparse book; options fully revalued, instantly: no time
  decay, implied vol by the spot-vol rule or its index held still; coin collateral revalued);
* the requirements scale with the price level the way the distance to liquidation assumes
  (:mod:`riskmodel.margin.liquidation_distance`): ``MM(x) = MM (1 + w x)`` and ``IM(x) = IM
  (1 + w x)``, ``w`` the share of the set's gross notional on the moved underlying(s) (``w = 1``
  for ``ALL``). Every margin component of a linear book (ES or VaR, stress, notional floors,
  spread add-ons) is proportional to the price level, so the rule is exact for ``ALL`` and for a
  set on a single underlying; for one underlying of several it is the pro-rata approximation.
  Constant parts (``min_initial_margin``) and the convex concentration add-on are scaled too.
* status at the move as the margin policy sets it: ``liquidation`` when ``equity(x) < MM(x)``,
  ``margin_call`` when ``equity(x) < IM(x)`` otherwise.

Columns of the map (one row per scope and move): ``scope, move, price`` (the moved price of a
single underlying; NaN for ``ALL``), ``n_margin_call, n_liquidation`` (sets in each status at the
move), ``new_margin_call, new_liquidation`` (of those, sets not in that status or worse now),
``notional_liquidated`` (gross notional at the moved prices of the sets in liquidation, as an
``eod`` run at those prices counts it: price x multiplier, the face value of inverse contracts
whatever the price, options at their delta at the moved spot; the map assumes a liquidated set
is closed in full, the venue's worst case; the run's own partial orders are
``liquidation_orders.parquet``) and ``penalties`` (``[liquidation] penalty_rates`` on it).

Cascades
--------
A stress tool, not a forecast. Starting from a move vector ``x0``, every set in liquidation is
closed in full; its closing trades move the price of each underlying by a square-root impact
``I_f = sign(flow_f) Y sigma_f sqrt(|flow_f| / ADV_f)``, where ``flow_f`` is the signed notional
traded on ``f`` at the current prices (selling a long is negative), ``sigma_f`` the one-day
relative volatility of the run and ``ADV_f`` the average daily volume (``[liquidation]
impact_adv``, else ``[addons.adv]``; an underlying with no ADV gets no impact, with a note). The
moves are re-evaluated, ``x = x0 + I(flow(x))``, until no new set is liquidated and the prices
stand still (to ``1e-12``): the number of rounds, the extra price move per underlying and the
extra sets liquidated are reported.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp

from riskmodel.config import RunConfig
from riskmodel.engine.store import read_run
from riskmodel.errors import InputDataError
from riskmodel.margin.policy import position_rates
from riskmodel.pricing.options import option_greeks, option_price
from riskmodel.pricing.revaluation import (
    COLLATERAL_KIND,
    INVERSE_KINDS,
    model_codes,
    scenario_pnl,
    unit_greeks,
    years_to_expiry,
)
from riskmodel.scenarios.scenario_set import ScenarioSet

ALL = "ALL"
MAP_COLUMNS = ["scope", "move", "price", "n_margin_call", "n_liquidation", "new_margin_call",
               "new_liquidation", "notional_liquidated", "penalties"]
PRICE_TOL = 1e-12


@dataclass
class MapBook:
    """A finished run's netting sets as the map needs them.

    ``positions`` (CSR by set: ``indptr``), the instrument of each position (``instrument``:
    row in ``instruments``), ``equity, initial_margin, maintenance_margin`` and ``status`` per
    set, ``instruments`` (``instrument_id, kind, underlying, multiplier, factor``), ``factors``
    and their ``spot``, ``return_kinds`` and ``sigma_rel``.
    """

    sets: pd.DataFrame
    indptr: np.ndarray
    instrument: np.ndarray
    quantity: np.ndarray
    instruments: pd.DataFrame
    factors: list[str]
    spot: pd.Series
    return_kinds: dict[str, str]
    sigma_rel: pd.Series
    config: RunConfig
    valuation_time: pd.Timestamp = pd.Timestamp(0)

    @property
    def n_sets(self) -> int:
        return len(self.sets)

    def matrix(self) -> sp.csr_matrix:
        """Sparse netting set x instrument quantities."""
        return sp.csr_matrix((self.quantity, self.instrument, self.indptr),
                             shape=(self.n_sets, len(self.instruments)))

    def underlyings(self) -> list[str]:
        """The factors some position is priced on (an implied-vol index is a factor of the
        run but no underlying: the map never moves it)."""
        held = set(self.instruments["factor"].to_numpy()[np.unique(self.instrument)])
        return [f for f in self.factors if f in held]

    def position_factor(self) -> np.ndarray:
        codes = pd.Index(self.factors).get_indexer(self.instruments["factor"])
        return codes[self.instrument]


def load_map_book(run_dir: str | Path) -> MapBook:
    """Read the run's margins, netted positions and stored instruments and factors."""
    run_dir = Path(run_dir)
    run = read_run(run_dir)
    try:
        margins = pd.read_parquet(run_dir / "margins.parquet",
                                  columns=["account_id", "netting_set", "equity",
                                           "initial_margin", "maintenance_margin", "status"])
        positions = pd.read_parquet(run_dir / "attribution.parquet",
                                    columns=["account_id", "netting_set", "instrument_id",
                                             "quantity"])
    except (OSError, KeyError, ValueError) as exc:
        raise InputDataError(f"{run_dir}: cannot read the run's margin tables: {exc}") from None
    table = run.instrument_table
    instruments = table[table["pnl_row"] >= 0].reset_index(drop=True)
    # attribution is written set by set in the margins' order: CSR offsets from the keys
    key = pd.MultiIndex.from_arrays([positions["account_id"], positions["netting_set"]])
    set_keys = pd.MultiIndex.from_arrays([margins["account_id"], margins["netting_set"]])
    set_code = set_keys.get_indexer(key)
    if (set_code < 0).any() or (np.diff(set_code) < 0).any():
        raise InputDataError(f"{run_dir}: attribution.parquet and margins.parquet disagree on "
                             "the netting sets (not written by the same run?)")
    indptr = np.zeros(len(margins) + 1, dtype=np.int64)
    np.cumsum(np.bincount(set_code, minlength=len(margins)), out=indptr[1:])
    instrument = pd.Index(instruments["instrument_id"]).get_indexer(positions["instrument_id"])
    factors = run.market.factors
    return MapBook(
        sets=margins.reset_index(drop=True),
        indptr=indptr,
        instrument=instrument.astype(np.int64),
        quantity=positions["quantity"].to_numpy(np.float64),
        instruments=instruments,
        factors=list(factors["factor"]),
        spot=pd.Series(factors["price"].to_numpy(np.float64), index=factors["factor"]),
        return_kinds=dict(zip(factors["factor"], factors["return_kind"])),
        sigma_rel=pd.Series(factors["sigma_rel"].to_numpy(np.float64), index=factors["factor"]),
        config=run.config(),
        valuation_time=run.market.valuation_time,
    )


def move_grid(config: RunConfig) -> np.ndarray:
    """The map's relative moves, ``map_points`` from ``-map_range`` to ``+map_range``."""
    policy = config.liquidation
    grid = np.linspace(-policy.map_range, policy.map_range, policy.map_points)
    grid[np.isclose(grid, 0.0, atol=1e-15)] = 0.0
    return grid


class _Revaluation:
    """Equity, requirements and statuses of every set at moved prices."""

    def __init__(self, book: MapBook) -> None:
        self.book = book
        self.matrix = book.matrix()
        self.by_instrument = self.matrix.tocsc()  # a scope's instruments are its columns
        self.instrument_factor = pd.Index(book.factors).get_indexer(book.instruments["factor"])
        self.equity = book.sets["equity"].to_numpy(np.float64)
        self.im = book.sets["initial_margin"].to_numpy(np.float64)
        self.mm = book.sets["maintenance_margin"].to_numpy(np.float64)
        self.set_of = np.repeat(np.arange(book.n_sets), np.diff(book.indptr))
        self.factor_of = book.position_factor()
        instruments = book.instruments
        self.is_collateral = (instruments["kind"] == COLLATERAL_KIND).to_numpy()
        # the penalty rate of each instrument and the sum of |quantity| of each set's
        # positions in it (CSC)
        self.rate = position_rates(book.config.liquidation.penalty_rates,
                                   instruments["kind"].to_numpy(),
                                   instruments["underlying"].to_numpy())
        self.size = sp.csr_matrix((np.abs(book.quantity), book.instrument, book.indptr),
                                  shape=self.matrix.shape).tocsc()
        self.delta_now = unit_greeks(instruments, book.spot, book.valuation_time)[
            "delta"].to_numpy(np.float64)
        # the options' pricing inputs, for their deltas at moved prices (unit_greeks' own)
        option = np.flatnonzero((instruments["kind"] == "option").to_numpy())
        self.option_row = np.full(len(instruments), -1, dtype=np.int64)
        self.option_row[option] = np.arange(len(option))
        self.option_args: tuple[np.ndarray, ...] = ()
        self.option_coin, self.option_multiplier = np.zeros(0, dtype=bool), np.zeros(0)
        if len(option):
            opts = instruments.iloc[option]
            self.option_args = (
                model_codes(opts), (opts["option_type"] == "call").to_numpy(),
                opts["strike"].to_numpy(np.float64), years_to_expiry(opts, book.valuation_time),
                opts["implied_vol"].to_numpy(np.float64), opts["rate"].to_numpy(np.float64),
                opts["carry"].to_numpy(np.float64))
            self.option_coin = (opts["settlement"] == "coin").to_numpy()
            self.option_multiplier = opts["multiplier"].to_numpy(np.float64)
        self.unit_now = np.abs(self.unit_exposure(np.arange(len(instruments)),
                                                  np.zeros((len(book.factors), 1)))[:, 0])
        gross = self.unit_now[book.instrument] * np.abs(book.quantity)
        # gross notional of each set on each factor, sparse (n_sets x n_factors): the shares
        # that scale the requirements
        shape = (book.n_sets, len(book.factors))
        self.gross = sp.csr_matrix((gross, (self.set_of, self.factor_of)), shape=shape)
        total = np.asarray(self.gross.sum(axis=1)).ravel()
        self.share = (sp.diags(np.divide(1.0, total, out=np.zeros_like(total),
                                         where=total > 0)) @ self.gross).tocsc()
        self.gross_total = total
        self.penalty_total = np.asarray(self.size @ (self.unit_now * self.rate)).ravel()
        self.gross = self.gross.tocsc()
        self.status_now = self.status(self.equity, self.im, self.mm)

    def unit_exposure(self, columns: np.ndarray, moves: np.ndarray) -> np.ndarray:
        """``dV/dP x P`` per unit of the instruments ``columns`` at the prices ``spot (1 +
        x)`` of each column of ``moves`` (n_factors, n_moves), shape (n_columns, n_moves): the
        signed notional the margin table of an eod run at those prices counts (price x
        multiplier for linear kinds, the face value of inverse contracts whatever the price,
        delta x price for options, repriced at the moved spot with their quoted vols); 0 for
        collateral."""
        spot = self.book.spot.loc[self.book.factors].to_numpy(np.float64)
        price = (spot[:, None] * (1.0 + moves))[self.instrument_factor[columns]]
        kinds = self.book.instruments["kind"].to_numpy()[columns]
        # linear kinds: dV/dP is the multiplier at any price; inverse contracts: multiplier /
        # P, so dV/dP x P is the face value (unit_greeks)
        out = self.delta_now[columns, None] * price
        inverse = np.isin(kinds, INVERSE_KINDS)
        out[inverse] = (self.delta_now[columns] * spot[self.instrument_factor[columns]]
                        )[inverse, None]
        options = np.flatnonzero(kinds == "option")
        if len(options):  # delta at every moved spot at once, as unit_greeks computes it
            rows = self.option_row[columns[options]]
            moved = price[options]
            shape = moved.shape
            args = [np.broadcast_to(a[rows, None], shape).ravel() for a in self.option_args]
            delta = option_greeks(args[0], args[1], moved.ravel(), *args[2:]).delta
            coin = np.broadcast_to(self.option_coin[rows, None], shape).ravel()
            if coin.any():  # coin-settled: delta - V / P
                premium = option_price(args[0], args[1], moved.ravel(), *args[2:])
                delta = delta - np.where(coin, premium / moved.ravel(), 0.0)
            out[options] = self.option_multiplier[rows, None] * delta.reshape(shape) * moved
        out[self.is_collateral[columns]] = 0.0
        return out

    @staticmethod
    def status(equity: np.ndarray, im: np.ndarray, mm: np.ndarray) -> np.ndarray:
        """2 liquidation, 1 margin call, 0 otherwise (the margin policy's ordering)."""
        return np.where(equity < mm, 2, np.where(equity < im, 1, 0)).astype(np.int8)

    def set_pnl(self, moves: np.ndarray) -> np.ndarray:
        """P&L of every set for each column of ``moves`` (n_factors, n_moves) of relative
        price moves, shape (n_sets, n_moves): instruments repriced once, then the book (only
        the columns of the instruments whose factor moved)."""
        moved_factors = np.flatnonzero(np.any(moves != 0, axis=1))
        columns = np.flatnonzero(np.isin(self.instrument_factor, moved_factors))
        if len(columns) == 0:
            return np.zeros((self.book.n_sets, moves.shape[1]))
        factors = [self.book.factors[i] for i in moved_factors]
        spot = self.book.spot.loc[factors].to_numpy(np.float64)
        log = np.array([self.book.return_kinds[f] == "log" for f in factors])
        shocks = np.where(log[:, None], np.log1p(moves[moved_factors]),
                          moves[moved_factors] * spot[:, None])
        scen = ScenarioSet(np.ascontiguousarray(shocks.T), tuple(factors),
                           np.arange(moves.shape[1]), "liquidation-map", 0)
        unit = scenario_pnl(self.book.instruments.iloc[columns], scen, self.book.spot,
                            self.book.return_kinds, self.book.valuation_time,
                            self.book.config.implied_vol)
        return np.asarray(self.by_instrument[:, columns] @ unit)

    def evaluate(self, moves: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(status codes, equity) per set and move column."""
        equity = self.equity[:, None] + self.set_pnl(moves)
        scale = 1.0 + _by_factor(self.share, moves)  # requirement x (1 + w x)
        return self.status(equity, self.im[:, None] * scale, self.mm[:, None] * scale), equity

    def closing(self, moves: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(gross notional, penalty) of closing each set in full at each column of moved
        prices, each of shape (n_sets, n_moves): the notional at the moved prices (only the
        instruments whose factor moved change it; an inverse contract's face never does)."""
        n = moves.shape[1]
        gross = np.repeat(self.gross_total[:, None], n, axis=1)
        penalty = np.repeat(self.penalty_total[:, None], n, axis=1)
        moved_factors = np.flatnonzero(np.any(moves != 0, axis=1))
        columns = np.flatnonzero(np.isin(self.instrument_factor, moved_factors))
        if len(columns):
            change = np.abs(self.unit_exposure(columns, moves)) - self.unit_now[columns, None]
            both = np.asarray(self.size[:, columns]
                              @ np.hstack([change, change * self.rate[columns, None]]))
            gross += both[:, :n]
            penalty += both[:, n:]
        return gross, penalty


def _by_factor(per_factor: sp.csc_matrix, moves: np.ndarray) -> np.ndarray:
    """``per_factor @ moves`` (n_sets, n_moves) over the factors that move only."""
    moved = np.flatnonzero(np.any(moves != 0, axis=1))
    if len(moved) == 0:
        return np.zeros((per_factor.shape[0], moves.shape[1]))
    return np.asarray(per_factor[:, moved] @ moves[moved])


def liquidation_map(book: MapBook, scopes: Sequence[str] | None = None) -> pd.DataFrame:
    """The map (module docstring), one row per scope and move, :data:`MAP_COLUMNS`."""
    reval = _Revaluation(book)
    grid = move_grid(book.config)
    underlyings = book.underlyings()
    scopes = list(scopes) if scopes is not None else [*underlyings, ALL]
    frames = []
    for scope in scopes:
        moves = np.zeros((len(book.factors), len(grid)))
        if scope == ALL:
            moves[[book.factors.index(f) for f in underlyings]] = grid
        else:
            moves[book.factors.index(scope)] = grid
        status, _ = reval.evaluate(moves)
        liquidated = status == 2
        gross, penalty = reval.closing(moves)
        frames.append(pd.DataFrame({
            "scope": scope, "move": grid,
            "price": (float(book.spot[scope]) * (1.0 + grid) if scope != ALL
                      else np.full(len(grid), np.nan)),
            "n_margin_call": (status == 1).sum(axis=0),
            "n_liquidation": liquidated.sum(axis=0),
            "new_margin_call": ((status == 1) & (reval.status_now[:, None] < 1)).sum(axis=0),
            "new_liquidation": (liquidated & (reval.status_now[:, None] < 2)).sum(axis=0),
            "notional_liquidated": np.where(liquidated, gross, 0.0).sum(axis=0),
            "penalties": np.where(liquidated, penalty, 0.0).sum(axis=0),
        }))
    out = pd.concat(frames, ignore_index=True)[MAP_COLUMNS]
    for col in ("n_margin_call", "n_liquidation", "new_margin_call", "new_liquidation"):
        out[col] = out[col].astype(np.int64)
    return out


@dataclass(frozen=True)
class CascadeResult:
    """``rounds`` of impact; ``initial_move`` and ``final_move`` per factor (Series);
    ``liquidated_initial`` and ``liquidated_final`` sets (counts) and the boolean mask of sets
    liquidated at the end; ``notes`` (underlyings without ADV)."""

    rounds: int
    initial_move: pd.Series
    final_move: pd.Series
    liquidated_initial: int
    liquidated_final: int
    liquidated: np.ndarray
    notes: tuple[str, ...]

    @property
    def extra_move(self) -> pd.Series:
        return self.final_move - self.initial_move

    @property
    def extra_liquidations(self) -> int:
        return self.liquidated_final - self.liquidated_initial


class Cascade:
    """Liquidation cascades on one book (module docstring); build once, run many moves."""

    def __init__(self, book: MapBook) -> None:
        self.book = book
        self.reval = _Revaluation(book)
        policy = book.config.liquidation
        adv_table = {**book.config.addon_adv, **policy.impact_adv}
        self.adv = np.array([adv_table.get(f, np.nan) for f in book.factors])
        self.sigma = book.sigma_rel.loc[book.factors].to_numpy(np.float64)
        self.coefficient = policy.impact_coefficient
        self.max_rounds = policy.cascade_max_rounds
        self.traded = np.unique(book.instrument)  # the instruments some set holds

    def impact(self, liquidated: np.ndarray, moves: np.ndarray) -> tuple[np.ndarray, list[str]]:
        """Relative price impact per factor of closing the ``liquidated`` sets in full at the
        prices ``spot x (1 + moves)``: the flow is the closing trade's signed notional at
        those prices, ``-q x dV/dP x P`` (delta-equivalent for options, the face value for
        inverse contracts; collateral is not traded)."""
        closing = liquidated[self.reval.set_of]
        unit = np.zeros(len(self.book.instruments))
        unit[self.traded] = self.reval.unit_exposure(self.traded, moves[:, None])[:, 0]
        flow = np.bincount(self.reval.factor_of[closing],
                           -self.book.quantity[closing] * unit[self.book.instrument[closing]],
                           minlength=len(self.book.factors)).astype(np.float64)
        return self.flow_impact(flow)

    def flow_impact(self, flow: np.ndarray) -> tuple[np.ndarray, list[str]]:
        """Relative price impact per factor of a signed notional ``flow`` per factor (selling
        is negative), shape (n_factors,): ``sign(flow) Y sigma sqrt(|flow| / ADV)``, and the
        notes naming the underlyings with flow but no ADV (no impact)."""
        no_adv = np.isnan(self.adv) & (flow != 0)
        notes = [f"no ADV for {self.book.factors[i]!r}: its liquidation flow moves no price "
                 "(set [liquidation.impact_adv])" for i in np.flatnonzero(no_adv)]
        ratio = np.divide(np.abs(flow), self.adv, out=np.zeros_like(flow),
                          where=~np.isnan(self.adv))
        return np.sign(flow) * self.coefficient * self.sigma * np.sqrt(ratio), notes

    def run(self, initial_move: np.ndarray) -> CascadeResult:
        """Iterate ``x = x0 + I(flow(x))`` from ``x0 = initial_move`` (per factor)."""
        x0 = np.asarray(initial_move, dtype=np.float64)
        x = x0.copy()
        liquidated = self.reval.evaluate(x[:, None])[0][:, 0] == 2
        first = int(liquidated.sum())
        rounds = 0
        notes: list[str] = []
        while rounds < self.max_rounds:
            impact, notes = self.impact(liquidated, x)
            x_next = np.maximum(x0 + impact, -1.0 + 1e-12)  # a price cannot fall to zero
            now = self.reval.evaluate(x_next[:, None])[0][:, 0] == 2
            now |= liquidated  # a liquidated set stays closed
            moved = np.max(np.abs(x_next - x), initial=0.0)
            if (now == liquidated).all() and moved <= PRICE_TOL:
                break
            rounds += 1  # a round that moved a price or liquidated another set
            x, liquidated = x_next, now
        index = pd.Index(self.book.factors)
        return CascadeResult(rounds, pd.Series(x0, index=index), pd.Series(x, index=index),
                             first, int(liquidated.sum()), liquidated, tuple(notes))


def cascade_table(book: MapBook, scopes: Sequence[str] | None = None) -> pd.DataFrame:
    """A cascade from every move of the map's grid: ``scope, move, rounds,
    liquidated_initial, liquidated_final, extra_liquidations`` and ``extra_move_<factor>``;
    ``table.attrs["notes"]`` lists the underlyings whose flow moved no price (no ADV)."""
    cascade = Cascade(book)
    grid = move_grid(book.config)
    underlyings = book.underlyings()
    scopes = list(scopes) if scopes is not None else [*underlyings, ALL]
    rows = []
    notes: dict[str, None] = {}
    for scope in scopes:
        for x in grid:
            targets = underlyings if scope == ALL else [scope]
            x0 = np.where(np.isin(book.factors, targets), x, 0.0)
            result = cascade.run(x0)
            notes.update(dict.fromkeys(result.notes))
            rows.append({"scope": scope, "move": float(x), "rounds": result.rounds,
                         "liquidated_initial": result.liquidated_initial,
                         "liquidated_final": result.liquidated_final,
                         "extra_liquidations": result.extra_liquidations,
                         **{f"extra_move_{f}": float(v) for f, v in result.extra_move.items()}})
    table = pd.DataFrame(rows)
    table.attrs["notes"] = list(notes)
    return table
