"""Forecast tests against independent computations and hand-worked examples."""

from __future__ import annotations

import math

import numpy as np
import pytest
import statsmodels.api as sm
from scipy import stats

from lstm_madness.errors import ConfigError, DataError
from lstm_madness.evaluation.forecast_tests import (
    clopper_pearson,
    diebold_mariano,
    directions,
    hit_rate_test,
    newey_west_variance,
    pesaran_timmermann,
)
from lstm_madness.evaluation.metrics import hit_rate


def _data(seed: int = 1, n: int = 500):
    rng = np.random.default_rng(seed)
    y = rng.normal(0, 0.01, n)
    good = 0.3 * y + rng.normal(0, 0.008, n)
    noise = rng.normal(0, 0.006, n)
    return y, good, noise


# --------------------------------------------------------------------------- Diebold–Mariano


@pytest.mark.parametrize("h", [1, 2, 5])
@pytest.mark.parametrize("loss", ["squared", "absolute"])
def test_dm_equals_ols_on_constant_with_statsmodels_hac(h: int, loss: str) -> None:
    y, a, b = _data()
    loss_fn = (lambda e: e**2) if loss == "squared" else np.abs
    d = loss_fn(y - a) - loss_fn(y - b)
    n = d.size
    ols = sm.OLS(d, np.ones(n)).fit(
        cov_type="HAC", cov_kwds={"maxlags": h - 1, "use_correction": False}
    )
    hln = math.sqrt((n + 1 - 2 * h + h * (h - 1) / n) / n)
    expected = ols.tvalues[0] * hln
    res = diebold_mariano(y, a, b, loss=loss, h=h)
    assert res.statistic == pytest.approx(expected, rel=1e-10)
    assert res.pvalue == pytest.approx(stats.t.cdf(expected, n - 1), rel=1e-10)
    two = diebold_mariano(y, a, b, loss=loss, h=h, alternative="two-sided")
    assert two.pvalue == pytest.approx(2 * stats.t.sf(abs(expected), n - 1), rel=1e-10)


def test_newey_west_h1_is_plain_variance() -> None:
    x = np.random.default_rng(0).normal(size=100)
    assert newey_west_variance(x, 0) == pytest.approx(x.var(ddof=0))


def test_dm_direction_and_symmetry() -> None:
    y, good, noise = _data(2, 1000)
    better = diebold_mariano(y, good, noise)
    worse = diebold_mariano(y, noise, good)
    assert better.statistic < 0 and better.pvalue < 0.01
    assert worse.statistic == pytest.approx(-better.statistic)
    assert worse.pvalue > 0.99
    zero = np.zeros_like(y)
    assert diebold_mariano(y, noise, zero).pvalue > 0.5  # pure noise forecast loses to zero


def test_dm_identical_forecasts_give_no_evidence() -> None:
    y, a, _ = _data()
    res = diebold_mariano(y, a, a.copy())
    assert math.isnan(res.statistic) and res.pvalue == 1.0


def test_dm_rejects_bad_arguments() -> None:
    y, a, b = _data()
    with pytest.raises(ConfigError):
        diebold_mariano(y, a, b, loss="hinge")
    with pytest.raises(ConfigError):
        diebold_mariano(y, a, b, h=0)
    with pytest.raises(DataError):
        diebold_mariano(y, a[:-1], b)


# --------------------------------------------------------------------------- Pesaran–Timmermann


def test_pt_hand_worked_example() -> None:
    # n = 10, P_y = P_x = 0.6, 8 hits: P* = 0.52, V(P) = 0.02496, V(P*) = 0.004224,
    # S = 0.28 / sqrt(0.020736) = 0.28 / 0.144 = 1.9444...
    y = np.array([1, 1, 1, 1, 1, 1, 0, 0, 0, 0], dtype=bool)
    x = np.array([1, 1, 1, 1, 1, 0, 0, 0, 0, 1], dtype=bool)
    res = pesaran_timmermann(y, x)
    assert res.accuracy == pytest.approx(0.8)
    assert res.expected_accuracy == pytest.approx(0.52)
    assert res.statistic == pytest.approx(0.28 / 0.144)
    assert res.pvalue == pytest.approx(1 - stats.norm.cdf(0.28 / 0.144))


