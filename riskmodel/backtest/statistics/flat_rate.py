"""The flat-rate benchmark: the lowest flat rate on gross notional that matches a model's breaches.

A flat-rate margin is ``r N_t`` (``N_t`` the gross notional); a breach on date ``t`` is
``L_t > r N_t`` (strict, as for the model margin). The breach count
``f(r) = b0 + #{t : N_t > 0, L_t / N_t > r}`` is non-increasing and right-continuous in ``r``
(``b0``: dates with ``N_t = 0`` and ``L_t > 0``, breached whatever the rate), so the lowest
rate with no more breaches than the model is an order statistic of ``L_t / N_t``, exact
without a grid (:func:`flat_rate_equivalent`). Comparing its mean margin with the model's says
what risk sensitivity buys at equal coverage.
"""

from __future__ import annotations

from typing import TypedDict

import numpy as np
from numpy.typing import ArrayLike

from riskmodel.backtest.statistics._validation import finite_1d

__all__ = ["FlatRateEquivalent", "flat_rate_equivalent"]


class FlatRateEquivalent(TypedDict):
    """Result of :func:`flat_rate_equivalent` (JSON-ready)."""

    rate: float
    breaches: int
    mean_margin: float


def flat_rate_equivalent(
    realized_loss: ArrayLike, gross_notional: ArrayLike, model_breaches: int
) -> FlatRateEquivalent:
    """Lowest flat rate whose margin ``r * gross_notional`` breaches no more often than the model.

    A breach on date ``t`` is ``L_t > r N_t`` (strict, as for the model margin). With
    ``q_t = L_t / N_t`` for ``N_t > 0``, the breach count
    ``f(r) = b0 + #{t : N_t > 0, q_t > r}`` is non-increasing and right-continuous in ``r``,
    where ``b0`` counts dates with ``N_t = 0`` and ``L_t > 0`` (a zero margin whatever the
    rate: unavoidable breaches). With ``m = model_breaches - b0`` and ``q`` sorted in decreasing
    order, the answer is exact, without a grid:

    * ``r = max(0, q_(m+1))`` (1-based) if ``0 <= m < #{N_t > 0}``: any lower rate breaches on
      at least ``m + 1`` dates. Ties at ``q_(m+1)`` do not breach (strict), so ``breaches`` may
      be below ``model_breaches``;
    * ``r = 0`` if ``m >= #{N_t > 0}``;
    * if ``m < 0`` (more unavoidable breaches than the model's), no rate reaches the target and
      ``r = max(0, max q)`` removes every avoidable breach; ``breaches = b0 > model_breaches``.

    In floating point ``q * N_t`` can round below ``L_t``; the returned rate is then raised by
    a few ulps, to the smallest double whose margin ``rate * N_t`` (as computed) breaches no
    more than the exact rate does.

    Parameters
    ----------
    realized_loss : ndarray of shape (T,), finite.
    gross_notional : ndarray of shape (T,), finite, ``>= 0``.
    model_breaches : int, ``>= 0``, the number of breaches to match (e.g. of the initial margin).

    Returns
    -------
    FlatRateEquivalent
        ``rate``, ``breaches`` (the count at ``rate``) and ``mean_margin = mean_t(rate * N_t)``.
    """
    loss = finite_1d("realized_loss", realized_loss)
    notional = finite_1d("gross_notional", gross_notional)
    if loss.shape != notional.shape:
        raise ValueError(
            f"realized_loss and gross_notional shapes differ: {loss.shape}, {notional.shape}"
        )
    if loss.size == 0:
        raise ValueError("flat_rate_equivalent needs at least one observation")
    if (notional < 0).any():
        i = int(np.flatnonzero(notional < 0)[0])
        raise ValueError(f"gross_notional must be >= 0, found {notional[i]} at index {i}")
    if int(model_breaches) != model_breaches or model_breaches < 0:
        raise ValueError(f"model_breaches = {model_breaches!r} must be a non-negative integer")
    live = notional > 0
    unavoidable = int(np.count_nonzero(~live & (loss > 0)))
    q = np.sort(loss[live] / notional[live])[::-1]
    allowance = int(model_breaches) - unavoidable
    if q.size == 0 or allowance >= q.size:
        rate = 0.0
    elif allowance < 0:
        rate = max(0.0, float(q[0]))
    else:
        rate = max(0.0, float(q[allowance]))
    # r = L_t / N_t rounded to a double may give r * N_t < L_t in floating point, a breach
    # the exact rate would not have: step up by ulps until the margin as computed covers it.
    target = max(int(model_breaches), unavoidable)
    breaches = int(np.count_nonzero(loss > rate * notional))
    for _ in range(64):
        if breaches <= target:
            break
        rate = float(np.nextafter(rate, np.inf))
        breaches = int(np.count_nonzero(loss > rate * notional))
    else:  # pragma: no cover - a few ulps always suffice
        raise RuntimeError("flat_rate_equivalent: rounding correction did not converge")
    return FlatRateEquivalent(
        rate=rate, breaches=breaches, mean_margin=float(np.mean(rate * notional))
    )
