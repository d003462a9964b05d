"""The price store: bulk upsert of bars and reading bars and returns. Creating or upgrading
a store (:func:`init_db`, re-exported here) lives in :mod:`lstm_madness.data.initdb`.

One API over SQLAlchemy 2 Core for SQLite and PostgreSQL (the backend comes from the URL,
see :mod:`lstm_madness.data.db`). Writes take a :class:`~sqlalchemy.Connection` inside the
caller's transaction; reads take an :class:`~sqlalchemy.Engine`.

Returns are computed in SQL by the view ``returns(symbol, date, price, ret, next_ret)``:
``price = COALESCE(adj_close, close)``, ``ret[t] = price[t] / price[t-1] - 1`` over the
symbol's own rows ordered by date (NULL on its first row) and ``next_ret[t] = ret[t+1]``
(NULL on its last row). Everything downstream reads returns from this view.
"""

from __future__ import annotations

import warnings
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime

import numpy as np
import pandas as pd
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from lstm_madness.data import pgcopy
from lstm_madness.data.db import backend
from lstm_madness.data.initdb import init_db as init_db  # re-exported: the store's API
from lstm_madness.data.initdb import store_errors
from lstm_madness.data.schema import bars, ingest_log, securities
from lstm_madness.errors import DataError

#: Bar columns as stored (prices in the source's units, volume in shares).
BAR_FIELDS: tuple[str, ...] = ("open", "high", "low", "close", "adj_close", "volume")
#: Fields of the ``returns`` view.
RETURN_FIELDS: tuple[str, ...] = ("ret", "next_ret", "price")
#: Everything :func:`read_panel` can read.
PANEL_FIELDS: tuple[str, ...] = (*RETURN_FIELDS, *BAR_FIELDS)
MISSING_POLICIES: tuple[str, ...] = ("drop_symbol", "start_later", "keep")
#: Stored values within this relative difference of a new value count as unchanged.
REVISION_RTOL = 1e-12

#: The ``returns`` view as a Core table (not part of ``schema.metadata``: never created).
returns_view = sa.Table(
    "returns",
    sa.MetaData(),
    sa.Column("symbol", sa.String(32)),
    sa.Column("date", sa.Date),
    sa.Column("price", sa.Float),
    sa.Column("ret", sa.Float),
    sa.Column("next_ret", sa.Float),
)


def _now() -> datetime:
    return datetime.now(UTC)


# --------------------------------------------------------------------------- writing


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


# --------------------------------------------------------------------------- reading


def as_date(value: date | datetime | str | None, name: str = "date") -> date | None:
    """A date from a date, datetime, Timestamp or ISO string; DataError if unparseable."""
    if value is None or (isinstance(value, date) and not isinstance(value, datetime)):
        return value
    if isinstance(value, datetime):
        return value.date()
    try:
        return date.fromisoformat(str(value).strip())
    except ValueError:
        raise DataError(f"invalid {name} {value!r}: expected YYYY-MM-DD") from None


def _date_filter(col: sa.ColumnElement, start: date | None, end: date | None) -> list:
    conds = []
    if start is not None:
        conds.append(col >= start)
    if end is not None:
        conds.append(col <= end)
    return conds


_UNIX_EPOCH_JULIAN = 2440587.5  # julianday('1970-01-01')


def _day_number(conn: sa.Connection, col: sa.ColumnElement) -> sa.ColumnElement:
    """SQL for the days since 1970-01-01 of a date column (an integer on both backends).

    Reading day numbers instead of dates skips per-row date objects on the client.
    """
    if backend(conn.engine) == "sqlite":
        days = sa.cast(sa.func.julianday(col) - _UNIX_EPOCH_JULIAN, sa.Integer)
    else:
        days = col - sa.literal(date(1970, 1, 1), sa.Date)
    return sa.type_coerce(days, sa.Integer)


def _frame(
    conn: sa.Connection, query: sa.Select, names: list[str], dtypes: dict[str, object]
) -> pd.DataFrame:
    """Run ``query`` and build a DataFrame column-wise from its rows.

    A column named ``date`` must hold day numbers (see :func:`_day_number`); it becomes
    datetime64. The others get ``dtypes[name]`` (float columns turn NULL into NaN).
    """
    rows = conn.execute(query).fetchall()
    cols = list(zip(*rows, strict=True)) if rows else [()] * len(names)
    out = {}
    for name, values in zip(names, cols, strict=True):
        if name == "date":
            days = np.asarray(values, dtype=np.int64).astype("datetime64[D]")
            out[name] = days.astype("datetime64[ns]")
        else:
            out[name] = np.asarray(values, dtype=dtypes.get(name, object))
    return pd.DataFrame(out, columns=names)


