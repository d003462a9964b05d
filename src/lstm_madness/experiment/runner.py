"""Run experiments: plan → load data → baselines → train → store → evaluate → finish.

:func:`run_experiments` carries out several configs at once (a sweep's grid points and
seeds), in the order the plan (:mod:`lstm_madness.experiment.plan`) gives:

1. **Claim** the runs: this process (host, pid) owns them and sends heartbeats while it
   trains (:mod:`lstm_madness.store.lifecycle`).
2. Per **data group** (configs sharing data, folds and baselines): load the data once.
   What differs between timing one asset and a universe's cross-section (the data, the
   folds' samples, the baselines, the rows stored) is the group's study kind's
   (:func:`lstm_madness.experiment.kinds.study_kind`); the loop below is one for both.
3. Per **fold group**: fit the baselines once per fold for the whole data group, train the
   networks of each shape group as batched computations, then store every member's
   predictions of the fold group in one transaction (the folds are then completed).
4. Store each run's **objective** (mean validation loss of its network) as soon as its
   training ends, so a search (Optuna) can use it without waiting for evaluation.
5. **Evaluate** all runs in one pass (:func:`lstm_madness.experiment.summary.evaluate_runs`)
   and finish them with their summaries.

Each config is still its own run, with its own seed, weights, early stopping and stored
predictions. A failed run resumes (``--resume``) from its last completed fold group with
identical results: each fold's models are seeded by the config alone.
"""

from __future__ import annotations

import contextlib
import dataclasses
import signal
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa

from lstm_madness.data.store import init_db
from lstm_madness.errors import RunError
from lstm_madness.experiment.config import ExperimentConfig, from_dict
from lstm_madness.experiment.kinds import StudyKind, study_kind
from lstm_madness.experiment.plan import DataGroup, fold_groups, plan_runs, training_jobs
from lstm_madness.models.lstm import LSTMForecaster, fit_forecasters
from lstm_madness.models.protocol import resolve_device
from lstm_madness.models.training import resolve_trainer
from lstm_madness.store import lifecycle
from lstm_madness.store import predictions as stored
from lstm_madness.store.runs import get_runs

#: progress(event, **info): "fold" (fold, n_folds) before training fold ``fold`` (and with
#: fold = n_folds at the end); "epoch" (epoch, epochs, active, models):
#: after each epoch of a (batched) training call, how many of its models still train;
#: "group" (done, groups) after each data group is trained and stored
Progress = Callable[..., None]


class RunInterrupted(RunError):
    """The run was stopped by a signal (SIGTERM, SIGINT)."""


@dataclass
class Timings:
    """Wall time of one run, in seconds: training and predicting (per model), storing its
    predictions and evaluating it. Shared work (a batched training call, one store of a
    fold group, the baselines fitted once for a data group, the evaluation pass) is split
    between runs by their share of it. Per model, the training samples and epochs of each
    fold trained here are kept, to report their mean per fold (see :meth:`to_dict`)."""

    train_s: float = 0.0
    predict_s: float = 0.0
    store_s: float = 0.0
    evaluate_s: float = 0.0
    models: dict[str, dict[str, Any]] = field(default_factory=dict)

    def add(
        self,
        model: str,
        *,
        train_s: float = 0.0,
        n_train: int | None = None,
        epochs: int | None = None,
        val_loss: float | None = None,
        folds: int = 1,
    ) -> None:
        """One fold of ``model`` trained (or ``folds`` folds at once, timed together): its
        seconds, training samples and epochs."""
        entry = self.models.setdefault(model, {"train_s": 0.0, "n_folds": 0})
        entry["train_s"] += train_s
        entry["n_folds"] += folds
        if n_train is not None:
            entry.setdefault("fold_n_train", []).append(int(n_train))
        if epochs is not None:
            entry.setdefault("fold_epochs", []).append(int(epochs))
        if val_loss is not None:
            entry.setdefault("val_losses", []).append(val_loss)

    def objective(self, model: str) -> float | None:
        """Mean validation loss of ``model`` over the folds trained here (None if none)."""
        losses = self.models.get(model, {}).get("val_losses")
        return float(np.mean(losses)) if losses else None

    def trainer(self, model: str) -> str | None:
        """The trainer that fitted ``model`` here (``torch`` / ``batched`` / ``compiled``)."""
        return self.models.get(model, {}).get("trainer")

    def to_dict(self, total_s: float, *, batch_runs: int = 1) -> dict[str, Any]:
        """The run's ``timings``: the stages (``train_s``, ``predict_s``, ``store_s``,
        ``evaluate_s``: this run's share, ``scope`` "run"); ``total_s``, the wall time of
        the training of the ``batch_runs`` runs carried out together (``total_scope``
        "training"; :func:`finish_runs` extends it to the run's finish, "command"); per
        model ``train_s`` (this run's share), ``n_folds`` (folds trained here),
        ``n_train`` and ``epochs_run`` (mean per fold) with ``n_train_total``,
        ``epochs_run_total``, ``epochs_run_min`` and ``epochs_run_max``."""
        models = {}
        for name, entry in self.models.items():
            entry = dict(entry)
            losses = entry.pop("val_losses", None)
            if losses:
                entry["val_loss"] = float(np.mean(losses))
            for key, values in (
                ("n_train", entry.pop("fold_n_train", None)),
                ("epochs_run", entry.pop("fold_epochs", None)),
            ):
                if values:
                    entry[key] = float(np.mean(values))
                    entry[f"{key}_total"] = int(sum(values))
                    if key == "epochs_run":
                        entry["epochs_run_min"], entry["epochs_run_max"] = min(values), max(values)
            models[name] = entry
        return {
            "total_s": total_s,
            "train_s": self.train_s,
            "predict_s": self.predict_s,
            "store_s": self.store_s,
            "evaluate_s": self.evaluate_s,
            "scope": "run",
            "total_scope": "training",
            "batch_runs": batch_runs,
            "models": models,
        }


