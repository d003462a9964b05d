"""Daily long-short book over a universe's members, net of costs (pure NumPy).

The rule is :func:`~lstm_madness.evaluation.positions.long_short_weights` and the book the
backtest core :class:`~lstm_madness.evaluation.book.Book`, as for a single asset; this
module pairs the book with its buy-and-hold (the equal-weight book) and the membership
counts.

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

Two conventions of the daily return (:attr:`LongShortResult.mean_daily`):

- the **book** (each leg 1/2 of capital, :data:`BOOK_LABEL`): the book's own return above,
  the mean of the two legs, with the costs of its turnover;
- **long − short** (each leg 100% of capital, as Fischer & Krauss report it,
  :data:`LONG_MINUS_SHORT_LABEL`): the long leg's return minus the mean return of the
  shorted members, ``2 sum_s max(w, 0) r + 2 sum_s min(w, 0) r``, the *sum* of the legs
  as earned. Before costs it is exactly twice the book's. Its costs are ``(cost_bps +
  slippage_bps) / 1e4`` per half-turn, on each leg's turnover at 100% of capital
  (``2 sum_s |dw|`` per leg; a day that replaces both legs pays four half-turns, 20 bps at
  5 bps), and the borrow fee on a short leg of 100%: after costs it is the sum of the
  legs' net returns, again exactly twice the book's net return.

Buy-and-hold is the equal-weight book of each day's scored members (weights ``1 / n_t``),
paying the same costs on its turnover (entry, and membership changes).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np

from lstm_madness.errors import ConfigError, DataError
from lstm_madness.evaluation.backtest import break_even_cost, break_even_vs_benchmark
from lstm_madness.evaluation.book import Book
from lstm_madness.evaluation.performance import sharpe_ratio
from lstm_madness.evaluation.positions import as_panel, equal_weights, long_short_weights
from lstm_madness.options import (
    DEFAULT_COST_BPS,
    DEFAULT_RISK_FREE,
    DEFAULT_SHORT_BORROW_BPS,
    DEFAULT_SLIPPAGE_BPS,
)

__all__ = [
    "BOOK_LABEL",
    "LONG_MINUS_SHORT_LABEL",
    "Book",
    "LongShortResult",
    "equal_weights",
    "long_short_backtest",
    "long_short_weights",
]

#: The two conventions of a long-short day's return (module docstring), as reports name them.
BOOK_LABEL = "book (each leg ½ of capital)"
LONG_MINUS_SHORT_LABEL = "long − short (each leg 100% of capital, as Fischer & Krauss)"


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

    def long_minus_short(self, *, net: bool = True) -> np.ndarray:
        """Daily long-leg minus short-leg return, each leg at 100% of capital (Fischer &
        Krauss's convention, module docstring), shape (D,): the sum of the legs as earned,
        net of each leg's costs at 100% (``net``) or before any cost. Twice the book's."""
        return self.book.leg("long", net=net) + self.book.leg("short", net=net)

    @cached_property
    def mean_daily(self) -> dict[str, float]:
        """Mean daily return over every test day (a flat day counts as 0) in both
        conventions of the module docstring, fractions, under the keys of the evaluation's
        JSON (``backtest.*``): ``mean_daily_book_gross``, ``mean_daily_book_net`` (each leg
        1/2 of capital) and ``mean_daily_long_minus_short_gross``,
        ``mean_daily_long_minus_short_net`` (each leg 100%)."""
        return {
            "mean_daily_book_gross": float(np.mean(self.book.gross_returns)),
            "mean_daily_book_net": float(np.mean(self.book.net_returns)),
            "mean_daily_long_minus_short_gross": float(np.mean(self.long_minus_short(net=False))),
            "mean_daily_long_minus_short_net": float(np.mean(self.long_minus_short(net=True))),
        }

    def break_even_cost(self) -> float:
        """Cost per unit of turnover (bps) at which the book's mean daily net return is zero
        (:func:`~lstm_madness.evaluation.backtest.break_even_cost`; the borrow fee is kept
        fixed)."""
        return break_even_cost(self.book)

    def break_even_vs_buy_hold(self) -> float:
        """Cost per unit of turnover (bps) at which the book's Sharpe falls to the
        equal-weight book's (see
        :func:`~lstm_madness.evaluation.backtest.break_even_vs_benchmark`; the borrow fee is
        kept fixed)."""
        return break_even_vs_benchmark(self.book, self.buy_and_hold)

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
            **self.mean_daily,
            "net": self.book.net.to_dict(),
            "gross": self.book.gross.to_dict(),
            "buy_and_hold": self.buy_and_hold.net.to_dict(),
        }

    def mean_daily_lines(self) -> list[str]:
        """One line per convention: its label and mean daily return before and after
        costs."""
        m = self.mean_daily
        return [
            f"{label}: mean daily return {m[f'mean_daily_{key}_gross']:+.3%} before costs, "
            f"{m[f'mean_daily_{key}_net']:+.3%} after"
            for key, label in (("book", BOOK_LABEL), ("long_minus_short", LONG_MINUS_SHORT_LABEL))
        ]

    def summary(self) -> str:
        means = "\n".join(self.mean_daily_lines())
        return (
            f"Long-short top/bottom {self.top_k} over {self.book.n_days} days "
            f"({self.members_mean:.1f} members a day, {self.days_flat} days flat), costs "
            f"{self.book.cost_bps:g} + {self.book.slippage_bps:g} bps, borrow "
            f"{self.book.short_borrow_bps:g} bps/yr\n-- net --\n{self.book.net.summary()}\n"
            f"long leg Sharpe {self.long_sharpe:.2f}, short leg Sharpe {self.short_sharpe:.2f}"
            f"\n{means}"
            f"\n-- buy-and-hold (equal weight) --\n{self.buy_and_hold.net.summary()}"
        )


def long_short_backtest(
    predictions: np.ndarray,
    realized: np.ndarray,
    *,
    top_k: int = 5,
    cost_bps: float = DEFAULT_COST_BPS,
    slippage_bps: float = DEFAULT_SLIPPAGE_BPS,
    short_borrow_bps: float = DEFAULT_SHORT_BORROW_BPS,
    risk_free: float = DEFAULT_RISK_FREE,
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
    pred = as_panel("predictions", predictions)
    real = as_panel("realized", realized)
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
