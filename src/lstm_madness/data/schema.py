"""Database schema (SQLAlchemy Core), shared by both backends: every table of a store,
on one :data:`metadata`, so one ``create_all`` and one migration path cover the whole store.

Price tables: ``securities``, ``bars``, ``ingest_log``, ``universe_members``. The ledger's
tables: ``sweeps``, ``runs``, their ``folds``, every stored ``predictions`` row and
per-model ``metrics``; the queries over them live in :mod:`lstm_madness.store`.
``schema_version`` records every version :func:`lstm_madness.data.initdb.init_db` created
or upgraded to; the steps from one version to the next live in
:mod:`lstm_madness.data.migrations`.

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

#: Bump together with a new step in :data:`lstm_madness.data.migrations.STEPS`.
SCHEMA_VERSION = 6

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
#: Bar columns as stored (prices in the source's units, volume in shares).
BAR_FIELDS: tuple[str, ...] = ("open", "high", "low", "close", "adj_close", "volume")

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


# --- the ledger (queried by lstm_madness.store) ---

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
    # queued (registered by a sweep, not yet claimed) | running | succeeded | failed
    Column("status", String(16), nullable=False),
    Column("started_at", DateTime(timezone=True), nullable=False),
    Column("finished_at", DateTime(timezone=True)),
    Column("heartbeat_at", DateTime(timezone=True)),
    Column("host", String(200)),
    Column("pid", Integer),
    Column("error", Text),
    Column("summary_json", Text),
    # version 2
    Column("kind", Text, nullable=False, server_default="trained"),  # trained | imported
    Column("primary_model", Text),  # the model judged: config.model.kind ("lstm", "gru")
    Column("objective", Float),  # mean validation loss of the network, stored at training
    Column("checksum", Text),  # sha256 of an imported forecast file
    Column("trainer", Text),  # training engine used
    # version 3
    Column("import_json", Text),  # an imported run: where its forecasts came from (ImportSpec)
    # version 5: the run whose stored rows hold this run's baseline predictions (the runs
    # of one data group share one copy); NULL: its own rows hold them
    Column("baselines_run_id", Integer),
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
    # the run's timings of the fold group this fold starts (JSON; NULL on its other folds):
    # what a resumed run adds to its own (experiment.timings.Timings.to_record)
    Column("timings_json", Text),
)

predictions = Table(
    "predictions",
    metadata,
    Column("run_id", Integer, ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True),
    Column("model", String(64), primary_key=True),  # "lstm", "baseline:zero", ...
    Column("fold", Integer, primary_key=True),
    Column("split", String(16), primary_key=True),  # train | validation | test
    Column("date", Date, primary_key=True),  # date t of the sample; target is t -> t+horizon
    # the target, or the member of a universe (one row per date and member)
    Column("symbol", String(32), primary_key=True),
    # NULL: a universe member's label is unknown (no price on t+1: data ended, last date)
    Column("y_true", Float, nullable=True),
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


def all_tables() -> MetaData:
    """:data:`metadata`: every table of a store (kept for callers of older versions, when
    the ledger's tables were defined elsewhere and added here)."""
    return metadata
