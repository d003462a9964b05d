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

import datetime as dt
import math
from collections.abc import Mapping
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
from lstm_madness.evaluation.metrics import forecast_metrics
from lstm_madness.evaluation.significance import (
    ConfidenceInterval,
    DSRResult,
    PBOResult,
    SeedSpread,
    SharpeTest,
    SPAResult,
    deflated_sharpe_ratio,
    excess_return_ci,
    probability_of_backtest_overfitting,
    seed_spread,
    sharpe_ci,
    sharpe_tstat,
    spa_test,
)
from lstm_madness.evaluation.verdict import Verdict, VerdictThresholds, decide

__all__ = ["Evaluation", "EvaluationSettings", "evaluate", "jsonable", "short_name"]

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

    @classmethod
    def from_config(cls, config: Any, **overrides: Any) -> EvaluationSettings:
        """Build from an experiment config (anything with ``backtest`` and ``evaluation``
        sections shaped like :class:`lstm_madness.experiment.config.ExperimentConfig`)."""
        b, e = config.backtest, config.evaluation
        kw: dict[str, Any] = dict(
            rule=b.rule, threshold=b.threshold, cap=b.cap, cost_bps=b.cost_bps,
            slippage_bps=b.slippage_bps, risk_free=b.risk_free,
            bootstrap_reps=e.bootstrap_reps, min_test_days=e.min_test_days,
            thresholds=VerdictThresholds(min_dsr=e.min_dsr, max_spa_p=e.max_spa_p,
                                         alpha=e.alpha),
        )
        horizon = getattr(getattr(config, "target", None), "horizon", None)
        if horizon is not None:
            kw["horizon"] = horizon
        kw.update(overrides)
        return cls(**kw)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def short_name(name: str) -> str:
    """``"baseline:zero"`` -> ``"zero"``; other names unchanged."""
    return name[len(BASELINE_PREFIX):] if name.startswith(BASELINE_PREFIX) else name


def jsonable(value: Any) -> Any:
    """Recursively convert to JSON-safe Python: numpy scalars/arrays to numbers/lists,
    non-finite floats to ``None``, dates to ISO strings, tuples to lists."""
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | np.ndarray):
        return [jsonable(v) for v in (value.tolist() if isinstance(value, np.ndarray) else value)]
    if isinstance(value, bool | np.bool_):
        return bool(value)
    if isinstance(value, int | np.integer):
        return int(value)
    if isinstance(value, float | np.floating):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, dt.date | pd.Timestamp | np.datetime64):
        return pd.Timestamp(value).date().isoformat()
    if hasattr(value, "to_dict"):
        return jsonable(value.to_dict())
    return value


def _break_even_kind(x: float) -> str:
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
    break_even_bps: float
    dm: Mapping[str, DMResult]
    pt: PTResult
    hit: BinomialResult
    r2_oos: float | None
    model_metrics: Mapping[str, Mapping[str, Any]]
    sharpe_test: SharpeTest
    dsr: DSRResult
    sharpe_ci: ConfidenceInterval
    excess_ci: ConfidenceInterval
    spa: SPAResult
    pbo: PBOResult
    seeds: SeedSpread | None
    verdict: Verdict

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
            "hit_rate": net.hit_rate,
            "exposure": net.exposure,
            "avg_holding_days": net.avg_holding_days,
            "break_even_cost_bps": self.break_even_bps,
            "break_even_kind": _break_even_kind(self.break_even_bps),
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
        out.update(
            pt_stat=self.pt.statistic, hit_rate=self.hit.hit_rate, hit_rate_ci=[
                self.hit.ci_low, self.hit.ci_high], r2_oos=self.r2_oos,
            dm_loss=self.settings.dm_loss, dm_alternative="less (model more accurate)",
            models=dict(self.model_metrics),
        )
        return out

    def _significance_json(self) -> dict[str, Any]:
        d, sc, ec = self.dsr, self.sharpe_ci, self.excess_ci
        return {
            "psr": d.psr,
            "dsr": d.dsr,
            "trials": d.trials,
            "spa_p": self.spa.pvalue,
            "spa_p_lower": self.spa.pvalue_lower,
            "spa_p_upper": self.spa.pvalue_upper,
            "spa_models": self.spa.n_models,
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
            "bootstrap_reps": sc.reps,
            "pbo": self.pbo.pbo,
            "pbo_reason": self.pbo.reason,
            "pbo_strategies": self.pbo.n_strategies,
            "seed_spread": None if self.seeds is None else self.seeds.to_dict(),
        }

    def to_json(self) -> dict[str, Any]:
        """JSON-safe dict with the sections ``backtest``, ``tests``, ``significance`` and
        ``verdict`` (non-finite numbers become ``null``)."""
        return jsonable({
            "backtest": self._backtest_json(),
            "tests": self._tests_json(),
            "significance": self._significance_json(),
            "verdict": self.verdict.to_dict(),
        })

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
            f"  break-even cost {self.break_even_bps:.1f} bps per unit turnover",
            f"  {self.hit.summary()}",
            f"  {self.dsr.summary()}",
            f"  SPA p = {self.spa.pvalue:.3f} ({self.spa.n_models} strateg"
            f"{'y' if self.spa.n_models == 1 else 'ies'})",
        ]
        if self.seeds is not None:
            lines.append(f"  {self.seeds.summary()}")
        return "\n".join(lines)


# ---------------------------------------------------------------------- evaluate


def _check_inputs(dates: Any, asset_returns: Any, y_true: Any,
                  predictions: Mapping[str, Any], task: str, primary: str) -> int:
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


