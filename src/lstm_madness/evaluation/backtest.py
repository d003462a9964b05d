"""Vectorized backtest of a one-asset strategy driven by daily predictions, net of costs.

Alignment (see ``docs/architecture.md``): ``predictions[i]`` is made at the close of test
date ``i`` and the position it implies is held from close ``i`` to close ``i + 1``, earning
``asset_returns[i]``, the target's simple return over that interval. Everything here is a
pure function of arrays on identical test dates; nothing loops over days in Python.

Units: daily simple returns; annualization with :data:`PERIODS_PER_YEAR` = 252 trading days;
costs in basis points (1 bp = 1e-4) of traded notional per unit of turnover.

References
----------
.. [1] Sharpe, W. F. (1994). The Sharpe ratio. *Journal of Portfolio Management* 21(1), 49-58.
.. [2] Sortino, F. A., Price, L. N. (1994). Performance measurement in a downside risk
   framework. *Journal of Investing* 3(3), 59-64.
.. [3] Young, T. W. (1991). Calmar ratio: a smoother tool. *Futures* 20(1), 40.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np
from scipy.optimize import brentq

from lstm_madness.errors import ConfigError, DataError
from lstm_madness.evaluation.metrics import TASKS

PERIODS_PER_YEAR = 252
RULES = ("sign", "long_flat", "threshold", "proportional")

__all__ = [
    "PERIODS_PER_YEAR",
    "RULES",
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


# --------------------------------------------------------------------------- positions


def _as_1d(name: str, x: Any) -> np.ndarray:
    arr = np.asarray(x, dtype=np.float64)
    if arr.ndim != 1:
        raise DataError(f"{name} must be one-dimensional, got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise DataError(f"{name} contains {int(np.sum(~np.isfinite(arr)))} non-finite values")
    return arr


def signal_from_predictions(predictions: np.ndarray, task: str = "regression") -> np.ndarray:
    """Centre predictions on the no-information value: the signal ``s_t``.

    ``s_t = pred_t`` for ``task="regression"`` (a forecast of the return) and
    ``s_t = pred_t - 0.5`` for ``task="classification"`` (a probability of an up move).
    """
    if task not in TASKS:
        raise ConfigError(f"task must be one of {TASKS}, got {task!r}")
    pred = _as_1d("predictions", predictions)
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


# --------------------------------------------------------------------------- metrics


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
    returns: np.ndarray, risk_free: float = 0.0, periods: int = PERIODS_PER_YEAR
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


def _holding_periods(pos: np.ndarray) -> np.ndarray:
    """Lengths (days) of runs of consecutive days with the same non-zero position."""
    if pos.size == 0:
        return np.empty(0, dtype=np.int64)
    change = np.concatenate(([True], pos[1:] != pos[:-1]))
    run_id = np.cumsum(change) - 1
    lengths = np.bincount(run_id)
    held = pos[change] != 0
    return lengths[held]


def _turnover(pos: np.ndarray) -> np.ndarray:
    """``|pos_t - pos_{t-1}|`` with ``pos_{-1} = 0`` (entering the first position trades)."""
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
    risk_free: float = 0.0,
    periods: int = PERIODS_PER_YEAR,
) -> Performance:
    """Compute :class:`Performance` of daily simple ``returns``.

    Parameters
    ----------
    returns : ndarray of shape (n_days,)
        Daily simple returns of the strategy (net or gross).
    positions : ndarray of shape (n_days,), optional
        Positions that produced them, for win rate, turnover, exposure and holding
        period; ``None`` means fully invested (``pos_t = 1``).
    risk_free : float, default 0
        Annual risk-free rate for Sharpe and Sortino.
    periods : int, default 252
        Periods per year.
    """
    r = np.asarray(returns, dtype=np.float64)
    pos = np.ones_like(r) if positions is None else np.asarray(positions, dtype=np.float64)
    n = r.size
    if pos.shape != r.shape:
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
    invested = pos != 0
    holds = _holding_periods(pos)
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
        turnover=float(_turnover(pos).mean()),
        exposure=float(np.abs(pos).mean()),
        avg_holding_days=float(holds.mean()) if holds.size else math.nan,
    )


# --------------------------------------------------------------------------- backtest


@dataclass(frozen=True, eq=False)
class BacktestResult:
    """Daily series of one backtest and its statistics.

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

    positions: np.ndarray
    asset_returns: np.ndarray
    cost_bps: float = 5.0
    slippage_bps: float = 0.0
    risk_free: float = 0.0
    dates: np.ndarray | None = field(default=None, repr=False)

    @property
    def n_days(self) -> int:
        return int(self.positions.size)

    @property
    def cost_rate(self) -> float:
        """Total cost per unit of turnover as a fraction, ``(cost_bps + slippage_bps) / 1e4``."""
        return (self.cost_bps + self.slippage_bps) / 1e4

    @cached_property
    def turnover(self) -> np.ndarray:
        """``|pos_t - pos_{t-1}|`` with ``pos_{-1} = 0``."""
        return _turnover(self.positions)

    @cached_property
    def gross_returns(self) -> np.ndarray:
        """``pos_t r_t``."""
        return self.positions * self.asset_returns

    @cached_property
    def costs(self) -> np.ndarray:
        """``turnover_t (cost_bps + slippage_bps) / 1e4``."""
        return self.turnover * self.cost_rate

    @cached_property
    def net_returns(self) -> np.ndarray:
        """``pos_t r_t - turnover_t (cost_bps + slippage_bps) / 1e4``."""
        return self.gross_returns - self.costs

    @cached_property
    def net(self) -> Performance:
        """Statistics of the net returns."""
        return performance(self.net_returns, self.positions, risk_free=self.risk_free)

    @cached_property
    def gross(self) -> Performance:
        """Statistics of the gross returns (before costs)."""
        return performance(self.gross_returns, self.positions, risk_free=self.risk_free)

    @property
    def equity(self) -> np.ndarray:
        """Compounded net wealth after each day, starting from 1."""
        return np.cumprod(1.0 + self.net_returns)

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
    cost_bps: float = 5.0,
    slippage_bps: float = 0.0,
    risk_free: float = 0.0,
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
    pos = _as_1d("positions", positions)
    ret = _as_1d("asset_returns", asset_returns)
    if pos.shape != ret.shape:
        raise DataError(f"positions ({pos.size}) and asset_returns ({ret.size}) differ in length")
    if cost_bps < 0 or slippage_bps < 0:
        raise ConfigError("cost_bps and slippage_bps must be >= 0")
    if dates is not None and len(dates) != pos.size:
        raise DataError(f"dates ({len(dates)}) and positions ({pos.size}) differ in length")
    return BacktestResult(pos, ret, float(cost_bps), float(slippage_bps), float(risk_free), dates)


def buy_and_hold(
    asset_returns: np.ndarray,
    *,
    cost_bps: float = 5.0,
    slippage_bps: float = 0.0,
    risk_free: float = 0.0,
    dates: np.ndarray | None = None,
) -> BacktestResult:
    """Buy-and-hold of the asset on the same dates: ``pos_t = 1``, one entry cost on day 0."""
    ret = _as_1d("asset_returns", asset_returns)
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


def break_even_cost(result: BacktestResult) -> float:
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
    return float(np.mean(result.gross_returns)) / mean_turnover * 1e4


def break_even_vs_benchmark(
    result: BacktestResult, benchmark: BacktestResult | None = None, *, max_bps: float = 1e5
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
    result : BacktestResult
        The strategy (its own ``cost_bps`` is ignored: ``c`` varies).
    benchmark : BacktestResult, optional
        Buy-and-hold on the same dates; built from ``result.asset_returns`` when omitted.
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
    sr_s = _sharpe_vs_cost(result.gross_returns, result.turnover, rf_d)
    sr_b = _sharpe_vs_cost(benchmark.gross_returns, benchmark.turnover, rf_d)

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
