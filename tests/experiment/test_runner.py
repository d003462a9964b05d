"""End to end through the store: synthetic series → run → stored predictions → summary."""

import numpy as np
import pytest

from lstm_madness.data.db import make_engine
from lstm_madness.errors import ConfigError, DataError, RunError
from lstm_madness.experiment.config import load_config
from lstm_madness.experiment.runner import run_experiment
from lstm_madness.store.lifecycle import create_runs, fail_runs
from lstm_madness.store.predictions import completed_folds, load_predictions
from lstm_madness.store.runs import get_run, list_runs
from lstm_madness.store.sweeps import sweep_exists

FAST = [
    "model.units=[16]",
    "model.time_steps=5",
    "train.epochs=30",
    "train.patience=5",
    "train.batch_size=32",
    "train.learning_rate=0.005",
    "evaluation.bootstrap_reps=100",
    "data.target=SYN",
]


@pytest.fixture
def engine(db_url):
    engine = make_engine(db_url)
    yield engine
    engine.dispose()


@pytest.mark.slow
def test_strong_ar1_is_learned_and_beats_zero(engine, write_returns, ar1_returns):
    write_returns(engine, "SYN", ar1_returns(900, phi=0.6, seed=1))
    summary = run_experiment(engine, load_config(None, FAST), name="ar1")
    lstm, zero = summary["models"]["lstm"], summary["models"]["baseline:zero"]
    assert summary["status"] == "succeeded"
    assert lstm["r2_oos"] > 0.15
    assert lstm["mse"] < zero["mse"]
    assert summary["n_test"] == len(load_predictions(engine, summary["run_id"], models=["lstm"]))
    # the stored run says the same as the returned summary
    stored = get_run(engine, summary["run_id"])
    assert stored.status == "succeeded"
    assert stored.summary["models"]["lstm"]["mse"] == pytest.approx(lstm["mse"])


@pytest.mark.slow
def test_pure_noise_is_not_reported_as_predictable(engine, write_returns):
    rng = np.random.default_rng(7)
    write_returns(engine, "SYN", rng.normal(0.0003, 0.01, 900))
    summary = run_experiment(engine, load_config(None, FAST))
    models = summary["models"]
    zero_mse = models["baseline:zero"]["mse"]
    for name, m in models.items():
        assert m["r2_oos"] < 0.05, name
        assert m["mse"] > 0.9 * zero_mse, name
    assert summary["verdict"]["tradeable"] is False
    assert summary["verdict"]["reasons"]


def test_walk_forward_interrupt_then_resume_equals_uninterrupted(
    engine, write_returns, ar1_returns
):
    write_returns(engine, "SYN", ar1_returns(420, phi=0.3, seed=3))
    config = load_config(
        None,
        [
            *FAST,
            "train.epochs=3",
            "split.scheme=walk_forward",
            "split.initial_train_days=200",
            "split.retrain_every_days=70",
            "train.batch_folds=false",
        ],
    )

    def stop_after_first_fold(event, **info):
        if event == "fold" and info["fold"] == 1:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_experiment(engine, config, progress=stop_after_first_fold)
    (failed,) = list_runs(engine)["id"]
    run = get_run(engine, int(failed))
    assert run.status == "failed" and "interrupted" in run.error
    assert completed_folds(engine, int(failed)) == {0}
    assert run.summary is None  # a failed run never carries results

    resumed = run_experiment(engine, resume=int(failed))
    assert resumed["run_id"] == failed and resumed["status"] == "succeeded"
    with pytest.raises(RunError, match="only failed runs"):
        run_experiment(engine, resume=int(failed))

    fresh = run_experiment(engine, config)
    a = load_predictions(engine, int(failed))
    b = load_predictions(engine, fresh["run_id"])
    assert len(a) == len(b) > 0
    np.testing.assert_array_equal(a["y_pred"].to_numpy(), b["y_pred"].to_numpy())

    # the resumed run reports every fold's training, the first one's from the store
    was, now = fresh["timings"], resumed["timings"]
    assert now["folds_before_resume"] == 1 and "folds_before_resume" not in was
    for model in ("lstm", "baseline:zero"):
        for key in ("n_folds", "n_train_total"):
            assert now["models"][model][key] == was["models"][model][key], (model, key)
    lstm = now["models"]["lstm"]
    assert lstm["epochs_run_total"] == was["models"]["lstm"]["epochs_run_total"]
    assert (lstm["epochs_run_min"], lstm["epochs_run_max"]) == (
        was["models"]["lstm"]["epochs_run_min"],
        was["models"]["lstm"]["epochs_run_max"],
    )
    assert lstm["val_loss"] == pytest.approx(was["models"]["lstm"]["val_loss"], rel=1e-6)
    assert now["train_s"] > 0 and now["store_s"] > 0
    from lstm_madness.report import formats as fmt

    line = fmt.timing_line(now)
    assert "(this run, every fold: 1 trained before it was resumed)" in line
    assert line.endswith("(the command that resumed this run, start to finish)")


