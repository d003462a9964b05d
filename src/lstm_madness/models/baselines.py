"""Honest baselines with the network's interface, fitted on exactly the same folds.

Every baseline takes windows ``X`` of shape ``(n, time_steps, n_features)`` (scaled by
the fold's scaler) and labels ``y`` of shape ``(n,)``: ``fit(X, y)`` returns self,
``predict(X)`` returns ``(n,)`` float64 forecasts in the label's units (regression) or
probabilities of "up" (classification).

Regression: ``zero`` (random walk), ``mean`` (training mean), ``persistence`` (last
observed target return), ``ridge`` (ridge on the flattened window). Classification:
``always_up``, ``majority``, ``logistic`` (L2-regularized logistic on the flattened window).

Width: ``ridge`` and ``logistic`` work on the flattened window, ``D = time_steps ·
n_features`` columns of ``n`` samples. Each solves a square system of side ``min(n, D)``
(``ridge``; ``min(n, D + 1)`` for ``logistic``): the primal ``D × D`` one when ``D <= n``,
the dual (kernel) ``n × n`` one when ``D > n``, whose predictions are the same. A side
above :data:`MAX_GRAM_SIDE` (16,384: a 2 GiB float64 matrix, twice that while it is
solved) is refused with a ConfigError before anything is allocated;
:func:`fit_memory` estimates a fit's memory (what a config is checked against before a
run is registered).

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
    "check_width",
    "fit_memory",
    "fold_baseline",
    "make_baseline",
]

#: Largest side of the square matrix a flattened-window baseline forms (ridge's Gram
#: matrix, logistic's Hessian): min(n, D) (module docstring). 16,384² float64 are 2 GiB.
MAX_GRAM_SIDE = 16_384
#: Baselines fitted on the flattened window, whose memory grows with n · D.
_FLAT_BASELINES = ("ridge", "logistic")
#: ``solver`` of ridge and logistic: the primal (D × D) or dual (n × n) system, or
#: ``auto`` (the dual when D > n).
_SOLVERS = ("auto", "primal", "dual")


def _side(name: str, solver: str, n: int, dim: int) -> int:
    """The side of the square matrix ``name`` forms on ``n`` samples of ``dim`` columns,
    refused (ConfigError) above :data:`MAX_GRAM_SIDE`."""
    if solver not in _SOLVERS:
        raise ConfigError(f"{name} solver must be one of {', '.join(_SOLVERS)}, got {solver!r}")
    primal = dim + (name == "logistic")  # logistic's Hessian includes the intercept
    dual = solver == "dual" or (solver == "auto" and dim > n)
    side = n if dual else primal
    if side > MAX_GRAM_SIDE:
        raise ConfigError(
            f"{name} baseline: {n} training samples of {dim} columns (model.time_steps × "
            f"features per step) need a {side} × {side} matrix "
            f"({8 * side * side / 2**30:.1f} GiB); the limit is {MAX_GRAM_SIDE} "
            f"(allowed: min(samples, columns) <= {MAX_GRAM_SIDE}): lower model.time_steps "
            "or the inputs and features, or leave the baseline out (baselines.models)"
        )
    return side


def check_width(name: str, n: int, dim: int) -> None:
    """ConfigError when baseline ``name`` (its default solver) would form a square
    system wider than :data:`MAX_GRAM_SIDE` on ``n`` samples of ``dim`` columns; the
    baselines that form none pass."""
    if name in _FLAT_BASELINES:
        _side(name, "auto", n, dim)


def fit_memory(name: str, n: int, dim: int) -> int:
    """Peak bytes of fitting baseline ``name`` on ``n`` windows of ``dim = time_steps ·
    n_features`` columns, beyond the float32 windows themselves: for ``ridge`` and
    ``logistic`` the float64 design and its centred (or intercept-augmented) copies,
    ``2 · n · dim · 8`` (``3 ·`` for logistic), and their square system of side
    ``s = min(n, dim)`` with the copy a solver makes, ``2 · s² · 8`` (``3 ·`` for
    logistic); 0 for the other baselines (they hold a few numbers)."""
    if name not in _FLAT_BASELINES:
        return 0
    copies = 2 if name == "ridge" else 3
    side = min(n, dim + (name == "logistic"))
    return 8 * copies * (n * dim + side * side)


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

    ``solver``: ``primal`` solves ``(ZᵀZ + alpha I) w = Zᵀy`` (D × D), ``dual`` solves
    ``(Z Zᵀ + alpha I) a = y`` (n × n) and sets ``w = Zᵀ a``: the same ``w``, so the same
    predictions, without a D × D matrix. ``auto`` (default) takes the dual when the
    window is wider than the samples (``D > n``). Either system's side is limited to
    :data:`MAX_GRAM_SIDE`, refused beyond it (ConfigError). ``alpha = 0`` is least squares
    (minimum-norm when ``D > n``) by SVD, without either matrix.

    Attributes
    ----------
    coef_ : ndarray, shape (T * F,)
    intercept_ : float
    solver_ : str
        The system solved: ``primal``, ``dual`` or ``lstsq`` (``alpha = 0``).
    """

    def __init__(self, alpha: float = 1.0, solver: str = "auto") -> None:
        self.alpha = alpha
        self.solver = solver

    def fit(self, X: np.ndarray, y: np.ndarray) -> RidgeForecaster:
        if not (isinstance(self.alpha, int | float) and self.alpha >= 0):
            raise ConfigError(f"ridge alpha must be >= 0, got {self.alpha!r}")
        shape = np.shape(X)
        if len(shape) == 3:  # refused before the float64 copies
            _side("ridge", self.solver, shape[0], shape[1] * shape[2])
        X, y = _check_Xy(X, y)
        Z = _design(X)  # (n, D)
        n, dim = Z.shape
        z_mean, y_mean = Z.mean(axis=0), y.mean()
        Zc, yc = Z - z_mean, y - y_mean
        if self.alpha == 0:
            self.solver_ = "lstsq"
            coef = np.linalg.lstsq(Zc, yc, rcond=None)[0]
        elif self.solver == "dual" or (self.solver == "auto" and dim > n):
            self.solver_ = "dual"
            kernel = Zc @ Zc.T + float(self.alpha) * np.eye(n)  # (n, n)
            coef = Zc.T @ np.linalg.solve(kernel, yc)  # (D,)
        else:
            self.solver_ = "primal"
            gram = Zc.T @ Zc + float(self.alpha) * np.eye(dim)  # (D, D)
            coef = np.linalg.solve(gram, Zc.T @ yc)
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


