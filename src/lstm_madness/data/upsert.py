"""Writing prices: the bulk upsert of bars (:func:`upsert_bars`, compared with what is
stored so that only new or changed rows are written), the ``securities`` rows and the
``ingest_log`` of every load, all inside the caller's transaction.

One API over SQLAlchemy 2 Core for SQLite and PostgreSQL (the backend comes from the URL,
see :mod:`lstm_madness.data.db`); PostgreSQL writes by binary ``COPY``
(:mod:`lstm_madness.data.pgcopy`). Reading lives in :mod:`lstm_madness.data.store`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime

import numpy as np
import pandas as pd
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from lstm_madness.data import pgcopy
from lstm_madness.data.db import backend
from lstm_madness.data.schema import BAR_FIELDS, ingest_log, securities

#: Stored values within this relative difference of a new value count as unchanged.
REVISION_RTOL = 1e-12


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class UpsertCounts:
    """What an upsert did.

    Attributes
    ----------
    inserted, updated, unchanged : int
        Rows new to the store, rows whose stored values changed, rows already stored.
    rewritten : tuple of (str, datetime.date)
        (symbol, date) of every updated row: stored history that was rewritten.
    """

    inserted: int
    updated: int
    unchanged: int
    rewritten: tuple[tuple[str, date], ...]


def _to_days(values: Sequence[object] | np.ndarray) -> np.ndarray:
    """datetime64[D] array from dates, datetimes, datetime64 or ISO strings."""
    if len(values) == 0:
        return np.array([], dtype="datetime64[D]")
    return np.asarray(values).astype("datetime64[D]")


def _existing(
    conn: sa.Connection, symbols: list[str], first: np.datetime64, last: np.datetime64
) -> dict[str, np.ndarray]:
    """Stored bars of ``symbols`` between ``first`` and ``last`` (one query), as columns.

    ``code`` is the symbol's position in ``symbols``; ``date`` datetime64[D]; the bar
    columns float64 (NULL adj_close as NaN).
    """
    driver = conn.connection.driver_connection
    if backend(conn.engine) == "postgresql":
        with driver.cursor() as cur:  # type: ignore[union-attr]
            params = (symbols, symbols, first.astype(date), last.astype(date))
            with cur.copy(pgcopy.SELECT_EXISTING, params) as copy:
                payload = b"".join(bytes(chunk) for chunk in copy)
        return pgcopy.decode_existing(payload)
    # SQLite stores dates as ISO text: filter and parse them as text, vectorized
    sql = (
        'SELECT symbol, "date", open, high, low, close, adj_close, volume FROM bars '
        f'WHERE symbol IN ({",".join("?" * len(symbols))}) AND "date" BETWEEN ? AND ?'
    )
    cur = driver.cursor()  # type: ignore[union-attr]
    try:
        rows = cur.execute(sql, (*symbols, str(first), str(last))).fetchall()
    finally:
        cur.close()
    cols = list(zip(*rows, strict=True)) if rows else [()] * 8
    out = {
        "code": pd.Categorical(cols[0], categories=symbols).codes.astype(np.int64),
        "date": _to_days(np.asarray(cols[1], dtype=object)),
    }
    for name, values in zip(BAR_FIELDS, cols[2:], strict=True):
        out[name] = np.array(values, dtype=np.float64)  # None (no adj_close) -> NaN
    return out


def _close(new: np.ndarray, old: np.ndarray) -> np.ndarray:
    """Equal within :data:`REVISION_RTOL` (NaN equals NaN)."""
    same = np.abs(new - old) <= REVISION_RTOL * np.maximum(np.abs(new), np.abs(old))
    return same | (np.isnan(new) & np.isnan(old))


_DAY_OFFSET = 1 << 20  # makes day numbers (days since 1970, +-2800 years) positive


def _keys(codes: np.ndarray, days: np.ndarray) -> np.ndarray:
    """One int64 per (symbol code, day) that sorts like the pair."""
    day_numbers = days.astype("datetime64[D]").astype(np.int64) + _DAY_OFFSET
    return (codes.astype(np.int64) << 22) + day_numbers


def _classify(
    frame: pd.DataFrame, symbols: list[str], existing: dict[str, np.ndarray]
) -> tuple[np.ndarray, np.ndarray]:
    """Masks (new, changed) over ``frame``'s rows: a vectorized sorted join on the keys."""
    n = len(frame)
    if len(existing["code"]) == 0:
        return np.ones(n, dtype=bool), np.zeros(n, dtype=bool)
    codes = pd.Categorical(frame["symbol"], categories=symbols).codes
    keys = _keys(codes, frame["date"].to_numpy())
    old_keys = _keys(existing["code"], existing["date"])
    order = np.argsort(old_keys, kind="stable")
    sorted_keys = old_keys[order]
    pos = np.minimum(np.searchsorted(sorted_keys, keys), len(sorted_keys) - 1)
    found = sorted_keys[pos] == keys
    at = order[pos]
    same = found.copy()
    for col in BAR_FIELDS:
        same &= _close(frame[col].to_numpy(np.float64), existing[col][at])
    return ~found, found & ~same


