"""Significance of a strategy's performance when many configurations were tried.

This module: the Sharpe t-test, PSR and DSR, the stationary bootstrap's confidence
intervals and the spread across seeds. The tests of a whole trial set (SPA, StepM, PBO)
are :mod:`lstm_madness.evaluation.snooping`'s.

Inputs are daily simple net returns on identical test dates. Sharpe ratios are quoted
annualized (x sqrt(252)) unless a name says ``_daily``; the formulas of Bailey and López de
Prado use the per-period (daily) Sharpe ratio, and the conversion is done here.

References
----------
.. [1] Bailey, D. H., López de Prado, M. (2012). The Sharpe ratio efficient frontier.
   *Journal of Risk* 15(2), 3-44. (Probabilistic Sharpe Ratio.)
.. [2] Bailey, D. H., López de Prado, M. (2014). The deflated Sharpe ratio: correcting for
   selection bias, backtest overfitting and non-normality. *Journal of Portfolio
   Management* 40(5), 94-107.
.. [3] Bailey, D. H., Borwein, J., López de Prado, M., Zhu, Q. J. (2017). The probability of
   backtest overfitting. *Journal of Computational Finance* 20(4), 39-69 (SSRN 2326253, 2015).
.. [4] Hansen, P. R. (2005). A test for superior predictive ability. *Journal of Business &
   Economic Statistics* 23(4), 365-380.
.. [6] Romano, J. P., Wolf, M. (2005). Stepwise multiple testing as formalized data
   snooping. *Econometrica* 73(4), 1237-1282.
.. [5] Politis, D. N., Romano, J. P. (1994). The stationary bootstrap. *JASA* 89(428),
   1303-1313; Politis, D. N., White, H. (2004), Patton, A., Politis, D. N., White, H.
   (2009). Automatic block-length selection for the dependent bootstrap.
"""

from __future__ import annotations

import functools
import math
import sys
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from arch.bootstrap import optimal_block_length
from scipy import special

from lstm_madness import jit
from lstm_madness.errors import DataError
from lstm_madness.evaluation.performance import PERIODS_PER_YEAR, daily_risk_free
from lstm_madness.options import DEFAULT_RISK_FREE

EULER_GAMMA = float(np.euler_gamma)

__all__ = [
    "ConfidenceInterval",
    "DSRResult",
    "SeedSpread",
    "SharpeTest",
    "as_returns",
    "block_length",
    "deflated_sharpe_ratio",
    "effective_trials",
    "excess_return_ci",
    "expected_max_sharpe",
    "mean_pairwise_correlation",
    "probabilistic_sharpe_ratio",
    "resample_sums",
    "seed_spread",
    "sharpe_ci",
    "sharpe_tstat",
    "stationary_bootstrap_indices",
]


def as_returns(x: Any, name: str = "returns") -> np.ndarray:
    """``x`` as a finite 1-D float64 array of at least 3 daily returns."""
    r = np.asarray(x, dtype=np.float64)
    if r.ndim != 1 or r.size < 3:
        raise DataError(f"{name} must be 1-D with at least 3 values, got shape {r.shape}")
    if not np.all(np.isfinite(r)):
        raise DataError(f"{name} contains non-finite values")
    return r


def _moments(ex: np.ndarray) -> tuple[float, float, float]:
    """Daily Sharpe, skewness and (non-excess) kurtosis; population moments as in [1]_."""
    sd = float(ex.std(ddof=1))
    if sd <= 1e-14:
        return (0.0 if abs(ex.mean()) <= 1e-14 else math.nan), 0.0, 3.0
    d = ex - ex.mean()
    d2 = d * d
    m2 = float(d2.mean())
    skew = float((d2 * d).mean()) / m2**1.5  # scipy.stats.skew (bias=True)
    kurtosis = float((d2 * d2).mean()) / m2**2  # scipy.stats.kurtosis(fisher=False)
    return float(ex.mean()) / sd, skew, kurtosis


# --------------------------------------------------------------------------- Sharpe tests