def _wide_objective(Z: np.ndarray, y: np.ndarray, beta: np.ndarray, penalty: np.ndarray) -> float:
    """:func:`_logistic_objective` with ``A = [1, Z]`` left implicit."""
    z = beta[0] + Z @ beta[1:]
    return float(np.sum(np.logaddexp(0.0, z) - y * z) + 0.5 * beta @ (penalty * beta))


def _wide_newton_step(
    Z: np.ndarray, kernel: np.ndarray, w: np.ndarray, grad: np.ndarray, alpha: float
) -> np.ndarray:
    """The logistic Newton step ``H⁻¹ grad`` without forming ``H`` (D + 1 square).

    ``H = AᵀWA + diag(0, alpha, …, alpha) + 1e-10 I`` with ``A = [1, Z]`` (n, 1 + D),
    ``W = diag(w)``: the primal loop's Hessian. With ``B = W^½ Z``, ``λ = alpha + 1e-10``
    and ``C = λ I + B Bᵀ`` (n × n, from ``kernel = Z Zᵀ``), eliminating the intercept and
    applying Woodbury's identity to the weights' block ``λ I + BᵀB`` gives, with
    ``u = C⁻¹ W^½ Z g_w`` and ``v = C⁻¹ W^½ 1``::

        s_b = (g_b - W^½1 · u) / (λ W^½1 · v + 1e-10)
        s_w = (g_w - Zᵀ W^½ u) / λ - s_b Zᵀ W^½ v

    ``grad``: (1 + D,), the intercept's component first; returns the step, (1 + D,).
    """
    lam = alpha + 1e-10
    s = np.sqrt(w)  # (n,)
    system = lam * np.eye(len(w)) + s[:, None] * kernel * s[None, :]  # (n, n)
    g_b, g_w = grad[0], grad[1:]
    u, v = np.linalg.solve(system, np.column_stack([s * (Z @ g_w), s])).T  # (n,) each
    s_b = (g_b - s @ u) / (lam * (s @ v) + 1e-10)
    s_w = (g_w - Z.T @ (s * u)) / lam - s_b * (Z.T @ (s * v))
    return np.concatenate([[s_b], s_w])


