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
   With ``engine_name="ray"`` each fold group (a :class:`Period`) is a Ray task doing
   exactly that (:func:`train_period`); this process keeps the rest of the list.
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
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa

from lstm_madness.data.db import make_engine
from lstm_madness.data.initdb import store_errors
from lstm_madness.data.store import init_db
from lstm_madness.errors import ConfigError, RunError
from lstm_madness.experiment import distributed, failures
from lstm_madness.experiment.config import ExperimentConfig, from_dict
from lstm_madness.experiment.failures import RunInterrupted, signals_raise  # noqa: F401
from lstm_madness.experiment.finish import finish_runs
from lstm_madness.experiment.kinds import StudyKind, study_kind
from lstm_madness.experiment.limits import network_memory
from lstm_madness.experiment.plan import DataGroup, fold_groups, plan_runs, training_jobs
from lstm_madness.experiment.timings import Timings
from lstm_madness.models.lstm import LSTMForecaster, fit_forecasters
from lstm_madness.models.protocol import resolve_device
from lstm_madness.models.training import resolve_trainer
from lstm_madness.store import faults, lifecycle
from lstm_madness.store import predictions as stored
from lstm_madness.store.runs import get_runs

#: progress(event, **info): "fold" (fold, n_folds) before training fold ``fold`` (and with
#: fold = n_folds at the end; on Ray: fold = the folds stored so far, at the start and as
#: each fold group is stored); "epoch" (epoch, epochs, active, models), not on Ray:
#: after each epoch of a (batched) training call, how many of its models still train;
#: "group" (done, groups) after each data group is trained and stored
Progress = Callable[..., None]

#: Where a batch trains: ``local`` (this process) or ``ray`` (a fold group per Ray task)
ENGINES = ("local", "ray")


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
        cell=m.kind,
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
    """Fit ``estimators`` (one per job: config index, data with ``windows_train``, ``y_train``
    and ``windows_test``) in one :func:`~lstm_madness.models.lstm.fit_forecasters` call, then
    :func:`record_and_predict`. ``beat()`` runs after every epoch (the rate-limited
    heartbeat of the runs)."""
    epochs = configs[jobs[0][0]].train.epochs

    def callback(epoch: int, active: int) -> None:
        beat()
        if progress is not None:
            progress("epoch", epoch=epoch, epochs=epochs, active=active, models=len(jobs))

    start = time.perf_counter()
    data = [(a.windows_train, a.y_train) for _, a in jobs]
    fit_forecasters(estimators, data, progress=callback)
    return record_and_predict(estimators, jobs, configs, timings, time.perf_counter() - start)


