"""Golden files: every study kind, end to end, gives the stored predictions and summaries
it gave when the files were written.

Exact where the arithmetic is the same on every CPU: the rows stored (run, split, model,
date, symbol, fold), their labels and realized returns, every string and count. Within
:data:`RTOL` for what trained networks produce (predictions, and the figures computed from
them): the compiled kernels and BLAS take other instruction paths on other CPU kinds
(AVX2 vs AVX-512, Intel vs AMD), which moves float32 training in its last bits — measured
at most 7e-7 relative in every summary figure between two CPU kinds. A change of the
pipeline's numbers is far larger than that.

The pipeline's structure may change (issue 19: one pipeline for both study kinds); its
numbers may not. Each case builds a fresh SQLite store from data the test can always reach
(the S&P 500 sample that ``arch`` ships, or synthetic prices from a seed), trains with one
torch thread (the session fixture in conftest), and compares with ``tests/golden/*.json``:

- ``demo``: ``madness demo`` with two seeds and few epochs (a sweep of seeds, walk-forward);
- ``judged``: forecasts made elsewhere, judged twice (the second a repeat, re-stamped);
- ``time_series``: a hold-out return study with components and a direction study;
- ``universe``: a cross-sectional study of a synthetic universe with point-in-time members.

A change that alters numbers on purpose regenerates the files with
``MADNESS_UPDATE_GOLDEN=1 python -m pytest tests/test_golden.py`` and says why in its
commit. Timings are left out (they are not numbers of the study).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from lstm_madness.data.db import make_engine

GOLDEN = Path(__file__).parent / "golden"
UPDATE = os.environ.get("MADNESS_UPDATE_GOLDEN") == "1"
VOLATILE = ("timings",)  # wall-clock figures (and every key ending in "_s", seconds)
FAST = {"evaluation.bootstrap_reps": 200}

pytestmark = pytest.mark.slow


#: Relative tolerance of the numbers trained networks produce (module docstring).
RTOL = 1e-5


def _predictions(engine: sa.Engine) -> dict[str, Any]:
    """The stored prediction rows: a digest of what every CPU computes alike (keys, labels,
    realized returns), and per (run, split, model) a sketch of the predictions (their sum,
    a sum weighted by fixed pseudo-random weights in [-1, 1], the sum of squares and of
    magnitudes) compared within :data:`RTOL` of each value."""
    with engine.connect() as conn:
        rows = conn.exec_driver_sql(
            "SELECT run_id, split, model, date, symbol, fold, y_true, realized, y_pred "
            "FROM predictions ORDER BY run_id, split, model, date, symbol"
        ).all()
    h = hashlib.sha256()
    groups: dict[str, list[float]] = {}
    for row in rows:
        h.update(("|".join(repr(v) for v in row[:-1]) + "\n").encode())
        groups.setdefault(f"{row[0]}/{row[1]}/{row[2]}", []).append(float(row[-1]))
    sketches = {}
    for key, values in groups.items():
        y = np.asarray(values)
        weights = np.random.default_rng(len(y)).uniform(-1.0, 1.0, len(y))
        sketches[key] = [
            float(y.sum()),
            float(weights @ y),
            float((y * y).sum()),
            float(np.abs(y).sum()),
        ]
    return {"rows": len(rows), "sha256": h.hexdigest(), "y_pred": sketches}


def _close(a: float, b: float, scale: float) -> bool:
    return abs(a - b) <= RTOL * max(abs(a), abs(b), scale)


def _summaries(engine: sa.Engine) -> dict[str, Any]:
    from lstm_madness.experiment.summary import evaluate_runs

    with engine.connect() as conn:
        ids = [int(i) for (i,) in conn.exec_driver_sql("SELECT id FROM runs ORDER BY id")]
    return {str(run_id): _scrub(ev.summary) for run_id, ev in evaluate_runs(engine, ids).items()}


def _scrub(value: Any) -> Any:
    """``value`` without wall-clock figures: ``timings`` and keys ending in ``_s``."""
    if isinstance(value, dict):
        return {
            k: _scrub(v) for k, v in value.items() if k not in VOLATILE and not k.endswith("_s")
        }
    if isinstance(value, list):
        return [_scrub(v) for v in value]
    return value


def _first_difference(a: Any, b: Any, path: str = "") -> str | None:
    if isinstance(a, dict) and isinstance(b, dict):
        for key in sorted(set(a) | set(b)):
            if key not in a or key not in b:
                return f"{path}.{key}: only in {'golden' if key in a else 'now'}"
            found = _first_difference(a[key], b[key], f"{path}.{key}")
            if found:
                return found
        return None
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            found = _first_difference(x, y, f"{path}[{i}]")
            if found:
                return found
        return None
    numbers = (int, float)
    floats = isinstance(a, float) or isinstance(b, float)
    if isinstance(a, numbers) and isinstance(b, numbers) and floats:
        return None if _close(a, b, 1e-9) else f"{path}: golden {a!r}, now {b!r}"
    return None if a == b else f"{path}: golden {a!r}, now {b!r}"


def _check(name: str, engine: sa.Engine) -> None:
    now = json.loads(
        json.dumps({"predictions": _predictions(engine), "summaries": _summaries(engine)})
    )
    path = GOLDEN / f"{name}.json"
    if UPDATE or not path.exists():
        if not UPDATE:
            pytest.fail(f"{path} is missing: write it with MADNESS_UPDATE_GOLDEN=1")
        path.write_text(json.dumps(now, indent=1, sort_keys=True) + "\n")
        return
    golden = json.loads(path.read_text())
    stored, expected = now["predictions"], golden["predictions"]
    assert (stored["rows"], stored["sha256"]) == (expected["rows"], expected["sha256"]), (
        "stored prediction rows, labels or realized returns changed"
    )
    assert stored["y_pred"].keys() == expected["y_pred"].keys()
    for key, sketch in expected["y_pred"].items():
        got = stored["y_pred"][key]
        # each value within RTOL bounds the sums by RTOL times the sum of magnitudes
        l1 = max(abs(sketch[3]), abs(got[3]))
        ok = [_close(sketch[0], got[0], l1), _close(sketch[1], got[1], l1)]
        ok += [
            abs(sketch[2] - got[2]) <= 2 * RTOL * max(sketch[2], got[2]),
            _close(sketch[3], got[3], 0),
        ]
        assert all(ok), f"predictions of {key} changed: golden {sketch}, now {got}"
    difference = _first_difference(golden["summaries"], now["summaries"])
    assert difference is None, f"summary changed at {difference}"


@pytest.fixture
def store(tmp_path: Path) -> tuple[str, sa.Engine]:
    url = f"sqlite:///{tmp_path / 'golden.db'}"
    engine = make_engine(url)
    yield url, engine
    engine.dispose()


def test_demo(store, tmp_path: Path) -> None:
    from lstm_madness.demo import run_demo

    url, engine = store
    run_demo(
        url,
        tmp_path / "report",
        seeds=2,
        overrides=["train.epochs=3", "data.start=2008-01-02", "evaluation.bootstrap_reps=200"],
    )
    _check("demo", engine)


def test_judged(store, write_returns: Callable) -> None:
    from lstm_madness import judge
    from lstm_madness.data.store import read_returns

    _, engine = store
    rng = np.random.default_rng(11)
    write_returns(engine, "SYN", rng.normal(0.0003, 0.012, 900))
    history = read_returns(engine, "SYN")
    days = history.iloc[-401:-1]
    signal = 0.04 * (days["next_ret"].to_numpy() + rng.normal(0, 0.05, len(days)))
    wide = pd.DataFrame(
        {"signal": signal, "noise": rng.normal(0, 0.01, len(days))},
        index=pd.DatetimeIndex(days["date"], name="date"),
    )
    judge(wide, target="SYN", db=engine, trials=3, overrides=FAST)
    # the same signal dated with the day of the return it is for: one trial with the first
    after = pd.DatetimeIndex(history["date"].iloc[-400:])
    judge(
        pd.Series(signal, index=after, name="signal"),
        target="SYN",
        db=engine,
        alignment="same_day",
        overrides=FAST,
    )
    ups = (rng.random(len(days)) < 0.55).astype(float)
    judge(
        pd.Series(0.3 + 0.4 * ups, index=wide.index, name="clf"),
        target="SYN",
        db=engine,
        task="direction",
        overrides=FAST,
    )
    _check("judged", engine)


TIME_SERIES = """
name = "golden-time-series"

