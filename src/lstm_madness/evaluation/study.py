"""The full evaluation of one run: backtest, forecast tests, significance and the verdict.

:func:`evaluate` is what the experiment engine calls with the stored test predictions of
one run; the result, :class:`Evaluation`, keeps the daily series for the report and turns
into the JSON of ``madness run --json`` with :meth:`Evaluation.to_json`.

Alignment: ``predictions[name][i]`` is dated ``dates[i]`` (made at that close), and
``asset_returns[i]`` is the target's simple return from close ``dates[i]`` to the next
close, i.e. what the position decided at ``dates[i]`` earns. ``y_true[i]`` is the label
that prediction forecasts (a return, or the 0/1 up label for classification).
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable, Hashable, Mapping, MutableMapping
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from lstm_madness.errors import ConfigError, DataError
from lstm_madness.evaluation.backtest import (
    TASKS,
    BacktestResult,
    backtest,
    break_even_cost,
    break_even_vs_benchmark,
    buy_and_hold,
    positions_from_predictions,
    sharpe_ratio,
)
from lstm_madness.evaluation.forecast_tests import (
    BinomialResult,
    DMResult,
    PTResult,
    diebold_mariano,
    directions,
    hit_rate_test,
    pesaran_timmermann,
)
from lstm_madness.evaluation.metrics import direction_hits, forecast_metrics
from lstm_madness.evaluation.significance import (
    ConfidenceInterval,
    DSRResult,
    PBOResult,
    SeedSpread,
    SharpeTest,
    SPAResult,
    StepMResult,
    deflated_sharpe_ratio,
    effective_trials,
    excess_return_ci,
    mean_pairwise_correlation,
    probability_of_backtest_overfitting,
    seed_spread,
    sharpe_ci,
    sharpe_tstat,
    spa_stepm,
)
from lstm_madness.evaluation.verdict import Verdict, VerdictThresholds, decide
from lstm_madness.jsonable import jsonable

__all__ = [
    "Evaluation",
    "EvaluationSettings",
    "TrialEvidence",
    "evaluate",
    "jsonable",
    "short_name",
    "trial_evidence",
]

BASELINE_PREFIX = "baseline:"


@dataclass(frozen=True)
class EvaluationSettings:
    """How predictions become positions, what trading costs, and how strict the verdict is.

    Attributes
    ----------
    rule, threshold, cap : see :func:`~lstm_madness.evaluation.backtest.positions_from_predictions`
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
    cost_bps: float = 5.0
    slippage_bps: float = 0.0
    risk_free: float = 0.0
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
    short_borrow_bps: float = 0.0

    @classmethod
    def from_config(cls, config: Any, **overrides: Any) -> EvaluationSettings:
        """Build from an experiment config (anything with ``backtest`` and ``evaluation``
        sections shaped like :class:`lstm_madness.experiment.config.ExperimentConfig`)."""
        b, e = config.backtest, config.evaluation
        kw: dict[str, Any] = dict(
            rule=b.rule,
            threshold=b.threshold,
            cap=b.cap,
            cost_bps=b.cost_bps,
            slippage_bps=b.slippage_bps,
            risk_free=b.risk_free,
            bootstrap_reps=e.bootstrap_reps,
            min_test_days=e.min_test_days,
            trials_mode=getattr(e, "trials_mode", "raw"),
            top_k=getattr(b, "top_k", 5),
            short_borrow_bps=getattr(b, "short_borrow_bps", 0.0),
            thresholds=VerdictThresholds(min_dsr=e.min_dsr, fwer=e.fwer, alpha=e.alpha),
        )
        horizon = getattr(getattr(config, "target", None), "horizon", None)
        if horizon is not None:
            kw["horizon"] = horizon
        kw.update(overrides)
        return cls(**kw)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def long_short(self, predictions: np.ndarray, realized: np.ndarray, dates=None):
        """The long-short book of ``(dates, members)`` panels under these costs
        (:func:`~lstm_madness.evaluation.long_short.long_short_backtest`)."""
        from lstm_madness.evaluation.long_short import long_short_backtest

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