def record_and_predict(
    estimators: Sequence[Any],
    jobs: Sequence[tuple[int, Any]],
    configs: Sequence[ExperimentConfig],
    timings: Sequence[Timings],
    elapsed: float,
) -> list[np.ndarray]:
    """After ``estimators`` were fitted on ``jobs`` (config index, fold arrays with
    ``y_train`` and ``windows_test``) in ``elapsed`` seconds: give each run its share of the time
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
        predictions.append(np.asarray(estimator.predict(arrays.windows_test), dtype=np.float64))
        timings[c].predict_s += time.perf_counter() - start
    return predictions


@dataclass(frozen=True)
class Period:
    """One fold group of a data group, trained and stored together (one Ray task with
    ``--engine ray``): its folds, those each member (config index) has stored already,
    and whether the members' baselines are stored once, in the first member's rows."""

    group: DataGroup
    folds: tuple[Any, ...]
    done: Mapping[int, frozenset[int]]
    shared: bool

    def todo(self) -> list[Any]:
        """Its folds that some member has not stored yet."""
        members = self.group.members
        return [f for f in self.folds if any(f.index not in self.done[i] for i in members)]


def _open_data_group(
    engine: sa.Engine,
    group: DataGroup,
    configs: Sequence[ExperimentConfig],
    run_ids: Sequence[int],
) -> tuple[StudyKind, Any, int, list[Period]]:
    """What the process that owns a data group's runs does before they train, whatever
    the engine: load the data, plan and record the folds, read which are stored (on
    resume), let the first member's rows hold the baselines (a fresh group of a kind
    whose baselines are the same for every member; a resumed run keeps its own) and cut
    the fold groups. Returns the kind, the data, the number of folds and the periods."""
    members = list(group.members)
    first = configs[members[0]]
    kind = study_kind(first)
    faults.reached("loading")
    study = kind.load(engine, first)
    plan = kind.plan_folds(study, first)
    ids = [run_ids[i] for i in members]
    stored.record_folds(engine, ids, plan.table)
    completed = stored.completed_folds_of(engine, ids)
    done = {i: frozenset(completed[run_ids[i]]) for i in members}
    shared = kind.shares_baselines and len(members) > 1 and not any(done.values())
    if shared:
        stored.share_baselines(engine, run_ids[members[0]], ids)
    folds = list(plan.folds)
    positions = fold_groups(
        [configs[i] for i in members], list(plan.table["n_train"]), plan.n_features
    )
    periods = [Period(group, tuple(folds[k] for k in p), done, shared) for p in positions]
    return kind, study, len(folds), periods


def _train_period(
    engine: sa.Engine,
    kind: StudyKind,
    study: Any,
    period: Period,
    configs: Sequence[ExperimentConfig],
    run_ids: Sequence[int],
    timings: Sequence[Timings],
    progress: Progress | None,
    beat: Callable[[], None],
) -> None:
    """Train a period's folds not stored yet and store every member's predictions of them
    in one transaction: the kind builds each fold's samples, fits its baselines (once for
    the data group, each member timed with its share) and makes the rows to store; the
    networks of each shape group train as batched calls. Each run's timings of the period
    are added to ``timings`` and stored with its first fold of the period, for a
    later ``--resume`` to report (:func:`_carry_stored_timings`)."""
    todo = period.todo()
    if not todo:
        return
    owner = period.group.members[0]
    faults.reached("training")
    mine, base_mine = [Timings() for _ in configs], Timings()
    data = {f.index: kind.fold_data(study, f) for f in todo}
    # once per data group and fold: every member stores these same predictions
    base = {k: kind.fit_baselines(configs[owner], d, base_mine) for k, d in data.items()}
    items: list[tuple[int, int, pd.DataFrame]] = []
    for shape in period.group.shapes:
        for job in training_jobs(configs, shape, list(data), period.done):
            jobs = [(i, data[k]) for i, k in job]
            nets = _train_networks(kind, configs, jobs, mine, progress, beat)
            for (i, k), y_pred in zip(job, nets, strict=True):
                models = {configs[i].model.kind: y_pred}
                if i == owner or not period.shared:
                    models.update(base[k].predictions)
                items.append((i, k, kind.rows(configs[i], data[k], models, base[k].keep)))
    del data, base  # the fold group's samples, freed before the next is built
    for i in period.group.members:  # each run's share of the baselines fitted once
        mine[i].merge(base_mine.share(len(period.group.members)))
    first = {run_ids[i]: (i, k) for i, k, _ in sorted(items, key=lambda t: -t[1])}  # 1st fold

    def records() -> dict[tuple[int, int], str]:
        return {(run, k): mine[i].to_record() for run, (i, k) in first.items()}

    start = time.perf_counter()
    faults.reached("storing", engine)
    stored.save_folds(engine, [(run_ids[i], k, frame) for i, k, frame in items], records())
    elapsed = time.perf_counter() - start
    for i, _, _ in items:
        mine[i].store_s += elapsed / max(1, len(items))
    stored.save_timings(engine, records())  # now with the time the store took
    for i in period.group.members:
        timings[i].merge(mine[i])
    beat()


def _carry_stored_timings(
    engine: sa.Engine, group: DataGroup, run_ids: Sequence[int], timings: Sequence[Timings]
) -> None:
    """A resumed run starts from the timings stored with its completed fold groups, so
    that its summary covers every fold (``folds_before_resume`` says how many)."""
    ids = [run_ids[i] for i in group.members]
    records = stored.stored_timings(engine, ids)
    completed = stored.completed_folds_of(engine, ids)
    for i in group.members:
        for text in records[run_ids[i]]:
            timings[i].merge(Timings.from_record(text))
        timings[i].earlier_folds += len(completed[run_ids[i]])


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
    ``configs``, ``run_ids`` and ``timings``) in this process, period after period."""
    kind, study, n_folds, periods = _open_data_group(engine, group, configs, run_ids)
    _carry_stored_timings(engine, group, run_ids, timings)
    for period in periods:
        if progress is not None:
            progress("fold", fold=period.folds[0].index, n_folds=n_folds)
        _train_period(engine, kind, study, period, configs, run_ids, timings, progress, beat)
    if progress is not None:
        progress("fold", fold=n_folds, n_folds=n_folds)


