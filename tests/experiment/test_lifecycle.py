"""The write side of the ledger: queued runs, claims, heartbeats, bulk storage."""

import datetime as dt
import os
import subprocess
import sys

import pandas as pd
import pytest
import sqlalchemy as sa

from lstm_madness.data import schema
from lstm_madness.data.db import make_engine
from lstm_madness.data.store import init_db
from lstm_madness.errors import RunError
from lstm_madness.experiment.config import load_config
from lstm_madness.store.lifecycle import (
    STALE_AFTER,
    Heartbeat,
    claim_run,
    claim_runs,
    create_runs,
    fail_runs,
    finish_run,
    mark_stale_runs,
    set_objectives,
)
from lstm_madness.store.predictions import (
    completed_folds_of,
    load_predictions,
    record_folds,
    save_folds,
)
from lstm_madness.store.runs import get_run, objectives, utcnow

runs = schema.runs


@pytest.fixture
def engine(db_url):
    engine = make_engine(db_url)
    init_db(engine)
    yield engine
    engine.dispose()


def _set(engine, run_id, **values):
    with engine.begin() as conn:
        conn.execute(runs.update().where(runs.c.id == run_id).values(**values))


def _sweep(engine) -> int:
    with engine.begin() as conn:
        return int(
            conn.execute(
                schema.sweeps.insert().values(
                    config_json="{}",
                    space_json="{}",
                    engine="local",
                    created_at=utcnow(),
                )
            ).inserted_primary_key[0]
        )


def test_create_runs_registers_queued_runs_in_order_with_their_primary_model(engine):
    configs = [load_config(None, [f"train.seed={s}", "model.kind=gru"]) for s in range(3)]
    ids = create_runs(engine, configs, names=["a", "b", "c"])
    rows = [get_run(engine, i) for i in ids]
    assert [r.seed for r in rows] == [0, 1, 2] and [r.name for r in rows] == ["a", "b", "c"]
    assert {r.status for r in rows} == {"queued"}
    assert {(r.kind, r.primary_model) for r in rows} == {("trained", "gru")}


def test_queued_runs_of_a_live_driver_are_never_stale(engine):
    sweep_id = _sweep(engine)
    config = load_config()
    mine, other_host, dead_sweep, dead_driver = create_runs(engine, [config] * 4, sweep_id=sweep_id)
    old = utcnow() - 2 * STALE_AFTER
    _set(engine, other_host, host="elsewhere", heartbeat_at=old)  # a member trains: alive
    _set(engine, dead_driver, pid=2**22 + 7)  # the driver that registered it is gone
    assert mark_stale_runs(engine) == [dead_driver]
    assert get_run(engine, mine).status == "queued"
    assert get_run(engine, other_host).status == "queued"
    # on another host, a queued run dies with its sweep: no member has beaten for long
    _set(engine, dead_sweep, host="elsewhere", heartbeat_at=old)
    for run_id in (mine, other_host):
        _set(engine, run_id, heartbeat_at=old)
    assert sorted(mark_stale_runs(engine)) == [other_host, dead_sweep]
    assert get_run(engine, mine).status == "queued"


def test_the_executing_process_claims_the_run_and_owns_its_liveness(engine, db_url):
    (run_id,) = create_runs(engine, [load_config()])
    code = (
        "import sys; from lstm_madness.data.db import make_engine; "
        "from lstm_madness.store.lifecycle import claim_runs; "
        "claim_runs(make_engine(sys.argv[1]), [int(sys.argv[2])])"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    child = subprocess.run(
        [sys.executable, "-c", code, db_url, str(run_id)], env=env, capture_output=True
    )
    assert child.returncode == 0, child.stderr.decode()
    run = get_run(engine, run_id)
    assert run.status == "running" and run.pid != os.getpid()
    # the worker is gone: its run is stale although this process (the driver) lives
    assert mark_stale_runs(engine) == [run_id]


def test_claims_are_all_or_nothing(engine):
    a, b = create_runs(engine, [load_config()] * 2)
    claim_runs(engine, [a])
    with pytest.raises(RunError, match=f"run {a} is running"):
        claim_runs(engine, [a, b])
    assert get_run(engine, b).status == "queued"
    claim_runs(engine, [a, b], expect=("queued", "running"))
    finish_run(engine, a, "failed", error="boom")
    claim_run(engine, a)  # --resume
    assert get_run(engine, a).error is None


def test_heartbeats_are_rate_limited(engine):
    (run_id,) = create_runs(engine, [load_config()], status="running")
    old = utcnow() - dt.timedelta(hours=1)
    _set(engine, run_id, heartbeat_at=old)
    Heartbeat(engine, [run_id], every_s=3600)()
    beat = get_run(engine, run_id).heartbeat_at
    assert beat.replace(tzinfo=None) == old.replace(tzinfo=None)
    Heartbeat(engine, [run_id], every_s=0)()
    beat = get_run(engine, run_id).heartbeat_at
    assert beat.replace(tzinfo=None) > old.replace(tzinfo=None)


def test_fail_runs_leaves_finished_runs_alone(engine):
    done, busy, waiting = create_runs(engine, [load_config()] * 3, status="running")
    _set(engine, waiting, status="queued")
    finish_run(engine, done, "succeeded", summary={"x": 1})
    assert sorted(fail_runs(engine, [done, busy, waiting], "sweep stopped")) == [
        busy,
        waiting,
    ]
    assert get_run(engine, done).status == "succeeded"
    assert get_run(engine, busy).error == "sweep stopped"


def test_objectives_are_stored_and_nan_is_null(engine):
    a, b = create_runs(engine, [load_config()] * 2, status="running")
    set_objectives(engine, {a: 0.25, b: float("nan")})
    assert objectives(engine, [a, b]) == {a: 0.25, b: None}


def test_save_folds_stores_many_runs_in_one_transaction(engine):
    a, b = create_runs(engine, [load_config()] * 2, status="running")
    table = pd.DataFrame(
        [
            dict(
                fold=k,
                train_start=dt.date(2001, 1, 2),
                train_end=dt.date(2001, 6, 29),
                test_start=dt.date(2001, 7, 2 + 7 * k),
                test_end=dt.date(2001, 7, 6 + 7 * k),
                n_train=100,
                n_test=5,
            )
            for k in (0, 1)
        ]
    )
    record_folds(engine, [a, b], table)
    record_folds(engine, [a, b], table)  # resume: already stored
    frame = pd.DataFrame(
        {
            "model": "lstm",
            "split": "test",
            "date": pd.bdate_range("2001-07-02", periods=5),
            "symbol": "XLF",
            "y_true": 0.01,
            "y_pred": [0.1, 0.2, 0.3, 0.4, 0.5],
            "realized": 0.01,
        }
    )
    save_folds(engine, [(a, 0, frame), (b, 0, frame), (b, 1, frame.assign(y_pred=1.0))])
    save_folds(engine, [(b, 1, frame)])  # replaced, not duplicated
    assert completed_folds_of(engine, [a, b]) == {a: {0}, b: {0, 1}}
    assert len(load_predictions(engine, b)) == 10
    assert load_predictions(engine, b)["y_pred"].max() == 0.5
    with engine.connect() as conn:
        n_folds = conn.execute(sa.select(sa.func.count()).select_from(schema.folds))
        assert n_folds.scalar_one() == 4
