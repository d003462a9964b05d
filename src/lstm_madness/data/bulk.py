"""Bulk writes of a DataFrame into a table: COPY on PostgreSQL, executemany on SQLite."""

from __future__ import annotations

import io

import pandas as pd
import sqlalchemy as sa


def insert_frame(conn: sa.Connection, table: sa.Table, frame: pd.DataFrame) -> int:
    """Append the rows of ``frame`` (columns named like ``table``'s) inside ``conn``'s transaction.

    PostgreSQL streams one CSV through ``COPY ... FROM STDIN`` (psycopg 3); SQLite uses a
    single ``executemany``. NaN and None become NULL. Returns the number of rows written.
    """
    if frame.empty:
        return 0
    columns = list(frame.columns)
    if conn.dialect.name == "postgresql":
        buffer = io.StringIO()
        frame.to_csv(
            buffer,
            index=False,
            header=False,
            na_rep="\\N",
            float_format="%.17g",
            date_format="%Y-%m-%d",
        )
        quoted = ", ".join(f'"{c}"' for c in columns)
        raw = conn.connection.driver_connection
        with raw.cursor() as cursor:
            sql = f"COPY \"{table.name}\" ({quoted}) FROM STDIN WITH (FORMAT csv, NULL '\\N')"
            with cursor.copy(sql) as copy:
                copy.write(buffer.getvalue())
        return len(frame)
    records = frame.astype(object).where(frame.notna(), None).to_dict("records")
    conn.execute(table.insert(), records)
    return len(records)
