"""A run's summary, computed from what is stored: out-of-sample metrics per model, the
backtest, forecast tests, significance that counts the registry's trials, and the verdict.

Everything here reads the predictions table, never in-memory state of the run, so
``madness runs show`` and ``madness report`` see exactly what ``madness run`` printed.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa

from lstm_madness.errors import RunError
from lstm_madness.evaluation.backtest import backtest, positions_from_predictions
from lstm_madness.evaluation.metrics import forecast_metrics
from lstm_madness.evaluation.study import Evaluation, EvaluationSettings, evaluate
from lstm_madness.experiment import registry
from lstm_madness.experiment.config import ExperimentConfig, from_dict

PRIMARY = "lstm"


def evaluation_settings(config: ExperimentConfig) -> EvaluationSettings:
    """The evaluation settings of ``config``'s [backtest] and [evaluation] tables."""
    return EvaluationSettings.from_config(config, seed=config.train.seed)


def strategy_net_returns(
    predictions: np.ndarray, realized: np.ndarray, task: str, settings: EvaluationSettings
) -> np.ndarray:
    """Daily net returns of trading ``predictions`` under ``settings`` (see backtest)."""
    positions = positions_from_predictions(
        predictions,
        task=task,
        rule=settings.rule,
        threshold=settings.threshold,
        cap=settings.cap,
        scale=settings.scale,
    )
    return backtest(
        positions,
        realized,
        cost_bps=settings.cost_bps,
        slippage_bps=settings.slippage_bps,
        risk_free=settings.risk_free,
    ).net_returns


def test_frame(predictions: pd.DataFrame) -> pd.DataFrame:
    """Wide test-period frame: index date; columns y_true, realized and one per model."""
    wide = predictions.pivot_table(index="date", columns="model", values="y_pred", aggfunc="first")
    first = predictions.drop_duplicates("date").set_index("date").sort_index()
    wide.insert(0, "realized", first["realized"])
    wide.insert(0, "y_true", first["y_true"])
    wide.columns.name = None
    return wide.sort_index()


def model_metrics(frame: pd.DataFrame, task: str) -> dict[str, dict[str, float | None]]:
    """Out-of-sample MSE, MAE, R²_oos (vs the training-window mean), hit rate, n per model."""
    models = [c for c in frame.columns if c not in ("y_true", "realized")]
    benchmark = frame["baseline:mean"].to_numpy() if "baseline:mean" in frame else None
    y = frame["y_true"].to_numpy()
    out = {}
    for name in models:
        pred = frame[name].to_numpy()
        out[name] = forecast_metrics(y, pred, benchmark, task)
    return out


def strategy_returns_matrix(
    engine: sa.Engine, run_ids: list[int], settings: EvaluationSettings | None = None
) -> pd.DataFrame:
    """Daily net returns of each run's network strategy (columns: run ids; index: dates).

    Each run is backtested under ``settings`` (default: its own config's), so peers are
    compared under identical costs and position rules.
    """
    configs, frame = registry.load_model_predictions(engine, run_ids, PRIMARY)
    columns = {}
    for run_id, rows in frame.groupby("run_id", sort=False):
        config = from_dict(configs[int(run_id)])
        net = strategy_net_returns(
            rows["y_pred"].to_numpy(),
            rows["realized"].to_numpy(),
            config.task,
            settings or evaluation_settings(config),
        )
        columns[int(run_id)] = pd.Series(net, index=pd.DatetimeIndex(rows["date"]))
    return pd.DataFrame(columns, columns=[int(i) for i in run_ids if int(i) in columns])


@dataclass(frozen=True)
class RunEvaluation:
    """A stored run, evaluated: its summary dict, the Evaluation object and test frame."""

    summary: dict[str, Any]
    evaluation: Evaluation
    frame: pd.DataFrame  #: test period: y_true, realized and one column per model
    config: ExperimentConfig


def summarize_run(
    engine: sa.Engine,
    run_id: int,
    *,
    timings: dict | None = None,
    trials: int | None = None,
    extra_trials: int = 0,
) -> dict[str, Any]:
    """The summary dict of ``madness run --json`` / ``madness runs show --json``."""
    return evaluate_run(
        engine, run_id, timings=timings, trials=trials, extra_trials=extra_trials
    ).summary


