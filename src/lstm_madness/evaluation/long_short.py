"""Daily long-short book over a universe's members, net of costs (pure NumPy).

Alignment: ``predictions[t, s]`` is made at the close of ``t`` for member ``s`` (NaN = not
scored on ``t``: not a member, or too little history); the weights it implies are held
from close ``t`` to close ``t + 1`` and earn ``realized[t, s]``, the member's simple return
over that interval. Weights at ``t`` depend on the predictions at ``t`` only.

The rule (Fischer & Krauss 2018): each day, rank the scored members by prediction (ties
broken by column order: the earlier column ranks lower); long the ``top_k`` highest and
short the ``top_k`` lowest, each ``1 / (2 top_k)`` of capital (gross exposure 1,
dollar-neutral). No position on a day with fewer than ``2 top_k`` scored members or with
all predictions equal (no ranking: the zero forecast never trades); both count as
``days_flat``.

Costs: ``(cost_bps + slippage_bps) / 1e4`` per unit of turnover ``sum_s |w[t, s] -
w[t-1, s]|`` (``w[-1] = 0``; both legs; the target weights are re-set each day, drift is
not modelled), and ``short_borrow_bps`` per year on the short exposure, accrued daily as
``short_borrow_bps / 1e4 / 252 * sum_s max(-w[t, s], 0)``.

Delisting: a member whose price on ``t + 1`` does not exist (its data end on ``t``) has
``realized[t, s] = NaN``; a position in it earns 0 that day, i.e. the book leaves it at its
last price and the delisting return (often very negative for a failure, a premium for a
takeover) is lost. ``lost_returns`` counts such positions. The decision to trade it at
``t`` does not look at ``t + 1``.

Legs "as earned": the long leg's return is the long positions' contribution per unit of
leg capital (1/2 of the book): ``2 sum_s max(w, 0) r``; the short leg's is what the short
positions make, ``2 sum_s min(w, 0) r`` (positive when the shorted members fall). The
book's return is the mean of the two legs. Leg costs are their own turnover (the book's
turnover splits exactly into the two legs') and, for the short leg, the borrow fee.

Buy-and-hold is the equal-weight book of each day's scored members (weights ``1 / n_t``),
paying the same costs on its turnover (entry, and membership changes).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import Any, NamedTuple

import numpy as np

from lstm_madness.errors import ConfigError, DataError
from lstm_madness.evaluation.backtest import (
    PERIODS_PER_YEAR,
    Performance,
    _holding_periods,
    break_even_cost,
    break_even_vs_benchmark,
    performance,
    sharpe_ratio,
)

__all__ = [
    "Book",
    "LongShortResult",
    "equal_weights",
    "long_short_backtest",
    "long_short_weights",
]


def _panel(name: str, x: Any, ndim: int = 2) -> np.ndarray:
    arr = np.asarray(x, dtype=np.float64)
    if arr.ndim != ndim:
        raise DataError(f"{name} must be a (dates, members) array, got shape {arr.shape}")
    if np.isinf(arr).any():
        raise DataError(f"{name} contains infinite values")
    return arr


def long_short_weights(predictions: np.ndarray, top_k: int) -> tuple[np.ndarray, np.ndarray]:
    """Weights of the long-short rule (module docstring).

    Parameters
    ----------
    predictions : ndarray, shape (D, S)
        NaN = not scored.
    top_k : int
        Members per leg, ``>= 1``.

    Returns
    -------
    weights : ndarray, shape (D, S)
        ``+1/(2k)`` long, ``-1/(2k)`` short, 0 otherwise.
    flat : ndarray of bool, shape (D,)
        Days without a position.
    """
    if isinstance(top_k, bool) or not isinstance(top_k, int | np.integer) or top_k < 1:
        raise ConfigError(f"backtest.top_k must be an integer >= 1, got {top_k!r}")
    pred = _panel("predictions", predictions)
    valid = np.isfinite(pred)
    count = valid.sum(axis=1)  # (D,)
    spread = np.where(valid, pred, -np.inf).max(axis=1) - np.where(valid, pred, np.inf).min(axis=1)
    active = (count >= 2 * top_k) & (spread > 0)
    # ascending by (prediction, column); scored members first, unscored (inf) last
    order = np.argsort(np.where(valid, pred, np.inf), axis=1, kind="stable")  # (D, S)
    weights = np.zeros(pred.shape)
    days = np.flatnonzero(active)
    if days.size:
        k = np.arange(top_k)
        short = order[days][:, :top_k]  # (n, k) the k lowest
        top = np.take_along_axis(order[days], count[days, None] - top_k + k, axis=1)  # k highest
        weights[days[:, None], short] = -0.5 / top_k
        weights[days[:, None], top] = 0.5 / top_k
    return weights, ~active


def equal_weights(scored: np.ndarray) -> np.ndarray:
    """``1 / n_t`` on each of the day's ``n_t`` scored members (0 on days without any)."""
    mask = np.asarray(scored, dtype=bool)
    count = mask.sum(axis=1, keepdims=True)
    return np.where(mask, 1.0 / np.maximum(count, 1), 0.0)