@contextlib.contextmanager
def signals_raise() -> Iterator[None]:
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
    """The configured, unfitted network estimator; ``train.trainer = "auto"`` is resolved
    here from the whole config (:func:`~lstm_madness.models.training.resolve_trainer`: a
    walk-forward config whose folds train together counts)."""
    m, t = config.model, config.train
    trainer = resolve_trainer(
        t.trainer,
        m.units,
        t.batch_size,
        m.time_steps,
        t.device,
        walk_forward=config.split.scheme == "walk_forward" and t.batch_folds,
    )
    return LSTMForecaster(
        units=m.units,
        time_steps=m.time_steps,
        cell=m.kind,
        dropout=m.dropout,
        task=config.task,
        epochs=t.epochs,
        batch_size=t.batch_size,
        learning_rate=t.learning_rate,
        optimizer=t.optimizer,
        loss=config.loss,
        patience=t.patience,
        validation_fraction=t.validation_fraction,
        validation_gap=config.target.horizon - 1,
        clip_norm=t.clip_norm or None,
        seed=t.seed,
        device=t.device,
        trainer=trainer,
        progress=progress,
    )


def _train_networks(
    kind: StudyKind,
    configs: Sequence[ExperimentConfig],
    jobs: Sequence[tuple[int, Any]],
    timings: Sequence[Timings],
    progress: Progress | None,
    beat: Callable[[], None],
) -> list[np.ndarray]:
    """Fit one network per job (config index, fold data) in one call, each with the
    early-stopping gap of its study ``kind`` (batched networks train together only when
    their gaps agree); return test predictions."""
    estimators = []
    for c, data in jobs:
        estimator = lstm_estimator(configs[c])
        estimator.validation_gap = kind.validation_gap(configs[c], data)
        estimators.append(estimator)
    return fit_and_predict(estimators, jobs, configs, timings, progress, beat)


def fit_and_predict(
    estimators: Sequence[LSTMForecaster],
    jobs: Sequence[tuple[int, Any]],
    configs: Sequence[ExperimentConfig],
    timings: Sequence[Timings],
    progress: Progress | None,
    beat: Callable[[], None],
) -> list[np.ndarray]:
    """Fit ``estimators`` (one per job: config index, data with ``X_train``, ``y_train`` and
    ``X_test``) in one :func:`~lstm_madness.models.lstm.fit_forecasters` call, then
    :func:`record_and_predict`. ``beat()`` runs after every epoch (the rate-limited
    heartbeat of the runs)."""
    epochs = configs[jobs[0][0]].train.epochs

    def callback(epoch: int, active: int) -> None:
        beat()
        if progress is not None:
            progress("epoch", epoch=epoch, epochs=epochs, active=active, models=len(jobs))

    start = time.perf_counter()
    fit_forecasters(estimators, [(a.X_train, a.y_train) for _, a in jobs], progress=callback)
    return record_and_predict(estimators, jobs, configs, timings, time.perf_counter() - start)