@dataclass(frozen=True, eq=False)
class TrialEvidence:
    """What a trial set says about each of its members, computed once per trial set.

    Attributes
    ----------
    trials : int
        ``N``: distinct forecasts tried, the judged run included (also runs still in
        progress and trials declared by imported forecasts).
    sharpes : ndarray
        Annualized net Sharpe ratios of every distinct member with stored predictions, the
        judged run included, all backtested under the judged run's rule and costs, each
        over its own test dates. Their variance is the DSR's ``V``.
    mean_correlation : float
        Mean pairwise correlation of the members' daily net returns on their common dates,
        clipped to [0, 1].
    spa, stepm, pbo : SPAResult, StepMResult, PBOResult
        Hansen's SPA test of every distinct member against buy-and-hold (does *some*
        member beat it?), Romano–Wolf StepM on the same draws (*which* members beat it),
        and the PBO across the members, on the common dates.
    n_days : int
        Common dates.
    duplicates : int
        Members merged into an earlier member with identical primary predictions (they
        count once: not in ``N``, ``V``, SPA, StepM or PBO).
    """

    trials: int
    sharpes: np.ndarray
    mean_correlation: float
    spa: SPAResult
    pbo: PBOResult
    n_days: int
    stepm: StepMResult
    duplicates: int = 0

    @property
    def n_members(self) -> int:
        return int(self.sharpes.size)

    @property
    def trials_effective(self) -> float:
        return effective_trials(self.trials, self.mean_correlation)


def trial_evidence(
    net_returns: np.ndarray,
    benchmark_returns: np.ndarray,
    *,
    sharpes: np.ndarray,
    trials: int,
    reps: int = 1000,
    block: float | None = None,
    seed: int | None = 0,
    fwer: float = 0.05,
    duplicates: int = 0,
) -> TrialEvidence:
    """:class:`TrialEvidence` from the members' daily net returns on their common dates.

    Parameters
    ----------
    net_returns : ndarray of shape (n_days, n_members)
        Daily net returns of every member with predictions, on common dates (no NaN).
    benchmark_returns : ndarray of shape (n_days,)
        Buy-and-hold net returns on the same dates.
    sharpes : ndarray of shape (n_members,)
        Annualized net Sharpe ratio of each member (over its own dates).
    trials : int
        ``N``; never taken below ``n_members``.
    fwer : float
        StepM's family-wise error rate.
    duplicates : int
        Members merged away before these columns were formed (recorded, not used).
    """
    m = np.asarray(net_returns, dtype=np.float64)
    m = m[:, None] if m.ndim == 1 else m
    sh = np.asarray(sharpes, dtype=np.float64).ravel()
    spa, stepm = spa_stepm(m, benchmark_returns, fwer=fwer, reps=reps, block=block, seed=seed)
    pbo = probability_of_backtest_overfitting(m, seed=seed)
    return TrialEvidence(
        max(int(trials), m.shape[1], sh.size),
        sh,
        mean_pairwise_correlation(m),
        spa,
        pbo,
        int(m.shape[0]),
        stepm,
        int(duplicates),
    )


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
    """Everything :func:`evaluate` computed for one run.

    Daily series for plots are on ``strategy`` (primary model), ``buy_hold`` and
    ``baselines`` (:class:`~lstm_madness.evaluation.backtest.BacktestResult`), with the
    shortcuts :attr:`positions`, :attr:`net_returns`, :attr:`gross_returns` and
    :attr:`buy_hold_returns`.
    """

    dates: np.ndarray
    task: str
    primary: str
    settings: EvaluationSettings
    y_true: np.ndarray
    predictions: Mapping[str, np.ndarray]
    strategy: BacktestResult
    buy_hold: BacktestResult
    baselines: Mapping[str, BacktestResult]
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
        return self.strategy.positions

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
                "asset_return": self.strategy.asset_returns,
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


# ---------------------------------------------------------------------- evaluate


