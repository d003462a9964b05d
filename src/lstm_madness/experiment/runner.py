"""Run one experiment: folds → train the network and the baselines → store → summarize.

Every prediction is written to the registry fold by fold (each fold in one transaction,
then marked completed), so an interrupted walk-forward run can be resumed from its last
completed fold with identical results: each fold's models are seeded by the config alone.
"""

from __future__ import annotations

import contextlib
import signal
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa

from lstm_madness.data.store import init_db
from lstm_madness.errors import RunError
from lstm_madness.experiment import registry
from lstm_madness.experiment.config import ExperimentConfig, from_dict
from lstm_madness.experiment.dataset import FoldArrays, StudyData, fold_arrays, load_study_data
from lstm_madness.experiment.folds import Fold, plan_folds
from lstm_madness.models.baselines import make_baseline
from lstm_madness.models.lstm import LSTMForecaster

#: progress(event, **info): "fold" (fold, n_folds), "epoch" (fold, epoch, epochs, loss, val)
Progress = Callable[..., None]


class RunInterrupted(RunError):
    """The run was stopped by a signal (SIGTERM, SIGINT)."""


@dataclass
class Timings:
    train_s: float = 0.0
    predict_s: float = 0.0
    per_model: dict[str, dict[str, float]] = field(default_factory=dict)

    def add(self, model: str, *, train_s: float, n_train: int, epochs: int) -> None:
        entry = self.per_model.setdefault(model, {"train_s": 0.0, "n_train": 0, "epochs_run": 0})
        entry["train_s"] += train_s
        entry["n_train"] += n_train
        entry["epochs_run"] += epochs


@contextlib.contextmanager
def _signals_raise() -> Iterator[None]:
    """Turn SIGTERM (and SIGINT) into :class:`RunInterrupted` while a run is in progress."""

    def handler(signum: int, _frame: object) -> None:
        raise RunInterrupted(f"interrupted by {signal.Signals(signum).name}")

    previous = {}
    with contextlib.suppress(ValueError):  # not the main thread: leave handlers alone
        for sig in (signal.SIGTERM, signal.SIGINT):
            previous[sig] = signal.signal(sig, handler)
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def lstm_estimator(config: ExperimentConfig, progress: Callable | None = None) -> LSTMForecaster:
    m, t = config.model, config.train
    return LSTMForecaster(
        units=m.units,
        time_steps=m.time_steps,
        cell=m.kind,
        dropout=m.dropout,
        task=config.task,
        epochs=t.epochs,
        batch_size=t.batch_size,
        learning_rate=t.learning_rate,
        loss=config.loss,
        patience=t.patience,
        validation_fraction=t.validation_fraction,
        validation_gap=config.target.horizon - 1,
        clip_norm=t.clip_norm or None,
        seed=t.seed,
        device=t.device,
        progress=progress,
    )


def _baselines(config: ExperimentConfig, arrays: FoldArrays, target_column: int) -> dict:
    models = {}
    for name in config.baseline_names:
        kwargs: dict[str, Any] = {}
        if name == "persistence":
            kwargs = dict(
                column=target_column,
                center=float(arrays.scaler.mean_[target_column]),
                scale=float(arrays.scaler.scale_[target_column]),
            )
        models[f"baseline:{name}"] = make_baseline(name, config.task, **kwargs)
    return models


def _fold_frame(
    arrays: FoldArrays, symbol: str, predictions: dict[str, np.ndarray]
) -> pd.DataFrame:
    parts = [
        pd.DataFrame(
            {
                "model": name,
                "split": "test",
                "date": arrays.dates_test,
                "symbol": symbol,
                "y_true": arrays.y_test,
                "y_pred": y_pred,
                "realized": arrays.asset_test,
            }
        )
        for name, y_pred in predictions.items()
    ]
    return pd.concat(parts, ignore_index=True)


