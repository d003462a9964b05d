"""What every read of stored prices shares: the ``returns`` view as a Core table and its
fields, :func:`as_date`, inclusive date filters, day numbers read in SQL, frames built
column-wise from a query's rows, and the refusal of symbols the store does not hold.

The reads themselves live in :mod:`lstm_madness.data.store` (bars and returns of one
symbol, the stored symbols, trading days in a window) and :mod:`lstm_madness.data.panel`
(a dates × symbols panel).

Returns are computed in SQL by the view ``returns(symbol, date, price, ret, next_ret)``:
``price = COALESCE(adj_close, close)``, ``ret[t] = price[t] / price[t-1] - 1`` over the
symbol's own rows ordered by date (NULL on its first row) and ``next_ret[t] = ret[t+1]``
(NULL on its last row). Everything downstream reads returns from this view.
"""

from __future__ import annotations

import difflib
from collections.abc import Collection, Sequence
from datetime import date, datetime

import numpy as np
import pandas as pd
import sqlalchemy as sa

from lstm_madness.data.db import backend
from lstm_madness.data.schema import bars
from lstm_madness.errors import DataError

#: Fields of the ``returns`` view.
RETURN_FIELDS: tuple[str, ...] = ("ret", "next_ret", "price")

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


def date_filter(col: sa.ColumnElement, start: date | None, end: date | None) -> list:
    """Conditions keeping ``col`` between ``start`` and ``end`` (inclusive, None = open)."""
    conds = []
    if start is not None:
        conds.append(col >= start)
    if end is not None:
        conds.append(col <= end)
    return conds


_UNIX_EPOCH_JULIAN = 2440587.5  # julianday('1970-01-01')


def day_number(conn: sa.Connection, col: sa.ColumnElement) -> sa.ColumnElement:
    """SQL for the days since 1970-01-01 of a date column (an integer on both backends).

    Reading day numbers instead of dates skips per-row date objects on the client.
    """
    if backend(conn.engine) == "sqlite":
        days = sa.cast(sa.func.julianday(col) - _UNIX_EPOCH_JULIAN, sa.Integer)
    else:
        days = col - sa.literal(date(1970, 1, 1), sa.Date)
    return sa.type_coerce(days, sa.Integer)


def query_frame(
    conn: sa.Connection, query: sa.Select, names: list[str], dtypes: dict[str, object]
) -> pd.DataFrame:
    """Run ``query`` and build a DataFrame column-wise from its rows.

    A column named ``date`` must hold day numbers (see :func:`day_number`); it becomes
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


def date_index(days: np.ndarray) -> pd.DatetimeIndex:
    """The panels' index (datetime64[ns], named ``date``) of an array of days."""
    return pd.DatetimeIndex(days.astype("datetime64[ns]"), name="date")


def require_symbols(conn: sa.Connection, symbols: Sequence[str]) -> dict[str, date]:
    """First stored date of each symbol; DataError naming the unknown ones."""
    query = (
        sa.select(bars.c.symbol, sa.func.min(bars.c.date))
        .where(bars.c.symbol.in_(list(symbols)))
        .group_by(bars.c.symbol)
    )
    firsts = {row[0]: row[1] for row in conn.execute(query)}
    refuse_unknown(symbols, firsts, conn)
    return firsts


def stored_symbols(conn: sa.Connection) -> list[str]:
    """Every symbol with a stored bar, sorted."""
    query = sa.select(bars.c.symbol).distinct().order_by(bars.c.symbol)
    return [str(s) for s in conn.execute(query).scalars()]


def case_matches(symbols: Sequence[str], stored: Collection[str]) -> dict[str, str]:
    """The stored spelling of each of ``symbols`` that is not stored as given but is the
    only stored symbol equal to it ignoring case (``xlf`` → ``XLF``)."""
    folded: dict[str, list[str]] = {}
    for s in stored:
        folded.setdefault(s.casefold(), []).append(s)
    out = {}
    for s in symbols:
        same = folded.get(s.casefold(), [])
        if s not in stored and len(same) == 1:
            out[s] = same[0]
    return out


def suggest_symbols(symbol: str, stored: Collection[str]) -> list[str]:
    """The stored symbols ``symbol`` most likely meant: those equal to it ignoring case,
    else up to three close spellings (:func:`difflib.get_close_matches`)."""
    same = [s for s in stored if s.casefold() == symbol.casefold()]
    if same:
        return same
    folded = {s.casefold(): s for s in stored}
    return [folded[m] for m in difflib.get_close_matches(symbol.casefold(), list(folded), n=3)]


def refuse_unknown(
    symbols: Sequence[str], stored: Collection[str], conn: sa.Connection | None = None
) -> None:
    """DataError naming the ``symbols`` not in ``stored``: the error every read raises.
    With ``conn`` it suggests, for each, the stored symbols it most likely meant
    (:func:`suggest_symbols`: ``xlf`` → did you mean XLF?)."""
    unknown = [s for s in symbols if s not in stored]
    if not unknown:
        return
    known = stored_symbols(conn) if conn is not None else []
    hints = {s: suggest_symbols(s, known) for s in unknown}
    meant = [
        f"did you mean {' or '.join(m)}" + ("" if len(unknown) == 1 else f" for {s}") + "?"
        for s, m in hints.items()
        if m
    ]
    fix = "`madness ingest` or `madness fetch` them first"
    if meant:
        fix = " ".join(meant) + ("" if all(hints.values()) else f" Otherwise {fix}")
    raise DataError(f"unknown symbol(s): {', '.join(unknown)} (not in the store; {fix})")
