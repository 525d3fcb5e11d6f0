"""Backtest statistics against published tables, closed forms, scipy and naive oracles."""

import json
import math
from fractions import Fraction

import numpy as np
import pandas as pd
import pytest
from scipy import integrate, stats

from riskmodel.backtest.statistics import (
    acerbi_szekely_z2,
    christoffersen_independence,
    conditional_coverage,
    flat_rate_equivalent,
    independence_lr_from_counts,
    kupiec_pof,
    matched_loss_distribution,
    max_increase,
    peak_to_trough,
    summarise,
    traffic_light,
    traffic_light_bounds,
    transition_counts,
    z2_critical_value,
    z2_statistic,
)

# ---------------------------------------------------------------------------------------------
# Independent oracles (plain Python, no code under test)
# ---------------------------------------------------------------------------------------------


def chi2_1_sf(x: float) -> float:
    """P(chi2(1) >= x) = erfc(sqrt(x / 2)) (closed form)."""
    return math.erfc(math.sqrt(x / 2.0))


def chi2_2_sf(x: float) -> float:
    """P(chi2(2) >= x) = exp(-x / 2) (closed form)."""
    return math.exp(-x / 2.0)


def naive_counts(hits):
    n = {(0, 0): 0, (0, 1): 0, (1, 0): 0, (1, 1): 0}
    for prev, cur in zip(hits[:-1], hits[1:]):
        n[(int(prev), int(cur))] += 1
    return n[(0, 0)], n[(0, 1)], n[(1, 0)], n[(1, 1)]


def naive_lr_ind(hits):
    """Christoffersen (1998) eq. for LR_ind written out with explicit 0 log 0 = 0."""
    n00, n01, n10, n11 = naive_counts(hits)

    def term(k, prob):
        return 0.0 if k == 0 else k * math.log(prob)

    pi = (n01 + n11) / (n00 + n01 + n10 + n11)
    pi01 = n01 / (n00 + n01) if n00 + n01 else 0.0
    pi11 = n11 / (n10 + n11) if n10 + n11 else 0.0
    log_null = term(n00 + n10, 1 - pi) + term(n01 + n11, pi)
    log_alt = term(n00, 1 - pi01) + term(n01, pi01) + term(n10, 1 - pi11) + term(n11, pi11)
    return -2.0 * (log_null - log_alt)


# ---------------------------------------------------------------------------------------------
# Kupiec
# ---------------------------------------------------------------------------------------------


def test_kupiec_at_250_observations_and_1_percent():
    # 0 exceptions in 250 at 1%: LR = -2 * 250 * ln(0.99) = 5.025 > 3.841, rejected at 5%.
    lr0, p0 = kupiec_pof(250, 0, 0.01)
    assert lr0 == pytest.approx(-2 * 250 * math.log(0.99), rel=1e-12)
    assert p0 < 0.05
    for x in range(1, 7):
        assert kupiec_pof(250, x, 0.01)[1] > 0.05, x


def test_kupiec_lr_matches_the_hand_formula():
    n, x, p = 250, 5, 0.01
    phat = x / n
    expected = -2 * ((n - x) * math.log(1 - p) + x * math.log(p)) + 2 * (
        (n - x) * math.log(1 - phat) + x * math.log(phat)
    )
    lr, pvalue = kupiec_pof(n, x, p)
    assert lr == pytest.approx(expected, rel=1e-12)
    assert lr == pytest.approx(1.956810, abs=1e-6)
    assert pvalue == pytest.approx(chi2_1_sf(expected), rel=1e-10)


def test_kupiec_extremes_are_finite():
    lr, pvalue = kupiec_pof(10, 10, 0.01)
    assert lr == pytest.approx(-2 * 10 * math.log(0.01))
    assert math.isfinite(pvalue)
    lr, pvalue = kupiec_pof(1, 0, 0.01)
    assert math.isfinite(lr) and math.isfinite(pvalue)


@pytest.mark.parametrize("args", [(0, 0, 0.01), (10, 11, 0.01), (10, -1, 0.01), (10, 1, 0.0),
                                  (10, 1, 1.0), (10.5, 1, 0.01)])
