"""Validated entry point of the tail kernels: VaR, ES and Euler contributions of netting sets.

The definitions (losses positive, VaR, Acerbi-Tasche ES, the floating-point rule for
``P(L <= l)``, Euler contributions) are written once in :mod:`riskmodel.measures.kernels`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from numbers import Integral, Real
from typing import Literal, NamedTuple

import numpy as np
from numpy.typing import ArrayLike

from riskmodel.measures.kernels import (
    SCREEN_LIMIT,
    netting_set_tail,
    prefer_parallel,
    quantise_rows,
)


@dataclass(frozen=True, eq=False)
class TailResult:
    """Tail measures of every netting set and the Euler contribution of every position.

    Attributes
    ----------
    var : ndarray of float64, shape (n_sets,)
        Value at risk at the confidence level (a loss: positive = loss).
    es : ndarray of float64, shape (n_sets,)
        Expected shortfall (Acerbi-Tasche tail mean).
    contribution : ndarray of float64, shape (n_positions,)
        Euler contribution of each position to ``model_measure`` of its netting set; the
        contributions of a set sum to its measure (to rounding).
    model_measure : ndarray of float64, shape (n_sets,)
        The measure the model uses: ``es`` if ``measure == "es"``, else ``var``.
    measure : {"es", "var"}
        Which measure ``model_measure`` and ``contribution`` refer to.
    confidence : float
        Confidence level ``a``.

    The arrays are read-only.
    """

    var: np.ndarray
    es: np.ndarray
    contribution: np.ndarray
    model_measure: np.ndarray
    measure: str
    confidence: float


def _int_array(name: str, values: ArrayLike) -> np.ndarray:
    arr = np.asarray(values)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got shape {arr.shape}")
    if arr.size and not np.issubdtype(arr.dtype, np.integer):
        raise ValueError(f"{name} must hold integers, got dtype {arr.dtype}")
    return np.ascontiguousarray(arr, dtype=np.int64)


def _float_array(name: str, values: ArrayLike, ndim: int, finite: bool = True) -> np.ndarray:
    arr = np.asarray(values)
    if arr.ndim != ndim:
        raise ValueError(f"{name} must be {ndim}-D, got shape {arr.shape}")
    if arr.size and not (
        np.issubdtype(arr.dtype, np.floating) or np.issubdtype(arr.dtype, np.integer)
    ):
        raise ValueError(f"{name} must be real numbers, got dtype {arr.dtype}")
    arr = np.ascontiguousarray(arr, dtype=np.float64)
    if finite and not np.isfinite(arr).all():
        bad = np.unravel_index(np.flatnonzero(~np.isfinite(arr))[0], arr.shape)
        where = bad[0] if ndim == 1 else tuple(int(i) for i in bad)
        raise ValueError(f"{name} must be finite, found {arr[bad]} at index {where}")
    return arr


def _validate_book(
    instrument_pnl: ArrayLike,
    indptr: ArrayLike,
    instrument_index: ArrayLike,
    quantity: ArrayLike,
    pnl_checked: bool = False,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    pnl = _float_array("instrument_pnl", instrument_pnl, ndim=2, finite=not pnl_checked)
    n_instruments, n_scenarios = pnl.shape
    if n_scenarios < 1:
        raise ValueError("instrument_pnl must have at least one scenario (column)")
    ptr = _int_array("indptr", indptr)
    idx = _int_array("instrument_index", instrument_index)
    qty = _float_array("quantity", quantity, ndim=1)
    if ptr.size < 1:
        raise ValueError("indptr must have n_sets + 1 >= 1 entries")
    if ptr[0] != 0:
        raise ValueError(f"indptr[0] must be 0, got {ptr[0]}")
    steps = np.diff(ptr)
    if (steps < 0).any():
        s = int(np.flatnonzero(steps < 0)[0])
        raise ValueError(
            f"indptr must be non-decreasing, but indptr[{s + 1}] = {ptr[s + 1]} "
            f"< indptr[{s}] = {ptr[s]}"
        )
    if ptr[-1] != idx.size:
        raise ValueError(f"indptr[-1] = {ptr[-1]} must equal len(instrument_index) = {idx.size}")
    if qty.size != idx.size:
        raise ValueError(f"quantity has {qty.size} entries but instrument_index has {idx.size}")
    if idx.size:
        out_of_range = (idx < 0) | (idx >= n_instruments)
        if out_of_range.any():
            p = int(np.flatnonzero(out_of_range)[0])
            raise ValueError(
                f"instrument_index[{p}] = {idx[p]} is outside [0, {n_instruments}) "
                "(rows of instrument_pnl)"
            )
    return pnl, ptr, idx, qty


def _validate_weights(weights: ArrayLike | None, n_scenarios: int) -> np.ndarray:
    """Normalised weights, or an empty array (the kernels' uniform fast path) for None."""
    if weights is None:
        return np.empty(0, dtype=np.float64)
    w = _float_array("weights", weights, ndim=1)
    if w.size != n_scenarios:
        raise ValueError(f"weights has {w.size} entries but there are {n_scenarios} scenarios")
    if (w < 0).any():
        i = int(np.flatnonzero(w < 0)[0])
        raise ValueError(f"weights must be non-negative, found {w[i]} at index {i}")
    total = w.sum()
    if not total > 0:
        raise ValueError("weights must have a positive sum")
    return w / total


def _validate_confidence(confidence: float) -> float:
    if isinstance(confidence, bool) or not isinstance(confidence, Real):
        raise ValueError(f"confidence must be a real number in (0, 1), got {confidence!r}")
    a = float(confidence)
    if not 0.0 < a < 1.0:  # also rejects NaN
        raise ValueError(f"confidence must lie strictly between 0 and 1, got {confidence!r}")
    return a


@dataclass(frozen=True)
class QuantisedScreen:
    """A scenario P&L matrix as 16-bit codes times a scale per row, each row's coding slack and
    largest ``|P&L|``: the tail kernels' first pass over a quarter of the bytes
    (:func:`quantised_screen`, :mod:`riskmodel.measures.screening`)."""

    codes: np.ndarray
    scale: np.ndarray
    slack: np.ndarray
    row_bound: np.ndarray

    def scaled32(self, instrument_index: np.ndarray, quantity: np.ndarray) -> np.ndarray:
        """Each position's quantity times its row's scale, rounded to float32: the first
        pass's factors of the codes (below float32's range by ``SCREEN_LIMIT``, or the set
        gets no first pass)."""
        with np.errstate(over="ignore"):
            return (quantity * self.scale[instrument_index]).astype(np.float32)


def quantised_screen(instrument_pnl: np.ndarray) -> QuantisedScreen | None:
    """The coarse first pass of ``instrument_pnl`` (finite, float64), for
    :func:`tail_measures`; None where a value is too large for float32 to bound its error (or
    is not a number)."""
    pnl = np.ascontiguousarray(instrument_pnl, dtype=np.float64)
    if pnl.size == 0:
        return None
    codes = np.empty(pnl.shape, dtype=np.int16)
    scale, slack, bound = (np.empty(pnl.shape[0]) for _ in range(3))
    quantise_rows(pnl, codes, scale, slack, bound)
    if not bound.max() < SCREEN_LIMIT:
        return None
    return QuantisedScreen(codes, scale, slack, bound)


class _TailInputs(NamedTuple):
    """The arguments of :func:`tail_measures`, validated and in the kernel's dtypes."""

    pnl: np.ndarray  # float64, (n_instruments, n_scenarios), C-contiguous
    indptr: np.ndarray  # int64, (n_sets + 1,)
    instrument_index: np.ndarray  # int64, (n_positions,)
    quantity: np.ndarray  # float64, (n_positions,)
    weights: np.ndarray  # normalised, (n_scenarios,); (0,) for uniform
    confidence: float
    use_es: bool
    screen: QuantisedScreen | None


def _tail_inputs(
    instrument_pnl: ArrayLike, indptr: ArrayLike, instrument_index: ArrayLike,
    quantity: ArrayLike, confidence: float, measure: str, weights: ArrayLike | None,
    chunk_size: int, progress: object, pnl_checked: bool, screen: QuantisedScreen | None,
) -> _TailInputs:
    """Validate and normalise the arguments of :func:`tail_measures` (same names and meaning);
    raises its ValueErrors."""
    if measure not in ("es", "var"):
        raise ValueError(f"measure must be 'es' or 'var', got {measure!r}")
    if isinstance(chunk_size, bool) or not isinstance(chunk_size, Integral) or chunk_size < 1:
        raise ValueError(f"chunk_size must be a positive integer, got {chunk_size!r}")
    if progress is not None and not callable(progress):
        raise ValueError(f"progress must be callable or None, got {progress!r}")
    a = _validate_confidence(confidence)
    pnl, ptr, idx, qty = _validate_book(instrument_pnl, indptr, instrument_index, quantity,
                                        pnl_checked)
    w = _validate_weights(weights, pnl.shape[1])
    if screen is not None and screen.codes.shape != pnl.shape:
        raise ValueError(f"screen has shape {screen.codes.shape}, instrument_pnl {pnl.shape}")
    return _TailInputs(pnl, ptr, idx, qty, w, a, measure == "es", screen)


def _run_chunks(
    inputs: _TailInputs, chunk_size: int, progress: Callable[[int, int], object] | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Run the kernel on ``chunk_size`` netting sets at a time.

    Returns
    -------
    var, es : ndarray of float64, shape (n_sets,)
    contribution : ndarray of float64, shape (n_positions,)
    """
    pnl, ptr, idx, qty, w, a, use_es, screen = inputs
    n_sets = ptr.size - 1
    var = np.empty(n_sets)
    es = np.empty(n_sets)
    contribution = np.empty(idx.size)
    for s0 in range(0, n_sets, chunk_size):
        s1 = min(n_sets, s0 + chunk_size)
        p0, p1 = ptr[s0], ptr[s1]
        # the chunk's CSR slice, re-based to its first position; outputs are written in place
        first_pass = None
        if screen is not None and not w.size:
            first_pass = (screen.codes, screen.scaled32(idx[p0:p1], qty[p0:p1]),
                          screen.row_bound, screen.slack)
        netting_set_tail(
            pnl, ptr[s0 : s1 + 1] - p0, idx[p0:p1], qty[p0:p1], w, a, use_es,
            var[s0:s1], es[s0:s1], contribution[p0:p1], screen=first_pass,
            # one kernel per book
            parallel=prefer_parallel(idx.size * pnl.shape[1], weighted=bool(w.size)),
        )
        if progress is not None:
            progress(s1, n_sets)
    return var, es, contribution


def tail_measures(
    instrument_pnl: ArrayLike, indptr: ArrayLike, instrument_index: ArrayLike,
    quantity: ArrayLike, confidence: float, measure: Literal["es", "var"] = "es",
    weights: ArrayLike | None = None, chunk_size: int = 4096,
    progress: Callable[[int, int], object] | None = None, pnl_checked: bool = False,
    screen: QuantisedScreen | None = None,
) -> TailResult:
    """VaR, ES and Euler contributions of every netting set of a sparse (CSR) book.

    The loss of netting set ``s`` in scenario ``i`` is
    ``L_s,i = -sum_k quantity[k] * instrument_pnl[instrument_index[k], i]`` over its positions
    ``k in indptr[s]:indptr[s+1]``. Definitions: see :mod:`riskmodel.measures.kernels`.

    Parameters
    ----------
    instrument_pnl : array_like of float, shape (n_instruments, n_scenarios)
        P&L per unit quantity of each unique instrument in each scenario.
    indptr : array_like of int, shape (n_sets + 1,)
        CSR row pointer: netting set ``s`` holds positions ``indptr[s]:indptr[s+1]``.
        ``indptr[0] == 0``, non-decreasing, ``indptr[-1] == n_positions``.
    instrument_index : array_like of int, shape (n_positions,)
        Row of ``instrument_pnl`` of each position.
    quantity : array_like of float, shape (n_positions,)
        Signed quantity of each position. Several rows of the same instrument in a set net.
    confidence : float
        Confidence level ``a``, strictly between 0 and 1 (e.g. 0.99).
    measure : {"es", "var"}, default "es"
        The model measure: the contributions are Euler shares of it.
    weights : array_like of float, shape (n_scenarios,), optional
        Non-negative scenario probability weights with a positive sum (normalised here).
        Uniform when omitted.
    chunk_size : int, default 4096
        Netting sets per kernel call. The kernel never holds more than a few scenario-length
        buffers per thread, whatever the chunk; the chunk bounds the work between ``progress``
        calls and the size of the re-based CSR slice. Results do not depend on it (bitwise).
    progress : callable, optional
        Called as ``progress(n_done, n_total)`` (netting sets) after each chunk.
    pnl_checked : bool, default False
        The caller has already checked that ``instrument_pnl`` is finite (the engine checks its
        scenario P&L once when it is built, then margins many partitions against it): skip the
        scan of the whole matrix on every call. Shapes and the book are still validated.
    screen : QuantisedScreen, optional
        :func:`quantised_screen` of ``instrument_pnl``: uniform tails are found from a first
        pass over 16-bit codes of the P&L that streams a quarter of the bytes, and only the
        candidate scenarios' losses are formed in float64. The results are bitwise the same
        as without it; it pays off from a few ten thousand netting sets per matrix (building
        it is a pass over the matrix).

    Returns
    -------
    TailResult
        ``var``, ``es`` and ``model_measure`` of shape (n_sets,), ``contribution`` of shape
        (n_positions,).

    Raises
    ------
    ValueError
        On a wrong shape or dtype, non-finite values, an inconsistent CSR structure, an
        instrument index out of range, invalid weights, a confidence outside (0, 1), an unknown
        measure or a non-positive chunk size. The message names the argument and the value.

    Examples
    --------
    Two instruments, four scenarios, one netting set long 1 of the first and short 2 of the
    second: its losses are ``[0, 4, -2.5, 4]``, so at 50% the VaR is the 2nd smallest loss and
    the ES the mean of the worst half:

    >>> import numpy as np
    >>> pnl = np.array([[1.0, -2.0, 0.5, -4.0], [0.5, 1.0, -1.0, 0.0]])
    >>> r = tail_measures(pnl, [0, 2], [0, 1], [1.0, -2.0], confidence=0.5)
    >>> r.var, r.es
    (array([0.]), array([4.]))
    """
    inputs = _tail_inputs(instrument_pnl, indptr, instrument_index, quantity, confidence,
                          measure, weights, chunk_size, progress, pnl_checked, screen)
    var, es, contribution = _run_chunks(inputs, int(chunk_size), progress)
    for arr in (var, es, contribution):
        arr.setflags(write=False)
    return TailResult(var=var, es=es, contribution=contribution,
                      model_measure=es if inputs.use_es else var, measure=measure,
                      confidence=inputs.confidence)