def _index(days: np.ndarray) -> pd.DatetimeIndex:
    return pd.DatetimeIndex(days.astype("datetime64[ns]"), name="date")


def list_symbols(engine: sa.Engine) -> pd.DataFrame:
    """Every stored symbol with its first and last date and its number of rows.

    Returns
    -------
    pandas.DataFrame
        Columns ``symbol``, ``first_date``, ``last_date`` (datetime64), ``rows`` (int64),
        sorted by symbol.
    """
    with store_errors("read"), engine.connect() as conn:
        query = (
            sa.select(
                bars.c.symbol,
                sa.func.min(_day_number(conn, bars.c.date)),
                sa.func.max(_day_number(conn, bars.c.date)),
                sa.func.count(),
            )
            .group_by(bars.c.symbol)
            .order_by(bars.c.symbol)
        )
        frame = _frame(conn, query, ["symbol", "first", "last", "rows"], {"rows": np.int64})
    for col in ("first", "last"):
        days = frame.pop(col).to_numpy(np.int64).astype("datetime64[D]")
        frame[f"{col}_date"] = days.astype("datetime64[ns]")
    return frame[["symbol", "first_date", "last_date", "rows"]]


def _require_symbols(conn: sa.Connection, symbols: Sequence[str]) -> dict[str, date]:
    """First stored date of each symbol; DataError naming the unknown ones."""
    query = (
        sa.select(bars.c.symbol, sa.func.min(bars.c.date))
        .where(bars.c.symbol.in_(list(symbols)))
        .group_by(bars.c.symbol)
    )
    firsts = {row[0]: row[1] for row in conn.execute(query)}
    _refuse_unknown(symbols, firsts)
    return firsts


def _refuse_unknown(symbols: Sequence[str], stored: Collection[str]) -> None:
    unknown = [s for s in symbols if s not in stored]
    if unknown:
        raise DataError(
            f"unknown symbol(s): {', '.join(unknown)} (not in the store; "
            "`madness ingest` or `madness fetch` them first)"
        )


def window_days(
    engine: sa.Engine,
    symbols: Sequence[str],
    start: date | str | None = None,
    end: date | str | None = None,
    *,
    require: bool = False,
) -> dict[str, int]:
    """Stored trading days of each symbol between ``start`` and ``end`` (inclusive).

    One query on the bars' key, no prices read: what a run checks before it is
    registered. A stored symbol without a day in the window counts 0; a symbol not in the
    store is left out, or with ``require`` refused with the DataError every read raises.
    """
    syms = list(dict.fromkeys(symbols))
    if not syms:
        return {}
    start_d, end_d = as_date(start, "start"), as_date(end, "end")
    inside = sa.and_(sa.true(), *_date_filter(bars.c.date, start_d, end_d))
    days = sa.func.sum(sa.case((inside, 1), else_=0))
    query = sa.select(bars.c.symbol, days).where(bars.c.symbol.in_(syms)).group_by(bars.c.symbol)
    with store_errors("read"), engine.connect() as conn:
        counts = {str(row[0]): int(row[1] or 0) for row in conn.execute(query)}
    if require:
        _refuse_unknown(syms, counts)
    return counts


def calendar_days(
    engine: sa.Engine,
    symbols: Sequence[str],
    start: date | str | None = None,
    end: date | str | None = None,
) -> int:
    """Days between ``start`` and ``end`` (inclusive) on which any of ``symbols`` has a
    stored bar: the length of their union calendar."""
    syms = list(dict.fromkeys(symbols))
    if not syms:
        return 0
    start_d, end_d = as_date(start, "start"), as_date(end, "end")
    query = sa.select(sa.func.count(sa.distinct(bars.c.date))).where(
        bars.c.symbol.in_(syms), *_date_filter(bars.c.date, start_d, end_d)
    )
    with store_errors("read"), engine.connect() as conn:
        return int(conn.execute(query).scalar() or 0)


def read_bars(
    engine: sa.Engine,
    symbol: str,
    start: date | str | None = None,
    end: date | str | None = None,
) -> pd.DataFrame:
    """Stored daily bars of one symbol.

    Returns
    -------
    pandas.DataFrame
        Columns ``date`` (datetime64), ``open``, ``high``, ``low``, ``close``,
        ``adj_close`` (float64, source units, NaN when absent), ``volume`` (int64, shares),
        ascending by date; inclusive ``start``/``end``.
    """
    start_d, end_d = as_date(start, "start"), as_date(end, "end")
    with store_errors("read"), engine.connect() as conn:
        _require_symbols(conn, [symbol])
        query = (
            sa.select(_day_number(conn, bars.c.date), *(bars.c[c] for c in BAR_FIELDS))
            .where(bars.c.symbol == symbol, *_date_filter(bars.c.date, start_d, end_d))
            .order_by(bars.c.date)
        )
        dtypes = {c: np.int64 if c == "volume" else np.float64 for c in BAR_FIELDS}
        return _frame(conn, query, ["date", *BAR_FIELDS], dtypes)


