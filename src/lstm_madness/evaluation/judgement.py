"""One run's judgement: the :class:`Evaluation` record, and the part every study kind shares.

A study kind (one asset timed, or a universe's long-short book) supplies what differs:
its :class:`Strategy` (the primary model's book, buy-and-hold's, the baselines' and both
break-even costs) and its :class:`ForecastTests` (Diebold–Mariano, Pesaran–Timmermann,
the hit rate, R²_oos and every model's metrics). :func:`judge` adds what is the same for
every kind: the Sharpe t-test, PSR and DSR over the trial set, the bootstrap confidence
intervals, StepM's selection, SPA and PBO from the trial set's evidence, the seed spread
and the verdict, and builds the :class:`Evaluation` (or a kind's subclass of it).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd

from lstm_madness.evaluation.backtest import BacktestResult
from lstm_madness.evaluation.book import Book
from lstm_madness.evaluation.evidence import TrialEvidence, deflated_sharpes
from lstm_madness.evaluation.forecast_tests import BinomialResult, DMResult, PTResult
from lstm_madness.evaluation.settings import EvaluationSettings
from lstm_madness.evaluation.significance import (
    ConfidenceInterval,
    DSRResult,
    SeedSpread,
    SharpeTest,
    excess_return_ci,
    seed_spread,
    sharpe_ci,
    sharpe_tstat,
)
from lstm_madness.evaluation.snooping import PBOResult, SPAResult, StepMResult
from lstm_madness.evaluation.verdict import Verdict, decide
from lstm_madness.jsonable import jsonable

__all__ = [
    "BASELINE_PREFIX",
    "Evaluation",
    "ForecastTests",
    "Strategy",
    "judge",
    "short_name",
]

BASELINE_PREFIX = "baseline:"


def short_name(name: str) -> str:
    """``"baseline:zero"`` -> ``"zero"``; other names unchanged."""
    return name[len(BASELINE_PREFIX) :] if name.startswith(BASELINE_PREFIX) else name


def _break_even_kind(x: float, trades: bool = True) -> str:
    if not trades:
        return "no_trades"  # flat: no cost can change its Sharpe of 0
    if math.isnan(x):
        return "undefined"
    if x == math.inf:
        return "always_beats"  # no turnover, or still beats buy-and-hold at any cost
    if x == -math.inf:
        return "never_beats"
    return "finite" if x > 0 else "needs_rebate"


@dataclass(frozen=True, eq=False)
class Evaluation:
    """One run's evaluation, whatever its kind (:func:`judge` builds it).

    Daily series for plots are on ``strategy`` (primary model), ``buy_hold`` and
    ``baselines`` (books of :mod:`lstm_madness.evaluation.book`: a
    :class:`~lstm_madness.evaluation.backtest.BacktestResult` for one asset, a universe's
    long-short and equal-weight books), with the shortcuts :attr:`positions`,
    :attr:`asset_returns`, :attr:`net_returns`, :attr:`gross_returns` and
    :attr:`buy_hold_returns`.
    """

    dates: np.ndarray
    task: str
    primary: str
    settings: EvaluationSettings
    y_true: np.ndarray
    predictions: Mapping[str, np.ndarray]
    strategy: Book
    buy_hold: Book
    baselines: Mapping[str, Book]
    break_even_bps: float  #: cost (bps per unit turnover) at which the mean net return is 0
    break_even_vs_buy_hold_bps: float  #: cost at which the net Sharpe equals buy-and-hold's
    dm: Mapping[str, DMResult]
    pt: PTResult
    hit: BinomialResult
    r2_oos: float | None
    model_metrics: Mapping[str, Mapping[str, Any]]
    sharpe_test: SharpeTest
    dsr: DSRResult
    dsr_effective: DSRResult
    mean_correlation: float
    n_trial_runs: int
    sharpe_ci: ConfidenceInterval
    excess_ci: ConfidenceInterval
    spa: SPAResult
    pbo: PBOResult
    seeds: SeedSpread | None
    verdict: Verdict
    stepm: StepMResult | None = None
    stepm_selected: bool = False
    duplicates: int = 0
    #: a direction forecast: DM of its calls' Brier score vs always-up and majority
    direction_dm: Mapping[str, DMResult] = field(default_factory=dict)

    @property
    def n_days(self) -> int:
        return int(self.strategy.n_days)

    @property
    def positions(self) -> np.ndarray:
        """The strategy's daily position: one asset's (signed), a book's gross exposure."""
        s = self.strategy
        return s.positions if isinstance(s, BacktestResult) else s.exposure

    @property
    def asset_returns(self) -> np.ndarray:
        """What the market earned each day: the asset's return (one asset), else the
        buy-and-hold book's gross return (a universe's equal-weight book)."""
        s = self.strategy
        return s.asset_returns if isinstance(s, BacktestResult) else self.buy_hold.gross_returns

    @property
    def net_returns(self) -> np.ndarray:
        return self.strategy.net_returns

    @property
    def gross_returns(self) -> np.ndarray:
        return self.strategy.gross_returns

    @property
    def buy_hold_returns(self) -> np.ndarray:
        return self.buy_hold.net_returns

    @property
    def tradeable(self) -> bool:
        return self.verdict.tradeable

    def frame(self) -> pd.DataFrame:
        """Daily series indexed by date: position, asset return, gross / net / buy-and-hold
        returns and the primary model's prediction."""
        return pd.DataFrame(
            {
                "prediction": self.predictions[self.primary],
                "position": self.positions,
                "asset_return": self.asset_returns,
                "gross_return": self.gross_returns,
                "net_return": self.net_returns,
                "buy_hold_return": self.buy_hold_returns,
            },
            index=pd.DatetimeIndex(pd.to_datetime(self.dates), name="date"),
        )

    # ------------------------------------------------------------------ JSON sections

    def _backtest_json(self) -> dict[str, Any]:
        s, bh, net, gross = self.settings, self.buy_hold.net, self.strategy.net, self.strategy.gross
        return {
            "sharpe_net": net.sharpe,
            "sharpe_gross": gross.sharpe,
            "buy_hold_sharpe": bh.sharpe,
            "max_drawdown": net.max_drawdown,
            "turnover": net.turnover,
            "cost_bps": s.cost_bps,
            "slippage_bps": s.slippage_bps,
            "rule": s.rule,
            "risk_free": s.risk_free,
            "n_days": self.n_days,
            "start": self.dates[0] if self.n_days else None,
            "end": self.dates[-1] if self.n_days else None,
            "total_return_net": net.total_return,
            "total_return_gross": gross.total_return,
            "buy_hold_total_return": bh.total_return,
            "cagr_net": net.cagr,
            "volatility_net": net.volatility,
            "sortino_net": net.sortino,
            "calmar_net": net.calmar,
            "max_drawdown_days": net.max_drawdown_days,
            "buy_hold_max_drawdown": bh.max_drawdown,
            "win_rate": net.win_rate,
            "exposure": net.exposure,
            "avg_holding_days": net.avg_holding_days,
            "break_even_cost_bps": self.break_even_bps,
            "break_even_vs_buy_hold_bps": self.break_even_vs_buy_hold_bps,
            "break_even_kind": _break_even_kind(
                self.break_even_vs_buy_hold_bps, bool(np.any(self.strategy.turnover > 0))
            ),
            "net": net.to_dict(),
            "gross": gross.to_dict(),
            "buy_hold": bh.to_dict(),
            "strategies": {k: v.net.to_dict() for k, v in self.baselines.items()},
        }

    def _tests_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "dm_p_vs_zero": self.dm["zero"].pvalue,
            "pt_p": self.pt.pvalue,
            "hit_rate_p": self.hit.pvalue,
        }
        for name, res in self.dm.items():
            out[f"dm_p_vs_{name}"] = res.pvalue
            out[f"dm_stat_vs_{name}"] = res.statistic
        for name, res in self.direction_dm.items():
            out[f"dm_calls_p_vs_{name}"] = res.pvalue
            out[f"dm_calls_stat_vs_{name}"] = res.statistic
        out.update(
            pt_stat=self.pt.statistic,
            hit_rate=self.hit.hit_rate,
            hit_n=self.hit.n,
            hit_rate_ci=[self.hit.ci_low, self.hit.ci_high],
            hit_rate_test=self.hit.method,
            r2_oos=self.r2_oos,
            dm_loss=self.settings.dm_loss,
            dm_alternative="less (model more accurate)",
            models=dict(self.model_metrics),
        )
        return out

    def _significance_json(self) -> dict[str, Any]:
        d, sc, ec = self.dsr, self.sharpe_ci, self.excess_ci
        return {
            "psr": d.psr,
            "dsr": d.dsr,
            "trials": d.trials,
            "trials_effective": self.dsr_effective.trials,
            "dsr_effective": self.dsr_effective.dsr,
            "dsr_benchmark_sharpe_effective": self.dsr_effective.benchmark_sharpe,
            "trials_mode": self.settings.trials_mode,
            "trial_runs": self.n_trial_runs,
            "duplicates": self.duplicates,
            "mean_correlation": self.mean_correlation,
            "stepm_selected": self.stepm_selected,
            "stepm_superior": None if self.stepm is None else len(self.stepm.superior),
            "stepm_models": None if self.stepm is None else self.stepm.n_models,
            "fwer": self.settings.thresholds.fwer,
            "spa_p": self.spa.pvalue,
            "spa_p_lower": self.spa.pvalue_lower,
            "spa_p_upper": self.spa.pvalue_upper,
            "spa_models": self.spa.n_models,
            "spa_block_length": self.spa.block_length,
            "sharpe_tstat": self.sharpe_test.tstat,
            "sharpe_tstat_p": self.sharpe_test.pvalue,
            "dsr_benchmark_sharpe": d.benchmark_sharpe,
            "dsr_sharpe_variance": d.sharpe_variance,
            "dsr_variance_source": d.variance_source,
            "skew": d.skew,
            "kurtosis": d.kurtosis,
            "sharpe_ci": [sc.low, sc.high],
            "excess_return_ann": ec.estimate,
            "excess_return_ci": [ec.low, ec.high],
            "ci_level": sc.level,
            "block_length": sc.block_length,
            "excess_return_ci_block_length": ec.block_length,
            "bootstrap_reps": sc.reps,
            "pbo": self.pbo.pbo,
            "pbo_reason": self.pbo.reason,
            "pbo_strategies": self.pbo.n_strategies,
            "seed_spread": None if self.seeds is None else self.seeds.to_dict(),
        }

    def to_json(self) -> dict[str, Any]:
        """JSON-safe dict with the sections ``backtest``, ``tests``, ``significance`` and
        ``verdict`` (non-finite numbers become ``null``)."""
        return jsonable(
            {
                "backtest": self._backtest_json(),
                "tests": self._tests_json(),
                "significance": self._significance_json(),
                "verdict": self.verdict.to_dict(),
            }
        )

    to_dict = to_json

    def summary(self) -> str:
        """Plain-text summary: the verdict first, then the key numbers."""
        net, bh = self.strategy.net, self.buy_hold.net
        lines = [
            self.verdict.summary(),
            "",
            f"{self.primary} ({self.settings.rule}, {self.settings.cost_bps:g} bps) over "
            f"{self.n_days} test days:",
            f"  net Sharpe {net.sharpe:.2f} (gross {self.strategy.gross.sharpe:.2f}) vs "
            f"buy-and-hold {bh.sharpe:.2f}",
            f"  net return {net.total_return:+.2%} vs buy-and-hold {bh.total_return:+.2%}; "
            f"max drawdown {net.max_drawdown:.2%}",
            f"  break-even cost {self.break_even_bps:.1f} bps per unit turnover (mean net "
            f"return 0); {self.break_even_vs_buy_hold_bps:.1f} bps to match buy-and-hold's "
            f"Sharpe",
            f"  {self.hit.summary()}",
            f"  {self.dsr.summary()}",
            f"  StepM: {'selected' if self.stepm_selected else 'not selected'} "
            f"(trial set SPA p = {self.spa.pvalue:.3f} over {self.spa.n_models} distinct "
            f"strateg{'y' if self.spa.n_models == 1 else 'ies'})",
        ]
        if self.seeds is not None:
            lines.append(f"  {self.seeds.summary()}")
        return "\n".join(lines)