def test_pt_squared_is_asymptotically_the_independence_chi2() -> None:
    rng = np.random.default_rng(4)
    y = rng.normal(size=4000) > 0
    x = (rng.normal(size=4000) + 0.2 * (y - 0.5)) > 0
    table = np.array([[np.sum(y & x), np.sum(y & ~x)], [np.sum(~y & x), np.sum(~y & ~x)]])
    chi2 = stats.chi2_contingency(table, correction=False)[0]
    res = pesaran_timmermann(y, x)
    assert res.statistic**2 == pytest.approx(chi2, rel=5e-3)
    assert res.statistic > 0 and res.pvalue < 0.05


def test_pt_constant_forecast_is_undefined() -> None:
    y = np.random.default_rng(0).normal(size=50) > 0
    res = pesaran_timmermann(y, np.ones(50, dtype=bool))
    assert math.isnan(res.statistic) and math.isnan(res.pvalue)


def test_directions() -> None:
    np.testing.assert_array_equal(directions(np.array([-0.1, 0.0, 0.2])), [False, False, True])
    np.testing.assert_array_equal(
        directions(np.array([0.4, 0.5, 0.6]), "classification"), [False, False, True]
    )


# --------------------------------------------------------------------------- binomial


def test_hit_rate_test_against_exact_tail_sum() -> None:
    y = np.array([1.0] * 100)
    pred = np.array([1.0] * 60 + [-1.0] * 40)
    res = hit_rate_test(y, pred)
    tail = sum(math.comb(100, k) for k in range(60, 101)) / 2**100
    assert (res.hits, res.n) == (60, 100)
    assert res.pvalue == pytest.approx(tail, rel=1e-9)
    assert res.ci_low < 0.6 < res.ci_high


def test_hit_rate_test_counts_like_metrics() -> None:
    y, good, _ = _data(7)
    y[:5] = 0.0  # flat days
    good[5:8] = 0.0  # no-call forecasts
    res = hit_rate_test(y, good)
    assert res.hit_rate == pytest.approx(hit_rate(y, good, "regression"))
    labels = (y > 0).astype(float)
    probs = 0.5 + good
    res_c = hit_rate_test(labels, probs, "classification")
    assert res_c.hit_rate == pytest.approx(hit_rate(labels, probs, "classification"))


@pytest.mark.parametrize(("k", "n"), [(0, 10), (1, 10), (5, 10), (10, 10), (531, 1000), (60, 100)])
def test_clopper_pearson_equals_scipy_exact_interval(k: int, n: int) -> None:
    ci = stats.binomtest(k, n).proportion_ci(0.95, method="exact")
    low, high = clopper_pearson(k, n, 0.95)
    assert low == pytest.approx(ci.low, abs=1e-10)
    assert high == pytest.approx(ci.high, abs=1e-10)


def test_p_values_are_scipy_stats_numbers_exactly() -> None:
    """DM and PT p-values call the special functions behind ``scipy.stats.t`` and
    ``scipy.stats.norm`` directly: the same bits."""
    y, good, noise = _data()
    for alternative in ("less", "greater", "two-sided"):
        dm = diebold_mariano(y, good, noise, alternative=alternative)
        want = {
            "less": stats.t.cdf(dm.statistic, y.size - 1),
            "greater": stats.t.sf(dm.statistic, y.size - 1),
            "two-sided": 2.0 * stats.t.sf(abs(dm.statistic), y.size - 1),
        }[alternative]
        assert dm.pvalue == float(want)
    pt = pesaran_timmermann(directions(y, "regression"), directions(good, "regression"))
    assert pt.pvalue == float(stats.norm.sf(pt.statistic))