def _check_inputs(
    dates: Any,
    asset_returns: Any,
    y_true: Any,
    predictions: Mapping[str, Any],
    task: str,
    primary: str,
) -> int:
    if task not in TASKS:
        raise ConfigError(f"task must be one of {TASKS}, got {task!r}")
    if primary not in predictions:
        raise DataError(f"primary model {primary!r} not among predictions {sorted(predictions)}")
    n = len(dates)
    lengths = {"asset_returns": len(asset_returns), "y_true": len(y_true)}
    lengths.update({f"predictions[{k!r}]": len(v) for k, v in predictions.items()})
    bad = {k: v for k, v in lengths.items() if v != n}
    if bad:
        raise DataError(f"all series must cover the {n} test dates; got {bad}")
    if n < 3:
        raise DataError(f"need at least 3 test days to evaluate, got {n}")
    return n


def _zero_forecast(task: str, n: int) -> np.ndarray:
    """The no-information forecast: return 0 (random walk) or probability 0.5."""
    return np.full(n, 0.5 if task == "classification" else 0.0)


#: The baselines a direction forecast must beat (Diebold–Mariano on the Brier score).
DIRECTION_BENCHMARKS = ("always_up", "majority")


def direction_calls(probabilities: np.ndarray) -> np.ndarray:
    """A direction forecast's calls as hard probabilities: 1 above 0.5, 0 below, 0.5 (no
    call) at exactly 0.5."""
    p = np.asarray(probabilities, dtype=np.float64)
    return np.where(p > 0.5, 1.0, np.where(p < 0.5, 0.0, 0.5))


def direction_tests(
    y: np.ndarray, prediction: np.ndarray, others: Mapping[str, np.ndarray], h: int = 1
) -> dict[str, DMResult]:
    """Diebold–Mariano tests (one-sided: the forecast is more accurate) of a direction
    forecast's Brier score against the always-up and majority baselines, those of them in
    ``others`` (by short name). The baselines are hard probabilities (0 or 1), so the
    forecast is scored by its calls (:func:`direction_calls`): a probability is not
    credited for hedging towards 0.5 against baselines that never hedge; the test is then
    one of the calls' accuracy."""
    calls = direction_calls(prediction)
    return {
        name: diebold_mariano(y, calls, others[name], loss="squared", h=h)
        for name in DIRECTION_BENCHMARKS
        if name in others
    }


def deflated_sharpes(net: np.ndarray, trial_set: TrialEvidence, settings: EvaluationSettings):
    """The DSR of daily net returns ``net`` at the trial set's N and at its effective N,
    and the one the verdict uses (``settings.trials_mode``): ``(dsr, dsr_effective,
    judged)``."""
    dsr = deflated_sharpe_ratio(
        net, trials=trial_set.trials, trial_sharpes=trial_set.sharpes, risk_free=settings.risk_free
    )
    dsr_eff = deflated_sharpe_ratio(
        net,
        trials=trial_set.trials_effective,
        trial_sharpes=trial_set.sharpes,
        risk_free=settings.risk_free,
    )
    return dsr, dsr_eff, dsr_eff if settings.trials_mode == "effective" else dsr


def _digest(*arrays: Any) -> bytes | None:
    """A digest of the arrays' dtypes, shapes and bytes; None for object arrays."""
    h = hashlib.blake2b(digest_size=16)
    for a in arrays:
        arr = np.ascontiguousarray(a)
        if arr.dtype == object:
            return None
        h.update(f"{arr.dtype.str}{arr.shape}".encode())
        h.update(arr.view(np.uint8).tobytes())
    return h.digest()


def _memoized(memo: MutableMapping[Hashable, Any] | None, key: tuple, compute: Callable) -> Any:
    if memo is None or any(part is None for part in key):
        return compute()
    if key not in memo:
        memo[key] = compute()
    return memo[key]


