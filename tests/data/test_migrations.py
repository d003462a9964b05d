"""Schema migrations: a version-1 store is upgraded in place, keeping every bar and run."""

from __future__ import annotations

import datetime as dt
import importlib.util
from pathlib import Path

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from lstm_madness.cli import app
from lstm_madness.data import migrations, schema
from lstm_madness.data.db import make_engine
from lstm_madness.data.initdb import create_returns_view
from lstm_madness.data.store import init_db, read_bars
from lstm_madness.store.runs import get_run

_spec = importlib.util.spec_from_file_location(
    "schema_v1", Path(__file__).with_name("schema_v1.py")
)
v1 = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(v1)  # the frozen version-1 tables

NOW = dt.datetime(2024, 1, 2, 12, tzinfo=dt.UTC)
DAYS = [dt.date(2020, 1, 2) + dt.timedelta(days=i) for i in range(5)]


def _v1_store(engine: sa.Engine) -> None:
    """A store as version 1 of lstm-madness left it: bars, a sweep, a run, folds,
    predictions and metrics."""
    v1.metadata.create_all(engine)
    with engine.begin() as conn:
        conn.execute(v1.schema_version.insert().values(version=1, applied_at=NOW))
        create_returns_view(conn)
        conn.execute(v1.securities.insert().values(symbol="XLF", kind="etf", source="csv"))
        conn.execute(
            v1.bars.insert(),
            [
                dict(
                    symbol="XLF",
                    date=d,
                    open=10.0 + i,
                    high=11.0 + i,
                    low=9.0 + i,
                    close=10.5 + i,
                    adj_close=10.4 + i,
                    volume=100 * (i + 1),
                    source="csv",
                    ingested_at=NOW,
                )
                for i, d in enumerate(DAYS)
            ],
        )
        conn.execute(
            v1.sweeps.insert().values(
                id=1, config_json="{}", space_json="{}", engine="local", created_at=NOW
            )
        )
        conn.execute(
            v1.runs.insert().values(
                id=1,
                name="old",
                sweep_id=1,
                config_json='{"model": {"kind": "gru"}}',
                config_hash="a" * 64,
                family_hash="b" * 64,
                target="XLF",
                seed=7,
                test_start=DAYS[3],
                test_end=DAYS[4],
                status="succeeded",
                started_at=NOW,
                finished_at=NOW,
                summary_json='{"run_id": 1}',
            )
        )
        conn.execute(
            v1.folds.insert().values(
                run_id=1,
                fold=0,
                train_start=DAYS[0],
                train_end=DAYS[2],
                test_start=DAYS[3],
                test_end=DAYS[4],
                n_train=3,
                n_test=2,
                completed_at=NOW,
            )
        )
        conn.execute(
            v1.predictions.insert(),
            [
                dict(
                    run_id=1,
                    model="lstm",
                    fold=0,
                    split="test",
                    date=d,
                    symbol="XLF",
                    y_true=0.01,
                    y_pred=0.02,
                    realized=0.01,
                )
                for d in DAYS[3:]
            ],
        )
        conn.execute(
            v1.metrics.insert().values(run_id=1, model="lstm", split="test", name="mse", value=1.0)
        )


def _count(engine: sa.Engine, table: str) -> int:
    with engine.connect() as conn:
        return int(conn.exec_driver_sql(f"SELECT COUNT(*) FROM {table}").scalar_one())


def test_a_version_1_store_is_upgraded_in_place(db_url: str) -> None:
    engine = make_engine(db_url)
    _v1_store(engine)
    bars_before = read_bars(engine, "XLF")
    assert "kind" not in {c["name"] for c in sa.inspect(engine).get_columns("runs")}

    upgraded = CliRunner().invoke(app, ["db", "init", "--db", db_url])
    assert upgraded.exit_code == 0, upgraded.output
    assert f"schema version {schema.SCHEMA_VERSION}" in " ".join(upgraded.output.split())

    pd_bars = read_bars(engine, "XLF")
    assert pd_bars.equals(bars_before)
    for table, n in [("bars", 5), ("securities", 1), ("sweeps", 1), ("runs", 1), ("folds", 1)]:
        assert _count(engine, table) == n, table
    assert (_count(engine, "predictions"), _count(engine, "metrics")) == (2, 1)
    inspector = sa.inspect(engine)
    columns = {c["name"] for c in inspector.get_columns("runs")}
    assert {"kind", "primary_model", "objective", "checksum", "trainer", "import_json"} <= columns
    assert set(schema.all_tables().tables) <= set(inspector.get_table_names())
    assert "returns" in inspector.get_view_names()
    assert "ix_runs_target_period" in {i["name"] for i in inspector.get_indexes("runs")}
    with engine.connect() as conn:
        run = conn.execute(sa.select(schema.runs)).mappings().one()
        versions = conn.exec_driver_sql("SELECT version FROM schema_version ORDER BY version")
        assert versions.scalars().all() == list(range(1, schema.SCHEMA_VERSION + 1))
    # old runs trained their network under the model name "lstm", whatever the cell
    assert (run["kind"], run["primary_model"], run["objective"]) == ("trained", "lstm", None)
    assert run["import_json"] is None
    assert (run["name"], run["status"], run["summary_json"]) == (
        "old",
        "succeeded",
        '{"run_id": 1}',
    )
    record = get_run(engine, run["id"])  # an upgraded row reads as a Run record
    assert (record.kind, record.primary_model, record.summary, record.import_spec) == (
        "trained",
        "lstm",
        {"run_id": 1},
        None,
    )

    # the upgraded store takes version-2 rows, and a second init changes nothing
    with engine.begin() as conn:
        conn.execute(
            schema.universe_members.insert().values(
                universe="XLF", symbol="JPM", start=DAYS[0], end=None
            )
        )
    assert init_db(engine) == schema.SCHEMA_VERSION
    assert _count(engine, "universe_members") == 1
    assert (
        _count(engine, "schema_version") == schema.SCHEMA_VERSION
    )  # one row per version: 1 (created), then each step
    # version 4: predictions are keyed by symbol too (universe members share a date)
    pk = sa.inspect(engine).get_pk_constraint("predictions")["constrained_columns"]
    assert "symbol" in pk
    engine.dispose()


def test_a_failing_step_leaves_the_store_at_its_version(
    db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = make_engine(db_url)
    _v1_store(engine)

    def broken(conn: sa.Connection) -> None:
        conn.exec_driver_sql("ALTER TABLE runs ADD COLUMN kind TEXT")
        raise RuntimeError("disk full")

    monkeypatch.setitem(migrations.STEPS, 2, broken)
    with pytest.raises(RuntimeError, match="disk full"):
        init_db(engine)
    assert "kind" not in {c["name"] for c in sa.inspect(engine).get_columns("runs")}
    with engine.connect() as conn:
        assert migrations.stored_version(conn) == 1
    monkeypatch.undo()
    assert init_db(engine) == schema.SCHEMA_VERSION
    assert _count(engine, "runs") == 1
    engine.dispose()


def test_a_new_store_starts_at_the_newest_version(db_url: str) -> None:
    engine = make_engine(db_url)
    assert init_db(engine) == schema.SCHEMA_VERSION
    with engine.connect() as conn:
        assert migrations.stored_version(conn) == schema.SCHEMA_VERSION
        assert _count(engine, "schema_version") == 1
    engine.dispose()