def test_kupiec_rejects_bad_arguments(args):
    with pytest.raises(ValueError):
        kupiec_pof(*args)


# ---------------------------------------------------------------------------------------------
# Traffic light
# ---------------------------------------------------------------------------------------------


def test_basel_table_at_250_observations_and_99_percent():
    # Basel Committee (1996), Table 1: green 0-4, yellow 5-9, red 10 or more.
    zones = {x: traffic_light(250, x, 0.99) for x in range(0, 21)}
    assert all(zones[x] == "green" for x in range(0, 5))
    assert all(zones[x] == "yellow" for x in range(5, 10))
    assert all(zones[x] == "red" for x in range(10, 21))
    assert traffic_light(250, 250, 0.99) == "red"
    assert traffic_light_bounds(250, 0.99) == (5, 10)
    # The cumulative probabilities printed in that table (percent, two decimals).
    published = [8.11, 28.58, 54.32, 75.81, 89.22, 95.88, 98.63, 99.60, 99.89, 99.97, 99.99]
    for x, pct in enumerate(published):
        assert 100 * stats.binom.cdf(x, 250, 0.01) == pytest.approx(pct, abs=0.005 + 1e-9)


@pytest.mark.parametrize("n_obs, confidence", [(500, 0.99), (1000, 0.99), (250, 0.975),
                                               (60, 0.99), (750, 0.999)])
def test_traffic_light_scales_with_the_binomial(n_obs, confidence):
    p = 1 - confidence
    for x in range(0, min(n_obs, 60) + 1):
        cdf = stats.binom.cdf(x, n_obs, p)
        expected = "green" if cdf < 0.95 else "yellow" if cdf < 0.9999 else "red"
        assert traffic_light(n_obs, x, confidence) == expected, x
    yellow = int(stats.binom.ppf(0.95, n_obs, p))
    red = int(stats.binom.ppf(0.9999, n_obs, p))
    assert traffic_light_bounds(n_obs, confidence) == (yellow, red)


def test_traffic_light_500_observations():
    # Twice the sample: the yellow zone starts at 9, red at 15 (binomial CDF, scipy).
    assert traffic_light_bounds(500, 0.99) == (9, 15)
    assert traffic_light(500, 8, 0.99) == "green"
    assert traffic_light(500, 9, 0.99) == "yellow"
    assert traffic_light(500, 15, 0.99) == "red"


# ---------------------------------------------------------------------------------------------
# Christoffersen
# ---------------------------------------------------------------------------------------------


def clustered_hits():
    hits = np.zeros(250, dtype=bool)
    for start in (40, 120, 200):  # three runs of three consecutive exceptions
        hits[start:start + 3] = True
    return hits


def spread_hits():
    hits = np.zeros(250, dtype=bool)
    hits[25::50] = True  # five exceptions, 50 days apart
    return hits


def test_clustered_exceptions_are_rejected():
    hits = clustered_hits()
    lr, pvalue = christoffersen_independence(hits)
    assert transition_counts(hits) == naive_counts(hits) == (237, 3, 3, 6)
    assert lr == pytest.approx(naive_lr_ind(hits), rel=1e-12)
    assert pvalue == pytest.approx(chi2_1_sf(lr), rel=1e-10)
    assert pvalue < 0.01


def test_evenly_spread_exceptions_are_not_rejected():
    hits = spread_hits()
    lr, pvalue = christoffersen_independence(hits)
    assert lr == pytest.approx(naive_lr_ind(hits), rel=1e-12)
    assert pvalue > 0.05


def test_christoffersen_random_sequences_match_the_counts_formula():
    rng = np.random.default_rng(7)
    for _ in range(20):
        hits = rng.random(300) < 0.03
        if hits.sum() == 0:
            continue
        assert christoffersen_independence(hits)[0] == pytest.approx(naive_lr_ind(hits),
                                                                      rel=1e-10, abs=1e-12)


@pytest.mark.parametrize("hits", [np.zeros(100, bool), np.ones(100, bool),
                                  np.r_[np.zeros(99, bool), True], np.array([False, True])])
