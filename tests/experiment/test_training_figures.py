"""Figures of a run's training read as their labels say: epochs and training samples as
means per fold beside their totals, times with what they cover (issue 18)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import sqlalchemy as sa

from lstm_madness.data import schema
from lstm_madness.data.db import make_engine
from lstm_madness.experiment import runner
from lstm_madness.experiment.config import load_config
from lstm_madness.experiment.results import format_summary, load_run
from lstm_madness.experiment.runner import run_experiment, run_experiments
from lstm_madness.experiment.summary import evaluate_runs
from lstm_madness.report import formats as fmt
from lstm_madness.store.predictions import load_folds
from lstm_madness.store.runs import get_run

TINY = [
    "data.target=SYN",
    "model.units=[4]",
    "model.time_steps=5",
    "train.epochs=6",
    "train.patience=1",
    "train.learning_rate=0.05",
    "evaluation.bootstrap_reps=20",
]
WALK_FORWARD = [
    "split.scheme=walk_forward",
    "split.initial_train_days=150",
    "split.retrain_every_days=50",
    "train.batch_folds=false",
]


@pytest.fixture
def engine(db_url, write_returns, ar1_returns):
    engine = make_engine(db_url)
    write_returns(engine, "SYN", ar1_returns(400, phi=0.3, seed=11))
    yield engine
    engine.dispose()


def test_walk_forward_epochs_and_samples_are_means_per_fold_beside_totals(engine, monkeypatch):
    seen: list[tuple[int, int]] = []  # (epochs, training samples) of each fold, as trained
    record = runner.record_and_predict

    def spy(estimators, jobs, *args, **kwargs):
        seen.extend(
            (int(e.epochs_run_), len(a.y_train)) for e, (_, a) in zip(estimators, jobs, strict=True)
        )
        return record(estimators, jobs, *args, **kwargs)

    monkeypatch.setattr(runner, "record_and_predict", spy)
    summary = run_experiment(engine, load_config(None, [*TINY, *WALK_FORWARD]))
    n_folds = len(load_folds(engine, summary["run_id"]))
    assert n_folds >= 4 and len(seen) == n_folds
    assert min(e for e, _ in seen) < max(e for e, _ in seen)  # early stopping varies by fold
    epochs, samples = (np.array(x) for x in zip(*seen, strict=True))

    lstm = summary["models"]["lstm"]
    assert lstm["n_folds"] == n_folds
    assert lstm["epochs_run"] == pytest.approx(epochs.mean())
    assert lstm["epochs_run_total"] == epochs.sum()
    assert (lstm["epochs_run_min"], lstm["epochs_run_max"]) == (epochs.min(), epochs.max())
    assert lstm["n_train"] == pytest.approx(samples.mean())
    assert lstm["n_train_total"] == samples.sum()
    # the baselines are fitted on the same windows, once per fold; they have no epochs
    ridge = summary["models"]["baseline:ridge"]
    assert ridge["n_train"] == pytest.approx(samples.mean()) and ridge["epochs_run"] is None
    # the stored run and a later reading say the same
    assert get_run(engine, summary["run_id"]).summary["models"]["lstm"] == lstm
    assert (
        evaluate_runs(engine, [summary["run_id"]])[summary["run_id"]].summary["models"]["lstm"]
        == lstm
    )

    text = load_run(engine, summary["run_id"]).summary()
    expected = fmt.per_fold(epochs.mean(), epochs.min(), epochs.max(), epochs.sum(), n_folds)
    assert f"lstm: epochs {expected};" in text
    assert f"{epochs.sum()} in all over {n_folds} folds" in text
    assert (
        f"training samples {fmt.per_fold(samples.mean(), None, None, samples.sum(), n_folds)}"
        in text
    )


def test_a_summary_that_kept_only_sums_reads_them_as_totals(engine):
    summary = run_experiment(engine, load_config(None, [*TINY, *WALK_FORWARD]))
    run_id = summary["run_id"]
    lstm = summary["models"]["lstm"]
    old = dict(summary)  # as stored before the figures per fold: sums, no n_folds
    old_models = {
        name: {"train_s": m["train_s"], "n_train": m["n_train_total"], "epochs_run": 0}
        for name, m in summary["timings"]["models"].items()
    }
    old_models["lstm"]["epochs_run"] = lstm["epochs_run_total"]
    old["timings"] = {
        k: v
        for k, v in summary["timings"].items()
        if k not in ("scope", "total_scope", "batch_runs")
    }
    old["timings"]["models"] = old_models
    old["models"] = {
        name: {k: v for k, v in m.items() if not k.startswith(("n_folds", "n_train", "epochs"))}
        | {"n_train": old_models[name]["n_train"], "epochs_run": old_models[name]["epochs_run"]}
        for name, m in summary["models"].items()
    }
    with engine.begin() as conn:
        conn.execute(
            sa.update(schema.runs)
            .where(schema.runs.c.id == run_id)
            .values(summary_json=json.dumps(old))
        )
    now = evaluate_runs(engine, [run_id])[run_id].summary
    got = now["models"]["lstm"]
    assert got["epochs_run"] is None and got["n_train"] is None and got["n_folds"] is None
    assert got["epochs_run_total"] == lstm["epochs_run_total"]
    assert got["n_train_total"] == lstm["n_train_total"]
    text = format_summary(now)
    assert f"lstm: epochs – per fold ({lstm['epochs_run_total']} in all)" in text
    assert "total" in text and "(scope not recorded)" in text


def test_the_text_summary_says_what_each_time_covers(engine):
    one = run_experiment(engine, load_config(None, TINY))
    timings = one["timings"]
    assert (timings["scope"], timings["total_scope"], timings["batch_runs"]) == (
        "run",
        "command",
        1,
    )
    text = load_run(engine, one["run_id"]).summary()
    assert "train (this run)" in text.splitlines()[3]  # the model table's time column
    (line,) = [x for x in text.splitlines() if x.startswith("time")]
    assert line.startswith("time (this run): train ")
    assert line.endswith(f"; total {fmt.seconds(timings['total_s'])} (this run, start to finish)")

    configs = [load_config(None, [*TINY, f"train.seed={s}"]) for s in (1, 2)]
    a, b = run_experiments(engine, configs)
    assert a["timings"]["batch_runs"] == 2 and a["timings"]["total_scope"] == "command"
    assert "(all 2 runs of the command, start to finish)" in format_summary(a)
    # the baselines were fitted once for both runs: each run has half of the time
    assert a["models"]["baseline:ridge"]["train_s"] == b["models"]["baseline:ridge"]["train_s"]

    trained = run_experiments(engine, configs, evaluate=False)
    assert {t["timings"]["total_scope"] for t in trained} == {"training"}
    assert fmt.timing_line(trained[0]["timings"]).endswith(
        "(training of all 2 runs carried out together, before evaluation)"
    )