class LogisticClassifier(_Baseline):
    """L2-regularized logistic regression on the flattened window, by damped Newton (IRLS).

    Minimizes ``sum_i logloss(y_i, sigmoid(b + z_i·w)) + alpha/2 ||w||²`` (intercept ``b``
    unpenalized; ``alpha`` fixed, default 1.0). Newton steps with step halving until the
    step's max-norm is below ``tol`` or ``max_iter`` steps. A single-class training set
    has no finite optimum: the forecast is then that class's probability (0 or 1).

    ``solver``: ``primal`` solves each Newton step with the ``(D + 1) × (D + 1)`` Hessian;
    ``dual`` solves the same step through an ``n × n`` system (the intercept eliminated,
    Woodbury's identity for the weights: :func:`_wide_newton_step`), the same iterates
    without a D × D matrix; it needs ``alpha > 0``. ``auto`` (default) takes the dual
    when ``D > n`` and ``alpha > 0``. The system's side is limited to
    :data:`MAX_GRAM_SIDE`, refused beyond it (ConfigError).

    Attributes
    ----------
    coef_ : ndarray, shape (T * F,)
    intercept_ : float
    n_iter_ : int
    solver_ : str
        ``primal`` or ``dual`` (unset for a single-class training set).
    """

    def __init__(
        self, alpha: float = 1.0, max_iter: int = 100, tol: float = 1e-8, solver: str = "auto"
    ) -> None:
        self.alpha = alpha
        self.max_iter = max_iter
        self.tol = tol
        self.solver = solver

    def fit(self, X: np.ndarray, y: np.ndarray) -> LogisticClassifier:
        if not (isinstance(self.alpha, int | float) and self.alpha >= 0):
            raise ConfigError(f"logistic alpha must be >= 0, got {self.alpha!r}")
        if (
            isinstance(self.max_iter, bool)
            or not isinstance(self.max_iter, int)
            or self.max_iter < 1
        ):
            raise ConfigError(f"logistic max_iter must be an integer >= 1, got {self.max_iter!r}")
        if self.solver not in _SOLVERS:
            raise ConfigError(f"logistic solver must be one of {', '.join(_SOLVERS)}")
        shape = np.shape(X)
        dual = self.solver == "dual" or (
            self.solver == "auto" and len(shape) == 3 and shape[1] * shape[2] > shape[0]
        )
        if dual and not self.alpha > 0:
            if self.solver == "dual":
                raise ConfigError("logistic solver 'dual' needs alpha > 0")
            dual = False
        if len(shape) == 3:  # refused before the float64 copies
            _side("logistic", "dual" if dual else "primal", shape[0], shape[1] * shape[2])
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
        penalty = np.full(dim + 1, float(self.alpha))
        penalty[0] = 0.0
        p0 = float(np.mean(y))
        beta = np.zeros(dim + 1)
        beta[0] = np.log(p0 / (1.0 - p0))
        self.solver_ = "dual" if dual else "primal"
        if dual:
            return self._fit_dual(Z, y, beta, penalty)
        A = np.hstack([np.ones((n, 1)), Z])  # (n, 1 + D)
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

    def _fit_dual(
        self, Z: np.ndarray, y: np.ndarray, beta: np.ndarray, penalty: np.ndarray
    ) -> LogisticClassifier:
        """The primal loop's iterates, each Newton step by :func:`_wide_newton_step`
        (an ``n × n`` system instead of the ``(D + 1)²`` Hessian)."""
        kernel = Z @ Z.T  # (n, n)
        objective = _wide_objective(Z, y, beta, penalty)
        it = 0
        for it in range(1, self.max_iter + 1):  # noqa: B007 - n_iter_ below
            p = _sigmoid(beta[0] + Z @ beta[1:])
            grad = np.concatenate([[np.sum(p - y)], Z.T @ (p - y)]) + penalty * beta
            w = np.maximum(p * (1.0 - p), 1e-12)
            step = _wide_newton_step(Z, kernel, w, grad, float(self.alpha))
            t = 1.0
            while True:
                candidate = beta - t * step
                new = _wide_objective(Z, y, candidate, penalty)
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
