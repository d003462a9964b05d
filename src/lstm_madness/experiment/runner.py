"""Run experiments: folds → train the networks and the baselines → store → summarize.

:func:`run_experiments` takes several configs at once (a sweep's grid points and seeds).
Configs that read the same data and cut the same folds share one data load; configs whose
networks also share a shape are trained together, all their folds and seeds as one batched
computation (:mod:`lstm_madness.models.batched`). Each config is still its own run, with
its own seed, weights, early stopping and stored predictions.

Predictions are written fold by fold (each fold in one transaction, then marked
completed), so a failed walk-forward run resumes from its last completed fold with
identical results: each fold's models are seeded by the config alone.
"""

from __future__ import annotations

import contextlib
import signal
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa

from lstm_madness.data.store import init_db
from lstm_madness.errors import DataError, RunError
from lstm_madness.experiment import registry
from lstm_madness.experiment.config import ExperimentConfig, from_dict
from lstm_madness.experiment.dataset import (
    FoldArrays,
    StudyData,
    fold_arrays,
    load_study_data,
    rows_in,
)
from lstm_madness.experiment.folds import Fold, plan_folds
from lstm_madness.models.baselines import make_baseline
from lstm_madness.models.lstm import LSTMForecaster

#: progress(event, **info): "fold" (fold, n_folds) before training fold ``fold`` (and with
#: fold = n_folds at the end); "epoch" (epoch, epochs, active, models):
#: after each epoch of a (batched) training call, how many of its models still train
Progress = Callable[..., None]


class RunInterrupted(RunError):
    """The run was stopped by a signal (SIGTERM, SIGINT)."""


@dataclass
class Timings:
    """Wall time spent training and predicting, in seconds, per model."""

    train_s: float = 0.0
    predict_s: float = 0.0
    models: dict[str, dict[str, float]] = field(default_factory=dict)

    def add(
        self,
        model: str,
        *,
        train_s: float = 0.0,
        n_train: int = 0,
        epochs: int = 0,
        val_loss: float | None = None,
    ) -> None:
        entry = self.models.setdefault(model, {"train_s": 0.0, "n_train": 0, "epochs_run": 0})
        entry["train_s"] += train_s
        entry["n_train"] += n_train
        entry["epochs_run"] += epochs
        if val_loss is not None:
            entry.setdefault("val_losses", []).append(val_loss)

    def to_dict(self, total_s: float) -> dict[str, Any]:
        models = {}
        for name, entry in self.models.items():
            entry = dict(entry)
            losses = entry.pop("val_losses", None)
            if losses:
                entry["val_loss"] = float(np.mean(losses))
            models[name] = entry
        return {
            "total_s": total_s,
            "train_s": self.train_s,
            "predict_s": self.predict_s,
            "models": models,
        }


@contextlib.contextmanager
def _signals_raise() -> Iterator[None]:
    """Turn SIGTERM and SIGINT into :class:`RunInterrupted` while runs are in progress."""

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
    """The configured, unfitted network estimator."""
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
        trainer=t.trainer,
        progress=progress,
    )


def _data_key(config: ExperimentConfig) -> str:
    """Configs with equal keys read the same data and cut the same folds."""
    d = config.to_dict()
    return repr((d["data"], d["target"], d["split"], d["model"]["time_steps"]))


def _shape_key(config: ExperimentConfig) -> str:
    """Configs with equal keys can be trained as one batched computation."""
    d = config.to_dict()
    train = {k: v for k, v in d["train"].items() if k != "seed"}
    return repr((_data_key(config), d["model"], train))


def _baseline_predictions(
    config: ExperimentConfig, data: StudyData, arrays: FoldArrays, timings: Timings
) -> dict[str, np.ndarray]:
    out = {}
    for name in config.baseline_names:
        kwargs: dict[str, Any] = {}
        if name == "persistence":
            column = data.target_column
            kwargs = dict(
                column=column,
                center=float(arrays.scaler.mean_[column]),
                scale=float(arrays.scaler.scale_[column]),
            )
        start = time.perf_counter()
        model = make_baseline(name, config.task, **kwargs).fit(arrays.X_train, arrays.y_train)
        out[f"baseline:{name}"] = model.predict(arrays.X_test)
        timings.add(
            f"baseline:{name}", train_s=time.perf_counter() - start, n_train=len(arrays.y_train)
        )
    return out