[data]
target = "SYN"
inputs = ["SYN", "AAA", "BBB"]
start = 2001-01-02

[model]
units = [8]
time_steps = 5

[train]
epochs = 4
batch_size = 32
patience = 0

[split]
scheme = "holdout"
train_fraction = 0.7

[evaluation]
bootstrap_reps = 200
"""


def test_time_series(store, write_returns: Callable, ar1_returns: Callable) -> None:
    from lstm_madness import run

    url, engine = store
    write_returns(engine, "SYN", ar1_returns(1300, 0.05, seed=1))
    write_returns(engine, "AAA", ar1_returns(1300, -0.05, seed=2))
    write_returns(engine, "BBB", ar1_returns(1300, 0.0, seed=3))
    path = Path(url.removeprefix("sqlite:///")).with_name("ts.toml")
    path.write_text(TIME_SERIES)
    run(path, db=engine)
    run(path, db=engine, overrides={"train.seed": 1, "model.kind": "gru"})
    run(
        path,
        db=engine,
        overrides={
            "target.kind": "direction",
            "split.scheme": "walk_forward",
            "split.initial_train_days": 700,
            "split.retrain_every_days": 250,
        },
    )
    _check("time_series", engine)


UNIVERSE = """
name = "golden-universe"

[data]
target = "universe:synth"
standardized_input = true

