"""Statistics of cross-sectional forecasts: rank IC, prediction quintiles, panel tests.

Inputs are ``(D, S)`` panels on the test dates: ``predictions[t, s]`` made at the close of
``t`` (NaN = member not scored), ``realized[t, s]`` the member's return from close ``t``
to close ``t + 1`` (NaN = unknown). A pair counts on a day when both are finite. Every
statistic is computed per day first and then over days, so a day weighs the same
whatever its number of members.

References
----------
.. [1] Grinold, R. C., Kahn, R. N. (2000). *Active Portfolio Management*, 2nd ed.,
   McGraw-Hill (the information coefficient).
.. [2] Newey, W. K., West, K. D. (1994). Automatic lag selection in covariance matrix
   estimation. *Review of Economic Studies* 61(4), 631-653.
.. [3] Fischer, T., Krauss, C. (2018). Deep learning with long short-term memory networks
   for financial market predictions. *European Journal of Operational Research* 270(2),
   654-669.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import stats

from lstm_madness.errors import ConfigError, DataError
from lstm_madness.evaluation.forecast_tests import (
    BinomialResult,
    DMResult,
    diebold_mariano_losses,
    newey_west_variance,
)

__all__ = [
    "HACMean",
    "PanelForecastTests",
    "RankIC",
    "daily_mse",
    "daily_rank_ic",
    "hac_mean",
    "newey_west_lags",
    "panel_direction_calls",
    "panel_forecast_metrics",
    "panel_forecast_tests",
    "panel_hit_test",
    "quantile_returns",
    "rank_ic",
]


def _pairs(predictions: Any, realized: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    pred = np.asarray(predictions, dtype=np.float64)
    real = np.asarray(realized, dtype=np.float64)
    if pred.ndim != 2 or pred.shape != real.shape:
        raise DataError(
            f"predictions {pred.shape} and realized {real.shape} must be (dates, members)"
        )
    return pred, real, np.isfinite(pred) & np.isfinite(real)


def daily_rank_ic(
    predictions: np.ndarray, realized: np.ndarray, *, min_members: int = 3
) -> np.ndarray:
    """Spearman rank correlation between prediction and realized return, per day.

    Ranks are average ranks over the day's valid pairs (``scipy.stats.rankdata``); the IC
    is the Pearson correlation of the two rank vectors.

    Returns
    -------
    ndarray, shape (D,)
        NaN on days with fewer than ``min_members`` valid pairs or with constant
        predictions or returns (no ranking).
    """
    pred, real, ok = _pairs(predictions, realized)
    rp = stats.rankdata(np.where(ok, pred, np.nan), axis=1, nan_policy="omit")
    rr = stats.rankdata(np.where(ok, real, np.nan), axis=1, nan_policy="omit")
    n = ok.sum(axis=1)
    safe = np.maximum(n, 1)
    cp = np.where(ok, rp - np.nansum(rp, axis=1, keepdims=True) / safe[:, None], 0.0)
    cr = np.where(ok, rr - np.nansum(rr, axis=1, keepdims=True) / safe[:, None], 0.0)
    den = np.sqrt((cp**2).sum(axis=1) * (cr**2).sum(axis=1))
    with np.errstate(invalid="ignore", divide="ignore"):
        ic = (cp * cr).sum(axis=1) / den
    ic[(n < min_members) | ~(den > 1e-12)] = np.nan
    return ic


def newey_west_lags(n: int) -> int:
    """The usual automatic lag choice ``floor(4 (n / 100)^(2/9))``."""
    return math.floor(4.0 * (n / 100.0) ** (2.0 / 9.0)) if n > 0 else 0


@dataclass(frozen=True)
class HACMean:
    """Mean of a daily series with a Newey–West (HAC) t-statistic; ``pvalue`` two-sided,
    Student t with ``n - 1`` degrees of freedom."""

    mean: float
    t_stat: float
    pvalue: float
    n: int
    lags: int


def hac_mean(x: np.ndarray, lags: int | None = None) -> HACMean:
    r"""Test that a daily series has mean zero, robust to autocorrelation.

    .. math:: t = \bar x / \sqrt{\hat\sigma^2_{NW} / n}

    with :func:`~lstm_madness.evaluation.forecast_tests.newey_west_variance` (Bartlett
    weights, ``lags`` default :func:`newey_west_lags`): the t-statistic of an OLS
    regression of ``x`` on a constant with HAC standard errors.
    """
    arr = np.asarray(x, dtype=np.float64)
    arr = arr[np.isfinite(arr)]
    n = arr.size
    if n < 3:
        return HACMean(float(arr.mean()) if n else math.nan, math.nan, math.nan, n, 0)
    lags = newey_west_lags(n) if lags is None else int(lags)
    if lags < 0:
        raise ConfigError(f"lags must be >= 0, got {lags}")
    mean = float(arr.mean())
    lrv = newey_west_variance(arr, lags)
    if not lrv > 0:
        return HACMean(mean, math.nan, math.nan, n, lags)
    t = mean / math.sqrt(lrv / n)
    return HACMean(mean, t, float(2.0 * stats.t.sf(abs(t), n - 1)), n, lags)


@dataclass(frozen=True, eq=False)
class RankIC:
    """Daily rank information coefficient and its summary.

    Attributes
    ----------
    daily : ndarray, shape (D,)
        NaN on days without a ranking (see :func:`daily_rank_ic`).
    mean, t_stat, pvalue : float
        Over the days with an IC (:func:`hac_mean`).
    positive_share : float
        Share of those days with IC > 0.
    n_days, lags : int
    """

    daily: np.ndarray = field(repr=False)
    mean: float
    t_stat: float
    pvalue: float
    positive_share: float
    n_days: int
    lags: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "rank_ic": self.mean,
            "rank_ic_t": self.t_stat,
            "rank_ic_p": self.pvalue,
            "rank_ic_positive_share": self.positive_share,
            "rank_ic_days": self.n_days,
            "rank_ic_lags": self.lags,
        }

    def summary(self) -> str:
        return (
            f"rank IC {self.mean:.4f} (HAC t {self.t_stat:.2f}, p {self.pvalue:.4f}, "
            f"{self.lags} lags), positive on {self.positive_share:.1%} of {self.n_days} days"
        )


def rank_ic(
    predictions: np.ndarray,
    realized: np.ndarray,
    *,
    min_members: int = 3,
    lags: int | None = None,
) -> RankIC:
    """:func:`daily_rank_ic` with its HAC mean test and share of positive days."""
    daily = daily_rank_ic(predictions, realized, min_members=min_members)
    test = hac_mean(daily, lags)
    valid = daily[np.isfinite(daily)]
    share = float((valid > 0).mean()) if valid.size else math.nan
    return RankIC(daily, test.mean, test.t_stat, test.pvalue, share, test.n, test.lags)


def quantile_returns(predictions: np.ndarray, realized: np.ndarray, n_bins: int = 5) -> np.ndarray:
    """Mean next-day return of each prediction quantile, lowest predictions first.

    Each day with at least ``n_bins`` valid pairs and not all predictions equal, the
    pairs are ordered by prediction (ties by column order) and bin
    ``floor(rank * n_bins / n)`` is assigned; the day's mean realized return per bin is
    then averaged over those days.

    Returns
    -------
    ndarray, shape (n_bins,)
        NaN when no day qualifies.
    """
    if isinstance(n_bins, bool) or not isinstance(n_bins, int) or n_bins < 2:
        raise ConfigError(f"n_bins must be an integer >= 2, got {n_bins!r}")
    pred, real, ok = _pairs(predictions, realized)
    n = ok.sum(axis=1)
    spread = np.where(ok, pred, -np.inf).max(axis=1) - np.where(ok, pred, np.inf).min(axis=1)
    days = np.flatnonzero((n >= n_bins) & (spread > 0))
    if days.size == 0:
        return np.full(n_bins, np.nan)
    order = np.argsort(np.where(ok[days], pred[days], np.inf), axis=1, kind="stable")
    rank = np.empty_like(order)
    np.put_along_axis(rank, order, np.arange(pred.shape[1])[None, :], axis=1)
    bins = rank * n_bins // n[days, None]  # (n_days, S); >= n_bins off the valid pairs
    valid = ok[days]
    sums = np.zeros((days.size, n_bins))
    counts = np.zeros((days.size, n_bins))
    rows = np.broadcast_to(np.arange(days.size)[:, None], bins.shape)
    np.add.at(sums, (rows[valid], bins[valid]), real[days][valid])
    np.add.at(counts, (rows[valid], bins[valid]), 1.0)
    return (sums / counts).mean(axis=0)


def daily_mse(y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
    """Each day's mean squared error over its valid pairs, shape (D,); NaN without any."""
    pred, real, ok = _pairs(y_pred, y_true)
    sq = np.where(ok, (real - np.where(ok, pred, 0.0)) ** 2, 0.0).sum(axis=1)
    n = ok.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n > 0, sq / np.maximum(n, 1), np.nan)


