"""Several configs in one batch: own baselines per data group, the primary model's name,
the objective stored at training time, one evaluation pass."""

import numpy as np
import pytest

from lstm_madness.data import schema
from lstm_madness.data.db import make_engine
from lstm_madness.experiment.config import load_config
from lstm_madness.experiment.runner import run_experiments
from lstm_madness.store.lifecycle import delete_run
from lstm_madness.store.predictions import load_predictions, own_baselines
from lstm_madness.store.runs import get_run, get_runs

QUICK = [
    "data.target=SYN",
    "model.units=[4]",
    "model.time_steps=5",
    "train.epochs=2",
    "evaluation.bootstrap_reps=20",
]


@pytest.fixture
def engine(sqlite_url, write_returns, ar1_returns):
    engine = make_engine(sqlite_url)
    write_returns(engine, "SYN", ar1_returns(360, phi=0.2, seed=4))
    yield engine
    engine.dispose()


def _models(engine, run_id):
    return set(load_predictions(engine, run_id)["model"])


def test_configs_differing_only_in_baselines_each_store_their_own(engine):
    one = load_config(None, [*QUICK, "baselines.models=['zero']"])
    two = load_config(None, [*QUICK, "baselines.models=['zero', 'mean']"])
    a, b = (s["run_id"] for s in run_experiments(engine, [one, two]))
    assert _models(engine, a) == {"lstm", "baseline:zero"}
    assert _models(engine, b) == {"lstm", "baseline:zero", "baseline:mean"}


def test_baselines_are_fitted_once_and_shared_by_the_data_group(engine):
    configs = [load_config(None, [*QUICK, f"train.seed={s}"]) for s in range(2)]
    a, b = run_experiments(engine, configs)
    pa, pb = (load_predictions(engine, s["run_id"]) for s in (a, b))
    for name in ("baseline:zero", "baseline:mean", "baseline:ridge"):
        np.testing.assert_array_equal(
            pa.loc[pa["model"] == name, "y_pred"], pb.loc[pb["model"] == name, "y_pred"]
        )
    assert a["timings"]["models"]["baseline:ridge"] == b["timings"]["models"]["baseline:ridge"]
    # both runs were evaluated with the other counted as a trial
    assert a["significance"]["trials"] == b["significance"]["trials"] == 2


def _stored_models(engine, run_id):
    """The models of the rows stored under ``run_id`` itself."""
    import sqlalchemy as sa

    p = schema.predictions
    with engine.connect() as conn:
        return set(conn.scalars(sa.select(p.c.model).where(p.c.run_id == run_id).distinct()))


def _shared_pair(engine):
    configs = [load_config(None, [*QUICK, f"train.seed={s}"]) for s in range(2)]
    return [s["run_id"] for s in run_experiments(engine, configs)]


BASELINES = {"baseline:zero", "baseline:mean", "baseline:persistence", "baseline:ridge"}


def test_a_data_group_stores_one_copy_of_its_baselines(engine):
    a, b = _shared_pair(engine)
    assert _stored_models(engine, a) == {"lstm", *BASELINES}
    assert _stored_models(engine, b) == {"lstm"}  # read from a's rows
    assert get_run(engine, b).baselines_run_id == a
    assert _models(engine, b) == {"lstm", *BASELINES}
    export = load_predictions(engine, b)
    assert list(export.columns) == [
        "model", "fold", "split", "date", "symbol", "y_true", "y_pred", "realized"
    ]  # fmt: skip
    assert export.equals(export.sort_values(["model", "date"], kind="stable"))


