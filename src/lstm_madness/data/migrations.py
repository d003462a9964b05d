"""In-place schema upgrades: ordered steps keyed by the version they lead to.

``schema_version`` holds one row per version a store was created at or upgraded to.
:func:`upgrade` brings a store to :data:`~lstm_madness.data.schema.SCHEMA_VERSION`:

- an empty database gets every table of ``schema.metadata`` at the newest version;
- an older store runs each missing step of :data:`STEPS` in order, **each in its own
  transaction** that also records the version, so a failed step leaves the store at the
  previous version with nothing half-applied, and every stored bar and run is kept;
- a store newer than this package is refused.

Concurrent upgraders (two processes starting on one store) are serialized: PostgreSQL by
a transaction-scoped advisory lock, SQLite by ``BEGIN IMMEDIATE``; each re-reads the
version under the lock, so a step never runs twice. Both backends run DDL inside the
transaction (SQLite's ``ALTER TABLE ... ADD COLUMN`` and PostgreSQL's DDL are
transactional).

To change the schema (the ``returns`` view included: a store at the current version is
not touched): edit :mod:`lstm_madness.data.schema`, bump ``SCHEMA_VERSION`` and add the
step that turns the previous version into the new one here.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import sqlalchemy as sa

from lstm_madness.data import schema
from lstm_madness.errors import StoreError

#: Arbitrary key of the PostgreSQL advisory lock held while the schema changes.
_PG_LOCK_KEY = 0x6D61646E  # "madn"


def _v2(conn: sa.Connection) -> None:
    """Runs name their kind, primary model, objective, checksum and trainer; universes."""
    for column in (
        "kind TEXT NOT NULL DEFAULT 'trained'",
        "primary_model TEXT",
        "objective FLOAT",
        "checksum TEXT",
        "trainer TEXT",
    ):
        conn.exec_driver_sql(f"ALTER TABLE runs ADD COLUMN {column}")
    # every version-1 run trained the network under the model name "lstm" (also GRUs)
    conn.exec_driver_sql("UPDATE runs SET primary_model = 'lstm' WHERE primary_model IS NULL")
    schema.universe_members.create(conn, checkfirst=True)
    conn.exec_driver_sql(
        "CREATE INDEX IF NOT EXISTS ix_runs_target_period ON runs (target, test_start, test_end)"
    )


def _v3(conn: sa.Connection) -> None:
    """Imported runs record where their forecasts came from and how they were read."""
    conn.exec_driver_sql("ALTER TABLE runs ADD COLUMN import_json TEXT")


_PREDICTIONS_V4 = """
CREATE TABLE predictions_v4 (
    run_id INTEGER NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    model VARCHAR(64) NOT NULL,
    fold INTEGER NOT NULL,
    split VARCHAR(16) NOT NULL,
    date DATE NOT NULL,
    symbol VARCHAR(32) NOT NULL,
    y_true FLOAT,
    y_pred FLOAT NOT NULL,
    realized FLOAT,
    PRIMARY KEY (run_id, model, fold, split, date, symbol)
)"""


def _v4(conn: sa.Connection) -> None:
    """Predictions are keyed by symbol too (one row per date and universe member), and a
    member's label may be unknown (NULL)."""
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql("ALTER TABLE predictions DROP CONSTRAINT predictions_pkey")
        conn.exec_driver_sql(
            "ALTER TABLE predictions ADD PRIMARY KEY (run_id, model, fold, split, date, symbol)"
        )
        conn.exec_driver_sql("ALTER TABLE predictions ALTER COLUMN y_true DROP NOT NULL")
        return
    # SQLite cannot change a primary key in place: copy into the new table
    conn.exec_driver_sql(_PREDICTIONS_V4)
    conn.exec_driver_sql(
        "INSERT INTO predictions_v4 (run_id, model, fold, split, date, symbol, y_true, "
        "y_pred, realized) SELECT run_id, model, fold, split, date, symbol, y_true, y_pred, "
        "realized FROM predictions"
    )
    conn.exec_driver_sql("DROP TABLE predictions")
    conn.exec_driver_sql("ALTER TABLE predictions_v4 RENAME TO predictions")


def _v5(conn: sa.Connection) -> None:
    """Runs of one data group share one stored copy of their baselines' predictions."""
    conn.exec_driver_sql("ALTER TABLE runs ADD COLUMN baselines_run_id INTEGER")


def _v6(conn: sa.Connection) -> None:
    """A fold group's training time and epochs are kept with its folds, so that a resumed
    run reports every fold's, not only those of the command that finished it."""
    conn.exec_driver_sql("ALTER TABLE folds ADD COLUMN timings_json TEXT")


#: version → the step that upgrades a store at ``version - 1`` to ``version``.
STEPS: dict[int, Callable[[sa.Connection], None]] = {2: _v2, 3: _v3, 4: _v4, 5: _v5, 6: _v6}


@contextmanager
def _locked(engine: sa.Engine) -> Iterator[sa.Connection]:
    """One transaction that no other upgrader of this store runs beside."""
    with engine.connect() as conn:
        if conn.dialect.name == "postgresql":
            conn.begin()
            conn.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_LOCK_KEY})
        else:  # pysqlite would not open a transaction before DDL by itself
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        try:
            yield conn
        except BaseException:
            conn.rollback()
            raise
        conn.commit()


def stored_version(conn: sa.Connection) -> int | None:
    """The store's newest recorded schema version; None for a database without one."""
    if not sa.inspect(conn).has_table("schema_version"):
        return None
    return conn.execute(sa.select(sa.func.max(schema.schema_version.c.version))).scalar()


def _record(conn: sa.Connection, version: int) -> None:
    conn.execute(
        schema.schema_version.insert().values(version=version, applied_at=dt.datetime.now(dt.UTC))
    )


def upgrade(engine: sa.Engine, after: Callable[[sa.Connection], None] | None = None) -> int:
    """Create or upgrade the schema of ``engine``'s store; return the version it is at.

    ``after(conn)`` runs in the last transaction (e.g. to recreate views). A store already
    at this version is only read (every command opens the store this way).
    """
    target = schema.SCHEMA_VERSION
    if sorted(STEPS) != list(range(2, target + 1)):  # pragma: no cover - a developer's slip
        raise RuntimeError(f"migration steps {sorted(STEPS)} do not lead to version {target}")
    with engine.connect() as conn:  # a store at this version: nothing to write, no lock
        if stored_version(conn) == target:
            return target
    while True:
        with _locked(engine) as conn:
            version = stored_version(conn)
            if version is not None and version > target:
                raise StoreError(
                    f"the database has schema version {version}, newer than this "
                    f"lstm-madness ({target}); upgrade the package"
                )
            if version is None:  # a new store: every table at the newest version
                schema.all_tables().create_all(conn)
                _record(conn, target)
            elif version < target:
                STEPS[version + 1](conn)
                _record(conn, version + 1)
                if version + 1 < target:
                    continue  # commit this step; the next one gets its own transaction
            schema.all_tables().create_all(conn)  # tables added without a step (none yet)
            if after is not None:
                after(conn)
            return target
