"""Baselines: hand-checked forecasts, closed-form ridge, logistic optimality, registry."""

from __future__ import annotations

import numpy as np
import pytest

from lstm_madness.errors import ConfigError, DataError, MadnessError
from lstm_madness.features import StandardScaler
from lstm_madness.models.baselines import (
    CLASSIFICATION_BASELINES,
    REGRESSION_BASELINES,
    AlwaysUpClassifier,
    HistoricalMeanForecaster,
    LogisticClassifier,
    MajorityClassifier,
    PersistenceForecaster,
    RidgeForecaster,
    ZeroForecaster,
    make_baseline,
)


def _data(n: int = 200, T: int = 3, F: int = 2, seed: int = 0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, T, F))
    y = 0.3 * X[:, -1, 0] - 0.2 * X[:, 0, 1] + 0.05 + rng.normal(scale=0.1, size=n)
    return X, y


def test_zero_and_mean():
    X, y = _data(50)
    np.testing.assert_array_equal(ZeroForecaster().fit(X, y).predict(X[:7]), np.zeros(7))
    m = HistoricalMeanForecaster().fit(X, np.arange(50.0))
    assert m.mean_ == 24.5
    np.testing.assert_array_equal(m.predict(X[:3]), [24.5] * 3)


def test_persistence_undoes_the_scaler():
    rng = np.random.default_rng(1)
    raw = rng.normal(0.001, 0.01, size=(40, 2))  # (rows, F) unscaled returns
    scaler = StandardScaler().fit(raw)
    windows = np.stack([scaler.transform(raw[i : i + 4]) for i in range(37)])  # (37, 4, 2)
    model = PersistenceForecaster(column=1, center=scaler.mean_[1], scale=scaler.scale_[1])
    pred = model.fit(windows, np.zeros(37)).predict(windows)
    np.testing.assert_allclose(pred, raw[3:, 1])  # the last observed return of column 1
    np.testing.assert_array_equal(
        PersistenceForecaster().fit(windows, np.zeros(37)).predict(windows), windows[:, -1, 0]
    )
    with pytest.raises(ConfigError, match="column"):
        PersistenceForecaster(column=2).fit(windows, np.zeros(37))


def test_ridge_closed_form():
    X, y = _data()
    Z = X.reshape(len(X), -1)
    # alpha = 0 is ordinary least squares with an intercept
    ols = np.linalg.lstsq(np.hstack([np.ones((len(Z), 1)), Z]), y, rcond=None)[0]
    r0 = RidgeForecaster(alpha=0.0).fit(X, y)
    np.testing.assert_allclose(r0.coef_, ols[1:], atol=1e-10)
    assert r0.intercept_ == pytest.approx(ols[0])
    # alpha > 0: the augmented least-squares problem with an unpenalized intercept
    alpha = 25.0
    A = np.hstack([np.ones((len(Z), 1)), Z])
    penalty = np.hstack([np.zeros((Z.shape[1], 1)), np.sqrt(alpha) * np.eye(Z.shape[1])])
    sol = np.linalg.lstsq(
        np.vstack([A, penalty]), np.hstack([y, np.zeros(Z.shape[1])]), rcond=None
    )[0]
    r = RidgeForecaster(alpha=alpha).fit(X, y)
    np.testing.assert_allclose(r.coef_, sol[1:], atol=1e-10)
    np.testing.assert_allclose(r.predict(X), A @ sol, atol=1e-10)
    # a huge penalty shrinks to the training mean (the intercept is not shrunk)
    big = RidgeForecaster(alpha=1e12).fit(X, y + 5.0)
    np.testing.assert_allclose(big.predict(X), np.mean(y + 5.0), atol=1e-6)
    with pytest.raises(ConfigError, match="alpha"):
        RidgeForecaster(alpha=-1.0).fit(X, y)


