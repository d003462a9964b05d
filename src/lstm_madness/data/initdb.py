"""Creating and upgrading a store (:func:`init_db`, with the ``returns`` view) and the
:class:`~lstm_madness.errors.StoreError` of every store access (:func:`store_errors`).

Apart from the modules that write and read bars (:mod:`lstm_madness.data.upsert`,
:mod:`lstm_madness.data.store`, :mod:`lstm_madness.data.panel`, which need numpy and
pandas) so that commands which only read runs, such as a cached ``madness runs show``,
start without the numerical stack. :mod:`lstm_madness.data.store` re-exports these names.
"""

from __future__ import annotations

import re
import shlex
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import sqlalchemy as sa

from lstm_madness.data import schema
from lstm_madness.data.db import backend, db_flag, redact, sqlite_path, where
from lstm_madness.errors import StoreError

#: How PostgreSQL says that the database of a connection does not exist.
_NO_DATABASE = re.compile(r'database "(?P<name>.*)" does not exist')

#: The ``returns`` view: see :mod:`lstm_madness.data.reading`.
RETURNS_VIEW_SELECT = """
SELECT r.symbol, r."date", r.price, r.ret,
       LEAD(r.ret) OVER (PARTITION BY r.symbol ORDER BY r."date") AS next_ret
FROM (
    SELECT b.symbol, b."date", COALESCE(b.adj_close, b.close) AS price,
           COALESCE(b.adj_close, b.close)
             / LAG(COALESCE(b.adj_close, b.close))
                 OVER (PARTITION BY b.symbol ORDER BY b."date") - 1 AS ret
    FROM bars AS b
) AS r
"""


def create_returns_view(conn: sa.Connection) -> None:
    """Create (or replace) the ``returns`` view over ``bars``."""
    if backend(conn.engine) == "postgresql":
        conn.exec_driver_sql(f"CREATE OR REPLACE VIEW returns AS {RETURNS_VIEW_SELECT}")
    else:
        conn.exec_driver_sql("DROP VIEW IF EXISTS returns")
        conn.exec_driver_sql(f"CREATE VIEW returns AS {RETURNS_VIEW_SELECT}")


def init_db(engine: sa.Engine) -> int:
    """Create every table and the ``returns`` view, or upgrade an older store in place.

    Idempotent. A store of an older schema version is upgraded step by step (see
    :mod:`lstm_madness.data.migrations`), keeping every stored bar and run.

    Parameters
    ----------
    engine : sqlalchemy.Engine
        Target database.

    Returns
    -------
    int
        The schema version the store is at (:data:`~lstm_madness.data.schema.SCHEMA_VERSION`).

    Raises
    ------
    StoreError
        The database is unreachable or was created by a newer version of this package.
    """
    from lstm_madness.data.migrations import upgrade

    with store_errors("initialize"):
        return upgrade(engine, after=create_returns_view)


@contextmanager
def store_errors(action: str) -> Iterator[None]:
    """Turn driver errors (missing table, unreachable server, a concurrent writer's
    duplicate key) into :class:`StoreError` saying ``cannot <action> the database``."""
    try:
        yield
    except (sa.exc.OperationalError, sa.exc.ProgrammingError, sa.exc.IntegrityError) as exc:
        raise StoreError(f"cannot {action} the database: {_reason(exc.orig or exc)}") from exc
    except Exception as exc:
        # psycopg's own errors come from the raw COPY path; imported only on PostgreSQL
        psycopg = sys.modules.get("psycopg")
        if psycopg is not None and isinstance(exc, psycopg.Error):
            raise StoreError(f"cannot {action} the database: {_reason(exc)}") from exc
        raise


