"""The ledger (:mod:`lstm_madness.store`): the run lifecycle, the Run record, stored
predictions and shared baselines, trial sets; on both backends."""

import dataclasses

import pandas as pd
import pytest
import sqlalchemy as sa

from lstm_madness.data import schema
from lstm_madness.data.db import make_engine
from lstm_madness.errors import RunError
from lstm_madness.experiment.config import load_config
from lstm_madness.store import lifecycle, predictions, runs, trials
from lstm_madness.store.runs import Run


@pytest.fixture
def engine(db_url):
    engine = make_engine(db_url)
    schema.all_tables().create_all(engine)
    yield engine
    engine.dispose()


def _fold_table():
    return pd.DataFrame(
        [
            {
                "fold": 0,
                "train_start": pd.Timestamp("2001-01-02").date(),
                "train_end": pd.Timestamp("2001-06-29").date(),
                "test_start": pd.Timestamp("2001-07-02").date(),
                "test_end": pd.Timestamp("2001-07-06").date(),
                "n_train": 100,
                "n_test": 5,
            },
        ]
    )


def _predictions(model="lstm"):
    dates = pd.bdate_range("2001-07-02", periods=5)
    return pd.DataFrame(
        {
            "model": model,
            "split": "test",
            "date": dates,
            "symbol": "XLF",
            "y_true": [0.01, -0.02, 0.003, 0.0, 1e-9],
            "y_pred": [0.1, 0.2, -0.3, 0.4, 0.123456789012345],
            "realized": [0.01, -0.02, 0.003, 0.0, 1e-9],
        }
    )


def test_lifecycle_and_bulk_predictions(engine):
    config = load_config(None, ["data.target=XLF", "train.seed=3"])
    run_id = lifecycle.create_run(engine, config, name="t")
    run = runs.get_run(engine, run_id)
    assert run.status == "running" and run.config == config.to_dict()
    assert run.config_hash == config.hash() and run.seed == 3 and run.name == "t"
    assert (run.kind, run.primary_model, run.summary, run.import_spec) == (
        "trained",
        "lstm",
        None,
        None,
    )
    predictions.record_folds(engine, run_id, _fold_table())
    assert predictions.completed_folds(engine, run_id) == set()
    predictions.save_fold(engine, run_id, 0, pd.concat([_predictions(), _predictions("x")]))
    predictions.save_fold(engine, run_id, 0, _predictions())  # replaced, not duplicated
    assert predictions.completed_folds(engine, run_id) == {0}
    stored = predictions.load_predictions(engine, run_id)
    assert len(stored) == 5 and set(stored["model"]) == {"lstm"}
    assert stored["y_pred"].iloc[-1] == 0.123456789012345  # full precision through COPY
    lifecycle.finish_run(engine, run_id, "succeeded", summary={"x": 1})
    run = runs.get_run(engine, run_id)
    assert run.status == "succeeded" and run.summary == {"x": 1}
    assert run.test_start == pd.Timestamp("2001-07-02").date()
    with engine.connect() as conn:  # finishing stores the per-model test metrics
        assert conn.execute(sa.select(sa.func.count()).select_from(schema.metrics)).scalar() == 0
    # a succeeded run is a trial: deleting it leaves a tombstone with its network's predictions
    predictions.save_fold(engine, run_id, 0, pd.concat([_predictions(), _predictions("x")]))
    assert lifecycle.delete_run(engine, run_id) == "tombstone"
    run = runs.get_run(engine, run_id)
    assert run.status == "deleted"
    kept = predictions.load_predictions(engine, run_id)
    assert len(kept) == 5 and set(kept["model"]) == {"lstm"}
    assert lifecycle.delete_run(engine, run_id) == "tombstone"  # idempotent


def test_failed_runs_are_removed_and_running_runs_refused(engine):
    config = load_config()
    failed, running = lifecycle.create_run(engine, config), lifecycle.create_run(engine, config)
    predictions.record_folds(engine, failed, _fold_table())
    predictions.save_fold(engine, failed, 0, _predictions())
    lifecycle.finish_run(engine, failed, "failed", error="boom")
    assert lifecycle.delete_run(engine, failed) == "removed"
    with pytest.raises(RunError, match="no run"):
        runs.get_run(engine, failed)
    with engine.connect() as conn:
        assert (
            conn.execute(sa.select(sa.func.count()).select_from(schema.predictions)).scalar_one()
            == 0
        )
    with pytest.raises(RunError, match="running"):
        lifecycle.delete_run(engine, running)