@dataclass(frozen=True)
class SharpeTest:
    r"""t-test of a positive mean excess return: :math:`t = \widehat{SR}_{daily}\sqrt{n}`.

    ``pvalue`` is one-sided (H1: Sharpe > 0) from Student's t with ``n - 1`` degrees of
    freedom. ``sharpe`` is annualized.
    """

    sharpe: float
    tstat: float
    pvalue: float
    n: int
    skew: float
    kurtosis: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def sharpe_tstat(
    returns: np.ndarray, risk_free: float = DEFAULT_RISK_FREE, periods: int = PERIODS_PER_YEAR
) -> SharpeTest:
    """:class:`SharpeTest` of daily simple returns against the risk-free rate (annual)."""
    r = as_returns(returns)
    sr_d, skew, kurt = _moments(r - daily_risk_free(risk_free, periods))
    t = sr_d * math.sqrt(r.size)
    p = float(special.stdtr(r.size - 1, -t)) if math.isfinite(t) else math.nan  # t sf
    return SharpeTest(sr_d * math.sqrt(periods), t, p, int(r.size), skew, kurt)


def probabilistic_sharpe_ratio(
    sharpe: float, n: int, *, skew: float = 0.0, kurtosis: float = 3.0, benchmark: float = 0.0
) -> float:
    r"""Probabilistic Sharpe Ratio (Bailey & López de Prado 2012), per-period Sharpe inputs.

    .. math::

        PSR(SR^*) = \Phi\!\left(\frac{(\widehat{SR} - SR^*)\sqrt{n - 1}}
        {\sqrt{1 - \hat\gamma_3 \widehat{SR} + \frac{\hat\gamma_4 - 1}{4}\widehat{SR}^2}}\right)

    Parameters
    ----------
    sharpe : float
        Observed Sharpe ratio :math:`\widehat{SR}` **per period** (not annualized).
    n : int
        Number of returns.
    skew, kurtosis : float
        :math:`\hat\gamma_3` and :math:`\hat\gamma_4` (non-excess: 3 for a normal).
    benchmark : float
        :math:`SR^*`, per period.
    """
    if not math.isfinite(sharpe) or n < 2:
        return math.nan
    var = 1.0 - skew * sharpe + (kurtosis - 1.0) / 4.0 * sharpe**2
    if var <= 0:
        return math.nan
    return float(special.ndtr((sharpe - benchmark) * math.sqrt(n - 1) / math.sqrt(var)))


def expected_max_sharpe(trials: float, variance: float) -> float:
    r"""Expected maximum Sharpe of ``trials`` unskilled strategies (Bailey & López de Prado 2014).

    .. math::

        SR_0 = \sqrt{V}\left((1 - \gamma)\,\Phi^{-1}\!\left(1 - \tfrac1N\right)
               + \gamma\,\Phi^{-1}\!\left(1 - \tfrac{1}{N e}\right)\right)

    with :math:`\gamma` the Euler–Mascheroni constant and ``V`` the variance of the trials'
    Sharpe ratios (same units as the result). ``N = 1`` gives 0. ``N`` may be fractional
    (an effective number of trials, see :func:`effective_trials`); below 2 the formula can
    turn negative, and the result is then floored at 0.
    """
    if not trials >= 1:
        raise DataError(f"trials must be >= 1, got {trials}")
    if trials == 1:
        return 0.0
    z1 = special.ndtri(1.0 - 1.0 / trials)  # the normal quantile, as scipy.stats.norm.ppf
    z2 = special.ndtri(1.0 - 1.0 / (trials * math.e))
    return max(0.0, float(math.sqrt(variance) * ((1.0 - EULER_GAMMA) * z1 + EULER_GAMMA * z2)))


def mean_pairwise_correlation(returns: np.ndarray) -> float:
    r"""Mean Pearson correlation over all pairs of columns of ``returns`` (T, N), in [0, 1].

    Pairs with an undefined correlation (a constant column) are left out; with fewer than
    two columns, or no defined pair, the result is 0 (the trials count as independent,
    which never lowers the count). Negative means are clipped to 0.
    """
    m = np.asarray(returns, dtype=np.float64)
    if m.ndim != 2 or m.shape[1] < 2 or m.shape[0] < 3:
        return 0.0
    if not np.all(np.isfinite(m)):
        raise DataError("returns contain non-finite values")
    with np.errstate(divide="ignore", invalid="ignore"):
        corr = np.corrcoef(m, rowvar=False)
    upper = corr[np.triu_indices(m.shape[1], k=1)]
    upper = upper[np.isfinite(upper)]
    if upper.size == 0:
        return 0.0
    return float(min(max(upper.mean(), 0.0), 1.0))


def effective_trials(trials: float, mean_correlation: float) -> float:
    r""":math:`N_{eff} = \bar\rho + (1 - \bar\rho)\,N`: ``N`` trials whose daily returns have
    mean pairwise correlation :math:`\bar\rho` (clipped to [0, 1]) count as this many
    independent ones (1 when they are identical, ``N`` when uncorrelated)."""
    rho = min(max(float(mean_correlation), 0.0), 1.0)
    return rho + (1.0 - rho) * float(trials)