def test_same_seed_same_predictions_and_batched_folds_match_sequential(
    engine, write_returns, ar1_returns
):
    write_returns(engine, "SYN", ar1_returns(400, phi=0.3, seed=5))
    args = [
        *FAST,
        "train.epochs=4",
        "split.scheme=walk_forward",
        "split.initial_train_days=200",
        "split.retrain_every_days=100",
    ]
    one = run_experiment(engine, load_config(None, args))
    two = run_experiment(engine, load_config(None, args))
    seq = run_experiment(engine, load_config(None, [*args, "train.batch_folds=false"]))
    p = [
        load_predictions(engine, r["run_id"], models=["lstm"])["y_pred"].to_numpy()
        for r in (one, two, seq)
    ]
    np.testing.assert_array_equal(p[0], p[1])
    np.testing.assert_allclose(p[0], p[2], rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize(
    ("overrides", "error", "message"),
    [
        (["data.target=NOPE"], DataError, "unknown symbol.*NOPE"),
        (["data.inputs=['SYN','NOPE']"], DataError, "unknown symbol.*NOPE"),
        (["target.kind=excess", "target.benchmark=NOPE"], DataError, "NOPE"),
        (["data.start=2030-01-02"], DataError, "SYN has no trading day"),
        (["data.end=2001-01-25"], ConfigError, "too few"),
        (["model.time_steps=90", "data.end=2001-04-30"], DataError, "no complete samples"),
    ],
)
def test_a_run_refused_before_training_leaves_no_run(
    engine, write_returns, ar1_returns, overrides, error, message
):
    """Unknown symbols, no data in the period, too few days: refused before the run is
    registered, with the error the data load would raise; the ledger stays empty."""
    write_returns(engine, "SYN", ar1_returns(300, phi=0.3))
    with pytest.raises(error, match=message):
        run_experiment(engine, load_config(None, [*FAST, *overrides]))
    assert list_runs(engine).empty


def test_the_python_api_refuses_before_registering(engine, write_returns, ar1_returns):
    from lstm_madness import run

    write_returns(engine, "SYN", ar1_returns(300, phi=0.3))
    with pytest.raises(DataError, match="XLFF"):
        run({"data": {"target": "XLFF"}, "train": {"epochs": 1}}, db=engine)
    assert list_runs(engine).empty


def test_a_resume_refused_before_training_keeps_the_failed_run(
    engine, write_returns, ar1_returns, monkeypatch
):
    from lstm_madness.experiment.kinds import timing

    write_returns(engine, "SYN", ar1_returns(300, phi=0.3))
    config = load_config(None, [*FAST, "train.epochs=1"])
    (run_id,) = create_runs(engine, [config], status="running")
    fail_runs(engine, [run_id], "first reason")

    def refuse(engine, config, *baselines):
        raise DataError("SYN is gone")

    monkeypatch.setattr(timing, "check_study_data", refuse)
    with pytest.raises(DataError, match="SYN is gone"):
        run_experiment(engine, resume=run_id)
    run = get_run(engine, run_id)
    assert run.status == "failed" and run.error == "first reason"
    assert len(list_runs(engine)) == 1


@pytest.mark.parametrize(
    ("grid", "options", "error", "message"),
    [
        ({"data.target": ("NOPE",)}, {}, DataError, "unknown symbol.*NOPE"),
        # one good point and one without data: the whole sweep is refused
        ({"data.start": ("2001-01-02", "2030-01-02")}, {}, DataError, "no trading day"),
        ({"data.target": ("SYN", "NOPE")}, {"search": "optuna", "n_trials": 1}, DataError, "NOPE"),
        ({"model.units": ([8],)}, {"engine_name": "spark"}, ConfigError, "--engine"),
        ({"model.units": ([8],)}, {"search": "optuna"}, ConfigError, "--trials"),
    ],
)
def test_a_sweep_refused_before_training_registers_nothing(
    engine, db_url, write_returns, ar1_returns, grid, options, error, message
):
    """Every point is checked before the sweep or any of its runs is registered."""
    from lstm_madness.sweep import SweepSpace, run_sweep

    write_returns(engine, "SYN", ar1_returns(300, phi=0.3))
    base = load_config(None, [*FAST, "train.epochs=1"])
    with pytest.raises(error, match=message):
        run_sweep(db_url, base, SweepSpace(grid, 2), **options)
    assert list_runs(engine).empty
    assert not sweep_exists(engine, 1)


@pytest.mark.parametrize("failure", ["network", "samples"])
def test_a_run_that_fails_once_registered_is_kept_as_failed(
    engine, write_returns, ar1_returns, monkeypatch, failure
):
    """What only training (or the loaded data's samples) can find still fails a registered
    run with the reason: a network that raises, or too few complete samples after the
    features' warm-up (the checks before registering count days, not samples)."""
    from lstm_madness.experiment import runner

    write_returns(engine, "SYN", ar1_returns(300, phi=0.3))
    overrides = [*FAST, "train.epochs=1"]
    if failure == "network":

        def broken(*args, **kwargs):
            raise RuntimeError("the network diverged")

        monkeypatch.setattr(runner, "fit_and_predict", broken)
        error, message = RuntimeError, "diverged"
    else:  # 40 days: 26 train the holdout fold, vol_20 leaves fewer than 20 samples
        overrides += ["data.end=2001-02-26", "data.features=['ret','vol_20']"]
        error, message = DataError, "complete training samples"
    with pytest.raises(error, match=message):
        run_experiment(engine, load_config(None, overrides))
    (run_id,) = list_runs(engine)["id"]
    run = get_run(engine, int(run_id))
    assert run.status == "failed" and message in run.error


def test_a_broken_evaluation_stack_fails_before_anything_is_registered(
    engine, db_url, write_returns, ar1_returns, monkeypatch
):
    """A job that will evaluate imports the evaluation stack first: without it, it fails
    before it registers a run or trains, instead of after its training."""
    from lstm_madness.experiment import runner
    from lstm_madness.sweep import SweepSpace, run_sweep

    write_returns(engine, "SYN", ar1_returns(300, phi=0.3))

    def missing() -> None:
        raise ModuleNotFoundError("No module named 'arch'")

    monkeypatch.setattr(runner, "load_evaluation", missing)
    with pytest.raises(ModuleNotFoundError, match="arch"):
        run_experiment(engine, load_config(None, FAST))
    with pytest.raises(ModuleNotFoundError, match="arch"):
        run_sweep(db_url, load_config(None, FAST), SweepSpace({}, 2))
    assert list_runs(engine).empty and not sweep_exists(engine, 1)
    # training only (a Ray task, evaluation=False) does not need it
    (trained,) = runner.run_experiments(
        engine, [load_config(None, [*FAST, "train.epochs=1"])], evaluate=False
    )
    assert get_run(engine, trained["run_id"]).status == "running"


@pytest.mark.parametrize("trainer", ["torch", "batched", "compiled"])
def test_the_configured_optimizer_trains_the_network(trainer: str) -> None:
    """``train.optimizer`` reaches the estimator the runner builds, and its trainer."""
    from lstm_madness.experiment.runner import lstm_estimator

    base = [*FAST, "train.epochs=2", f"train.trainer={trainer}"]
    adam = lstm_estimator(load_config(None, base))
    rms = lstm_estimator(load_config(None, [*base, "train.optimizer=rmsprop"]))
    assert (adam.optimizer, rms.optimizer) == ("adam", "rmsprop")
    rng = np.random.default_rng(0)
    x = rng.normal(0, 1, (96, 5, 1)).astype(np.float32)
    y = (0.3 * x[:, -1, 0] + rng.normal(0, 1, 96)).astype(np.float32)
    a, r = adam.fit(x, y).predict(x), rms.fit(x, y).predict(x)
    assert np.isfinite(r).all() and not np.allclose(a, r)
