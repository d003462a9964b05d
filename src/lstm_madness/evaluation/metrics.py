"""Out-of-sample forecast metrics (pure NumPy).

All functions take aligned 1-D arrays over the test samples: ``y_true`` (realized labels),
``y_pred`` (forecasts: returns for regression, probabilities of "up" for
classification) and, for R²_oos, ``y_benchmark`` (the historical-mean forecast of each
sample, i.e. the mean label of the training window that sample's model was fitted on).
"""

from __future__ import annotations

import numpy as np

from lstm_madness.errors import ConfigError, DataError
from lstm_madness.options import TASKS


def _pair(y_true: np.ndarray, y_pred: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    y_true = np.asarray(y_true, dtype=np.float64)
    y_pred = np.asarray(y_pred, dtype=np.float64)
    if y_true.ndim != 1 or y_true.shape != y_pred.shape:
        raise DataError(
            f"y_true and y_pred must be 1-D of equal length, got shapes "
            f"{y_true.shape} and {y_pred.shape}"
        )
    if len(y_true) == 0:
        raise DataError("no forecasts to evaluate")
    if not (np.isfinite(y_true).all() and np.isfinite(y_pred).all()):
        raise DataError("y_true or y_pred contains NaN or infinite values")
    return y_true, y_pred


def mse(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Mean squared error ``mean((y - ŷ)²)`` (squared label units; Brier score for
    probabilities)."""
    y_true, y_pred = _pair(y_true, y_pred)
    return float(np.mean((y_true - y_pred) ** 2))


def mae(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Mean absolute error ``mean(|y - ŷ|)`` (label units)."""
    y_true, y_pred = _pair(y_true, y_pred)
    return float(np.mean(np.abs(y_true - y_pred)))


def r2_oos(y_true: np.ndarray, y_pred: np.ndarray, y_benchmark: np.ndarray | float) -> float:
    """Campbell–Thompson out-of-sample R²: ``1 - Σ(y - ŷ)² / Σ(y - ȳ_train)²``.

    Parameters
    ----------
    y_true, y_pred : ndarray, shape (n,)
    y_benchmark : ndarray, shape (n,), or float
        The historical-mean forecast per sample (training-window mean label).

    Returns
    -------
    float
        Positive when the forecast beats the historical mean; NaN when the benchmark is
        perfect (zero denominator).
    """
    y_true, y_pred = _pair(y_true, y_pred)
    try:
        bench = np.broadcast_to(np.asarray(y_benchmark, dtype=np.float64), y_true.shape)
    except ValueError as exc:
        raise DataError(f"y_benchmark does not match y_true's shape {y_true.shape}") from exc
    if not np.isfinite(bench).all():
        raise DataError("y_benchmark contains NaN or infinite values")
    denominator = float(np.sum((y_true - bench) ** 2))
    if denominator == 0.0:
        return float("nan")
    return 1.0 - float(np.sum((y_true - y_pred) ** 2)) / denominator


def direction_hits(y_true: np.ndarray, y_pred: np.ndarray, task: str) -> np.ndarray:
    """Each prediction's directional call scored: 1.0 a hit, 0.0 a miss, NaN no call.

    A prediction that calls no direction implies no position, so it is neither a hit nor
    a miss: a return forecast of exactly 0 (regression), a probability of exactly 0.5
    (classification). Regression: a hit when ``sign(ŷ) == sign(y)`` (a flat day, y = 0,
    is a miss). Classification: a hit when ``(p > 0.5) == (y == 1)`` with ``y`` in {0, 1}.
    """
    y_true, y_pred = _pair(y_true, y_pred)
    if task == "regression":
        called, hit = y_pred != 0.0, np.sign(y_pred) == np.sign(y_true)
    elif task == "classification":
        called, hit = y_pred != 0.5, (y_pred > 0.5) == (y_true > 0.5)
    else:
        raise ConfigError(f"task {task!r} is not one of {', '.join(TASKS)}")
    return np.where(called, hit.astype(np.float64), np.nan)


def hit_rate(y_true: np.ndarray, y_pred: np.ndarray, task: str) -> float:
    """Share of correct calls among the predictions that call a direction
    (:func:`direction_hits`); NaN when no prediction calls one (e.g. the zero forecast)."""
    scored = direction_hits(y_true, y_pred, task)
    called = scored[np.isfinite(scored)]
    return float(called.mean()) if called.size else float("nan")


def forecast_metrics(
    y_true: np.ndarray,
    y_pred: np.ndarray,
    y_benchmark: np.ndarray | float | None,
    task: str,
) -> dict[str, float | int | None]:
    """``mse``, ``mae``, ``r2_oos``, ``hit_rate``, ``hit_n`` and ``n`` of one model's test
    forecasts.

    ``r2_oos`` is None when ``y_benchmark`` is None (e.g. no historical-mean baseline),
    and NaN when its denominator is 0. For classification ``mse`` is the Brier score.
    ``hit_rate`` counts the ``hit_n`` predictions that call a direction
    (:func:`direction_hits`); NaN when none does.
    """
    if task not in TASKS:
        raise ConfigError(f"task {task!r} is not one of {', '.join(TASKS)}")
    y_true, y_pred = _pair(y_true, y_pred)
    scored = direction_hits(y_true, y_pred, task)
    called = np.isfinite(scored)
    return {
        "mse": mse(y_true, y_pred),
        "mae": mae(y_true, y_pred),
        "r2_oos": None if y_benchmark is None else r2_oos(y_true, y_pred, y_benchmark),
        "hit_rate": float(np.mean(scored[called])) if called.any() else float("nan"),
        "hit_n": int(called.sum()),
        "n": len(y_true),
    }