def evaluate_run(
    engine: sa.Engine,
    run_id: int,
    *,
    timings: dict | None = None,
    trials: int | None = None,
    extra_trials: int = 0,
) -> RunEvaluation:
    """Metrics, backtest, tests, significance and verdict of a stored run.

    The number of trials behind the Deflated Sharpe Ratio is ``trials`` if given, else
    ``evaluation.trials`` of the config if non-zero, else the succeeded runs in the
    registry with the same target and test period, plus this run and the runs still in
    progress beside it: ``extra_trials`` (its batch) or, for a sweep, the sweep's runs
    that are still running on the same target and test period.
    """
    run = registry.get_run(engine, run_id)
    config = from_dict(run["config"])
    primary = registry.primary_model(run)
    predictions = registry.load_predictions(engine, run_id)
    if predictions.empty:
        raise RunError(f"run {run_id} has no stored test predictions")
    frame = test_frame(predictions)
    metrics = model_metrics(frame, config.task)
    previous = (run.get("summary") or {}).get("models", {})
    timings = timings or (run.get("summary") or {}).get("timings") or {}
    per_model = timings.get("models", {})
    for name, values in metrics.items():
        key = config.model.kind if name == primary else name
        values.update(
            {
                k: per_model.get(key, previous.get(name, {})).get(k)
                for k in ("n_train", "epochs_run", "train_s")
            }
        )
    registry.save_metrics(
        engine,
        run_id,
        pd.DataFrame(
            [
                {"model": m, "split": "test", "name": k, "value": v}
                for m, vals in metrics.items()
                for k, v in vals.items()
                if isinstance(v, int | float) and v is not None
            ]
        ),
    )

    settings = evaluation_settings(config)
    test_start, test_end = frame.index[0].date(), frame.index[-1].date()
    peers = registry.peer_runs(
        engine, target=config.data.target, test_start=test_start, test_end=test_end, exclude=run_id
    )
    peer_matrix = (
        strategy_returns_matrix(engine, [int(i) for i in peers["id"]], settings)
        .reindex(frame.index)
        .to_numpy()
        if len(peers)
        else None
    )
    peer_sharpes = np.array([_sharpe_of(row) for _, row in peers.iterrows()], dtype=float)
    family = peers[peers["family_hash"] == config.hash(without_seed=True)]
    pending = max(extra_trials, registry.pending_trials(engine, run_id))
    n_trials = trials or config.evaluation.trials or (len(peers) + 1 + pending)
    models = {name: frame[name].to_numpy() for name in metrics}
    evaluation = evaluate(
        dates=frame.index.to_numpy(),
        asset_returns=frame["realized"].to_numpy(),
        y_true=frame["y_true"].to_numpy(),
        predictions=models,
        task=config.task,
        primary=primary,
        settings=settings,
        trials=n_trials,
        trial_sharpes=peer_sharpes[np.isfinite(peer_sharpes)] if len(peer_sharpes) else None,
        peer_net_returns=peer_matrix,
        seed_sharpes=np.array([_sharpe_of(row) for _, row in family.iterrows()], dtype=float)
        if len(family)
        else None,
        y_benchmark=models.get("baseline:mean"),
    )
    summary: dict[str, Any] = {
        "run_id": run_id,
        "name": run["name"],
        "status": run["status"],
        "target": config.data.target,
        "n_test": len(frame),
        "test_start": test_start.isoformat(),
        "test_end": test_end.isoformat(),
        "models": metrics,
        "timings": timings,
    }
    summary.update(evaluation.to_json())
    return RunEvaluation(summary, evaluation, frame, config)


def evaluate_runs(
    engine: sa.Engine,
    run_ids: Sequence[int],
    *,
    trials: int | None = None,
    timings: Mapping[int, dict] | None = None,
) -> dict[int, RunEvaluation]:
    """Evaluate stored runs that finished training together (a batch or a sweep).

    Each run counts the others of ``run_ids`` on its target and test period as trials
    (they are not succeeded yet). ``timings[run_id]`` is stored in its summary.
    """
    timings = timings or {}
    rows = {int(i): registry.get_run(engine, int(i)) for i in run_ids}
    periods = {i: (r["target"], r["test_start"], r["test_end"]) for i, r in rows.items()}
    out = {}
    for run_id in rows:
        batch = sum(1 for j in rows if j != run_id and periods[j] == periods[run_id])
        out[run_id] = evaluate_run(
            engine, run_id, timings=timings.get(run_id), trials=trials, extra_trials=batch
        )
    return out


def _sharpe_of(row: pd.Series) -> float:
    summary = json.loads(row["summary_json"]) if row["summary_json"] else {}
    value = (summary.get("backtest") or {}).get("sharpe_net")
    return float(value) if value is not None else float("nan")