_UPDATE_COLS = ("open", "high", "low", "close", "adj_close", "volume", "source", "ingested_at")
_INSERT_COLS = ("symbol", "date", *_UPDATE_COLS)


def _upsert_sql(distinct: str) -> str:
    changed = " OR ".join(f"bars.{c} {distinct} excluded.{c}" for c in BAR_FIELDS)
    sets = ", ".join(f"{c} = excluded.{c}" for c in _UPDATE_COLS)
    return f'ON CONFLICT (symbol, "date") DO UPDATE SET {sets} WHERE {changed}'


_PG_STAGE = (
    'CREATE TEMP TABLE IF NOT EXISTS madness_bars_in (symbol text, "date" date, open float8, '
    "high float8, low float8, close float8, adj_close float8, volume int8, source text, "
    "ingested_at timestamptz) ON COMMIT DROP"
)


def _write_postgresql(
    conn: sa.Connection, rows: pd.DataFrame, new: np.ndarray, source: str, now: datetime
) -> None:
    """New rows: binary COPY straight into ``bars``; changed rows: COPY into a temporary
    table, then one ``INSERT ... ON CONFLICT DO UPDATE ... WHERE`` changed.

    The new rows were checked absent in this transaction; a concurrent writer inserting
    the same (symbol, date) meanwhile makes the COPY fail and the whole file roll back.
    """
    cols = ", ".join(f'"{c}"' for c in pgcopy.COLUMNS)
    driver = conn.connection.driver_connection
    with driver.cursor() as cur:  # type: ignore[union-attr]
        if new.any():
            with cur.copy(f"COPY bars ({cols}) FROM STDIN (FORMAT BINARY)") as copy:
                copy.write(pgcopy.encode_bars(rows.loc[new], source, now))
        if not new.all():
            cur.execute(_PG_STAGE)
            with cur.copy(f"COPY madness_bars_in ({cols}) FROM STDIN (FORMAT BINARY)") as copy:
                copy.write(pgcopy.encode_bars(rows.loc[~new], source, now))
            cur.execute(
                f"INSERT INTO bars ({cols}) SELECT {cols} FROM madness_bars_in "
                + _upsert_sql("IS DISTINCT FROM")
            )
            cur.execute("DROP TABLE madness_bars_in")


def _write_sqlite(
    conn: sa.Connection, rows: pd.DataFrame, new: np.ndarray, source: str, now: datetime
) -> None:
    """One ``executemany`` of ``INSERT ... ON CONFLICT DO UPDATE ... WHERE`` changed."""
    del new  # the upsert handles new and changed rows alike
    marks = ", ".join("?" * len(_INSERT_COLS))
    names = ", ".join(f'"{c}"' for c in _INSERT_COLS)
    sql = f"INSERT INTO bars ({names}) VALUES ({marks}) " + _upsert_sql("IS NOT")
    n = len(rows)
    stamp = now.astimezone(UTC).replace(tzinfo=None).isoformat(sep=" ", timespec="microseconds")
    adj = rows["adj_close"].to_numpy()
    params = zip(
        rows["symbol"].tolist(),
        np.datetime_as_string(rows["date"].to_numpy().astype("datetime64[D]")).tolist(),
        rows["open"].tolist(),
        rows["high"].tolist(),
        rows["low"].tolist(),
        rows["close"].tolist(),
        np.where(np.isnan(adj), None, adj).tolist(),
        rows["volume"].to_numpy(np.int64).tolist(),
        [source] * n,
        [stamp] * n,
        strict=True,
    )
    conn.exec_driver_sql(sql, list(params))


