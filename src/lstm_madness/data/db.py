"""Database URLs and engines for the two supported backends (SQLite, PostgreSQL)."""

from __future__ import annotations

import importlib.util
import os
import re
from pathlib import Path

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import URL, make_url

from lstm_madness.errors import StoreError

DEFAULT_URL = "sqlite:///./madness.db"
ENV_VAR = "MADNESS_DB_URL"
#: The two forms ``--db`` takes, as every message about a bad one names them.
ACCEPTED = (
    "a SQLite file path (madness.db, /data/madness.db) or a URL "
    "(sqlite:///PATH, postgresql+psycopg://USER@HOST/DBNAME)"
)
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")  # what a URL starts with
_DRIVE = re.compile(r"^[A-Za-z]:[\\/]")  # C:\data\x.db is a path, not a scheme


def normalize_url(text: str) -> str:
    """The database URL that ``text`` names: a URL as it is, a plain filesystem path as a
    SQLite file (``x.db`` → ``sqlite:///x.db``, ``/data/x.db`` → ``sqlite:////data/x.db``,
    ``~`` expanded); StoreError naming the two accepted forms otherwise."""
    text = text.strip()
    if "://" in text:
        return text
    if not text or (_SCHEME.match(text) and not _DRIVE.match(text)):
        raise StoreError(f"cannot read {redact(text)!r} as a database: give {ACCEPTED}")
    return "sqlite:///" + os.path.expanduser(text)


def resolve_url(url: str | None = None) -> str:
    """``url``, else ``$MADNESS_DB_URL``, else the embedded SQLite default, normalized
    (:func:`normalize_url`: a plain path is a SQLite file)."""
    return normalize_url(url or os.environ.get(ENV_VAR) or DEFAULT_URL)


def sqlite_path(url: str | URL) -> Path | None:
    """The file of a SQLite URL; None for an in-memory SQLite or another backend."""
    parsed = make_url(url) if isinstance(url, str) else url
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return None
    return Path(parsed.database)


def where(url: str | URL) -> str:
    """The store as a person names it: a SQLite file's path, else the URL without its
    password."""
    parsed = make_url(url) if isinstance(url, str) else url
    if sqlite_path(parsed) is not None:
        return str(parsed.database)  # as given: ./madness.db
    return parsed.render_as_string(hide_password=True)


def db_flag(url: str | URL) -> str:
    """The ``--db`` option that names this store in a suggested command: empty for the
    default store, the path of a SQLite file, the URL when it holds no password, else the
    placeholder ``--db URL``."""
    parsed = make_url(url) if isinstance(url, str) else url
    if parsed == make_url(DEFAULT_URL):
        return ""
    if sqlite_path(parsed) is not None:
        return f" --db {parsed.database}"
    if parsed.password is None:
        return f" --db {parsed.render_as_string(hide_password=False)}"
    return " --db URL"


def redact(url: str) -> str:
    """The URL as safe to print: any password is replaced by ``***``, whatever the URL's
    shape, well-formed or not.

    Everything between ``scheme://`` (if any) and the *last* ``@`` is taken as the
    credentials (a password with an unencoded ``@``, ``/`` or ``:`` included); the user
    name, up to its first ``:``, stays. Without an ``@`` a ``:`` in the host part
    followed by something other than a port number is taken as a password given without
    its host (``postgresql://user:secret/db``) and hidden too. SQLite URLs (paths, which
    may hold an ``@``) are shown as given. Text after an ``@`` in the query is hidden
    with the password: too much rather than a part of it.
    """
    if url.lower().startswith("sqlite"):
        return url
    head, at, tail = url.rpartition("@")
    scheme = _SCHEME_PREFIX.match(url)
    prefix = scheme.group(0) if scheme else ""
    if at:
        user, colon, _password = head[len(prefix) :].partition(":")
        return f"{prefix}{user}{':***' if colon else ''}@{tail}"
    netloc, slash, rest = url[len(prefix) :].partition("/")
    host, colon, port = netloc.rpartition(":")
    if colon and not port.isdigit() and not netloc.endswith("]"):
        return f"{prefix}{host}:***{slash}{rest}"
    return url


#: A URL's scheme and its two slashes (``postgresql+psycopg://``).
_SCHEME_PREFIX = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
#: The PostgreSQL drivers a URL may name; psycopg 3 is the one installed.
_PG_DRIVERS = ("psycopg", "psycopg2")


def _refuse_malformed(url: str, parsed: URL) -> None:
    """StoreError for a server URL whose host or database holds an ``@``: a password or
    user name with an unencoded ``@`` or ``/``, which the driver would otherwise try to
    connect with and print a part of (``failed to resolve host 'W@127.0.0.1'``)."""
    if "@" in (parsed.host or "") or "@" in (parsed.database or ""):
        raise StoreError(
            f"cannot read {redact(url)!r} as a database URL: a password or user name holds "
            "an '@', '/' or ':' that is not percent-encoded (write '@' as %40, '/' as %2F, "
            "':' as %3A)"
        )


def _pg_driver(url: str, parsed: URL) -> URL:
    """``parsed`` with the psycopg 3 driver; StoreError for psycopg2 when it is not
    installed (this project uses psycopg 3: ``postgresql+psycopg://``)."""
    driver = parsed.get_driver_name()
    if driver == "psycopg2" and importlib.util.find_spec("psycopg2") is None:
        raise StoreError(
            f"{redact(url)!r} names the psycopg2 driver, which is not installed: this "
            "project uses psycopg 3, postgresql+psycopg://USER@HOST/DBNAME"
        )
    if driver not in _PG_DRIVERS:
        return parsed.set(drivername="postgresql+psycopg")
    return parsed


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
        raise StoreError(f"cannot read {redact(url)!r} as a database: give {ACCEPTED}") from exc
    name = parsed.get_backend_name()
    if name != "sqlite":
        _refuse_malformed(url, parsed)
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
        return create_engine(_pg_driver(url, parsed), pool_pre_ping=True)
    raise StoreError(f"unsupported database URL {redact(url)!r}: give {ACCEPTED}")
