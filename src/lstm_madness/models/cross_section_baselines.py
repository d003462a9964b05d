"""Baselines of a cross-sectional study, fitted on exactly the network's folds.

Each baseline is a :class:`~lstm_madness.models.baselines.FoldBaseline`, as a single
asset's: ``fit(fold) -> self`` (learning from the fold's training samples only)
and ``predict(fold, date_idx=None, symbol_idx=None) -> (n,)`` float64 forecasts for the
fold's test samples (or the given ones), in return units; a
:class:`~lstm_madness.cross_section.CrossSectionFold` carries the panel, the samples and
the scaler fitted on training rows.

- ``zero``: 0 for every member (0.5 for ``task="classification"``, the no-information
  forecast of an above-median label); the long-short rule takes no position (no ranking).
- ``reversal``: ``-ret[t]``, short-term reversal (Fischer & Krauss found it earned about
  half of their LSTM's return).
- ``momentum``: the past ``lookback``-day compounded return skipping the last ``skip``
  days, ``prod(1 + ret[t - skip - lookback + 1 .. t - skip]) - 1`` (20 and 1 by default).
  It needs ``lookback + skip`` days of history: a sample without them gets NaN (not
  ranked by momentum that day).
- ``ridge``: :class:`~lstm_madness.models.baselines.RidgeForecaster` pooled over members,
  on the same scaled windows as the network.
- ``logistic`` (opt-in, not among the defaults): :class:`PooledLogistic`, Fischer &
  Krauss's logistic-regression benchmark: an L2 logistic regression pooled over members
  and training dates, on the same scaled windows, predicting the probability that the
  member's label is "up" (above the day's median for ``cross_section_direction``, above
  the day's mean for ``cross_section``; minus 0.5 for the latter, a centred score).

All signals use data dated ``<= t`` only. For ``cross_section_direction`` the ridge's
forecasts are scores, not probabilities (a linear probability model), and the logistic's
are scores for ``cross_section`` (a probability minus 0.5, not a return); only their
ranking is used by the long-short rule and the rank IC.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from scipy.optimize import minimize
from scipy.special import expit

from lstm_madness.cross_section import CrossSectionFold
from lstm_madness.errors import ConfigError, MadnessError
from lstm_madness.models.baselines import RidgeForecaster
from lstm_madness.options import (
    CROSS_SECTION_BASELINE_NAMES,
    CROSS_SECTION_BASELINES,
    TASKS,
)

__all__ = [
    "CROSS_SECTION_BASELINES",
    "CROSS_SECTION_BASELINE_NAMES",
    "MomentumRanker",
    "PooledLogistic",
    "PooledRidge",
    "ReversalRanker",
    "ZeroRanker",
    "fit_memory",
    "make_cross_section_baseline",
    "momentum_scores",
    "reversal_scores",
]


def reversal_scores(returns: np.ndarray) -> np.ndarray:
    """``-ret[t, s]``, shape (D, S) (NaN where the return is missing)."""
    return -np.asarray(returns, dtype=np.float64)


def momentum_scores(returns: np.ndarray, lookback: int = 20, skip: int = 1) -> np.ndarray:
    """``prod(1 + ret[t - skip - lookback + 1 .. t - skip, s]) - 1``, shape (D, S).

    NaN for the first ``lookback + skip - 1`` rows and wherever a return in the window is
    missing.
    """
    if lookback < 1 or skip < 0:
        raise ConfigError(f"momentum needs lookback >= 1 and skip >= 0, got {lookback}, {skip}")
    r = np.asarray(returns, dtype=np.float64)
    out = np.full(r.shape, np.nan)
    first = lookback + skip - 1  # first row with a full window
    if len(r) > first:
        growth = sliding_window_view(1.0 + r, lookback, axis=0).prod(axis=-1)  # (D-L+1, S)
        # growth[w] covers rows w .. w + L - 1 and is the score of row w + L - 1 + skip
        out[first:] = growth[: len(r) - first] - 1.0
    return out


class _PanelBaseline:
    """Forecasts read off a (D, S) score panel of the fold's panel."""

    def _scores(self, fold: CrossSectionFold) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def fit(self, fold: CrossSectionFold) -> Any:
        self.fitted_ = True
        return self

    def predict(
        self,
        fold: CrossSectionFold,
        date_idx: np.ndarray | None = None,
        symbol_idx: np.ndarray | None = None,
    ) -> np.ndarray:
        if not hasattr(self, "fitted_"):
            raise MadnessError(f"{type(self).__name__} is not fitted; call fit first")
        d, s = fold.test if date_idx is None else (date_idx, symbol_idx)
        return self._scores(fold)[d, s]


class ZeroRanker(_PanelBaseline):
    """``level`` for every member (no ranking, no position): 0, or 0.5 for a direction
    label."""

    def __init__(self, level: float = 0.0) -> None:
        self.level = level

    def _scores(self, fold: CrossSectionFold) -> np.ndarray:
        zeros = np.zeros(fold.panel.returns.shape)
        return zeros + self.level if self.level else zeros


