"""Built-in test portfolios for a backtest run without ``--positions``.

Static books that show how the margin model covers the simplest exposures of every underlying of
the instruments file, each a netting set of its own under the account ``builtin``:

* ``long_<U>`` and ``short_<U>``: one position of unit notional at the first backtest date
  (``|quantity| x multiplier x price = 1``; for an inverse contract, whose multiplier is its
  face value, ``|quantity| x multiplier = 1``) in the underlying's reference instrument: its
  spot instrument if it has one, else the first of its other instruments in file order;
* ``hedge_<U>_<V>``: long ``U``, short ``V`` for consecutive underlyings (in the order they
  first appear in the instruments file), each leg of unit notional at the first backtest date;
* ``straddle_<U>``: a rolling constant-maturity straddle (:class:`RollingStraddle`), long one
  at-the-money European call and one put of :data:`STRADDLE_DAYS` calendar days, for every
  underlying ``U`` of the above whose options can be priced from the price file
  (:func:`straddle_underlyings`): ``U`` is itself a price column with log returns and
  ``[implied_vol] factors`` maps it to an implied-vol index column with log returns (VIX for
  the S&P 500). At each backtest date ``t`` the two options are struck at ``U``'s price at
  ``t``, expire ``STRADDLE_DAYS`` days after ``t`` and are marked at the index's level at ``t``
  (in vol points: VIX 25.42 is a vol of 0.2542, :data:`IV_INDEX_POINTS`); Black-Scholes on the
  spot, rate and carry 0, quote-settled, multiplier 1. The position is fixed over
  ``t .. t + h``; each leg holds ``1 / P_U`` options, ``P_U`` the underlying's price at the
  straddle's first date (the first backtest date with a full ``lookback`` window of ``U`` and
  its index, which may be later than the others' first date), never rebalanced.

Quantities are fixed at the first backtest date's prices (a straddle's at its own first date;
no look-ahead) and never rebalanced. Unit notional makes every amount of the backtest a fraction
of the notional (a VaR of 0.031 is 3.1%). Options of the instruments file are never reference
instruments: a static option position expires during the backtest, which is why option
positions are refused (:func:`riskmodel.backtest.replay.check_supported_instruments`) and the
straddles roll instead; an underlying with options only gets no built-in portfolio.

Underlyings without an implied-vol index get no straddle: its margin would price the vol risk
with the spot-vol rule, but its realised loss needs the implied vol at ``t + h``, which the data
do not hold (a model-made vol there, a filtered volatility say, would test the model against
itself).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from riskmodel.errors import InputDataError
from riskmodel.pricing.revaluation import INVERSE_KINDS, utc

__all__ = [
    "BUILTIN_ACCOUNT",
    "IV_INDEX_POINTS",
    "STRADDLE_DAYS",
    "RollingStraddle",
    "builtin_portfolios",
    "reference_instruments",
    "straddle_underlyings",
]

BUILTIN_ACCOUNT = "builtin"
POSITION_COLUMNS = ["account_id", "netting_set", "instrument_id", "quantity"]

STRADDLE_DAYS = 30
"""Calendar days to expiry of the built-in straddles' options at each backtest date."""
IV_INDEX_POINTS = 100.0
"""Implied-vol indices are quoted in vol points (VIX, VSTOXX, DVOL): the implied vol is
``index / IV_INDEX_POINTS``."""


def reference_instruments(instruments: pd.DataFrame) -> pd.DataFrame:
    """One instrument per underlying: its ``spot`` instrument, else its first other one in file
    order; options are never chosen (an underlying with options only is left out).

    Parameters
    ----------
    instruments : DataFrame with ``instrument_id, kind, underlying, multiplier, factor`` (the
        frame of :func:`riskmodel.io.instruments.load_instruments`).

    Returns
    -------
    DataFrame, one row per underlying in order of first appearance, same columns.
    """
    rows = []
    candidates = instruments[instruments["kind"] != "option"]
    for _, group in candidates.groupby("underlying", sort=False):
        spot = group[group["kind"] == "spot"]
        rows.append((spot if len(spot) else group).iloc[0])
    return pd.DataFrame(rows, columns=instruments.columns).reset_index(drop=True)


