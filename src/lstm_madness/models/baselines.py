"""Honest baselines with the network's interface, fitted on exactly the same folds.

Every baseline takes windows ``X`` of shape ``(n, time_steps, n_features)`` (scaled by
the fold's scaler) and labels ``y`` of shape ``(n,)``: ``fit(X, y)`` returns self,
``predict(X)`` returns ``(n,)`` float64 forecasts in the label's units (regression) or
probabilities of "up" (classification).

Regression: ``zero`` (random walk), ``mean`` (training mean), ``persistence`` (last
observed target return), ``ridge`` (ridge on the flattened window). Classification:
``always_up``, ``majority``, ``logistic`` (L2-regularized logistic on the flattened window).

Both baseline families (these, of a single-asset study, and the cross-sectional ones of
:mod:`lstm_madness.models.cross_section_baselines`) are fitted on a fold the same way, as a
:class:`FoldBaseline`: ``fit(fold) -> self``, ``predict(fold) -> (n_test,)``.
:func:`fold_baseline` gives one of these on a fold's windows (:class:`WindowBaseline`).
"""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np

from lstm_madness.errors import ConfigError, DataError, MadnessError
from lstm_madness.options import CLASSIFICATION_BASELINES, REGRESSION_BASELINES

__all__ = [
    "CLASSIFICATION_BASELINES",
    "REGRESSION_BASELINES",
    "AlwaysUpClassifier",
    "FoldBaseline",
    "HistoricalMeanForecaster",
    "LogisticClassifier",
    "MajorityClassifier",
    "PersistenceForecaster",
    "RidgeForecaster",
    "WindowBaseline",
    "ZeroForecaster",
    "fold_baseline",
    "make_baseline",
]


def _check_Xy(X: np.ndarray, y: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray | None]:
    X = np.asarray(X, dtype=np.float64)
    if X.ndim != 3:
        raise DataError(f"X must have shape (n, time_steps, n_features), got {X.shape}")
    if y is None:
        return X, None
    y = np.asarray(y, dtype=np.float64).reshape(-1)
    if len(y) != len(X):
        raise DataError(f"X has {len(X)} samples but y has {len(y)}")
    if len(y) == 0:
        raise DataError("no training samples")
    if not (np.isfinite(X).all() and np.isfinite(y).all()):
        raise DataError("X or y contains NaN or infinite values")
    return X, y


def _check_binary(y: np.ndarray) -> None:
    if not np.isin(y, (0.0, 1.0)).all():
        raise DataError("classification labels must be 0 or 1")


class _Baseline:
    """Shared plumbing: input checks and the fitted flag."""

    def _fitted(self, attr: str) -> None:
        if not hasattr(self, attr):
            raise MadnessError(f"{type(self).__name__} is not fitted; call fit first")

    def _check_predict(self, X: np.ndarray) -> np.ndarray:
        X, _ = _check_Xy(X)
        if X.shape[1:] != self.window_shape_:
            raise DataError(f"X windows have shape {X.shape[1:]}, fitted on {self.window_shape_}")
        return X

    window_shape_: tuple[int, ...]


# ------------------------------------------------------------------------- regression


class ZeroForecaster(_Baseline):
    """Random walk: the forecast is always 0 (no predictable return)."""

    def fit(self, X: np.ndarray, y: np.ndarray) -> ZeroForecaster:
        X, y = _check_Xy(X, y)
        self.window_shape_ = X.shape[1:]
        return self

    def predict(self, X: np.ndarray) -> np.ndarray:
        self._fitted("window_shape_")
        return np.zeros(len(self._check_predict(X)))


class HistoricalMeanForecaster(_Baseline):
    """The training labels' mean (``mean_``): the Campbell–Thompson R²_oos benchmark."""

    def fit(self, X: np.ndarray, y: np.ndarray) -> HistoricalMeanForecaster:
        X, y = _check_Xy(X, y)
        self.window_shape_ = X.shape[1:]
        self.mean_ = float(np.mean(y))
        return self

    def predict(self, X: np.ndarray) -> np.ndarray:
        self._fitted("mean_")
        return np.full(len(self._check_predict(X)), self.mean_)


