"""Performance statistics of daily returns: Sharpe, Sortino, drawdowns, CAGR, turnover.

The one place a daily return series (and the positions, or the weights over several
assets, that produced it) becomes the figures of a backtest. Both books of
:mod:`lstm_madness.evaluation.book` read it: a one-asset book (the single-asset strategy,
buy-and-hold) and the long-short book over a universe's members.

Units: daily simple returns; annualization with :data:`PERIODS_PER_YEAR` = 252 trading
days.

References
----------
.. [1] Sharpe, W. F. (1994). The Sharpe ratio. *Journal of Portfolio Management* 21(1), 49-58.
.. [2] Sortino, F. A., Price, L. N. (1994). Performance measurement in a downside risk
   framework. *Journal of Investing* 3(3), 59-64.
.. [3] Young, T. W. (1991). Calmar ratio: a smoother tool. *Futures* 20(1), 40.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from lstm_madness.errors import DataError
from lstm_madness.options import DEFAULT_RISK_FREE

PERIODS_PER_YEAR = 252

__all__ = [
    "PERIODS_PER_YEAR",
    "Performance",
    "daily_risk_free",
    "daily_turnover",
    "drawdowns",
    "holding_periods",
    "performance",
    "sharpe_ratio",
]


def daily_risk_free(risk_free: float, periods: int = PERIODS_PER_YEAR) -> float:
    """Daily rate ``(1 + rf)^(1/periods) - 1`` from an annual (compounded) rate ``rf``."""
    return (1.0 + risk_free) ** (1.0 / periods) - 1.0


def _ratio(num: float, den: float) -> float:
    """``num / den`` with 0/0 -> 0 and x/0 -> nan (a constant series has no Sharpe)."""
    tol = 1e-14
    if den <= tol:
        return 0.0 if abs(num) <= tol else math.nan
    return num / den


def sharpe_ratio(
    returns: np.ndarray, risk_free: float = DEFAULT_RISK_FREE, periods: int = PERIODS_PER_YEAR
) -> float:
    r"""Annualized Sharpe ratio of daily simple returns.

    .. math:: SR = \sqrt{P}\,\frac{\overline{r - r_f}}{\operatorname{sd}(r - r_f)}

    with the sample standard deviation (``ddof=1``), ``P = periods`` and the daily rate
    :func:`daily_risk_free`. A constant excess return gives 0 if it is 0, else ``nan``.
    """
    r = np.asarray(returns, dtype=np.float64)
    if r.size < 2:
        return math.nan
    ex = r - daily_risk_free(risk_free, periods)
    return math.sqrt(periods) * _ratio(float(ex.mean()), float(ex.std(ddof=1)))


def drawdowns(returns: np.ndarray) -> np.ndarray:
    """Drawdown of the compounded equity from its running peak, ``W_t / max_{s<=t} W_s - 1``.

    The initial wealth ``W_{-1} = 1`` counts as a peak. Values are <= 0.
    """
    equity = np.cumprod(1.0 + np.asarray(returns, dtype=np.float64))
    peak = np.maximum.accumulate(np.maximum(equity, 1.0))
    return equity / peak - 1.0


def _max_drawdown_duration(dd: np.ndarray) -> int:
    """Days from the peak before the deepest trough until the equity regains that peak.

    Counted in trading days; to the last day when it has not recovered; 0 without drawdown.
    """
    if dd.size == 0 or dd.min() >= 0:
        return 0
    full = np.concatenate(([0.0], dd))  # index 0 = start (wealth 1), index k = day k-1
    trough = int(np.argmin(full))
    peak = int(np.flatnonzero(full[: trough + 1] >= 0)[-1])
    after = np.flatnonzero(full[trough:] >= 0)
    end = trough + int(after[0]) if after.size else full.size - 1
    return end - peak


def _longest_underwater(dd: np.ndarray) -> int:
    """Length in days of the longest run of consecutive days below a previous peak."""
    under = dd < 0
    if not under.any():
        return 0
    edges = np.diff(np.concatenate(([0], under.astype(np.int8), [0])))
    return int((np.flatnonzero(edges == -1) - np.flatnonzero(edges == 1)).max())


def holding_periods(pos: np.ndarray) -> np.ndarray:
    """Lengths (days) of runs of consecutive days with the same non-zero position; of a
    ``(D, S)`` weights panel, every column's runs, column after column."""
    if pos.ndim == 2:
        runs = [holding_periods(col) for col in pos.T]
        return np.concatenate(runs) if runs else np.empty(0, dtype=np.int64)
    if pos.size == 0:
        return np.empty(0, dtype=np.int64)
    change = np.concatenate(([True], pos[1:] != pos[:-1]))
    run_id = np.cumsum(change) - 1
    lengths = np.bincount(run_id)
    held = pos[change] != 0
    return lengths[held]


def daily_turnover(pos: np.ndarray) -> np.ndarray:
    """``|pos_t - pos_{t-1}|`` with ``pos_{-1} = 0`` (entering the first position trades);
    of a ``(D, S)`` weights panel, ``sum_s |w[t, s] - w[t-1, s]|``."""
    if pos.ndim == 2:
        return np.abs(np.diff(pos, axis=0, prepend=0.0)).sum(axis=1)
    return np.abs(np.diff(pos, prepend=0.0))


