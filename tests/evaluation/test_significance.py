"""Sharpe tests, PSR/DSR (paper example), bootstrap CIs, SPA, PBO and seed spread."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from scipy import integrate, stats

from lstm_madness.evaluation.backtest import sharpe_ratio
from lstm_madness.evaluation.significance import (
    deflated_sharpe_ratio,
    effective_trials,
    excess_return_ci,
    expected_max_sharpe,
    mean_pairwise_correlation,
    probabilistic_sharpe_ratio,
    resample_sums,
    seed_spread,
    sharpe_ci,
    sharpe_tstat,
    stationary_bootstrap_indices,
)
from lstm_madness.evaluation.snooping import (
    probability_of_backtest_overfitting,
    spa_stepm,
    spa_test,
)

# --------------------------------------------------------------------------- Sharpe, PSR, DSR


def test_sharpe_tstat_is_the_one_sample_t_test() -> None:
    r = np.random.default_rng(0).normal(0.0004, 0.01, 750)
    res = sharpe_tstat(r, risk_free=0.02)
    rf_d = 1.02 ** (1 / 252) - 1
    ref = stats.ttest_1samp(r - rf_d, 0.0, alternative="greater")
    assert res.tstat == pytest.approx(ref.statistic, rel=1e-10)
    assert res.pvalue == pytest.approx(ref.pvalue, rel=1e-10)
    assert res.sharpe == pytest.approx(ref.statistic / math.sqrt(750) * math.sqrt(252))


def test_dsr_paper_example() -> None:
    """Bailey & López de Prado (2014), numerical example: annualized SR 2.5 over 1250 daily
    returns (250 a year), skewness -3, kurtosis 10, N = 100 trials with annualized
    V[SR] = 1/2: E[max SR] ≈ 0.1132 per day and DSR ≈ 0.9004."""
    sr, v = 2.5 / math.sqrt(250), 0.5 / 250
    sr0 = expected_max_sharpe(100, v)
    assert sr0 == pytest.approx(0.1132, abs=5e-5)
    dsr = probabilistic_sharpe_ratio(sr, 1250, skew=-3, kurtosis=10, benchmark=sr0)
    assert dsr == pytest.approx(0.9004, abs=5e-5)


def test_psr_normal_case_is_lo_2002() -> None:
    # with skew 0, kurtosis 3: Var(SR) = (1 + SR^2 / 2) / (n - 1) (Lo 2002)
    sr, n = 0.08, 500
    expected = stats.norm.cdf((sr - 0.02) / math.sqrt((1 + sr**2 / 2) / (n - 1)))
    assert probabilistic_sharpe_ratio(sr, n, benchmark=0.02) == pytest.approx(expected)


def test_expected_max_sharpe_approximates_the_max_of_normals() -> None:
    for n in (10, 100, 1000):
        exact = integrate.quad(
            lambda x, n=n: x * n * stats.norm.pdf(x) * stats.norm.cdf(x) ** (n - 1), -10, 10
        )[0]
        assert expected_max_sharpe(n, 1.0) == pytest.approx(exact, rel=0.03)  # an approximation
    assert expected_max_sharpe(1, 1.0) == 0.0
    assert expected_max_sharpe(50, 4.0) == pytest.approx(2 * expected_max_sharpe(50, 1.0))


def test_deflated_sharpe_from_returns() -> None:
    r = np.random.default_rng(1).normal(0.0008, 0.01, 1000)
    one = deflated_sharpe_ratio(r, trials=1)
    sr_d = r.mean() / r.std(ddof=1)
    psr = probabilistic_sharpe_ratio(
        sr_d, 1000, skew=stats.skew(r), kurtosis=stats.kurtosis(r, fisher=False)
    )
    assert one.dsr == pytest.approx(psr) and one.psr == pytest.approx(psr)
    assert one.variance_source == "single_trial" and one.benchmark_sharpe == 0
    ts = np.array([0.2, 0.9, -0.4, 1.3, 0.1])
    many = deflated_sharpe_ratio(r, trials=40, trial_sharpes=ts)
    assert many.variance_source == "trial_sharpes"
    assert many.benchmark_sharpe == pytest.approx(
        ts.std(ddof=1)
        * (
            (1 - np.euler_gamma) * stats.norm.ppf(1 - 1 / 40)
            + np.euler_gamma * stats.norm.ppf(1 - 1 / (40 * math.e))
        )
    )
    assert many.dsr < one.dsr
    null = deflated_sharpe_ratio(r, trials=40)
    assert null.variance_source == "null"
    assert null.sharpe_variance == pytest.approx(252 / 999)
    floored = deflated_sharpe_ratio(r, trials=40, trial_sharpes=[0.5, 0.51], floor_at_null=True)
    assert floored.variance_source == "trial_sharpes+null_floor"
    assert floored.dsr == pytest.approx(null.dsr)


def _returns_with_sharpe(sharpe: float, n: int = 1000) -> np.ndarray:
    """Daily returns with exactly this annualized Sharpe, zero skew and near-normal kurtosis."""
    z = stats.norm.ppf((np.arange(n) + 0.5) / n)
    z = (z - z.mean()) / z.std(ddof=1)
    return 0.01 * z + 0.01 * sharpe / math.sqrt(252)


def test_dsr_reproducer_counts_the_judged_run_in_its_variance() -> None:
    """Issue 8: Sharpe 0.735 over 1,000 days, two other trials at 0.1. V over all three
    trials' Sharpe ratios gives DSR 0.7996 (the paper's formula); V over the other two
    alone is 0, which removed the deflation (DSR = PSR = 0.9282)."""
    r = _returns_with_sharpe(0.735)
    res = deflated_sharpe_ratio(r, trials=3, trial_sharpes=[0.735, 0.1, 0.1])
    assert res.sharpe == pytest.approx(0.735)
    assert res.dsr == pytest.approx(0.7996, abs=1e-4)
    assert res.psr == pytest.approx(0.9282, abs=1e-4)
    # sharpe_variance is V in annualized units: the variance of annualized Sharpe ratios
    assert res.sharpe_variance == pytest.approx(np.var([0.735, 0.1, 0.1], ddof=1))
    daily = np.array([0.735, 0.1, 0.1]) / math.sqrt(252)
    sr0 = np.sqrt(np.var(daily, ddof=1)) * (
        (1 - np.euler_gamma) * stats.norm.ppf(1 - 1 / 3)
        + np.euler_gamma * stats.norm.ppf(1 - 1 / (3 * math.e))
    )
    assert res.benchmark_sharpe == pytest.approx(sr0 * math.sqrt(252))
    # one trial: no deflation at all
    assert deflated_sharpe_ratio(r, trials=1, trial_sharpes=[0.735]).dsr == pytest.approx(res.psr)


def test_effective_trials_and_mean_correlation() -> None:
    rng = np.random.default_rng(3)
    common = rng.normal(0, 0.01, (500, 1))
    m = common + rng.normal(0, 0.01, (500, 4))  # pairwise correlation about 0.5
    rho = mean_pairwise_correlation(m)
    c = np.corrcoef(m, rowvar=False)
    assert rho == pytest.approx(c[np.triu_indices(4, 1)].mean())
    assert 0.35 < rho < 0.65
    assert effective_trials(4, rho) == pytest.approx(rho + (1 - rho) * 4)
    assert effective_trials(4, 1.0) == 1.0 and effective_trials(4, 0.0) == 4.0
    assert effective_trials(4, -0.3) == 4.0  # clipped to [0, 1]
    same = np.column_stack([common[:, 0]] * 3)
    assert mean_pairwise_correlation(same) == pytest.approx(1.0)
    anti = np.column_stack([common[:, 0], -common[:, 0]])
    assert mean_pairwise_correlation(anti) == 0.0
    assert mean_pairwise_correlation(common) == 0.0  # one column: independent by default
    # fractional N: SR0 floored at 0 when the formula turns negative (N close to 1)
    assert expected_max_sharpe(1.1, 1.0) == 0.0
    assert 0 < expected_max_sharpe(2.5, 1.0) < expected_max_sharpe(3, 1.0)
    r = _returns_with_sharpe(0.735)
    ts = [0.735, 0.1, 0.1]
    eff = deflated_sharpe_ratio(r, trials=effective_trials(3, 0.5), trial_sharpes=ts)
    raw = deflated_sharpe_ratio(r, trials=3, trial_sharpes=ts)
    assert raw.dsr < eff.dsr < raw.psr and eff.trials == pytest.approx(2.0)


# --------------------------------------------------------------------------- bootstrap


def test_sharpe_ci_width_matches_asymptotics() -> None:
    r = np.random.default_rng(2).normal(0.0005, 0.01, 1000)
    ci = sharpe_ci(r, reps=400, seed=1)
    se = math.sqrt(252 / 1000)  # annualized SE of a Sharpe estimate of iid normal returns
    assert ci.low < ci.estimate < ci.high
    assert ci.high - ci.low == pytest.approx(2 * 1.96 * se, rel=0.25)
    again = sharpe_ci(r, reps=400, seed=1)
    assert (again.low, again.high) == (ci.low, ci.high)


def test_stationary_bootstrap_indices() -> None:
    idx = stationary_bootstrap_indices(500, 10.0, 400, seed=1)
    assert idx.shape == (400, 500) and idx.min() >= 0 and idx.max() < 500
    starts = np.diff(idx, axis=1) != 1  # a new block (or a wrap) starts here
    assert (starts.sum() + 400) / idx.size == pytest.approx(1 / 10, rel=0.05)
    np.testing.assert_array_equal(idx, stationary_bootstrap_indices(500, 10.0, 400, seed=1))
    assert np.bincount(idx.ravel(), minlength=500).min() > 0.8 * 400  # every day is drawn
    r = np.random.default_rng(5).normal(0.0005, 0.01, 300)
    assert sharpe_ci(r, reps=50, risk_free=0.02).estimate == pytest.approx(
        sharpe_ratio(r, 0.02), rel=1e-12
    )


def test_excess_return_ci() -> None:
    rng = np.random.default_rng(3)
    b = rng.normal(0.0003, 0.01, 800)
    shifted = excess_return_ci(b + 0.001, b, reps=200, seed=0)
    assert shifted.estimate == pytest.approx(0.252)
    assert shifted.low == pytest.approx(0.252) and shifted.high == pytest.approx(0.252)
    s = b + rng.normal(0.0, 0.005, 800)
    ci = excess_return_ci(s, b, reps=300, seed=0)
    assert ci.low < ci.estimate < ci.high
    assert ci.estimate == pytest.approx(252 * (s - b).mean())


@pytest.mark.parametrize(("block", "reps"), [(1.0, 300), (1.7, 301), (12.5, 300), (3.0, 1)])
def test_resample_sums_compiled_and_numpy_paths_give_the_same_bits(
    monkeypatch, block, reps
) -> None:
    from lstm_madness.evaluation import significance

    y = np.random.default_rng(6).normal(0.0, 0.01, 257)
    monkeypatch.setattr(significance, "_compiled_resampling", lambda: False)
    numpy_sums = resample_sums(y, block, reps, seed=2)
    monkeypatch.setattr(significance, "_compiled_resampling", lambda: True)
    compiled_sums = resample_sums(y, block, reps, seed=2)
    for a, b in zip(numpy_sums, compiled_sums, strict=True):
        np.testing.assert_array_equal(a, b)
    # both are the sums over the resamples of stationary_bootstrap_indices
    samples = y[stationary_bootstrap_indices(y.size, block, reps, seed=2)]
    np.testing.assert_allclose(compiled_sums[0], samples.sum(axis=1), rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(compiled_sums[1], (samples**2).sum(axis=1), rtol=1e-12)


def test_bootstrap_cis_equal_the_statistic_over_explicit_resamples() -> None:
    rng = np.random.default_rng(8)
    r, b = rng.normal(0.0004, 0.01, 400), rng.normal(0.0002, 0.01, 400)
    idx = stationary_bootstrap_indices(400, 3.0, 500, seed=0)
    sharpes = np.sqrt(252) * r[idx].mean(axis=1) / r[idx].std(axis=1, ddof=1)
    ci = sharpe_ci(r, reps=500, block=3.0, seed=0)
    assert (ci.low, ci.high) == pytest.approx(tuple(np.percentile(sharpes, [2.5, 97.5])), rel=1e-9)
    excess = 252 * (r - b)[idx].mean(axis=1)
    ci = excess_return_ci(r, b, reps=500, block=3.0, seed=0)
    assert (ci.low, ci.high) == pytest.approx(tuple(np.percentile(excess, [2.5, 97.5])), rel=1e-9)
    flat = sharpe_ci(np.zeros(300), reps=100, block=2.0, seed=0)
    assert (flat.estimate, flat.low, flat.high) == (0.0, 0.0, 0.0)


# --------------------------------------------------------------------------- SPA


def test_spa_detects_a_real_edge_and_not_noise() -> None:
    rng = np.random.default_rng(4)
    bench = rng.normal(0.0003, 0.01, 1000)
    noise = bench[:, None] + rng.normal(0, 0.01, (1000, 5)) - 0.0002
    res_noise = spa_test(noise, bench, reps=300, seed=0)
    assert res_noise.pvalue > 0.2 and res_noise.n_models == 5
    edge = np.column_stack([noise, bench + 0.002 + rng.normal(0, 0.005, 1000)])
    res_edge = spa_test(edge, bench, reps=300, seed=0)
    assert res_edge.pvalue < 0.05
    assert res_edge.pvalue_lower <= res_edge.pvalue <= res_edge.pvalue_upper


def test_spa_of_spa_stepm_is_arch_spa_on_the_same_draws() -> None:
    from arch.bootstrap import SPA

    rng = np.random.default_rng(9)
    bench = rng.normal(0.0003, 0.01, 700)
    models = bench[:, None] + rng.normal(0.0004, 0.01, (700, 6))
    spa, stepm = spa_stepm(models, bench, reps=400, block=4.0, seed=3)
    ref = SPA(-bench, -models, block_size=4, reps=400, seed=3)
    ref.compute()
    assert (spa.pvalue, spa.pvalue_lower, spa.pvalue_upper) == (
        float(ref.pvalues["consistent"]),
        float(ref.pvalues["lower"]),
        float(ref.pvalues["upper"]),
    )
    assert spa == spa_test(models, bench, reps=400, block=4.0, seed=3)
    assert stepm.n_models == 6 and stepm.block_length == 4.0 and stepm.reps == 400


# --------------------------------------------------------------------------- StepM


def test_stepm_selects_a_planted_strong_run_and_not_a_loser_of_the_same_set() -> None:
    """One strong member makes SPA reject for the whole set; StepM still tells the members
    apart: it selects the strong one, not the losing one beside it."""
    rng = np.random.default_rng(12)
    n = 1000
    bench = rng.normal(0.0003, 0.01, n)
    strong = bench + 0.002 + rng.normal(0, 0.005, n)
    loser = -bench + rng.normal(0, 0.002, n)  # net Sharpe well below zero
    noise = bench[:, None] + rng.normal(0, 0.01, (n, 3)) - 0.0002
    spa, stepm = spa_stepm(np.column_stack([loser, noise, strong]), bench, reps=500, seed=0)
    assert spa.pvalue < 0.05  # the set: some strategy beats buy-and-hold
    assert stepm.selects(4) and not stepm.selects(0)
    assert stepm.superior == (4,)
    assert stepm.to_dict()["superior"] == [4]


@pytest.mark.parametrize("seed", range(6))
def test_stepm_selects_what_arch_stepm_selects(seed: int) -> None:
    from arch.bootstrap import StepM

    rng = np.random.default_rng(seed)
    bench = rng.normal(0.0003, 0.01, 600)
    models = bench[:, None] + rng.normal(0, 0.01, (600, 6))
    models[:, : seed % 4] += 0.0015  # 0 to 3 strategies with an edge
    _, stepm = spa_stepm(models, bench, block=3.0, reps=300, seed=seed)
    ref = StepM(-bench, -models, size=0.05, block_size=3, reps=300, seed=seed)
    ref.compute()
    assert stepm.superior == tuple(sorted(ref.superior_models))


def test_stepm_selects_every_strategy_when_all_beat_the_benchmark() -> None:
    """arch 8.0.0's StepM fails here (its loop reaches an empty subset); ours stops."""
    from arch.bootstrap import StepM

    rng = np.random.default_rng(2)
    bench = rng.normal(0.0, 0.01, 800)
    models = np.column_stack(  # the second is found only once the first is set aside
        [bench + 0.003 + rng.normal(0, 0.004, 800), bench + 0.0004 + rng.normal(0, 0.004, 800)]
    )
    with pytest.raises(ValueError):
        StepM(-bench, -models, block_size=1, reps=300, seed=0).compute()
    _, stepm = spa_stepm(models, bench, block=1.0, reps=300, seed=0)
    assert stepm.superior == (0, 1)


