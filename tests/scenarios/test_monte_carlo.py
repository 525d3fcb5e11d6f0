"""Monte Carlo scenario paths: closed forms, moments, copula dependence, marginals, kernels vs
twins, quantile tables vs scipy/arch, determinism.

Oracles from outside the project: the lognormal VaR/ES closed forms; the GARCH h-day variance
recursion; Kendall's tau of an elliptical copula, tau = (2/pi) arcsin(rho) (Lindskog, McNeil and
Schmock 2003); the t copula's tail co-exceedance from the bivariate normal orthant probability
(Owen 1956, ``Phi2(h, h; rho) = Phi(h) - 2 T(h, sqrt((1-rho)/(1+rho)))``) mixed over the
chi-square, whose limit is the tail-dependence coefficient
``2 t_{nu+1}(-sqrt((nu+1)(1-rho)/(1+rho)))`` (Demarta and McNeil 2005); arch's distributions.
"""

from __future__ import annotations

import hashlib
import math
import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from arch.univariate import SkewStudent, StudentsT
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import integrate, special, stats

from riskmodel.scenarios import mc_kernels as K
from riskmodel.scenarios.monte_carlo import (
    Marginal,
    build_quantile_tables,
    composite_quantile,
    monte_carlo_scenarios,
)
from riskmodel.volatility.filters import FilteredFactor
from riskmodel.volatility.params import FactorParams


def _factor(name, params, sigma2, resid=None):
    idx = pd.bdate_range("2021-01-01", periods=len(resid) if resid is not None else 5)
    z = resid if resid is not None else np.zeros(len(idx))
    return FilteredFactor(name, params, pd.Series(np.full(len(idx), sigma2), idx),
                          pd.Series(z, idx), float(sigma2), "test")


def _constant(name, s2, dist="normal", nu=None, skew=None, mu=0.0):
    """A factor whose variance is s2 every day: GARCH with alpha = beta = 0 and omega = s2."""
    p = FactorParams("garch", 1.0, dist, mean="constant" if mu else "zero", mu=mu, omega=s2,
                     nu=nu, skew=skew)
    return _factor(name, p, s2)


# ------------------------------------------------------------------------------------------
# Closed forms and moments


@pytest.mark.parametrize("innovations", ["gaussian", "t-copula"])
def test_one_day_var_es_of_lognormal_loss_match_closed_form(innovations):
    """Unit long position on a log return r ~ N(0, s^2): loss 1 - exp(r).

    VaR_a = 1 - exp(-z s), ES_a = 1 - exp(s^2 / 2) Phi(-z - s) / (1 - a), z = Phi^{-1}(a).
    With one factor the copula cannot matter, so the t copula (a table: Phi^{-1}(T_4(g W)))
    must give the same normal marginal.
    """
    s, a, n = 0.02, 0.99, 400_000
    scen = monte_carlo_scenarios({"X": _constant("X", s * s)}, ["X"], None, 1, n, 11,
                                 innovations=innovations, copula_nu=4.0)
    loss = 1.0 - np.exp(scen.shocks[:, 0])
    var = np.quantile(loss, a, method="inverted_cdf")
    es = np.sort(loss)[-round(n * (1 - a)):].mean()  # n (1 - a) is whole: exact tail mean
    z = stats.norm.ppf(a)
    var_cf = 1 - np.exp(-z * s)
    es_cf = 1 - np.exp(s * s / 2) * stats.norm.cdf(-z - s) / (1 - a)
    assert var == pytest.approx(var_cf, rel=0.02)
    assert es == pytest.approx(es_cf, rel=0.02)


