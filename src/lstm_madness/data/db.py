"""Database URLs and engines for the two supported backends (SQLite, PostgreSQL)."""

from __future__ import annotations

import os

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url

from lstm_madness.errors import StoreError

DEFAULT_URL = "sqlite:///./madness.db"
ENV_VAR = "MADNESS_DB_URL"


def resolve_url(url: str | None = None) -> str:
    """Return ``url``, else ``$MADNESS_DB_URL``, else the embedded SQLite default."""
    return url or os.environ.get(ENV_VAR) or DEFAULT_URL


def redact(url: str) -> str:
    """The URL as safe to print: any password is replaced by ``***``."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # an unparseable URL is shown without its credentials part
        return url.split("@")[-1]


def backend(engine: Engine) -> str:
    """``"sqlite"`` or ``"postgresql"``."""
    return engine.dialect.name


def make_engine(url: str | None = None) -> Engine:
    """Create an engine for ``url`` (see :func:`resolve_url`).

    SQLite gets foreign keys on, WAL journaling and a busy timeout so that a reader and a
    writer (e.g. ``madness runs list`` during a run) do not fail on each other.
    """
    url = resolve_url(url)
    try:
        parsed = make_url(url)
    except Exception as exc:
        raise StoreError(f"invalid database URL {redact(url)!r}: {exc}") from exc
    name = parsed.get_backend_name()
    if name == "sqlite":
        engine = create_engine(parsed, connect_args={"timeout": 30})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection, _record) -> None:  # pragma: no cover - trivial
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.close()

        return engine
    if name == "postgresql":
        if parsed.get_driver_name() not in ("psycopg", "psycopg2"):
            parsed = parsed.set(drivername="postgresql+psycopg")
        return create_engine(parsed, pool_pre_ping=True)
    raise StoreError(
        f"unsupported database URL {redact(url)!r}: use sqlite:///PATH or postgresql+psycopg://..."
    )