def test_always_up_and_majority():
    X, _ = _data(5)
    y = np.array([0.0, 0.0, 0.0, 1.0, 1.0])
    np.testing.assert_array_equal(AlwaysUpClassifier().fit(X, y).predict(X), np.ones(5))
    m = MajorityClassifier().fit(X, y)
    assert m.frequency_ == 0.4 and m.class_ == 0.0
    np.testing.assert_array_equal(m.predict(X), np.zeros(5))
    tie = MajorityClassifier().fit(X[:4], np.array([0.0, 1.0, 0.0, 1.0]))
    assert tie.class_ == 1.0  # ties go to up
    with pytest.raises(DataError, match="0 or 1"):
        AlwaysUpClassifier().fit(X, y * 2)


def test_logistic_is_the_penalized_optimum():
    X, y_cont = _data(300, seed=2)
    y = (y_cont > 0.05).astype(float)
    alpha = 2.0
    model = LogisticClassifier(alpha=alpha).fit(X, y)
    Z = X.reshape(len(X), -1)
    p = model.predict(X)
    assert ((p > 0) & (p < 1)).all()
    # first-order conditions: the gradient of the objective vanishes
    grad_w = Z.T @ (p - y) + alpha * model.coef_
    grad_b = np.sum(p - y)
    np.testing.assert_allclose(grad_w, 0.0, atol=1e-6)
    assert abs(grad_b) < 1e-6
    assert model.coef_[Z.shape[1] - 2] > 0  # X[:, -1, 0] raises the odds of up
    # more penalty shrinks the weights
    assert np.linalg.norm(LogisticClassifier(alpha=200.0).fit(X, y).coef_) < np.linalg.norm(
        model.coef_
    )
    # alpha = 0 on separable data stays finite and separates
    sep = (X[:, -1, 0] > 0).astype(float)
    p_sep = LogisticClassifier(alpha=0.0, max_iter=30).fit(X, sep).predict(X)
    assert np.isfinite(p_sep).all() and ((p_sep > 0.5) == (sep == 1)).all()


def test_logistic_single_class():
    X, _ = _data(20)
    p = LogisticClassifier().fit(X, np.ones(20)).predict(X[:4])
    np.testing.assert_array_equal(p, np.ones(4))


def test_interface_and_checks():
    X, y = _data(30)
    for name in REGRESSION_BASELINES:
        model = make_baseline(name, "regression")
        assert model.fit(X, y) is model
        pred = model.predict(X[:11])
        assert pred.shape == (11,) and pred.dtype == np.float64
        with pytest.raises(DataError, match="shape"):
            model.predict(X[:, :2])
        with pytest.raises(MadnessError, match="not fitted"):
            make_baseline(name, "regression").predict(X)
    yb = (y > np.median(y)).astype(float)
    for name in CLASSIFICATION_BASELINES:
        model = make_baseline(name, "classification").fit(X, yb)
        p = model.predict(X)
        assert p.shape == (30,) and ((p >= 0) & (p <= 1)).all()
    with pytest.raises(DataError, match="NaN"):
        ZeroForecaster().fit(X, np.full(30, np.nan))
    with pytest.raises(DataError, match="samples"):
        HistoricalMeanForecaster().fit(X, y[:-1])


def test_registry():
    assert isinstance(
        make_baseline("persistence", "regression", column=1, center=0.1, scale=2.0),
        PersistenceForecaster,
    )
    assert isinstance(make_baseline("logistic", "classification", alpha=3.0), LogisticClassifier)
    with pytest.raises(ConfigError, match="zero, mean, persistence, ridge"):
        make_baseline("arima", "regression")
    with pytest.raises(ConfigError, match="always_up, majority, logistic"):
        make_baseline("ridge", "classification")
    with pytest.raises(ConfigError, match="task"):
        make_baseline("zero", "ranking")
    with pytest.raises(ConfigError, match="'zero'"):
        make_baseline("zero", "regression", alpha=1.0)