def test_christoffersen_degenerate_sequences(hits):
    # No hits, hits only, or no transition out of a hit: nothing to compare, LR = 0, p = 1.
    assert christoffersen_independence(hits) == (0.0, 1.0)


def test_christoffersen_needs_two_observations():
    with pytest.raises(ValueError):
        christoffersen_independence(np.array([True]))
    with pytest.raises(ValueError):
        independence_lr_from_counts(0, 0, 0, 0)


def test_conditional_coverage_is_the_sum_with_two_degrees_of_freedom():
    hits = clustered_hits()
    lr_pof = kupiec_pof(250, int(hits.sum()), 0.01)[0]
    lr, pvalue = conditional_coverage(hits, 0.01)
    assert lr == pytest.approx(lr_pof + naive_lr_ind(hits), rel=1e-12)
    assert pvalue == pytest.approx(chi2_2_sf(lr), rel=1e-10)
    assert pvalue < 0.01
    assert conditional_coverage(spread_hits(), 0.01)[1] > 0.05


# ---------------------------------------------------------------------------------------------
# Acerbi-Szekely Z2
# ---------------------------------------------------------------------------------------------


def t_es(nu, alpha):
    """ES of a standard Student-t by numerical integration (scipy.integrate), with its VaR."""
    q = stats.t.isf(alpha, nu)
    tail, _ = integrate.quad(lambda x: x * stats.t.pdf(x, nu), q, np.inf)
    return q, tail / alpha


def test_z2_critical_value_matches_acerbi_szekely():
    # Acerbi and Szekely (2014): 5% critical value of Z2 about -0.70 (T = 250, alpha = 2.5%).
    crit = z2_critical_value(250, 0.025, 0.05, "normal", n_sim=200_000, seed=2014)
    assert crit == pytest.approx(-0.70, abs=0.05)
    # and about -1.8 at 0.01%, nearly the same for a Student-t.
    assert z2_critical_value(250, 0.025, 1e-4, n_sim=200_000, seed=1) == pytest.approx(-1.8,
                                                                                         abs=0.2)
    assert z2_critical_value(250, 0.025, 0.05, "t", df=10, n_sim=100_000,
                             seed=3) == pytest.approx(-0.72, abs=0.07)


def test_z2_statistic_matches_the_paper_form():
    # The paper writes Z2 with P&L X = -L: sum_t X_t 1{X_t + VaR_t < 0} / (T alpha ES_t) + 1.
    rng = np.random.default_rng(11)
    T, alpha = 300, 0.025
    var = rng.uniform(1.5, 2.5, T)
    es = var * rng.uniform(1.1, 1.5, T)
    loss = rng.standard_t(3, T)
    pnl = -loss
    expected = sum(pnl[t] * (pnl[t] + var[t] < 0) / (T * alpha * es[t]) for t in range(T)) + 1
    assert z2_statistic(loss, var, es, alpha) == pytest.approx(expected, rel=1e-12)
    # No loss beyond VaR: Z2 = 1.
    assert z2_statistic(np.zeros(T), var, es, alpha) == 1.0


def test_matched_distribution_recovers_a_student_t():
    alpha = 0.025
    for nu, scale in [(3.0, 2.0), (5.0, 0.5), (30.0, 10.0)]:
        q, e = t_es(nu, alpha)
        law = matched_loss_distribution([scale * q], [scale * e], alpha)
        assert law.df[0] == pytest.approx(nu, rel=1e-5)
        assert law.scale[0] == pytest.approx(scale, rel=1e-6)
        assert law.loc[0] == 0.0


def test_matched_distribution_thin_tail_is_a_normal_matching_var_and_es():
    alpha = 0.01
    law = matched_loss_distribution([1.0, -0.5], [1.1, 0.3], alpha)
    assert np.isinf(law.df).all()
    for i, (v, e) in enumerate([(1.0, 1.1), (-0.5, 0.3)]):
        dist = stats.norm(law.loc[i], law.scale[i])
        assert dist.isf(alpha) == pytest.approx(v, abs=1e-12)
        tail, _ = integrate.quad(lambda x, d=dist: x * d.pdf(x), v, np.inf)
        assert tail / alpha == pytest.approx(e, rel=1e-7)