def record_and_predict(
    estimators: Sequence[Any],
    jobs: Sequence[tuple[int, Any]],
    configs: Sequence[ExperimentConfig],
    timings: Sequence[Timings],
    elapsed: float,
) -> list[np.ndarray]:
    """After ``estimators`` were fitted on ``jobs`` (config index, fold arrays with
    ``y_train`` and ``X_test``) in ``elapsed`` seconds: give each run its share of the time
    by training rows, with epochs, validation loss and the trainer used; then predict each
    job's test windows, timed. Returns the predictions in job order (float64)."""
    total_rows = sum(len(a.y_train) for _, a in jobs)
    predictions = []
    for estimator, (c, arrays) in zip(estimators, jobs, strict=True):
        kind = configs[c].model.kind
        share = elapsed * len(arrays.y_train) / total_rows
        timings[c].add(
            kind,
            train_s=share,
            n_train=len(arrays.y_train),
            epochs=estimator.epochs_run_,
            val_loss=estimator.best_val_loss_,
        )
        timings[c].models[kind]["trainer"] = estimator.trainer_
        timings[c].train_s += share
        start = time.perf_counter()
        predictions.append(np.asarray(estimator.predict(arrays.X_test), dtype=np.float64))
        timings[c].predict_s += time.perf_counter() - start
    return predictions


def _train_data_group(
    engine: sa.Engine,
    group: DataGroup,
    configs: Sequence[ExperimentConfig],
    run_ids: Sequence[int],
    timings: Sequence[Timings],
    beat: lifecycle.Heartbeat,
    progress: Progress | None,
) -> None:
    """Train and store every fold of the runs of one data group (``group.members`` index
    ``configs``, ``run_ids`` and ``timings``), whatever its study kind: the kind loads the
    data once, cuts the folds, builds each fold's samples, fits its baselines and makes the
    rows to store; the fold groups, batching and storing are this one loop."""
    members = list(group.members)
    first = configs[members[0]]
    kind = study_kind(first)
    study = kind.load(engine, first)
    plan = kind.plan_folds(study, first)
    folds = list(plan.folds)
    ids = [run_ids[i] for i in members]
    stored.record_folds(engine, ids, plan.table)
    completed = stored.completed_folds_of(engine, ids)
    done = {i: completed[run_ids[i]] for i in members}
    # a kind whose baselines' predictions are the same for every member stores one copy,
    # held by the first member's rows (only in a fresh group: a resumed run keeps its own)
    owner = members[0]
    shared = kind.shares_baselines and len(members) > 1 and not any(done.values())
    if shared:
        stored.share_baselines(engine, run_ids[owner], ids)
    baseline_timings = Timings()
    positions = fold_groups(
        [configs[i] for i in members], list(plan.table["n_train"]), plan.n_features
    )
    for position in positions:
        todo = [folds[k] for k in position if any(folds[k].index not in done[i] for i in members)]
        if progress is not None:
            progress("fold", fold=folds[position[0]].index, n_folds=len(folds))
        if not todo:
            continue
        data = {f.index: kind.fold_data(study, f) for f in todo}
        # once per data group and fold: every member stores these same predictions
        baselines = {k: kind.fit_baselines(first, d, baseline_timings) for k, d in data.items()}
        items: list[tuple[int, int, pd.DataFrame]] = []
        for shape in group.shapes:
            for job in training_jobs(configs, shape, list(data), done):
                jobs = [(i, data[k]) for i, k in job]
                nets = _train_networks(kind, configs, jobs, timings, progress, beat)
                for (i, k), y_pred in zip(job, nets, strict=True):
                    models = {configs[i].model.kind: y_pred}
                    if i == owner or not shared:
                        models.update(baselines[k].predictions)
                    items.append((i, k, kind.rows(configs[i], data[k], models, baselines[k].keep)))
        del data, baselines  # the fold group's samples, freed before the next is built
        start = time.perf_counter()
        stored.save_folds(engine, [(run_ids[i], k, frame) for i, k, frame in items])
        elapsed = time.perf_counter() - start
        for i, _, _ in items:
            timings[i].store_s += elapsed / max(1, len(items))
        beat()
    if progress is not None:
        progress("fold", fold=len(folds), n_folds=len(folds))
    for i in members:  # the baselines were fitted once for the whole group: shared
        for name, entry in baseline_timings.models.items():
            timings[i].models[name] = {**entry, "train_s": entry["train_s"] / len(members)}


