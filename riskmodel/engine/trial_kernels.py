"""The engine's margin of one netting set with some positions resized, in compiled code (numba;
ndarrays, scalars and tuples of them only).

:func:`trial_initial_margin` is :func:`riskmodel.engine.margin_book` with
``detail="initial_margin"`` for one netting set of a book whose positions' quantities have been
changed (some to zero): the same steps on the same numbers in the same order (the set's margin
period of risk, the tail kernels' VaR and ES, the anti-procyclicality floor and buffer, the worst
stress loss of the historical and user scenario sets and of the grid, the stress combination,
the liquidity add-on, the notional floors and the initial margin), so that it returns the bits
``margin_book`` returns for that reduced book (tests compare them on many books and
configurations). It is what lets a partial liquidation (:mod:`riskmodel.liquidation`) run its
whole search for a set in compiled code. :mod:`riskmodel.engine.trials` builds its inputs from
a market, a book and a configuration, and decides which books it serves (the others go through
``margin_book`` itself).

The inputs, built once per liquidation:

* ``mk``: the priced market, per margin period of risk (index ``hx`` into ``horizons``):
  ``(horizons, pnl, row_bound, floor_pnl, stress, stress_h, grid_unit, grid_weight,
  factor_code)``; ``pnl``, ``row_bound``, ``floor_pnl``, ``grid_unit`` and ``grid_weight`` are
  tuples with one entry per horizon, ``stress`` the historical and user scenario blocks of every
  horizon in the order the engine reduces them, ``stress_h`` the horizon index of each (-1: a
  placeholder).
* ``pol``: ``(confidence, use_es, use_floor, grid_on, stress_mode, stress_weight, buffer_on,
  buffer, release_trigger, min_initial_margin)``; ``stress_mode`` 0 report, 1 max, 2 blend.
* ``pos``: per position of the base book (CSR order): ``(row, horizon, unit_delta, price,
  is_collateral, spread, maintenance_rate, initial_floor_rate)``.
"""

from __future__ import annotations

import numpy as np

from riskmodel.kernel_cache import njit
from riskmodel.measures.kernels import uniform_rank
from riskmodel.measures.losses import SCEN_BLOCK_MIN, accumulate_loss, threshold_block_size
from riskmodel.measures.stress_kernels import grid_one, worst_one
from riskmodel.measures.trial_tail import (
    EXACT,
    FORMED,
    WITH_REST,
    narrow_subset,
    rest_subset,
    trial_tail,
)

MODE_REPORT, MODE_MAX, MODE_BLEND = 0, 1, 2


@njit(cache=True)
def tail_scratch(n, n_positions):
    """Scratch for the tails of ``n`` scenarios at most: ``(loss, block_max, work, cand_val,
    cand_idx, eq_idx)``, an ``approx`` vector and the reduced set's ``(index, quantity, kept)``
    arrays for ``n_positions`` positions."""
    nb = n // SCEN_BLOCK_MIN + 2
    tails = (np.empty(n), np.empty(nb), np.empty(nb), np.empty(n), np.empty(n, dtype=np.int64),
             np.empty(n, dtype=np.int64))
    book = (np.empty(n_positions, dtype=np.int64), np.empty(n_positions),
            np.empty(n_positions, dtype=np.int64))
    return tails, np.empty(n), book


@njit(cache=True, inline="always")
def sized(tails, n):
    """The tail scratch cut to ``n`` scenarios (the kernels read the length of ``loss``)."""
    nb = n // SCEN_BLOCK_MIN + 2
    return (tails[0][:n], tails[1][:nb], tails[2][:nb], tails[3][:n], tails[4][:n],
            tails[5][:n])


@njit(cache=True, inline="always")
def reduced_set(quantity, pos, p0, p1, account_h, book):
    """The positions ``p0:p1`` at the trial ``quantity`` (one per position) as the engine's
    netting keeps them (a quantity netting to zero is dropped), into ``book = (index,
    quantity, kept)``; returns ``(count, horizon)``, the horizon the longest of theirs and of
    the account's (``riskmodel.margin.tables.set_horizons``)."""
    rows, horizon = pos[0], pos[1]
    index, qty, kept = book
    count = 0
    h = account_h
    for p in range(p0, p1):
        q = quantity[p - p0]
        if abs(q) > 1e-12 * abs(q) and q != 0.0:  # net_positions' rule for one row
            index[count] = rows[p]
            qty[count] = q
            kept[count] = p
            count += 1
            h = horizon[p] if horizon[p] > h else h
    return count, h


@njit(cache=True, inline="always")
def horizon_index(horizons, h):
    for x in range(horizons.size):
        if horizons[x] == h:
            return x
    return -1