def test_h_day_variance_follows_garch_recursion():
    """E[(r_0 + ... + r_{h-1})^2] = sum_k E[var_k], E[var_{k+1}] = omega + (alpha + gamma/2 +
    beta) E[var_k], for GARCH, GJR (symmetric innovations), GARCH with skew-t innovations (no
    gamma, so symmetry is not needed) and EWMA, under both copulas and with antithetics."""
    factors = {
        "garch": _factor("garch", FactorParams("garch", 100.0, omega=0.05, alpha=0.10,
                                               beta=0.85), 4e-4),
        "gjr": _factor("gjr", FactorParams("gjr", 100.0, "t", omega=0.03, alpha=0.02,
                                           gamma=0.12, beta=0.88, nu=7.0), 1e-4),
        "skew": _factor("skew", FactorParams("garch", 100.0, "skewt", omega=0.02, alpha=0.06,
                                             beta=0.9, nu=8.0, skew=-0.3), 2e-4),
        "ewma": _factor("ewma", FactorParams("ewma", 1.0, decay=0.9), 3e-4),
    }
    names = list(factors)
    corr = np.full((4, 4), 0.4) + 0.6 * np.eye(4)
    h, n = 10, 200_000
    expected = []
    for f in names:
        code, omega, alpha, gamma, beta, decay = factors[f].params.recursion()
        # EWMA: E[var'] = decay var + (1 - decay) E[eps^2] = var
        pers, om = (1.0, 0.0) if code == 0 else (alpha + gamma / 2 + beta, omega)
        v, tot = factors[f].sigma2_next, 0.0
        for _ in range(h):
            tot += v
            v = om + pers * v
        expected.append(tot)
    for innovations, anti in (("gaussian", False), ("t-copula", False), ("t-copula", True)):
        scen = monte_carlo_scenarios(factors, names, corr, h, n, 5, innovations=innovations,
                                     copula_nu=6.0, antithetic=anti)
        sq = scen.shocks**2
        if anti:  # pairs are dependent: the pair means are the independent draws
            sq = 0.5 * (sq[0::2] + sq[1::2])
        se = sq.std(axis=0) / np.sqrt(len(sq))
        assert np.all(np.abs(sq.mean(axis=0) - expected) < 4 * se), (innovations, anti)


# ------------------------------------------------------------------------------------------
# Copula dependence and marginals


def _t_copula_coexceedance(q, rho, nu):
    """P(U1 > q, U2 > q) / (1 - q) for the t copula: mix the normal orthant over chi2_nu."""
    c = special.stdtrit(nu, q)
    a = math.sqrt((1 - rho) / (1 + rho))

    def integrand(v):
        h = c * math.sqrt(v / nu)
        return (special.ndtr(-h) - 2 * special.owens_t(h, a)) * stats.chi2.pdf(v, nu)

    return integrate.quad(integrand, 0, np.inf, limit=200, epsabs=1e-14)[0] / (1 - q)


_MARGINALS = {
    "N": ("normal", None, None),
    "T": ("t", 5.0, None),
    "S": ("skewt", 6.0, -0.3),
}


def _one_day_innovations(innovations, rho, nu, n, seed=3):
    s2 = {"N": 1e-4, "T": 4e-4, "S": 2.5e-4}
    factors = {k: _constant(k, s2[k], *_MARGINALS[k], mu=1e-3) for k in _MARGINALS}
    corr = np.array([[1.0, rho, rho], [rho, 1.0, rho], [rho, rho, 1.0]])
    scen = monte_carlo_scenarios(factors, list(factors), corr, 1, n, seed,
                                 innovations=innovations, copula_nu=nu)
    return {k: (scen.shocks[:, i] - 1e-3) / math.sqrt(s2[k]) for i, k in enumerate(factors)}


def test_tail_dependence_oracle_converges_to_closed_form():
    rho, nu = 0.5, 4.0
    lam = 2 * stats.t.cdf(-math.sqrt((nu + 1) * (1 - rho) / (1 + rho)), nu + 1)
    assert _t_copula_coexceedance(1 - 1e-7, rho, nu) == pytest.approx(lam, rel=1e-3)


def test_t_copula_reproduces_kendall_tau_and_tail_dependence():
    rho, nu, n, q = 0.5, 4.0, 200_000, 0.99
    x = _one_day_innovations("t-copula", rho, nu, n)
    u = {k: stats.rankdata(v) / (n + 1) for k, v in x.items()}
    tau_expected = 2 / np.pi * np.arcsin(rho)
    se_tau = math.sqrt(2 * (2 * n + 5) / (9 * n * (n - 1)))  # under independence: an upper bound
    lam_q = _t_copula_coexceedance(q, rho, nu)
    for a, b in (("N", "T"), ("T", "S"), ("N", "S")):
        tau = stats.kendalltau(x[a], x[b])[0]
        assert abs(tau - tau_expected) < 4 * se_tau, (a, b, tau)
        assert math.sin(np.pi * tau / 2) == pytest.approx(rho, abs=0.01)
        for upper in (True, False):  # the t copula is radially symmetric
            joint = (u[a] > q) & (u[b] > q) if upper else (u[a] < 1 - q) & (u[b] < 1 - q)
            p = lam_q * (1 - q)
            se = math.sqrt(p * (1 - p) / n) / (1 - q)
            assert abs(joint.mean() / (1 - q) - lam_q) < 4 * se, (a, b, upper)


