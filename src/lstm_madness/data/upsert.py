"""Writing prices: the bulk upsert of bars (:func:`upsert_bars`, compared with what is
stored so that only new or changed rows are written), the ``securities`` rows and the
``ingest_log`` of every load, all inside the caller's transaction.

One API over SQLAlchemy 2 Core for SQLite and PostgreSQL (the backend comes from the URL,
see :mod:`lstm_madness.data.db`); PostgreSQL writes by binary ``COPY``
(:mod:`lstm_madness.data.pgcopy`). Reading lives in :mod:`lstm_madness.data.store`.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
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


#: Julian day number of 1970-01-01T00:00 (SQLite's ``julianday`` minus it: days since 1970).
_UNIX_EPOCH_JULIAN_DAY = 2440587.5


def _existing(
    conn: sa.Connection, symbols: list[str], first: np.datetime64, last: np.datetime64
) -> dict[str, np.ndarray]:
    """Stored bars of ``symbols`` between ``first`` and ``last``, as columns (one query on
    PostgreSQL, one per symbol on SQLite).

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
    # SQLite: one indexed range query per symbol, the ISO date text turned into a day
    # number by SQLite, each answer one float64 array (few Python objects, all short-lived)
    sql = (
        f'SELECT julianday("date") - {_UNIX_EPOCH_JULIAN_DAY}, open, high, low, close, '
        'adj_close, volume FROM bars WHERE symbol = ? AND "date" BETWEEN ? AND ?'
    )
    blocks = [np.empty((0, 1 + len(BAR_FIELDS)))]
    codes = [np.empty(0, dtype=np.int64)]
    cur = driver.cursor()  # type: ignore[union-attr]
    try:
        for code, symbol in enumerate(symbols):
            rows = cur.execute(sql, (symbol, str(first), str(last))).fetchall()
            if rows:
                blocks.append(np.array(rows, dtype=np.float64))  # NULL adj_close -> NaN
                codes.append(np.full(len(rows), code, dtype=np.int64))
    finally:
        cur.close()
    values = np.concatenate(blocks)
    out = {
        "code": np.concatenate(codes),
        "date": values[:, 0].astype(np.int64).astype("datetime64[D]"),
    }
    for j, name in enumerate(BAR_FIELDS, start=1):
        out[name] = np.ascontiguousarray(values[:, j])
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
    frame: pd.DataFrame, codes: np.ndarray, existing: dict[str, np.ndarray]
) -> tuple[np.ndarray, np.ndarray]:
    """Masks (new, changed) over ``frame``'s rows (``codes``: the position of each row's
    symbol in the list :func:`_existing` was given): a vectorized sorted join on the keys."""
    n = len(frame)
    if len(existing["code"]) == 0:
        return np.ones(n, dtype=bool), np.zeros(n, dtype=bool)
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
    conn: sa.Connection, rows: pd.DataFrame, new: np.ndarray, sources: np.ndarray, now: datetime
) -> None:
    """New rows: binary COPY straight into ``bars``; changed rows: COPY into a temporary
    table, then one ``INSERT ... ON CONFLICT DO UPDATE ... WHERE`` changed.

    The new rows were checked absent in this transaction; a concurrent writer inserting
    the same (symbol, date) meanwhile makes the COPY fail and the whole transaction roll
    back.
    """
    cols = ", ".join(f'"{c}"' for c in pgcopy.COLUMNS)
    driver = conn.connection.driver_connection
    with driver.cursor() as cur:  # type: ignore[union-attr]
        if new.any():
            with cur.copy(f"COPY bars ({cols}) FROM STDIN (FORMAT BINARY)") as copy:
                copy.write(pgcopy.encode_bars(rows.loc[new], sources[new], now))
        if not new.all():
            cur.execute(_PG_STAGE)
            with cur.copy(f"COPY madness_bars_in ({cols}) FROM STDIN (FORMAT BINARY)") as copy:
                copy.write(pgcopy.encode_bars(rows.loc[~new], sources[~new], now))
            cur.execute(
                f"INSERT INTO bars ({cols}) SELECT {cols} FROM madness_bars_in "
                + _upsert_sql("IS DISTINCT FROM")
            )
            cur.execute("DROP TABLE madness_bars_in")