@njit(cache=True, inline="always")
def stress_loss(mk, pol, hx, index, qty, count):
    """The worst stress loss (>= 0) of the reduced set on horizon ``hx``
    (``riskmodel.engine.stress.book_stress``): each scenario block in order, then the grid, a
    later one winning only when strictly worse; the stress kernels' per-set functions."""
    worst = 0.0
    stress, stress_h = mk[4], mk[5]
    indptr = np.zeros(2, dtype=np.int64)
    indptr[1] = count
    out = np.empty(1)
    arg = np.empty(1, dtype=np.int64)
    for b in range(len(stress)):
        if stress_h[b] == hx:
            worst_one(stress[b], indptr, index, qty, 0, out, arg)
            worst = out[0] if out[0] > worst else worst
    if pol[3]:
        grid_one(mk[6][hx], mk[7][hx], indptr, index, qty, mk[8], 0, out)
        worst = out[0] if out[0] > worst else worst
    return worst


@njit(cache=True, inline="always")
def _apc_base(measure, floor_measure, previous, pol):
    """``riskmodel.margin.procyclicality.apply_tools`` for one set: ``max(measure, 0)``, then
    the floor, then the buffer against the previous run's model margin."""
    base = measure if measure >= 0.0 else 0.0
    if pol[2]:
        floor = floor_measure if floor_measure >= 0.0 else 0.0
        base = floor if floor > base else base
    if pol[6]:
        released = False
        if np.isfinite(previous) and previous > 0:
            released = base / previous - 1.0 > pol[8]
        base = base if released else base * (1.0 + pol[7])
    return base


@njit(cache=True, inline="always")
def _initial_margin(base, stress, pos, kept, qty, count, pol):
    """The policy's initial margin (``riskmodel.margin.policy.policy_columns`` with the
    add-ons of ``riskmodel.margin.addons``, concentration charge zero): the margin base with
    stress per mode, plus the liquidity add-on, floored by the notional floors."""
    mode, weight = pol[4], pol[5]
    if mode == MODE_MAX:
        ws = weight * stress
        base = base if base >= ws else ws
    elif mode == MODE_BLEND:
        base = (1.0 - weight) * base + weight * stress
    unit_delta, price, collateral = pos[2], pos[3], pos[4]
    spread, maintenance_rate, floor_rate = pos[5], pos[6], pos[7]
    addons = 0.0
    maintenance_floor = 0.0
    initial_charge = 0.0
    for t in range(count):
        p = kept[t]
        notional = 0.0 if collateral[p] else abs(qty[t] * unit_delta[p] * price[p])
        addons += 0.5 * spread[p] * notional + 0.0
        maintenance_floor += notional * maintenance_rate[p]
        initial_charge += notional * floor_rate[p]
    min_im = pol[9]
    initial_floor = min_im if min_im >= initial_charge else initial_charge
    initial_floor = initial_floor if initial_floor >= maintenance_floor else maintenance_floor
    top = base + addons
    return top if top >= initial_floor else initial_floor


@njit(cache=True)
def trial_initial_margin(mk, pol, pos, p0, p1, account_h, previous, quantity, rest, rest_max,
                         rest_hx, changed, scratch, subset, n_sub):
    """The engine's initial margin of netting set ``p0:p1`` (positions of ``pos``) at the trial
    ``quantity`` (one per position; module docstring).

    ``rest`` (with its block maxima ``rest_max``) is the exact loss, on horizon ``rest_hx``, of
    the set's positions other than position ``changed`` at these quantities (-1: none), which
    the tail reuses: directly when ``changed`` is dropped, as the screen of
    :func:`riskmodel.measures.trial_tail.tail_with_rest` otherwise. ``scratch`` is
    :func:`tail_scratch`'s; ``subset[:n_sub]`` (``n_sub >= 0``) the scenarios that screen
    holds (:func:`rest_screen` for ``changed`` at most as large as when it was formed, or
    :func:`narrow_screen` for sizes between two, the trial's among them). Returns the initial
    margin (0 for a set closed entirely), or -1 when the set needs a horizon the market does
    not hold.
    """
    tails, approx, book = scratch
    count, h = reduced_set(quantity, pos, p0, p1, account_h, book)
    if count == 0:
        return 0.0
    hx = horizon_index(mk[0], h)
    if hx < 0:
        return -1.0
    index, qty, kept = book
    pnl = mk[1][hx]
    n = pnl.shape[1]
    confidence, use_es = pol[0], pol[1]
    k = uniform_rank(n, confidence)
    bs = threshold_block_size(n, n - k + 1)
    here = sized(tails, n)
    # typed variables, not literals: every call below shares one compiled trial_tail
    exact = np.int64(EXACT)
    mode, changed_row, nq = exact, np.int64(0), 0.0
    if rest_hx == hx and changed >= 0 and quantity[changed - p0] == 0.0:
        mode = np.int64(FORMED)  # the rest is the reduced set's loss itself
    elif rest_hx == hx and changed >= 0 and bs > 0:
        mode, changed_row, nq = np.int64(WITH_REST), pos[0][changed], -quantity[changed - p0]
    var, es = trial_tail(mode, pnl, index, qty, count, confidence, k, bs, here, rest[:n],
                         rest_max, changed_row, nq, mk[2][hx], approx[:n], subset, n_sub)
    measure = es if use_es else var
    floor_measure = 0.0
    if pol[2]:
        floor = mk[3][hx]
        nf = floor.shape[1]
        kf = uniform_rank(nf, confidence)
        fvar, fes = trial_tail(exact, floor, index, qty, count, confidence, kf,
                               threshold_block_size(nf, nf - kf + 1), sized(tails, nf),
                               rest[:nf], rest_max, changed_row, nq, mk[2][hx], approx[:nf],
                               subset, np.int64(-1))
        floor_measure = fes if use_es else fvar
    stress = stress_loss(mk, pol, hx, index, qty, count)
    base = _apc_base(measure, floor_measure, previous, pol)
    return _initial_margin(base, stress, pos, kept, qty, count, pol)


