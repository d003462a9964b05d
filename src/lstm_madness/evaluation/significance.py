"""Significance of a strategy's performance when many configurations were tried.

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
import itertools
import math
import sys
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from arch.bootstrap import SPA, optimal_block_length
from scipy import special

from lstm_madness import _numba
from lstm_madness.errors import DataError
from lstm_madness.evaluation.backtest import PERIODS_PER_YEAR, daily_risk_free

EULER_GAMMA = float(np.euler_gamma)

__all__ = [
    "ConfidenceInterval",
    "DSRResult",
    "PBOResult",
    "SPAResult",
    "SeedSpread",
    "SharpeTest",
    "StepMResult",
    "block_length",
    "deflated_sharpe_ratio",
    "effective_trials",
    "excess_return_ci",
    "expected_max_sharpe",
    "mean_pairwise_correlation",
    "probabilistic_sharpe_ratio",
    "probability_of_backtest_overfitting",
    "resample_sums",
    "seed_spread",
    "sharpe_ci",
    "sharpe_tstat",
    "spa_stepm",
    "spa_test",
    "stationary_bootstrap_indices",
]


def _returns(x: Any, name: str = "returns") -> np.ndarray:
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
    returns: np.ndarray, risk_free: float = 0.0, periods: int = PERIODS_PER_YEAR
) -> SharpeTest:
    """:class:`SharpeTest` of daily simple returns against the risk-free rate (annual)."""
    r = _returns(returns)
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
    risk_free: float = 0.0,
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
    r = _returns(returns)
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
        kernels = _numba.load("lstm_madness.evaluation._resample")
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
    risk_free: float = 0.0,
    reps: int = 1000,
    block: float | None = None,
    level: float = 0.95,
    seed: int | None = 0,
) -> ConfidenceInterval:
    """Stationary-bootstrap percentile CI of the annualized Sharpe ratio of daily returns.

    ``block`` is the expected block length in days; ``None`` = :func:`block_length`.
    """
    ex = _returns(returns) - daily_risk_free(risk_free, PERIODS_PER_YEAR)
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
    d = _returns(returns) - _returns(benchmark_returns, "benchmark_returns")
    return _bootstrap_ci(
        d,
        lambda mean, _sd: periods * mean,
        periods * d.mean(),
        reps=reps,
        block=block,
        level=level,
        seed=seed,
    )


# --------------------------------------------------------------------------- SPA


@dataclass(frozen=True)
class SPAResult:
    """Hansen's SPA test: H0 = no strategy beats the benchmark (expected net return)."""

    pvalue: float
    pvalue_lower: float
    pvalue_upper: float
    n_models: int
    block_length: float
    reps: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class StepMResult:
    """Romano and Wolf's StepM: which strategies beat the benchmark, with the family-wise
    error rate over all of them controlled at ``fwer``.

    ``superior`` holds the column indices (into the strategies tested) that StepM selects,
    ascending."""

    superior: tuple[int, ...]
    n_models: int
    fwer: float
    block_length: float
    reps: int

    def selects(self, column: int | None) -> bool:
        """Whether the strategy in ``column`` is among the superior ones."""
        return column is not None and int(column) in self.superior

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "superior": list(self.superior)}