class _CostView(NamedTuple):
    """What the break-even costs of :mod:`~lstm_madness.evaluation.backtest` read of a
    backtest."""

    gross_returns: np.ndarray
    turnover: np.ndarray
    n_days: int
    risk_free: float


@dataclass(frozen=True, eq=False)
class Book:
    """Daily weights over members and the returns they earn, net of costs.

    Attributes
    ----------
    weights : ndarray, shape (D, S)
        ``w[t, s]``, held from close ``t`` to close ``t + 1``.
    realized : ndarray, shape (D, S)
        ``r[t, s]`` over the same interval; NaN earns 0 (see the module docstring).
    cost_bps, slippage_bps : float
        Per unit of turnover.
    short_borrow_bps : float
        Annual fee on the short exposure.
    risk_free : float
        Annual rate for Sharpe and Sortino.
    dates : ndarray, optional
    """

    weights: np.ndarray
    realized: np.ndarray
    cost_bps: float = 5.0
    slippage_bps: float = 0.0
    short_borrow_bps: float = 0.0
    risk_free: float = 0.0
    dates: np.ndarray | None = field(default=None, repr=False)

    @property
    def n_days(self) -> int:
        return int(self.weights.shape[0])

    @property
    def cost_rate(self) -> float:
        return (self.cost_bps + self.slippage_bps) / 1e4

    @cached_property
    def _earned(self) -> np.ndarray:
        return np.where(np.isfinite(self.realized), self.realized, 0.0)  # (D, S)

    @cached_property
    def _trades(self) -> np.ndarray:
        return np.abs(np.diff(self.weights, axis=0, prepend=0.0))  # (D, S)

    @cached_property
    def turnover(self) -> np.ndarray:
        """``sum_s |w[t, s] - w[t-1, s]|``, shape (D,)."""
        return self._trades.sum(axis=1)

    @cached_property
    def gross_returns(self) -> np.ndarray:
        """``sum_s w[t, s] r[t, s]`` (NaN returns earn 0), before any cost."""
        return (self.weights * self._earned).sum(axis=1)

    @cached_property
    def short_exposure(self) -> np.ndarray:
        """``sum_s max(-w[t, s], 0)``."""
        return np.maximum(-self.weights, 0.0).sum(axis=1)

    @cached_property
    def borrow_costs(self) -> np.ndarray:
        return self.short_exposure * self.short_borrow_bps / 1e4 / PERIODS_PER_YEAR

    @cached_property
    def costs(self) -> np.ndarray:
        """Trading costs ``turnover * cost_rate`` plus the borrow fee."""
        return self.turnover * self.cost_rate + self.borrow_costs

    @cached_property
    def net_returns(self) -> np.ndarray:
        return self.gross_returns - self.costs

    @cached_property
    def exposure(self) -> np.ndarray:
        """Gross exposure ``sum_s |w[t, s]|``."""
        return np.abs(self.weights).sum(axis=1)

    @cached_property
    def lost_returns(self) -> int:
        """Positions whose next-day return did not exist (left at the last price)."""
        return int(((self.weights != 0) & ~np.isfinite(self.realized)).sum())

    def leg(self, side: str, *, net: bool = True) -> np.ndarray:
        """Daily return of the ``"long"`` or ``"short"`` leg per unit of leg capital (1/2).

        See the module docstring; ``net`` subtracts the leg's own trading costs (and the
        borrow fee for the short leg).
        """
        if side not in ("long", "short"):
            raise ConfigError(f"side must be 'long' or 'short', got {side!r}")
        w = np.maximum(self.weights, 0.0) if side == "long" else np.minimum(self.weights, 0.0)
        out = (w * self._earned).sum(axis=1)
        if net:
            out = out - np.abs(np.diff(w, axis=0, prepend=0.0)).sum(axis=1) * self.cost_rate
            if side == "short":
                out = out - self.borrow_costs
        return 2.0 * out

    def _performance(self, returns: np.ndarray) -> Performance:
        perf = performance(returns, self.exposure, risk_free=self.risk_free)
        holds = np.concatenate([_holding_periods(col) for col in self.weights.T])
        return replace(
            perf,
            turnover=float(self.turnover.mean()),
            avg_holding_days=float(holds.mean()) if holds.size else math.nan,
        )

    @cached_property
    def net(self) -> Performance:
        """Statistics of the net returns (``turnover`` and ``avg_holding_days`` per member
        position; ``exposure`` the mean gross exposure)."""
        return self._performance(self.net_returns)

    @cached_property
    def gross(self) -> Performance:
        return self._performance(self.gross_returns)

    def cost_view(self) -> _CostView:
        """Returns after the borrow fee with the turnover, for the break-even costs."""
        return _CostView(
            self.gross_returns - self.borrow_costs, self.turnover, self.n_days, self.risk_free
        )