class PersistenceForecaster(_Baseline):
    """Tomorrow's return equals today's: ``X[:, -1, column] * scale + center``.

    Parameters
    ----------
    column : int
        Feature column of the target's own ``ret`` (0 with the target first).
    center, scale : float
        The scaler's ``mean_[column]`` and ``scale_[column]``, to undo standardization
        (defaults: X is unscaled). For ``horizon > 1`` this still predicts the last
        one-day return (no compounding).
    """

    def __init__(self, column: int = 0, center: float = 0.0, scale: float = 1.0) -> None:
        self.column = column
        self.center = center
        self.scale = scale

    def fit(self, X: np.ndarray, y: np.ndarray) -> PersistenceForecaster:
        X, y = _check_Xy(X, y)
        if (
            isinstance(self.column, bool)
            or not isinstance(self.column, int | np.integer)
            or not 0 <= self.column < X.shape[2]
        ):
            raise ConfigError(
                f"persistence column must be in [0, {X.shape[2]}), got {self.column!r}"
            )
        if not (np.isfinite(self.center) and np.isfinite(self.scale)):
            raise ConfigError("persistence center and scale must be finite")
        self.window_shape_ = X.shape[1:]
        return self

    def predict(self, X: np.ndarray) -> np.ndarray:
        self._fitted("window_shape_")
        X = self._check_predict(X)
        return X[:, -1, self.column] * float(self.scale) + float(self.center)


def _design(X: np.ndarray) -> np.ndarray:
    return X.reshape(len(X), -1)  # (n, T * F)


class RidgeForecaster(_Baseline):
    """Ridge regression on the flattened window ``(n, T * F)``, closed form.

    Minimizes ``||y - b - Z w||² + alpha ||w||²``: the intercept ``b`` is not penalized
    (Z and y are centered on their training means). ``alpha`` is fixed (default 1.0, in
    units of the scaled inputs' sum of squares, i.e. weak for hundreds of samples); it is
    not tuned, so the baseline needs no inner validation.

    Attributes
    ----------
    coef_ : ndarray, shape (T * F,)
    intercept_ : float
    """

    def __init__(self, alpha: float = 1.0) -> None:
        self.alpha = alpha

    def fit(self, X: np.ndarray, y: np.ndarray) -> RidgeForecaster:
        if not (isinstance(self.alpha, int | float) and self.alpha >= 0):
            raise ConfigError(f"ridge alpha must be >= 0, got {self.alpha!r}")
        X, y = _check_Xy(X, y)
        Z = _design(X)  # (n, D)
        z_mean, y_mean = Z.mean(axis=0), y.mean()
        Zc, yc = Z - z_mean, y - y_mean
        gram = Zc.T @ Zc + float(self.alpha) * np.eye(Z.shape[1])  # (D, D)
        if self.alpha > 0:
            coef = np.linalg.solve(gram, Zc.T @ yc)
        else:
            coef = np.linalg.lstsq(Zc, yc, rcond=None)[0]
        self.coef_ = coef
        self.intercept_ = float(y_mean - z_mean @ coef)
        self.window_shape_ = X.shape[1:]
        return self

    def predict(self, X: np.ndarray) -> np.ndarray:
        self._fitted("coef_")
        return _design(self._check_predict(X)) @ self.coef_ + self.intercept_


# --------------------------------------------------------------------- classification


class AlwaysUpClassifier(_Baseline):
    """Always predicts "up" with probability 1.0 (the long-only investor's forecast)."""

    def fit(self, X: np.ndarray, y: np.ndarray) -> AlwaysUpClassifier:
        X, y = _check_Xy(X, y)
        _check_binary(y)
        self.window_shape_ = X.shape[1:]
        return self

    def predict(self, X: np.ndarray) -> np.ndarray:
        self._fitted("window_shape_")
        return np.ones(len(self._check_predict(X)))