def upsert_bars(conn: sa.Connection, frame: pd.DataFrame, source: str) -> UpsertCounts:
    """Insert new bars and update changed ones, inside the caller's transaction.

    Rows are compared with what is stored for the same symbols and date range (one query,
    then a vectorized sorted join; floats within :data:`REVISION_RTOL` count as equal) and
    only new or changed rows are written. PostgreSQL: new rows by binary ``COPY`` straight
    into ``bars``, changed rows by binary ``COPY`` into a temporary table and one
    ``INSERT ... ON CONFLICT (symbol, date) DO UPDATE ... WHERE`` changed. SQLite: one
    ``executemany`` of that upsert.

    Parameters
    ----------
    conn : sqlalchemy.Connection
        Connection with an open transaction.
    frame : pandas.DataFrame
        Validated bars, one row per (symbol, date): ``symbol``, ``date`` (datetime64),
        ``open``, ``high``, ``low``, ``close``, ``adj_close`` (float64, NaN = none),
        ``volume`` (shares, integral).
    source : str
        Provenance stored with each written row (e.g. ``"yahoo"``, ``"yfinance"``).

    Returns
    -------
    UpsertCounts
        Counts and the (symbol, date) of rewritten rows.
    """
    if frame.empty:
        return UpsertCounts(0, 0, 0, ())
    days = frame["date"].to_numpy().astype("datetime64[D]")
    symbols = sorted(set(frame["symbol"].tolist()))
    existing = _existing(conn, symbols, days.min(), days.max())
    new, changed = _classify(frame, symbols, existing)
    write = new | changed
    if write.any():
        rows = frame.loc[write, ["symbol", "date", *BAR_FIELDS]].copy()
        rows["volume"] = np.rint(rows["volume"].to_numpy(np.float64)).astype(np.int64)
        writer = _write_postgresql if backend(conn.engine) == "postgresql" else _write_sqlite
        writer(conn, rows, new[write], source, _now())
    rewritten = tuple(
        (str(sym), day.astype(date))
        for sym, day in zip(frame["symbol"].to_numpy()[changed], days[changed], strict=True)
    )
    return UpsertCounts(int(new.sum()), int(changed.sum()), int((~write).sum()), rewritten)


def upsert_securities(conn: sa.Connection, rows: Sequence[dict[str, str | None]]) -> None:
    """Record securities (``symbol``, ``kind``, ``source``, optional ``name``).

    Known kinds and names are kept when the new row has none; ``source`` is the latest.
    """
    if not rows:
        return
    insert = (postgresql.insert if backend(conn.engine) == "postgresql" else sqlite.insert)(
        securities
    )
    full = [{"name": None, "kind": None, "currency": None, **row} for row in rows]
    stmt = insert.values(full).on_conflict_do_update(
        index_elements=[securities.c.symbol],
        set_={
            "name": sa.func.coalesce(insert.excluded.name, securities.c.name),
            "kind": sa.func.coalesce(insert.excluded.kind, securities.c.kind),
            "source": insert.excluded.source,
        },
    )
    conn.execute(stmt)


def log_ingest(conn: sa.Connection, **values: object) -> None:
    """Append one row to ``ingest_log`` (``loaded_at`` defaults to now, UTC)."""
    conn.execute(ingest_log.insert().values({"loaded_at": _now(), **values}))


def last_load(conn: sa.Connection, checksum: str) -> datetime | None:
    """When a file with this sha256 was last loaded, or None."""
    query = (
        sa.select(ingest_log.c.loaded_at)
        .where(ingest_log.c.checksum == checksum)
        .order_by(ingest_log.c.loaded_at.desc())
        .limit(1)
    )
    return conn.execute(query).scalar()
