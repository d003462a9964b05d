"""Bulk reads and writes of run tables on both backends: ``insert_frame`` and
``read_frame`` round-trip the values SQLAlchemy would read, dates, NULLs and bound
parameters (a date, an IN list) included."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import sqlalchemy as sa

from lstm_madness.data.bulk import insert_frame, read_frame
from lstm_madness.data.db import make_engine

metadata = sa.MetaData()
rows_table = sa.Table(
    "bulk_rows",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("name", sa.String(16)),
    sa.Column("day", sa.Date, nullable=False),
    sa.Column("value", sa.Float),
)


def test_read_frame_equals_what_sqlalchemy_reads(db_url: str) -> None:
    engine = make_engine(db_url)
    metadata.create_all(engine)
    days = pd.bdate_range("2020-01-01", periods=6).date
    frame = pd.DataFrame(
        {
            "id": range(6),
            "name": ["a", "b", "a", "c", "b", "a"],
            "day": days,
            "value": [0.5, np.nan, -1.25, 2.0, 1e-12, 3.0],
        }
    )
    t = rows_table
    query = (
        sa.select(t.c.id, t.c.name, t.c.day, t.c.value)
        .where(t.c.day >= dt.date(2020, 1, 2), t.c.name.in_(["a", "b"]))
        .order_by(t.c.id)
    )
    with engine.begin() as conn:
        assert insert_frame(conn, t, frame) == 6
    with engine.connect() as conn:
        fast = read_frame(conn, query, date_columns=("day",))
        slow = pd.DataFrame(conn.execute(query).all(), columns=["id", "name", "day", "value"])
    slow["day"] = pd.to_datetime(slow["day"])
    assert list(fast["id"]) == [1, 2, 4, 5]
    pd.testing.assert_frame_equal(fast, slow, check_dtype=False)
    assert np.isnan(fast.loc[0, "value"]) and fast["day"].dtype.kind == "M"
    with engine.connect() as conn:  # no row: the columns still come back
        empty = read_frame(conn, query.where(t.c.id > 99), date_columns=("day",))
    assert list(empty.columns) == ["id", "name", "day", "value"] and empty.empty
    engine.dispose()


def test_read_frame_in_chunks_gives_the_whole_reads_frame(db_url: str, monkeypatch) -> None:
    """Rows converted a chunk at a time (two here) come back as one read of all of them
    would: a chunk whose float column holds only NULLs does not turn it into objects."""
    import lstm_madness.data.bulk as bulk

    engine = make_engine(db_url)
    metadata.create_all(engine)
    days = pd.bdate_range("2021-01-01", periods=7).date
    frame = pd.DataFrame(
        {
            "id": range(7),
            "name": ["a", "b", "c", "a", "b", "c", "a"],
            "day": days,
            "value": [0.5, 1.0, np.nan, np.nan, 2.5, -1.0, 4.0],  # rows 2-3: one whole chunk
        }
    )
    t = rows_table
    query = sa.select(t.c.id, t.c.name, t.c.day, t.c.value).order_by(t.c.id)
    with engine.begin() as conn:
        conn.execute(t.delete())
        insert_frame(conn, t, frame)
    with engine.connect() as conn:
        whole = read_frame(conn, query, date_columns=("day",))
        monkeypatch.setattr(bulk, "READ_CHUNK_ROWS", 2)
        chunked = read_frame(conn, query, date_columns=("day",))
    pd.testing.assert_frame_equal(chunked, whole)
    assert chunked["value"].dtype == np.float64 and chunked["id"].dtype.kind == "i"
    engine.dispose()