@dataclass(frozen=True)
class PanelForecastTests:
    """Forecast accuracy of a panel against the zero forecast, aggregated per day.

    ``mse_model`` and ``mse_zero`` are means over the days with pairs of each day's mean
    squared error over its members, and ``r2_oos = 1 - mse_model / mse_zero`` (the label
    is demeaned across members, so zero is the no-information forecast); ``dm`` tests
    ``mse_model_t - mse_zero_t`` (one-sided: the model is more accurate).
    """

    r2_oos: float
    mse_model: float
    mse_zero: float
    n_days: int
    dm: DMResult | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "r2_oos": self.r2_oos,
            "mse": self.mse_model,
            "mse_zero": self.mse_zero,
            "n_days": self.n_days,
            "dm": None if self.dm is None else self.dm.to_dict(),
        }


def panel_forecast_tests(y_true: np.ndarray, y_pred: np.ndarray) -> PanelForecastTests:
    """R²_oos and the Diebold–Mariano test of a panel forecast against zero (per day).

    Parameters
    ----------
    y_true, y_pred : ndarray, shape (D, S)
        Labels (e.g. cross-sectionally demeaned next-day returns) and forecasts; a pair
        counts where both are finite. Both loss series use the same pairs each day.
    """
    model = daily_mse(y_true, y_pred)
    _, _, ok = _pairs(y_pred, y_true)
    zero = daily_mse(y_true, np.where(ok, 0.0, np.nan))
    days = np.isfinite(model)
    if not days.any():
        raise DataError("no (prediction, label) pair to test")
    m, z = model[days], zero[days]
    r2 = 1.0 - float(m.sum() / z.sum()) if z.sum() > 0 else math.nan
    dm = diebold_mariano_losses(m, z, loss="daily_mse") if days.sum() >= 3 else None
    return PanelForecastTests(r2, float(m.mean()), float(z.mean()), int(days.sum()), dm)