@dataclass(frozen=True)
class DSRResult:
    """Deflated Sharpe Ratio and its ingredients (Sharpe ratios annualized).

    ``sharpe_variance`` is ``V`` of the formula in **annualized** units: the sample variance
    (``ddof=1``) of the trials' annualized Sharpe ratios, i.e. 252 × the variance of their
    daily (non-annualized) Sharpe ratios. ``variance_source`` says where it came from:
    ``"trial_sharpes"`` (the trials' Sharpe ratios, this strategy's included), ``"null"``
    (only the number of trials is known: the sampling variance of a Sharpe estimate under
    no skill, ``1/(n-1)`` per day) or ``"single_trial"`` (``trials = 1``: DSR equals PSR
    against 0). ``trials`` may be fractional (effective trials).
    """

    dsr: float
    psr: float
    sharpe: float
    benchmark_sharpe: float
    trials: float
    sharpe_variance: float
    variance_source: str
    n: int
    skew: float
    kurtosis: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def summary(self) -> str:
        tr = "trial" if self.trials == 1 else "trials"
        return (
            f"DSR {self.dsr:.3f} after {self.trials:.4g} {tr} (Sharpe {self.sharpe:.2f} vs "
            f"expected max {self.benchmark_sharpe:.2f}); PSR(0) {self.psr:.3f}"
        )


def deflated_sharpe_ratio(
    returns: np.ndarray,
    *,
    trials: float = 1,
    trial_sharpes: np.ndarray | None = None,
    risk_free: float = DEFAULT_RISK_FREE,
    periods: int = PERIODS_PER_YEAR,
    floor_at_null: bool = False,
) -> DSRResult:
    r"""Deflated Sharpe Ratio of daily returns after ``trials`` configurations were tried.

    :math:`DSR = PSR(SR_0)` with :math:`SR_0` from :func:`expected_max_sharpe`, the
    strategy's own skewness and kurtosis and ``n`` returns, as published in [2]_.

    Parameters
    ----------
    returns : ndarray of shape (n,)
        Daily simple net returns of the selected strategy.
    trials : float, default 1
        ``N``, the number of configurations tried (>= 1; fractional for effective trials).
    trial_sharpes : ndarray, optional
        **Annualized** Sharpe ratios of **all** the trials, **this strategy's own
        included** (e.g. ``[0.735, 0.1, 0.1]`` for this strategy and two others). With at
        least two finite values, their sample variance (``ddof=1``) in daily units is ``V``.
        Otherwise, when only ``N`` is known, ``V`` falls back to the sampling variance of a
        Sharpe estimate of a strategy without skill, ``1/(n-1)`` per day (Lo 2002; Bailey &
        López de Prado 2012).
    risk_free : float
        Annual risk-free rate.
    floor_at_null : bool, default False
        Use ``max(V, 1/(n-1))`` (not in the paper): the variance of a handful of strongly
        correlated trials can understate the dispersion of ``N`` trials. The source then
        ends in ``"+null_floor"`` when the floor binds.
    """
    r = as_returns(returns)
    n = r.size
    sr_d, skew, kurt = _moments(r - daily_risk_free(risk_free, periods))
    psr0 = probabilistic_sharpe_ratio(sr_d, n, skew=skew, kurtosis=kurt)
    ts = np.asarray([] if trial_sharpes is None else trial_sharpes, dtype=np.float64).ravel()
    ts = ts[np.isfinite(ts)]
    n_trials = max(trials, 1)
    if n_trials == 1:
        var_d, source = 0.0, "single_trial"
    elif ts.size >= 2:
        var_d, source = float(np.var(ts / math.sqrt(periods), ddof=1)), "trial_sharpes"
    else:
        var_d, source = 1.0 / (n - 1), "null"
    if floor_at_null and n_trials > 1 and var_d < 1.0 / (n - 1):
        var_d, source = 1.0 / (n - 1), source + "+null_floor"
    sr0_d = expected_max_sharpe(n_trials, var_d)
    dsr = probabilistic_sharpe_ratio(sr_d, n, skew=skew, kurtosis=kurt, benchmark=sr0_d)
    ann = math.sqrt(periods)
    return DSRResult(
        dsr, psr0, sr_d * ann, sr0_d * ann, n_trials, var_d * periods, source, n, skew, kurt
    )


# --------------------------------------------------------------------------- bootstrap CIs


