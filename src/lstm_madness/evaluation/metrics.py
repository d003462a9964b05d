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


def hit_rate(y_true: np.ndarray, y_pred: np.ndarray, task: str) -> float:
    """Share of correctly called directions.

    Regression: ``mean(sign(ŷ) == sign(y))``. A zero label (flat day) counts in the
    denominator and is a hit only for a forecast of exactly 0; a zero forecast calls no
    direction and misses every nonzero label (so the random walk earns no free hits).
    Classification: ``mean((p > 0.5) == (y == 1))`` with ``y`` in {0, 1} (p = 0.5 calls
    "down").
    """
    y_true, y_pred = _pair(y_true, y_pred)
    if task == "regression":
        return float(np.mean(np.sign(y_pred) == np.sign(y_true)))
    if task == "classification":
        return float(np.mean((y_pred > 0.5) == (y_true > 0.5)))
    raise ConfigError(f"task {task!r} is not one of {', '.join(TASKS)}")


def forecast_metrics(
    y_true: np.ndarray,
    y_pred: np.ndarray,
    y_benchmark: np.ndarray | float | None,
    task: str,
) -> dict[str, float | int | None]:
    """``mse``, ``mae``, ``r2_oos``, ``hit_rate`` and ``n`` of one model's test forecasts.

    ``r2_oos`` is None when ``y_benchmark`` is None (e.g. no historical-mean baseline),
    and NaN when its denominator is 0. For classification ``mse`` is the Brier score.
    """
    if task not in TASKS:
        raise ConfigError(f"task {task!r} is not one of {', '.join(TASKS)}")
    y_true, y_pred = _pair(y_true, y_pred)
    return {
        "mse": mse(y_true, y_pred),
        "mae": mae(y_true, y_pred),
        "r2_oos": None if y_benchmark is None else r2_oos(y_true, y_pred, y_benchmark),
        "hit_rate": hit_rate(y_true, y_pred, task),
        "n": len(y_true),
    }