def test_gaussian_copula_has_weaker_tails_than_t():
    rho, n, q = 0.5, 200_000, 0.99
    x = _one_day_innovations("gaussian", rho, None, n)
    u = {k: stats.rankdata(v) / (n + 1) for k, v in x.items()}
    # bivariate normal orthant at q (Owen's T), far below the t copula's 0.288
    h = stats.norm.ppf(q)
    lam_q = (special.ndtr(-h) - 2 * special.owens_t(h, math.sqrt((1 - rho) / (1 + rho)))) / (1 - q)
    p = lam_q * (1 - q)
    se = math.sqrt(p * (1 - p) / n) / (1 - q)
    joint = ((u["N"] > q) & (u["T"] > q)).mean() / (1 - q)
    assert abs(joint - lam_q) < 4 * se
    assert lam_q < 0.8 * _t_copula_coexceedance(q, rho, 4.0)


@pytest.mark.parametrize("innovations", ["t-copula", "gaussian"])
def test_one_day_marginals_pass_ks_against_arch(innovations):
    x = _one_day_innovations(innovations, 0.6, 5.0, 50_000, seed=8)
    cdfs = {
        "N": stats.norm.cdf,
        "T": lambda v: StudentsT().cdf(v, [5.0]),
        "S": lambda v: SkewStudent().cdf(v, [6.0, -0.3]),
    }
    for k, cdf in cdfs.items():
        assert stats.kstest(x[k], cdf).pvalue > 1e-3, k
        assert abs(x[k].mean()) < 5 / math.sqrt(len(x[k]))  # unit-variance, zero-mean marginals
        assert abs(x[k].var() - 1) < 0.05


def test_bootstrap_draws_whole_complete_days():
    rng = np.random.default_rng(2)
    days = pd.bdate_range("2020-01-01", periods=40)
    z = pd.DataFrame(rng.standard_normal((40, 3)), index=days, columns=["A", "B", "C"])
    z.iloc[:5, 2] = np.nan  # C listed later: its first five days are not complete
    s2 = {"A": 1e-4, "B": 4e-4, "C": 9e-4}
    factors = {k: _constant(k, s2[k]) for k in z}
    scen = monte_carlo_scenarios(factors, ["A", "B", "C"], None, 1, 5000, 4,
                                 innovations="bootstrap", std_resid=z)
    x = scen.shocks / np.sqrt([s2["A"], s2["B"], s2["C"]])
    complete = z.dropna().to_numpy()
    dist = np.abs(x[:, None, :] - complete[None, :, :]).max(axis=2)
    assert np.all(dist.min(axis=1) < 1e-12)  # every scenario is one whole complete day
    counts = np.bincount(dist.argmin(axis=1), minlength=len(complete))
    assert counts.min() > 0  # and all 35 complete days get drawn
    assert scen.provenance["bootstrap_days"] == 35
    # without std_resid: the filters' own residuals (here 5 days of zeros)
    own = monte_carlo_scenarios(factors, ["A", "B"], None, 2, 50, 4, innovations="bootstrap")
    assert own.provenance["bootstrap_days"] == 5
    np.testing.assert_array_equal(own.shocks, 0.0)
    with pytest.raises(ValueError, match="antithetic"):
        monte_carlo_scenarios(factors, ["A"], None, 1, 10, 4, innovations="bootstrap",
                              std_resid=z, antithetic=True)


# ------------------------------------------------------------------------------------------
# Kernels vs twins, tables vs scipy/arch


def _tables():
    return build_quantile_tables(5.0, [Marginal("t", 4.0), Marginal("skewt", 6.0, 0.4),
                                       Marginal("normal")])


def _y_grid():
    return np.concatenate([np.linspace(-6, 6, 241), np.geomspace(4, 1e12, 60),
                           -np.geomspace(4, 1e12, 60), [0.0, -0.0]])


def test_eval_table_kernel_equals_twin():
    tab = _tables()
    y = _y_grid()
    for k in range(3):
        np.testing.assert_array_equal(
            K.eval_table(y, k, tab.body, tab.tail, tab.hp),
            K.eval_table_python(y, k, tab.body, tab.tail, tab.hp),
        )


