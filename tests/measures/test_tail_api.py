"""tail_measures: validation, chunking, progress, result object and bitwise determinism."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import numba
import numpy as np
import pytest

from riskmodel.measures import TailResult, tail_measures, var_es
from riskmodel.measures.api import quantised_screen
from riskmodel.measures.kernels import quantise_rows
from riskmodel.measures.losses import accumulate_loss
from riskmodel.measures.screening import screen_eps


def make_book(seed=0, n_sets=300, n_scen=1500, n_instr=40, max_pos=8):
    rng = np.random.default_rng(seed)
    pnl = rng.standard_normal((n_instr, n_scen)) * rng.uniform(0.5, 2.0, (n_instr, 1))
    n_pos = rng.integers(0, max_pos + 1, n_sets)
    indptr = np.concatenate(([0], np.cumsum(n_pos)))
    idx = rng.integers(0, n_instr, indptr[-1])
    qty = rng.normal(0.0, 10.0, indptr[-1])
    return pnl, indptr, idx, qty


BOOK = make_book()


def assert_bitwise_equal(r1: TailResult, r2: TailResult):
    for name in ("var", "es", "contribution", "model_measure"):
        a, b = getattr(r1, name), getattr(r2, name)
        assert a.tobytes() == b.tobytes(), name


# ---------------------------------------------------------------------------------------------
# Result object


def test_result_shapes_and_model_measure():
    pnl, indptr, idx, qty = BOOK
    es = tail_measures(pnl, indptr, idx, qty, 0.99)
    var = tail_measures(pnl, indptr, idx, qty, 0.99, measure="var")
    assert es.var.shape == es.es.shape == es.model_measure.shape == (indptr.size - 1,)
    assert es.contribution.shape == (idx.size,)
    assert es.measure == "es" and var.measure == "var" and es.confidence == 0.99
    np.testing.assert_array_equal(es.model_measure, es.es)
    np.testing.assert_array_equal(var.model_measure, var.var)
    np.testing.assert_array_equal(es.var, var.var)
    np.testing.assert_array_equal(es.es, var.es)
    with pytest.raises(ValueError):
        es.var[0] = 1.0  # read-only
    with pytest.raises(AttributeError):
        es.var = None  # frozen


def test_matches_var_es_per_set():
    pnl, indptr, idx, qty = BOOK
    r = tail_measures(pnl, indptr, idx, qty, 0.975)
    for s in range(0, indptr.size - 1, 17):
        loss = np.zeros(pnl.shape[1])
        for p in range(indptr[s], indptr[s + 1]):
            loss -= qty[p] * pnl[idx[p]]
        v, e = var_es(loss, 0.975)
        assert r.var[s] == pytest.approx(v, rel=1e-12, abs=1e-12)
        assert r.es[s] == pytest.approx(e, rel=1e-12, abs=1e-12)


def test_accepts_lists_ints_and_non_contiguous_input():
    pnl, indptr, idx, qty = BOOK
    ref = tail_measures(pnl, indptr, idx, qty, 0.99)
    fortran = np.asfortranarray(pnl)
    strided = np.zeros((pnl.shape[0], 2 * pnl.shape[1]))
    strided[:, ::2] = pnl
    for p in (fortran, strided[:, ::2]):
        assert_bitwise_equal(tail_measures(p, list(indptr), idx.astype(np.int32), qty, 0.99), ref)
    r = tail_measures(np.array([[1, -2, 3, 0]]), [0, 1], [0], [2], 0.5)  # integer P&L and qty
    assert r.var[0] == -2.0 and r.es[0] == 2.0  # losses -2, 4, -6, 0: worst half 4, 0


def test_weights_are_normalised():
    pnl, indptr, idx, qty = BOOK
    w = np.random.default_rng(1).random(pnl.shape[1])
    r1 = tail_measures(pnl, indptr, idx, qty, 0.99, weights=w)
    r2 = tail_measures(pnl, indptr, idx, qty, 0.99, weights=w * 1024.0)  # exact rescaling
    assert_bitwise_equal(r1, r2)


def test_empty_book():
    r = tail_measures(np.zeros((2, 10)), [0], [], [], 0.99)
    assert r.var.shape == r.es.shape == (0,) and r.contribution.shape == (0,)


# ---------------------------------------------------------------------------------------------
# Validation


@pytest.mark.parametrize(
    "change, match",
    [
        (dict(instrument_pnl=np.zeros(5)), "instrument_pnl must be 2-D"),
        (dict(instrument_pnl=np.zeros((3, 0))), "at least one scenario"),
        (dict(instrument_pnl=np.array([[1.0, np.nan]] * 3)), "instrument_pnl must be finite"),
        (dict(instrument_pnl=np.array([[1.0, np.inf]] * 3)), "instrument_pnl must be finite"),
        (dict(instrument_pnl=np.array([["a", "b"]] * 3)), "instrument_pnl must be real"),
        (dict(indptr=[1, 2, 3]), r"indptr\[0\] must be 0"),
        (dict(indptr=[0, 2, 1, 3]), "non-decreasing"),
        (dict(indptr=[0, 1, 2]), r"indptr\[-1\] = 2 must equal len\(instrument_index\) = 3"),
        (dict(indptr=[0.0, 1.0, 3.0]), "indptr must hold integers"),
        (dict(indptr=[]), "n_sets \\+ 1"),
        (dict(instrument_index=[0, 3, 1]), r"instrument_index\[1\] = 3 is outside \[0, 3\)"),
        (dict(instrument_index=[0, -1, 1]), r"instrument_index\[1\] = -1"),
        (dict(quantity=[1.0, 2.0]), "quantity has 2 entries"),
        (dict(quantity=[1.0, np.nan, 2.0]), "quantity must be finite"),
        (dict(confidence=1.0), "confidence must lie strictly between 0 and 1"),
        (dict(confidence=0.0), "confidence must lie strictly between 0 and 1"),
        (dict(confidence=float("nan")), "confidence"),
        (dict(confidence="0.99"), "confidence must be a real number"),
        (dict(confidence=True), "confidence must be a real number"),
        (dict(measure="cvar"), "measure must be 'es' or 'var'"),
        (dict(weights=np.ones(3)), "weights has 3 entries"),
        (dict(weights=-np.ones(4)), "weights must be non-negative"),
        (dict(weights=np.zeros(4)), "positive sum"),
        (dict(weights=np.array([1.0, np.nan, 1.0, 1.0])), "weights must be finite"),
        (dict(chunk_size=0), "chunk_size must be a positive integer"),
        (dict(chunk_size=2.5), "chunk_size must be a positive integer"),
        (dict(progress="yes"), "progress must be callable"),
    ],
)
def test_validation_errors(change, match):
    args = dict(
        instrument_pnl=np.arange(12.0).reshape(3, 4),
        indptr=[0, 1, 3],
        instrument_index=[0, 1, 2],
        quantity=[1.0, -1.0, 2.0],
        confidence=0.9,
    )
    args.update(change)
    with pytest.raises(ValueError, match=match):
        tail_measures(**args)


@pytest.mark.parametrize(
    "args, match",
    [
        (([], 0.9), "at least one scenario"),
        (([1.0, np.nan], 0.9), "losses must be finite"),
        (([[1.0, 2.0]], 0.9), "losses must be 1-D"),
        (([1.0, 2.0], 1.5), "confidence"),
        (([1.0, 2.0], 0.9, [1.0]), "weights has 1 entries"),
        (([1.0, 2.0], 0.9, [-1.0, 2.0]), "non-negative"),
    ],
)
def test_var_es_validation(args, match):
    with pytest.raises(ValueError, match=match):
        var_es(*args)


# ---------------------------------------------------------------------------------------------
# Chunking, progress, determinism


def test_progress_reports_every_chunk():
    pnl, indptr, idx, qty = BOOK
    calls = []
    tail_measures(
        pnl, indptr, idx, qty, 0.99, chunk_size=128, progress=lambda d, t: calls.append((d, t))
    )
    assert calls == [(128, 300), (256, 300), (300, 300)]


@pytest.mark.parametrize("weighted", [False, True])
def test_bitwise_independent_of_chunk_size(weighted):
    pnl, indptr, idx, qty = BOOK
    w = np.random.default_rng(3).random(pnl.shape[1]) if weighted else None
    ref = tail_measures(pnl, indptr, idx, qty, 0.99, weights=w, chunk_size=4096)
    for chunk in (1, 7, 64, 299):
        assert_bitwise_equal(
            tail_measures(pnl, indptr, idx, qty, 0.99, weights=w, chunk_size=chunk), ref
        )


@pytest.mark.skipif(numba.config.NUMBA_NUM_THREADS < 2, reason="needs 2 numba threads")
def test_bitwise_independent_of_thread_count_in_process():
    pnl, indptr, idx, qty = BOOK
    before = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        one = tail_measures(pnl, indptr, idx, qty, 0.99)
        numba.set_num_threads(2)
        two = tail_measures(pnl, indptr, idx, qty, 0.99)
    finally:
        numba.set_num_threads(before)
    assert_bitwise_equal(one, two)


_SCRIPT = textwrap.dedent(
    """
    import sys
    import numpy as np
    from riskmodel.measures import tail_measures
    rng = np.random.default_rng(42)
    pnl = rng.standard_normal((30, 2500))
    n_pos = rng.integers(0, 9, 400)
    indptr = np.concatenate(([0], np.cumsum(n_pos)))
    idx = rng.integers(0, 30, indptr[-1])
    qty = rng.normal(0.0, 5.0, indptr[-1])
    w = rng.random(2500)
    r = tail_measures(pnl, indptr, idx, qty, 0.99)
    rw = tail_measures(pnl, indptr, idx, qty, 0.975, measure="var", weights=w)
    np.savez(sys.argv[1], var=r.var, es=r.es, c=r.contribution, wvar=rw.var, wes=rw.es,
             wc=rw.contribution)
    """
)


def test_bitwise_independent_of_numba_num_threads(tmp_path):
    """The same book in fresh processes with NUMBA_NUM_THREADS=1 and =2: identical bits."""
    # compile (and cache) in this process first, so the subprocesses load the cached kernel
    tail_measures(*make_book(n_sets=3, n_scen=50), 0.99)
    tail_measures(*make_book(n_sets=3, n_scen=50), 0.99, weights=np.ones(50))
    results = {}
    for threads in (1, 2):
        out = tmp_path / f"threads{threads}.npz"
        env = dict(os.environ, NUMBA_NUM_THREADS=str(threads))
        subprocess.run([sys.executable, "-c", _SCRIPT, str(out)], env=env, check=True, timeout=300)
        results[threads] = np.load(out)
    for key in results[1].files:
        assert results[1][key].tobytes() == results[2][key].tobytes(), key


def _screen_cases():
    rng = np.random.default_rng(17)
    for n_scen, a, scale, integer in [(10_000, 0.99, 1.0, False), (2_000, 0.975, 1e4, False),
                                      (4_000, 0.9, 1.0, True), (1_500, 0.99, 1e-20, False),
                                      (3_000, 0.99, 1e20, True), (800, 0.99, 1.0, False)]:
        n_instr, n_sets = 40, 300
        pnl = rng.standard_normal((n_instr, n_scen)) * rng.uniform(0.1, 10, (n_instr, 1))
        if integer:  # many ties at the VaR
            pnl = np.round(pnl)
        pnl *= scale
        sizes = rng.integers(0, 16, n_sets)
        indptr = np.concatenate(([0], np.cumsum(sizes))).astype(np.int64)
        idx = rng.integers(0, n_instr, indptr[-1]).astype(np.int64)
        qty = rng.normal(0, 5, indptr[-1])
        # a perfect hedge (every loss 0) and a near hedge (losses of rounding size)
        idx[indptr[1]:indptr[1] + 2], qty[indptr[1]:indptr[1] + 2] = 3, [2.0, -2.0]
        if sizes[2] >= 2:
            idx[indptr[2]:indptr[2] + 2], qty[indptr[2]:indptr[2] + 2] = 5, [1.0, -1.0 + 1e-12]
        yield pnl, indptr, idx, qty, a
    # losses that float32 cannot tell apart: 1000 + i * 1e-7 fall ~600 to a float32 step, so
    # the float32 order says nothing inside a step and the float64 pass must decide the tail
    n_scen = 6_000
    base = 1000.0 + rng.permutation(n_scen) * 1e-7
    pnl = np.vstack([-base, -base[::-1], rng.standard_normal(n_scen) * 1e-5])
    indptr = np.array([0, 1, 3, 6], dtype=np.int64)
    idx = np.array([0, 0, 1, 0, 1, 2], dtype=np.int64)
    qty = np.array([1.0, 0.5, 0.5, 1.0, 1.0, 1.0])
    yield pnl, indptr, idx, qty, 0.99


@pytest.mark.parametrize("measure", ["es", "var"])
def test_quantised_screen_gives_bitwise_the_float64_results(measure):
    # the first pass only chooses which scenarios get a float64 loss: every figure is the same
    for pnl, indptr, idx, qty, a in _screen_cases():
        screen = quantised_screen(pnl)
        assert screen is not None
        plain = tail_measures(pnl, indptr, idx, qty, a, measure=measure)
        screened = tail_measures(pnl, indptr, idx, qty, a, measure=measure, screen=screen)
        assert_bitwise_equal(screened, plain)


def test_quantised_screen_on_hedges_finer_than_a_code_step():
    # each row's codes are steps of 1/32766 of its largest |P&L| (a crash scenario 1000 times
    # the usual move here), and a long/short hedge of two such rows loses less than a step in
    # every other scenario: the first pass cannot rank those, its bound must widen the
    # candidates to all of them, and the figures still come from the float64 losses
    rng = np.random.default_rng(17)
    n_scen = 3_000
    common = rng.standard_normal(n_scen)
    a_row = common + rng.standard_normal(n_scen) * 1e-6
    b_row = common + rng.standard_normal(n_scen) * 1e-6
    a_row[7], b_row[11] = -1000.0, 1000.0
    pnl = np.vstack([a_row, b_row, rng.standard_normal(n_scen)])
    indptr = np.array([0, 2, 5, 6], dtype=np.int64)
    idx = np.array([0, 1, 0, 1, 2, 1], dtype=np.int64)
    qty = np.array([1.0, -1.0, 3.0, -3.0, 1e-7, 2.0])
    screen = quantised_screen(pnl)
    assert screen is not None
    for measure in ("es", "var"):
        assert_bitwise_equal(
            tail_measures(pnl, indptr, idx, qty, 0.99, measure=measure, screen=screen),
            tail_measures(pnl, indptr, idx, qty, 0.99, measure=measure))


def test_screen_eps_bounds_the_first_pass_error():
    # the first pass's float32 losses of the codes against the float64 pass's, set by set: the
    # bound holds where the coding error dominates (rows with a crash scenario 3000 times
    # their usual move, code steps of 0.09) and where float32's rounding does (no outlier)
    rng = np.random.default_rng(23)
    n_scen = 2_000
    pnl = rng.standard_normal((8, n_scen))
    pnl[np.arange(4), rng.integers(0, n_scen, 4)] = 3000.0
    screen = quantised_screen(pnl)
    assert screen is not None
    loss32 = np.empty(n_scen, dtype=np.float32)
    loss64 = np.empty(n_scen)
    no_blocks = np.empty(1)
    worst = 0.0
    for _ in range(200):
        n = int(rng.integers(1, 12))
        idx = rng.integers(0, 8, n).astype(np.int64)
        qty = rng.normal(0, 1, n) * 10.0 ** rng.integers(-3, 4, n)
        accumulate_loss(screen.codes, idx, screen.scaled32(idx, qty), 0, n, loss32,
                        no_blocks.astype(np.float32), 0)
        accumulate_loss(pnl, idx, qty, 0, n, loss64, no_blocks, 0)
        eps = screen_eps(idx, qty, screen.row_bound, screen.slack, 0, n)
        error = float(np.max(np.abs(loss32.astype(np.float64) - loss64)))
        assert error <= eps
        worst = max(worst, error / eps)
    assert worst > 0.05  # the bound is not idle: some set comes within 20x of it


def test_quantise_rows_codes_within_half_a_step():
    # against numpy: each row's bound is its largest |P&L| (+inf with a NaN); its largest value
    # codes to +-32766, and every value is within half a step (scale / 2) of scale x code, on
    # rows from 1e-280 to 1e29, halfway values, signed zeros; rows too small for a scale get
    # codes 0 and their bound as slack
    rng = np.random.default_rng(11)
    pnl = np.vstack([rng.standard_normal((3, 50)) * 10.0 ** rng.integers(-280, 30, (3, 1)),
                     np.r_[32766.0, 0.5, -0.5, 1.5, 2.5, -0.0, 0.0, rng.standard_normal(43)],
                     np.r_[-1e-290, 3e-300, np.zeros(48)],
                     np.zeros(50),
                     np.r_[1.0, np.nan, -5.0, np.zeros(47)]])
    codes = np.empty(pnl.shape, dtype=np.int16)
    scale, slack, bound = (np.empty(len(pnl)) for _ in range(3))
    quantise_rows(pnl, codes, scale, slack, bound)
    np.testing.assert_array_equal(bound[:-1], np.abs(pnl[:-1]).max(axis=1))
    assert bound[-1] == np.inf and scale[-1] == 0.0 and not codes[-1].any()
    coded = scale[:4, None] > 0
    assert coded.all() and np.all(scale[4:] == 0.0) and not codes[4:].any()
    np.testing.assert_array_equal(slack[4:6], bound[4:6])
    np.testing.assert_array_equal(np.abs(codes[:4]).max(axis=1), 32766)
    # exact error of each value, in rationals' stead: float64 with the step's size removed
    step = scale[:4, None]
    error = np.abs(pnl[:4] / step - codes[:4])
    assert np.all(error <= 0.5 + 1e-9)
    assert np.all(slack[:4] >= 0.5 * scale[:4])
    np.testing.assert_array_equal(codes[3, :7], [32766, 0, 0, 2, 2, 0, 0])  # ties to even


def test_quantised_screen_is_refused_for_nan_or_beyond_float32_range():
    assert quantised_screen(np.array([[1.0, np.nan, 2.0]])) is None
    assert quantised_screen(np.array([[np.inf, 1.0]])) is None
    assert quantised_screen(np.array([[1.0, -2e30]])) is None
    with pytest.raises(ValueError, match="screen has shape"):
        tail_measures(np.ones((2, 3)), [0, 1], [0], [1.0], 0.9,
                      screen=quantised_screen(np.ones((3, 3))))


def test_quantised_screen_with_quantities_and_pnl_at_float32s_limits():
    # factors (quantity x scale) below float32's normal range (1e-40 on a row of unit P&L:
    # 3e-45, a subnormal), P&L of 1e25 and of 1e-42 under large and small quantities, and a row
    # too small to code (1e-296: codes 0, its whole bound as slack): the bound still holds, the
    # same results
    rng = np.random.default_rng(5)
    n_scen = 2_000
    pnl = np.vstack([rng.standard_normal(n_scen) * 1e25, rng.standard_normal(n_scen) * 1e-42,
                     rng.standard_normal(n_scen), rng.standard_normal(n_scen) * 1e-296])
    indptr = np.array([0, 2, 4, 6, 8, 10], dtype=np.int64)
    idx = np.array([0, 2, 1, 2, 0, 1, 3, 2, 3, 2], dtype=np.int64)
    qty = np.array([3e-40, 1e-40, 1e20, 1e-30, -7e-41, 2e25, 1.0, 2.0, 1e290, 1e-3])
    screen = quantised_screen(pnl)
    assert screen is not None and screen.scale[3] == 0.0 and screen.slack[3] > 0.0
    factors = screen.scaled32(idx, qty)
    assert 0.0 < abs(factors[1]) < np.finfo(np.float32).tiny  # a subnormal factor
    for measure in ("es", "var"):
        assert_bitwise_equal(
            tail_measures(pnl, indptr, idx, qty, 0.99, measure=measure, screen=screen),
            tail_measures(pnl, indptr, idx, qty, 0.99, measure=measure))