@njit(cache=True)
def form_rest(mk, pol, pos, p0, p1, account_h, quantity, changed, scratch, rest, rest_max):
    """The exact loss of set ``p0:p1`` at ``quantity`` without position ``changed``, on the
    horizon of the set with it, into ``rest`` and its block maxima ``rest_max`` (what
    :func:`trial_initial_margin` reuses while only ``changed`` moves); returns that horizon's
    index (-1: none)."""
    tails, _, book = scratch
    count, h = reduced_set(quantity, pos, p0, p1, account_h, book)
    hx = horizon_index(mk[0], h)
    if count == 0 or hx < 0:
        return -1
    index, qty, kept = book
    others = 0  # the set's positions in order, the changed one left out
    for t in range(count):
        if kept[t] != changed:
            index[others] = index[t]
            qty[others] = qty[t]
            others += 1
    pnl = mk[1][hx]
    n = pnl.shape[1]
    k = uniform_rank(n, pol[0])
    accumulate_loss(pnl, index, qty, 0, others, rest[:n], rest_max,
                    threshold_block_size(n, n - k + 1))
    return hx


@njit(cache=True, inline="always")
def _screened_set(mk, pol, pos, p0, p1, account_h, quantity, changed, rest_hx, book):
    """The set at ``quantity`` reduced into ``book``, for the screens of position ``changed``:
    ``(count, hx, m)``, the horizon ``hx`` -1 where no screen applies (no position left,
    another horizon than the rest's, or ``changed`` closed), ``m`` the tail's scenarios."""
    count, h = reduced_set(quantity, pos, p0, p1, account_h, book)
    hx = horizon_index(mk[0], h)
    if count == 0 or hx < 0 or hx != rest_hx or changed < 0 or quantity[changed - p0] == 0.0:
        return count, -1, 0
    n = mk[1][hx].shape[1]
    return count, hx, n - uniform_rank(n, pol[0]) + 1


@njit(cache=True)
def rest_screen(mk, pol, pos, p0, p1, account_h, quantity, changed, rest, rest_hx, scratch,
                subset):
    """The scenarios every trial of the set at ``quantity`` with position ``changed`` at most
    as large as now can take as candidates (:func:`riskmodel.measures.trial_tail.rest_subset`),
    into ``subset``; returns their count, or -1 where there is no such screen (the trials then
    screen every scenario)."""
    tails, approx, book = scratch
    count, hx, m = _screened_set(mk, pol, pos, p0, p1, account_h, quantity, changed, rest_hx,
                                 book)
    if hx < 0:
        return -1
    pnl = mk[1][hx]
    n = pnl.shape[1]
    bs = threshold_block_size(n, m)
    if bs <= 0:
        return -1  # no screen in the trials either: the exact pass
    index, qty, _ = book
    here = sized(tails, n)
    return rest_subset(pnl, index, qty, count, m, bs, rest[:n], pos[0][changed],
                       -quantity[changed - p0], mk[2][hx], approx[:n], here[1], here[2],
                       subset)


@njit(cache=True)
def narrow_screen(mk, pol, pos, p0, p1, account_h, quantity, changed, nq_other, rest, rest_hx,
                  scratch, subset, n_sub):
    """:func:`rest_screen`'s ``subset[:n_sub]`` narrowed to the trials whose position
    ``changed`` lies between its size in ``quantity`` (the larger) and the one whose
    ``-quantity`` is ``nq_other``
    (:func:`riskmodel.measures.trial_tail.narrow_subset`); returns the new count (``n_sub``
    where the screen does not apply)."""
    if n_sub < 0:
        return n_sub
    tails, approx, book = scratch
    count, hx, m = _screened_set(mk, pol, pos, p0, p1, account_h, quantity, changed, rest_hx,
                                 book)
    if hx < 0:
        return n_sub
    pnl = mk[1][hx]
    index, qty, _ = book
    return narrow_subset(pnl, index, qty, count, m, rest[:pnl.shape[1]], pos[0][changed],
                         -quantity[changed - p0], nq_other, mk[2][hx], tails[0], approx,
                         subset, n_sub)