def _strategies_and_benchmark(
    strategy_returns: np.ndarray, benchmark_returns: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    models = np.asarray(strategy_returns, dtype=np.float64)
    models = models[:, None] if models.ndim == 1 else models
    bench = _returns(benchmark_returns, "benchmark_returns")
    if models.shape[0] != bench.size:
        raise DataError(
            f"strategy_returns ({models.shape[0]} days) and benchmark "
            f"({bench.size} days) differ in length"
        )
    if not np.all(np.isfinite(models)):
        raise DataError("strategy_returns contain non-finite values")
    return models, bench


def spa_stepm(
    strategy_returns: np.ndarray,
    benchmark_returns: np.ndarray,
    *,
    fwer: float = 0.05,
    reps: int = 1000,
    block: float | None = None,
    seed: int | None = 0,
) -> tuple[SPAResult, StepMResult]:
    """Hansen's SPA test and Romano–Wolf StepM of strategies against a benchmark, from one
    set of bootstrap draws (:class:`arch.bootstrap.SPA`; StepM's first step is the SPA test
    and its later steps reuse the draws, as :class:`arch.bootstrap.StepM` does).

    Losses are negative daily net returns, so a "better" strategy earns more on average.
    SPA answers "does *some* strategy beat the benchmark?" (a property of the whole set);
    StepM says *which* strategies do, controlling the family-wise error rate at ``fwer``.

    Parameters
    ----------
    strategy_returns : ndarray of shape (n_days,) or (n_days, n_strategies)
        Net daily returns of every strategy tried on the same target and dates.
    benchmark_returns : ndarray of shape (n_days,)
        Net daily returns of buy-and-hold.
    fwer : float, default 0.05
        StepM's family-wise error rate (``size`` of :class:`arch.bootstrap.StepM`).
    reps : int
        Stationary-bootstrap replications.
    block : float, optional
        Expected block length in days; ``None`` = :func:`block_length` of the mean loss
        differential (rounded to whole days, at least 1, for both tests).
    seed : int, optional
        Seed of the bootstrap.

    Returns
    -------
    (SPAResult, StepMResult)
        SPA's ``pvalue`` is Hansen's consistent p-value (``pvalue_lower`` / ``pvalue_upper``
        bracket it); StepM's ``superior`` the selected columns (consistent critical
        values, as :class:`arch.bootstrap.StepM` computes them).
    """
    models, bench = _strategies_and_benchmark(strategy_returns, benchmark_returns)
    b = block_length(models - bench[:, None]) if block is None else float(block)
    k = int(models.shape[1])
    spa = SPA(-bench, -models, block_size=max(round(b), 1), reps=reps, seed=seed)
    spa.compute()  # the first step: SPA of the whole set
    p = spa.pvalues
    superior = _stepm_steps(spa, k, fwer)
    first = SPAResult(float(p["consistent"]), float(p["lower"]), float(p["upper"]), k, b, reps)
    return first, StepMResult(superior, k, float(fwer), b, reps)


def _stepm_steps(spa: SPA, k: int, fwer: float) -> tuple[int, ...]:
    """Romano and Wolf's steps on a computed SPA, as :meth:`arch.bootstrap.StepM.compute`
    takes them (the strategies whose mean loss differential exceeds the consistent
    critical value are superior; remove them and test the rest again, on the same
    bootstrap draws, until a step finds none). arch 8.0.0's loop stops on the count of the
    last step's finds, not of all finds, and so fails on an empty subset when every
    strategy is superior; this loop stops when none is left."""
    found = [int(i) for i in spa.better_models(fwer)]
    selected = list(found)
    while found and len(selected) < k:
        rest = np.ones(k, dtype=np.bool_)
        rest[selected] = False
        spa.subset(rest)
        spa.compute()
        found = [int(i) for i in spa.better_models(fwer)]
        selected += found
    spa.subset(np.ones(k, dtype=np.bool_))
    return tuple(sorted(selected))


def spa_test(
    strategy_returns: np.ndarray,
    benchmark_returns: np.ndarray,
    *,
    reps: int = 1000,
    block: float | None = None,
    seed: int | None = 0,
) -> SPAResult:
    """Hansen's SPA test (:class:`arch.bootstrap.SPA`) of strategies against a benchmark:
    H0 "no strategy beats the benchmark". The SPA half of :func:`spa_stepm`."""
    return spa_stepm(strategy_returns, benchmark_returns, reps=reps, block=block, seed=seed)[0]


# --------------------------------------------------------------------------- PBO (CSCV)


@dataclass(frozen=True, eq=False)
class PBOResult:
    """Probability of Backtest Overfitting by CSCV.

    ``pbo`` is ``nan`` with a ``reason`` when it cannot be computed. ``logits`` holds
    :math:`\\lambda_c` for every combination; ``degradation`` is the slope of OOS on IS
    Sharpe of the IS-best strategy (negative = performance decays out of sample).
    """

    pbo: float
    n_strategies: int
    n_blocks: int
    n_combinations: int
    reason: str | None = None
    logits: np.ndarray = field(default_factory=lambda: np.empty(0), repr=False)
    degradation: float = math.nan

    def to_dict(self) -> dict[str, Any]:
        d = {k: getattr(self, k) for k in self.__dataclass_fields__ if k != "logits"}
        return d


def _block_stats(m: np.ndarray, n_blocks: int) -> tuple[np.ndarray, np.ndarray, int]:
    t = m.shape[0] - m.shape[0] % n_blocks  # drop the oldest rows that do not fill a block
    blocks = m[m.shape[0] - t :].reshape(n_blocks, t // n_blocks, m.shape[1])
    return blocks.sum(axis=1), (blocks**2).sum(axis=1), t // n_blocks


def _combo_sharpe(mask: np.ndarray, sums: np.ndarray, sq: np.ndarray, per: int) -> np.ndarray:
    """Sharpe (mean / sd, ddof=1) of every strategy on the blocks selected by ``mask``
    (0 where the sd is 0). In place on two (C, N) arrays: with 1,024 strategies and all
    12,870 splits of 16 blocks each array is 105 MB, and fresh temporaries cost more than
    the arithmetic."""
    k = mask.sum(axis=1, keepdims=True) * per  # (C, 1) rows
    mean = mask @ sums  # (C, N)
    mean /= k
    var = mask @ sq
    squares = mean * mean
    squares *= k
    var -= squares
    del squares
    np.maximum(var, 0.0, out=var)
    var /= k - 1
    flat = ~(var > 0)
    np.sqrt(var, out=var)
    with np.errstate(divide="ignore", invalid="ignore"):
        np.divide(mean, var, out=mean)
    mean[flat] = 0.0
    return mean


def _average_rank(values: np.ndarray, chosen: np.ndarray) -> np.ndarray:
    """Per row of ``values`` (C, N), the average rank (1 = lowest; ties share the mean of
    their ranks, as ``scipy.stats.rankdata``) of the entry in column ``chosen[row]``."""
    picked = values[np.arange(chosen.size), chosen][:, None]
    below = np.count_nonzero(values < picked, axis=1)
    equal = np.count_nonzero(values == picked, axis=1)
    return below + (equal + 1) / 2.0


def probability_of_backtest_overfitting(
    returns: np.ndarray,
    *,
    n_blocks: int = 16,
    min_block_days: int = 20,
    max_combinations: int = 20_000,
    seed: int | None = 0,
) -> PBOResult:
    r"""Probability of Backtest Overfitting via combinatorially symmetric cross-validation.

    The ``(T, N)`` matrix of daily returns of ``N`` strategies is cut into ``S`` equal
    blocks (the oldest ``T mod S`` rows are dropped). For every split ``c`` of the blocks
    into an in-sample half and its complementary out-of-sample half, the strategy with the
    best in-sample Sharpe :math:`n^*` is located in the out-of-sample ranking:
    :math:`\bar\omega_c = \text{rank}_{OOS}(n^*) / (N + 1)`,
    :math:`\lambda_c = \ln(\bar\omega_c / (1 - \bar\omega_c))`, and

    .. math:: PBO = \frac{1}{|C|}\sum_c \mathbb 1[\lambda_c \le 0]

    Parameters
    ----------
    returns : ndarray of shape (T, N)
        Daily returns; one column per strategy (e.g. the runs of a sweep on one target and
        test period).
    n_blocks : int, default 16
        ``S`` (even). Reduced to the largest even number with at least ``min_block_days``
        rows per block; fewer than 4 blocks is "too short".
    max_combinations : int, default 20000
        All :math:`\binom{S}{S/2}` splits are used up to this number; beyond it this many
        are sampled at random (``seed``).

    Returns
    -------
    PBOResult
        ``pbo`` is ``nan`` with ``reason`` when ``N < 2`` or ``T`` is too short.
    """
    m = np.asarray(returns, dtype=np.float64)
    if m.ndim != 2:
        raise DataError(f"returns must be (T, N), got shape {m.shape}")
    t_days, n = m.shape
    if n < 2:
        return PBOResult(math.nan, n, 0, 0, f"PBO needs at least 2 strategies, got {n}")
    if not np.all(np.isfinite(m)):
        raise DataError("returns contain non-finite values")
    s = min(n_blocks, t_days // max(min_block_days, 2))
    s -= s % 2
    if s < 4:
        return PBOResult(
            math.nan,
            n,
            s,
            0,
            f"PBO needs at least 4 blocks of {min_block_days} "
            f"days ({4 * min_block_days} days), got {t_days}",
        )
    sums, sq, per = _block_stats(m, s)
    total = math.comb(s, s // 2)
    if total <= max_combinations:
        idx = np.array(list(itertools.combinations(range(s), s // 2)))
        mask = np.zeros((total, s))
        np.put_along_axis(mask, idx, 1.0, axis=1)
    else:
        rng = np.random.default_rng(seed)
        order = np.argsort(rng.random((max_combinations, s)), axis=1)[:, : s // 2]
        mask = np.zeros((max_combinations, s))
        np.put_along_axis(mask, order, 1.0, axis=1)
    is_sr = _combo_sharpe(mask, sums, sq, per)  # (C, N)
    oos_sr = _combo_sharpe(1.0 - mask, sums, sq, per)
    best = np.argmax(is_sr, axis=1)
    omega = _average_rank(oos_sr, best) / (n + 1)  # rank 1 = worst, N = best
    logits = special.logit(omega)
    rows = np.arange(best.size)
    slope = np.polyfit(is_sr[rows, best], oos_sr[rows, best], 1)[0] if best.size > 1 else np.nan
    return PBOResult(
        float(np.mean(logits <= 0)), n, s, int(mask.shape[0]), None, logits, float(slope)
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