def _reason(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    reason = lines[0] if lines else type(exc).__name__
    if _NO_DATABASE.search(reason):
        reason += " (create it with `madness db init --db URL`)"
    elif any(s in reason for s in ("no such table", "no such column", "does not exist")):
        reason += " (run `madness db init` first)"
    elif "duplicate key" in reason or "UNIQUE constraint" in reason:
        reason += " (another process wrote the same rows meanwhile; try again)"
    return reason


# ------------------------------------------------------- whether a store exists, creating one


def store_exists(engine: sa.Engine, action: str = "open") -> bool:
    """Whether ``engine``'s store exists, found without creating anything: its SQLite file
    is on disk (an in-memory SQLite always exists), its PostgreSQL database is on the
    server. An unreachable server raises :class:`StoreError` (``cannot <action> the
    database``)."""
    if backend(engine) == "sqlite":
        path = sqlite_path(engine.url)
        return path is None or path.exists()
    try:
        with engine.connect():
            return True
    except sa.exc.OperationalError as exc:
        if _NO_DATABASE.search(str(exc.orig or exc)):
            return False
        raise StoreError(f"cannot {action} the database: {_reason(exc.orig or exc)}") from exc


def missing_store(engine: sa.Engine) -> str:
    """What to say when ``engine``'s store does not exist: which store was looked for and
    the commands that create one (the password never shown)."""
    flag = db_flag(engine.url)
    if backend(engine) == "postgresql":
        return (
            f"no database {engine.url.database!r} on {where(engine.url)}: create it with "
            f"`madness db init{flag}`"
        )
    default = "" if flag else " (the default; --db or $MADNESS_DB_URL names another)"
    return (
        f"no store at {where(engine.url)}{default}; nothing was created: create one with "
        f"`madness db init{flag}` or `madness ingest FILE.csv{flag}`"
    )


def require_store(engine: sa.Engine) -> None:
    """Refuse, creating nothing, a store that does not exist (:func:`missing_store`):
    what a read-only command does first."""
    if not store_exists(engine):
        raise StoreError(missing_store(engine))


def create_database(engine: sa.Engine) -> bool:
    """Create the PostgreSQL database ``engine`` names when it does not exist, through the
    server's ``postgres`` database (``CREATE DATABASE`` with the name quoted as an
    identifier). True when this call created it; False when it exists, or for SQLite
    (whose file the first write creates). A server that does not allow it raises
    :class:`StoreError` saying how to create it (``createdb``)."""
    name = engine.url.database
    if backend(engine) != "postgresql" or not name or store_exists(engine, "initialize"):
        return False
    admin = sa.create_engine(engine.url.set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            quoted = conn.dialect.identifier_preparer.quote_identifier(name)
            conn.exec_driver_sql(f"CREATE DATABASE {quoted}")
    except sa.exc.DBAPIError as exc:
        if "already exists" in str(exc.orig):  # another process created it meanwhile
            return False
        raise StoreError(
            f"the database {name!r} does not exist on {where(engine.url)} and cannot be "
            f"created from here ({_reason(exc.orig or exc)}): create it with "
            f"`{_createdb(engine.url)}`, then run `madness db init{db_flag(engine.url)}`"
        ) from exc
    finally:
        admin.dispose()
    return True


def _createdb(url: sa.URL) -> str:
    """The ``createdb`` command line that creates the database of ``url`` (no password)."""
    args = ["createdb"]
    for flag, value in (("-h", url.host), ("-p", url.port), ("-U", url.username)):
        if value is not None:
            args += [flag, str(value)]
    return shlex.join([*args, str(url.database)])


def store_info(engine: sa.Engine) -> dict[str, Any]:
    """What a store holds, read only (nothing created or upgraded): its URL without the
    password, its schema version (None for a database without the schema) and this
    package's, and the counts of symbols, bars, runs (by status), sweeps and universes."""
    from lstm_madness.data.migrations import stored_version

    with store_errors("read"), engine.connect() as conn:
        tables = set(sa.inspect(conn).get_table_names())

        def count(table: sa.Table, *distinct: sa.ColumnElement) -> int:
            if table.name not in tables:
                return 0
            what = sa.func.count(sa.distinct(*distinct)) if distinct else sa.func.count()
            return int(conn.execute(sa.select(what).select_from(table)).scalar() or 0)

        by_status: dict[str, int] = {}
        if "runs" in tables:
            query = sa.select(schema.runs.c.status, sa.func.count()).group_by(schema.runs.c.status)
            by_status = {str(status): int(n) for status, n in conn.execute(query)}
        return {
            "url": redact(engine.url.render_as_string(hide_password=False)),
            "schema_version": stored_version(conn),
            "current_version": schema.SCHEMA_VERSION,
            "symbols": count(schema.bars, schema.bars.c.symbol),
            "bars": count(schema.bars),
            "runs": sum(by_status.values()),
            "runs_by_status": by_status,
            "sweeps": count(schema.sweeps),
            "universes": count(schema.universe_members, schema.universe_members.c.universe),
        }
