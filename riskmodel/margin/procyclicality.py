"""Anti-procyclicality (APC) tools of EMIR Article 28 (Commission Delegated Regulation 153/2013).

Three tools, selectable in ``[anti_procyclicality]`` (``tools = [...]``, any combination):

* ``buffer`` (Art. 28(1)(a)): margin = model margin x (1 + ``buffer``), ``buffer`` >= 25%, a
  buffer that may be run down when margins rise sharply. With the previous run's model margin
  (``eod --previous-run DIR``), a netting set whose model margin rose by more than
  ``release_trigger`` (relative) since then has its buffer released: its margin is the model
  margin alone that day. Without a previous run the buffer always applies.
* ``stressed_weight`` (Art. 28(1)(b)): stressed observations (the named stress windows listed in
  ``stressed_windows``) join the scenario set with ``stressed_weight`` (>= 25%) of the
  probability in total, the ordinary scenarios sharing the rest; VaR and ES use the weighted
  definitions (exact in the tail kernels).
* ``floor`` (Art. 28(1)(c)): margin >= the margin of the same model with a ``floor_lookback``
  (default 2,520 returns, ten years of business days) lookback.

The functions here are pure (arrays in, arrays out); the run wires them in and reports in its
manifest how many netting sets each tool bound.
"""

from __future__ import annotations

import numpy as np

from riskmodel.scenarios.scenario_set import ScenarioSet


def buffer_margin(
    model_margin: np.ndarray,
    buffer: float,
    previous_model_margin: np.ndarray | None,
    release_trigger: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Buffered margin and the mask of netting sets whose buffer was released.

    Parameters
    ----------
    model_margin : ndarray of shape (n_sets,), today's model margin (>= 0).
    buffer : float, the buffer as a fraction of the model margin (>= 0.25 under EMIR).
    previous_model_margin : ndarray of shape (n_sets,) or None; NaN for a set that did not exist
        then (its buffer applies).
    release_trigger : float, relative rise of the model margin that releases the buffer.

    Returns
    -------
    (margin, released) : ndarrays of shape (n_sets,), float and bool.
    """
    released = np.zeros(model_margin.shape, dtype=bool)
    if previous_model_margin is not None:
        prev = np.asarray(previous_model_margin, dtype=np.float64)
        known = np.isfinite(prev) & (prev > 0)
        rise = np.zeros(model_margin.shape)
        rise[known] = model_margin[known] / prev[known] - 1.0
        released = known & (rise > release_trigger)
    margin = np.where(released, model_margin, model_margin * (1.0 + buffer))
    return margin, released


def with_stressed_observations(
    scenarios: ScenarioSet, stressed: ScenarioSet, stressed_weight: float
) -> ScenarioSet:
    """Append ``stressed`` to ``scenarios`` with ``stressed_weight`` of the probability.

    The ordinary scenarios keep their relative weights and share ``1 - stressed_weight``; the
    stressed ones share ``stressed_weight`` equally.
    """
    if stressed.factors != scenarios.factors:
        raise ValueError("stressed observations must cover the same factors in the same order")
    if not 0.0 < stressed_weight < 1.0:
        raise ValueError(f"stressed_weight = {stressed_weight!r} must be in (0, 1)")
    n, m = scenarios.n_scenarios, stressed.n_scenarios
    base = scenarios.weights if scenarios.weights is not None else np.full(n, 1.0 / n)
    weights = np.concatenate([base * (1.0 - stressed_weight), np.full(m, stressed_weight / m)])
    return ScenarioSet(
        shocks=np.vstack([scenarios.shocks, stressed.shocks]),
        factors=scenarios.factors,
        labels=np.concatenate([scenarios.labels.astype(object), stressed.labels.astype(object)]),
        kind=scenarios.kind,
        horizon=scenarios.horizon,
        weights=weights,
        provenance={**scenarios.provenance, "stressed_observations": m,
                    "stressed_weight": stressed_weight},
    )


def floored_margin(model_margin: np.ndarray, long_lookback_margin: np.ndarray
                   ) -> tuple[np.ndarray, np.ndarray]:
    """``max(model, ten-year-lookback model)`` and the mask where the floor bound."""
    bound = long_lookback_margin > model_margin
    return np.where(bound, long_lookback_margin, model_margin), bound
