"""``engine_name="ray"``: a run's fold groups as Ray tasks on a local instance (one per
module, bound to 127.0.0.1), compared with the same runs trained in-process.

Outside CI a missing Ray skips these tests with the reason; with ``CI=true`` it fails them.
"""

import os
import time
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa

from lstm_madness.data.db import make_engine
from lstm_madness.errors import ConfigError
from lstm_madness.experiment import distributed
from lstm_madness.experiment.config import load_config
from lstm_madness.experiment.runner import run_experiment
from lstm_madness.store.predictions import completed_folds, load_folds, load_predictions
from lstm_madness.store.runs import get_run, list_runs

IN_CI = os.environ.get("CI", "").lower() == "true"
#: a walk-forward study of 4 folds, one per fold group, so one Ray task each; 1 epoch
TINY = [
    "data.target=SYN",
    "model.units=[4]",
    "model.time_steps=5",
    "train.epochs=1",
    "train.batch_size=32",
    "train.batch_folds=false",
    "split.scheme=walk_forward",
    "split.initial_train_days=200",
    "split.retrain_every_days=70",
    "evaluation.bootstrap_reps=50",
]


@pytest.fixture(scope="module")
def ray_local():
    """One local Ray instance for the module: 2 CPUs, its node on 127.0.0.1, no
    dashboard (the settings of :func:`~lstm_madness.experiment.distributed.ray_session`,
    which then leaves it running for the next test)."""
    try:
        import ray
    except ImportError:
        if IN_CI:
            pytest.fail("CI=true but Ray is not installed (pip install -e '.[dev]')")
        pytest.skip("Ray is not installed (pip install 'lstm-madness[ray]')")
    with distributed.ray_session(num_cpus=2):
        yield ray
    assert not ray.is_initialized()


@pytest.fixture
def engine(db_url, write_returns, ar1_returns):
    engine = make_engine(db_url)
    write_returns(engine, "SYN", ar1_returns(420, phi=0.3, seed=3))
    yield engine
    engine.dispose()


def _predictions(engine: sa.Engine, run_id: int) -> pd.DataFrame:
    frame = load_predictions(engine, int(run_id))
    return frame.sort_values(["model", "date", "symbol"]).reset_index(drop=True)


def test_a_ray_run_stores_the_predictions_of_a_local_run(engine, ray_local):
    config = load_config(None, TINY)
    local = run_experiment(engine, config)
    remote = run_experiment(engine, config, engine_name="ray")
    assert remote["status"] == "succeeded"
    assert len(load_folds(engine, remote["run_id"])) == 4
    a, b = _predictions(engine, local["run_id"]), _predictions(engine, remote["run_id"])
    assert len(a) > 0 and set(a["model"]) == set(b["model"])  # the network and baselines
    pd.testing.assert_frame_equal(a, b, check_exact=True)  # bit for bit

    def untimed(summary):
        return {m: {k: v for k, v in d.items() if k != "train_s"} for m, d in summary.items()}

    assert untimed(remote["models"]) == untimed(local["models"])  # every metric, but times
    # the runs' figures merge the tasks' timings in fold order: those of a local run
    fig = ("n_folds", "val_loss", "n_train_total", "epochs_run_total", "trainer")
    lstm_a, lstm_b = local["timings"]["models"]["lstm"], remote["timings"]["models"]["lstm"]
    assert {k: lstm_a[k] for k in fig} == {k: lstm_b[k] for k in fig}
    run_a, run_b = get_run(engine, local["run_id"]), get_run(engine, remote["run_id"])
    assert run_b.objective == run_a.objective and run_b.trainer == run_a.trainer


