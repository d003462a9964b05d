"""Rank IC, HAC t, quantile returns and panel forecast tests: references, signal vs noise."""

from __future__ import annotations

import math

import numpy as np
import pytest
import statsmodels.api as sm
from scipy import stats

from lstm_madness.errors import ConfigError, DataError
from lstm_madness.evaluation.cross_section_stats import (
    daily_mse,
    daily_rank_ic,
    hac_mean,
    newey_west_lags,
    panel_direction_calls,
    panel_forecast_metrics,
    panel_forecast_tests,
    panel_hit_test,
    quantile_returns,
    rank_ic,
)
from lstm_madness.evaluation.forecast_tests import diebold_mariano, diebold_mariano_losses


def _panel(signal: float, D: int = 500, S: int = 25, seed: int = 0):
    """Realized next-day returns and predictions that carry ``signal`` of them."""
    rng = np.random.default_rng(seed)
    real = rng.normal(0.0, 0.02, (D, S))
    pred = signal * real + rng.normal(0.0, 0.02, (D, S))
    holes = rng.random((D, S)) < 0.1
    pred[holes] = np.nan
    real[rng.random((D, S)) < 0.05] = np.nan
    return pred, real


def test_daily_ic_matches_scipy_spearman() -> None:
    pred, real = _panel(0.3, D=40, S=12)
    pred[3, :] = 1.0  # no ranking
    pred[4, 2:] = np.nan  # two pairs only
    ic = daily_rank_ic(pred, real)
    for t in range(40):
        ok = np.isfinite(pred[t]) & np.isfinite(real[t])
        if t in (3, 4):
            assert np.isnan(ic[t])
            continue
        expected = stats.spearmanr(pred[t, ok], real[t, ok]).statistic
        assert ic[t] == pytest.approx(expected, abs=1e-12)


def test_daily_ic_with_ties_uses_average_ranks() -> None:
    pred = np.array([[1.0, 1.0, 2.0, 3.0, 3.0]])
    real = np.array([[0.1, 0.3, 0.2, 0.5, 0.4]])
    expected = stats.spearmanr(pred[0], real[0]).statistic
    assert daily_rank_ic(pred, real)[0] == pytest.approx(expected)


@pytest.mark.parametrize("lags", [0, 3, None])
def test_hac_t_matches_statsmodels(lags: int | None) -> None:
    rng = np.random.default_rng(2)
    e = rng.normal(size=400)
    x = 0.05 + e + 0.5 * np.roll(e, 1)  # autocorrelated
    res = hac_mean(x, lags)
    used = newey_west_lags(400) if lags is None else lags
    fit = sm.OLS(x, np.ones_like(x)).fit(cov_type="HAC", cov_kwds={"maxlags": used})
    assert res.lags == used and res.n == 400
    assert res.mean == pytest.approx(float(fit.params[0]))
    assert res.t_stat == pytest.approx(float(fit.tvalues[0]), rel=1e-10)


def test_hac_mean_degenerate() -> None:
    assert math.isnan(hac_mean(np.array([1.0, np.nan])).t_stat)
    assert math.isnan(hac_mean(np.ones(10)).t_stat)
    with pytest.raises(ConfigError):
        hac_mean(np.arange(10.0), -1)


def test_planted_signal_gives_a_significant_ic_and_noise_does_not() -> None:
    good = rank_ic(*_panel(0.5))
    assert good.mean > 0.1 and good.t_stat > 5 and good.pvalue < 1e-6
    assert good.positive_share > 0.7 and good.n_days == 500
    noise = [rank_ic(*_panel(0.0, seed=s)) for s in range(5)]
    assert all(abs(n.t_stat) < 3 for n in noise)
    assert sum(n.pvalue < 0.05 for n in noise) <= 1
    out = good.to_dict()
    assert out["rank_ic"] == good.mean and out["rank_ic_t"] == good.t_stat
    assert out["rank_ic_positive_share"] == good.positive_share
    assert "rank IC" in good.summary()


