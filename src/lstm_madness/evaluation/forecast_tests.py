"""Tests of forecast accuracy: Diebold–Mariano, Pesaran–Timmermann, binomial hit rate.

All functions take arrays on identical test dates: ``y_true[i]`` is the realised target
for the prediction dated ``i`` (a return for regression, the 0/1 up label for
classification) and ``pred[i]`` the forecast of it. For the Pesaran–Timmermann test
"up" means a value above the no-information point: 0 for returns, 0.5 for probabilities
and labels (a value exactly at that point counts as "not up"); the binomial test counts
hits exactly as :func:`lstm_madness.evaluation.metrics.hit_rate` does.

References
----------
.. [1] Diebold, F. X., Mariano, R. S. (1995). Comparing predictive accuracy. *Journal of
   Business & Economic Statistics* 13(3), 253-263.
.. [2] Harvey, D., Leybourne, S., Newbold, P. (1997). Testing the equality of prediction
   mean squared errors. *International Journal of Forecasting* 13(2), 281-291.
.. [3] Newey, W. K., West, K. D. (1987). A simple, positive semi-definite,
   heteroskedasticity and autocorrelation consistent covariance matrix. *Econometrica*
   55(3), 703-708.
.. [4] Pesaran, M. H., Timmermann, A. (1992). A simple nonparametric test of predictive
   performance. *Journal of Business & Economic Statistics* 10(4), 461-465.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from scipy import special, stats

from lstm_madness.errors import ConfigError, DataError
from lstm_madness.evaluation.metrics import direction_hits

LOSSES = ("squared", "absolute")
ALTERNATIVES = ("less", "greater", "two-sided")

__all__ = [
    "BinomialResult",
    "DMResult",
    "PTResult",
    "binomial_hit_test",
    "diebold_mariano",
    "diebold_mariano_losses",
    "directions",
    "hit_rate_test",
    "newey_west_variance",
    "pesaran_timmermann",
]


def _pair(a: Any, b: Any, names: tuple[str, str]) -> tuple[np.ndarray, np.ndarray]:
    x, y = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if x.ndim != 1 or x.shape != y.shape:
        raise DataError(f"{names[0]} {x.shape} and {names[1]} {y.shape} must be 1-D, same length")
    if not (np.all(np.isfinite(x)) and np.all(np.isfinite(y))):
        raise DataError(f"{names[0]} / {names[1]} contain non-finite values")
    return x, y


def directions(values: np.ndarray, task: str = "regression") -> np.ndarray:
    """Boolean "up" indicator: ``values > 0`` (regression) or ``values > 0.5`` (classification)."""
    centre = 0.5 if task == "classification" else 0.0
    return np.asarray(values, dtype=np.float64) > centre


# --------------------------------------------------------------------------- Diebold–Mariano


@dataclass(frozen=True)
class DMResult:
    """Diebold–Mariano test with the Harvey–Leybourne–Newbold correction.

    ``statistic < 0`` means the model's loss is lower than the benchmark's. ``pvalue`` is
    for ``alternative`` ("less": the model is more accurate).
    """

    statistic: float
    pvalue: float
    mean_loss_diff: float
    n: int
    h: int
    loss: str
    alternative: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def summary(self) -> str:
        return (
            f"DM ({self.loss} loss, h={self.h}, n={self.n}): stat {self.statistic:.3f}, "
            f"p ({self.alternative}) = {self.pvalue:.4f}"
        )


def _loss(err: np.ndarray, loss: str) -> np.ndarray:
    if loss == "squared":
        return err**2
    if loss == "absolute":
        return np.abs(err)
    raise ConfigError(f"loss must be one of {LOSSES}, got {loss!r}")


def newey_west_variance(x: np.ndarray, lags: int) -> float:
    r"""Newey–West long-run variance of ``x`` with Bartlett weights.

    .. math::

        \hat\sigma^2 = \hat\gamma_0 + 2 \sum_{k=1}^{L} \Bigl(1 - \frac{k}{L+1}\Bigr)\hat\gamma_k,
        \qquad \hat\gamma_k = \frac1n \sum_{t=k+1}^{n} (x_t - \bar x)(x_{t-k} - \bar x)
    """
    xc = np.asarray(x, dtype=np.float64) - np.mean(x)
    n = xc.size
    lrv = float(xc @ xc) / n
    for k in range(1, min(lags, n - 1) + 1):  # loop over lags, not days
        lrv += 2.0 * (1.0 - k / (lags + 1)) * float(xc[k:] @ xc[:-k]) / n
    return lrv


def _pvalue(stat: float, df: int, alternative: str) -> float:
    """Student-t p-value; ``special.stdtr`` is what ``scipy.stats.t``'s cdf and sf call
    (the same numbers without the distribution wrappers' per-call cost)."""
    if alternative == "less":
        return float(special.stdtr(df, stat))
    if alternative == "greater":
        return float(special.stdtr(df, -stat))
    return float(2.0 * special.stdtr(df, -abs(stat)))


def diebold_mariano(
    y_true: np.ndarray,
    pred_model: np.ndarray,
    pred_benchmark: np.ndarray,
    *,
    loss: str = "squared",
    h: int = 1,
    alternative: str = "less",
) -> DMResult:
    r"""Diebold–Mariano test of equal predictive accuracy, HLN small-sample version.

    With the loss differential :math:`d_t = L(y_t - \hat y^{m}_t) - L(y_t - \hat y^{b}_t)`
    (``L`` squared or absolute error),

    .. math::

        DM = \frac{\bar d}{\sqrt{\hat\sigma^2_{NW}(d) / n}}, \qquad
        DM^* = DM\,\sqrt{\frac{n + 1 - 2h + h(h-1)/n}{n}} \sim t_{n-1}

    where :math:`\hat\sigma^2_{NW}` is the Newey–West long-run variance with ``h - 1`` lags
    (:func:`newey_west_variance`; for ``h = 1`` simply the variance of ``d``).

    Parameters
    ----------
    y_true, pred_model, pred_benchmark : ndarray of shape (n,)
        Realised values and the two competing forecasts of them, on the same dates.
    loss : {"squared", "absolute"}
    h : int, default 1
        Forecast horizon in days.
    alternative : {"less", "greater", "two-sided"}, default "less"
        "less": H1 is that the model has the lower expected loss (one-sided).

    Returns
    -------
    DMResult
        ``statistic`` is :math:`DM^*`. When ``d`` has zero variance (identical forecasts)
        the statistic is ``nan`` and the p-value is 1 (no evidence for the alternative)
        unless ``d`` is a non-zero constant in its direction (then 0).
    """
    y, fm = _pair(y_true, pred_model, ("y_true", "pred_model"))
    _, fb = _pair(y_true, pred_benchmark, ("y_true", "pred_benchmark"))
    return diebold_mariano_losses(
        _loss(y - fm, loss), _loss(y - fb, loss), h=h, alternative=alternative, loss=loss
    )


def diebold_mariano_losses(
    loss_model: np.ndarray,
    loss_benchmark: np.ndarray,
    *,
    h: int = 1,
    alternative: str = "less",
    loss: str = "given",
) -> DMResult:
    r"""The Diebold–Mariano test of :func:`diebold_mariano` on given loss series.

    For losses that are not a function of one forecast error, e.g. each day's mean
    squared error across the members of a panel. ``d_t = loss_model_t -
    loss_benchmark_t``; ``loss`` only labels the result.

    Parameters
    ----------
    loss_model, loss_benchmark : ndarray of shape (n,)
        The two forecasts' losses on the same dates.
    h : int, default 1
    alternative : {"less", "greater", "two-sided"}, default "less"
    loss : str
        Name of the loss, stored on the result.
    """
    if alternative not in ALTERNATIVES:
        raise ConfigError(f"alternative must be one of {ALTERNATIVES}, got {alternative!r}")
    if h < 1:
        raise ConfigError(f"h must be >= 1, got {h}")
    lm, lb = _pair(loss_model, loss_benchmark, ("loss_model", "loss_benchmark"))
    d = lm - lb
    n = d.size
    if n < 3:
        raise DataError(f"Diebold–Mariano needs at least 3 observations, got {n}")
    dbar = float(d.mean())
    lrv = newey_west_variance(d, h - 1)
    if np.ptp(d) == 0 or lrv <= 0:  # constant differential: the evidence is exact
        supports = {"less": dbar < 0, "greater": dbar > 0, "two-sided": dbar != 0}[alternative]
        return DMResult(math.nan, 0.0 if supports else 1.0, dbar, n, h, loss, alternative)
    dm = dbar / math.sqrt(lrv / n)
    stat = dm * math.sqrt((n + 1 - 2 * h + h * (h - 1) / n) / n)
    return DMResult(stat, _pvalue(stat, n - 1, alternative), dbar, n, h, loss, alternative)


# --------------------------------------------------------------------------- Pesaran–Timmermann


@dataclass(frozen=True)
class PTResult:
    """Pesaran–Timmermann test of directional accuracy (one-sided: better than chance)."""

    statistic: float
    pvalue: float
    accuracy: float
    expected_accuracy: float
    n: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def summary(self) -> str:
        return (
            f"PT (n={self.n}): accuracy {self.accuracy:.2%} vs {self.expected_accuracy:.2%} "
            f"under independence, stat {self.statistic:.3f}, p = {self.pvalue:.4f}"
        )


def pesaran_timmermann(actual_up: np.ndarray, predicted_up: np.ndarray) -> PTResult:
    r"""Pesaran–Timmermann (1992) test that predicted and actual directions are dependent.

    With :math:`\hat P` the share of correct directions, :math:`P_y` / :math:`P_x` the shares
    of actual / predicted ups and
    :math:`P_* = P_y P_x + (1 - P_y)(1 - P_x)` the accuracy expected under independence,

    .. math::

        \hat V(\hat P) &= P_*(1 - P_*)/n \\
        \hat V(P_*) &= \frac{(2P_y - 1)^2 P_x(1 - P_x)}{n}
                     + \frac{(2P_x - 1)^2 P_y(1 - P_y)}{n}
                     + \frac{4 P_y P_x (1 - P_y)(1 - P_x)}{n^2} \\
        S_n &= \frac{\hat P - P_*}{\sqrt{\hat V(\hat P) - \hat V(P_*)}} \sim N(0, 1)

    The p-value is one-sided, :math:`1 - \Phi(S_n)`. When the predictions (or outcomes) are
    all in one direction the variance is zero and the test is undefined: statistic
    and p-value are ``nan``; so are they, with ``n = 0``, without any direction called.

    Parameters
    ----------
    actual_up, predicted_up : ndarray of bool, shape (n,)
        Directions, e.g. from :func:`directions`.
    """
    y = np.asarray(actual_up, dtype=bool)
    x = np.asarray(predicted_up, dtype=bool)
    if y.ndim != 1 or y.shape != x.shape:
        raise DataError(f"actual_up {y.shape} and predicted_up {x.shape} must be 1-D, same length")
    n = y.size
    if n == 0:
        return PTResult(math.nan, math.nan, math.nan, math.nan, 0)
    p_hat = float(np.mean(x == y))
    py, px = float(y.mean()), float(x.mean())
    p_star = py * px + (1 - py) * (1 - px)
    v_p = p_star * (1 - p_star) / n
    v_star = (
        (2 * py - 1) ** 2 * px * (1 - px) / n
        + (2 * px - 1) ** 2 * py * (1 - py) / n
        + 4 * py * px * (1 - py) * (1 - px) / n**2
    )
    var = v_p - v_star
    if var <= 0:
        return PTResult(math.nan, math.nan, p_hat, p_star, n)
    stat = (p_hat - p_star) / math.sqrt(var)
    return PTResult(stat, float(special.ndtr(-stat)), p_hat, p_star, n)  # normal sf


# --------------------------------------------------------------------------- binomial


@dataclass(frozen=True)
class BinomialResult:
    """One-sided test that the hit rate exceeds ``p0`` (0.5), with a 95 % interval.

    ``method`` says how: ``"binomial"``, the exact binomial test and Clopper–Pearson
    interval, calls independent (a time series: one call a day); ``"days"``, clustered by
    day, for a panel whose calls on one day are not independent
    (:func:`~lstm_madness.evaluation.cross_section_stats.panel_hit_test`, statistics.md §11).
    """

    hits: int
    n: int
    hit_rate: float
    pvalue: float
    ci_low: float
    ci_high: float
    method: str = "binomial"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def label(self) -> str:
        """What the p-value tests, in words."""
        if self.method == "days":
            return "vs 50%, clustered by day (Newey–West over days; calls that call a direction)"
        return "binomial vs 50%; predictions that call a direction"

    def summary(self) -> str:
        if self.n == 0:
            return "hit rate – (no prediction calls a direction)"
        how = ", clustered by day" if self.method == "days" else ""
        return (
            f"hit rate {self.hit_rate:.2%} ({self.hits}/{self.n} predictions that call a "
            f"direction), p = {self.pvalue:.4f}{how}"
        )


def binomial_hit_test(hits: int, n: int, *, p0: float = 0.5) -> BinomialResult:
    """Exact one-sided binomial test that ``hits`` of ``n`` calls beat ``p0``, with the
    two-sided 95 % Clopper–Pearson interval; every field NaN (``n = 0``) without a call."""
    if n == 0:
        return BinomialResult(0, 0, math.nan, math.nan, math.nan, math.nan)
    res = stats.binomtest(hits, n, p0, alternative="greater")
    low, high = clopper_pearson(hits, n, 0.95)
    return BinomialResult(hits, n, hits / n, float(res.pvalue), low, high)


def hit_rate_test(
    y_true: np.ndarray, y_pred: np.ndarray, task: str = "regression", *, p0: float = 0.5
) -> BinomialResult:
    """Binomial test (``scipy.stats.binomtest``, one-sided "greater") of the direction hit rate.

    Hits are counted as in :func:`lstm_madness.evaluation.metrics.direction_hits`: only
    predictions that call a direction count (a return forecast of exactly 0, a probability
    of exactly 0.5, takes no position). ``ci_low`` / ``ci_high`` is the two-sided 95 %
    Clopper–Pearson interval of the hit rate.

    Parameters
    ----------
    y_true, y_pred : ndarray of shape (n,)
        Realised values and forecasts (returns, or 0/1 labels and probabilities).
    task : {"regression", "classification"}
    p0 : float, default 0.5
        Hit rate under H0.
    """
    scored = direction_hits(y_true, y_pred, task)
    called = scored[np.isfinite(scored)]
    return binomial_hit_test(int(called.sum()), int(called.size), p0=p0)


def clopper_pearson(k: int, n: int, level: float = 0.95) -> tuple[float, float]:
    """Two-sided exact (Clopper–Pearson) interval of a binomial proportion, ``k`` of ``n``,
    from beta quantiles: the interval of ``binomtest(k, n).proportion_ci(level, "exact")``
    without its root finding."""
    alpha = 1.0 - level
    low = 0.0 if k == 0 else float(special.betaincinv(k, n - k + 1, alpha / 2))
    high = 1.0 if k == n else float(special.betaincinv(k + 1, n - k, 1 - alpha / 2))
    return low, high