def builtin_portfolios(
    instruments: pd.DataFrame, prices: Mapping[str, float] | pd.Series, notional: float = 1.0
) -> pd.DataFrame:
    """Position rows of the built-in portfolios (see the module docstring).

    Parameters
    ----------
    instruments : DataFrame, the loaded instruments (``instrument_id, kind, underlying,
        multiplier, factor``).
    prices : mapping factor -> price at the first backtest date (> 0 for the factors used).
    notional : float, the notional of each leg at that date (> 0).

    Returns
    -------
    DataFrame ``account_id, netting_set, instrument_id, quantity`` (the positions format,
    ready for :func:`riskmodel.portfolio.netting.net_positions`).

    Raises
    ------
    InputDataError
        When an underlying's price at the first date is missing or not positive (a unit
        notional cannot be sized).
    """
    if not notional > 0:
        raise ValueError(f"notional = {notional!r} must be > 0")
    ref = reference_instruments(instruments)
    qty: dict[str, float] = {}
    for _, row in ref.iterrows():
        price = float(prices[row["factor"]])
        if not np.isfinite(price) or price <= 0:
            raise InputDataError(
                f"built-in portfolios: underlying {row['underlying']!r} has no positive price at "
                f"the first backtest date to size a unit notional (value {price!r})"
            )
        per_unit = float(row["multiplier"]) * (1.0 if row["kind"] in INVERSE_KINDS else price)
        qty[row["underlying"]] = notional / per_unit
    instrument_of = dict(zip(ref["underlying"], ref["instrument_id"]))
    underlyings = list(ref["underlying"])
    rows: list[tuple[str, str, str, float]] = []
    for u in underlyings:
        rows.append((BUILTIN_ACCOUNT, f"long_{u}", instrument_of[u], qty[u]))
        rows.append((BUILTIN_ACCOUNT, f"short_{u}", instrument_of[u], -qty[u]))
    for u, v in zip(underlyings, underlyings[1:]):
        name = f"hedge_{u}_{v}"
        rows.append((BUILTIN_ACCOUNT, name, instrument_of[u], qty[u]))
        rows.append((BUILTIN_ACCOUNT, name, instrument_of[v], -qty[v]))
    return pd.DataFrame(rows, columns=POSITION_COLUMNS)


def straddle_underlyings(
    instruments: pd.DataFrame,
    iv_factors: Mapping[str, str],
    price_assets: Collection[str],
    return_kind: Callable[[str], str],
    notes: list[str] | None = None,
) -> list[tuple[str, str]]:
    """The underlyings that get a built-in straddle, with their implied-vol index column.

    An underlying of :func:`reference_instruments` qualifies when it is itself a column of the
    price file (its options are priced on that column), ``iv_factors`` (``[implied_vol]
    factors``) maps it to a column of the price file, and both have log returns (Black-Scholes
    needs a positive spot; the engine moves implied vols by the index's log change). A mapping
    that does not qualify is explained in ``notes``; an underlying without one is skipped
    silently.

    Returns
    -------
    list of ``(underlying, implied-vol column)``, in the order of :func:`reference_instruments`.
    """
    assets = set(price_assets)
    out: list[tuple[str, str]] = []
    for u in reference_instruments(instruments)["underlying"]:
        column = iv_factors.get(u)
        if column is None:
            continue
        why = None
        if u not in assets:
            why = f"the underlying {u!r} is not a price column to price its options on"
        elif column not in assets:
            why = "no such column in the price file"
        elif return_kind(u) != "log" or return_kind(column) != "log":
            why = ("absolute returns (the straddle needs log returns of the underlying and of "
                   "the index)")
        if why is None:
            out.append((u, column))
        elif notes is not None:
            notes.append(f"built-in portfolios: no straddle_{u}: implied_vol.factors.{u} = "
                         f"{column!r}: {why}")
    return out


