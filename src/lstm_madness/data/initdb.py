"""Creating and upgrading a store (:func:`init_db`, with the ``returns`` view) and the
:class:`~lstm_madness.errors.StoreError` of every store access (:func:`store_errors`).

Apart from the modules that write and read bars (:mod:`lstm_madness.data.upsert`,
:mod:`lstm_madness.data.store`, :mod:`lstm_madness.data.panel`, which need numpy and
pandas) so that commands which only read runs, such as a cached ``madness runs show``,
start without the numerical stack. :mod:`lstm_madness.data.store` re-exports these names.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager

import sqlalchemy as sa

from lstm_madness.data.db import backend
from lstm_madness.errors import StoreError

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
    if any(s in reason for s in ("no such table", "no such column", "does not exist")):
        reason += " (run `madness db init` first)"
    elif "duplicate key" in reason or "UNIQUE constraint" in reason:
        reason += " (another process wrote the same rows meanwhile; try again)"
    return reason
