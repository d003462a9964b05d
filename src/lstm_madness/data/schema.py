"""Database schema (SQLAlchemy Core), shared by both backends.

Price tables: ``securities``, ``bars``, ``ingest_log``, ``universe_members``. The run
registry's tables (``sweeps``, ``runs``, ``folds``, ``predictions``, ``metrics``) live in
:mod:`lstm_madness.experiment.tables`, on the same :data:`metadata`; :func:`all_tables`
imports them. ``schema_version`` records every version
:func:`lstm_madness.data.store.init_db` created or upgraded to; the steps from one version
to the next live in :mod:`lstm_madness.data.migrations`.

Dates are calendar dates of the close (exchange local); timestamps are UTC.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    Date,
    DateTime,
    Float,
    Integer,
    MetaData,
    String,
    Table,
    Text,
)

#: Bump together with a new step in :data:`lstm_madness.data.migrations.STEPS`.
SCHEMA_VERSION = 5

metadata = MetaData()

schema_version = Table(
    "schema_version",
    metadata,
    Column("version", Integer, primary_key=True),
    Column("applied_at", DateTime(timezone=True), nullable=False),
)

securities = Table(
    "securities",
    metadata,
    Column("symbol", String(32), primary_key=True),
    Column("name", String(200)),
    Column("kind", String(16)),  # etf | stock | index
    Column("currency", String(8)),
    Column("source", String(32)),
)

bars = Table(
    "bars",
    metadata,
    Column("symbol", String(32), primary_key=True),
    Column("date", Date, primary_key=True),
    Column("open", Float, nullable=False),
    Column("high", Float, nullable=False),
    Column("low", Float, nullable=False),
    Column("close", Float, nullable=False),
    Column("adj_close", Float, nullable=True),
    Column("volume", BigInteger, nullable=False),
    Column("source", String(32), nullable=False),
    Column("ingested_at", DateTime(timezone=True), nullable=False),
)

ingest_log = Table(
    "ingest_log",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("path", Text, nullable=False),  # file path, "yfinance:SYM" or "sample:sp500"
    Column("format", String(16), nullable=False),
    Column("symbols", Text, nullable=False),  # comma-separated
    Column("checksum", String(64), nullable=False),  # sha256 of the file's bytes
    Column("rows_read", Integer, nullable=False),
    Column("inserted", Integer, nullable=False),
    Column("updated", Integer, nullable=False),
    Column("unchanged", Integer, nullable=False),
    Column("rejected", Integer, nullable=False),
    Column("loaded_at", DateTime(timezone=True), nullable=False),
)

#: Which symbols belong to a universe over which dates (for cross-sectional studies);
#: ``end`` NULL = still a member.
universe_members = Table(
    "universe_members",
    metadata,
    Column("universe", Text, primary_key=True),
    Column("symbol", Text, primary_key=True),
    Column("start", Date, primary_key=True),
    Column("end", Date, nullable=True),
)


def all_tables() -> MetaData:
    """:data:`metadata` with every table of a store: these price tables and the run
    registry's (imported here, so that the data layer never imports them at load time)."""
    import lstm_madness.experiment.tables  # noqa: F401  (registers them on ``metadata``)

    return metadata