@dataclass(frozen=True)
class Performance:
    """Performance statistics of one daily return series (all fractions, not percent).

    Attributes
    ----------
    n_days : int
        Number of daily returns.
    total_return : float
        ``prod(1 + r_t) - 1``.
    cagr : float
        ``(1 + total_return)^(252 / n_days) - 1``; -1 when the equity is wiped out.
    volatility : float
        Annualized standard deviation, ``sd(r) * sqrt(252)``.
    sharpe : float
        See :func:`sharpe_ratio`.
    sortino : float
        ``sqrt(252) * mean(r - r_f) / sqrt(mean(min(r - r_f, 0)^2))`` (target = risk-free).
    max_drawdown : float
        Most negative value of :func:`drawdowns` (<= 0).
    max_drawdown_days : int
        Trading days from the peak before the deepest trough until it is regained (or to
        the end of the period when it is not).
    longest_underwater_days : int
        Longest run of consecutive days below a previous equity peak.
    calmar : float
        ``cagr / |max_drawdown|``; nan without drawdown.
    win_rate : float
        Share of invested days (non-zero position) whose return (the strategy's P&L, net
        or gross as passed) is > 0; nan if never invested. A property of the P&L, not the
        forecast's hit rate (:func:`~lstm_madness.evaluation.metrics.hit_rate`).
    turnover : float
        Mean daily turnover ``mean(|pos_t - pos_{t-1}|)``, ``pos_{-1} = 0``.
    exposure : float
        Mean absolute position ``mean(|pos_t|)``.
    avg_holding_days : float
        Mean length in days of runs of an unchanged non-zero position; nan if never
        invested.
    """

    n_days: int
    total_return: float
    cagr: float
    volatility: float
    sharpe: float
    sortino: float
    max_drawdown: float
    max_drawdown_days: int
    longest_underwater_days: int
    calmar: float
    win_rate: float
    turnover: float
    exposure: float
    avg_holding_days: float

    def to_dict(self) -> dict[str, Any]:
        """Plain dict of the statistics (floats may be nan; see ``study.jsonable``)."""
        return {k: getattr(self, k) for k in self.__dataclass_fields__}

    def summary(self) -> str:
        """A few aligned lines, percentages where they read better."""
        return "\n".join(
            [
                f"total return      {self.total_return:9.2%}   CAGR {self.cagr:8.2%}",
                f"volatility (ann.) {self.volatility:9.2%}   Sharpe {self.sharpe:6.2f}"
                f"   Sortino {self.sortino:6.2f}",
                f"max drawdown      {self.max_drawdown:9.2%}   ({self.max_drawdown_days} days)"
                f"   Calmar {self.calmar:6.2f}",
                f"win rate (invested days) {self.win_rate:6.2%}   turnover {self.turnover:6.3f}/day"
                f"   exposure {self.exposure:5.2f}   holding {self.avg_holding_days:6.1f} days",
            ]
        )


def performance(
    returns: np.ndarray,
    positions: np.ndarray | None = None,
    *,
    risk_free: float = DEFAULT_RISK_FREE,
    periods: int = PERIODS_PER_YEAR,
) -> Performance:
    """Compute :class:`Performance` of daily simple ``returns``.

    Parameters
    ----------
    returns : ndarray of shape (n_days,)
        Daily simple returns of the strategy (net or gross).
    positions : ndarray of shape (n_days,) or (n_days, n_assets), optional
        Positions that produced them, for win rate, turnover, exposure and holding
        period; ``None`` means fully invested (``pos_t = 1``). A weights panel counts
        per asset: turnover ``sum_s |Δw|``, exposure ``sum_s |w|`` (invested where it is
        not 0), holding periods of every asset's position.
    risk_free : float, default 0
        Annual risk-free rate for Sharpe and Sortino.
    periods : int, default 252
        Periods per year.
    """
    r = np.asarray(returns, dtype=np.float64)
    pos = np.ones_like(r) if positions is None else np.asarray(positions, dtype=np.float64)
    n = r.size
    if pos.shape[:1] != r.shape or pos.ndim > 2 or (pos.ndim == 1 and pos.shape != r.shape):
        raise DataError(f"positions shape {pos.shape} != returns shape {r.shape}")
    if n == 0:
        raise DataError("cannot compute performance of an empty return series")
    equity_end = float(np.prod(1.0 + r))
    total = equity_end - 1.0
    cagr = equity_end ** (periods / n) - 1.0 if equity_end > 0 else -1.0
    ex = r - daily_risk_free(risk_free, periods)
    downside = math.sqrt(float(np.mean(np.minimum(ex, 0.0) ** 2)))
    dd = drawdowns(r)
    mdd = float(dd.min()) if dd.min() < 0 else 0.0
    exposure = np.abs(pos) if pos.ndim == 1 else np.abs(pos).sum(axis=1)
    invested = exposure != 0
    holds = holding_periods(pos)
    return Performance(
        n_days=n,
        total_return=total,
        cagr=cagr,
        volatility=float(r.std(ddof=1)) * math.sqrt(periods) if n > 1 else math.nan,
        sharpe=sharpe_ratio(r, risk_free, periods),
        sortino=math.sqrt(periods) * _ratio(float(ex.mean()), downside),
        max_drawdown=mdd,
        max_drawdown_days=_max_drawdown_duration(dd),
        longest_underwater_days=_longest_underwater(dd),
        calmar=cagr / abs(mdd) if mdd < 0 else math.nan,
        win_rate=float(np.mean(r[invested] > 0)) if invested.any() else math.nan,
        turnover=float(daily_turnover(pos).mean()),
        exposure=float(exposure.mean()),
        avg_holding_days=float(holds.mean()) if holds.size else math.nan,
    )