@pytest.mark.parametrize("status", ["succeeded", "failed"])
def test_deleting_the_run_that_holds_shared_baselines_hands_them_over(engine, status):
    import sqlalchemy as sa

    from lstm_madness.experiment.summary import evaluate_runs

    a, b = _shared_pair(engine)
    before = load_predictions(engine, b)
    models_before = evaluate_runs(engine, [b])[b].summary["models"]
    if status == "failed":  # a failed run is removed with all it stored
        with engine.begin() as conn:
            conn.execute(schema.runs.update().where(schema.runs.c.id == a).values(status=status))
    assert delete_run(engine, a) == ("tombstone" if status == "succeeded" else "removed")
    assert _stored_models(engine, b) == {"lstm", *BASELINES}
    assert get_run(engine, b).baselines_run_id is None
    after = load_predictions(engine, b)
    pd_testing = __import__("pandas").testing
    pd_testing.assert_frame_equal(before, after)
    assert evaluate_runs(engine, [b])[b].summary["models"] == models_before
    with engine.connect() as conn:  # a tombstone keeps only its primary model's rows
        left = conn.scalars(
            sa.select(schema.predictions.c.model).where(schema.predictions.c.run_id == a).distinct()
        )
        assert set(left) == ({"lstm"} if status == "succeeded" else set())


def test_a_resumed_run_gets_its_own_copy_of_shared_baselines(engine):
    a, b = _shared_pair(engine)
    before = load_predictions(engine, b)
    own_baselines(engine, [a, b])
    assert get_run(engine, b).baselines_run_id is None
    assert _stored_models(engine, b) == {"lstm", *BASELINES}
    __import__("pandas").testing.assert_frame_equal(before, load_predictions(engine, b))


def test_a_gru_run_names_its_primary_model_and_stores_its_objective(engine):
    (summary,) = run_experiments(engine, [load_config(None, [*QUICK, "model.kind=gru"])])
    run = get_run(engine, summary["run_id"])
    assert run.primary_model == "gru" and run.kind == "trained"
    assert "gru" in _models(engine, run.id) and "lstm" not in _models(engine, run.id)
    assert "gru" in summary["models"] and summary["models"]["gru"]["epochs_run"] == 2
    val_loss = summary["timings"]["models"]["gru"]["val_loss"]
    assert run.objective == pytest.approx(val_loss) and val_loss > 0
    timings = summary["timings"]
    assert {"total_s", "train_s", "predict_s", "store_s", "evaluate_s"} <= set(timings)
    assert timings["store_s"] > 0 and timings["evaluate_s"] > 0
    assert timings["total_s"] >= timings["train_s"] + timings["store_s"]


@pytest.mark.parametrize("trainer", ["compiled", "batched", "torch"])
def test_the_trainer_used_is_stored_with_the_run(engine, trainer):
    (summary,) = run_experiments(engine, [load_config(None, [*QUICK, f"train.trainer={trainer}"])])
    run = get_run(engine, summary["run_id"])
    assert run.trainer == trainer
    assert summary["timings"]["models"]["lstm"]["trainer"] == trainer


def test_finished_runs_prime_the_summary_cache_with_their_live_summary(engine):
    import json

    from lstm_madness.experiment import cache
    from lstm_madness.experiment.summary import evaluate_runs

    configs = [load_config(None, [*QUICK, f"train.seed={s}"]) for s in range(2)]
    ids = [s["run_id"] for s in run_experiments(engine, configs)]
    rows = get_runs(engine, ids)
    names = cache.summary_names(engine, rows.values())
    fresh = evaluate_runs(engine, ids)
    for run_id in ids:
        primed = cache.read("summaries", names[run_id])
        assert primed is not None
        assert json.dumps(primed, sort_keys=True) == json.dumps(
            json.loads(json.dumps(fresh[run_id].summary)), sort_keys=True
        )


def test_auto_trains_the_folds_of_a_walk_forward_config_together(engine):
    network = [*QUICK, "model.units=[32]", "train.batch_size=64"]
    walk = [
        "split.scheme=walk_forward",
        "split.initial_train_days=200",
        "split.retrain_every_days=50",
    ]
    hold_out, walk_forward, one_by_one = run_experiments(
        engine,
        [
            load_config(None, network),
            load_config(None, [*network, *walk]),
            load_config(None, [*network, *walk, "train.batch_folds=false"]),
        ],
    )
    trainers = [get_run(engine, s["run_id"]).trainer for s in (hold_out, walk_forward, one_by_one)]
    assert trainers == ["compiled", "batched", "compiled"]
