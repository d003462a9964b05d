"""The one backtest core: daily weights over assets, the returns they earn, net of costs.

A :class:`Book` holds ``weights[t, s]`` from close ``t`` to close ``t + 1``, earning
``realized[t, s]``, the asset's simple return over that interval. Whatever rule set the
weights (:mod:`lstm_madness.evaluation.positions`: one asset's sign / threshold /
proportional position as a one-column book, or a universe's long-short and equal-weight
books), turnover, costs, net returns and performance are computed here, once:

- turnover ``tau_t = sum_s |w[t, s] - w[t-1, s]|`` with ``w[-1] = 0`` (entering the first
  position trades; the position open on the last day is not closed);
- gross ``g_t = sum_s w[t, s] r[t, s]`` (a NaN return earns 0: a member whose price on
  ``t + 1`` does not exist is left at its last price, :attr:`Book.lost_returns`);
- costs ``tau_t (cost_bps + slippage_bps) / 1e4`` plus, on the short exposure
  ``sum_s max(-w[t, s], 0)``, the borrow fee ``short_borrow_bps / 1e4 / 252`` a day;
- net ``n_t = g_t - costs_t``; the statistics of
  :func:`~lstm_madness.evaluation.performance.performance` on the weights (turnover,
  exposure ``sum_s |w|`` and holding periods per asset).

Every default cost is :mod:`lstm_madness.options`'s.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

from lstm_madness.errors import ConfigError
from lstm_madness.evaluation.performance import (
    PERIODS_PER_YEAR,
    Performance,
    daily_turnover,
    performance,
)
from lstm_madness.options import (
    DEFAULT_COST_BPS,
    DEFAULT_RISK_FREE,
    DEFAULT_SHORT_BORROW_BPS,
    DEFAULT_SLIPPAGE_BPS,
)

__all__ = ["Book"]


@dataclass(frozen=True, eq=False)
class Book:
    """Daily weights over assets and the returns they earn, net of costs (module docstring).

    Attributes
    ----------
    weights : ndarray, shape (D, S)
        ``w[t, s]``, held from close ``t`` to close ``t + 1``.
    realized : ndarray, shape (D, S)
        ``r[t, s]`` over the same interval; NaN earns 0.
    cost_bps, slippage_bps : float
        Basis points per unit of turnover.
    short_borrow_bps : float
        Annual fee on the short exposure, basis points.
    risk_free : float
        Annual rate for Sharpe and Sortino.
    dates : ndarray, optional
        Test dates (for plots); not used in the arithmetic.
    """

    weights: np.ndarray
    realized: np.ndarray
    cost_bps: float = DEFAULT_COST_BPS
    slippage_bps: float = DEFAULT_SLIPPAGE_BPS
    short_borrow_bps: float = DEFAULT_SHORT_BORROW_BPS
    risk_free: float = DEFAULT_RISK_FREE
    dates: np.ndarray | None = field(default=None, repr=False)

    @property
    def n_days(self) -> int:
        return int(self.weights.shape[0])

    @property
    def cost_rate(self) -> float:
        """Total cost per unit of turnover as a fraction, ``(cost_bps + slippage_bps) / 1e4``."""
        return (self.cost_bps + self.slippage_bps) / 1e4

    @cached_property
    def _earned(self) -> np.ndarray:
        return np.where(np.isfinite(self.realized), self.realized, 0.0)  # (D, S)

    @cached_property
    def turnover(self) -> np.ndarray:
        """``sum_s |w[t, s] - w[t-1, s]|``, shape (D,)."""
        return daily_turnover(self.weights)

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
        """The borrow fee of each day's short exposure."""
        return self.short_exposure * self.short_borrow_bps / 1e4 / PERIODS_PER_YEAR

    @cached_property
    def gross_after_borrow(self) -> np.ndarray:
        """Gross returns after the borrow fee, before trading costs: what the break-even
        costs of :mod:`lstm_madness.evaluation.backtest` divide by the turnover."""
        if not self.short_borrow_bps:
            return self.gross_returns
        return self.gross_returns - self.borrow_costs

    @cached_property
    def costs(self) -> np.ndarray:
        """Trading costs ``turnover * cost_rate`` plus the borrow fee."""
        trading = self.turnover * self.cost_rate
        return trading + self.borrow_costs if self.short_borrow_bps else trading

    @cached_property
    def net_returns(self) -> np.ndarray:
        """``gross - costs``."""
        return self.gross_returns - self.costs

    @cached_property
    def exposure(self) -> np.ndarray:
        """Gross exposure ``sum_s |w[t, s]|``."""
        return np.abs(self.weights).sum(axis=1)

    @cached_property
    def lost_returns(self) -> int:
        """Positions whose next-day return did not exist (left at the last price)."""
        return int(((self.weights != 0) & ~np.isfinite(self.realized)).sum())

    @property
    def equity(self) -> np.ndarray:
        """Compounded net wealth after each day, starting from 1."""
        return np.cumprod(1.0 + self.net_returns)

    def contributions(self) -> tuple[np.ndarray, np.ndarray]:
        """Each asset's share of the daily gross and net returns, ``(D, S)`` each: ``w r``
        (a NaN return earns 0), and that less the cost of the asset's own trade and, when
        short, its borrow fee. Per day they sum to the book's returns."""
        gross = self.weights * self._earned
        trade = np.abs(np.diff(self.weights, axis=0, prepend=0.0)) * self.cost_rate
        borrow = np.maximum(-self.weights, 0.0) * self.short_borrow_bps / 1e4 / PERIODS_PER_YEAR
        return gross, gross - trade - borrow

    def leg(self, side: str, *, net: bool = True) -> np.ndarray:
        """Daily return of the ``"long"`` or ``"short"`` leg per unit of leg capital (1/2).

        The long leg's return is ``2 sum_s max(w, 0) r``, the short leg's what the short
        positions make, ``2 sum_s min(w, 0) r`` (positive when the shorted assets fall);
        ``net`` subtracts the leg's own trading costs (the book's turnover splits exactly
        into the two legs') and, for the short leg, the borrow fee.
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

    @cached_property
    def net(self) -> Performance:
        """Statistics of the net returns (turnover, exposure and holding periods per
        asset position)."""
        return performance(self.net_returns, self.weights, risk_free=self.risk_free)

    @cached_property
    def gross(self) -> Performance:
        """Statistics of the gross returns (before costs)."""
        return performance(self.gross_returns, self.weights, risk_free=self.risk_free)
