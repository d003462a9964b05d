"""Shared fixtures: a fresh database on each backend, and the shared price files.

``db_url`` is parametrized over SQLite (a temporary file) and PostgreSQL (a throw-away
schema in the server named by ``MADNESS_TEST_PG_URL``). Outside CI an unreachable
PostgreSQL skips its half with a reason; with ``CI=true`` it is an error, so CI can never
pass by skipping the PostgreSQL tests. The same holds for ``../shared/data/prices``.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

PG_URL = os.environ.get(
    "MADNESS_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
IN_CI = os.environ.get("CI", "").lower() == "true"
SHARED_PRICES = Path(__file__).resolve().parents[2] / "shared" / "data" / "prices"


def _pg_admin_engine() -> sa.Engine | None:
    engine = sa.create_engine(PG_URL, isolation_level="AUTOCOMMIT", pool_pre_ping=True)
    try:
        with engine.connect() as conn:
            conn.execute(sa.text("select 1"))
    except Exception as exc:
        engine.dispose()
        if IN_CI:
            pytest.fail(f"CI=true but PostgreSQL at {PG_URL} is unreachable: {exc}")
        return None
    return engine


@pytest.fixture(scope="session")
def pg_admin() -> Iterator[sa.Engine | None]:
    engine = _pg_admin_engine()
    yield engine
    if engine is not None:
        engine.dispose()


def _fresh_pg_url(admin: sa.Engine) -> tuple[str, str]:
    schema = f"t_{uuid.uuid4().hex[:16]}"
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    url = sa.engine.make_url(PG_URL).update_query_dict(
        {"options": f"-csearch_path={schema}"}
    )
    return url.render_as_string(hide_password=False), schema


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """URL of an empty database, isolated from every other test; dropped afterwards."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'madness.db'}"
        return
    admin = request.getfixturevalue("pg_admin")
    if admin is None:
        pytest.skip(f"PostgreSQL not reachable at {PG_URL} (set MADNESS_TEST_PG_URL)")
    url, schema = _fresh_pg_url(admin)
    try:
        yield url
    finally:

        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """URL of an empty SQLite database (for tests that are not about the backend)."""
    return f"sqlite:///{tmp_path / 'madness.db'}"


@pytest.fixture(scope="session")
def shared_prices() -> Path:
    """``../shared/data/prices`` beside the project; skipped outside CI when absent."""
    if not SHARED_PRICES.is_dir() or not any(SHARED_PRICES.glob("*.csv")):
        if IN_CI:
            pytest.fail(f"CI=true but the shared price files are missing: {SHARED_PRICES}")
        pytest.skip(f"shared price files not found at {SHARED_PRICES}")
    return SHARED_PRICES


@pytest.fixture(autouse=True, scope="session")
def _one_torch_thread() -> Iterator[None]:
    """Tiny test networks train faster on one thread than split over two (less sync)."""
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)