def read_returns(
    engine: sa.Engine,
    symbol: str,
    start: date | str | None = None,
    end: date | str | None = None,
) -> pd.DataFrame:
    """Daily simple returns of one symbol from the ``returns`` view.

    Returns
    -------
    pandas.DataFrame
        Columns ``date`` (datetime64), ``ret`` (close ``t-1`` → close ``t``, on adj_close
        when present) and ``next_ret`` (close ``t`` → ``t+1``), fractions (0.01 = 1 %),
        NaN on the symbol's first/last row. ``start``/``end`` are inclusive; the first
        return in the window still uses the previous stored close.
    """
    start_d, end_d = as_date(start, "start"), as_date(end, "end")
    v = returns_view.c
    with store_errors("read"), engine.connect() as conn:
        _require_symbols(conn, [symbol])
        query = (
            sa.select(_day_number(conn, v.date), v.ret, v.next_ret)
            .where(v.symbol == symbol, *_date_filter(v.date, start_d, end_d))
            .order_by(v.date)
        )
        return _frame(
            conn, query, ["date", "ret", "next_ret"], {"ret": np.float64, "next_ret": np.float64}
        )


def _calendar(conn: sa.Connection, symbol: str) -> np.ndarray:
    """Trading days (datetime64[D], ascending) of one symbol."""
    query = (
        sa.select(_day_number(conn, bars.c.date))
        .where(bars.c.symbol == symbol)
        .order_by(bars.c.date)
    )
    days = conn.execute(query).scalars().all()
    return np.asarray(days, dtype=np.int64).astype("datetime64[D]")


def _long_values(
    conn: sa.Connection, symbols: list[str], field: str, first: date, last: date
) -> pd.DataFrame:
    table = returns_view if field in RETURN_FIELDS else bars
    query = sa.select(table.c.symbol, _day_number(conn, table.c.date), table.c[field]).where(
        table.c.symbol.in_(symbols), table.c.date.between(first, last)
    )
    frame = _frame(conn, query, ["symbol", "date", "value"], {"value": np.float64})
    return frame.sort_values(["symbol", "date"], kind="stable", ignore_index=True)


def _mask_spanning_returns(long: pd.DataFrame, field: str, calendar: np.ndarray) -> None:
    """NaN for returns whose span differs from the calendar's day (in place).

    ``ret[t]`` of a symbol is kept only when its previous own row is the calendar's
    previous trading day; ``next_ret[t]`` only when its next own row is the calendar's
    next trading day. A return across a gap in either series is therefore NaN rather
    than a multi-day return posing as a one-day one.
    """
    days = long["date"].to_numpy().astype("datetime64[D]")
    pos = np.searchsorted(calendar, days)
    in_cal = (pos < len(calendar)) & (calendar[np.minimum(pos, len(calendar) - 1)] == days)
    nat = np.datetime64("NaT", "D")
    by_symbol = long.groupby("symbol", sort=False)["date"]
    if field == "ret":
        own = by_symbol.shift(1).to_numpy().astype("datetime64[D]")
        cal = np.where(pos > 0, calendar[np.maximum(pos - 1, 0)], nat)
    else:
        own = by_symbol.shift(-1).to_numpy().astype("datetime64[D]")
        nxt = np.minimum(pos + 1, len(calendar) - 1)
        cal = np.where(pos + 1 < len(calendar), calendar[nxt], nat)
    ok = in_cal & (own == cal)
    long.loc[~ok, "value"] = np.nan