@dataclass(frozen=True)
class RollingStraddle:
    """A long at-the-money straddle of constant maturity, re-struck at every backtest date.

    Attributes
    ----------
    underlying : str, the underlying and the price column its options are priced on.
    iv_factor : str, its implied-vol index column (``[implied_vol] factors``).
    quantity : float, of each leg (> 0).
    days : float, calendar days to expiry at each backtest date.

    The book holds the two instruments of :meth:`instruments` in the netting set
    :attr:`netting_set` (:meth:`positions`); :meth:`terms_at` gives their terms at a date. The
    replay (:func:`riskmodel.backtest.replay.replay`, ``roll=``) reprices them with those terms
    through the engine's own :func:`~riskmodel.pricing.revaluation.scenario_pnl`, so the margin
    at ``t`` is an ``eod`` run's on a book holding the two options as of ``t``.
    """

    underlying: str
    iv_factor: str
    quantity: float
    days: float = STRADDLE_DAYS

    def __post_init__(self) -> None:
        if not (np.isfinite(self.quantity) and self.quantity > 0):
            raise ValueError(f"quantity = {self.quantity!r} must be > 0")
        if not self.days > 0:
            raise ValueError(f"days = {self.days!r} must be > 0")

    @property
    def netting_set(self) -> str:
        return f"straddle_{self.underlying}"

    @property
    def instrument_ids(self) -> tuple[str, str]:
        """The call's and the put's ids (internal to the backtest)."""
        stem = f"{self.underlying}-ATM{self.days:g}D"
        return f"{stem}-C", f"{stem}-P"

    def instruments(self) -> pd.DataFrame:
        """The two options in the loaded-instruments format, indexed by ``instrument_id``;
        ``strike``, ``expiry`` and ``implied_vol`` are set per date by :meth:`terms_at`."""
        ids = list(self.instrument_ids)
        return pd.DataFrame({
            "instrument_id": ids,
            "kind": "option",
            "underlying": self.underlying,
            "multiplier": 1.0,
            "factor": self.underlying,
            "strike": np.nan,
            "expiry": pd.DatetimeIndex([pd.NaT, pd.NaT], tz="UTC"),
            "option_type": ["call", "put"],
            "implied_vol": np.nan,
            "rate": 0.0,
            "carry": 0.0,
            "settlement": "quote",
            "model": "black_scholes",
        }, index=pd.Index(ids, name="instrument_id"))

    def positions(self) -> pd.DataFrame:
        """Position rows (the positions format): one long leg of each option."""
        return pd.DataFrame([(BUILTIN_ACCOUNT, self.netting_set, i, self.quantity)
                             for i in self.instrument_ids], columns=POSITION_COLUMNS)

    def terms_at(self, used: pd.DataFrame, spot: Mapping[str, float] | pd.Series,
                 valuation_time: pd.Timestamp) -> pd.DataFrame:
        """``used`` with the two options struck at the underlying's price ``spot[underlying]``,
        expiring :attr:`days` calendar days after ``valuation_time`` and marked at the implied
        vol ``spot[iv_factor] / IV_INDEX_POINTS``.

        Raises
        ------
        InputDataError
            When the price or the index level is missing or not positive.
        """
        price, level = float(spot[self.underlying]), float(spot[self.iv_factor])
        if not (np.isfinite(price) and price > 0 and np.isfinite(level) and level > 0):
            raise InputDataError(
                f"{self.netting_set} on {pd.Timestamp(valuation_time).isoformat()}: the "
                f"underlying {self.underlying!r} and its implied-vol index {self.iv_factor!r} "
                f"need positive prices to strike the straddle (value {price!r}, {level!r})")
        mine = used.index.isin(self.instrument_ids)
        out = used.copy()
        out["strike"] = np.where(mine, price, out["strike"].to_numpy(np.float64))
        out["implied_vol"] = np.where(mine, level / IV_INDEX_POINTS,
                                      out["implied_vol"].to_numpy(np.float64))
        expiry = utc(valuation_time) + pd.Timedelta(days=self.days)
        out["expiry"] = pd.to_datetime(out["expiry"], utc=True).mask(mine, expiry)
        return out