def test_an_interrupted_ray_run_resumes_on_ray_from_its_stored_fold_groups(
    sqlite_url, write_returns, ar1_returns, ray_local, monkeypatch
):
    """Ctrl-C once the first fold group is stored: the run fails, the tasks still running
    are cancelled (here they would first sleep for a minute), and ``--resume`` on Ray
    trains only the fold groups not stored, to the predictions of an uninterrupted run."""
    from lstm_madness.experiment import runner

    engine = make_engine(sqlite_url)
    write_returns(engine, "SYN", ar1_returns(420, phi=0.3, seed=3))
    config = load_config(None, TINY)
    train_period = runner.train_period

    def first_fold_first(db_url, configs, run_ids, period, study):  # pickled by value
        if period.folds[0].index > 0:
            time.sleep(60)
        return train_period(db_url, configs, run_ids, period, study)

    def stop_after_the_first_stored(event, **info):
        if event == "fold" and info["fold"] > 0:
            raise KeyboardInterrupt

    with monkeypatch.context() as patched, pytest.raises(KeyboardInterrupt):
        patched.setattr(runner, "train_period", first_fold_first)
        run_experiment(engine, config, engine_name="ray", progress=stop_after_the_first_stored)
    (failed,) = (int(i) for i in list_runs(engine)["id"])
    run = get_run(engine, failed)
    assert run.status == "failed" and run.error == "interrupted (Ctrl-C)"
    assert run.summary is None
    stored = completed_folds(engine, failed)
    assert stored == {0}

    folds: list[int] = []
    resumed = run_experiment(
        engine,
        resume=failed,
        engine_name="ray",
        progress=lambda event, **info: folds.append(info["fold"]) if event == "fold" else None,
    )
    assert resumed["run_id"] == failed and resumed["status"] == "succeeded"
    assert folds[0] == len(stored) and folds[-1] == 4  # stored fold groups are skipped
    fresh = run_experiment(engine, config)
    pd.testing.assert_frame_equal(
        _predictions(engine, failed), _predictions(engine, fresh["run_id"]), check_exact=True
    )
    engine.dispose()


def test_a_task_that_raises_fails_the_run_with_its_error(
    sqlite_url, write_returns, ar1_returns, ray_local, monkeypatch
):
    """A fold group whose task raises in its worker (here the last one, as a network that
    diverges would) fails the run with the task's own error; fold groups stored by the
    other tasks stay for ``--resume``."""
    from lstm_madness.experiment import runner

    train_period = runner.train_period

    def diverging(db_url, configs, run_ids, period, study):  # pickled by value
        if period.folds[0].index == 3:
            raise RuntimeError("the network diverged")
        return train_period(db_url, configs, run_ids, period, study)

    monkeypatch.setattr(runner, "train_period", diverging)
    engine = make_engine(sqlite_url)
    write_returns(engine, "SYN", ar1_returns(420, phi=0.3, seed=3))
    with pytest.raises(RuntimeError, match="the network diverged"):
        run_experiment(engine, load_config(None, TINY), engine_name="ray")
    (run_id,) = (int(i) for i in list_runs(engine)["id"])
    run = get_run(engine, run_id)
    assert run.status == "failed" and run.summary is None
    assert run.error.startswith("RuntimeError: the network diverged")
    assert 3 not in completed_folds(engine, run_id)
    engine.dispose()


def test_an_error_while_tasks_run_cancels_the_outstanding_ones(ray_local):
    """A failed task (or Ctrl-C, SIGTERM) raises at once, and the tasks still running are
    cancelled: both CPUs of the instance are free again long before the sleeper's 60 s."""

    def task(k: int) -> int:
        if k == 0:
            time.sleep(60)
        else:
            time.sleep(0.5)
            raise ValueError(f"task {k} failed")
        return k

    start = time.perf_counter()
    with pytest.raises(ValueError, match="task 1 failed"):
        distributed.run_tasks(task, [(0,), (1,)])
    both = ray_local.remote(num_cpus=2)(lambda: "free")
    assert ray_local.get(both.remote(), timeout=30) == "free"
    assert time.perf_counter() - start < 40

    def interrupt() -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        distributed.run_tasks(task, [(0,)], poll=interrupt)
    assert ray_local.get(both.remote(), timeout=30) == "free"


def test_the_workers_open_a_database_other_processes_can(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert distributed.worker_url("sqlite:///./madness.db") == (
        f"sqlite:///{Path(tmp_path, 'madness.db').resolve()}"
    )
    pg = "postgresql+psycopg://user:secret@db:5432/test?options=-csearch_path%3Dt_1"
    assert distributed.worker_url(pg) == pg  # with its password: the workers need it
    for url in ("sqlite://", "sqlite:///:memory:", "sqlite:///file:m?mode=memory&uri=true"):
        with pytest.raises(ConfigError, match="in-memory SQLite"):
            distributed.worker_url(url)


def test_an_unknown_engine_or_an_in_memory_store_is_refused_before_registering(engine):
    config = load_config(None, TINY)
    with pytest.raises(ConfigError, match="--engine must be one of local, ray"):
        run_experiment(engine, config, engine_name="spark")
    assert list_runs(engine).empty
    memory = make_engine("sqlite://")
    with pytest.raises(ConfigError, match="in-memory SQLite"):
        run_experiment(memory, config, engine_name="ray")
    memory.dispose()