class MajorityClassifier(_Baseline):
    """The training majority class as a hard probability: 1.0 if at least half the
    training labels are up (ties go to up), else 0.0.

    Attributes
    ----------
    frequency_ : float
        Share of up labels in training.
    class_ : float
        1.0 or 0.0, the forecast.
    """

    def fit(self, X: np.ndarray, y: np.ndarray) -> MajorityClassifier:
        X, y = _check_Xy(X, y)
        _check_binary(y)
        self.frequency_ = float(np.mean(y))
        self.class_ = 1.0 if self.frequency_ >= 0.5 else 0.0
        self.window_shape_ = X.shape[1:]
        return self

    def predict(self, X: np.ndarray) -> np.ndarray:
        self._fitted("class_")
        return np.full(len(self._check_predict(X)), self.class_)


def _sigmoid(z: np.ndarray) -> np.ndarray:
    out = np.empty_like(z)
    pos = z >= 0
    out[pos] = 1.0 / (1.0 + np.exp(-z[pos]))
    ez = np.exp(z[~pos])
    out[~pos] = ez / (1.0 + ez)
    return out


def _logistic_objective(
    A: np.ndarray, y: np.ndarray, beta: np.ndarray, penalty: np.ndarray
) -> float:
    z = A @ beta
    # sum of log(1 + exp(z)) - y z, stably
    return float(np.sum(np.logaddexp(0.0, z) - y * z) + 0.5 * beta @ (penalty * beta))


class LogisticClassifier(_Baseline):
    """L2-regularized logistic regression on the flattened window, by damped Newton (IRLS).

    Minimizes ``sum_i logloss(y_i, sigmoid(b + z_i·w)) + alpha/2 ||w||²`` (intercept ``b``
    unpenalized; ``alpha`` fixed, default 1.0). Newton steps with step halving until the
    step's max-norm is below ``tol`` or ``max_iter`` steps. A single-class training set
    has no finite optimum: the forecast is then that class's probability (0 or 1).

    Attributes
    ----------
    coef_ : ndarray, shape (T * F,)
    intercept_ : float
    n_iter_ : int
    """

    def __init__(self, alpha: float = 1.0, max_iter: int = 100, tol: float = 1e-8) -> None:
        self.alpha = alpha
        self.max_iter = max_iter
        self.tol = tol

    def fit(self, X: np.ndarray, y: np.ndarray) -> LogisticClassifier:
        if not (isinstance(self.alpha, int | float) and self.alpha >= 0):
            raise ConfigError(f"logistic alpha must be >= 0, got {self.alpha!r}")
        if (
            isinstance(self.max_iter, bool)
            or not isinstance(self.max_iter, int)
            or self.max_iter < 1
        ):
            raise ConfigError(f"logistic max_iter must be an integer >= 1, got {self.max_iter!r}")
        X, y = _check_Xy(X, y)
        _check_binary(y)
        self.window_shape_ = X.shape[1:]
        Z = _design(X)  # (n, D)
        n, dim = Z.shape
        self.constant_: float | None = None
        if y.min() == y.max():  # one class: separable by the intercept alone
            self.coef_, self.intercept_, self.n_iter_ = np.zeros(dim), 0.0, 0
            self.constant_ = float(y[0])
            return self
        A = np.hstack([np.ones((n, 1)), Z])  # (n, 1 + D)
        penalty = np.full(dim + 1, float(self.alpha))
        penalty[0] = 0.0
        p0 = float(np.mean(y))
        beta = np.zeros(dim + 1)
        beta[0] = np.log(p0 / (1.0 - p0))
        objective = _logistic_objective(A, y, beta, penalty)
        it = 0
        for it in range(1, self.max_iter + 1):  # noqa: B007 - n_iter_ below
            p = _sigmoid(A @ beta)
            grad = A.T @ (p - y) + penalty * beta
            w = np.maximum(p * (1.0 - p), 1e-12)
            hess = (A * w[:, None]).T @ A + np.diag(penalty + 1e-10)
            step = np.linalg.solve(hess, grad)
            t = 1.0
            while True:
                candidate = beta - t * step
                new = _logistic_objective(A, y, candidate, penalty)
                if new <= objective or t < 1e-10:
                    break
                t *= 0.5
            beta, objective = candidate, new
            if np.max(np.abs(t * step)) < self.tol:
                break
        self.coef_ = beta[1:]
        self.intercept_ = float(beta[0])
        self.n_iter_ = it
        return self

    def predict(self, X: np.ndarray) -> np.ndarray:
        self._fitted("coef_")
        X = self._check_predict(X)
        if self.constant_ is not None:
            return np.full(len(X), self.constant_)
        return _sigmoid(_design(X) @ self.coef_ + self.intercept_)


