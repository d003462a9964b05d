"""Cross-sectional baselines: signals against loops, no look-ahead, the pooled ridge."""

from __future__ import annotations

import numpy as np
import pytest

from lstm_madness.cross_section import build_cross_section_fold, build_panel
from lstm_madness.data.membership import membership_mask
from lstm_madness.errors import ConfigError, MadnessError
from lstm_madness.models.baselines import RidgeForecaster
from lstm_madness.models.cross_section_baselines import (
    CROSS_SECTION_BASELINES,
    MomentumRanker,
    PooledRidge,
    ReversalRanker,
    ZeroRanker,
    make_cross_section_baseline,
    momentum_scores,
    reversal_scores,
)


@pytest.fixture
def fold(make_universe):
    fields, intervals, market = make_universe(n_symbols=10, n_days=1200)
    mask = membership_mask(intervals, fields["ret"].index, fields["ret"].columns)
    panel = build_panel(fields, mask, 5, benchmark_returns=market)
    dates = panel.dates
    return build_cross_section_fold(panel, train=(None, dates[799]), test=(dates[800], None))


def test_momentum_matches_a_loop() -> None:
    rng = np.random.default_rng(0)
    ret = rng.normal(0, 0.02, (60, 4))
    ret[30, 1] = np.nan
    got = momentum_scores(ret, lookback=20, skip=1)
    for t in range(60):
        for s in range(4):
            window = ret[t - 20 : t, s] if t >= 20 else None  # rows t-20 .. t-1
            if window is None or not np.isfinite(window).all():
                assert np.isnan(got[t, s])
            else:
                assert got[t, s] == pytest.approx(np.prod(1 + window) - 1)
    np.testing.assert_allclose(momentum_scores(ret, 3, 0)[2], np.prod(1 + ret[:3], axis=0) - 1)
    np.testing.assert_array_equal(reversal_scores(ret), -ret)
    with pytest.raises(ConfigError):
        momentum_scores(ret, 0)


def test_signals_never_look_ahead() -> None:
    rng = np.random.default_rng(1)
    ret = rng.normal(0, 0.02, (80, 5))
    t = 50
    moved = ret.copy()
    moved[t + 1 :] = rng.normal(0, 0.5, moved[t + 1 :].shape)
    for f in (reversal_scores, momentum_scores):
        np.testing.assert_array_equal(f(ret)[: t + 1], f(moved)[: t + 1])


def test_panel_baselines_read_the_test_samples(fold) -> None:
    d, s = fold.test
    returns = fold.panel.returns
    np.testing.assert_array_equal(ReversalRanker().fit(fold).predict(fold), -returns[d, s])
    np.testing.assert_array_equal(
        MomentumRanker(10, 2).fit(fold).predict(fold), momentum_scores(returns, 10, 2)[d, s]
    )
    assert not ZeroRanker().fit(fold).predict(fold).any()
    some = (d[:3], s[:3])
    assert ReversalRanker().fit(fold).predict(fold, *some).shape == (3,)
    with pytest.raises(MadnessError, match="not fitted"):
        ReversalRanker().predict(fold)


def test_pooled_ridge_is_ridge_on_the_folds_windows(fold) -> None:
    model = PooledRidge(alpha=2.0).fit(fold)
    reference = RidgeForecaster(alpha=2.0).fit(fold.X_train, fold.y_train)
    np.testing.assert_allclose(model.predict(fold), reference.predict(fold.X_test))
    d, s = fold.test[0][:4], fold.test[1][:4]
    np.testing.assert_allclose(model.predict(fold, d, s), reference.predict(fold.X(d, s)))
    with pytest.raises(MadnessError, match="not fitted"):
        PooledRidge().predict(fold)


def test_make_baseline() -> None:
    assert CROSS_SECTION_BASELINES == ("zero", "reversal", "momentum", "ridge")
    assert isinstance(make_cross_section_baseline("momentum", lookback=5), MomentumRanker)
    assert make_cross_section_baseline("ridge", alpha=3.0).alpha == 3.0
    with pytest.raises(ConfigError, match="valid: zero, reversal"):
        make_cross_section_baseline("mean")
    with pytest.raises(ConfigError, match="baseline 'zero'"):
        make_cross_section_baseline("zero", alpha=1.0)
