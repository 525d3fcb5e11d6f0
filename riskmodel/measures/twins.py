"""Plain-numpy twins of the tail kernels: the readable reference the kernels are tested against.

Each twin has the signature of its kernel in :mod:`riskmodel.measures.kernels` and follows the
definition written there (losses positive, VaR the smallest loss with ``P(L <= l) >= a``, ES the
Acerbi-Tasche tail mean, ``count/n >= a`` for uniform weights, ``1 - W(L > l) >= a - WEIGHT_TOL``
for weights). They sort where the kernels select and loop where the kernels run in parallel.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from riskmodel.measures.api import _float_array, _validate_confidence, _validate_weights
from riskmodel.measures.kernels import WEIGHT_TOL


def _var_index(
    values: np.ndarray, counts_or_weights: np.ndarray, confidence: float, weighted: bool
) -> int:
    """Index into the ascending distinct ``values`` of the VaR.

    ``counts_or_weights[j]`` is the number of scenarios (uniform) or their total weight at
    ``values[j]``.
    """
    if weighted:
        # P(L <= v_j) = 1 - (weight strictly above v_j), summed down from the top
        above = np.concatenate((np.cumsum(counts_or_weights[::-1])[::-1][1:], [0.0]))
        p_le = 1.0 - above
        passing = p_le >= confidence - WEIGHT_TOL
    else:
        n = int(counts_or_weights.sum())
        p_le = np.cumsum(counts_or_weights) / n  # count/n in float64, exactly as the rule says
        passing = p_le >= confidence
    hits = np.flatnonzero(passing)
    # the top value always passes in exact arithmetic; guard against rounding anyway
    return int(hits[0]) if hits.size else values.size - 1


def var_es(
    losses: ArrayLike, confidence: float, weights: ArrayLike | None = None
) -> tuple[float, float]:
    """VaR and ES of one loss vector, straight from the definition.

    Parameters
    ----------
    losses : array_like of float, shape (n_scenarios,)
        Scenario losses (positive = loss).
    confidence : float
        Confidence level ``a`` in (0, 1).
    weights : array_like of float, shape (n_scenarios,), optional
        Non-negative scenario weights, normalised here to sum 1. Uniform when omitted.

    Returns
    -------
    var, es : float
        ``VaR = min{l : P(L <= l) >= a}`` and
        ``ES = (sum_{L_i > VaR} w_i L_i + VaR * (P(L <= VaR) - a)) / (1 - a)``.

    Raises
    ------
    ValueError
        On empty or non-finite losses, a confidence outside (0, 1) or invalid weights.

    Examples
    --------
    >>> var_es([4.0, 1.0, 3.0, 2.0], 0.5)  # P(L <= 2) = 2/4; ES = mean of the worst half
    (2.0, 3.5)
    """
    # validated like tail_measures; weights come back normalised, or empty for uniform
    x = _float_array("losses", losses, ndim=1)
    if x.size == 0:
        raise ValueError("losses must hold at least one scenario")
    a = _validate_confidence(confidence)
    w = _validate_weights(weights, x.size)
    return _var_es(x, a, w if w.size else None)


def _var_es(x: np.ndarray, a: float, w: np.ndarray | None) -> tuple[float, float]:
    """:func:`var_es` for float64 losses and already normalised weights (or None: uniform)."""
    values, inverse = np.unique(x, return_inverse=True)
    if w is None:
        n = x.size
        counts = np.bincount(inverse, minlength=values.size).astype(np.float64)
        var = float(values[_var_index(values, counts, a, weighted=False)])
        above = x > var
        p_le = (n - int(above.sum())) / n
        es = (float(np.sum(x[above])) / n + var * (p_le - a)) / (1.0 - a)
    else:
        at_value = np.bincount(inverse, weights=w, minlength=values.size)
        var = float(values[_var_index(values, at_value, a, weighted=True)])
        above = x > var
        p_le = 1.0 - float(np.sum(w[above]))
        es = (float(np.sum(w[above] * x[above])) + var * (p_le - a)) / (1.0 - a)
    return var, es


def netting_set_tail(
    instrument_pnl: np.ndarray,
    indptr: np.ndarray,
    instrument_index: np.ndarray,
    quantity: np.ndarray,
    weights: np.ndarray,
    confidence: float,
    use_es: bool,
    var_out: np.ndarray,
    es_out: np.ndarray,
    contribution_out: np.ndarray,
) -> None:
    """Twin of :func:`riskmodel.measures.kernels.netting_set_tail` (same arguments and outputs)."""
    a = float(confidence)
    n = instrument_pnl.shape[1]
    weighted = weights.size > 0
    for s in range(indptr.size - 1):
        positions = range(indptr[s], indptr[s + 1])
        # the set's loss vector, positions added in CSR order (the kernel's order)
        loss = np.zeros(n)
        for p in positions:
            loss += -quantity[p] * instrument_pnl[instrument_index[p]]
        var, es = _var_es(loss, a, weights if weighted else None)
        var_out[s] = var
        es_out[s] = es

        above = loss > var
        tied = loss == var
        w = weights if weighted else np.full(n, 1.0 / n)
        if weighted and w[tied].sum() == 0.0:
            tie_w = np.full(int(tied.sum()), 1.0)  # degenerate: zero-weight ties, plain mean
        else:
            tie_w = w[tied]
        p_le = 1.0 - w[above].sum() if weighted else (n - int(above.sum())) / n
        for p in positions:
            loss_k = -quantity[p] * instrument_pnl[instrument_index[p]]
            tie = float(np.sum(tie_w * loss_k[tied]) / tie_w.sum())
            if use_es:
                tail = float(np.sum(w[above] * loss_k[above]))
                contribution_out[p] = (tail + (p_le - a) * tie) / (1.0 - a)
            else:
                contribution_out[p] = tie


def netting_set_max_loss(
    instrument_pnl: np.ndarray,
    indptr: np.ndarray,
    instrument_index: np.ndarray,
    quantity: np.ndarray,
    max_out: np.ndarray,
) -> None:
    """Twin of :func:`riskmodel.measures.kernels.netting_set_max_loss`."""
    n = instrument_pnl.shape[1]
    for s in range(indptr.size - 1):
        loss = np.zeros(n)
        for p in range(indptr[s], indptr[s + 1]):
            loss += -quantity[p] * instrument_pnl[instrument_index[p]]
        max_out[s] = loss.max()