def _train_data_group_on_ray(
    engine: sa.Engine,
    group: DataGroup,
    configs: Sequence[ExperimentConfig],
    run_ids: Sequence[int],
    timings: Sequence[Timings],
    beat: lifecycle.Heartbeat,
    progress: Progress | None,
    db_url: str,
) -> None:
    """:func:`_train_data_group` with each period not stored yet as a Ray task
    (:func:`train_period`), all submitted at once, reading the data loaded here from Ray's
    object store. This process keeps the runs (and their heartbeats while it waits) and
    records the folds; the tasks' timings are merged in fold order, so the runs' figures
    are a local run's."""
    _, study, n_folds, periods = _open_data_group(engine, group, configs, run_ids)
    _carry_stored_timings(engine, group, run_ids, timings)
    study = distributed.put(study)  # once, for every task
    todo = [p for p in periods if p.todo()]
    n_done = n_folds - sum(len(p.folds) for p in todo)
    if progress is not None:
        progress("fold", fold=n_done, n_folds=n_folds)

    def period_stored(k: int, _result: Any) -> None:
        nonlocal n_done
        n_done += len(todo[k].folds)
        if progress is not None:
            progress("fold", fold=n_done, n_folds=n_folds)

    calls = [(db_url, configs, run_ids, period, study) for period in todo]
    results = distributed.run_tasks(train_period, calls, poll=beat, on_result=period_stored)
    for run_timings in results:
        for mine, theirs in zip(timings, run_timings, strict=True):
            mine.merge(theirs)


def train_period(
    db_url: str,
    configs: Sequence[ExperimentConfig],
    run_ids: Sequence[int],
    period: Period,
    study: Any,
) -> list[Timings]:
    """Body of a Ray task: one period of a data group's runs (``study``: the group's data),
    trained and stored as the local loop does it, by a worker that opens the store at
    ``db_url``. Returns each config's timings (its share of the baselines included)."""
    engine = make_engine(db_url)
    try:
        kind = study_kind(configs[period.group.members[0]])
        timings = [Timings() for _ in configs]
        beat = lifecycle.Heartbeat(engine, [run_ids[i] for i in period.group.members])
        _train_period(engine, kind, study, period, configs, run_ids, timings, None, beat)
        return timings
    finally:
        engine.dispose()


def check_runs(engine: sa.Engine, configs: Sequence[ExperimentConfig]) -> None:
    """Everything that can refuse ``configs`` before they train, without reading prices:
    the network's settings (trainer, device) of each config and, once per data group, the
    stored symbols and days the data needs and the memory it implies (the study kind's
    :meth:`~lstm_madness.experiment.kinds.base.StudyKind.check`, of the member with the
    largest network: the rest of a data group's config is shared). Raises what training
    would (``ConfigError``, ``DataError``), so a refused batch registers nothing.
    """
    for device in dict.fromkeys(c.train.device for c in configs):
        resolve_device(device)
    for config in configs:
        lstm_estimator(config)
    for group in plan_runs(configs).groups:
        largest = max((configs[i] for i in group.members), key=network_memory)
        study_kind(largest).check(engine, largest)


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