def test_stepm_on_noise_keeps_the_family_wise_error_rate() -> None:
    """Over 100 seeded trial sets of noise runs (no run beats buy-and-hold in
    expectation), StepM at a 5% family-wise error rate selects a run in at most 8."""
    any_selected = 0
    for seed in range(100):
        rng = np.random.default_rng(1000 + seed)
        bench = rng.normal(0.0003, 0.01, 500)
        runs = bench[:, None] + rng.normal(0, 0.01, (500, 5))  # same mean as the benchmark
        _, stepm = spa_stepm(runs, bench, fwer=0.05, reps=200, seed=seed)
        any_selected += bool(stepm.superior)
    assert any_selected <= 8


# --------------------------------------------------------------------------- PBO


def _pbo_reference(m: np.ndarray, s: int) -> tuple[float, list[float]]:
    """CSCV written out with a loop over the combinations."""
    t = m.shape[0] - m.shape[0] % s
    blocks = np.array_split(m[m.shape[0] - t :], s)
    logits = []
    for combo in itertools.combinations(range(s), s // 2):
        is_ = np.vstack([blocks[i] for i in combo])
        oos = np.vstack([blocks[i] for i in range(s) if i not in combo])
        sr_is = is_.mean(0) / is_.std(0, ddof=1)
        sr_oos = oos.mean(0) / oos.std(0, ddof=1)
        best = int(np.argmax(sr_is))
        rank = stats.rankdata(sr_oos)[best]
        w = rank / (m.shape[1] + 1)
        logits.append(math.log(w / (1 - w)))
    return float(np.mean(np.array(logits) <= 0)), logits


def test_pbo_matches_a_reference_loop() -> None:
    m = np.random.default_rng(5).normal(0, 0.01, (125, 5))  # odd N: a median rank, logit 0
    res = probability_of_backtest_overfitting(m, n_blocks=6, min_block_days=10)
    pbo, logits = _pbo_reference(m, 6)
    assert res.n_blocks == 6 and res.n_combinations == math.comb(6, 3)
    assert res.pbo == pytest.approx(pbo)
    np.testing.assert_allclose(res.logits, logits)


def test_pbo_noise_is_near_one_half() -> None:
    values = [
        probability_of_backtest_overfitting(
            np.random.default_rng(seed).normal(0, 0.01, (480, 8)), n_blocks=8
        ).pbo
        for seed in range(30)
    ]
    assert 0.35 < np.mean(values) < 0.65


def test_pbo_real_persistent_edge_is_low() -> None:
    m = np.random.default_rng(6).normal(0, 0.01, (1000, 10))
    m[:, 3] += 0.002
    assert probability_of_backtest_overfitting(m).pbo < 0.05


def test_pbo_needs_strategies_and_length() -> None:
    one = probability_of_backtest_overfitting(np.zeros((500, 1)))
    assert math.isnan(one.pbo) and "2 strategies" in one.reason
    short = probability_of_backtest_overfitting(np.zeros((60, 5)))
    assert math.isnan(short.pbo) and "60" in short.reason
    sampled = probability_of_backtest_overfitting(
        np.random.default_rng(0).normal(size=(2000, 3)), n_blocks=20, max_combinations=500
    )
    assert sampled.n_combinations == 500 and 0 <= sampled.pbo <= 1


# --------------------------------------------------------------------------- seeds


def test_seed_spread() -> None:
    x = np.array([0.3, -0.1, 0.5, np.nan, 0.2])
    s = seed_spread(x)
    v = x[~np.isnan(x)]
    assert (s.n, s.min, s.max) == (4, v.min(), v.max())
    assert s.median == pytest.approx(np.median(v)) and s.mean == pytest.approx(v.mean())
    assert s.std == pytest.approx(v.std(ddof=1))
    assert seed_spread(np.array([])).n == 0


def test_sharpe_moments_equal_scipy() -> None:
    r = np.random.default_rng(3).standard_t(4, 800) * 0.01 + 0.0004
    res = sharpe_tstat(r)
    assert res.skew == pytest.approx(stats.skew(r), rel=1e-12)
    assert res.kurtosis == pytest.approx(stats.kurtosis(r, fisher=False), rel=1e-12)


def test_normal_functions_give_scipy_stats_numbers_exactly() -> None:
    """PSR, the expected maximum Sharpe and the Sharpe t-test call the special functions
    behind ``scipy.stats.norm`` and ``scipy.stats.t`` directly: the same bits."""
    for sharpe, n, skew, kurt in [(0.05, 750, -0.3, 5.0), (-0.02, 40, 0.1, 3.0), (0.2, 9, 0, 4)]:
        var = 1.0 - skew * sharpe + (kurt - 1.0) / 4.0 * sharpe**2
        z = sharpe * math.sqrt(n - 1) / math.sqrt(var)
        got = probabilistic_sharpe_ratio(sharpe, n, skew=skew, kurtosis=kurt)
        assert got == float(stats.norm.cdf(z))
    for trials, v in [(2, 0.01), (3.7, 0.5), (1000, 2e-4)]:
        z1 = stats.norm.ppf(1 - 1 / trials)
        z2 = stats.norm.ppf(1 - 1 / (trials * math.e))
        want = max(0.0, float(math.sqrt(v) * ((1 - np.euler_gamma) * z1 + np.euler_gamma * z2)))
        assert expected_max_sharpe(trials, v) == want
    r = np.random.default_rng(3).normal(0.0002, 0.01, 300)
    res = sharpe_tstat(r)
    assert res.pvalue == float(stats.t.sf(res.tstat, r.size - 1))


def test_pbo_rank_of_the_best_equals_scipy_rankdata_with_ties() -> None:
    from lstm_madness.evaluation.snooping import _average_rank

    rng = np.random.default_rng(5)
    values = rng.integers(0, 4, size=(200, 7)).astype(float)  # many ties
    chosen = rng.integers(0, 7, size=200)
    want = stats.rankdata(values, axis=1)[np.arange(200), chosen]
    np.testing.assert_array_equal(_average_rank(values, chosen), want)