def test_z2_pvalue_rejects_an_understated_es_and_accepts_the_true_one():
    rng = np.random.default_rng(5)
    T, alpha, nu = 500, 0.025, 4.0
    q, e = t_es(nu, alpha)
    loss = rng.standard_t(nu, T)
    var, es = np.full(T, q), np.full(T, e)
    z_true, p_true = acerbi_szekely_z2(loss, var, es, alpha, n_sim=4000, seed=1)
    assert p_true > 0.05
    # Forecasts a third too small (VaR and ES): the realised tail is far heavier.
    z_bad, p_bad = acerbi_szekely_z2(loss, var / 1.5, es / 1.5, alpha, n_sim=4000, seed=1)
    assert z_bad < -0.7 and p_bad < 0.01
    # Reproducible with a seed.
    assert acerbi_szekely_z2(loss, var, es, alpha, n_sim=4000, seed=1) == (z_true, p_true)


def test_z2_custom_sampler_agrees_with_the_default():
    # Normal forecasts; the caller's sampler draws N(0, 1) directly, the default matches the
    # (normal) ratio ES/VaR; the two simulated p-values estimate the same number.
    rng = np.random.default_rng(9)
    T, alpha = 250, 0.025
    zq = stats.norm.isf(alpha)
    var, es = np.full(T, zq), np.full(T, stats.norm.pdf(zq) / alpha)
    loss = rng.standard_normal(T) * 1.2
    _, p_default = acerbi_szekely_z2(loss, var, es, alpha, n_sim=20_000, seed=1)
    _, p_custom = acerbi_szekely_z2(loss, var, es, alpha, n_sim=20_000, seed=2,
                                    simulate=lambda g, n: g.standard_normal((n, T)))
    assert p_default == pytest.approx(p_custom, abs=0.02)


def test_fast_tail_simulation_agrees_with_full_draws():
    # The default path draws only tail events; the law's own sample() draws every loss.
    alpha, T = 0.025, 250
    rng = np.random.default_rng(4)
    var = rng.uniform(1.0, 3.0, T)
    es = var * rng.uniform(1.15, 1.8, T)
    law = matched_loss_distribution(var, es, alpha)
    draws = law.sample(np.random.default_rng(0), 20_000)
    assert (draws > var).mean() == pytest.approx(alpha, abs=0.001)
    z_full = 1 - (np.where(draws > var, draws, 0.0) / es).sum(axis=1) / (T * alpha)
    assert abs(z_full.mean()) < 0.02  # E[Z2] = 0 under the null
    loss = law.sample(np.random.default_rng(1), 1)[0] * 1.3
    z2, p_fast = acerbi_szekely_z2(loss, var, es, alpha, n_sim=20_000, seed=3)
    p_full = (1 + np.count_nonzero(z_full <= z2)) / (1 + z_full.size)
    assert p_fast == pytest.approx(p_full, abs=0.02)


def test_tail_simulation_in_many_batches_is_the_same_process(monkeypatch):
    # Small batches: the geometric gaps continue across batches; the count of tail events per
    # path is Binomial(T, alpha) and, for a normal law, E[L 1{L > VaR}] = alpha ES.
    import riskmodel.backtest.statistics.es_test as mod

    monkeypatch.setattr(mod, "_TAIL_BATCH", 257)
    alpha, T, n_sim = 0.025, 40, 50_000
    zq = stats.norm.isf(alpha)
    var, es = np.full(T, zq), np.full(T, stats.norm.pdf(zq) / alpha)
    law = matched_loss_distribution(var, es, alpha)
    sums = mod._simulated_tail_sums(law, var, es, n_sim, np.random.default_rng(0))
    assert sums.mean() == pytest.approx(alpha * T, rel=0.02)
    # Var of S = T Var(L 1{L > VaR} / ES) (closed form for the normal, by quadrature).
    second, _ = integrate.quad(lambda x: x * x * stats.norm.pdf(x), zq, np.inf)
    var_term = second / es[0] ** 2 - alpha**2
    assert sums.var() == pytest.approx(T * var_term, rel=0.05)