class ReversalRanker(_PanelBaseline):
    """Minus today's return (:func:`reversal_scores`)."""

    def _scores(self, fold: CrossSectionFold) -> np.ndarray:
        return reversal_scores(fold.panel.returns)


class MomentumRanker(_PanelBaseline):
    """Past ``lookback``-day return skipping the last ``skip`` days (:func:`momentum_scores`)."""

    def __init__(self, lookback: int = 20, skip: int = 1) -> None:
        self.lookback = lookback
        self.skip = skip

    def _scores(self, fold: CrossSectionFold) -> np.ndarray:
        return momentum_scores(fold.panel.returns, self.lookback, self.skip)


class PooledRidge:
    """Ridge on the flattened scaled windows of every member's training samples.

    The windows are materialised (``(n, time_steps, F)`` float32, train and test) and
    solved by :class:`~lstm_madness.models.baselines.RidgeForecaster`: its dual form when
    they are wider than the samples, its limit on the system's side
    (:data:`~lstm_madness.models.baselines.MAX_GRAM_SIDE`); :func:`fit_memory` estimates
    the memory.

    Attributes
    ----------
    model_ : RidgeForecaster
    """

    def __init__(self, alpha: float = 1.0) -> None:
        self.alpha = alpha

    def fit(self, fold: CrossSectionFold) -> PooledRidge:
        self.model_ = RidgeForecaster(self.alpha).fit(fold.X_train, fold.y_train)
        return self

    def predict(
        self,
        fold: CrossSectionFold,
        date_idx: np.ndarray | None = None,
        symbol_idx: np.ndarray | None = None,
    ) -> np.ndarray:
        if not hasattr(self, "model_"):
            raise MadnessError("PooledRidge is not fitted; call fit first")
        X = fold.X_test if date_idx is None else fold.X(date_idx, symbol_idx)
        return self.model_.predict(X)


class PooledLogistic:
    r"""L2 logistic regression on the flattened scaled windows of every member's training
    samples (Fischer & Krauss's logistic benchmark).

    The inputs are the network's: each sample's ``(time_steps, F)`` scaled window,
    flattened to ``time_steps · F`` columns, pooled over every member and training date of
    the fold (:attr:`~lstm_madness.cross_section.CrossSectionFold.X_train`); nothing
    after the fold's last training date is read. The binary label ``u`` is the fold's
    label for ``cross_section_direction`` (1 above the day's median) and
    ``1[label > 0]`` for ``cross_section`` (the demeaned return: 1 above the day's mean).

    It minimizes scikit-learn's ``LogisticRegression(C=C)`` objective, scaled by ``1/n``:

    .. math:: \frac1n \sum_i \left[\log(1 + e^{z_i}) - u_i z_i\right]
              + \frac{\lVert w \rVert^2}{2 C n}, \qquad z_i = b + x_i \cdot w

    (intercept ``b`` unpenalized), by L-BFGS (``scipy.optimize.minimize``, method
    ``L-BFGS-B``) from ``w = 0``, ``b = logit(mean u)``: at most ``max_iter`` iterations,
    stopping when the largest gradient component is below ``tol`` (or the relative
    decrease of the objective below 64 machine epsilons). Deterministic: no random start,
    no sample order. Memory: the float32 windows are held once; each objective evaluation
    casts ``chunk_rows`` rows at a time to float64 (250,000 samples × 240 columns are
    240 MB in float32 plus one 31 MB chunk).

    Forecast: the probability ``sigmoid(b + x·w)`` for ``cross_section_direction``; that
    minus 0.5 for ``cross_section`` (a centred score, 0 where the zero forecast is, not a
    return: its MSE and R²_oos are not return-forecast figures, its ranking is what
    counts). A training set of one class forecasts that class (0 or 1; centred likewise).

    Attributes
    ----------
    coef_ : ndarray, shape (time_steps · F,)
    intercept_ : float
    n_iter_ : int
        L-BFGS iterations.
    converged_ : bool
        Whether the optimizer met its tolerance within ``max_iter``.
    centre_ : float
        0.5 for ``cross_section``, 0 for ``cross_section_direction`` (subtracted).
    """

    def __init__(
        self, C: float = 1.0, max_iter: int = 200, tol: float = 1e-6, chunk_rows: int = 16384
    ) -> None:
        self.C = C
        self.max_iter = max_iter
        self.tol = tol
        self.chunk_rows = chunk_rows

    def _check(self) -> None:
        if not (isinstance(self.C, int | float) and self.C > 0):
            raise ConfigError(f"logistic C must be > 0, got {self.C!r}")
        for key in ("max_iter", "chunk_rows"):
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"logistic {key} must be an integer >= 1, got {value!r}")
        if not (isinstance(self.tol, int | float) and self.tol > 0):
            raise ConfigError(f"logistic tol must be > 0, got {self.tol!r}")

    def fit(self, fold: CrossSectionFold) -> PooledLogistic:
        self._check()
        direction = fold.panel.kind == "cross_section_direction"
        self.centre_ = 0.0 if direction else 0.5
        X = fold.X_train  # (n, T, F) float32
        Z = X.reshape(len(X), -1)  # (n, T * F), a view
        y = fold.y_train
        if not (np.isfinite(y).all() and len(y)):
            raise MadnessError("PooledLogistic needs finite training labels")
        u = (y > 0.5 if direction else y > 0.0).astype(np.float64)  # (n,)
        self.constant_: float | None = None
        self.n_iter_, self.converged_ = 0, True
        if u.min() == u.max():  # one class: no finite optimum
            self.coef_, self.intercept_ = np.zeros(Z.shape[1]), 0.0
            self.constant_ = float(u[0])
            return self
        p0 = float(u.mean())
        beta0 = np.zeros(Z.shape[1] + 1)  # (1 + T * F,): intercept first
        beta0[0] = np.log(p0 / (1.0 - p0))
        result = minimize(
            self._objective,
            beta0,
            args=(Z, u, 1.0 / (float(self.C) * len(u))),
            jac=True,
            method="L-BFGS-B",
            options={
                "maxiter": self.max_iter,
                "gtol": float(self.tol),
                "ftol": 64 * np.finfo(np.float64).eps,
            },
        )
        self.intercept_, self.coef_ = float(result.x[0]), result.x[1:]
        self.n_iter_, self.converged_ = int(result.nit), bool(result.success)
        return self

    def _objective(
        self, beta: np.ndarray, Z: np.ndarray, u: np.ndarray, lam: float
    ) -> tuple[float, np.ndarray]:
        """The objective and its gradient at ``beta = (b, w)`` (class docstring)."""
        b, w = beta[0], beta[1:]
        loss, grad = 0.0, np.zeros_like(beta)
        for start in range(0, len(u), self.chunk_rows):
            rows = slice(start, start + self.chunk_rows)
            chunk = Z[rows].astype(np.float64)  # (m, T * F)
            z = chunk @ w + b  # (m,)
            loss += float(np.sum(np.logaddexp(0.0, z) - u[rows] * z))
            r = expit(z) - u[rows]  # (m,)
            grad[0] += r.sum()
            grad[1:] += chunk.T @ r
        n = len(u)
        grad /= n
        grad[1:] += lam * w
        return loss / n + 0.5 * lam * float(w @ w), grad

    def predict(
        self,
        fold: CrossSectionFold,
        date_idx: np.ndarray | None = None,
        symbol_idx: np.ndarray | None = None,
    ) -> np.ndarray:
        if not hasattr(self, "coef_"):
            raise MadnessError("PooledLogistic is not fitted; call fit first")
        X = fold.X_test if date_idx is None else fold.X(date_idx, symbol_idx)
        if self.constant_ is not None:
            return np.full(len(X), self.constant_ - self.centre_)
        z = X.reshape(len(X), -1).astype(np.float64) @ self.coef_ + self.intercept_
        return expit(z) - self.centre_