def _train_networks(
    configs: Sequence[ExperimentConfig],
    jobs: Sequence[tuple[int, FoldArrays]],
    timings: Sequence[Timings],
    progress: Progress | None,
) -> list[np.ndarray]:
    """Fit one network per job (config index, fold arrays); return test predictions."""
    from lstm_madness.models.group import fit_forecasters

    estimators = [lstm_estimator(configs[c]) for c, _ in jobs]
    callback = None
    if progress is not None:
        epochs = configs[0].train.epochs

        def callback(epoch: int, active: int) -> None:
            progress("epoch", epoch=epoch, epochs=epochs, active=active, models=len(jobs))

    start = time.perf_counter()
    fit_forecasters(estimators, [(a.X_train, a.y_train) for _, a in jobs], progress=callback)
    elapsed = time.perf_counter() - start
    total_rows = sum(len(a.y_train) for _, a in jobs)
    predictions = []
    for estimator, (c, arrays) in zip(estimators, jobs, strict=True):
        share = elapsed * len(arrays.y_train) / total_rows
        timings[c].add(
            configs[c].model.kind,
            train_s=share,
            n_train=len(arrays.y_train),
            epochs=estimator.epochs_run_,
            val_loss=estimator.best_val_loss_,
        )
        timings[c].models[configs[c].model.kind]["trainer"] = estimator.trainer_
        timings[c].train_s += share
        start = time.perf_counter()
        predictions.append(estimator.predict(arrays.X_test))
        timings[c].predict_s += time.perf_counter() - start
    return predictions


def _fold_frame(
    symbol: str, arrays: FoldArrays, predictions: dict[str, np.ndarray]
) -> pd.DataFrame:
    return pd.concat(
        [
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
        ],
        ignore_index=True,
    )


def _fold_table(data: StudyData, folds: Sequence[Fold]) -> tuple[list[Fold], pd.DataFrame]:
    """Folds that hold samples, and their table (dates of the first and last samples)."""
    dates = data.dates
    kept, rows = [], []
    for fold in folds:
        train, test = rows_in(data, fold.train), rows_in(data, fold.test)
        if len(test) == 0:  # e.g. a last block of days without a known label
            continue
        if len(train) < 20:
            raise DataError(
                f"fold {fold.index} has {len(train)} complete training samples; "
                "start the test period later (split.*) or use more data"
            )
        kept.append(fold)
        rows.append(
            {
                "fold": fold.index,
                "train_start": dates[train[0]].date(),
                "train_end": dates[train[-1]].date(),
                "test_start": dates[test[0]].date(),
                "test_end": dates[test[-1]].date(),
                "n_train": len(train),
                "n_test": len(test),
            }
        )
    return kept, pd.DataFrame(rows)


def _fold_groups(
    configs: Sequence[ExperimentConfig], folds: Sequence[Fold], table: pd.DataFrame, n_features: int
) -> list[list[Fold]]:
    """Consecutive folds trained together: all of them while their float32 training
    windows (for every config of the group) fit in ``train.batch_memory_mb``; one at a
    time when ``train.batch_folds`` is off."""
    if not all(c.train.batch_folds for c in configs):
        return [[f] for f in folds]
    budget = min(c.train.batch_memory_mb for c in configs) * 2**20
    per_row = 4 * configs[0].model.time_steps * n_features * len(configs)
    groups: list[list[Fold]] = [[]]
    used = 0
    for fold, n_train in zip(folds, table["n_train"], strict=True):
        size = int(n_train) * per_row
        if groups[-1] and used + size > budget:
            groups.append([])
            used = 0
        groups[-1].append(fold)
        used += size
    return groups


def _run_data_group(
    engine: sa.Engine,
    configs: list[ExperimentConfig],
    run_ids: list[int],
    timings: list[Timings],
    progress: Progress | None,
) -> None:
    """Train and store every fold of runs that share data and folds."""
    data = load_study_data(engine, configs[0])
    planned = plan_folds(len(data.dates), configs[0].split, configs[0].target.horizon)
    folds, table = _fold_table(data, planned)
    done = []
    for run_id in run_ids:
        registry.record_folds(engine, run_id, table)
        done.append(registry.completed_folds(engine, run_id))
    shapes: dict[str, list[int]] = {}
    for i, config in enumerate(configs):
        shapes.setdefault(_shape_key(config), []).append(i)
    fold_groups = _fold_groups(configs, folds, table, n_features=data.features.shape[1])
    symbol = configs[0].data.target
    for group in fold_groups:
        if progress is not None:
            progress("fold", fold=group[0].index, n_folds=len(folds))
        todo = [f for f in group if any(f.index not in d for d in done)]
        if not todo:
            continue
        arrays = {f.index: fold_arrays(data, f.train, f.test) for f in todo}
        baselines = {
            f.index: _baseline_predictions(configs[0], data, arrays[f.index], timings[0])
            for f in todo
        }
        for members in shapes.values():
            jobs = [(i, f.index) for i in members for f in todo if f.index not in done[i]]
            size = max(1, configs[members[0]].train.batch_models)
            for start in range(0, len(jobs), size):
                chunk = jobs[start : start + size]
                nets = _train_networks(
                    configs, [(i, arrays[k]) for i, k in chunk], timings, progress
                )
                for (i, k), y_pred in zip(chunk, nets, strict=True):
                    frame = _fold_frame(symbol, arrays[k], {"lstm": y_pred, **baselines[k]})
                    registry.save_fold(engine, run_ids[i], k, frame)
    if progress is not None:
        progress("fold", fold=len(folds), n_folds=len(folds))
    for t in timings[1:]:  # baselines were fitted once for the whole group
        for name, entry in timings[0].models.items():
            if name.startswith("baseline:"):
                t.models[name] = dict(entry)


