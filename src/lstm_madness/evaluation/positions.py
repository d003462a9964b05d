"""Position rules: how predictions become the weights a book holds (pure NumPy).

Every rule maps the predictions dated ``t`` to weights held from close ``t`` to close
``t + 1``, using the predictions at ``t`` only; :class:`~lstm_madness.evaluation.book.Book`
then turns weights into turnover, costs, net returns and performance, the same for every
rule.

One asset (``backtest.rule``), with the signal ``s_t`` (the prediction, or the probability
minus 0.5): ``sign``, ``long_flat``, ``threshold`` and ``proportional``
(:func:`positions_from_predictions`).

A universe's members (``backtest.rule = "long_short"``, Fischer & Krauss 2018): each day,
rank the scored members by prediction (ties broken by column order: the earlier column
ranks lower); long the ``top_k`` highest and short the ``top_k`` lowest, each
``1 / (2 top_k)`` of capital (gross exposure 1, dollar-neutral); flat on a day with fewer
than ``2 top_k`` scored members or with all predictions equal (no ranking: the zero
forecast never trades) (:func:`long_short_weights`). Its buy-and-hold is the equal-weight
book of each day's scored members (:func:`equal_weights`).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from lstm_madness.errors import ConfigError, DataError
from lstm_madness.evaluation.metrics import TASKS

#: The one-asset rules.
RULES = ("sign", "long_flat", "threshold", "proportional")
#: The rule of a universe's members.
LONG_SHORT = "long_short"

__all__ = [
    "LONG_SHORT",
    "RULES",
    "as_panel",
    "as_series",
    "equal_weights",
    "long_short_weights",
    "positions_from_predictions",
    "signal_from_predictions",
]


def as_series(name: str, x: Any) -> np.ndarray:
    """``x`` as a finite one-dimensional float64 array (DataError otherwise)."""
    arr = np.asarray(x, dtype=np.float64)
    if arr.ndim != 1:
        raise DataError(f"{name} must be one-dimensional, got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise DataError(f"{name} contains {int(np.sum(~np.isfinite(arr)))} non-finite values")
    return arr


def as_panel(name: str, x: Any) -> np.ndarray:
    """``x`` as a ``(dates, members)`` float64 array without infinities (NaN allowed)."""
    arr = np.asarray(x, dtype=np.float64)
    if arr.ndim != 2:
        raise DataError(f"{name} must be a (dates, members) array, got shape {arr.shape}")
    if np.isinf(arr).any():
        raise DataError(f"{name} contains infinite values")
    return arr


# --------------------------------------------------------------------------- one asset


def signal_from_predictions(predictions: np.ndarray, task: str = "regression") -> np.ndarray:
    """Centre predictions on the no-information value: the signal ``s_t``.

    ``s_t = pred_t`` for ``task="regression"`` (a forecast of the return) and
    ``s_t = pred_t - 0.5`` for ``task="classification"`` (a probability of an up move).
    """
    if task not in TASKS:
        raise ConfigError(f"task must be one of {TASKS}, got {task!r}")
    pred = as_series("predictions", predictions)
    return pred - 0.5 if task == "classification" else pred


def positions_from_predictions(
    predictions: np.ndarray,
    *,
    task: str = "regression",
    rule: str = "sign",
    threshold: float = 0.0,
    cap: float = 1.0,
    scale: float | np.ndarray | None = None,
) -> np.ndarray:
    """Turn predictions into positions (fractions of capital, long > 0, short < 0).

    With the signal ``s_t`` (prediction, or probability minus 0.5):

    - ``sign``: ``pos_t = sign(s_t)`` (±1; 0 only when ``s_t`` is exactly 0).
    - ``long_flat``: ``pos_t = 1`` if ``s_t > 0`` else 0.
    - ``threshold``: ``pos_t = sign(s_t)`` if ``|s_t| > threshold`` else 0.
    - ``proportional``: ``pos_t = clip(s_t / scale_t, -cap, cap)``. ``scale`` is supplied by
      the caller (e.g. the standard deviation of the training targets, a scalar, or a
      trailing estimate per day). When ``None`` it is the causal expanding root mean
      square of the signal, ``scale_t = sqrt(mean(s_0², ..., s_t²))``, which uses only
      predictions available at ``t`` (no look-ahead); a prediction of typical size then
      maps to a position of about ±1.

    Parameters
    ----------
    predictions : ndarray of shape (n_days,)
        Prediction dated ``t`` for each test date.
    task : {"regression", "classification"}
    rule : {"sign", "long_flat", "threshold", "proportional"}
    threshold : float, default 0
        Band for ``rule="threshold"`` in the units of the signal (return, or probability
        distance from 0.5).
    cap : float, default 1
        Maximum ``|pos_t|`` for ``rule="proportional"``.
    scale : float or ndarray of shape (n_days,), optional
        Divisor of the signal for ``rule="proportional"``; must be positive.

    Returns
    -------
    ndarray of shape (n_days,)
        ``pos_t``, held from close ``t`` to close ``t + 1``.
    """
    if rule not in RULES:
        raise ConfigError(f"backtest.rule must be one of {RULES}, got {rule!r}")
    s = signal_from_predictions(predictions, task)
    if rule == "sign":
        return np.sign(s)
    if rule == "long_flat":
        return (s > 0).astype(np.float64)
    if rule == "threshold":
        if threshold < 0:
            raise ConfigError(f"backtest.threshold must be >= 0, got {threshold}")
        return np.where(np.abs(s) > threshold, np.sign(s), 0.0)
    if cap <= 0:
        raise ConfigError(f"backtest.cap must be > 0, got {cap}")
    if scale is None:
        rms = np.sqrt(np.cumsum(s**2) / np.arange(1, s.size + 1))
        scale_arr = np.where(rms > 0, rms, 1.0)  # all-zero prefix: position 0 anyway
    else:
        scale_arr = np.broadcast_to(np.asarray(scale, dtype=np.float64), s.shape)
        if not np.all(np.isfinite(scale_arr) & (scale_arr > 0)):
            raise ConfigError("proportional scale must be finite and > 0")
    return np.clip(s / scale_arr, -cap, cap)


# --------------------------------------------------------------------------- members


def long_short_weights(predictions: np.ndarray, top_k: int) -> tuple[np.ndarray, np.ndarray]:
    """Weights of the long-short rule (module docstring).

    Parameters
    ----------
    predictions : ndarray, shape (D, S)
        NaN = not scored.
    top_k : int
        Members per leg, ``>= 1``.

    Returns
    -------
    weights : ndarray, shape (D, S)
        ``+1/(2k)`` long, ``-1/(2k)`` short, 0 otherwise.
    flat : ndarray of bool, shape (D,)
        Days without a position.
    """
    if isinstance(top_k, bool) or not isinstance(top_k, int | np.integer) or top_k < 1:
        raise ConfigError(f"backtest.top_k must be an integer >= 1, got {top_k!r}")
    pred = as_panel("predictions", predictions)
    valid = np.isfinite(pred)
    count = valid.sum(axis=1)  # (D,)
    spread = np.where(valid, pred, -np.inf).max(axis=1) - np.where(valid, pred, np.inf).min(axis=1)
    active = (count >= 2 * top_k) & (spread > 0)
    # ascending by (prediction, column); scored members first, unscored (inf) last
    order = np.argsort(np.where(valid, pred, np.inf), axis=1, kind="stable")  # (D, S)
    weights = np.zeros(pred.shape)
    days = np.flatnonzero(active)
    if days.size:
        k = np.arange(top_k)
        short = order[days][:, :top_k]  # (n, k) the k lowest
        top = np.take_along_axis(order[days], count[days, None] - top_k + k, axis=1)  # k highest
        weights[days[:, None], short] = -0.5 / top_k
        weights[days[:, None], top] = 0.5 / top_k
    return weights, ~active


def equal_weights(scored: np.ndarray) -> np.ndarray:
    """``1 / n_t`` on each of the day's ``n_t`` scored members (0 on days without any)."""
    mask = np.asarray(scored, dtype=bool)
    count = mask.sum(axis=1, keepdims=True)
    return np.where(mask, 1.0 / np.maximum(count, 1), 0.0)