#: Rows per SQLite ``INSERT``: 96 x 10 = 960 parameters, under the 999 that SQLite before
#: 3.32 allows. One statement of many rows costs SQLite about half the CPU per row of one
#: statement per row (the per-statement work of each step is shared).
_SQLITE_ROWS_PER_INSERT = 96
_SQLITE_CHUNK = 96 * 512  # rows turned into Python values at a time
#: SQLite page cache (KiB) of a connection that bulk-writes bars: it holds the new pages
#: of a write until the commit, so each reaches the WAL once instead of being spilled and
#: written again as it fills (with the default 2 MiB, a load writes about twice the bytes).
#: A cap, not an allocation; durability and locking are unchanged.
_SQLITE_CACHE_KIB = 64 * 1024


def _sqlite_chunks(rows: pd.DataFrame, sources: np.ndarray, stamp: str) -> Iterator[np.ndarray]:
    """The parameters of the rows, :data:`_SQLITE_CHUNK` rows at a time: an object array
    of shape (rows, len(_INSERT_COLS)) of Python values (ISO date text, NULL for no
    adj_close)."""
    codes, uniques = pd.factorize(rows["symbol"])  # categorical: no per-row work
    symbols = np.asarray(uniques, dtype=object)[codes]
    # ISO text of each date, one str per distinct day shared by every row of that day
    day_numbers = rows["date"].to_numpy().astype("datetime64[D]").astype(np.int64)
    first = int(day_numbers.min()) if len(rows) else 0
    calendar = np.arange(first, int(day_numbers.max()) + 1 if len(rows) else 0)
    texts = np.datetime_as_string(calendar.astype("datetime64[D]")).astype(object)
    days = texts[day_numbers - first]
    adj = rows["adj_close"].to_numpy(np.float64)
    columns = [
        symbols,
        days,
        *(rows[c].to_numpy(np.float64) for c in ("open", "high", "low", "close")),
        adj,
        rows["volume"].to_numpy(np.int64),
        sources,
    ]
    for a in range(0, len(rows), _SQLITE_CHUNK):
        b = min(a + _SQLITE_CHUNK, len(rows))
        values = np.empty((b - a, len(_INSERT_COLS)), dtype=object)
        for j, column in enumerate(columns):
            values[:, j] = column[a:b]
        values[np.isnan(adj[a:b]), _INSERT_COLS.index("adj_close")] = None
        values[:, -1] = stamp
        yield values


def _raise_cache_size(cur: object) -> None:
    """Raise the connection's page cache to :data:`_SQLITE_CACHE_KIB` (never lower it)."""
    (size,) = cur.execute("PRAGMA cache_size").fetchone()  # type: ignore[attr-defined]
    (page,) = cur.execute("PRAGMA page_size").fetchone()  # type: ignore[attr-defined]
    kib = -size if size < 0 else size * page // 1024
    if kib < _SQLITE_CACHE_KIB:
        cur.execute(f"PRAGMA cache_size = -{_SQLITE_CACHE_KIB}")  # type: ignore[attr-defined]


def _write_sqlite(
    conn: sa.Connection, rows: pd.DataFrame, new: np.ndarray, sources: np.ndarray, now: datetime
) -> None:
    """``INSERT ... ON CONFLICT DO UPDATE ... WHERE`` changed, :data:`_SQLITE_ROWS_PER_INSERT`
    rows a statement, in one ``executemany`` on the driver's cursor (in the connection's
    transaction)."""
    del new  # the upsert handles new and changed rows alike
    names = ", ".join(f'"{c}"' for c in _INSERT_COLS)
    row = "(" + ", ".join("?" * len(_INSERT_COLS)) + ")"

    def sql(n: int) -> str:
        return f"INSERT INTO bars ({names}) VALUES {', '.join([row] * n)} " + _upsert_sql("IS NOT")

    stamp = now.astimezone(UTC).replace(tzinfo=None).isoformat(sep=" ", timespec="microseconds")
    per = _SQLITE_ROWS_PER_INSERT
    cur = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
    try:
        _raise_cache_size(cur)
        for values in _sqlite_chunks(rows, sources, stamp):
            full = len(values) // per * per
            if full:
                flat = values[:full].reshape(-1, per * len(_INSERT_COLS))
                cur.executemany(sql(per), (statement.tolist() for statement in flat))
            if full < len(values):
                cur.execute(sql(len(values) - full), values[full:].reshape(-1).tolist())
    finally:
        cur.close()


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
    return upsert_bars_many(conn, [frame], [source])[0]