# --------------------------------------------------------------------------- registry

_REGISTRY: dict[str, dict[str, type]] = {
    "regression": {
        "zero": ZeroForecaster,
        "mean": HistoricalMeanForecaster,
        "persistence": PersistenceForecaster,
        "ridge": RidgeForecaster,
    },
    "classification": {
        "always_up": AlwaysUpClassifier,
        "majority": MajorityClassifier,
        "logistic": LogisticClassifier,
    },
}


def make_baseline(name: str, task: str, **kwargs: Any) -> Any:
    """An unfitted baseline by name for ``task`` (``"regression"`` or ``"classification"``).

    ``kwargs`` go to its constructor (``persistence``: column, center, scale; ``ridge``,
    ``logistic``: alpha).

    Raises
    ------
    ConfigError
        Unknown task or name (the message lists the task's valid names), or bad kwargs.
    """
    if task not in _REGISTRY:
        raise ConfigError(f"task {task!r} is not one of {', '.join(_REGISTRY)}")
    models = _REGISTRY[task]
    if name not in models:
        raise ConfigError(f"unknown {task} baseline {name!r}; valid: {', '.join(models)}")
    try:
        return models[name](**kwargs)
    except TypeError as exc:
        raise ConfigError(f"baseline {name!r}: {exc}") from exc


# --------------------------------------------------------------------------- on a fold


class FoldBaseline(Protocol):
    """A baseline fitted on one fold's training samples and predicting its test samples,
    whatever the study: a single asset's windows (:class:`WindowBaseline`) or a
    universe's panel (:mod:`lstm_madness.models.cross_section_baselines`)."""

    def fit(self, fold: Any) -> FoldBaseline: ...

    def predict(self, fold: Any) -> np.ndarray: ...


class WindowBaseline:
    """A baseline of :func:`make_baseline` on a fold's scaled windows: ``fit(fold)`` on
    ``fold.X_train`` and ``fold.y_train``, ``predict(fold)`` on ``fold.X_test``.
    ``persistence`` undoes the fold's scaling of the target's own return (column
    ``fold.target_column`` of ``fold.scaler``)."""

    def __init__(self, name: str, task: str) -> None:
        self.name = name
        self.task = task

    def fit(self, fold: Any) -> WindowBaseline:
        kwargs: dict[str, Any] = {}
        if self.name == "persistence":
            column = fold.target_column
            kwargs = dict(
                column=column,
                center=float(fold.scaler.mean_[column]),
                scale=float(fold.scaler.scale_[column]),
            )
        self.model_ = make_baseline(self.name, self.task, **kwargs).fit(fold.X_train, fold.y_train)
        return self

    def predict(self, fold: Any) -> np.ndarray:
        if not hasattr(self, "model_"):
            raise MadnessError(f"baseline {self.name!r} is not fitted; call fit first")
        return self.model_.predict(fold.X_test)


def fold_baseline(name: str, task: str) -> WindowBaseline:
    """An unfitted single-asset baseline by name for ``task``, fitted on a fold
    (:class:`WindowBaseline`); ConfigError for an unknown name, as :func:`make_baseline`."""
    make_baseline(name, task)  # refuse an unknown name now, not at fit
    return WindowBaseline(name, task)
