"""A look-ahead canary for universe studies, end to end: change one member's prices
strictly after day t, rerun in a second store, and every prediction dated <= t (the
network's and every baseline's) must be the same to the last bit.

A small synthetic universe (6 members, one joining late; a benchmark used as an input and
the cross-sectionally standardized return), walk-forward folds with t inside a fold's
test block: that fold trains on data before t, while later folds train on the changed
prices, so later predictions must move (the canary's own check that it can fail).
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from lstm_madness.cli import app
from lstm_madness.data import schema
from lstm_madness.data.bulk import insert_frame
from lstm_madness.data.db import make_engine
from lstm_madness.data.membership import store_membership
from lstm_madness.data.store import init_db

pytestmark = pytest.mark.slow

N_DAYS, N_MEMBERS, T = 360, 6, 275  # t = T: inside the test block of days 250-299
MEMBER, LATE = "S02", "S05"  # the member whose prices change after t; one joining late
BASELINES = ["zero", "reversal", "momentum", "ridge", "logistic"]
CONFIG = f"""
[data]
target = "universe:canary"
standardized_input = true
benchmark_input = true
[target]
benchmark = "MKT"
[model]
units = [4]
time_steps = 5
[train]
epochs = 2
patience = 1
batch_size = 128
learning_rate = 0.003
[split]
scheme = "walk_forward"
initial_train_days = 200
retrain_every_days = 50
[baselines]
models = {json.dumps(BASELINES)}
[backtest]
rule = "long_short"
top_k = 2
[evaluation]
bootstrap_reps = 20
"""


def _prices() -> tuple[pd.DatetimeIndex, pd.DataFrame]:
    """Closes of the members and the benchmark MKT (a planted reversal, so the models have
    something to learn)."""
    rng = np.random.default_rng(11)
    dates = pd.bdate_range("2015-01-05", periods=N_DAYS, name="date")
    market = rng.normal(0.0003, 0.01, N_DAYS)
    ret = np.empty((N_DAYS, N_MEMBERS))
    ret[0] = market[0] + rng.normal(0, 0.02, N_MEMBERS)
    for t in range(1, N_DAYS):
        ret[t] = market[t] - 0.2 * (ret[t - 1] - ret[t - 1].mean())
        ret[t] += rng.normal(0, 0.02, N_MEMBERS)
    closes = 100.0 * np.cumprod(1.0 + np.column_stack([ret, market]), axis=0)
    columns = [f"S{j:02d}" for j in range(N_MEMBERS)] + ["MKT"]
    return dates, pd.DataFrame(closes, index=dates, columns=columns)


def _store(path: Path, closes: pd.DataFrame) -> sa.Engine:
    engine = make_engine(f"sqlite:///{path}")
    init_db(engine)
    dates = closes.index
    with engine.begin() as conn:
        for symbol in closes.columns:
            close = closes[symbol].to_numpy()
            frame = pd.DataFrame(
                {
                    "symbol": symbol,
                    "date": dates.date,
                    "open": close,
                    "high": close,
                    "low": close,
                    "close": close,
                    "adj_close": close,
                    "volume": 1_000_000,
                    "source": "synthetic",
                    "ingested_at": dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
                }
            )
            insert_frame(conn, schema.bars, frame)
        members = [s for s in closes.columns if s != "MKT"]
        intervals = pd.DataFrame(
            [(s, dates[120] if s == LATE else dates[0], None) for s in members],
            columns=["symbol", "start", "end"],
        )
        intervals["start"] = pd.to_datetime(intervals["start"])
        intervals["end"] = pd.to_datetime(intervals["end"])
        store_membership(conn, schema.universe_members, "canary", intervals)
    return engine


def _predictions(engine: sa.Engine) -> pd.DataFrame:
    with engine.connect() as conn:
        rows = pd.read_sql_query(
            sa.text("SELECT model, date, symbol, y_pred FROM predictions"), conn
        )
    rows["date"] = pd.to_datetime(rows["date"])
    return rows.set_index(["model", "date", "symbol"]).sort_index()["y_pred"]


@pytest.mark.parametrize("kind", ["cross_section_direction", "cross_section"])
def test_prices_after_t_never_move_a_prediction_dated_t_or_before(tmp_path, kind) -> None:
    dates, closes = _prices()
    config = tmp_path / "canary.toml"
    config.write_text(CONFIG)
    t = dates[T]
    moved = closes.copy()
    after = moved.index > t
    factors = np.random.default_rng(3).uniform(0.7, 1.4, after.sum())
    moved.loc[after, MEMBER] *= factors  # strictly after t: ret[t + 1 ..] of one member
    preds = {}
    for name, frame in (("original", closes), ("moved", moved)):
        path = tmp_path / f"{name}.db"
        _store(path, frame).dispose()
        args = ["run", str(config), "--db", f"sqlite:///{path}", "--set", f"target.kind={kind}"]
        result = CliRunner().invoke(app, args)
        assert result.exit_code == 0, result.output
        engine = make_engine(f"sqlite:///{path}")
        preds[name] = _predictions(engine)
        engine.dispose()
    a, b = preds["original"], preds["moved"]
    models = set(a.index.get_level_values("model"))
    assert models == {"lstm", *(f"baseline:{m}" for m in BASELINES)}
    pd.testing.assert_index_equal(a.index, b.index)  # the same (model, date, member) rows
    up_to_t = a.index.get_level_values("date") <= t
    assert up_to_t.sum() > 0 and (~up_to_t).sum() > 0
    for model in sorted(models):  # bit for bit, model by model
        mine = a.index.get_level_values("model") == model
        np.testing.assert_array_equal(
            a[mine & up_to_t].to_numpy(), b[mine & up_to_t].to_numpy(), err_msg=model
        )
    # the canary can fail: the changed prices do move later predictions
    for model in ("lstm", "baseline:reversal", "baseline:ridge", "baseline:logistic"):
        later = (a.index.get_level_values("model") == model) & ~up_to_t
        assert not np.array_equal(a[later].to_numpy(), b[later].to_numpy()), model