def test_a_queued_run_of_a_live_sweep_is_refused_and_of_a_dead_one_removed(engine):
    with engine.begin() as conn:
        conn.execute(
            schema.sweeps.insert().values(
                id=1, config_json="{}", space_json="{}", engine="local", created_at=runs.utcnow()
            )
        )
    queued, orphan = lifecycle.create_runs(engine, [load_config()] * 2, sweep_id=1)
    with pytest.raises(RunError, match=f"run {queued} is queued by a sweep that is still going"):
        lifecycle.delete_run(engine, queued)
    assert runs.get_run(engine, queued).status == "queued"  # the sweep goes on with it
    with engine.begin() as conn:  # the driver that registered it died (SIGKILL)
        conn.execute(schema.runs.update().where(schema.runs.c.id == orphan).values(pid=2**22 + 7))
    assert lifecycle.delete_run(engine, orphan) == "removed"
    assert runs.get_run(engine, queued).status == "queued"


def test_finish_stores_the_test_metrics(engine):
    run_id = lifecycle.create_run(engine, load_config())
    models = {"lstm": {"mse": 0.5, "n": 5, "train_s": None}, "baseline:zero": {"mse": 0.7}}
    lifecycle.finish_run(engine, run_id, "succeeded", summary={"models": models})
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(schema.metrics.c.model, schema.metrics.c.name, schema.metrics.c.value)
        ).all()
    assert sorted(rows) == [("baseline:zero", "mse", 0.7), ("lstm", "mse", 0.5), ("lstm", "n", 5.0)]


def test_dead_process_is_marked_stale(engine):
    run_id = lifecycle.create_run(engine, load_config())
    alive = lifecycle.create_run(engine, load_config())
    with engine.begin() as conn:  # a pid that cannot exist: the process was SIGKILLed
        conn.execute(schema.runs.update().where(schema.runs.c.id == run_id).values(pid=2**22 + 7))
    assert lifecycle.mark_stale_runs(engine) == [run_id]
    run = runs.get_run(engine, run_id)
    assert run.status == "failed" and run.error.startswith("stale:")
    assert runs.get_run(engine, alive).status == "running"
    assert lifecycle.mark_stale_runs(engine) == []  # nothing stale: nothing written


def test_trial_set_counts_succeeded_deleted_and_included_runs_on_the_same_period(engine):
    config = load_config()
    ids = [lifecycle.create_run(engine, config) for _ in range(5)]
    for run_id in ids[:4]:
        predictions.record_folds(engine, run_id, _fold_table())
    lifecycle.finish_run(engine, ids[0], "succeeded", summary={"backtest": {"sharpe_net": 0.1}})
    lifecycle.finish_run(engine, ids[1], "failed", error="boom")
    lifecycle.finish_run(engine, ids[2], "succeeded", summary={})
    lifecycle.delete_run(engine, ids[2])  # a tombstone still counts
    start, end = pd.Timestamp("2001-07-02").date(), pd.Timestamp("2001-07-06").date()
    ts = trials.trial_set(engine, target="XLF", test_start=start, test_end=end, include=[ids[3]])
    assert ts.ids == [ids[0], ids[2], ids[3]]
    assert [m.status for m in ts.members] == ["succeeded", "deleted", "running"]
    assert [r.id for r in ts.running] == [ids[4]]  # no test period yet: may join
    assert ts.pending(ts.members[2]) == 0  # not in a sweep
    assert all(m.config is None and m.summary is None for m in ts.members)  # no blobs read
    whole = runs.get_run(engine, ids[0])
    assert whole.config is not None and whole.summary == {"backtest": {"sharpe_net": 0.1}}
    assert dataclasses.replace(whole, config=None, summary=None) == ts.members[0]
    by_run = trials.trial_sets(engine, [whole], include=[ids[3]])
    assert by_run[ids[0]].ids == ts.ids and by_run[ids[0]].fingerprint() == ts.fingerprint()
    other = trials.trial_set(engine, target="SPY", test_start=start, test_end=end)
    assert (other.members, other.running) == ((), ())