_REGISTRY: dict[str, type] = {
    "zero": ZeroRanker,
    "reversal": ReversalRanker,
    "momentum": MomentumRanker,
    "ridge": PooledRidge,
    "logistic": PooledLogistic,
}


def make_cross_section_baseline(name: str, task: str = "regression", **kwargs: Any) -> Any:
    """An unfitted cross-sectional baseline by name (``momentum``: lookback, skip;
    ``ridge``: alpha; ``logistic``: C, max_iter, tol, chunk_rows); ``zero`` forecasts 0.5
    for ``task="classification"``. Any name of
    :data:`~lstm_madness.options.CROSS_SECTION_BASELINE_NAMES`, the defaults
    (:data:`~lstm_madness.options.CROSS_SECTION_BASELINES`) and the opt-in ones."""
    if name not in _REGISTRY:
        raise ConfigError(f"unknown cross-section baseline {name!r}; valid: {', '.join(_REGISTRY)}")
    if task not in TASKS:
        raise ConfigError(f"task must be one of {', '.join(TASKS)}, got {task!r}")
    if name == "zero" and task == "classification":
        kwargs.setdefault("level", 0.5)
    try:
        return _REGISTRY[name](**kwargs)
    except TypeError as exc:
        raise ConfigError(f"baseline {name!r}: {exc}") from exc


def fit_memory(name: str, n_train: int, n_test: int, dim: int) -> int:
    """Peak bytes of fitting and predicting baseline ``name`` on a fold of ``n_train``
    training and ``n_test`` test samples of ``dim = time_steps · F`` columns: ``ridge``
    and ``logistic`` materialise the float32 windows (``(n_train + n_test) · dim · 4``),
    ridge adds :func:`~lstm_madness.models.baselines.fit_memory`, logistic one float64
    chunk (``chunk_rows · dim · 8``); the rankers read the panel (0 beyond it)."""
    from lstm_madness.models.baselines import fit_memory as window_fit_memory

    if name not in ("ridge", "logistic"):
        return 0
    windows = 4 * (n_train + n_test) * dim
    if name == "ridge":
        return windows + window_fit_memory("ridge", n_train, dim)
    return windows + 8 * min(n_train, PooledLogistic().chunk_rows) * dim
