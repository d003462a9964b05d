"""The tool's own baselines for imported forecasts, from the target's return history only.

An imported forecast brings no training folds, so these baselines use nothing but the
target's stored daily returns. Input: ``returns[i]``, the simple return from close ``i-1``
to close ``i`` of the target's trading day ``i`` (fraction; NaN where unknown, e.g. the
first stored day). Output: the forecast *dated* ``i`` (made at close ``i``, for the return
from close ``i`` to close ``i+1``), so every value at ``i`` uses ``returns[: i + 1]`` only;
the return ending at ``i`` is known at close ``i``.

Return forecasts (``task="return"``): ``zero`` (random walk), ``mean`` (expanding mean of
all stored returns up to ``i`` inclusive: the Campbell–Thompson benchmark of R²_oos),
``persistence`` (today's return as tomorrow's forecast).

Direction forecasts (``task="direction"``, probabilities of an up move; the conventions of
:mod:`lstm_madness.models.baselines`): ``always_up`` (1.0), ``majority`` (1.0 when at least
half of the returns up to ``i`` are up, ties up, else 0.0), ``persistence`` (1.0 if today's
return is up, else 0.0). "Up" means a return > 0, as the direction label.

Where no return is known yet the forecast is the no-information one (0, or 0.5 for
persistence of direction; ``majority`` with no history calls up, as a tie).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from lstm_madness.errors import ConfigError, DataError

PREFIX = "baseline:"
#: Baselines added to imported forecasts, per task (names without the prefix).
HISTORY_BASELINES: dict[str, tuple[str, ...]] = {
    "return": ("zero", "mean", "persistence"),
    "direction": ("always_up", "majority", "persistence"),
}


def _returns(returns: np.ndarray) -> np.ndarray:
    r = np.asarray(returns, dtype=np.float64)
    if r.ndim != 1:
        raise DataError(f"returns must be 1-D, got shape {r.shape}")
    if np.isinf(r).any():
        raise DataError("returns contain infinite values")
    return r


def expanding_mean(returns: np.ndarray) -> np.ndarray:
    """``out[i]`` = mean of the known (finite) ``returns[: i + 1]``; 0.0 before the first."""
    r = _returns(returns)
    known = np.isfinite(r)
    total = np.cumsum(np.where(known, r, 0.0))
    count = np.cumsum(known)
    return np.divide(total, count, out=np.zeros_like(total), where=count > 0)


def persistence(returns: np.ndarray) -> np.ndarray:
    """``out[i]`` = ``returns[i]`` (today's return for tomorrow); 0.0 where unknown."""
    r = _returns(returns)
    return np.where(np.isfinite(r), r, 0.0)


def expanding_up_share(returns: np.ndarray) -> np.ndarray:
    """``out[i]`` = share of up (> 0) returns among the known ``returns[: i + 1]``; 0.5
    before the first."""
    r = _returns(returns)
    known = np.isfinite(r)
    ups = np.cumsum(known & (r > 0))
    count = np.cumsum(known)
    return np.divide(ups, count, out=np.full(len(r), 0.5), where=count > 0)


def majority(returns: np.ndarray) -> np.ndarray:
    """1.0 where :func:`expanding_up_share` ≥ 0.5 (ties up), else 0.0."""
    return (expanding_up_share(returns) >= 0.5).astype(np.float64)


def direction_persistence(returns: np.ndarray) -> np.ndarray:
    """1.0 if today's return is up (> 0), 0.0 if not, 0.5 where unknown."""
    r = _returns(returns)
    return np.where(np.isfinite(r), (r > 0).astype(np.float64), 0.5)


def history_baselines(
    returns: pd.Series, dates: pd.DatetimeIndex | np.ndarray, task: str = "return"
) -> dict[str, np.ndarray]:
    """Every baseline of ``task`` on the decision ``dates``.

    Parameters
    ----------
    returns : pandas.Series
        The target's daily returns indexed by its trading days, ascending; ``returns[t]``
        is close t-1 → close t (NaN on the first stored day), e.g. ``ret`` of
        :func:`lstm_madness.data.store.read_returns`. All stored history, not only the test
        period: the expanding mean starts at the first stored return.
    dates : array of dates
        Decision dates (each a trading day in ``returns.index``).
    task : {"return", "direction"}

    Returns
    -------
    dict of str to ndarray of shape (len(dates),)
        ``"baseline:<name>"`` → forecasts dated ``dates``, names as in
        :data:`HISTORY_BASELINES`.
    """
    if task not in HISTORY_BASELINES:
        raise ConfigError(f"task must be one of {', '.join(HISTORY_BASELINES)}, got {task!r}")
    index = pd.DatetimeIndex(returns.index)
    if not index.is_monotonic_increasing or index.has_duplicates:
        raise DataError("returns must be indexed by ascending, distinct dates")
    wanted = pd.DatetimeIndex(pd.to_datetime(np.asarray(dates)))
    at = index.get_indexer(wanted)
    if (at < 0).any():
        missing = wanted[at < 0][:5].strftime("%Y-%m-%d")
        raise DataError(f"decision dates without a stored return: {', '.join(missing)}")
    r = returns.to_numpy(dtype=np.float64)
    n = len(at)
    if task == "return":
        series = {
            "zero": np.zeros(n),
            "mean": expanding_mean(r)[at],
            "persistence": persistence(r)[at],
        }
    else:
        series = {
            "always_up": np.ones(n),
            "majority": majority(r)[at],
            "persistence": direction_persistence(r)[at],
        }
    return {f"{PREFIX}{k}": v for k, v in series.items()}