@pytest.mark.parametrize("first, update", [(True, True), (False, True), (False, False)])
def test_day_kernels_equal_twins(first, update):
    rng = np.random.default_rng(7)
    tab = _tables()
    nb, nf, bs = 2, 4, 24
    g = rng.standard_normal((nb, nf, bs)) * 2
    w = np.sqrt(5.0 / rng.chisquare(5.0, (nb, bs)))
    table_of = np.array([0, -1, 1, 2])
    sigma2 = np.array([1e-4, 4e-4, 2.0, 3e-4])
    var0 = rng.uniform(0.5, 2.0, (nb, nf, bs)) * sigma2[None, :, None]
    tot0 = rng.standard_normal((nb, nf, bs)) * 0.01
    params = (
        np.array([0.0, 1e-4, 0.0, 0.0]),  # mu
        np.array([1, 0, 2, 3]),  # GARCH, EWMA, GJR, EGARCH
        np.array([1e-6, 0.0, 0.05, -0.2]),
        np.array([0.08, 0.0, 0.02, 0.1]),
        np.array([0.0, 0.0, 0.12, -0.08]),
        np.array([0.9, 0.0, 0.85, 0.97]),
        np.array([0.94, 0.97, 0.94, 0.94]),
    )
    zt = rng.standard_normal((nf, 30))
    idx = rng.integers(0, 30, (nb, bs))
    runs = [
        (K.copula_day, K.copula_day_python, (g, w, table_of, tab.body, tab.tail, tab.hp)),
        (K.bootstrap_day, K.bootstrap_day_python, (zt, idx)),
    ]
    for kernel, twin, head in runs:
        v1, t1, v2, t2 = var0.copy(), tot0.copy(), var0.copy(), tot0.copy()
        kernel(*head, sigma2, v1, t1, *params, first, update)
        twin(*head, sigma2, v2, t2, *params, first, update)
        np.testing.assert_allclose(t1, t2, rtol=1e-14, atol=0)
        np.testing.assert_allclose(v1, v2, rtol=1e-14, atol=0)
        if not update:
            np.testing.assert_array_equal(v1, var0)


def test_gather_kernel_equals_twin():
    total = np.random.default_rng(1).standard_normal((3, 70, 130))
    for n in (390, 300, 261, 1):
        np.testing.assert_array_equal(K.gather_shocks(total, n), K.gather_shocks_python(total, n))


_CASES = [
    (2.05, Marginal("normal")), (4.0, Marginal("t", 4.0)), (4.0, Marginal("t", 2.5)),
    (6.0, Marginal("skewt", 6.0, -0.3)), (3.0, Marginal("skewt", 4.0, -0.5)),
    (30.0, Marginal("skewt", 2.5, 0.9)), (200.0, Marginal("t", 100.0)),
    (math.inf, Marginal("t", 3.0)), (math.inf, Marginal("skewt", 5.0, 0.5)),
]


@pytest.mark.parametrize("nu_c, marginal", _CASES)
def test_table_matches_exact_map_everywhere(nu_c, marginal):
    """Against the scipy map from tail probabilities: below 2e-8 relative (|x| >= 1) or
    absolute (|x| < 1) from the body out to copula tail probability 1e-20."""
    tab = build_quantile_tables(nu_c, [marginal])
    a_end = -float(special.ndtri(1e-20) if math.isinf(nu_c) else special.stdtrit(nu_c, 1e-20))
    y = np.concatenate([np.linspace(-8, 8, 40_001), np.geomspace(1, a_end, 4001),
                        -np.geomspace(1, a_end, 4001)])
    ref = composite_quantile(y, nu_c, marginal)
    err = np.abs(tab(y, 0) - ref) / np.maximum(np.abs(ref), 1.0)
    assert err.max() < 2e-8
    assert tab.max_error[0] < 1e-8