def _trial_inputs(primary_sharpe: float, peers: np.ndarray | None, seeds: np.ndarray | None,
                  trials: int, trial_sharpes: np.ndarray | None, risk_free: float
                  ) -> tuple[int, np.ndarray | None, bool]:
    """Trials N, the Sharpe ratios whose variance feeds the DSR, and whether to floor it."""
    n_peers = 0 if peers is None else peers.shape[1]
    seen = 1 + n_peers
    if trial_sharpes is not None:
        ts = np.asarray(trial_sharpes, dtype=np.float64).ravel()
        return max(int(trials), seen, ts.size), ts, False
    available = [primary_sharpe]
    if peers is not None:
        available += [sharpe_ratio(peers[:, j], risk_free) for j in range(n_peers)]
    if seeds is not None:
        available += list(np.asarray(seeds, dtype=np.float64).ravel())
    return max(int(trials), seen), np.asarray(available), True


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
    trial_sharpes : ndarray, optional
        Annualized net Sharpe ratios of those trials; their variance feeds the DSR. When
        omitted, the Sharpe ratios of this run, its peers and its seeds are used, floored
        at the no-skill sampling variance (see
        :func:`~lstm_madness.evaluation.significance.deflated_sharpe_ratio`).
    peer_net_returns : ndarray of shape (n_days, n_peers), optional
        Net daily returns of the other runs on the same target and test dates; SPA tests
        this run together with them against buy-and-hold, and PBO ranks them all.
    seed_sharpes : ndarray, optional
        Annualized net Sharpe ratios of other seeds of this configuration (spread report).
    y_benchmark : ndarray of shape (n_days,), optional
        Historical-mean forecast for the Campbell–Thompson R²_oos; defaults to
        ``predictions["baseline:mean"]`` when present, else R²_oos is ``None``.

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
        pos = positions_from_predictions(pred, task=task, rule=s.rule, threshold=s.threshold,
                                         cap=s.cap, scale=s.scale)
        return backtest(pos, asset_returns, dates=dates_arr, **costs)

    strategy = run(preds[primary])
    bh = buy_and_hold(asset_returns, dates=dates_arr, **costs)
    baselines = {k: run(v) for k, v in preds.items() if k != primary}

    # forecast tests: the primary model against every other forecast and the zero forecast
    others = {short_name(k): v for k, v in preds.items() if k != primary}
    others.setdefault("zero", _zero_forecast(task, n))
    others = {"zero": others.pop("zero"), **others}
    dm = {k: diebold_mariano(y, preds[primary], v, loss=s.dm_loss, h=s.horizon)
          for k, v in others.items()}
    pt = pesaran_timmermann(directions(y, task), directions(preds[primary], task))
    hit = hit_rate_test(y, preds[primary], task)
    bench = y_benchmark if y_benchmark is not None else preds.get(f"{BASELINE_PREFIX}mean")
    metrics = {k: forecast_metrics(y, v, bench, task) for k, v in preds.items()}
    r2 = metrics[primary]["r2_oos"]

    # significance, counting the tries
    net = strategy.net_returns
    peers = None if peer_net_returns is None else np.asarray(peer_net_returns, dtype=np.float64)
    if peers is not None:
        peers = peers[:, None] if peers.ndim == 1 else peers
        if peers.shape[0] != n:
            raise DataError(f"peer_net_returns has {peers.shape[0]} rows, expected {n}")
    n_trials, ts, floor = _trial_inputs(strategy.net.sharpe, peers, seed_sharpes, trials,
                                        trial_sharpes, s.risk_free)
    dsr = deflated_sharpe_ratio(net, trials=n_trials, trial_sharpes=ts, risk_free=s.risk_free,
                                floor_at_null=floor)
    boot = dict(reps=s.bootstrap_reps, block=s.block_length, seed=s.seed)
    s_ci = sharpe_ci(net, risk_free=s.risk_free, level=s.ci_level, **boot)
    e_ci = excess_return_ci(net, bh.net_returns, level=s.ci_level, **boot)
    candidates = net[:, None] if peers is None else np.column_stack([net, peers])
    spa = spa_test(candidates, bh.net_returns, **boot)
    pbo = probability_of_backtest_overfitting(candidates, seed=s.seed)
    seeds = None if seed_sharpes is None else seed_spread(seed_sharpes)

    verdict = decide(
        n_days=n, sharpe_net=strategy.net.sharpe, buy_hold_sharpe=bh.net.sharpe,
        net_pnl=strategy.net.total_return, dm_p_vs_zero=dm["zero"].pvalue, dsr=dsr.dsr,
        trials=dsr.trials, spa_p=spa.pvalue, spa_models=spa.n_models,
        hit_rate=hit.hit_rate, hit_rate_p=hit.pvalue, pt_p=pt.pvalue,
        thresholds=s.thresholds, min_test_days=s.min_test_days, model_metrics=metrics,
    )
    return Evaluation(
        dates=dates_arr, task=task, primary=primary, settings=s, y_true=y, predictions=preds,
        strategy=strategy, buy_hold=bh, baselines=baselines,
        break_even_bps=break_even_cost(strategy, bh), dm=dm, pt=pt, hit=hit, r2_oos=r2,
        model_metrics=metrics, sharpe_test=sharpe_tstat(net, s.risk_free), dsr=dsr,
        sharpe_ci=s_ci, excess_ci=e_ci, spa=spa, pbo=pbo, seeds=seeds, verdict=verdict,
    )
