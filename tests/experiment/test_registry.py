import pandas as pd
import pytest
import sqlalchemy as sa

from lstm_madness.data import schema
from lstm_madness.data.db import make_engine
from lstm_madness.errors import RunError
from lstm_madness.experiment import registry, tables
from lstm_madness.experiment.config import load_config


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
    run_id = registry.create_run(engine, config, name="t")
    run = registry.get_run(engine, run_id)
    assert run["status"] == "running" and run["config"] == config.to_dict()
    assert run["config_hash"] == config.hash() and run["seed"] == 3
    registry.record_folds(engine, run_id, _fold_table())
    assert registry.completed_folds(engine, run_id) == set()
    registry.save_fold(engine, run_id, 0, pd.concat([_predictions(), _predictions("x")]))
    registry.save_fold(engine, run_id, 0, _predictions())  # replaced, not duplicated
    assert registry.completed_folds(engine, run_id) == {0}
    stored = registry.load_predictions(engine, run_id)
    assert len(stored) == 5 and set(stored["model"]) == {"lstm"}
    assert stored["y_pred"].iloc[-1] == 0.123456789012345  # full precision through COPY
    registry.finish_run(engine, run_id, "succeeded", summary={"x": 1})
    run = registry.get_run(engine, run_id)
    assert run["status"] == "succeeded" and run["summary"] == {"x": 1}
    assert run["test_start"] == pd.Timestamp("2001-07-02").date()
    with engine.connect() as conn:  # finishing stores the per-model test metrics
        assert conn.execute(sa.select(sa.func.count()).select_from(tables.metrics)).scalar() == 0
    # a succeeded run is a trial: deleting it leaves a tombstone with its network's predictions
    registry.save_fold(engine, run_id, 0, pd.concat([_predictions(), _predictions("x")]))
    assert registry.delete_run(engine, run_id) == "tombstone"
    run = registry.get_run(engine, run_id)
    assert run["status"] == "deleted"
    kept = registry.load_predictions(engine, run_id)
    assert len(kept) == 5 and set(kept["model"]) == {"lstm"}
    assert registry.delete_run(engine, run_id) == "tombstone"  # idempotent


def test_failed_runs_are_removed_and_running_runs_refused(engine):
    config = load_config()
    failed, running = registry.create_run(engine, config), registry.create_run(engine, config)
    registry.record_folds(engine, failed, _fold_table())
    registry.save_fold(engine, failed, 0, _predictions())
    registry.finish_run(engine, failed, "failed", error="boom")
    assert registry.delete_run(engine, failed) == "removed"
    with pytest.raises(RunError, match="no run"):
        registry.get_run(engine, failed)
    with engine.connect() as conn:
        assert (
            conn.execute(sa.select(sa.func.count()).select_from(tables.predictions)).scalar_one()
            == 0
        )
    with pytest.raises(RunError, match="running"):
        registry.delete_run(engine, running)


def test_finish_stores_the_test_metrics(engine):
    run_id = registry.create_run(engine, load_config())
    models = {"lstm": {"mse": 0.5, "n": 5, "train_s": None}, "baseline:zero": {"mse": 0.7}}
    registry.finish_run(engine, run_id, "succeeded", summary={"models": models})
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(tables.metrics.c.model, tables.metrics.c.name, tables.metrics.c.value)
        ).all()
    assert sorted(rows) == [("baseline:zero", "mse", 0.7), ("lstm", "mse", 0.5), ("lstm", "n", 5.0)]


def test_dead_process_is_marked_stale(engine):
    run_id = registry.create_run(engine, load_config())
    alive = registry.create_run(engine, load_config())
    with engine.begin() as conn:  # a pid that cannot exist: the process was SIGKILLed
        conn.execute(tables.runs.update().where(tables.runs.c.id == run_id).values(pid=2**22 + 7))
    assert registry.mark_stale_runs(engine) == [run_id]
    run = registry.get_run(engine, run_id)
    assert run["status"] == "failed" and run["error"].startswith("stale:")
    assert registry.get_run(engine, alive)["status"] == "running"