def evaluate(
    *,
    dates: np.ndarray,
    asset_returns: np.ndarray,
    y_true: np.ndarray,
    predictions: Mapping[str, np.ndarray],
    task: str,
    primary: str = "lstm",
    settings: EvaluationSettings = EvaluationSettings(),
    trials: int = 1,
    trial_sharpes: np.ndarray | None = None,
    peer_net_returns: np.ndarray | None = None,
    seed_sharpes: np.ndarray | None = None,
    y_benchmark: np.ndarray | None = None,
    trial_set: TrialEvidence | None = None,
    trial_position: int | None = 0,
    memo: MutableMapping[Hashable, Any] | None = None,
) -> Evaluation:
    """Backtest, test and judge one run's out-of-sample predictions.

    Parameters
    ----------
    dates : ndarray of shape (n_days,)
        Test dates (any type :class:`pandas.Timestamp` accepts).
    asset_returns : ndarray of shape (n_days,)
        Target's simple return from close ``dates[i]`` to the next close.
    y_true : ndarray of shape (n_days,)
        The labels forecast (returns, or 0/1 for classification).
    predictions : mapping of name to ndarray of shape (n_days,)
        ``"lstm"``, ``"baseline:zero"``, ``"baseline:mean"``, ...; all on ``dates``. Every
        non-primary entry is backtested with the same rule and compared with the primary
        model by Diebold–Mariano.
    task : {"regression", "classification"}
    primary : str, default "lstm"
    settings : EvaluationSettings
    trials : int, default 1
        Configurations tried on this target and test period (for the DSR). Never taken
        below the number of strategies visible here (1 + peers, or ``len(trial_sharpes)``).
        Ignored when ``trial_set`` is given.
    trial_sharpes : ndarray, optional
        Annualized net Sharpe ratios of **all** the trials, this run's included; their
        sample variance is the DSR's ``V``. When omitted: this run's and its peers'.
    peer_net_returns : ndarray of shape (n_days, n_peers), optional
        Net daily returns of the other runs on the same target and test dates; SPA tests
        this run together with them against buy-and-hold, and PBO ranks them all.
        Ignored when ``trial_set`` is given.
    seed_sharpes : ndarray, optional
        Annualized net Sharpe ratios of other seeds of this configuration (spread report).
    y_benchmark : ndarray of shape (n_days,), optional
        Historical-mean forecast for the Campbell–Thompson R²_oos; defaults to
        ``predictions["baseline:mean"]`` when present, else R²_oos is ``None``.
    trial_set : TrialEvidence, optional
        The trial set's evidence (see :func:`trial_evidence`), computed once for all its
        members; it supplies ``N``, ``V``, the mean correlation, SPA, StepM and PBO.
    trial_position : int, optional
        This run's column in ``trial_set`` (the earlier identical member's when it was
        merged as a duplicate), for StepM's selection; 0 when the trial set is built here.
    memo : dict, optional
        Shared by the evaluations of one pass: the buy-and-hold backtest and each
        non-primary forecast's backtest and metrics are computed once for identical
        inputs (the same bytes of predictions, returns and dates, the same settings), as
        for the baselines that the runs of one data group share.

    Returns
    -------
    Evaluation
    """
    n = _check_inputs(dates, asset_returns, y_true, predictions, task, primary)
    s = settings
    dates_arr = np.asarray(dates)
    y = np.asarray(y_true, dtype=np.float64)
    preds = {k: np.asarray(v, dtype=np.float64) for k, v in predictions.items()}
    costs = dict(cost_bps=s.cost_bps, slippage_bps=s.slippage_bps, risk_free=s.risk_free)

    def run(pred: np.ndarray) -> BacktestResult:
        return s.backtest(pred, asset_returns, task, dates=dates_arr)

    market = _digest(asset_returns, dates_arr)
    strategy = run(preds[primary])
    bh = _memoized(
        memo,
        ("buy_and_hold", market, tuple(costs.items())),
        lambda: buy_and_hold(asset_returns, dates=dates_arr, **costs),
    )
    baselines = {
        k: _memoized(memo, ("backtest", s, task, market, _digest(v)), lambda v=v: run(v))
        for k, v in preds.items()
        if k != primary
    }

    # forecast tests: the primary model against every other forecast and the zero forecast
    # (a direction forecast also against always-up, its verdict's benchmark)
    others = {short_name(k): v for k, v in preds.items() if k != primary}
    others.setdefault("zero", _zero_forecast(task, n))
    if task == "classification":
        others.setdefault("always_up", np.ones(n))
    others = {"zero": others.pop("zero"), **others}
    dm = {
        k: diebold_mariano(y, preds[primary], v, loss=s.dm_loss, h=s.horizon)
        for k, v in others.items()
    }
    direction_dm = (
        direction_tests(y, preds[primary], others, s.horizon) if task == "classification" else {}
    )
    called = np.isfinite(direction_hits(y, preds[primary], task))
    pt = pesaran_timmermann(directions(y[called], task), directions(preds[primary][called], task))
    hit = hit_rate_test(y, preds[primary], task)
    bench = y_benchmark if y_benchmark is not None else preds.get(f"{BASELINE_PREFIX}mean")
    labels = _digest(y, np.zeros(0) if bench is None else bench)
    metrics = {
        k: forecast_metrics(y, v, bench, task)
        if k == primary
        else _memoized(
            memo,
            ("metrics", task, labels, _digest(v)),
            lambda v=v: forecast_metrics(y, v, bench, task),
        )
        for k, v in preds.items()
    }
    r2 = metrics[primary]["r2_oos"]

    # significance, counting the tries
    net = strategy.net_returns
    peers = None if peer_net_returns is None else np.asarray(peer_net_returns, dtype=np.float64)
    if peers is not None:
        peers = peers[:, None] if peers.ndim == 1 else peers
        if peers.shape[0] != n:
            raise DataError(f"peer_net_returns has {peers.shape[0]} rows, expected {n}")
    boot = dict(reps=s.bootstrap_reps, block=s.block_length, seed=s.seed)
    if trial_set is None:
        candidates = net[:, None] if peers is None else np.column_stack([net, peers])
        sharpes = (
            np.asarray(trial_sharpes, dtype=np.float64).ravel()
            if trial_sharpes is not None
            else np.array([sharpe_ratio(c, s.risk_free) for c in candidates.T])
        )
        trial_set = trial_evidence(
            candidates,
            bh.net_returns,
            sharpes=sharpes,
            trials=trials,
            fwer=s.thresholds.fwer,
            **boot,
        )
        trial_position = 0
    dsr, dsr_eff, judged = deflated_sharpes(net, trial_set, s)
    s_ci = sharpe_ci(net, risk_free=s.risk_free, level=s.ci_level, **boot)
    e_ci = excess_return_ci(net, bh.net_returns, level=s.ci_level, **boot)
    spa, pbo, stepm = trial_set.spa, trial_set.pbo, trial_set.stepm
    seeds = None if seed_sharpes is None else seed_spread(seed_sharpes)
    selected = stepm.selects(trial_position)

    verdict = decide(
        n_days=n,
        sharpe_net=strategy.net.sharpe,
        buy_hold_sharpe=bh.net.sharpe,
        net_pnl=strategy.net.total_return,
        dm_p_vs_zero=dm["zero"].pvalue,
        dsr=judged.dsr,
        trials=judged.trials,
        stepm_selected=selected,
        stepm_superior=len(stepm.superior),
        stepm_models=stepm.n_models,
        spa_p=spa.pvalue,
        spa_models=spa.n_models,
        task=task,
        dm_p_vs_direction={k.replace("_", "-"): v.pvalue for k, v in direction_dm.items()} or None,
        hit_rate=hit.hit_rate,
        hit_rate_p=hit.pvalue,
        pt_p=pt.pvalue,
        thresholds=s.thresholds,
        min_test_days=s.min_test_days,
        model_metrics=metrics,
    )
    return Evaluation(
        dates=dates_arr,
        task=task,
        primary=primary,
        settings=s,
        y_true=y,
        predictions=preds,
        strategy=strategy,
        buy_hold=bh,
        baselines=baselines,
        break_even_bps=break_even_cost(strategy),
        break_even_vs_buy_hold_bps=break_even_vs_benchmark(strategy, bh),
        dm=dm,
        pt=pt,
        hit=hit,
        r2_oos=r2,
        model_metrics=metrics,
        sharpe_test=sharpe_tstat(net, s.risk_free),
        dsr=dsr,
        dsr_effective=dsr_eff,
        mean_correlation=trial_set.mean_correlation,
        n_trial_runs=trial_set.n_members,
        sharpe_ci=s_ci,
        excess_ci=e_ci,
        spa=spa,
        pbo=pbo,
        seeds=seeds,
        verdict=verdict,
        stepm=stepm,
        stepm_selected=selected,
        duplicates=trial_set.duplicates,
        direction_dm=direction_dm,
    )