def check_runs(engine: sa.Engine, configs: Sequence[ExperimentConfig]) -> None:
    """Everything that can refuse ``configs`` before they train, without reading prices:
    the network's settings (trainer, device) of each config and, once per data group, the
    stored symbols and days the data needs (the study kind's
    :meth:`~lstm_madness.experiment.kinds.base.StudyKind.check`). Raises what training
    would (``ConfigError``, ``DataError``), so a refused batch registers nothing.
    """
    for device in dict.fromkeys(c.train.device for c in configs):
        resolve_device(device)
    for config in configs:
        lstm_estimator(config)
    for group in plan_runs(configs).groups:
        first = configs[group.members[0]]
        study_kind(first).check(engine, first)


def _claim(
    engine: sa.Engine,
    configs: Sequence[ExperimentConfig],
    names: Sequence[str | None] | None,
    sweep_id: int | None,
    resume: Sequence[int] | None,
    existing: Sequence[int] | None,
) -> tuple[list[ExperimentConfig], list[int]]:
    """The runs this process carries out, claimed by it: new, resumed or queued ones.

    New and resumed runs are checked first (:func:`check_runs`): a refused one is not
    registered (a resumed one stays failed with its reason). Queued runs were checked by
    the sweep that registered them."""
    if existing or resume:
        run_ids = [int(i) for i in (existing or resume or [])]
        runs = get_runs(engine, run_ids)
        configs = [from_dict(runs[run_id].config) for run_id in run_ids]
        if resume:
            for run_id in run_ids:
                run = runs[run_id]
                if run.status != "failed":
                    raise RunError(f"run {run.id} is {run.status}; only failed runs resume")
            check_runs(engine, configs)
        lifecycle.claim_runs(engine, run_ids, expect=("queued",) if existing else ("failed",))
        if resume:
            stored.own_baselines(engine, run_ids)
        return configs, run_ids
    configs = list(configs)
    check_runs(engine, configs)
    run_ids = lifecycle.create_runs(
        engine, configs, names=names, sweep_id=sweep_id, status="running"
    )
    return configs, run_ids


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
    evaluate: bool = True,
    finished: dict[int, Any] | None = None,
) -> list[dict[str, Any]]:
    """Train, predict, store and evaluate several runs; return their summaries.

    With ``resume`` (run ids of failed runs) their stored configs are used and only the
    folds not yet completed are trained (a run resumes per fold group). ``existing``
    names ``queued`` runs (registered by a sweep driver) to carry out. Either way this
    process claims the runs. With ``evaluate=False`` the runs are trained and stored but
    left ``running`` for the caller to evaluate (:func:`finish_runs`); the return value
    is then ``[{"run_id", "timings"}]``. ``finished``, if given, receives each finished
    run's :class:`~lstm_madness.experiment.summary.RunEvaluation` by id.

    New and resumed runs are checked before they are registered or claimed
    (:func:`check_runs`): unknown symbols, no data in the period or a config that cannot
    train raise and leave nothing behind in the ledger. Runs that raise later (or are
    interrupted by SIGINT or SIGTERM) are marked ``failed`` with the reason before the
    exception propagates; a failed run keeps the predictions of its
    completed folds for ``--resume`` but is never summarized or counted as a trial.
    """
    if evaluate:
        load_evaluation()
    init_db(engine)
    lifecycle.mark_stale_runs(engine)
    configs, run_ids = _claim(engine, configs, names, sweep_id, resume, existing)
    wall = time.perf_counter()
    timings = [Timings() for _ in configs]
    try:
        with signals_raise():
            plan = plan_runs(configs)
            beat = lifecycle.Heartbeat(engine, run_ids)
            for k, group in enumerate(plan.groups):
                _train_data_group(engine, group, configs, run_ids, timings, beat, progress)
                lifecycle.set_objectives(
                    engine,
                    {
                        run_ids[i]: timings[i].objective(configs[i].model.kind)
                        for i in group.members
                    },
                    {run_ids[i]: timings[i].trainer(configs[i].model.kind) for i in group.members},
                )
                if progress is not None:
                    progress("group", done=k + 1, groups=len(plan.groups))
            trained = {
                run_id: t.to_dict(time.perf_counter() - wall, batch_runs=len(run_ids))
                for run_id, t in zip(run_ids, timings, strict=True)
            }
            if not evaluate:
                return [{"run_id": run_id, "timings": trained[run_id]} for run_id in run_ids]
            return finish_runs(
                engine,
                run_ids,
                timings=trained,
                trials=trials,
                started=wall,
                finished=finished,
            )
    except BaseException as exc:
        lifecycle.fail_runs(engine, run_ids, _reason(exc))
        raise


