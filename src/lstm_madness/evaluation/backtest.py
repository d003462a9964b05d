"""Backtest of a one-asset strategy driven by daily predictions, net of costs.

Alignment (see ``docs/architecture.md``): ``predictions[i]`` is made at the close of test
date ``i`` and the position it implies is held from close ``i`` to close ``i + 1``, earning
``asset_returns[i]``, the target's simple return over that interval. Everything here is a
pure function of arrays on identical test dates; nothing loops over days in Python.

A one-asset backtest is the one-column case of the backtest core,
:class:`~lstm_madness.evaluation.book.Book` (turnover, costs, net returns, performance),
fed by a one-asset position rule of :mod:`lstm_madness.evaluation.positions`; the
long-short book of :mod:`lstm_madness.evaluation.long_short` is the same core over a
universe's members. Both break-even costs below read any book.

Units: daily simple returns; annualization with :data:`PERIODS_PER_YEAR` = 252 trading days;
costs in basis points (1 bp = 1e-4) of traded notional per unit of turnover.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from scipy.optimize import brentq

from lstm_madness.errors import ConfigError, DataError
from lstm_madness.evaluation.book import Book
from lstm_madness.evaluation.metrics import TASKS
from lstm_madness.evaluation.performance import (
    PERIODS_PER_YEAR,
    Performance,
    daily_risk_free,
    drawdowns,
    performance,
    sharpe_ratio,
)
from lstm_madness.evaluation.positions import (
    RULES,
    as_series,
    positions_from_predictions,
    signal_from_predictions,
)
from lstm_madness.options import DEFAULT_COST_BPS, DEFAULT_RISK_FREE, DEFAULT_SLIPPAGE_BPS

__all__ = [
    "PERIODS_PER_YEAR",
    "RULES",
    "TASKS",
    "BacktestResult",
    "Performance",
    "backtest",
    "break_even_cost",
    "break_even_vs_benchmark",
    "buy_and_hold",
    "daily_risk_free",
    "drawdowns",
    "performance",
    "positions_from_predictions",
    "sharpe_ratio",
    "signal_from_predictions",
]


class BacktestResult(Book):
    """A one-asset :class:`~lstm_madness.evaluation.book.Book`: ``weights`` and
    ``realized`` are ``(n_days, 1)``; :attr:`positions` and :attr:`asset_returns` are their
    one column. Built by :func:`backtest` (no borrow fee: a short position of the single
    asset pays only its trading costs).

    Attributes
    ----------
    positions : ndarray of shape (n_days,)
        ``pos_t``, held from close ``t`` to close ``t + 1``.
    asset_returns : ndarray of shape (n_days,)
        ``r_t``, the asset's simple return from close ``t`` to close ``t + 1``.
    cost_bps, slippage_bps : float
        Costs per unit of turnover, basis points.
    risk_free : float
        Annual risk-free rate used in Sharpe and Sortino.
    dates : ndarray of shape (n_days,), optional
        Test dates (for plots); not used in the arithmetic.
    """

    @property
    def positions(self) -> np.ndarray:
        return self.weights[:, 0]

    @property
    def asset_returns(self) -> np.ndarray:
        return self.realized[:, 0]

    def to_dict(self) -> dict[str, Any]:
        """Costs plus the net and gross statistics."""
        return {
            "cost_bps": self.cost_bps,
            "slippage_bps": self.slippage_bps,
            "risk_free": self.risk_free,
            "net": self.net.to_dict(),
            "gross": self.gross.to_dict(),
        }

    def summary(self) -> str:
        return (
            f"Backtest over {self.n_days} days, costs {self.cost_bps:g} + "
            f"{self.slippage_bps:g} bps per unit turnover\n-- net --\n{self.net.summary()}"
            f"\n-- gross --\n{self.gross.summary()}"
        )


def backtest(
    positions: np.ndarray,
    asset_returns: np.ndarray,
    *,
    cost_bps: float = DEFAULT_COST_BPS,
    slippage_bps: float = DEFAULT_SLIPPAGE_BPS,
    risk_free: float = DEFAULT_RISK_FREE,
    dates: np.ndarray | None = None,
) -> BacktestResult:
    r"""Backtest positions against the asset's next-day returns, net of costs.

    .. math::

        \tau_t &= |pos_t - pos_{t-1}|, \quad pos_{-1} = 0 \\
        g_t &= pos_t\, r_t \\
        n_t &= g_t - \tau_t\,(c + s) / 10^4

    The position open on the last day is not closed (no exit cost is charged), just as
    buy-and-hold pays only its entry.

    Parameters
    ----------
    positions : ndarray of shape (n_days,)
        ``pos_t`` decided at the close of ``t`` (e.g. :func:`positions_from_predictions`).
    asset_returns : ndarray of shape (n_days,)
        ``r_t``: the asset's simple return from close ``t`` to close ``t + 1``.
    cost_bps, slippage_bps : float
        ``c`` and ``s``, basis points per unit of turnover; must be >= 0.
    risk_free : float
        Annual risk-free rate for Sharpe and Sortino.
    dates : ndarray of shape (n_days,), optional
        Kept on the result for plots.
    """
    pos = as_series("positions", positions)
    ret = as_series("asset_returns", asset_returns)
    if pos.shape != ret.shape:
        raise DataError(f"positions ({pos.size}) and asset_returns ({ret.size}) differ in length")
    if cost_bps < 0 or slippage_bps < 0:
        raise ConfigError("cost_bps and slippage_bps must be >= 0")
    if dates is not None and len(dates) != pos.size:
        raise DataError(f"dates ({len(dates)}) and positions ({pos.size}) differ in length")
    return BacktestResult(
        pos[:, None],
        ret[:, None],
        cost_bps=float(cost_bps),
        slippage_bps=float(slippage_bps),
        risk_free=float(risk_free),
        dates=dates,
    )


def buy_and_hold(
    asset_returns: np.ndarray,
    *,
    cost_bps: float = DEFAULT_COST_BPS,
    slippage_bps: float = DEFAULT_SLIPPAGE_BPS,
    risk_free: float = DEFAULT_RISK_FREE,
    dates: np.ndarray | None = None,
) -> BacktestResult:
    """Buy-and-hold of the asset on the same dates: ``pos_t = 1``, one entry cost on day 0."""
    ret = as_series("asset_returns", asset_returns)
    return backtest(
        np.ones_like(ret),
        ret,
        cost_bps=cost_bps,
        slippage_bps=slippage_bps,
        risk_free=risk_free,
        dates=dates,
    )


# --------------------------------------------------------------------------- break-even


def _sharpe_vs_cost(gross: np.ndarray, turnover: np.ndarray, rf_daily: float):
    """Closed-form daily Sharpe of ``gross - c * turnover`` as a function of ``c`` (fraction).

    Mean and variance are exact polynomials in ``c``:
    ``mean = m_g - c m_tau``, ``var = v_g - 2 c cov(g, tau) + c^2 v_tau`` (``ddof=1``).
    The returned function is vectorized over ``c``.
    """
    m_g, m_t = gross.mean() - rf_daily, turnover.mean()
    cov = np.cov(gross, turnover, ddof=1)
    v_g, c_gt, v_t = cov[0, 0], cov[0, 1], cov[1, 1]

    def sr(c: np.ndarray | float) -> np.ndarray:
        c = np.asarray(c, dtype=np.float64)
        sd = np.sqrt(np.maximum(v_g - 2.0 * c * c_gt + c * c * v_t, 0.0))
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(sd > 1e-14, (m_g - c * m_t) / sd, np.nan)

    return sr


def break_even_cost(result: Book) -> float:
    r"""Cost per unit of turnover (bps, cost + slippage together) at which the strategy's
    mean daily net return is zero: ``c* = mean(g_t) / mean(τ_t)``, with ``g_t`` the daily
    gross return (after any borrow fee) and ``τ_t`` the turnover (the risk-free rate is not
    subtracted).

    Returns
    -------
    float
        ``+inf`` when the strategy never trades (zero turnover); ``<= 0`` when its gross
        mean is not positive (it loses money before any cost: minus the rebate per unit of
        turnover it would need); ``nan`` without any day.
    """
    if result.n_days == 0:
        return math.nan
    mean_turnover = float(np.mean(result.turnover))
    if mean_turnover == 0.0:
        return math.inf
    return float(np.mean(result.gross_after_borrow)) / mean_turnover * 1e4


def break_even_vs_benchmark(
    result: Book, benchmark: Book | None = None, *, max_bps: float = 1e5
) -> float:
    r"""Cost per unit of turnover (bps, cost + slippage) at which the strategy stops beating
    buy-and-hold.

    "Beating" means a higher Sharpe ratio (the verdict's criterion), with the strategy and
    buy-and-hold paying the same cost ``c`` per unit of turnover (buy-and-hold only on its
    entry). Both Sharpe ratios are exact closed-form functions of ``c`` (the mean and the
    variance of ``g_t - c\,\tau_t`` are polynomials in ``c``), so the crossing of
    ``f(c) = SR_strategy(c) - SR_buy_and_hold(c)`` is bracketed on a log grid and refined
    with :func:`scipy.optimize.brentq`.

    Parameters
    ----------
    result : Book
        The strategy (its own ``cost_bps`` is ignored: ``c`` varies; a borrow fee is kept
        fixed).
    benchmark : Book, optional
        Buy-and-hold on the same dates; built from ``result.asset_returns`` when omitted
        (a one-asset :class:`BacktestResult` only).
    max_bps : float, default 1e5
        Largest cost (or rebate) searched.

    Returns
    -------
    float
        - ``+inf`` when the strategy never trades (zero turnover) or still beats
          buy-and-hold at ``max_bps``;
        - the smallest ``c > 0`` with ``f(c) = 0`` when it beats buy-and-hold at zero cost;
        - ``<= 0`` when it does not beat buy-and-hold even at zero cost: minus the rebate per
          unit of turnover it would need, or ``-inf`` when no rebate up to ``max_bps`` would
          do; ``nan`` when a Sharpe ratio is undefined (constant returns).
    """
    if benchmark is None:
        benchmark = buy_and_hold(result.asset_returns, risk_free=result.risk_free)
    if not np.any(result.turnover > 0):
        return math.inf
    if result.n_days < 3:
        return math.nan
    rf_d = daily_risk_free(result.risk_free)
    sr_s = _sharpe_vs_cost(result.gross_after_borrow, result.turnover, rf_d)
    sr_b = _sharpe_vs_cost(benchmark.gross_after_borrow, benchmark.turnover, rf_d)

    def f(c_bps: np.ndarray | float) -> np.ndarray:
        c = np.asarray(c_bps, dtype=np.float64) / 1e4
        return sr_s(c) - sr_b(c)

    f0 = float(f(0.0))
    if not math.isfinite(f0):
        return math.nan
    if f0 == 0.0:
        return 0.0
    sign = 1.0 if f0 > 0 else -1.0  # costs when beating, rebates when not
    grid = sign * np.concatenate(([0.0], np.geomspace(1e-3, max_bps, 600)))
    values = f(grid)
    crossed = np.flatnonzero(values <= 0 if sign > 0 else values >= 0)
    if crossed.size == 0:
        return sign * math.inf
    k = int(crossed[0])
    if values[k] == 0.0:
        return float(grid[k])
    return float(brentq(lambda c: float(f(c)), grid[k - 1], grid[k], xtol=1e-10))