# ---------------------------------------------------------------------- judge


@dataclass(frozen=True, eq=False)
class Strategy:
    """A kind's backtest of a run: the primary model's book, buy-and-hold's, every other
    model's, and the primary book's break-even costs (bps per unit of turnover: mean net
    return 0; net Sharpe equal to buy-and-hold's)."""

    book: Book
    buy_hold: Book
    baselines: Mapping[str, Book]
    break_even_bps: float
    break_even_vs_buy_hold_bps: float


@dataclass(frozen=True, eq=False)
class ForecastTests:
    """A kind's forecast tests of the primary model: Diebold–Mariano against the zero
    forecast (``dm["zero"]``, the verdict's) and every other model, Pesaran–Timmermann,
    the binomial hit-rate test, R²_oos, every model's metrics, and for a direction forecast
    DM of its calls against always-up and majority."""

    dm: Mapping[str, DMResult]
    pt: PTResult
    hit: BinomialResult
    r2_oos: float | None
    metrics: Mapping[str, Mapping[str, Any]]
    direction_dm: Mapping[str, DMResult] = field(default_factory=dict)
    #: whether the verdict cites Pesaran–Timmermann (not for a panel: it pools the pairs)
    pt_in_verdict: bool = True


def judge(
    strategy: Strategy,
    tests: ForecastTests,
    *,
    dates: np.ndarray,
    task: str,
    primary: str,
    settings: EvaluationSettings,
    y_true: np.ndarray,
    predictions: Mapping[str, np.ndarray],
    trial_set: TrialEvidence,
    trial_position: int | None,
    seed_sharpes: np.ndarray | None = None,
    cautions: tuple[str, ...] = (),
    kind: type[Evaluation] = Evaluation,
    **extra: Any,
) -> Evaluation:
    """Significance and the verdict of a kind's strategy and forecast tests, as an
    :class:`Evaluation` of class ``kind`` (``extra``: the subclass's own fields).

    ``trial_set`` is the trial set's evidence and ``trial_position`` the run's column in
    it (StepM's selection); ``cautions`` are put first among the verdict's warnings.
    """
    s = settings
    book, bh = strategy.book, strategy.buy_hold
    net = book.net_returns
    boot = dict(reps=s.bootstrap_reps, block=s.block_length, seed=s.seed)
    dsr, dsr_eff, judged = deflated_sharpes(net, trial_set, s)
    stepm = trial_set.stepm
    selected = stepm.selects(trial_position)
    verdict = _verdict(strategy, tests, judged, trial_set, selected, len(dates), task, s)
    if cautions:
        verdict = replace(verdict, cautions=(*cautions, *verdict.cautions))
    return kind(
        dates=dates,
        task=task,
        primary=primary,
        settings=s,
        y_true=y_true,
        predictions=predictions,
        strategy=book,
        buy_hold=bh,
        baselines=strategy.baselines,
        break_even_bps=strategy.break_even_bps,
        break_even_vs_buy_hold_bps=strategy.break_even_vs_buy_hold_bps,
        dm=tests.dm,
        pt=tests.pt,
        hit=tests.hit,
        r2_oos=tests.r2_oos,
        model_metrics=tests.metrics,
        sharpe_test=sharpe_tstat(net, s.risk_free),
        dsr=dsr,
        dsr_effective=dsr_eff,
        mean_correlation=trial_set.mean_correlation,
        n_trial_runs=trial_set.n_members,
        sharpe_ci=sharpe_ci(net, risk_free=s.risk_free, level=s.ci_level, **boot),
        excess_ci=excess_return_ci(net, bh.net_returns, level=s.ci_level, **boot),
        spa=trial_set.spa,
        pbo=trial_set.pbo,
        seeds=None if seed_sharpes is None else seed_spread(seed_sharpes),
        verdict=verdict,
        stepm=stepm,
        stepm_selected=selected,
        duplicates=trial_set.duplicates,
        direction_dm=tests.direction_dm,
        **extra,
    )


