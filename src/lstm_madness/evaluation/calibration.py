"""Binned calibration: what the next day brought, per decile of the prediction.

At daily scale a forecast is a hundred times smaller than the outcome, so a scatter of
predicted against realised returns is a vertical line. What a quant reads instead is the
mean realised next-day return in each decile of the prediction, with its confidence band,
and the hit rate per decile: a useful forecast has both rising from the lowest decile to
the highest. :func:`decile_table` is the one owner of these numbers; the report's plot and
its table render it.

Alignment as everywhere: ``pred[i]`` is made at the close of day ``i`` and ``realized[i]``
is the simple return from that close to the next one.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

from lstm_madness.errors import ConfigError, DataError
from lstm_madness.evaluation.metrics import direction_hits

__all__ = ["decile_table", "hits"]


def hits(y_true: np.ndarray, y_pred: np.ndarray, task: str = "regression") -> np.ndarray:
    """Daily hits: 1.0 a hit, 0.0 a miss, NaN a day whose prediction calls no direction,
    as counted by :func:`lstm_madness.evaluation.metrics.direction_hits`."""
    yt = np.asarray(y_true, dtype=np.float64)
    yp = np.asarray(y_pred, dtype=np.float64)
    if yt.shape != yp.shape:
        raise DataError(f"labels {yt.shape} and predictions {yp.shape} differ in shape")
    if task not in ("regression", "classification"):
        raise ConfigError(f"task must be regression or classification, got {task!r}")
    return direction_hits(yt, yp, task)


def decile_table(
    pred: np.ndarray,
    realized: np.ndarray,
    *,
    labels: np.ndarray | None = None,
    task: str = "regression",
    bins: int = 10,
    level: float = 0.95,
) -> pd.DataFrame:
    """Mean realised next-day return and hit rate per quantile bin of the prediction.

    Days are ranked by their prediction (ties in date order) and cut into ``bins`` groups
    of equal size (sizes differ by at most one), lowest predictions first.

    Parameters
    ----------
    pred : ndarray of shape (n,)
        Predictions (returns, or probabilities of an up day).
    realized : ndarray of shape (n,)
        Realised simple next-day returns (fractions).
    labels : ndarray of shape (n,), optional
        What the hit rate compares with (the 0/1 up labels for classification); defaults
        to ``realized``.
    task : {"regression", "classification"}
    bins : int, default 10
        Deciles; fewer when there are fewer days.
    level : float, default 0.95
        Level of the band: mean ± t quantile × standard error (``ddof=1``).

    Returns
    -------
    DataFrame
        One row per bin, index ``bin`` (1 = lowest predictions), columns ``n``,
        ``pred_mean``, ``pred_low``, ``pred_high`` (the bin's range of predictions),
        ``mean``, ``low``, ``high`` (realised return and its band; NaN band for one day),
        ``hit_rate``.
    """
    p = np.asarray(pred, dtype=np.float64)
    r = np.asarray(realized, dtype=np.float64)
    y = r if labels is None else np.asarray(labels, dtype=np.float64)
    if p.ndim != 1 or p.shape != r.shape or p.shape != y.shape:
        raise DataError(
            f"pred {p.shape}, realized {r.shape} and labels {y.shape} must be 1-d and equal"
        )
    if p.size == 0:
        raise DataError("no days to bin")
    if not (np.isfinite(p).all() and np.isfinite(r).all()):
        raise DataError("predictions and realised returns must be finite")
    if bins < 1:
        raise ConfigError(f"bins must be >= 1, got {bins}")
    k = min(bins, p.size)
    order = np.argsort(p, kind="stable")
    group = np.empty(p.size, dtype=np.int64)
    group[order] = np.arange(p.size) * k // p.size
    hit = hits(y, p, task)
    rows = []
    for g in range(k):
        m = group == g
        n = int(m.sum())
        mean = float(r[m].mean())
        if n > 1:
            half = float(stats.t.ppf(0.5 + level / 2, n - 1) * r[m].std(ddof=1) / np.sqrt(n))
        else:
            half = np.nan
        rows.append(
            {
                "bin": g + 1,
                "n": n,
                "pred_mean": float(p[m].mean()),
                "pred_low": float(p[m].min()),
                "pred_high": float(p[m].max()),
                "mean": mean,
                "low": mean - half,
                "high": mean + half,
                "hit_rate": float(np.nanmean(hit[m])) if np.isfinite(hit[m]).any() else np.nan,
            }
        )
    return pd.DataFrame(rows).set_index("bin")