def load_evaluation() -> None:
    """Import the evaluation stack (``arch``, ``scipy.stats``: about a second) before a job
    that will evaluate registers runs or trains: a broken install fails it at once, not
    after its training, and the import counts as start-up, not as evaluation."""
    import lstm_madness.experiment.summary  # noqa: F401


def _reason(exc: BaseException) -> str:
    if isinstance(exc, KeyboardInterrupt):
        return "interrupted (Ctrl-C)"
    return f"{type(exc).__name__}: {exc}"


def finish_runs(
    engine: sa.Engine,
    run_ids: Sequence[int],
    *,
    timings: Mapping[int, dict[str, Any]],
    trials: int | None = None,
    started: float | None = None,
    finished: dict[int, Any] | None = None,
) -> list[dict[str, Any]]:
    """Evaluate trained runs in one pass and mark them ``succeeded`` with their summaries.

    ``timings[run_id]`` is each run's timings dict; its ``evaluate_s`` gets the run's share
    of the pass and ``total_s`` runs until the run is finished when ``started`` (a
    ``time.perf_counter()`` value) is given (``total_scope`` "command": the whole batch,
    from its start to this run's finish). Returns the summaries in the order of
    ``run_ids``; ``finished``, if given, receives each run's finished
    :class:`~lstm_madness.experiment.summary.RunEvaluation` (with that summary) by id.
    """
    from lstm_madness.experiment.summary import evaluate_runs

    ids = [int(i) for i in run_ids]
    start = time.perf_counter()
    evaluations = evaluate_runs(engine, ids, trials=trials, timings=timings)
    share = (time.perf_counter() - start) / max(1, len(ids))
    summaries = []
    for run_id in ids:
        summary = dict(evaluations[run_id].summary)
        times = dict(summary.get("timings") or {})
        times["evaluate_s"] = share
        if started is not None:
            times["total_s"] = time.perf_counter() - started
            times["total_scope"] = "command"
        summary["timings"] = times
        summary["status"] = "succeeded"
        summaries.append(summary)
    lifecycle.finish_with_summaries(engine, {s["run_id"]: s for s in summaries})
    if finished is not None:
        for summary in summaries:
            run_id = int(summary["run_id"])
            run = dataclasses.replace(evaluations[run_id].run, status="succeeded", summary=summary)
            finished[run_id] = dataclasses.replace(evaluations[run_id], summary=summary, run=run)
    if trials is None:
        _prime_summary_cache(engine, summaries, evaluations)
    return summaries


def _prime_summary_cache(
    engine: sa.Engine, summaries: Sequence[Mapping[str, Any]], evaluations: Mapping[int, Any]
) -> None:
    """Cache each finished run's summary as the live one, so the first ``runs show`` after
    a run or a sweep is a cache read. Keyed by the trial set it was evaluated against (not
    the one read now: concurrent runs may have joined it since), so a reader whose trial
    set differs never gets it; a run that counted pending sweep members is left for ``runs
    show`` to evaluate.
    """
    from lstm_madness.experiment import cache

    for s in summaries:
        if (s.get("significance") or {}).get("trials_pending") != 0:
            continue
        evaluated = evaluations[int(s["run_id"])]
        name = cache.summary_key(engine, evaluated.run, evaluated.trial_set, None, "succeeded")
        cache.write("summaries", name, s)


def run_experiment(
    engine: sa.Engine,
    config: ExperimentConfig | None = None,
    *,
    name: str | None = None,
    sweep_id: int | None = None,
    resume: int | None = None,
    progress: Progress | None = None,
    trials: int | None = None,
    finished: dict[int, Any] | None = None,
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
        finished=finished,
    )
    return summary
