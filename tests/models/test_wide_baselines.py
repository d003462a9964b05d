"""Baselines on windows wider than their samples (issue 22, defect 3): the dual form gives
the primal's predictions without a D × D matrix, and a system too large is refused."""

from __future__ import annotations

import numpy as np
import pytest

from lstm_madness.errors import ConfigError
from lstm_madness.models.baselines import (
    MAX_GRAM_SIDE,
    LogisticClassifier,
    RidgeForecaster,
    check_width,
    fit_memory,
)
from lstm_madness.models.cross_section_baselines import fit_memory as pooled_fit_memory


def _wide(n: int = 40, T: int = 10, F: int = 6, seed: int = 0):
    """n samples of T × F = 60 columns: wider than they are many."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, T, F))
    y = 0.3 * X[:, -1, 0] - 0.2 * X[:, 0, 1] + 0.05 + rng.normal(scale=0.1, size=n)
    return X, y, rng.normal(size=(15, T, F))


@pytest.mark.parametrize("alpha", [1e-3, 1.0, 50.0])
def test_ridge_dual_predicts_as_the_primal(alpha):
    X, y, X_new = _wide()
    primal = RidgeForecaster(alpha, solver="primal").fit(X, y)
    dual = RidgeForecaster(alpha, solver="dual").fit(X, y)
    auto = RidgeForecaster(alpha).fit(X, y)
    assert (primal.solver_, dual.solver_, auto.solver_) == ("primal", "dual", "dual")
    np.testing.assert_allclose(dual.coef_, primal.coef_, rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(dual.predict(X_new), primal.predict(X_new), rtol=1e-8, atol=1e-10)
    np.testing.assert_array_equal(auto.predict(X_new), dual.predict(X_new))
    # narrower than many: the primal, as before
    assert RidgeForecaster(alpha).fit(X[:, :2, :3], y).solver_ == "primal"


@pytest.mark.parametrize("alpha", [0.1, 1.0, 20.0])
def test_logistic_dual_predicts_as_the_primal(alpha):
    X, y_cont, X_new = _wide(seed=3)
    y = (y_cont > 0.05).astype(float)
    primal = LogisticClassifier(alpha, solver="primal").fit(X, y)
    dual = LogisticClassifier(alpha).fit(X, y)
    assert (primal.solver_, dual.solver_) == ("primal", "dual")
    np.testing.assert_allclose(dual.predict(X_new), primal.predict(X_new), rtol=1e-7, atol=1e-9)
    np.testing.assert_allclose(dual.coef_, primal.coef_, rtol=1e-6, atol=1e-8)
    assert dual.intercept_ == pytest.approx(primal.intercept_, rel=1e-7, abs=1e-9)
    # the dual's optimum is the penalized one: its gradient vanishes
    Z = X.reshape(len(X), -1)
    p = dual.predict(X)
    np.testing.assert_allclose(Z.T @ (p - y) + alpha * dual.coef_, 0.0, atol=1e-6)
    with pytest.raises(ConfigError, match="alpha > 0"):
        LogisticClassifier(0.0, solver="dual").fit(X, y)


def test_a_wide_window_never_forms_its_gram_matrix(monkeypatch):
    """200 samples of 40 × 60 = 2,400 columns (the shape of the defect, smaller): every
    system solved is 200 × 200, never 2,400 × 2,400."""
    rng = np.random.default_rng(1)
    X = rng.normal(size=(200, 40, 60)).astype(np.float32)  # the windows are float32
    y = rng.normal(size=200)
    shapes = []
    solve = np.linalg.solve

    def recording(a, b):
        shapes.append(a.shape)
        return solve(a, b)

    monkeypatch.setattr(np.linalg, "solve", recording)
    RidgeForecaster().fit(X, y)
    LogisticClassifier(max_iter=3).fit(X, (y > 0).astype(float))
    assert shapes and all(shape == (200, 200) for shape in shapes)


def test_the_defects_shape_fits_in_memory_and_a_larger_one_is_refused():
    """250 time steps × 31 symbols × 4 features on 3,700 samples: the primal Gram matrix
    alone was 31,000² × 8 B = 7.2 GiB (OpenBLAS died at 8.1 GB RSS); the dual's fit needs
    under 2 GiB beyond the windows. A system wider than MAX_GRAM_SIDE is refused before
    anything is allocated (the windows here are broadcast views: no memory)."""
    n, dim = 3700, 250 * 31 * 4
    assert fit_memory("ridge", n, dim) < 2 * 2**30 < 8 * dim * dim
    assert fit_memory("logistic", n, dim) < 3 * 2**30
    assert fit_memory("mean", n, dim) == 0
    check_width("ridge", n, dim)  # allowed
    big = MAX_GRAM_SIDE + 1
    with pytest.raises(ConfigError, match=rf"ridge baseline: {big} training samples .* limit"):
        check_width("ridge", big, big)
    check_width("ridge", big, 100)  # tall and narrow: a 100 × 100 system
    X = np.broadcast_to(np.float32(0.0), (big, 1, big))
    for model in (RidgeForecaster(), LogisticClassifier()):
        with pytest.raises(ConfigError, match=r"min\(samples, columns\)"):
            model.fit(X, np.zeros(big))
    with pytest.raises(ConfigError, match="limit"):  # the primal asked for: D × D
        RidgeForecaster(solver="primal").fit(np.broadcast_to(np.float32(0), (2, 1, big)), [0, 1])
    # the pooled ridge materialises its float32 windows, then fits the same ridge
    assert pooled_fit_memory("ridge", 1000, 200, 240) == 4 * 1200 * 240 + fit_memory(
        "ridge", 1000, 240
    )
    assert pooled_fit_memory("reversal", 1000, 200, 240) == 0