[target]
kind = "cross_section"
benchmark = "MKT"

[model]
units = [8]
time_steps = 5

[train]
epochs = 3
patience = 0
batch_size = 256
learning_rate = 0.003

[split]
scheme = "walk_forward"
initial_train_days = 1000
retrain_every_days = 250

[backtest]
rule = "long_short"
top_k = 5

[evaluation]
bootstrap_reps = 100
"""


def test_universe(store, make_universe: Callable) -> None:
    import datetime as dt

    from lstm_madness import run
    from lstm_madness.data import schema
    from lstm_madness.data.bulk import insert_frame
    from lstm_madness.data.membership import store_membership
    from lstm_madness.data.store import init_db

    url, engine = store
    fields, intervals, market = make_universe(n_symbols=20, n_days=1400, reversal=0.1)
    ret = fields["ret"]
    init_db(engine)

    def bars(symbol: str, dates: pd.DatetimeIndex, returns: np.ndarray) -> pd.DataFrame:
        close = 100.0 * np.cumprod(1.0 + returns)
        return pd.DataFrame(
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

    with engine.begin() as conn:
        insert_frame(conn, schema.bars, bars("MKT", ret.index, market.to_numpy()))
        for s in ret.columns:
            ok = ret[s].notna().to_numpy()
            insert_frame(conn, schema.bars, bars(s, ret.index[ok], ret[s][ok].to_numpy()))
        store_membership(conn, schema.universe_members, "synth", intervals)
    path = Path(url.removeprefix("sqlite:///")).with_name("xs.toml")
    path.write_text(UNIVERSE)
    run(path, db=engine)
    run(path, db=engine, overrides={"target.kind": "cross_section_direction", "backtest.top_k": 3})
    _check("universe", engine)
