"""Judging forecasts made elsewhere through the Python API, on both backends: imported runs
are stored, evaluated and counted like trained runs; a rejected input stores nothing."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from lstm_madness import judge, load_run, run
from lstm_madness.data import schema
from lstm_madness.data.db import make_engine
from lstm_madness.data.store import init_db, read_returns
from lstm_madness.errors import (
    AlreadyJudgedError,
    ConfigError,
    DataError,
    MadnessError,
    ValidationError,
)
from lstm_madness.experiment.results import RunResult
from lstm_madness.store.predictions import load_predictions
from lstm_madness.store.runs import get_run

FAST_EVAL = {"evaluation.bootstrap_reps": 200}
ZERO_COST = {"backtest.cost_bps": 0.0, **FAST_EVAL}
TABLES = ("runs", "folds", "predictions", "metrics")


@pytest.fixture
def engine(db_url):
    engine = make_engine(db_url)
    yield engine
    engine.dispose()


@pytest.fixture
def history(engine, write_returns) -> pd.DataFrame:
    """A synthetic target SYN of 1,400 days, its stored returns (read_returns' shape)."""
    rng = np.random.default_rng(0)
    write_returns(engine, "SYN", rng.normal(0.0003, 0.012, 1400))
    return read_returns(engine, "SYN")


def _days(history: pd.DataFrame, n: int) -> pd.DataFrame:
    """The last ``n`` decision dates with a stored outcome (the last stored day has none)."""
    return history.iloc[-n - 1 : -1]


def _counts(engine: sa.Engine) -> dict[str, int]:
    with engine.connect() as conn:
        return {
            t: int(
                conn.execute(
                    sa.select(sa.func.count()).select_from(schema.all_tables().tables[t])
                ).scalar_one()
            )
            for t in TABLES
        }


def _csv(path: Path, rows: list[str], header: str = "date,prediction") -> Path:
    path.write_text(header + "\n" + "".join(r + "\n" for r in rows))
    return path


def _series_rows(series: pd.Series) -> list[str]:
    return [f"{d:%Y-%m-%d},{float(v)!r}" for d, v in series.items()]


def test_planted_signal_is_tradeable_and_noise_is_not(engine, history) -> None:
    days = _days(history, 1000)
    rng = np.random.default_rng(1)
    # corr ≈ 0.2 with the outcome, shrunk to its best scale: R²_oos ≈ 4 %, hit rate ≈ 56 %
    signal = 0.04 * (days["next_ret"].to_numpy() + rng.normal(0, 0.06, len(days)))
    planted = judge(
        pd.Series(signal, index=days["date"], name="planted"),
        target="SYN",
        db=engine,
        overrides=ZERO_COST,
    )
    assert isinstance(planted, RunResult)
    assert planted.verdict.tradeable, planted.verdict.reasons
    assert not any("too good" in w for w in planted.verdict.warnings)
    noise = judge(
        pd.Series(rng.normal(0, 0.01, len(days)), index=days["date"], name="noise"),
        target="SYN",
        db=engine,
        overrides=ZERO_COST,
    )
    assert not noise.verdict.tradeable
    # both are stored as imported runs of their own model, in one trial set
    for result, model in ((planted, "planted"), (noise, "noise")):
        row = get_run(engine, result.run_id)
        assert (row.kind, row.primary_model, row.status) == ("imported", model, "succeeded")
        other = get_run(engine, (noise if result is planted else planted).run_id)
        assert row.config_hash == row.family_hash != other.config_hash
        assert row.import_spec["model"] == model and row.seed is None
        stored = load_predictions(engine, result.run_id)
        assert set(stored["model"]) == {
            model,
            "baseline:zero",
            "baseline:mean",
            "baseline:persistence",
        }
        one = stored.loc[stored["model"] == model].reset_index(drop=True)
        np.testing.assert_array_equal(one["realized"], days["next_ret"].to_numpy())
        np.testing.assert_array_equal(one["y_true"], days["next_ret"].to_numpy())
        assert result.to_json()["import"]["alignment"] == "next_day"
    assert load_run(planted.run_id, db=engine).significance["trials"] == 2
    assert noise.significance["trials"] == 2
    assert planted.at_finish["trials"] == 1
    # the result object reads as the CLI does, and shows in a notebook
    assert load_run(planted.run_id, db=engine).summary().startswith(f"run {planted.run_id} ")
    html = planted._repr_html_()
    assert "verdict: TRADEABLE" in html and "baseline:mean" in html


def test_same_day_and_next_day_files_store_identical_predictions(engine, history, tmp_path):
    days = _days(history, 300)
    pred = np.random.default_rng(4).normal(0, 0.01, len(days))
    following = history["date"].iloc[-300:]  # the date of the return each one predicts
    nd = _csv(tmp_path / "nd.csv", _series_rows(pd.Series(pred, index=days["date"])))
    sd = _csv(tmp_path / "sd.csv", _series_rows(pd.Series(pred, index=following.to_numpy())))
    a = judge(nd, target="SYN", db=engine, overrides=FAST_EVAL)
    b = judge(sd, target="SYN", db=engine, alignment="same_day", overrides=FAST_EVAL)
    pa = load_predictions(engine, a.run_id)
    pb = load_predictions(engine, b.run_id)
    pd.testing.assert_frame_equal(pa, pb)
    assert b.to_json()["import"]["alignment"] == "same_day"
    assert a.metrics == b.metrics


def _bad_inputs(history: pd.DataFrame, tmp_path: Path) -> dict[str, tuple[Path, dict, type, str]]:
    days = _days(history, 300)
    ok = _series_rows(pd.Series(0.001, index=days["date"]))
    day = [r.split(",")[0] for r in ok]
    last = history["date"].iloc[-1]
    saturday = days["date"].iloc[100] + pd.offsets.Week(weekday=5)
    v = ValidationError
    cases = {
        "unparseable date": ([*ok[:5], "2020-13-45,0.1", *ok[5:]], {}, v, "unparseable date"),
        "unparseable number": ([*ok[:5], day[5] + ",abc", *ok[6:]], {}, v, "not a number"),
        "nan prediction": ([day[0] + ",nan", *ok[1:]], {}, v, "prediction is NaN"),
        "infinite prediction": ([day[0] + ",inf", *ok[1:]], {}, v, "prediction is infinite"),
        "duplicate date": ([*ok, ok[3]], {}, v, "duplicate date"),
        "not a trading day": ([*ok, f"{saturday:%Y-%m-%d},0.1"], {}, v, "not a trading day"),
        "missing trading day": (ok[:10] + ok[11:], {}, v, "missing inside the file's range"),
        "outcome not stored": ([*ok, f"{last:%Y-%m-%d},0.1"], {}, v, "outcome is not stored"),
        "probability above 1": (
            [d + ",1.5" for d in day],
            {"task": "direction"},
            v,
            "must be in [0, 1]",
        ),
        "unknown target": (ok, {"target": "NOPE"}, DataError, "unknown symbol"),
        "too few days": (ok[:2], {}, DataError, "fewer than 3 trading days"),
        "setting outside backtest/evaluation": (
            ok,
            {"overrides": {"model.units": [8]}},
            ConfigError,
            "only takes settings of [backtest], [evaluation]",
        ),
        "bad trials": (ok, {"trials": 0}, ConfigError, "trials must be a positive integer"),
        "bad alignment": (ok, {"alignment": "tomorrow"}, ConfigError, "alignment must be"),
    }
    return {
        name: (_csv(tmp_path / f"bad{k}.csv", rows), kwargs, error, words)
        for k, (name, (rows, kwargs, error, words)) in enumerate(cases.items())
    }


def test_every_rejection_stores_nothing(engine, history, tmp_path) -> None:
    empty = _counts(engine)
    assert empty["runs"] == 0
    for name, (path, kwargs, error, words) in _bad_inputs(history, tmp_path).items():
        kwargs = {"target": "SYN", **kwargs}
        with pytest.raises(error) as info:
            judge(path, db=engine, overrides=kwargs.pop("overrides", FAST_EVAL), **kwargs)
        assert words in str(info.value), (name, str(info.value))
        assert _counts(engine) == empty, name
        if error is ValidationError:
            assert str(path) in str(info.value) and info.value.problems, name
    # the gap is accepted with allow_gaps: no position on the missing day
    days = _days(history, 300)
    holes = pd.Series(0.001, index=days["date"]).drop(days["date"].iloc[10])
    result = judge(holes, target="SYN", db=engine, allow_gaps=True, overrides=FAST_EVAL)
    assert result.to_json()["n_test"] == 300
    assert result.predictions.query("model == 'forecast'")["position"].iloc[10] == 0.0


def test_rejudging_stores_nothing_unless_forced(engine, history, tmp_path) -> None:
    days = _days(history, 300)
    path = _csv(tmp_path / "f.csv", _series_rows(pd.Series(0.001, index=days["date"])))
    first = judge(path, target="SYN", db=engine, overrides=FAST_EVAL)
    before = _counts(engine)
    copy = tmp_path / "copy.csv"
    copy.write_bytes(path.read_bytes())  # same bytes under another name: the same file
    with pytest.raises(AlreadyJudgedError, match=f"run {first.run_id}") as info:
        judge(copy, target="SYN", db=engine, overrides=FAST_EVAL)
    assert info.value.held == {"forecast": first.run_id}
    assert _counts(engine) == before
    # other settings are another judgement; force judges the same one again
    other = judge(path, target="SYN", db=engine, overrides={**FAST_EVAL, "backtest.cost_bps": 1})
    again = judge(path, target="SYN", db=engine, overrides=FAST_EVAL, force=True)
    assert len({first.run_id, other.run_id, again.run_id}) == 3
    # three judgements of one forecast: one trial (the earliest stands for the others)
    assert again.significance["trials"] == 1
    assert again.significance["duplicates"] == 2


def test_declared_trials_add_to_n_and_short_periods_are_too_short(engine, history) -> None:
    days = _days(history, 120)
    series = pd.Series(np.random.default_rng(3).normal(0, 0.01, len(days)), index=days["date"])
    result = judge(series, target="SYN", db=engine, trials=19, overrides=FAST_EVAL)
    assert result.significance["trials"] == 20
    assert result.significance["trials_declared"] == 19
    assert not result.verdict.tradeable
    assert any("too short to decide" in r for r in result.verdict.reasons)
    # declared tries were tries on this test period: they count for every member
    other = judge((1.5 * series).rename("other"), target="SYN", db=engine, overrides=FAST_EVAL)
    assert other.significance["trials"] == 21
    assert load_run(result.run_id, db=engine).significance["trials"] == 21
    # the same forecast again, under another name: one trial, its declaration counted once
    same = judge(series.rename("again"), target="SYN", db=engine, overrides=FAST_EVAL)
    assert same.significance["trials"] == 21 and same.significance["duplicates"] == 1


def test_several_models_give_several_runs_in_one_trial_set(engine, history) -> None:
    days = _days(history, 300)
    rng = np.random.default_rng(5)
    wide = pd.DataFrame(
        {"a": rng.normal(0, 0.01, len(days)), "b": rng.normal(0, 0.01, len(days))},
        index=pd.DatetimeIndex(days["date"], name="date"),
    )
    results = judge(wide, target="SYN", db=engine, name="pair", overrides=FAST_EVAL)
    assert [r.primary for r in results] == ["a", "b"]
    assert [r.run.name for r in results] == ["pair:a", "pair:b"]
    assert all(r.significance["trials"] == 2 for r in results)


def test_the_classic_leak_is_flagged_in_the_stored_summary(engine, history) -> None:
    days = _days(history, 400)
    leak = pd.Series(days["next_ret"].to_numpy(), index=days["date"], name="leaky")
    result = judge(leak, target="SYN", db=engine, overrides=FAST_EVAL)
    stored = get_run(engine, result.run_id).summary
    warnings = stored["verdict"]["warnings"]
    assert any(w.startswith("too good to be true: leaky") for w in warnings)
    assert result.verdict.warnings == warnings


FAST_RUN = {
    "data": {"target": "SYN"},
    "model": {"units": [8], "time_steps": 5},
    "train": {"epochs": 3, "batch_size": 64},
    "evaluation": {"bootstrap_reps": 200},
}


def test_imported_and_trained_runs_count_each_other_as_trials(engine, history) -> None:
    trained = run(FAST_RUN, db=engine, name="tiny")
    assert isinstance(trained, RunResult) and trained.significance["trials"] == 1
    assert trained.to_json() == get_run(engine, trained.run_id).summary
    dates = trained.frame.index
    forecast = pd.Series(np.random.default_rng(6).normal(0, 0.01, len(dates)), index=dates)
    imported = judge(forecast, target="SYN", db=engine, overrides=FAST_EVAL)
    assert (imported.to_json()["test_start"], imported.to_json()["test_end"]) == (
        trained.to_json()["test_start"],
        trained.to_json()["test_end"],
    )
    assert imported.significance["trials"] == 2
    assert set(imported.trial_ids) == {trained.run_id, imported.run_id}
    again = load_run(trained.run_id, db=engine)
    assert again.significance["trials"] == 2
    assert set(again.trial_ids) == {trained.run_id, imported.run_id}


def test_run_takes_a_toml_path_with_overrides(engine, history, tmp_path) -> None:
    path = tmp_path / "c.toml"
    path.write_text('[data]\ntarget = "SYN"\n[model]\nunits = [4]\ntime_steps = 5\n')
    result = run(path, db=engine, overrides={"train.epochs": 2, **FAST_EVAL})
    assert result.config.train.epochs == 2 and result.config.model.units == (4,)
    assert json.loads(json.dumps(result.to_json(), default=str))["status"] == "succeeded"
    with pytest.raises(ConfigError):
        run({"model": {"units": "many"}}, db=engine)
    with pytest.raises(MadnessError):
        load_run(999, db=engine)


def test_the_demo_lstm_is_not_too_good_to_be_true(sqlite_url) -> None:
    """The demo's study (S&P 500 sample, walk-forward LSTM), shortened: no warning."""
    import tomllib

    from lstm_madness.data.ingest import ingest_sample
    from lstm_madness.demo import DEMO_TOML

    engine = make_engine(sqlite_url)
    init_db(engine)
    ingest_sample(engine, "sp500")
    config = tomllib.loads(DEMO_TOML)
    result = run(
        config,
        db=engine,
        overrides={
            "data.start": "2012-01-03",
            "model.units": [8],
            "train.epochs": 3,
            "split.initial_train_days": 750,
            **FAST_EVAL,
        },
    )
    assert result.to_json()["n_test"] >= 250  # long enough for the hit-rate rule
    assert not any("too good" in w for w in result.verdict.warnings), result.verdict.warnings
    engine.dispose()


def test_direction_probabilities_are_judged_against_direction_baselines(engine, history):
    days = _days(history, 300)
    up = (days["next_ret"].to_numpy() > 0).astype(float)
    probs = np.clip(0.5 + 0.2 * (up - 0.5) + np.random.default_rng(8).normal(0, 0.2, 300), 0, 1)
    result = judge(
        pd.Series(probs, index=days["date"], name="probs"),
        target="SYN",
        db=engine,
        task="direction",
        overrides=FAST_EVAL,
    )
    assert result.config.task == "classification"
    assert set(result.metrics) == {
        "probs",
        "baseline:always_up",
        "baseline:majority",
        "baseline:persistence",
    }
    stored = load_predictions(engine, result.run_id, models=["probs"])
    np.testing.assert_array_equal(stored["y_true"], up)
    np.testing.assert_array_equal(stored["realized"], days["next_ret"].to_numpy())