@pytest.mark.parametrize("nu_c, marginal", _CASES)
def test_table_matches_arch_in_the_body_and_tail_probabilities(nu_c, marginal):
    """Body: arch's ppf of the copula's cdf. Lower tail: the table's x has the copula's tail
    probability under arch's cdf (relative error of the tail probability)."""
    tab = build_quantile_tables(nu_c, [marginal])
    copula_cdf = stats.norm.cdf if math.isinf(nu_c) else (lambda v: stats.t.cdf(v, nu_c))
    if marginal.dist == "normal":
        ppf, cdf = stats.norm.ppf, stats.norm.cdf
    elif marginal.dist == "t":
        ppf = lambda u: StudentsT().ppf(u, [marginal.nu])  # noqa: E731
        cdf = lambda v: StudentsT().cdf(v, [marginal.nu])  # noqa: E731
    else:
        ppf = lambda u: SkewStudent().ppf(u, [marginal.nu, marginal.skew])  # noqa: E731
        cdf = lambda v: SkewStudent().cdf(v, [marginal.nu, marginal.skew])  # noqa: E731
    y = np.linspace(-4, 4, 8001)
    # arch's ppf goes through scipy's t.ppf, itself off by up to ~2e-8 near the median
    np.testing.assert_allclose(tab(y, 0), ppf(copula_cdf(y)), rtol=0, atol=1e-7)
    y = -np.geomspace(4, 1e3 if math.isinf(nu_c) else 1e6, 400)
    p = copula_cdf(y)
    keep = p >= 1e-20  # the tabulated range; beyond it ln|x| is extrapolated
    np.testing.assert_allclose(cdf(tab(y[keep], 0)), p[keep], rtol=1e-6)


def test_symmetric_tables_are_exactly_antisymmetric():
    tab = build_quantile_tables(4.0, [Marginal("t", 5.0), Marginal("normal")])
    y = _y_grid()
    for k in (0, 1):
        np.testing.assert_array_equal(tab(-y, k), -tab(y, k))


@given(nu_c=st.sampled_from([2.5, 4.0, 8.0, 50.0, math.inf]), nu=st.floats(2.2, 60.0),
       skew=st.floats(-0.9, 0.9))
@settings(max_examples=25, deadline=None)
def test_tables_are_monotone_and_continuous(nu_c, nu, skew):
    """Increasing in y, from deep left tail through the body to beyond the tabulated range (out
    to copula tail probability 1e-50; scipy's stdtrit is unreliable further out)."""
    tab = build_quantile_tables(nu_c, [Marginal("skewt", nu, skew)])
    y_max = -float(special.ndtri(1e-50) if math.isinf(nu_c) else special.stdtrit(nu_c, 1e-50))
    y = np.concatenate([-np.geomspace(y_max, 1e-3, 3000), [0.0], np.geomspace(1e-3, y_max, 3000)])
    x = tab(y, 0)
    assert np.all(np.isfinite(x))
    assert np.all(np.diff(x) >= 0)
    assert tab.max_error[0] < 1e-8


# ------------------------------------------------------------------------------------------
# Determinism and the ScenarioSet


def _universe(n_f=6, seed=0):
    rng = np.random.default_rng(seed)
    kinds = [
        ("garch", "normal", {}), ("gjr", "t", {"nu": 5.0}),
        ("egarch", "skewt", {"nu": 7.0, "skew": 0.2}), ("ewma", "t", {"nu": 9.0}),
    ]
    factors = {}
    for i in range(n_f):
        model, dist, kw = kinds[i % 4]
        if model == "egarch":
            p = FactorParams(model, 100.0, dist, omega=0.0, alpha=0.12, gamma=-0.06, beta=0.97,
                             **kw)
        elif model == "ewma":
            p = FactorParams(model, 1.0, dist, decay=0.94, **kw)
        else:
            p = FactorParams(model, 100.0, dist, omega=0.03, alpha=0.05,
                             gamma=0.08 if model == "gjr" else 0.0, beta=0.88, **kw)
        factors[f"F{i}"] = _factor(f"F{i}", p, float(rng.uniform(1, 4)) * 1e-4)
    b = rng.standard_normal((n_f, 2))
    c = b @ b.T + np.eye(n_f)
    d = np.sqrt(np.diag(c))
    return factors, c / np.outer(d, d)


_SCRIPT = """
import hashlib, sys
sys.path.insert(0, {tests!r})
from test_monte_carlo import _universe
from riskmodel.scenarios.monte_carlo import monte_carlo_scenarios
factors, corr = _universe()
s = monte_carlo_scenarios(factors, list(factors), corr, 3, 2500, 42, copula_nu=5.0,
                          block_size=512)
print(hashlib.sha256(s.shocks.tobytes()).hexdigest())
"""


