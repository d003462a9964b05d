"""Tests of a whole trial set, for data snooping: SPA, StepM and PBO.

Inputs are the daily net returns of every distinct strategy tried on one target and test
period, on their common dates (a ``(n_days, n_strategies)`` matrix), and the benchmark's
(buy-and-hold, or a universe's equal-weight book) on the same dates.

- Hansen's SPA: does *some* strategy beat the benchmark? (:func:`spa_test`)
- Romano and Wolf's StepM on the same bootstrap draws: *which* strategies beat it, with
  the family-wise error rate controlled (:func:`spa_stepm`).
- The probability of backtest overfitting by combinatorially symmetric cross-validation
  (:func:`probability_of_backtest_overfitting`).

References
----------
.. [1] Hansen, P. R. (2005). A test for superior predictive ability. *Journal of Business &
   Economic Statistics* 23(4), 365-380.
.. [2] Romano, J. P., Wolf, M. (2005). Stepwise multiple testing as formalized data
   snooping. *Econometrica* 73(4), 1237-1282.
.. [3] Bailey, D. H., Borwein, J., López de Prado, M., Zhu, Q. J. (2017). The probability of
   backtest overfitting. *Journal of Computational Finance* 20(4), 39-69 (SSRN 2326253, 2015).
"""

from __future__ import annotations

import itertools
import math
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from arch.bootstrap import SPA
from scipy import special

from lstm_madness.errors import DataError
from lstm_madness.evaluation.significance import as_returns, block_length

__all__ = [
    "PBOResult",
    "SPAResult",
    "StepMResult",
    "probability_of_backtest_overfitting",
    "spa_stepm",
    "spa_test",
]


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
    bench = as_returns(benchmark_returns, "benchmark_returns")
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