def _slow_quantiles(pred, real, q):
    per_day = []
    for t in range(pred.shape[0]):
        ok = [
            j for j in range(pred.shape[1]) if np.isfinite(pred[t, j]) and np.isfinite(real[t, j])
        ]
        if len(ok) < q or len({pred[t, j] for j in ok}) == 1:
            continue
        ranked = sorted(ok, key=lambda j: (pred[t, j], j))
        bins = [[] for _ in range(q)]
        for r, j in enumerate(ranked):
            bins[r * q // len(ranked)].append(real[t, j])
        per_day.append([np.mean(b) for b in bins])
    return np.mean(per_day, axis=0)


def test_quantile_returns_match_loop_and_are_monotone_with_signal() -> None:
    pred, real = _panel(0.5, D=60, S=13)
    pred[7] = np.where(np.isfinite(pred[7]), 0.0, np.nan)  # skipped: no ranking
    np.testing.assert_allclose(quantile_returns(pred, real), _slow_quantiles(pred, real, 5))
    np.testing.assert_allclose(quantile_returns(pred, real, 3), _slow_quantiles(pred, real, 3))
    big = quantile_returns(*_panel(0.5))
    assert np.all(np.diff(big) > 0)
    assert np.isnan(quantile_returns(pred[:, :3], real[:, :3])).all()
    with pytest.raises(ConfigError):
        quantile_returns(pred, real, 1)


def test_daily_mse_and_panel_tests_against_loops() -> None:
    labels, _ = _panel(0.0, D=30, S=8, seed=3)
    pred = 0.5 * np.nan_to_num(labels) + np.random.default_rng(4).normal(0, 0.01, labels.shape)
    pred[2, :5] = np.nan
    mse = daily_mse(labels, pred)
    for t in range(30):
        ok = np.isfinite(labels[t]) & np.isfinite(pred[t])
        assert mse[t] == pytest.approx(np.mean((labels[t, ok] - pred[t, ok]) ** 2))
    res = panel_forecast_tests(labels, pred)
    zero = daily_mse(labels, np.where(np.isfinite(pred), 0.0, np.nan))
    assert res.r2_oos == pytest.approx(1 - mse.sum() / zero.sum())
    expected = diebold_mariano_losses(mse, zero)
    assert res.dm is not None and res.dm.statistic == pytest.approx(expected.statistic)
    assert res.n_days == 30 and res.to_dict()["dm"]["pvalue"] == res.dm.pvalue


def test_panel_tests_signal_vs_noise() -> None:
    rng = np.random.default_rng(8)
    real = rng.normal(0, 0.02, (400, 20))
    labels = real - real.mean(axis=1, keepdims=True)
    good = panel_forecast_tests(labels, 0.3 * labels + rng.normal(0, 0.003, labels.shape))
    assert good.r2_oos > 0.2 and good.dm.pvalue < 1e-6
    noise = panel_forecast_tests(labels, rng.normal(0, 0.003, labels.shape))
    assert noise.r2_oos < 0 and noise.dm.pvalue > 0.5
    with pytest.raises(DataError):
        panel_forecast_tests(labels, np.full(labels.shape, np.nan))


def test_dm_on_losses_equals_dm_on_errors() -> None:
    rng = np.random.default_rng(1)
    y, a, b = rng.normal(size=(3, 200))
    for h in (1, 3):
        direct = diebold_mariano(y, a, b, h=h)
        losses = diebold_mariano_losses((y - a) ** 2, (y - b) ** 2, h=h, loss="squared")
        assert direct == losses


# ------------------------------------------------------------- one "up" per task, per day


def _loop_calls(y: np.ndarray, pred: np.ndarray, task: str) -> tuple[list[bool], list[bool]]:
    """The definition written out day by day, member by member."""
    actual, called = [], []
    for t in range(y.shape[0]):
        scored = [p for p in pred[t] if np.isfinite(p)]
        if not scored:
            continue
        centre = float(np.mean(scored)) if task == "regression" else float(np.median(scored))
        for s in range(y.shape[1]):
            p, label = pred[t, s], y[t, s]
            if np.isfinite(p) and np.isfinite(label) and p != centre:
                actual.append(bool(label > (0.5 if task == "classification" else 0.0)))
                called.append(bool(p > centre))
    return actual, called


@pytest.mark.parametrize("task", ["regression", "classification"])
def test_panel_calls_use_the_days_mean_or_median_as_up(task: str) -> None:
    pred, real = _panel(0.3, D=60, S=9, seed=3)
    y = real - np.nanmean(real, axis=1, keepdims=True)
    if task == "classification":
        y = np.where(
            np.isfinite(real), (real > np.nanmedian(real, axis=1, keepdims=True)) * 1.0, np.nan
        )
        pred = 1 / (1 + np.exp(-pred / 0.02))
    pred[5, :] = 0.4  # a day of equal predictions calls nothing
    actual, called = panel_direction_calls(y, pred, task)
    ref_actual, ref_called = _loop_calls(y, pred, task)
    assert actual.tolist() == ref_actual and called.tolist() == ref_called
    metrics = panel_forecast_metrics(y, pred, task)
    assert metrics["hit_n"] == len(ref_actual)
    assert metrics["hit_rate"] == pytest.approx(np.mean(np.equal(ref_actual, ref_called)))


def test_panel_metrics_are_per_day_so_r2_is_one_minus_mse_over_mse_zero() -> None:
    pred, real = _panel(0.3, D=80, S=15, seed=4)
    y = real - np.nanmean(real, axis=1, keepdims=True)
    pred[:10, 3:] = np.nan  # days with few members weigh as much as full days
    m = panel_forecast_metrics(y, pred, "regression")
    assert m["r2_oos"] == pytest.approx(1 - m["mse"] / m["mse_zero"], rel=1e-12)
    assert m["mse"] == pytest.approx(np.nanmean(daily_mse(y, pred)), rel=1e-12)
    ok = np.isfinite(y) & np.isfinite(pred)
    pooled = float(np.mean((y[ok] - pred[ok]) ** 2))
    assert m["mse"] != pytest.approx(pooled, rel=1e-6)  # not pooled over rows
    assert m["n"] == int(ok.sum()) and m["n_days"] == 80
    flat = panel_forecast_metrics(y, np.where(np.isfinite(pred), 0.0, np.nan), "regression")
    assert flat["hit_n"] == 0 and math.isnan(flat["hit_rate"]) and flat["r2_oos"] == 0.0


def test_panel_hit_test_is_clustered_by_day() -> None:
    """Calls that are right or wrong a whole day at a time are one draw a day, not S: the
    pooled binomial test calls 104 right days of 200 (52%, x 50 members) near certain;
    the day-clustered test sees 200 coin flips."""
    rng = np.random.default_rng(4)
    D, S = 200, 50
    labels = np.array([rng.permutation(S) < S // 2 for _ in range(D)], dtype=float)
    right_day = rng.permutation(D) < 104  # every call of a day right, or every call wrong
    agree = np.where(right_day[:, None], labels, 1.0 - labels)
    pred = np.where(agree == 1.0, 0.9, 0.1)  # 25 up and 25 down calls a day: median 0.5
    res = panel_hit_test(labels, pred, "classification")
    actual, called = panel_direction_calls(labels, pred, "classification")
    assert (res.hits, res.n) == (int(np.sum(actual == called)), actual.size) == (5200, 10000)
    assert res.hit_rate == 0.52 and res.method == "days"
    assert res.ci_low < 0.5 < res.ci_high
    pooled = stats.binomtest(res.hits, res.n, 0.5, alternative="greater").pvalue
    assert pooled < 1e-4 and res.pvalue > 0.2
    # the clustered p is the one-sided Newey-West t of the daily excess hits, by statsmodels
    excess = np.where(right_day, S / 2, -S / 2)
    fit = sm.OLS(excess, np.ones(D)).fit(cov_type="HAC", cov_kwds={"maxlags": newey_west_lags(D)})
    assert res.pvalue == pytest.approx(stats.t.sf(float(fit.tvalues[0]), D - 1), rel=1e-8)


def test_panel_hit_test_finds_independent_skill_and_not_noise() -> None:
    rng = np.random.default_rng(5)
    D, S = 300, 40
    labels = (rng.random((D, S)) < 0.5).astype(float)
    side = np.where(rng.random((D, S)) < 0.53, labels, 1 - labels) - 0.5
    skilled = 0.5 + side * rng.random((D, S))  # right 53% of the time, no ties
    noise = rng.random((D, S))
    good, none = (panel_hit_test(labels, p, "classification") for p in (skilled, noise))
    assert good.pvalue < 1e-3 and none.pvalue > 0.01
    # independent calls: the clustered test's z is close to the pooled binomial test's
    pooled = stats.binomtest(good.hits, good.n, 0.5, alternative="greater").pvalue
    assert stats.norm.isf(good.pvalue) == pytest.approx(stats.norm.isf(pooled), abs=0.6)
    empty = panel_hit_test(labels, np.full((D, S), np.nan), "classification")
    assert empty.n == 0 and math.isnan(empty.pvalue)