def panel_direction_calls(
    y_true: np.ndarray, y_pred: np.ndarray, task: str
) -> tuple[np.ndarray, np.ndarray]:
    """The (member, day) pairs whose prediction calls a direction, as ``(actual_up,
    predicted_up)`` boolean arrays, with one definition of "up" per task:

    - ``regression`` (the ``cross_section`` label, next-day return minus the day's mean
      over labelled members): actual up is a label above 0 (the return above the day's
      mean); predicted up is a prediction above the day's mean prediction over scored
      members; a prediction equal to that mean calls nothing;
    - ``classification`` (``cross_section_direction``: 1 when the return is above the
      day's median): actual up is a label of 1; predicted up is a probability above the
      day's median prediction over scored members; one equal to it calls nothing.

    A pair counts where the prediction and the label are both finite.
    """
    if task not in ("regression", "classification"):
        raise ConfigError(f"task must be regression or classification, got {task!r}")
    pairs, actual, called = _direction_pairs(y_true, y_pred, task)
    return actual[pairs], called[pairs]


def _direction_pairs(
    y_true: np.ndarray, y_pred: np.ndarray, task: str
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(pairs that call a direction, actual up, predicted up), each (D, S) boolean."""
    pred = np.asarray(y_pred, dtype=np.float64)
    y = np.asarray(y_true, dtype=np.float64)
    scored = np.isfinite(pred)
    with np.errstate(invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a day without any scored member
        if task == "regression":
            n = np.maximum(scored.sum(axis=1, keepdims=True), 1)
            centre = np.where(scored, pred, 0.0).sum(axis=1, keepdims=True) / n
        else:
            centre = np.nanmedian(pred, axis=1, keepdims=True)
    pairs = scored & np.isfinite(y) & (pred != centre)
    with np.errstate(invalid="ignore"):
        actual = y > (0.5 if task == "classification" else 0.0)
        return pairs, actual, (pred - centre) > 0.0


def panel_hit_test(
    y_true: np.ndarray, y_pred: np.ndarray, task: str, *, p0: float = 0.5
) -> BinomialResult:
    r"""One-sided test that a panel's hit rate exceeds ``p0``, clustered by day.

    The hit rate is pooled, ``H / N`` over the (member, day) pairs that call a direction
    (:func:`panel_direction_calls`). A day's calls are not independent (a day's errors
    move together; for a label against the day's median, half of the members are up by
    construction), so the test treats the day as the unit: with ``h_t`` hits of ``n_t``
    calls on day t, ``H / N > p0`` exactly when ``mean_t (h_t - p0 n_t) > 0``, tested by
    :func:`hac_mean`'s Newey–West t over the days with a call (one-sided, Student t with
    D - 1 df). The 95 % interval is the ratio estimator's (delta method):
    ``rate ± z_{0.975} · sqrt(σ̂²_NW(h_t - rate·n_t) / D) / mean_t n_t``. statistics.md §11.
    """
    pairs, actual, called = _direction_pairs(y_true, y_pred, task)
    hits_t = (pairs & (actual == called)).sum(axis=1).astype(np.float64)
    calls_t = pairs.sum(axis=1).astype(np.float64)
    days = calls_t > 0
    hits_t, calls_t = hits_t[days], calls_t[days]
    hits, n = int(hits_t.sum()), int(calls_t.sum())
    if n == 0:
        return BinomialResult(0, 0, math.nan, math.nan, math.nan, math.nan, "days")
    rate = hits / n
    test = hac_mean(hits_t - p0 * calls_t)
    pvalue = float(stats.t.sf(test.t_stat, test.n - 1)) if math.isfinite(test.t_stat) else math.nan
    d = hits_t.size
    low = high = math.nan
    if d >= 3:
        lrv = newey_west_variance(hits_t - rate * calls_t, newey_west_lags(d))
        half = float(stats.norm.ppf(0.975)) * math.sqrt(max(lrv, 0.0) / d) / calls_t.mean()
        low, high = max(0.0, rate - half), min(1.0, rate + half)
    return BinomialResult(hits, n, rate, pvalue, low, high, "days")


def panel_forecast_metrics(y_true: np.ndarray, y_pred: np.ndarray, task: str) -> dict[str, Any]:
    """One model's panel metrics, every figure per day first and then averaged over days
    (a day weighs the same whatever its members): ``mse`` and ``mae`` the mean of the
    daily means over members, ``mse_zero`` the same for the no-information forecast (0;
    0.5 for a direction label) on the same pairs, ``r2_oos = 1 - mse / mse_zero``;
    ``hit_rate`` over the ``hit_n`` pairs whose prediction calls a direction
    (:func:`panel_direction_calls`); ``n`` pairs on ``n_days`` days."""
    centre = 0.5 if task == "classification" else 0.0
    tests = panel_forecast_tests(np.asarray(y_true) - centre, np.asarray(y_pred) - centre)
    pred, real, ok = _pairs(y_pred, y_true)
    count = ok.sum(axis=1)
    days = count > 0
    abs_err = np.where(ok, np.abs(real - np.where(ok, pred, 0.0)), 0.0).sum(axis=1)
    actual, called = panel_direction_calls(y_true, y_pred, task)
    return {
        "mse": tests.mse_model,
        "mse_zero": tests.mse_zero,
        "mae": float((abs_err[days] / count[days]).mean()),
        "r2_oos": tests.r2_oos,
        "hit_rate": float(np.mean(actual == called)) if actual.size else math.nan,
        "hit_n": int(actual.size),
        "n": int(ok.sum()),
        "n_days": tests.n_days,
    }