def test_pending_trials_are_the_unfinished_runs_of_the_same_sweep(engine):
    config = load_config(None, ["data.target=XLF"])
    with engine.begin() as conn:
        conn.execute(
            schema.sweeps.insert().values(
                id=1, config_json="{}", space_json="{}", engine="local", created_at=runs.utcnow()
            )
        )
    ids = lifecycle.create_runs(engine, [config] * 3, sweep_id=1)
    alone = lifecycle.create_run(engine, config)
    for run_id in [*ids, alone]:
        predictions.record_folds(engine, run_id, _fold_table())
    start, end = pd.Timestamp("2001-07-02").date(), pd.Timestamp("2001-07-06").date()
    ts = trials.trial_set(engine, target="XLF", test_start=start, test_end=end, include=ids[:1])
    (first,) = ts.members
    assert ts.pending(first) == 2 and [r.id for r in ts.running] == [*ids[1:], alone]


def test_run_record_is_frozen_and_decodes_its_json(engine):
    run = runs.get_run(engine, lifecycle.create_run(engine, load_config(None, ["model.kind=gru"])))
    assert isinstance(run, Run) and run.primary_model == "gru"
    assert run.config["model"]["kind"] == "gru" and run.period == ("XLF", None, None)
    with pytest.raises(dataclasses.FrozenInstanceError):
        run.status = "failed"  # type: ignore[misc]
    assert not hasattr(run, "__dict__") and not hasattr(run, "__getitem__")  # slots, no dict


def test_primary_model_defaults_to_lstm(engine):
    """Rows stored before runs named their primary model read as ``lstm``."""
    run_id = lifecycle.create_run(engine, load_config(None, ["model.kind=gru"]))
    with engine.begin() as conn:
        conn.execute(schema.runs.update().values(primary_model=None))
    run = runs.get_run(engine, run_id)
    assert (run.primary_model, run.kind) == ("lstm", "trained")


def test_rows_loaded_with_the_trial_set_stand_in_for_a_runs_own(engine):
    """A pass that read the members' primary rows with the trial set takes them instead of
    reading them again: every run's frame equals a plain read, shared baselines and other
    primary models (GRU) included."""
    ids = [lifecycle.create_run(engine, load_config(None, [f"train.seed={s}"])) for s in range(3)]
    ids.append(lifecycle.create_run(engine, load_config(None, ["model.kind=gru"])))
    for run_id in ids:
        predictions.record_folds(engine, run_id, _fold_table())
    predictions.share_baselines(engine, ids[0], ids[:3])
    baselines = [_predictions("baseline:zero"), _predictions("baseline:mean")]
    for k, run_id in enumerate(ids):
        primary = "gru" if k == 3 else "lstm"
        rows = _predictions(primary).assign(y_pred=lambda f, k=k: f["y_pred"] + k)
        extra = [*baselines, _predictions("zz:other")] if k in (0, 3) else []
        predictions.save_fold(engine, run_id, 0, pd.concat([rows, *extra], ignore_index=True))
    members = list(runs.get_runs(engine, ids).values())
    start, end = pd.Timestamp("2001-07-02").date(), pd.Timestamp("2001-07-06").date()
    primary = predictions.load_primary_predictions(
        engine, target="XLF", test_start=start, test_end=end, members=members
    )
    assert list(primary.columns) == ["run_id", *predictions.PREDICTION_COLUMNS]
    assert primary.groupby("run_id")["model"].first().to_dict() == {
        ids[0]: "lstm",
        ids[1]: "lstm",
        ids[2]: "lstm",
        ids[3]: "gru",
    }
    loaded = {int(i): rows for i, rows in primary.groupby("run_id")}
    plain = dict(predictions.iter_predictions(engine, ids))
    taken = dict(predictions.iter_predictions(engine, ids, loaded=loaded))
    for run_id in ids:
        pd.testing.assert_frame_equal(taken[run_id], plain[run_id])
    assert set(plain[ids[1]]["model"]) == {"baseline:mean", "baseline:zero", "lstm"}
    assert set(plain[ids[3]]["model"]) == {"baseline:mean", "baseline:zero", "gru", "zz:other"}
    with pytest.raises(ValueError, match="every model"):
        next(predictions.iter_predictions(engine, ids, models=["lstm"], loaded=loaded))
