"""How a run's predictions are traded and judged: its evaluation settings.

:class:`EvaluationSettings` is the one place a forecast becomes positions (a position rule
of :mod:`lstm_madness.evaluation.positions`) and daily gross and net returns (the backtest
core, :class:`~lstm_madness.evaluation.book.Book`), under the run's costs, and holds how
strict the verdict is. Every default cost is :mod:`lstm_madness.options`'s.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from lstm_madness.evaluation.backtest import BacktestResult, backtest
from lstm_madness.evaluation.long_short import LongShortResult, long_short_backtest
from lstm_madness.evaluation.positions import positions_from_predictions
from lstm_madness.evaluation.verdict import VerdictThresholds
from lstm_madness.options import (
    DEFAULT_COST_BPS,
    DEFAULT_RISK_FREE,
    DEFAULT_SHORT_BORROW_BPS,
    DEFAULT_SLIPPAGE_BPS,
)

__all__ = ["EvaluationSettings"]


@dataclass(frozen=True)
class EvaluationSettings:
    """How predictions become positions, what trading costs, and how strict the verdict is.

    Attributes
    ----------
    rule, threshold, cap : see :func:`~lstm_madness.evaluation.positions.positions_from_predictions`
    scale : float, optional
        Divisor of the signal for ``rule="proportional"`` (e.g. the training targets'
        standard deviation); ``None`` = causal expanding RMS of the predictions.
    cost_bps, slippage_bps : float
        Basis points per unit of turnover.
    risk_free : float
        Annual risk-free rate for Sharpe / Sortino / PSR / DSR.
    bootstrap_reps : int
        Stationary-bootstrap replications (CIs and SPA).
    block_length : float, optional
        Expected bootstrap block length in days; ``None`` = Politis–White automatic.
    seed : int
        Seed of every bootstrap (and of PBO's sampled splits).
    thresholds : VerdictThresholds
    min_test_days : int
        Shorter test periods are "too short to decide".
    dm_loss : {"squared", "absolute"}
        Loss of the Diebold–Mariano tests.
    horizon : int
        Forecast horizon in days (lags of the DM variance: ``horizon - 1``).
    ci_level : float
        Level of the bootstrap confidence intervals.
    trials_mode : {"raw", "effective"}
        Which DSR the verdict uses: at the raw number of trials ``N`` or at the effective
        number :func:`~lstm_madness.evaluation.significance.effective_trials`.
    """

    rule: str = "sign"
    threshold: float = 0.0
    cap: float = 1.0
    scale: float | None = None
    cost_bps: float = DEFAULT_COST_BPS
    slippage_bps: float = DEFAULT_SLIPPAGE_BPS
    risk_free: float = DEFAULT_RISK_FREE
    bootstrap_reps: int = 1000
    block_length: float | None = None
    seed: int = 0
    thresholds: VerdictThresholds = field(default_factory=VerdictThresholds)
    min_test_days: int = 250
    dm_loss: str = "squared"
    horizon: int = 1
    ci_level: float = 0.95
    trials_mode: str = "raw"
    #: rule = "long_short": members per leg and the annual borrow fee of the short leg (bps)
    top_k: int = 5
    short_borrow_bps: float = DEFAULT_SHORT_BORROW_BPS

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def long_short(
        self, predictions: np.ndarray, realized: np.ndarray, dates: np.ndarray | None = None
    ) -> LongShortResult:
        """The long-short book of ``(dates, members)`` panels under these costs
        (:func:`~lstm_madness.evaluation.long_short.long_short_backtest`)."""
        return long_short_backtest(
            predictions,
            realized,
            top_k=self.top_k,
            cost_bps=self.cost_bps,
            slippage_bps=self.slippage_bps,
            short_borrow_bps=self.short_borrow_bps,
            risk_free=self.risk_free,
            dates=dates,
        )

    def backtest(
        self,
        predictions: np.ndarray,
        asset_returns: np.ndarray,
        task: str,
        dates: np.ndarray | None = None,
    ) -> BacktestResult:
        """Positions from ``predictions`` under this rule, backtested with these costs: the
        one place a forecast becomes positions and daily gross and net returns."""
        pos = positions_from_predictions(
            predictions,
            task=task,
            rule=self.rule,
            threshold=self.threshold,
            cap=self.cap,
            scale=self.scale,
        )
        return backtest(
            pos,
            asset_returns,
            dates=dates,
            cost_bps=self.cost_bps,
            slippage_bps=self.slippage_bps,
            risk_free=self.risk_free,
        )
