"""The full evaluation of one single-asset run: backtest, forecast tests, significance and
the verdict.

:func:`evaluate` is what the experiment engine calls with the stored test predictions of
one run; the result, :class:`~lstm_madness.evaluation.judgement.Evaluation`, keeps the
daily series for the report and turns into the JSON of ``madness run --json`` with
:meth:`~lstm_madness.evaluation.judgement.Evaluation.to_json`. What is particular to one
asset is here (its :class:`~lstm_madness.evaluation.judgement.Strategy`: the position
rule's book and buy-and-hold; its
:class:`~lstm_madness.evaluation.judgement.ForecastTests`); the significance and the
verdict are :func:`~lstm_madness.evaluation.judgement.judge`'s, shared with the universe
study (:mod:`lstm_madness.evaluation.universe_study`).

Alignment: ``predictions[name][i]`` is dated ``dates[i]`` (made at that close), and
``asset_returns[i]`` is the target's simple return from close ``dates[i]`` to the next
close, i.e. what the position decided at ``dates[i]`` earns. ``y_true[i]`` is the label
that prediction forecasts (a return, or the 0/1 up label for classification).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Hashable, Mapping, MutableMapping
from typing import Any

import numpy as np
import pandas as pd

from lstm_madness.errors import ConfigError, DataError
from lstm_madness.evaluation.backtest import (
    TASKS,
    BacktestResult,
    break_even_cost,
    break_even_vs_benchmark,
    buy_and_hold,
)
from lstm_madness.evaluation.evidence import (
    TrialEvidence,
    deflated_sharpes,
    own_trial_set,
    trial_evidence,
)
from lstm_madness.evaluation.forecast_tests import (
    DMResult,
    diebold_mariano,
    directions,
    hit_rate_test,
    pesaran_timmermann,
)
from lstm_madness.evaluation.judgement import (
    BASELINE_PREFIX,
    Evaluation,
    ForecastTests,
    Strategy,
    judge,
    short_name,
)
from lstm_madness.evaluation.metrics import direction_hits, forecast_metrics
from lstm_madness.evaluation.settings import EvaluationSettings
from lstm_madness.jsonable import jsonable

__all__ = [
    "DIRECTION_BENCHMARKS",
    "Evaluation",
    "EvaluationSettings",
    "TrialEvidence",
    "deflated_sharpes",
    "direction_calls",
    "direction_tests",
    "evaluate",
    "jsonable",
    "short_name",
    "test_frame",
    "trades",
    "trial_evidence",
]


#: The settings of :func:`evaluate` when none are given.
DEFAULT_SETTINGS = EvaluationSettings()

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
    settings: EvaluationSettings = DEFAULT_SETTINGS,
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
    dates, asset_returns, y_true : ndarray of shape (n_days,)
        Test dates (any type :class:`pandas.Timestamp` accepts); the target's simple return
        from close ``dates[i]`` to the next close; the labels forecast (returns, or 0/1).
    predictions : mapping of name to ndarray of shape (n_days,)
        ``"lstm"``, ``"baseline:zero"``, ...; every non-primary entry is backtested with the
        same rule and compared with ``primary`` by Diebold–Mariano.
    task : {"regression", "classification"}
    primary : str, default "lstm"
    settings : EvaluationSettings
    trial_set, trial_position : TrialEvidence and int, optional
        The trial set's evidence (:func:`trial_evidence`, computed once for all its
        members: ``N``, ``V``, the mean correlation, SPA, StepM and PBO) and this run's
        column in it (the earlier identical member's when it was merged as a duplicate).
    trials, trial_sharpes, peer_net_returns : optional
        Without ``trial_set``: ``N`` (never below the strategies visible here); the
        annualized net Sharpe ratios of all the trials, this run's included (their
        variance is the DSR's ``V``; default: this run's and its peers'); the daily net
        returns ``(n_days, n_peers)`` of the other runs on these dates (SPA, StepM, PBO).
    seed_sharpes : ndarray, optional
        Annualized net Sharpe ratios of other seeds of this configuration (spread report).
    y_benchmark : ndarray of shape (n_days,), optional
        Historical-mean forecast for the Campbell–Thompson R²_oos; defaults to
        ``predictions["baseline:mean"]`` when present, else R²_oos is ``None``.
    memo : dict, optional
        Shared by the evaluations of one pass: buy-and-hold and each non-primary
        forecast's backtest and metrics are computed once for identical inputs (the same
        bytes of predictions, returns and dates, the same settings), as for the baselines
        that the runs of one data group share.
    """
    n = _check_inputs(dates, asset_returns, y_true, predictions, task, primary)
    dates_arr = np.asarray(dates)
    y = np.asarray(y_true, dtype=np.float64)
    preds = {k: np.asarray(v, dtype=np.float64) for k, v in predictions.items()}
    strategy = _strategy(preds, asset_returns, dates_arr, task, primary, settings, memo)
    tests = _forecast_tests(y, preds, task, primary, settings, y_benchmark, memo)
    if trial_set is None:
        trial_set = _alone(strategy, settings, n, trials, trial_sharpes, peer_net_returns)
        trial_position = 0
    return judge(
        strategy,
        tests,
        dates=dates_arr,
        task=task,
        primary=primary,
        settings=settings,
        y_true=y,
        predictions=preds,
        trial_set=trial_set,
        trial_position=trial_position,
        seed_sharpes=seed_sharpes,
    )


