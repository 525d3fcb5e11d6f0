"""The compiled partial-liquidation search (:mod:`riskmodel.liquidation.search_kernels`) over
all the netting sets being liquidated: its inputs as arrays, the sets shared among threads.

:func:`compiled_search` takes the positions of the sets in search order (riskiest first, as
:func:`riskmodel.liquidation.partial.partial_liquidation` sorts them) and returns, per
position, the fraction closed, and per set the margin, the equity and the notional after, with
an outcome code: the sets whose trial margin failed (a horizon the market does not hold, a
non-finite figure) are left to the caller, which runs them through the engine itself (and so
raises what it raises).
"""

from __future__ import annotations

import itertools
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numba
import numpy as np
import pandas as pd

from riskmodel.engine.trials import TrialInputs
from riskmodel.liquidation.search_kernels import liquidate_sets
from riskmodel.portfolio.netting import Book

SLICE_SETS = 16
"""Sets per slice of the search: the workers take slices in turn until none is left."""
NOT_SEARCHED = -1
"""The outcome code of a set the search has not run on (the kernel's codes are >= 0)."""


@dataclass(frozen=True, eq=False)
class SearchRows:
    """The sets to liquidate and their positions in search order.

    ``keys`` (``account_id, netting_set`` per set), ``set_ptr`` (the sets' rows), per row
    ``instrument_id``, ``index`` (row of the market's P&L), ``quantity``, ``unit_notional``
    and the penalty ``rate``; per set ``equity``, ``initial_margin``, ``n_tradeable`` and the
    previous run's model margin (NaN: none)."""

    keys: pd.DataFrame
    set_ptr: np.ndarray
    instrument_id: np.ndarray
    index: np.ndarray
    quantity: np.ndarray
    unit_notional: np.ndarray
    rate: np.ndarray
    equity: np.ndarray
    initial_margin: np.ndarray
    n_tradeable: np.ndarray
    previous: np.ndarray


@dataclass(frozen=True, eq=False)
class SearchResult:
    """Per row the fraction closed; per set ``(margin_after, equity_after,
    notional_closed)`` and the outcome code (0: done; :data:`NOT_SEARCHED` for a set not
    among those searched)."""

    fractions: np.ndarray
    figures: np.ndarray
    code: np.ndarray


def base_book(rows: SearchRows) -> tuple[Book, np.ndarray]:
    """The sets as the engine's netting orders their positions (by instrument id within a
    set), and each search row's position in that book."""
    n_rows = len(rows.index)
    set_of = np.repeat(np.arange(len(rows.keys)), np.diff(rows.set_ptr))
    # the ids ranked as text: a few thousand distinct among the rows, so sorted once each
    codes, names = pd.factorize(rows.instrument_id, use_na_sentinel=False)
    _, rank_of_name = np.unique(np.asarray(names).astype(str), return_inverse=True)
    name_rank = rank_of_name.reshape(-1)[codes]
    order = np.lexsort((name_rank, set_of)) if n_rows else np.zeros(0, np.int64)
    to_book = np.empty(n_rows, dtype=np.int64)
    to_book[order] = np.arange(n_rows)
    positions = pd.DataFrame({"account_id": rows.keys["account_id"].to_numpy()[set_of[order]],
                              "netting_set": rows.keys["netting_set"].to_numpy()[set_of[order]],
                              "instrument_id": rows.instrument_id[order],
                              "quantity": rows.quantity[order]})
    book = Book(sets=rows.keys.reset_index(drop=True), positions=positions,
                indptr=rows.set_ptr.astype(np.int64),
                instrument_index=rows.index[order].astype(np.int64),
                quantity=rows.quantity[order].astype(np.float64))
    return book, to_book


def compiled_search(rows: SearchRows, target: float, chosen: np.ndarray, inputs: TrialInputs,
                    to_book: np.ndarray, threads: int | None = None) -> SearchResult:
    """Run the search for the sets ``chosen`` (their numbers in ``rows``) on ``threads``
    worker threads (default: as many as numba has; module docstring); ``inputs`` are
    :func:`riskmodel.engine.trials.trial_inputs` of :func:`base_book`'s book, ``to_book`` its
    row map. Each set's search is its own, so the results do not depend on the threads."""
    ctx = (inputs.mk, inputs.pol, inputs.pos, inputs.indptr, inputs.account_h,
           inputs.previous, rows.set_ptr.astype(np.int64), to_book,
           np.ascontiguousarray(rows.quantity, dtype=np.float64),
           np.ascontiguousarray(rows.unit_notional, dtype=np.float64),
           np.ascontiguousarray(rows.rate, dtype=np.float64),
           np.ascontiguousarray(rows.equity, dtype=np.float64),
           np.ascontiguousarray(rows.initial_margin, dtype=np.float64),
           rows.n_tradeable.astype(np.int64), float(target))
    n_sets = len(rows.keys)
    fractions = np.zeros(len(rows.quantity))
    figures = np.zeros((n_sets, 3))
    code = np.full(n_sets, NOT_SEARCHED, dtype=np.int64)  # the kernel writes each set's
    size = max(inputs.max_positions, 1)
    chosen = np.ascontiguousarray(chosen, dtype=np.int64)
    threads = max(1, min(threads or numba.get_num_threads(), len(chosen)))

    def run(sets: np.ndarray) -> None:
        liquidate_sets(ctx, sets, inputs.scratch_n, size, fractions, figures, code)

    if threads == 1:
        run(chosen)
        return _searched(SearchResult(fractions, figures, code), chosen)
    # compiled (or loaded from the cache) here first: a numba dispatcher's first call is not
    # safe from two threads at once
    run(np.zeros(0, dtype=np.int64))
    # small slices taken in turn by whichever worker is free, not one fixed share each: a
    # worker whose core is busy with something else (eod's background writes) takes fewer,
    # and none waits for it
    slices = [chosen[i:i + SLICE_SETS] for i in range(0, len(chosen), SLICE_SETS)]
    taken = itertools.count()  # next() is atomic under the GIL
    failed = threading.Event()  # a worker's error stops the others at their next slice

    def worker() -> None:
        try:
            while not failed.is_set() and (i := next(taken)) < len(slices):
                run(slices[i])
        except BaseException:
            failed.set()
            raise

    with ThreadPoolExecutor(threads) as pool:
        for done in [pool.submit(worker) for _ in range(threads)]:
            done.result()
    return _searched(SearchResult(fractions, figures, code), chosen)


def _searched(result: SearchResult, chosen: np.ndarray) -> SearchResult:
    """``result``, once every set of ``chosen`` has an outcome (a set left out would read as
    one needing no order)."""
    if (result.code[chosen] == NOT_SEARCHED).any():
        raise RuntimeError("the liquidation search left sets without an outcome")
    return result
