"""Fold table of the report: per-fold MSE and hit rate from the metrics module."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from lstm_madness.data.db import make_engine
from lstm_madness.data.store import init_db
from lstm_madness.evaluation import study
from lstm_madness.experiment.config import load_config
from lstm_madness.experiment.kinds.timing import fold_metrics
from lstm_madness.store.lifecycle import create_run
from lstm_madness.store.predictions import load_folds, load_predictions, record_folds, save_fold


@pytest.fixture
def engine(sqlite_url):
    engine = make_engine(sqlite_url)
    init_db(engine)
    yield engine
    engine.dispose()


def test_direction_hit_rate_counts_probability_above_half_as_up(engine):
    config = load_config(None, ["target.kind=direction"])
    run_id = create_run(engine, config)
    dates = pd.bdate_range("2020-01-01", periods=40)
    folds = pd.DataFrame(
        [
            {
                "fold": k,
                "train_start": dates[0].date() - pd.Timedelta(days=300),
                "train_end": dates[0].date() - pd.Timedelta(days=1),
                "test_start": dates[20 * k].date(),
                "test_end": dates[20 * k + 19].date(),
                "n_train": 100,
                "n_test": 20,
            }
            for k in (0, 1)
        ]
    )
    record_folds(engine, run_id, folds)
    rng = np.random.default_rng(0)
    labels = (rng.random(40) > 0.5).astype(float)
    prob = rng.uniform(0.2, 0.8, 40)  # every probability > 0: "p > 0" would call all up
    for k in (0, 1):
        part = slice(20 * k, 20 * k + 20)
        save_fold(
            engine,
            run_id,
            k,
            pd.DataFrame(
                {
                    "model": "lstm",
                    "split": "test",
                    "date": dates[part],
                    "symbol": "XLF",
                    "y_true": labels[part],
                    "y_pred": prob[part],
                    "realized": rng.normal(0, 0.01, 20),
                }
            ),
        )
    frame = study.test_frame(load_predictions(engine, run_id))
    table = fold_metrics(load_folds(engine, run_id), frame, primary="lstm", task="classification")
    for k in (0, 1):
        part = slice(20 * k, 20 * k + 20)
        expected = float(np.mean((prob[part] > 0.5) == (labels[part] == 1)))
        assert table.loc[k, "hit rate lstm"] == pytest.approx(expected)
        assert table.loc[k, "mse lstm"] == pytest.approx(np.mean((prob[part] - labels[part]) ** 2))