def test_z2_rejects_bad_inputs():
    with pytest.raises(ValueError, match="es must be > 0"):
        z2_statistic([1.0], [0.0], [0.0], 0.025)
    with pytest.raises(ValueError, match="es must be >= var"):
        z2_statistic([1.0], [2.0], [1.0], 0.025)
    with pytest.raises(ValueError, match="finite"):
        z2_statistic([np.nan], [1.0], [2.0], 0.025)


# ---------------------------------------------------------------------------------------------
# Procyclicality and flat-rate equivalent
# ---------------------------------------------------------------------------------------------


def test_peak_to_trough():
    assert peak_to_trough([100.0, 150.0, 50.0, 200.0]) == 4.0
    assert peak_to_trough([7.0, 7.0]) == 1.0
    assert peak_to_trough([0.0, 10.0]) is None
    assert peak_to_trough([0.0, 0.0]) is None
    with pytest.raises(ValueError):
        peak_to_trough([1.0, -1.0])
    with pytest.raises(ValueError):
        peak_to_trough([])


def test_max_increase():
    m = [100.0, 110.0, 99.0, 150.0, 120.0, 130.0, 200.0]
    assert max_increase(m, 1) == pytest.approx(200 / 130 - 1)
    assert max_increase(m, 5) == pytest.approx(200 / 110 - 1)
    assert max_increase(m, 6) == pytest.approx(1.0)
    assert max_increase(m, 7) is None
    assert max_increase([100.0, 90.0, 80.0], 1) == pytest.approx(-0.1)
    assert max_increase([0.0, 10.0, 20.0], 1) == pytest.approx(1.0)  # from 0: left out
    assert max_increase([0.0, 0.0, 5.0], 1) is None
    with pytest.raises(ValueError):
        max_increase(m, 0)


def brute_force_flat_rate(loss, notional, k):
    """Lowest rate in {0} U {loss / notional}, trying every candidate in increasing order, in
    exact rational arithmetic; the number of breaches it gives."""
    loss = [Fraction(x) for x in loss]
    notional = [Fraction(x) for x in notional]
    candidates = sorted(
        {Fraction(0)} | {x / n for x, n in zip(loss, notional) if n > 0 and x > 0}
    )
    for r in candidates:
        breaches = sum(1 for x, n in zip(loss, notional) if x > r * n)
        if breaches <= k:
            return r, breaches
    return candidates[-1], breaches