def upsert_bars_many(
    conn: sa.Connection, frames: Sequence[pd.DataFrame], sources: Sequence[str]
) -> list[UpsertCounts]:
    """:func:`upsert_bars` of several frames (files) in one pass: one query of the stored
    rows, one classification, one write (one COPY or one ``executemany``) for them all.

    No (symbol, date) may be in two frames (the caller loads files that share a symbol in
    separate calls, in order); the counts are those of each frame.

    Parameters
    ----------
    conn : sqlalchemy.Connection
        Connection with an open transaction.
    frames : sequence of pandas.DataFrame
        Validated bars of each file (columns as for :func:`upsert_bars`).
    sources : sequence of str
        Provenance of each frame's rows.

    Returns
    -------
    list of UpsertCounts
        One per frame, in order.
    """
    sizes = np.array([len(f) for f in frames], dtype=np.int64)
    if not sizes.sum():
        return [UpsertCounts(0, 0, 0, ()) for _ in frames]
    frame = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]
    part = np.repeat(np.arange(len(frames)), sizes)  # (n,) frame of each row
    days = frame["date"].to_numpy().astype("datetime64[D]")
    codes, uniques = pd.factorize(frame["symbol"], sort=True)
    symbols = [str(s) for s in uniques]
    existing = _existing(conn, symbols, days.min(), days.max())
    new, changed = _classify(frame, codes, existing)
    write = new | changed
    if write.any():
        rows = (frame if write.all() else frame.loc[write]).assign(
            # symbols as categories: the writers take the k symbols, not n strings
            symbol=pd.Categorical.from_codes(codes[write], categories=symbols),
            volume=np.rint(frame["volume"].to_numpy(np.float64)[write]).astype(np.int64),
        )
        row_sources = np.asarray(sources, dtype=object)[part[write]]
        writer = _write_postgresql if backend(conn.engine) == "postgresql" else _write_sqlite
        writer(conn, rows, new[write], row_sources, _now())
    n_new = np.bincount(part[new], minlength=len(frames))
    n_changed = np.bincount(part[changed], minlength=len(frames))
    at = np.flatnonzero(changed)
    rewritten: list[list[tuple[str, date]]] = [[] for _ in frames]
    for i, code, day in zip(part[at], codes[at], days[at].tolist(), strict=True):
        rewritten[i].append((symbols[code], day))
    return [
        UpsertCounts(
            int(n_new[i]),
            int(n_changed[i]),
            int(sizes[i] - n_new[i] - n_changed[i]),
            tuple(rewritten[i]),
        )
        for i in range(len(frames))
    ]


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
    stmt = insert.on_conflict_do_update(
        index_elements=[securities.c.symbol],
        set_={
            "name": sa.func.coalesce(insert.excluded.name, securities.c.name),
            "kind": sa.func.coalesce(insert.excluded.kind, securities.c.kind),
            "source": insert.excluded.source,
        },
    )
    conn.execute(stmt, full)  # executemany: no limit on the number of rows


def log_ingest(conn: sa.Connection, **values: object) -> None:
    """Append one row to ``ingest_log`` (``loaded_at`` defaults to now, UTC)."""
    log_ingests(conn, [values])


def log_ingests(conn: sa.Connection, rows: Sequence[dict[str, object]]) -> None:
    """Append rows to ``ingest_log`` in one ``executemany`` (``loaded_at`` defaults to now)."""
    if rows:
        now = _now()
        conn.execute(ingest_log.insert(), [{"loaded_at": now, **row} for row in rows])


def last_load(conn: sa.Connection, checksum: str) -> datetime | None:
    """When a file with this sha256 was last loaded, or None."""
    return last_loads(conn, [checksum]).get(checksum)


def last_loads(conn: sa.Connection, checksums: Sequence[str]) -> dict[str, datetime]:
    """When files with these sha256 were last loaded (one query); absent when never."""
    if not checksums:
        return {}
    query = (
        sa.select(ingest_log.c.checksum, sa.func.max(ingest_log.c.loaded_at))
        .where(ingest_log.c.checksum.in_(sorted(set(checksums))))
        .group_by(ingest_log.c.checksum)
    )
    return {checksum: when for checksum, when in conn.execute(query).all()}
