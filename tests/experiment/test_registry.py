import json

import pandas as pd
import pytest
import sqlalchemy as sa

from lstm_madness.data import schema
from lstm_madness.data.db import make_engine
from lstm_madness.errors import RunError
from lstm_madness.experiment import registry
from lstm_madness.experiment.config import load_config


@pytest.fixture
def engine(db_url):
    engine = make_engine(db_url)
    schema.metadata.create_all(engine)
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
    registry.delete_run(engine, run_id)
    with pytest.raises(RunError, match="no run"):
        registry.get_run(engine, run_id)
    with engine.connect() as conn:
        assert (
            conn.execute(sa.select(sa.func.count()).select_from(schema.predictions)).scalar_one()
            == 0
        )


def test_dead_process_is_marked_stale(engine):
    run_id = registry.create_run(engine, load_config())
    alive = registry.create_run(engine, load_config())
    with engine.begin() as conn:  # a pid that cannot exist: the process was SIGKILLed
        conn.execute(schema.runs.update().where(schema.runs.c.id == run_id).values(pid=2**22 + 7))
    assert registry.mark_stale_runs(engine) == [run_id]
    run = registry.get_run(engine, run_id)
    assert run["status"] == "failed" and run["error"].startswith("stale:")
    assert registry.get_run(engine, alive)["status"] == "running"


def test_peer_runs_only_counts_succeeded_runs_on_the_same_period(engine):
    config = load_config()
    ids = [registry.create_run(engine, config) for _ in range(3)]
    for run_id in ids:
        registry.record_folds(engine, run_id, _fold_table())
    registry.finish_run(engine, ids[0], "succeeded", summary={"backtest": {"sharpe_net": 0.1}})
    registry.finish_run(engine, ids[1], "failed", error="boom")
    start, end = pd.Timestamp("2001-07-02").date(), pd.Timestamp("2001-07-06").date()
    peers = registry.peer_runs(engine, target="XLF", test_start=start, test_end=end)
    assert list(peers["id"]) == [ids[0]]
    assert json.loads(peers["summary_json"].iloc[0])["backtest"]["sharpe_net"] == 0.1