@pytest.mark.parametrize("seed", range(8))
def test_flat_rate_equivalent_against_brute_force(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(5, 80))
    notional = rng.choice([0.0, 500.0, 1000.0, 2500.0], size=n, p=[0.05, 0.3, 0.4, 0.25])
    loss = np.round(rng.normal(0, 30, n), 0)  # rounded: ties of loss / notional
    unavoidable = int(np.sum((notional == 0) & (loss > 0)))
    for k in range(0, n + 1, max(1, n // 7)):
        result = flat_rate_equivalent(loss, notional, k)
        exact_rate, exact_breaches = brute_force_flat_rate(loss, notional, k)
        assert result["rate"] == pytest.approx(float(exact_rate), rel=1e-14, abs=0)
        assert result["breaches"] == exact_breaches
        assert result["breaches"] == int(np.sum(loss > result["rate"] * notional))
        assert result["breaches"] <= max(k, unavoidable)
        assert result["mean_margin"] == pytest.approx(np.mean(result["rate"] * notional))
        # A fine grid search lands just above it: nothing below the exact rate qualifies.
        grid = np.linspace(0.0, max(result["rate"] * 2, 0.2), 20_001)
        ok = [(loss > r * notional).sum() <= max(k, unavoidable) for r in grid]
        first = grid[int(np.argmax(ok))]
        assert result["rate"] <= first
        assert first - result["rate"] <= grid[1] - grid[0]


def test_flat_rate_equivalent_edge_cases():
    loss = np.array([-5.0, 10.0, 20.0, 20.0])
    notional = np.full(4, 100.0)
    # Ties: 0.2 is the answer for one allowed breach; at 0.2 there are none (strict).
    assert flat_rate_equivalent(loss, notional, 1) == {"rate": 0.2, "breaches": 0,
                                                       "mean_margin": 20.0}
    assert flat_rate_equivalent(loss, notional, 2) == {"rate": 0.1, "breaches": 2,
                                                       "mean_margin": 10.0}
    # Three breaches allowed: rate 0 (never negative); every positive loss breaches.
    assert flat_rate_equivalent(loss, notional, 3) == {"rate": 0.0, "breaches": 3,
                                                       "mean_margin": 0.0}
    assert flat_rate_equivalent(loss, notional, 4)["rate"] == 0.0
    # Zero notional with a positive loss: unavoidable breach.
    r = flat_rate_equivalent([5.0, 1.0], [0.0, 100.0], 0)
    assert r == {"rate": 0.01, "breaches": 1, "mean_margin": 0.5}
    with pytest.raises(ValueError):
        flat_rate_equivalent([1.0], [-1.0], 0)


# ---------------------------------------------------------------------------------------------
# summarise
# ---------------------------------------------------------------------------------------------


def make_backtest(seed=0, n_dates=80):
    rng = np.random.default_rng(seed)
    dates = pd.bdate_range("2024-01-01", periods=n_dates)
    frames = []
    for acc, ns, scale, n in [(101, "main", 1.0, n_dates), (101, "iso", 1.6, n_dates),
                              (202, "main", 0.8, n_dates - 10), (303, "main", 1.0, 1)]:
        sigma = 100 * np.exp(np.cumsum(rng.normal(0, 0.05, n)))
        loss = scale * sigma * rng.standard_t(4, n)
        var = sigma * stats.norm.isf(0.01)
        es = var * 1.2
        notional = np.full(n, 2000.0 * (1 + rng.random()))
        frames.append(pd.DataFrame({
            "date": dates[-n:], "account_id": acc, "netting_set": ns, "var": var, "es": es,
            "initial_margin": es * 1.1, "flat_rate_margin": 0.15 * notional,
            "realized_loss": loss, "gross_notional": notional,
        }))
    df = pd.concat(frames, ignore_index=True)
    df["exception"] = df["realized_loss"] > df["var"]
    df["margin_breach"] = df["realized_loss"] > df["initial_margin"]
    df["flat_rate_breach"] = df["realized_loss"] > df["flat_rate_margin"]
    return df


def test_summarise_is_json_ready_and_pools_by_summing():
    df = make_backtest()
    summary = summarise(df, 0.99, n_sim=500, seed=1)
    json.dumps(summary, allow_nan=False)
    ports = summary["portfolios"]
    pooled = summary["pooled"]
    assert [(p["account_id"], p["netting_set"]) for p in ports] == [
        (101, "iso"), (101, "main"), (202, "main"), (303, "main")]
    assert pooled["n_portfolios"] == 4
    for key in ("n_obs", "exceptions", "margin_breaches"):
        assert pooled[key] == sum(p[key] for p in ports)
    assert pooled["n_obs"] == len(df)
    assert pooled["exceptions"] == int(df["exception"].sum())
    assert pooled["flat_rate"]["breaches"] == sum(p["flat_rate"]["breaches"] for p in ports)
    assert pooled["flat_rate"]["breaches"] == int(df["flat_rate_breach"].sum())
    assert pooled["kupiec_pvalue"] == kupiec_pof(len(df), pooled["exceptions"], 0.01)[1]
    assert pooled["traffic_light"] == traffic_light(len(df), pooled["exceptions"], 0.99)
    # Christoffersen: transition counts summed per netting set.
    counts = np.zeros(4, dtype=int)
    for _, g in df.groupby(["account_id", "netting_set"]):
        counts += naive_counts(list(g.sort_values("date")["exception"]))
    lr = naive_lr_ind_from_counts(*counts)
    assert pooled["christoffersen_pvalue"] == pytest.approx(chi2_1_sf(lr), rel=1e-9)
    # Z2 over all rows.
    pooled_z2 = 1 - (np.where(df["exception"], df["realized_loss"], 0) / df["es"]).sum() / (
        len(df) * 0.01)
    assert pooled["es_z2"] == pytest.approx(pooled_z2, rel=1e-12)
    # Procyclicality of the total margin per date.
    total = df.groupby("date")["initial_margin"].sum().to_numpy()
    assert pooled["peak_to_trough"] == pytest.approx(total.max() / total.min())
    assert pooled["mean_margin"] == pytest.approx(df["initial_margin"].mean())
    # One observation: the undefined statistics are None.
    single = ports[3]
    assert single["n_obs"] == 1
    assert single["christoffersen_pvalue"] is None and single["cc_pvalue"] is None
    assert single["max_increase_1d"] is None and single["max_increase_5d"] is None
    assert single["kupiec_pvalue"] is not None
    assert summary["settings"]["measure_alpha"] == 0.01
    assert ports[0]["expected_rate"] == 0.01


def naive_lr_ind_from_counts(n00, n01, n10, n11):
    def term(k, prob):
        return 0.0 if k == 0 else k * math.log(prob)

    pi = (n01 + n11) / (n00 + n01 + n10 + n11)
    pi01 = n01 / (n00 + n01)
    pi11 = n11 / (n10 + n11) if n10 + n11 else 0.0
    return -2 * (term(n00 + n10, 1 - pi) + term(n01 + n11, pi)
                 - term(n00, 1 - pi01) - term(n01, pi01) - term(n10, 1 - pi11) - term(n11, pi11))


def test_summarise_per_portfolio_values_match_the_pure_functions():
    df = make_backtest(seed=3)
    summary = summarise(df, 0.99, n_sim=0)
    g = df[(df["account_id"] == 101) & (df["netting_set"] == "main")].sort_values("date")
    p = summary["portfolios"][1]
    hits = g["exception"].to_numpy()
    assert p["n_obs"] == len(g) and p["exceptions"] == hits.sum()
    assert p["christoffersen_pvalue"] == christoffersen_independence(hits)[1]
    assert p["cc_pvalue"] == pytest.approx(conditional_coverage(hits, 0.01)[1])
    assert p["es_z2"] == z2_statistic(g["realized_loss"], g["var"], g["es"], 0.01)
    assert p["es_z2_pvalue"] is None  # n_sim = 0
    im = g["initial_margin"].to_numpy()
    assert p["max_increase_5d"] == max_increase(im, 5)
    assert p["flat_rate_equivalent"] == flat_rate_equivalent(
        g["realized_loss"], g["gross_notional"], int(g["margin_breach"].sum()))
    assert p["start"] == "2024-01-01"


def test_summarise_ignores_row_order_and_is_reproducible():
    df = make_backtest(seed=4)
    a = summarise(df, 0.99, n_sim=300, seed=7)
    b = summarise(df.sample(frac=1.0, random_state=1), 0.99, n_sim=300, seed=7)
    assert a == b


def test_summarise_rejects_bad_tables():
    df = make_backtest()
    bad = df.copy()
    bad.loc[5, "realized_loss"] = np.nan
    with pytest.raises(ValueError, match="realized_loss"):
        summarise(bad, 0.99, n_sim=0)
    with pytest.raises(ValueError, match="missing columns"):
        summarise(df.drop(columns="es"), 0.99, n_sim=0)
    with pytest.raises(ValueError, match="duplicate"):
        summarise(pd.concat([df, df.iloc[:1]]), 0.99, n_sim=0)
    flipped = df.copy()
    flipped.loc[0, "exception"] = not flipped.loc[0, "exception"]
    with pytest.raises(ValueError, match="exception"):
        summarise(flipped, 0.99, n_sim=0)


def test_summarise_zero_es_and_zero_margin_give_none_not_nan():
    df = make_backtest(seed=2)
    sel = df["account_id"] == 202
    df.loc[sel, ["var", "es", "initial_margin"]] = 0.0
    df["exception"] = df["realized_loss"] > df["var"]
    df["margin_breach"] = df["realized_loss"] > df["initial_margin"]
    summary = summarise(df, 0.99, n_sim=200)
    json.dumps(summary, allow_nan=False)
    p = summary["portfolios"][2]
    assert p["account_id"] == 202
    assert p["es_z2"] is None and p["es_z2_pvalue"] is None
    assert p["peak_to_trough"] is None
    assert p["max_increase_1d"] is None
    assert summary["pooled"]["es_z2"] is not None  # over the other netting sets