def run_experiments(
    engine: sa.Engine,
    configs: Sequence[ExperimentConfig],
    *,
    names: Sequence[str | None] | None = None,
    sweep_id: int | None = None,
    resume: Sequence[int] | None = None,
    existing: Sequence[int] | None = None,
    progress: Progress | None = None,
    trials: int | None = None,
) -> list[dict[str, Any]]:
    """Train, predict, store and summarize several runs; return their summaries.

    With ``resume`` (run ids of failed runs) their stored configs are used and only the
    folds not yet completed are trained. ``existing`` names runs already created (status
    ``running``, e.g. by a sweep that registers all its points first) to carry out.
    Runs that raise (or are interrupted by SIGINT or
    SIGTERM) are marked ``failed`` with the reason before the exception propagates; a
    failed run keeps the predictions of its completed folds for ``--resume`` but is never
    summarized or counted as a trial.
    """
    from lstm_madness.experiment.summary import summarize_run

    init_db(engine)
    registry.mark_stale_runs(engine)
    if existing:
        run_ids = list(existing)
        configs = [from_dict(registry.get_run(engine, run_id)["config"]) for run_id in run_ids]
    elif resume:
        configs, run_ids = [], list(resume)
        for run_id in run_ids:
            run = registry.get_run(engine, run_id)
            if run["status"] != "failed":
                raise RunError(f"run {run_id} is {run['status']}; only failed runs resume")
            configs.append(from_dict(run["config"]))
            registry.claim_run(engine, run_id)
    else:
        configs = list(configs)
        names = list(names or [None] * len(configs))
        run_ids = [
            registry.create_run(engine, c, name=n, sweep_id=sweep_id)
            for c, n in zip(configs, names, strict=True)
        ]
    finished: set[int] = set()
    wall = time.perf_counter()
    timings = [Timings() for _ in configs]
    summaries = []
    try:
        with _signals_raise():
            groups: dict[str, list[int]] = {}
            for i, config in enumerate(configs):
                groups.setdefault(_data_key(config), []).append(i)
            for members in groups.values():
                _run_data_group(
                    engine,
                    [configs[i] for i in members],
                    [run_ids[i] for i in members],
                    [timings[i] for i in members],
                    progress,
                )
            total = time.perf_counter() - wall
            for run_id, timing in zip(run_ids, timings, strict=True):
                pending = len(run_ids) - len(finished) - 1  # batch runs not yet counted
                summary = summarize_run(
                    engine,
                    run_id,
                    timings=timing.to_dict(total),
                    trials=trials,
                    extra_trials=pending,
                )
                summary["status"] = "succeeded"
                registry.finish_run(engine, run_id, "succeeded", summary=summary)
                finished.add(run_id)
                summaries.append(summary)
            return summaries
    except BaseException as exc:
        reason = (
            "interrupted (Ctrl-C)"
            if isinstance(exc, KeyboardInterrupt)
            else f"{type(exc).__name__}: {exc}"
        )
        for run_id in run_ids:
            if run_id not in finished:
                with contextlib.suppress(Exception):
                    registry.finish_run(engine, run_id, "failed", error=reason)
        raise


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
    """One run (see :func:`run_experiments`); returns the ``madness run --json`` summary."""
    if resume is None and config is None:
        raise RunError("run_experiment needs a config or resume=RUN_ID")
    (summary,) = run_experiments(
        engine,
        [config] if config is not None else [],
        names=[name],
        sweep_id=sweep_id,
        resume=[resume] if resume is not None else None,
        progress=progress,
        trials=trials,
    )
    return summary