def _verdict(
    strategy: Strategy,
    tests: ForecastTests,
    judged: DSRResult,
    trial_set: TrialEvidence,
    selected: bool,
    n_days: int,
    task: str,
    settings: EvaluationSettings,
) -> Verdict:
    """:func:`~lstm_madness.evaluation.verdict.decide` on a kind's numbers: ``judged``
    is the DSR the verdict uses (``trials_mode``), ``selected`` StepM's selection."""
    book, bh, stepm = strategy.book, strategy.buy_hold, trial_set.stepm
    return decide(
        n_days=n_days,
        sharpe_net=book.net.sharpe,
        buy_hold_sharpe=bh.net.sharpe,
        net_pnl=book.net.total_return,
        dm_p_vs_zero=tests.dm["zero"].pvalue,
        dsr=judged.dsr,
        trials=judged.trials,
        stepm_selected=selected,
        stepm_superior=len(stepm.superior),
        stepm_models=stepm.n_models,
        spa_p=trial_set.spa.pvalue,
        spa_models=trial_set.spa.n_models,
        task=task,
        dm_p_vs_direction={k.replace("_", "-"): v.pvalue for k, v in tests.direction_dm.items()}
        or None,
        hit_rate=tests.hit.hit_rate,
        hit_rate_p=tests.hit.pvalue,
        pt_p=tests.pt.pvalue if tests.pt_in_verdict else None,
        hit_rate_test=tests.hit.method,
        thresholds=settings.thresholds,
        min_test_days=settings.min_test_days,
        model_metrics=tests.metrics,
    )
