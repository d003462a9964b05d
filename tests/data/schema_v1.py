"""The schema as version 1 created it, frozen (lstm-madness before migrations existed).

Do not edit: the migration tests build a version-1 store from these tables and upgrade it.
Dates are calendar dates of the close (exchange local); timestamps are UTC.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
)

SCHEMA_VERSION = 1

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

sweeps = Table(
    "sweeps",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(200)),
    Column("config_json", Text, nullable=False),  # base config
    Column("space_json", Text, nullable=False),  # grid or search space
    Column("engine", String(16), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

runs = Table(
    "runs",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(200)),
    Column("sweep_id", Integer, ForeignKey("sweeps.id", ondelete="SET NULL"), nullable=True),
    Column("config_json", Text, nullable=False),
    Column("config_hash", String(64), nullable=False),
    Column("family_hash", String(64), nullable=False),  # config hash without the seed
    Column("target", String(32), nullable=False),
    Column("seed", Integer),
    Column("test_start", Date),
    Column("test_end", Date),
    Column("git_commit", String(40)),
    Column("status", String(16), nullable=False),  # running | succeeded | failed
    Column("started_at", DateTime(timezone=True), nullable=False),
    Column("finished_at", DateTime(timezone=True)),
    Column("heartbeat_at", DateTime(timezone=True)),
    Column("host", String(200)),
    Column("pid", Integer),
    Column("error", Text),
    Column("summary_json", Text),
)
Index("ix_runs_target_period", runs.c.target, runs.c.test_start, runs.c.test_end)

folds = Table(
    "folds",
    metadata,
    Column("run_id", Integer, ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True),
    Column("fold", Integer, primary_key=True),
    Column("train_start", Date, nullable=False),
    Column("train_end", Date, nullable=False),
    Column("test_start", Date, nullable=False),
    Column("test_end", Date, nullable=False),
    Column("n_train", Integer, nullable=False),
    Column("n_test", Integer, nullable=False),
    Column("completed_at", DateTime(timezone=True)),
)

predictions = Table(
    "predictions",
    metadata,
    Column("run_id", Integer, ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True),
    Column("model", String(64), primary_key=True),  # "lstm", "baseline:zero", ...
    Column("fold", Integer, primary_key=True),
    Column("split", String(16), primary_key=True),  # train | validation | test
    Column("date", Date, primary_key=True),  # date t of the sample; target is t -> t+horizon
    Column("symbol", String(32), nullable=False),
    Column("y_true", Float, nullable=False),
    Column("y_pred", Float, nullable=False),
    # the target's traded return from close t to close t+1 (what a position dated t earns)
    Column("realized", Float),
)

metrics = Table(
    "metrics",
    metadata,
    Column("run_id", Integer, ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True),
    Column("model", String(64), primary_key=True),
    Column("split", String(16), primary_key=True),
    Column("name", String(64), primary_key=True),
    Column("value", Float),
)