def block_length(x: np.ndarray) -> float:
    """Politis–White (Patton et al. 2009) stationary-bootstrap block length, at least 1.

    From :func:`arch.bootstrap.optimal_block_length` (stationary column); 1 when undefined
    (e.g. a constant series); at most ``n / 4``.
    """
    arr = np.asarray(x, dtype=np.float64)
    if arr.ndim == 2:
        arr = arr.mean(axis=1)
    if arr.size < 8 or np.ptp(arr) == 0:
        return 1.0
    with np.errstate(all="ignore"):
        table = optimal_block_length(arr)  # columns "stationary" (arch >= 8) or "b_sb"
        b = float(table.iloc[0, 0])
    if not math.isfinite(b):
        return 1.0
    return float(min(max(b, 1.0), arr.size / 4))


@dataclass(frozen=True)
class ConfidenceInterval:
    """Percentile confidence interval from the stationary bootstrap."""

    estimate: float
    low: float
    high: float
    level: float
    block_length: float
    reps: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def summary(self) -> str:
        return (
            f"{self.estimate:.3f} [{self.low:.3f}, {self.high:.3f}] "
            f"({self.level:.0%}, block {self.block_length:.1f}, {self.reps} reps)"
        )


@functools.lru_cache(maxsize=4)
def _bootstrap_draws(n: int, reps: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """The random numbers behind :func:`stationary_bootstrap_indices` for a seed: block
    starts (int32) and the uniforms that decide where blocks break. They do not depend on
    the block length, so every series of ``n`` days in an evaluation pass shares them.
    Read-only: callers must not write into them."""
    rng = np.random.default_rng(seed)
    starts = rng.integers(0, n, size=(reps, n), dtype=np.int32)
    uniforms = rng.random((reps, n), dtype=np.float32)
    starts.flags.writeable = False
    uniforms.flags.writeable = False
    return starts, uniforms


def _draws(n: int, reps: int, seed: int | None) -> tuple[np.ndarray, np.ndarray]:
    if seed is None:
        rng = np.random.default_rng()
        return rng.integers(0, n, size=(reps, n), dtype=np.int32), rng.random(
            (reps, n), dtype=np.float32
        )
    return _bootstrap_draws(n, reps, int(seed))


def _jump_probability(block: float) -> np.float32:
    return np.float32(1.0 / max(float(block), 1.0))


def stationary_bootstrap_indices(
    n: int, block: float, reps: int, seed: int | None = 0
) -> np.ndarray:
    """Row indices of ``reps`` stationary-bootstrap resamples of ``n`` days, shape (reps, n).

    Politis & Romano (1994) [5]_: day ``t`` of a resample starts a new block at a uniformly
    drawn day with probability ``1 / block`` (always at ``t = 0``), else it takes the day
    after the previous one, wrapping around the end; block lengths are geometric with mean
    ``block``. All resamples are drawn at once (no loop over replications); with a fixed
    ``seed`` the draws are shared across block lengths (common random numbers).
    """
    starts, uniforms = _draws(n, reps, seed)
    jump = uniforms < _jump_probability(block)
    jump[:, 0] = True
    t = np.arange(n, dtype=np.int32)
    last = np.maximum.accumulate(np.where(jump, t, 0), axis=1)
    return (np.take_along_axis(starts, last, axis=1) + (t - last)) % n


def _compiled_resampling() -> bool:
    """Whether :func:`resample_sums` takes the compiled path: numba is already imported."""
    return "numba" in sys.modules


def resample_sums(
    y: np.ndarray, block: float, reps: int, seed: int | None = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Sum and sum of squares of ``y`` (n,) over each of the ``reps`` resamples of
    :func:`stationary_bootstrap_indices` (each added in day order), shapes (reps,).

    Two paths give the same bits: numba's compiled loop when numba is already imported in
    this process (e.g. by the compiled trainer; 10x faster, nothing materialized), else
    NumPy's sequential ``cumsum`` over the gathered resamples. Which one ran never shows in
    a number, so every command states the same confidence intervals.
    """
    y = np.ascontiguousarray(y, dtype=np.float64)
    if _compiled_resampling():
        starts, uniforms = _draws(y.size, reps, seed)
        kernels = jit.load("lstm_madness.evaluation._resample")
        return kernels.resample_sums(y, starts, uniforms, _jump_probability(block))
    samples = y[stationary_bootstrap_indices(y.size, block, reps, seed)]
    s1 = np.cumsum(samples, axis=1)[:, -1]
    s2 = np.cumsum(samples * samples, axis=1)[:, -1]
    return s1, s2


def _resampled_moments(
    x: np.ndarray, block: float, reps: int, seed: int | None
) -> tuple[np.ndarray, np.ndarray]:
    """Mean and sample standard deviation (ddof 1) of ``x`` over each resample, from the
    sums of the values centred on their full-sample mean (exactly 0 for a constant)."""
    n = x.size
    center = float(x.mean())
    s1, s2 = resample_sums(x - center, block, reps, seed)
    var = (s2 - s1 * s1 / n) / (n - 1)
    return center + s1 / n, np.sqrt(np.maximum(var, 0.0))


def _bootstrap_ci(
    x: np.ndarray,
    stat,
    estimate: float,
    *,
    reps: int,
    block: float | None,
    level: float,
    seed: int | None,
) -> ConfidenceInterval:
    """Percentile CI of ``stat(mean, sd)`` (arrays over the resamples) around ``estimate``."""
    b = block_length(x) if block is None else float(block)
    values = stat(*_resampled_moments(x, b, reps, seed))
    values = values[np.isfinite(values)]
    alpha = (1.0 - level) / 2.0
    low, high = (
        np.percentile(values, [100 * alpha, 100 * (1 - alpha)]) if values.size else (np.nan,) * 2
    )
    return ConfidenceInterval(float(estimate), float(low), float(high), level, b, reps)


def _sharpe_of(mean: np.ndarray, sd: np.ndarray, periods: int = PERIODS_PER_YEAR) -> np.ndarray:
    """Annualized Sharpe ratios from daily mean excess returns and their standard deviations,
    with :func:`.backtest.sharpe_ratio`'s conventions (0 for a flat series, NaN for a
    constant non-zero one)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(sd > 1e-14, mean / sd, np.where(np.abs(mean) <= 1e-14, 0.0, np.nan))
    return math.sqrt(periods) * ratio


def sharpe_ci(
    returns: np.ndarray,
    *,
    risk_free: float = DEFAULT_RISK_FREE,
    reps: int = 1000,
    block: float | None = None,
    level: float = 0.95,
    seed: int | None = 0,
) -> ConfidenceInterval:
    """Stationary-bootstrap percentile CI of the annualized Sharpe ratio of daily returns.

    ``block`` is the expected block length in days; ``None`` = :func:`block_length`.
    """
    ex = as_returns(returns) - daily_risk_free(risk_free, PERIODS_PER_YEAR)
    estimate = _sharpe_of(np.array([ex.mean()]), np.array([ex.std(ddof=1)]))[0]
    return _bootstrap_ci(ex, _sharpe_of, estimate, reps=reps, block=block, level=level, seed=seed)


def excess_return_ci(
    returns: np.ndarray,
    benchmark_returns: np.ndarray,
    *,
    reps: int = 1000,
    block: float | None = None,
    level: float = 0.95,
    seed: int | None = 0,
    periods: int = PERIODS_PER_YEAR,
) -> ConfidenceInterval:
    r"""Stationary-bootstrap CI of the annualized mean excess return over a benchmark.

    The statistic is :math:`252\,\overline{(r_t - b_t)}` (arithmetic, annualized); the
    daily differences are resampled in blocks, which keeps the pairing of the two series.
    """
    d = as_returns(returns) - as_returns(benchmark_returns, "benchmark_returns")
    return _bootstrap_ci(
        d,
        lambda mean, _sd: periods * mean,
        periods * d.mean(),
        reps=reps,
        block=block,
        level=level,
        seed=seed,
    )


# --------------------------------------------------------------------------- seeds


@dataclass(frozen=True)
class SeedSpread:
    """Distribution of the net Sharpe ratio across seeds of one configuration."""

    n: int
    min: float
    median: float
    max: float
    mean: float
    std: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def summary(self) -> str:
        return (
            f"{self.n} seeds: net Sharpe min {self.min:.2f}, median {self.median:.2f}, "
            f"max {self.max:.2f} (mean {self.mean:.2f} ± {self.std:.2f})"
        )


def seed_spread(sharpes: np.ndarray) -> SeedSpread:
    """Min, median, max, mean and sample standard deviation (``ddof=1``) of the finite values."""
    x = np.asarray(sharpes, dtype=np.float64).ravel()
    x = x[np.isfinite(x)]
    if x.size == 0:
        return SeedSpread(0, math.nan, math.nan, math.nan, math.nan, math.nan)
    std = float(x.std(ddof=1)) if x.size > 1 else math.nan
    return SeedSpread(
        int(x.size), float(x.min()), float(np.median(x)), float(x.max()), float(x.mean()), std
    )