def read_panel(
    engine: sa.Engine,
    symbols: Sequence[str],
    field: str = "ret",
    start: date | str | None = None,
    end: date | str | None = None,
    align_to: str | None = None,
    missing: str = "drop_symbol",
    ffill_limit: int = 0,
) -> pd.DataFrame:
    """A wide dates × symbols panel of one field, aligned on one symbol's trading days.

    Parameters
    ----------
    engine : sqlalchemy.Engine
        The store.
    symbols : sequence of str
        Columns of the panel, in this order (duplicates ignored).
    field : str
        ``ret`` (simple return close ``t-1`` → ``t``, fraction), ``next_ret`` (close ``t``
        → ``t+1``), ``price`` (adj_close, else close), or a stored bar column ``open``,
        ``high``, ``low``, ``close``, ``adj_close`` (source price units), ``volume``
        (shares). Returns come from the ``returns`` view.
    start, end : date or str, optional
        Inclusive window (ISO strings allowed); default: the whole history of ``align_to``.
    align_to : str, optional
        Symbol whose trading days form the index (default ``symbols[0]``). Rows of other
        symbols on days it did not trade are dropped.
    missing : {"drop_symbol", "start_later", "keep"}
        Policy for a symbol whose stored history starts after the window's first day (or
        that has no data in the window): ``drop_symbol`` drops it with a ``UserWarning``
        listing the dropped symbols; ``start_later`` keeps every symbol and starts the
        window on the first day on which every column has a value (raising DataError when
        that never happens); ``keep`` leaves the leading NaN. A symbol whose history ends
        before the window does keeps trailing NaN under every policy.
    ffill_limit : int
        Prices and volume (not returns) may be forward-filled over at most this many
        consecutive missing days. Nothing is ever back-filled.

    Returns
    -------
    pandas.DataFrame
        float64, ``DatetimeIndex`` named ``date`` (tz-naive midnight, ascending), one
        column per kept symbol. Returns are never filled: ``ret[t]`` is NaN unless the
        symbol traded on ``t`` and on the calendar's previous day (and ``next_ret[t]``
        likewise with the next day), so a return across a gap is NaN, never a multi-day
        return or a value taken from the future.

    Raises
    ------
    DataError
        Unknown symbols or field, bad arguments, or no trading day in the window.
    """
    syms = list(dict.fromkeys(symbols))
    if not syms:
        raise DataError("read_panel needs at least one symbol")
    if field not in PANEL_FIELDS:
        raise DataError(f"unknown field {field!r}: use one of {', '.join(PANEL_FIELDS)}")
    if missing not in MISSING_POLICIES:
        raise DataError(
            f"unknown missing-data policy {missing!r}: use one of {', '.join(MISSING_POLICIES)}"
        )
    if ffill_limit < 0:
        raise DataError(f"ffill_limit must be >= 0, not {ffill_limit}")
    align = align_to or syms[0]
    start_d, end_d = as_date(start, "start"), as_date(end, "end")
    with store_errors("read"), engine.connect() as conn:
        firsts = _require_symbols(conn, list(dict.fromkeys([*syms, align])))
        calendar = _calendar(conn, align)
        lo = 0 if start_d is None else int(np.searchsorted(calendar, np.datetime64(start_d)))
        hi = (
            len(calendar)
            if end_d is None
            else int(np.searchsorted(calendar, np.datetime64(end_d), side="right"))
        )
        if lo >= hi:
            raise DataError(f"{align} has no trading day between {start_d} and {end_d}")
        first, last = calendar[max(lo - 1, 0)], calendar[min(hi, len(calendar) - 1)]
        long = _long_values(conn, syms, field, first.astype(date), last.astype(date))
    if field in ("ret", "next_ret"):
        _mask_spanning_returns(long, field, calendar)
    window = calendar[lo:hi]
    wide = long.pivot(index="date", columns="symbol", values="value")
    wide = wide.reindex(index=_index(window), columns=syms).astype(np.float64)
    wide.columns.name = None
    if ffill_limit and field not in ("ret", "next_ret"):
        wide = wide.ffill(limit=ffill_limit)
    return _apply_missing(wide, firsts, missing)


def _apply_missing(wide: pd.DataFrame, firsts: dict[str, date], missing: str) -> pd.DataFrame:
    window_start = wide.index[0].date()
    empty = [s for s in wide.columns if wide[s].isna().all()]
    late = [s for s in wide.columns if firsts[s] > window_start and s not in empty]
    if missing == "drop_symbol" and (late or empty):
        parts = []
        if late:
            parts.append(
                f"start after {window_start}: " + ", ".join(f"{s} ({firsts[s]})" for s in late)
            )
        if empty:
            parts.append("no data in the window: " + ", ".join(empty))
        warnings.warn("read_panel dropped symbols that " + "; ".join(parts), stacklevel=3)
        wide = wide.drop(columns=late + empty)
        if wide.shape[1] == 0:
            raise DataError("read_panel: every symbol was dropped (see the warning)")
    elif missing == "start_later":
        if empty:
            raise DataError(f"no data in the window for {', '.join(empty)}")
        begin = max(wide[s].first_valid_index() for s in wide.columns)
        wide = wide.loc[begin:]
    return wide