def test_trial_set_counts_succeeded_deleted_and_included_runs_on_the_same_period(engine):
    config = load_config()
    ids = [registry.create_run(engine, config) for _ in range(5)]
    for run_id in ids[:4]:
        registry.record_folds(engine, run_id, _fold_table())
    registry.finish_run(engine, ids[0], "succeeded", summary={"backtest": {"sharpe_net": 0.1}})
    registry.finish_run(engine, ids[1], "failed", error="boom")
    registry.finish_run(engine, ids[2], "succeeded", summary={})
    registry.delete_run(engine, ids[2])  # a tombstone still counts
    start, end = pd.Timestamp("2001-07-02").date(), pd.Timestamp("2001-07-06").date()
    members, running = registry.trial_set_runs(
        engine, target="XLF", test_start=start, test_end=end, include=[ids[3]]
    )
    assert [m["id"] for m in members] == [ids[0], ids[2], ids[3]]
    assert [m["status"] for m in members] == ["succeeded", "deleted", "running"]
    assert [r["id"] for r in running] == [ids[4]]  # no test period yet: may join
    assert registry.pending_trials(members[2], running) == 0  # not in a sweep
    assert "config_json" not in members[0] and "summary_json" not in members[0]
    other = registry.trial_set_runs(engine, target="SPY", test_start=start, test_end=end)
    assert other == ([], [])


def test_primary_model_defaults_to_lstm():
    assert registry.primary_model({"primary_model": None}) == "lstm"
    assert registry.primary_model({}) == "lstm"
    assert registry.primary_model({"primary_model": "gru"}) == "gru"


def test_rows_loaded_with_the_trial_set_stand_in_for_a_runs_own(engine):
    """A pass that read the members' primary rows with the trial set takes them instead of
    reading them again: every run's frame equals a plain read, shared baselines and other
    primary models (GRU) included."""
    ids = [registry.create_run(engine, load_config(None, [f"train.seed={s}"])) for s in range(3)]
    ids.append(registry.create_run(engine, load_config(None, ["model.kind=gru"])))
    for run_id in ids:
        registry.record_folds(engine, run_id, _fold_table())
    registry.share_baselines(engine, ids[0], ids[:3])
    baselines = [_predictions("baseline:zero"), _predictions("baseline:mean")]
    for k, run_id in enumerate(ids):
        primary = "gru" if k == 3 else "lstm"
        rows = _predictions(primary).assign(y_pred=lambda f, k=k: f["y_pred"] + k)
        extra = [*baselines, _predictions("zz:other")] if k in (0, 3) else []
        registry.save_fold(engine, run_id, 0, pd.concat([rows, *extra], ignore_index=True))
    members = [registry.get_run(engine, i) for i in ids]
    start, end = pd.Timestamp("2001-07-02").date(), pd.Timestamp("2001-07-06").date()
    for run in members:
        run["primary_model"] = run.get("primary_model") or "lstm"
    primary = registry.load_primary_predictions(
        engine, target="XLF", test_start=start, test_end=end, members=members
    )
    assert list(primary.columns) == ["run_id", *registry.PREDICTION_COLUMNS]
    assert primary.groupby("run_id")["model"].first().to_dict() == {
        ids[0]: "lstm",
        ids[1]: "lstm",
        ids[2]: "lstm",
        ids[3]: "gru",
    }
    loaded = {int(i): rows for i, rows in primary.groupby("run_id")}
    plain = dict(registry.iter_predictions(engine, ids))
    taken = dict(registry.iter_predictions(engine, ids, loaded=loaded))
    for run_id in ids:
        pd.testing.assert_frame_equal(taken[run_id], plain[run_id])
    assert set(plain[ids[1]]["model"]) == {"baseline:mean", "baseline:zero", "lstm"}
    assert set(plain[ids[3]]["model"]) == {"baseline:mean", "baseline:zero", "gru", "zz:other"}
    with pytest.raises(ValueError, match="every model"):
        next(registry.iter_predictions(engine, ids, models=["lstm"], loaded=loaded))