def test_same_seed_same_bits_whatever_the_thread_count():
    factors, corr = _universe()
    here = monte_carlo_scenarios(factors, list(factors), corr, 3, 2500, 42, copula_nu=5.0,
                                 block_size=512)
    again = monte_carlo_scenarios(factors, list(factors), corr, 3, 2500, 42, copula_nu=5.0,
                                  block_size=512)
    np.testing.assert_array_equal(here.shocks, again.shocks)
    digests = {hashlib.sha256(here.shocks.tobytes()).hexdigest()}
    script = _SCRIPT.format(tests=os.path.dirname(__file__))
    for threads in ("1", "2"):
        env = dict(os.environ, NUMBA_NUM_THREADS=threads, OPENBLAS_NUM_THREADS=threads)
        out = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True,
                             text=True, timeout=300)
        assert out.returncode == 0, out.stderr
        digests.add(out.stdout.strip())
    assert len(digests) == 1


@pytest.mark.parametrize("innovations", ["t-copula", "gaussian", "bootstrap"])
def test_scenarios_do_not_depend_on_how_many_are_asked_for(innovations):
    """Scenario i depends on (seed, block_size, i) only: a caller may ask for a prefix."""
    factors, corr = _universe()
    z = pd.DataFrame(np.random.default_rng(0).standard_normal((250, len(factors))),
                     index=pd.bdate_range("2020-01-01", periods=250), columns=list(factors))
    kw = dict(innovations=innovations, copula_nu=5.0, block_size=256, std_resid=z)
    small = monte_carlo_scenarios(factors, list(factors), corr, 4, 300, 9, **kw)
    large = monte_carlo_scenarios(factors, list(factors), corr, 4, 1000, 9, **kw)
    other = monte_carlo_scenarios(factors, list(factors), corr, 4, 300, 10, **kw)
    np.testing.assert_array_equal(large.shocks[:300], small.shocks)
    assert np.mean(other.shocks == small.shocks) < 0.01  # another seed: other scenarios


def test_antithetic_pairs_cancel_around_the_drift():
    """Constant variance, symmetric marginals: paired shocks sum to 2 mu h (day by day)."""
    mu = 2e-4
    factors = {
        "N": _constant("N", 1e-4, mu=mu),
        "T": _constant("T", 4e-4, "t", 5.0, mu=mu),
    }
    corr = np.array([[1.0, 0.3], [0.3, 1.0]])
    for innovations in ("gaussian", "t-copula"):
        for h in (1, 3):
            scen = monte_carlo_scenarios(factors, ["N", "T"], corr, h, 1000, 1,
                                         innovations=innovations, copula_nu=4.0,
                                         antithetic=True, block_size=128)
            pair = scen.shocks[0::2] + scen.shocks[1::2]
            np.testing.assert_allclose(pair, 2 * mu * h, rtol=0, atol=1e-15)
            assert np.abs(scen.shocks[0::2] - mu * h).min() > 0  # not degenerate


def test_scenario_set_fields_and_provenance():
    factors, corr = _universe(3)
    scen = monte_carlo_scenarios(factors, list(factors), corr, 2, 10, 123, copula_nu=7.5)
    assert scen.kind == "mc" and scen.horizon == 2 and scen.weights is None
    assert scen.shocks.shape == (10, 3) and scen.shocks.flags.c_contiguous
    assert scen.factors == ("F0", "F1", "F2")
    assert list(scen.labels[:2]) == ["mc-000000", "mc-000001"]
    prov = scen.provenance
    assert prov["seed"] == 123 and prov["innovations"] == "t-copula"
    assert prov["copula_nu"] == 7.5 and prov["antithetic"] is False
    assert prov["block_size"] == 2048 and "PCG64" in prov["generator"]


@pytest.mark.parametrize("kwargs, match", [
    ({"innovations": "sobol"}, "innovations"),
    ({"copula_nu": None}, "copula_nu is required"),
    ({"copula_nu": -1.0}, "copula_nu"),
    ({"antithetic": True, "n_scenarios": 11}, "even"),
    ({"correlation": np.ones((3, 3))}, "positive definite"),
    ({"correlation": np.eye(2)}, "shape"),
    ({"factors": ["F0", "nope"]}, "nope"),
    ({"horizon": 0}, "horizon"),
    ({"seed": -1}, "seed"),
    ({"innovations": "bootstrap", "std_resid": pd.DataFrame({"F0": [1.0]})}, "column"),
])
def test_bad_arguments_raise(kwargs, match):
    factors, corr = _universe(3)
    args = {"filtered": factors, "factors": list(factors), "correlation": corr, "horizon": 1,
            "n_scenarios": 10, "seed": 0, "copula_nu": 5.0}
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        monte_carlo_scenarios(**args)