def _train_fold(
    config: ExperimentConfig,
    data: StudyData,
    fold: Fold,
    arrays: FoldArrays,
    timings: Timings,
    progress: Progress | None,
) -> dict[str, np.ndarray]:
    predictions: dict[str, np.ndarray] = {}
    callback = None
    if progress is not None:

        def callback(epoch: int, loss: float, val: float | None) -> None:
            progress(
                "epoch",
                fold=fold.index,
                epoch=epoch,
                epochs=config.train.epochs,
                loss=loss,
                val=val,
            )

    start = time.perf_counter()
    net = lstm_estimator(config, callback).fit(arrays.X_train, arrays.y_train)
    timings.add(
        config.model.kind,
        train_s=time.perf_counter() - start,
        n_train=len(arrays.y_train),
        epochs=net.epochs_run_,
    )
    timings.train_s += time.perf_counter() - start
    start = time.perf_counter()
    predictions["lstm"] = net.predict(arrays.X_test)
    timings.predict_s += time.perf_counter() - start
    for name, model in _baselines(config, arrays, data.target_column).items():
        start = time.perf_counter()
        predictions[name] = model.fit(arrays.X_train, arrays.y_train).predict(arrays.X_test)
        timings.add(
            name, train_s=time.perf_counter() - start, n_train=len(arrays.y_train), epochs=0
        )
    return predictions


def _fold_table(data: StudyData, folds: list[Fold]) -> pd.DataFrame:
    dates = data.sample_dates
    return pd.DataFrame(
        [
            {
                "fold": f.index,
                "train_start": dates[f.train.start].date(),
                "train_end": dates[f.train.stop - 1].date(),
                "test_start": dates[f.test.start].date(),
                "test_end": dates[f.test.stop - 1].date(),
                "n_train": f.n_train,
                "n_test": f.n_test,
            }
            for f in folds
        ]
    )


def run_experiment(
    engine: sa.Engine,
    config: ExperimentConfig | None = None,
    *,
    name: str | None = None,
    sweep_id: int | None = None,
    resume: int | None = None,
    progress: Progress | None = None,
    trials: int | None = None,
) -> dict[str, Any]:
    """Train, predict, store and summarize one run; return its summary (the JSON of
    ``madness run --json``).

    With ``resume=RUN_ID`` the stored config of that failed run is used and only the folds
    not yet completed are trained. A run that raises (or is interrupted by SIGINT/SIGTERM)
    is marked ``failed`` with the reason before the exception propagates.
    """
    from lstm_madness.experiment.summary import summarize_run

    init_db(engine)
    registry.mark_stale_runs(engine)
    if resume is not None:
        run = registry.get_run(engine, resume)
        if run["status"] != "failed":
            raise RunError(f"run {resume} is {run['status']}; only failed runs can be resumed")
        config = from_dict(run["config"])
        run_id = resume
        registry.claim_run(engine, run_id)
    else:
        if config is None:
            raise RunError("run_experiment needs a config or resume=RUN_ID")
        run_id = registry.create_run(engine, config, name=name, sweep_id=sweep_id)
    wall = time.perf_counter()
    timings = Timings()
    try:
        with _signals_raise():
            data = load_study_data(engine, config)
            folds = plan_folds(len(data.sample_rows), config.split, config.target.horizon)
            registry.record_folds(engine, run_id, _fold_table(data, folds))
            done = registry.completed_folds(engine, run_id)
            for fold in folds:
                if progress is not None:
                    progress("fold", fold=fold.index, n_folds=len(folds))
                if fold.index in done:
                    continue
                arrays = fold_arrays(data, fold.train, fold.test)
                predictions = _train_fold(config, data, fold, arrays, timings, progress)
                registry.save_fold(
                    engine, run_id, fold.index, _fold_frame(arrays, config.data.target, predictions)
                )
            timings_dict = {
                "total_s": time.perf_counter() - wall,
                "train_s": timings.train_s,
                "predict_s": timings.predict_s,
                "models": timings.per_model,
            }
            summary = summarize_run(engine, run_id, timings=timings_dict, trials=trials)
            registry.finish_run(engine, run_id, "succeeded", summary=summary)
            summary["status"] = "succeeded"
            return summary
    except BaseException as exc:
        reason = (
            "interrupted (Ctrl-C)"
            if isinstance(exc, KeyboardInterrupt)
            else (f"{type(exc).__name__}: {exc}")
        )
        with contextlib.suppress(Exception):
            registry.finish_run(engine, run_id, "failed", error=reason)
        raise