@store_errors("use")  # a store that fails before the runs are claimed: one line
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
    engine_name: str = "local",
    address: str | None = None,
) -> list[dict[str, Any]]:
    """Train, predict, store and evaluate several runs; return their summaries.

    With ``resume`` (run ids of failed runs) their stored configs are used and only the
    folds not yet completed are trained (a run resumes per fold group). ``existing``
    names ``queued`` runs (registered by a sweep driver) to carry out. Either way this
    process claims the runs. With ``evaluate=False`` the runs are trained and stored but
    left ``running`` for the caller to evaluate (:func:`finish_runs`); the return value
    is then ``[{"run_id", "timings"}]``. ``finished``, if given, receives each finished
    run's :class:`~lstm_madness.experiment.summary.RunEvaluation` by id.

    ``engine_name="ray"`` trains each fold group not stored yet as a Ray task
    (:func:`train_period`) on the cluster at ``address`` or a local instance
    (:mod:`~lstm_madness.experiment.distributed`); this process still owns the runs,
    records their folds and evaluates them once every fold group is stored. The stored
    predictions are those of ``"local"``.

    New and resumed runs are checked before they are registered or claimed
    (:func:`check_runs`): unknown symbols, no data in the period or a config that cannot
    train raise and leave nothing behind in the ledger, as does a Ray that cannot be
    connected to. Runs that raise later (or are interrupted by SIGINT or SIGTERM) are
    marked ``failed`` with the reason before the exception propagates; a failed run keeps
    the predictions of its completed folds for ``--resume`` but is never summarized or
    counted as a trial. A store that fails (full, read-only, its connection lost) raises
    :class:`~lstm_madness.errors.StoreError` saying so; a failure it could not record is
    recorded later (:func:`~lstm_madness.experiment.failures.record`).
    """
    db_url = _ray_url(engine, engine_name)
    if db_url:
        distributed.check_address(address)  # fails fast, before anything is registered
    if evaluate:
        load_evaluation()
    init_db(engine)
    lifecycle.mark_stale_runs(engine)
    ray = distributed.ray_session(address) if db_url else contextlib.nullcontext()
    # Ray first, connected before anything is registered: its start installs a SIGTERM
    # handler, replaced by ours while the runs are claimed, trained and finished
    with ray, signals_raise():
        configs, run_ids = _claim(engine, configs, names, sweep_id, resume, existing)
        wall = time.perf_counter()
        timings = [Timings() for _ in configs]
        try:
            _train_groups(engine, configs, run_ids, timings, progress, db_url)
            trained = {
                run_id: t.to_dict(time.perf_counter() - wall, batch_runs=len(run_ids))
                for run_id, t in zip(run_ids, timings, strict=True)
            }
            if not evaluate:
                return [{"run_id": run_id, "timings": trained[run_id]} for run_id in run_ids]
            faults.reached("evaluating")
            return finish_runs(
                engine, run_ids, timings=trained, trials=trials, started=wall, finished=finished
            )
        except BaseException as exc:
            error = failures.record(engine, run_ids, exc)
            if error is None:
                raise
            raise error from exc


def _ray_url(engine: sa.Engine, engine_name: str) -> str | None:
    """None for ``"local"``; for ``"ray"`` the URL its workers open the store with.
    Checked before anything is registered: the engine's name, Ray installed, a database
    other processes can open."""
    if engine_name not in ENGINES:
        raise ConfigError(f"--engine must be one of {', '.join(ENGINES)}, got {engine_name!r}")
    if engine_name == "local":
        return None
    url = distributed.worker_url(engine)
    distributed.ray_module()
    return url


def _train_groups(
    engine: sa.Engine,
    configs: Sequence[ExperimentConfig],
    run_ids: Sequence[int],
    timings: Sequence[Timings],
    progress: Progress | None,
    db_url: str | None,
) -> None:
    """Train and store every data group of the plan, here or (``db_url``: the workers'
    store) as Ray tasks; store each run's objective and trainer once its group is done."""
    plan = plan_runs(configs)
    beat = lifecycle.Heartbeat(engine, run_ids)
    for k, group in enumerate(plan.groups):
        if db_url is None:
            _train_data_group(engine, group, configs, run_ids, timings, beat, progress)
        else:
            _train_data_group_on_ray(
                engine, group, configs, run_ids, timings, beat, progress, db_url
            )
        kinds = {i: configs[i].model.kind for i in group.members}
        lifecycle.set_objectives(
            engine,
            {run_ids[i]: timings[i].objective(kind) for i, kind in kinds.items()},
            {run_ids[i]: timings[i].trainer(kind) for i, kind in kinds.items()},
        )
        if progress is not None:
            progress("group", done=k + 1, groups=len(plan.groups))


def load_evaluation() -> None:
    """Import the evaluation stack (``arch``, ``scipy.stats``: about a second) before a job
    that will evaluate registers runs or trains: a broken install fails it at once, not
    after its training, and the import counts as start-up, not as evaluation."""
    import lstm_madness.experiment.summary  # noqa: F401


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
    engine_name: str = "local",
    address: str | None = None,
) -> dict[str, Any]:
    """One run (see :func:`run_experiments`); returns the ``madness run --json`` summary.
    ``engine_name="ray"`` trains its fold groups as Ray tasks (at ``address``, else on a
    local instance)."""
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
        engine_name=engine_name,
        address=address,
    )
    return summary
