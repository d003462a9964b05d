"""The price store's API in one place, and the reads of what it holds per symbol.

Owns: :func:`list_symbols` (every stored symbol with its first and last date),
:func:`window_days` and :func:`calendar_days` (trading days in a window, read from the
bars' key without prices), :func:`read_bars` and :func:`read_returns` (one symbol's bars
or returns from the ``returns`` view).

Re-exports, so that callers import the store from here: creating or upgrading a store
(:func:`init_db`, :func:`store_errors`: :mod:`lstm_madness.data.initdb`); writing bars,
securities and the ingest log (:func:`upsert_bars`, :class:`UpsertCounts`,
:func:`upsert_securities`, :func:`log_ingest`, :func:`last_load`:
:mod:`lstm_madness.data.upsert`); the panel (:func:`read_panel`:
:mod:`lstm_madness.data.panel`); :func:`as_date`, the ``returns`` view and its fields
(:mod:`lstm_madness.data.reading`, where the view's definition is explained).

One API over SQLAlchemy 2 Core for SQLite and PostgreSQL (the backend comes from the URL,
see :mod:`lstm_madness.data.db`). Writes take a :class:`~sqlalchemy.Connection` inside the
caller's transaction; reads take an :class:`~sqlalchemy.Engine`.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

import numpy as np
import pandas as pd
import sqlalchemy as sa

from lstm_madness.data.initdb import init_db, store_errors
from lstm_madness.data.panel import MISSING_POLICIES, PANEL_FIELDS, read_panel
from lstm_madness.data.reading import (
    RETURN_FIELDS,
    as_date,
    case_matches,
    date_filter,
    day_number,
    query_frame,
    refuse_unknown,
    require_symbols,
    returns_view,
    stored_symbols,
)
from lstm_madness.data.schema import BAR_FIELDS, bars
from lstm_madness.data.upsert import (
    REVISION_RTOL,
    UpsertCounts,
    last_load,
    log_ingest,
    upsert_bars,
    upsert_securities,
)

__all__ = [
    "BAR_FIELDS",
    "MISSING_POLICIES",
    "PANEL_FIELDS",
    "RETURN_FIELDS",
    "REVISION_RTOL",
    "UpsertCounts",
    "as_date",
    "calendar_days",
    "init_db",
    "last_load",
    "list_symbols",
    "log_ingest",
    "read_bars",
    "read_panel",
    "read_returns",
    "returns_view",
    "store_errors",
    "stored_spelling",
    "upsert_bars",
    "upsert_securities",
    "window_days",
]


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
                sa.func.min(day_number(conn, bars.c.date)),
                sa.func.max(day_number(conn, bars.c.date)),
                sa.func.count(),
            )
            .group_by(bars.c.symbol)
            .order_by(bars.c.symbol)
        )
        frame = query_frame(conn, query, ["symbol", "first", "last", "rows"], {"rows": np.int64})
    for col in ("first", "last"):
        days = frame.pop(col).to_numpy(np.int64).astype("datetime64[D]")
        frame[f"{col}_date"] = days.astype("datetime64[ns]")
    return frame[["symbol", "first_date", "last_date", "rows"]]


def stored_spelling(engine: sa.Engine, symbols: Sequence[str]) -> dict[str, str]:
    """The stored spelling of each of ``symbols`` that the store holds under another case
    only, where it is unique ignoring case (``{"xlf": "XLF"}``); the others are left out,
    for the reads to accept or refuse as given."""
    with store_errors("read"), engine.connect() as conn:
        return case_matches(list(symbols), stored_symbols(conn))


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
    inside = sa.and_(sa.true(), *date_filter(bars.c.date, start_d, end_d))
    days = sa.func.sum(sa.case((inside, 1), else_=0))
    query = sa.select(bars.c.symbol, days).where(bars.c.symbol.in_(syms)).group_by(bars.c.symbol)
    with store_errors("read"), engine.connect() as conn:
        counts = {str(row[0]): int(row[1] or 0) for row in conn.execute(query)}
        if require:
            refuse_unknown(syms, counts, conn)
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
        bars.c.symbol.in_(syms), *date_filter(bars.c.date, start_d, end_d)
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
        require_symbols(conn, [symbol])
        query = (
            sa.select(day_number(conn, bars.c.date), *(bars.c[c] for c in BAR_FIELDS))
            .where(bars.c.symbol == symbol, *date_filter(bars.c.date, start_d, end_d))
            .order_by(bars.c.date)
        )
        dtypes = {c: np.int64 if c == "volume" else np.float64 for c in BAR_FIELDS}
        return query_frame(conn, query, ["date", *BAR_FIELDS], dtypes)


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
        require_symbols(conn, [symbol])
        query = (
            sa.select(day_number(conn, v.date), v.ret, v.next_ret)
            .where(v.symbol == symbol, *date_filter(v.date, start_d, end_d))
            .order_by(v.date)
        )
        return query_frame(
            conn, query, ["date", "ret", "next_ret"], {"ret": np.float64, "next_ret": np.float64}
        )