def _alone(
    strategy: Strategy,
    settings: EvaluationSettings,
    n: int,
    trials: int,
    trial_sharpes: np.ndarray | None,
    peer_net_returns: np.ndarray | None,
) -> TrialEvidence:
    """The evidence of a run judged without its trial set, with the peers it is given."""
    peers = None if peer_net_returns is None else np.asarray(peer_net_returns, dtype=np.float64)
    if peers is not None:
        peers = peers[:, None] if peers.ndim == 1 else peers
        if peers.shape[0] != n:
            raise DataError(f"peer_net_returns has {peers.shape[0]} rows, expected {n}")
    return own_trial_set(
        strategy.book.net_returns,
        strategy.buy_hold.net_returns,
        settings,
        trials=trials,
        trial_sharpes=trial_sharpes,
        peers=peers,
    )


def _strategy(
    preds: Mapping[str, np.ndarray],
    asset_returns: np.ndarray,
    dates: np.ndarray,
    task: str,
    primary: str,
    settings: EvaluationSettings,
    memo: MutableMapping[Hashable, Any] | None,
) -> Strategy:
    """The primary model's backtest under the settings' rule, buy-and-hold's and every
    other forecast's (those two memoized on their inputs' bytes)."""
    s = settings
    costs = dict(cost_bps=s.cost_bps, slippage_bps=s.slippage_bps, risk_free=s.risk_free)

    def run(pred: np.ndarray) -> BacktestResult:
        return s.backtest(pred, asset_returns, task, dates=dates)

    market = _digest(asset_returns, dates)
    book = run(preds[primary])
    bh = _memoized(
        memo,
        ("buy_and_hold", market, tuple(costs.items())),
        lambda: buy_and_hold(asset_returns, dates=dates, **costs),
    )
    baselines = {
        k: _memoized(memo, ("backtest", s, task, market, _digest(v)), lambda v=v: run(v))
        for k, v in preds.items()
        if k != primary
    }
    return Strategy(book, bh, baselines, break_even_cost(book), break_even_vs_benchmark(book, bh))


def _forecast_tests(
    y: np.ndarray,
    preds: Mapping[str, np.ndarray],
    task: str,
    primary: str,
    settings: EvaluationSettings,
    y_benchmark: np.ndarray | None,
    memo: MutableMapping[Hashable, Any] | None,
) -> ForecastTests:
    """The primary model against every other forecast and the zero forecast (a direction
    forecast also against always-up, its verdict's benchmark), its direction tests, and
    every model's metrics (the non-primary ones memoized)."""
    s, n, own = settings, len(y), preds[primary]
    others = {short_name(k): v for k, v in preds.items() if k != primary}
    others.setdefault("zero", _zero_forecast(task, n))
    if task == "classification":
        others.setdefault("always_up", np.ones(n))
    others = {"zero": others.pop("zero"), **others}
    dm = {k: diebold_mariano(y, own, v, loss=s.dm_loss, h=s.horizon) for k, v in others.items()}
    direction_dm = direction_tests(y, own, others, s.horizon) if task == "classification" else {}
    called = np.isfinite(direction_hits(y, own, task))
    pt = pesaran_timmermann(directions(y[called], task), directions(own[called], task))
    hit = hit_rate_test(y, own, task)
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
    return ForecastTests(dm, pt, hit, metrics[primary]["r2_oos"], metrics, direction_dm)


# ---------------------------------------------------------------------- stored rows


def test_frame(predictions: pd.DataFrame) -> pd.DataFrame:
    """Stored test rows (columns date, model, y_pred, y_true, realized) as one wide frame:
    index date; columns y_true, realized and one per model (sorted by name). Where a date
    repeats, its first row counts."""
    dates, day = np.unique(predictions["date"].to_numpy(), return_inverse=True)
    code, models = pd.factorize(predictions["model"], sort=True)
    first = np.full(len(dates), len(predictions))
    np.minimum.at(first, day, np.arange(len(predictions)))
    wide = np.full((len(dates), len(models)), np.nan)
    reverse = slice(None, None, -1)  # so that the first row of a (date, model) wins
    wide[day[reverse], code[reverse]] = predictions["y_pred"].to_numpy(dtype=float)[reverse]
    columns = {
        "y_true": predictions["y_true"].to_numpy(dtype=float)[first],
        "realized": predictions["realized"].to_numpy(dtype=float)[first],
    }
    columns.update({str(name): wide[:, j] for j, name in enumerate(models)})
    return pd.DataFrame(columns, index=pd.DatetimeIndex(dates, name="date"))


def trades(predictions: pd.DataFrame, settings: EvaluationSettings, task: str) -> pd.DataFrame:
    """Stored test rows with each model's ``position`` (held from the close of ``date`` to
    the next close), ``gross_return`` (position × realized) and ``net_return`` after
    costs: every model backtested over its dates under ``settings``, as in its summary."""
    parts = []
    for _name, rows in predictions.groupby("model", sort=True):
        rows = rows.sort_values("date")
        result = settings.backtest(rows["y_pred"].to_numpy(), rows["realized"].to_numpy(), task)
        parts.append(
            rows.assign(
                position=result.positions,
                gross_return=result.gross_returns,
                net_return=result.net_returns,
            )
        )
    return pd.concat(parts, ignore_index=True)