@dataclass(frozen=True, eq=False)
class LongShortResult:
    """The long-short book, its buy-and-hold peer and the daily membership counts.

    Attributes
    ----------
    book : Book
        The long-short strategy.
    buy_and_hold : Book
        Equal weight over each day's scored members.
    top_k : int
    members : ndarray of int, shape (D,)
        Scored members per day.
    flat : ndarray of bool, shape (D,)
        Days without a position.
    """

    book: Book
    buy_and_hold: Book
    top_k: int
    members: np.ndarray
    flat: np.ndarray

    @property
    def days_flat(self) -> int:
        return int(self.flat.sum())

    @property
    def members_mean(self) -> float:
        return float(self.members.mean())

    @property
    def net_returns(self) -> np.ndarray:
        return self.book.net_returns

    @cached_property
    def long_sharpe(self) -> float:
        """Annualized Sharpe of the long leg's net returns."""
        return sharpe_ratio(self.book.leg("long"), self.book.risk_free)

    @cached_property
    def short_sharpe(self) -> float:
        """Annualized Sharpe of the short leg's net returns (as earned)."""
        return sharpe_ratio(self.book.leg("short"), self.book.risk_free)

    def break_even_cost(self) -> float:
        """Cost per unit of turnover (bps) at which the book's mean daily net return is zero
        (:func:`~lstm_madness.evaluation.backtest.break_even_cost`; the borrow fee is kept
        fixed)."""
        return break_even_cost(self.book.cost_view())  # type: ignore[arg-type]

    def break_even_vs_buy_hold(self) -> float:
        """Cost per unit of turnover (bps) at which the book's Sharpe falls to the
        equal-weight book's (see
        :func:`~lstm_madness.evaluation.backtest.break_even_vs_benchmark`; the borrow fee is
        kept fixed)."""
        return break_even_vs_benchmark(self.book.cost_view(), self.buy_and_hold.cost_view())  # type: ignore[arg-type]

    def to_dict(self) -> dict[str, Any]:
        return {
            "top_k": self.top_k,
            "cost_bps": self.book.cost_bps,
            "slippage_bps": self.book.slippage_bps,
            "short_borrow_bps": self.book.short_borrow_bps,
            "members_mean": self.members_mean,
            "days_flat": self.days_flat,
            "lost_returns": self.book.lost_returns,
            "long_sharpe": self.long_sharpe,
            "short_sharpe": self.short_sharpe,
            "net": self.book.net.to_dict(),
            "gross": self.book.gross.to_dict(),
            "buy_and_hold": self.buy_and_hold.net.to_dict(),
        }

    def summary(self) -> str:
        return (
            f"Long-short top/bottom {self.top_k} over {self.book.n_days} days "
            f"({self.members_mean:.1f} members a day, {self.days_flat} days flat), costs "
            f"{self.book.cost_bps:g} + {self.book.slippage_bps:g} bps, borrow "
            f"{self.book.short_borrow_bps:g} bps/yr\n-- net --\n{self.book.net.summary()}\n"
            f"long leg Sharpe {self.long_sharpe:.2f}, short leg Sharpe {self.short_sharpe:.2f}"
            f"\n-- buy-and-hold (equal weight) --\n{self.buy_and_hold.net.summary()}"
        )


def long_short_backtest(
    predictions: np.ndarray,
    realized: np.ndarray,
    *,
    top_k: int = 5,
    cost_bps: float = 5.0,
    slippage_bps: float = 0.0,
    short_borrow_bps: float = 0.0,
    risk_free: float = 0.0,
    dates: np.ndarray | None = None,
) -> LongShortResult:
    """Backtest the long-short rule and equal-weight buy-and-hold (module docstring).

    Parameters
    ----------
    predictions : ndarray, shape (D, S)
        Prediction dated ``t`` per member; NaN = not scored.
    realized : ndarray, shape (D, S)
        Member's return from close ``t`` to close ``t + 1``; NaN = no price on ``t + 1``.
    top_k : int
    cost_bps, slippage_bps, short_borrow_bps : float
        All ``>= 0``.
    risk_free : float
    dates : ndarray, shape (D,), optional
    """
    pred = _panel("predictions", predictions)
    real = _panel("realized", realized)
    if pred.shape != real.shape:
        raise DataError(f"predictions {pred.shape} and realized {real.shape} differ in shape")
    if pred.shape[0] == 0:
        raise DataError("no test dates to backtest")
    if min(cost_bps, slippage_bps, short_borrow_bps) < 0:
        raise ConfigError("cost_bps, slippage_bps and short_borrow_bps must be >= 0")
    if dates is not None and len(dates) != pred.shape[0]:
        raise DataError(f"dates ({len(dates)}) and predictions ({pred.shape[0]}) differ")
    weights, flat = long_short_weights(pred, top_k)
    scored = np.isfinite(pred)
    costs = dict(cost_bps=float(cost_bps), slippage_bps=float(slippage_bps),
                 risk_free=float(risk_free), dates=dates)  # fmt: skip
    book = Book(weights, real, short_borrow_bps=float(short_borrow_bps), **costs)
    hold = Book(equal_weights(scored), real, **costs)
    return LongShortResult(book, hold, int(top_k), scored.sum(axis=1), flat)
