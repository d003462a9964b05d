"""Imported forecasts end to end without a store: file → calendar → baselines → verdict.

The target's history is synthetic; ``returns`` has the shape of
:func:`lstm_madness.data.store.read_returns`.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from lstm_madness.data.alignment import align_forecasts
from lstm_madness.data.forecasts import forecasts_from_pandas, parse_forecasts
from lstm_madness.errors import ConfigError, DataError, ValidationError
from lstm_madness.evaluation.study import EvaluationSettings
from lstm_madness.experiment.imported import (
    ROW_COLUMNS,
    ImportSpec,
    imported_models,
    judge_config,
)
from lstm_madness.experiment.summary import evaluation_settings

ZERO_COST = EvaluationSettings(cost_bps=0.0, bootstrap_reps=200, seed=0)


def _history(n: int = 1600, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    dates = pd.bdate_range("2012-01-02", periods=n)
    r = rng.normal(0.0003, 0.012, n)
    r[0] = np.nan  # no close before the first stored day
    nxt = np.append(r[1:], np.nan)
    return pd.DataFrame({"date": dates, "ret": r, "next_ret": nxt})


def _judge(series: pd.Series, history: pd.DataFrame, task: str = "return", **kw):
    f = forecasts_from_pandas(series, task=task)
    aligned = align_forecasts(f.frame, history["date"], **kw)
    (model,) = imported_models(aligned, history, task)
    return model


def _test_days(history: pd.DataFrame, n: int = 1000) -> pd.DataFrame:
    return history.iloc[-n - 1 : -1]  # the last stored day has no outcome yet


def test_planted_signal_is_tradeable_and_noise_is_not() -> None:
    history = _history()
    days = _test_days(history)
    rng = np.random.default_rng(1)
    signal = 0.5 * (days["next_ret"] + rng.normal(0, 0.012, len(days)))
    planted = _judge(pd.Series(signal.to_numpy(), index=days["date"], name="gbm"), history)
    ev = planted.evaluate(ZERO_COST)
    assert ev.verdict.tradeable, ev.verdict.reasons
    assert ev.primary == "gbm"
    assert set(ev.predictions) == {"gbm", "baseline:zero", "baseline:mean", "baseline:persistence"}
    for seed in (2, 3):
        noise = np.random.default_rng(seed).normal(0, 0.01, len(days))
        model = _judge(pd.Series(noise, index=days["date"], name="noise"), history)
        ev = model.evaluate(ZERO_COST)
        assert not ev.verdict.tradeable
        assert not any("too good" in w for w in ev.verdict.warnings)


def test_labels_realized_returns_and_baselines_come_from_the_stored_history() -> None:
    history = _history(400)
    days = _test_days(history, 300)
    model = _judge(pd.Series(0.001, index=days["date"], name="m"), history)
    np.testing.assert_array_equal(model.realized, days["next_ret"].to_numpy())
    np.testing.assert_array_equal(model.y_true, model.realized)
    r = history["ret"].to_numpy()
    first = len(history) - 301  # position of the first decision date
    mean = model.predictions["baseline:mean"]
    assert mean[0] == pytest.approx(np.nanmean(r[: first + 1]))  # up to and including t
    assert model.predictions["baseline:persistence"][0] == r[first]
    rows = model.prediction_rows("SYN")
    assert tuple(rows.columns) == ROW_COLUMNS and len(rows) == 4 * 300
    assert (rows["split"] == "test").all() and (rows["symbol"] == "SYN").all()
    one = rows.loc[rows["model"] == "baseline:zero"]
    np.testing.assert_array_equal(one["realized"], model.realized)
    assert (model.test_start, model.test_end) == (days["date"].iloc[0], days["date"].iloc[-1])


def test_same_day_and_next_day_files_give_identical_predictions() -> None:
    history = _history(500)
    days = _test_days(history, 300)
    pred = np.random.default_rng(4).normal(0, 0.01, len(days))
    following = history["date"].iloc[-300:]  # the date of the return each one predicts
    nd = "".join(f"{d:%Y-%m-%d},{float(p)!r}\n" for d, p in zip(days["date"], pred, strict=True))
    sd = "".join(f"{d:%Y-%m-%d},{float(p)!r}\n" for d, p in zip(following, pred, strict=True))
    rows = []
    for body, alignment in ((nd, "next_day"), (sd, "same_day")):
        f = parse_forecasts(("date,prediction\n" + body).encode(), "f.csv")
        aligned = align_forecasts(f.frame, history["date"], alignment=alignment)
        rows.append(imported_models(aligned, history)[0].prediction_rows("SYN"))
    pd.testing.assert_frame_equal(rows[0], rows[1])


def test_the_classic_leak_is_too_good_to_be_true() -> None:
    history = _history()
    days = _test_days(history)
    leak = pd.Series(days["next_ret"].to_numpy(), index=days["date"], name="leaky")
    warnings = _judge(leak, history).evaluate(ZERO_COST).verdict.warnings
    assert [w for w in warnings if w.startswith("too good to be true: leaky")]
    # a forecast stamped one day late in a next_day file is the same leak
    late = pd.Series(days["ret"].to_numpy(), index=days["date"], name="honest")
    warnings = _judge(late, history).evaluate(ZERO_COST).verdict.warnings
    assert not any("too good" in w for w in warnings)


def test_gap_days_hold_no_position() -> None:
    history = _history(600)
    days = _test_days(history, 400)
    pred = pd.Series(np.random.default_rng(5).normal(0, 0.01, len(days)), index=days["date"])
    holes = pred.drop(pred.index[[10, 11, 200]])
    with pytest.raises(ValidationError, match="3 trading day"):
        _judge(holes, history)
    model = _judge(holes, history, allow_gaps=True)
    assert model.gaps.sum() == 3 and len(model.dates) == 400
    assert (model.predictions["forecast"][model.gaps] == 0.0).all()
    ev = model.evaluate(EvaluationSettings(bootstrap_reps=50))
    assert (ev.strategy.positions[model.gaps] == 0).all()
    assert (ev.strategy.positions[~model.gaps] != 0).all()


def test_direction_forecasts_use_up_labels_and_direction_baselines() -> None:
    history = _history(800)
    days = _test_days(history, 600)
    rng = np.random.default_rng(6)
    prob = np.clip(0.5 + 10 * (days["next_ret"].to_numpy() + rng.normal(0, 0.02, 600)), 0, 1)
    model = _judge(pd.Series(prob, index=days["date"], name="clf"), history, task="direction")
    assert set(np.unique(model.y_true)) == {0.0, 1.0}
    np.testing.assert_array_equal(model.y_true, (model.realized > 0).astype(float))
    assert set(model.predictions) == {
        "clf",
        "baseline:always_up",
        "baseline:majority",
        "baseline:persistence",
    }
    ev = model.evaluate(EvaluationSettings(bootstrap_reps=50))
    assert ev.task == "classification" and ev.r2_oos is None


def test_calendar_and_returns_must_agree() -> None:
    history = _history(300)
    days = _test_days(history, 100)
    f = forecasts_from_pandas(pd.Series(0.001, index=days["date"]))
    aligned = align_forecasts(f.frame, history["date"])
    broken = history.assign(next_ret=history["next_ret"].where(history.index != 250))
    with pytest.raises(DataError, match="no stored return to the next close"):
        imported_models(aligned, broken)


def test_judge_config_sets_target_and_task_and_takes_only_trading_settings() -> None:
    config = judge_config("^GSPC", "direction", ["backtest.cost_bps=2", ("evaluation.trials", 7)])
    assert config.data.target == "^GSPC" and config.target.kind == "direction"
    assert config.target.horizon == 1 and config.task == "classification"
    assert config.backtest.cost_bps == 2.0 and config.evaluation.trials == 7
    settings = evaluation_settings(config)
    assert settings.cost_bps == 2.0
    assert judge_config("XLF").target.kind == "return"
    with pytest.raises(ConfigError, match=r"only takes settings of \[backtest\], \[evaluation\]"):
        judge_config("XLF", overrides=["model.units=[8]"])
    with pytest.raises(ConfigError, match=r"backtest\.rule"):
        judge_config("XLF", overrides=["backtest.rule=sometimes"])
    with pytest.raises(ConfigError, match="return, direction"):
        judge_config("XLF", "excess")


def test_import_spec_hash_identifies_a_repeat_and_nothing_else() -> None:
    config = judge_config("XLF")
    spec = ImportSpec(file="a.csv", checksum="ab" * 32, model="gbm")
    same = ImportSpec(file="copy/of/a.csv", checksum="ab" * 32, model="gbm")
    assert spec.run_hash(config) == same.run_hash(config)
    others = [
        ImportSpec(file="a.csv", checksum="cd" * 32, model="gbm"),
        ImportSpec(file="a.csv", checksum="ab" * 32, model="other"),
        ImportSpec(file="a.csv", checksum="ab" * 32, model="gbm", alignment="same_day"),
        ImportSpec(file="a.csv", checksum="ab" * 32, model="gbm", allow_gaps=True),
        ImportSpec(file="a.csv", checksum="ab" * 32, model="gbm", trials=20),
    ]
    hashes = {spec.run_hash(config), *(o.run_hash(config) for o in others)}
    assert len(hashes) == 6
    costly = judge_config("XLF", overrides=["backtest.cost_bps=20"])
    assert spec.run_hash(costly) != spec.run_hash(config)
    assert spec.to_dict()["checksum"] == "ab" * 32
    with pytest.raises(ConfigError):
        ImportSpec(file="a.csv", checksum="", model="m", alignment="late")
    with pytest.raises(ConfigError):
        ImportSpec(file="a.csv", checksum="", model="m", trials=0)
