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

The functions here are pure (arrays in, arrays out); :func:`apply_tools` is what the engine
applies to every book, and the facts it returns (how many netting sets each tool bound) go to the
manifest. The stressed observations join the scenario set before the tail
(:mod:`riskmodel.scenarios.stressed`).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from riskmodel.config import RunConfig


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


def floored_margin(model_margin: np.ndarray, long_lookback_margin: np.ndarray
                   ) -> tuple[np.ndarray, np.ndarray]:
    """``max(model, ten-year-lookback model)`` and the mask where the floor bound."""
    bound = long_lookback_margin > model_margin
    return np.where(bound, long_lookback_margin, model_margin), bound


def apply_tools(
    model_margin: np.ndarray,
    floor_margin: np.ndarray | None,
    previous_model_margin: np.ndarray | None,
    config: RunConfig,
) -> tuple[np.ndarray, dict[str, Any]]:
    """The margin base after the floor and the buffer (before stress, add-ons and notional
    floors) and the facts of the tools that bound.

    Parameters
    ----------
    model_margin : ndarray of shape (n_sets,), the model margin (>= 0).
    floor_margin : ndarray of shape (n_sets,) or None, the model margin over the floor's
        longer lookback (None: the floor has no input and does not apply).
    previous_model_margin : ndarray of shape (n_sets,) or None, the previous run's model margin
        (NaN where the set did not exist then).
    config : RunConfig, whose ``anti_procyclicality.tools`` say which tools apply.
    """
    apc = config.anti_procyclicality
    base = model_margin
    info: dict[str, Any] = {"tools": list(apc.tools)}
    if "floor" in apc.tools and floor_margin is not None:
        base, bound = floored_margin(base, floor_margin)
        info["floor"] = {"lookback": apc.floor_lookback, "bound_sets": int(bound.sum())}
    if "buffer" in apc.tools:
        base, released = buffer_margin(base, apc.buffer, previous_model_margin,
                                       apc.release_trigger)
        info["buffer"] = {"buffer": apc.buffer, "release_trigger": apc.release_trigger,
                          "previous_run": previous_model_margin is not None,
                          "applied_sets": int((~released).sum()),
                          "released_sets": int(released.sum())}
    return base, info


def merge_tool_facts(infos: list[dict[str, Any]]) -> dict[str, Any]:
    """The facts of :func:`apply_tools` over several books (partitions, dates): counts summed."""
    if not infos:
        return {}

    def merge(a: Any, b: Any) -> Any:
        if isinstance(a, dict):
            return {k: merge(a[k], b[k]) if k in b else a[k] for k in a}
        if isinstance(a, (int, np.integer)) and not isinstance(a, bool):
            return int(a) + int(b)
        return a

    out = infos[0]
    for info in infos[1:]:
        out = merge(out, info)
    return out
