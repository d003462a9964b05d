"""Cross-sectional baselines: signals against loops, no look-ahead, the pooled ridge and
logistic."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from lstm_madness.cross_section import build_cross_section_fold, build_panel
from lstm_madness.data.membership import membership_mask
from lstm_madness.errors import ConfigError, MadnessError
from lstm_madness.evaluation.cross_section_stats import daily_rank_ic
from lstm_madness.experiment.config import load_config
from lstm_madness.models.baselines import RidgeForecaster
from lstm_madness.models.cross_section_baselines import (
    CROSS_SECTION_BASELINE_NAMES,
    CROSS_SECTION_BASELINES,
    MomentumRanker,
    PooledLogistic,
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
    names = CROSS_SECTION_BASELINE_NAMES  # the defaults, then the opt-in logistic
    assert names == (*CROSS_SECTION_BASELINES, "logistic")
    assert make_cross_section_baseline("logistic", "classification", C=0.5).C == 0.5
    assert isinstance(make_cross_section_baseline("momentum", lookback=5), MomentumRanker)
    assert make_cross_section_baseline("ridge", alpha=3.0).alpha == 3.0
    with pytest.raises(ConfigError, match="valid: zero, reversal"):
        make_cross_section_baseline("mean")
    with pytest.raises(ConfigError, match="baseline 'zero'"):
        make_cross_section_baseline("zero", alpha=1.0)


# ------------------------------------------------------------------ the pooled logistic


def _fold(make_universe, kind: str, *, reversal: float = 0.3, labels=None):
    """A universe with a planted reversal (each member's last return predicts its next);
    ``labels(panel)`` replaces the panel's labels before the fold is built."""
    fields, intervals, _ = make_universe(n_symbols=12, n_days=1200, reversal=reversal)
    mask = membership_mask(intervals, fields["ret"].index, fields["ret"].columns)
    panel = build_panel(fields, mask, 5, kind=kind, standardized=True)
    if labels is not None:
        panel = dataclasses.replace(panel, labels=labels(panel))
    dates = panel.dates
    return build_cross_section_fold(panel, train=(None, dates[799]), test=(dates[800], None))


@pytest.mark.parametrize("kind", ["cross_section_direction", "cross_section"])
def test_pooled_logistic_learns_a_planted_reversal(make_universe, kind) -> None:
    fold = _fold(make_universe, kind)
    model = PooledLogistic().fit(fold)
    assert model.converged_ and model.coef_.shape == (5 * 2,)  # time_steps · (ret, ret_xs_z)
    last = fold.panel.feature_names.index("ret")
    assert model.coef_.reshape(5, 2)[-1, last] < 0  # a high last return: below the median
    pred = model.predict(fold)
    centre = 0.0 if kind == "cross_section_direction" else 0.5
    assert np.all((pred + centre > 0) & (pred + centre < 1))  # a probability, maybe centred
    panel_pred = np.full(fold.panel.returns.shape, np.nan)
    panel_pred[fold.test] = pred
    ic = daily_rank_ic(panel_pred[800:], fold.panel.realized[800:])
    assert np.nanmean(ic) > 0.1
    d, s = fold.test[0][:4], fold.test[1][:4]
    np.testing.assert_array_equal(model.predict(fold, d, s), pred[:4])


def test_pooled_logistic_reads_training_labels_only_and_is_deterministic(make_universe) -> None:
    def scrambled(panel):
        rng = np.random.default_rng(5)
        out = panel.labels.copy()
        late = np.isfinite(out) & (np.arange(len(out)) >= 800)[:, None]
        out[late] = rng.integers(0, 2, late.sum())  # test-period labels, shuffled
        return out

    kind = "cross_section_direction"
    fold, moved = _fold(make_universe, kind), _fold(make_universe, kind, labels=scrambled)
    assert not np.array_equal(fold.y_test, moved.y_test, equal_nan=True)
    a, b, again = (PooledLogistic().fit(f) for f in (fold, moved, fold))
    np.testing.assert_array_equal(a.coef_, b.coef_)
    np.testing.assert_array_equal(a.predict(fold), b.predict(moved))
    np.testing.assert_array_equal(a.predict(fold), again.predict(fold))


def test_pooled_logistic_is_sklearns_objective(fold) -> None:
    sklearn = pytest.importorskip("sklearn.linear_model")
    y = fold.panel.labels
    up = np.where(np.isfinite(y), (y > 0).astype(np.float64), np.nan)
    direction = dataclasses.replace(fold.panel, kind="cross_section_direction", labels=up)
    labels = (fold.y_train > 0).astype(np.float64)
    model = PooledLogistic(C=0.3, tol=1e-10, max_iter=1000, chunk_rows=1000)
    model.fit(dataclasses.replace(fold, panel=direction))
    Z = fold.X_train.reshape(len(labels), -1).astype(np.float64)
    reference = sklearn.LogisticRegression(C=0.3, tol=1e-10, max_iter=1000).fit(Z, labels)
    np.testing.assert_allclose(model.coef_, reference.coef_[0], atol=1e-6)
    assert model.intercept_ == pytest.approx(reference.intercept_[0], abs=1e-6)
    # the regression fold's own labels give the same fit, centred on 0
    centred = PooledLogistic(C=0.3, tol=1e-10, max_iter=1000).fit(fold)
    np.testing.assert_allclose(centred.coef_, model.coef_, atol=1e-6)
    Zt = fold.X_test.reshape(len(fold.test[0]), -1).astype(np.float64)
    np.testing.assert_allclose(
        centred.predict(fold) + 0.5, reference.predict_proba(Zt)[:, 1], atol=1e-6
    )


def test_pooled_logistic_edge_cases(fold) -> None:
    one_class = dataclasses.replace(fold.panel, labels=np.where(fold.panel.eligible, 1.0, np.nan))
    model = PooledLogistic().fit(dataclasses.replace(fold, panel=one_class))
    np.testing.assert_array_equal(model.predict(fold), np.full(len(fold.test[0]), 0.5))
    with pytest.raises(MadnessError, match="not fitted"):
        PooledLogistic().predict(fold)
    for bad in ({"C": 0}, {"max_iter": 0}, {"tol": -1.0}, {"chunk_rows": 2.5}):
        with pytest.raises(ConfigError, match="logistic"):
            PooledLogistic(**bad).fit(fold)


def test_logistic_is_opt_in_for_universe_studies() -> None:
    xs = ["data.target=universe:XLF", "target.kind=cross_section", "backtest.rule=long_short"]
    assert load_config(None, xs).baselines.models == ()  # the defaults: no logistic
    config = load_config(None, [*xs, 'baselines.models=["ridge", "logistic"]'])
    assert config.baselines.models == ("ridge", "logistic")
    with pytest.raises(ConfigError, match="logistic"):
        load_config(None, [*xs, 'baselines.models=["logit"]'])
