"""Reading a panel: one field of several symbols as a wide dates × symbols frame on one
symbol's trading days (:func:`read_panel`), with returns across a gap masked, bounded
forward-filling of prices and the policies for a symbol whose history starts late.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from datetime import date

import numpy as np
import pandas as pd
import sqlalchemy as sa

from lstm_madness.data.initdb import store_errors
from lstm_madness.data.reading import (
    RETURN_FIELDS,
    as_date,
    date_index,
    day_number,
    query_frame,
    require_symbols,
    returns_view,
)
from lstm_madness.data.schema import BAR_FIELDS, bars
from lstm_madness.errors import DataError

#: Everything :func:`read_panel` can read.
PANEL_FIELDS: tuple[str, ...] = (*RETURN_FIELDS, *BAR_FIELDS)
MISSING_POLICIES: tuple[str, ...] = ("drop_symbol", "start_later", "keep")


def _calendar(conn: sa.Connection, symbol: str) -> np.ndarray:
    """Trading days (datetime64[D], ascending) of one symbol."""
    query = (
        sa.select(day_number(conn, bars.c.date))
        .where(bars.c.symbol == symbol)
        .order_by(bars.c.date)
    )
    days = conn.execute(query).scalars().all()
    return np.asarray(days, dtype=np.int64).astype("datetime64[D]")


def _long_values(
    conn: sa.Connection, symbols: list[str], field: str, first: date, last: date
) -> pd.DataFrame:
    table = returns_view if field in RETURN_FIELDS else bars
    query = sa.select(table.c.symbol, day_number(conn, table.c.date), table.c[field]).where(
        table.c.symbol.in_(symbols), table.c.date.between(first, last)
    )
    frame = query_frame(conn, query, ["symbol", "date", "value"], {"value": np.float64})
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
    _check_panel_arguments(syms, field, missing, ffill_limit)
    align = align_to or syms[0]
    start_d, end_d = as_date(start, "start"), as_date(end, "end")
    with store_errors("read"), engine.connect() as conn:
        firsts = require_symbols(conn, list(dict.fromkeys([*syms, align])))
        calendar = _calendar(conn, align)
        lo, hi = _window_bounds(calendar, align, start_d, end_d)
        first, last = calendar[max(lo - 1, 0)], calendar[min(hi, len(calendar) - 1)]
        long = _long_values(conn, syms, field, first.astype(date), last.astype(date))
    if field in ("ret", "next_ret"):
        _mask_spanning_returns(long, field, calendar)
    wide = _widen(long, calendar[lo:hi], syms, field, ffill_limit)
    return _apply_missing(wide, firsts, missing)


def _check_panel_arguments(syms: list[str], field: str, missing: str, ffill_limit: int) -> None:
    """DataError for what :func:`read_panel` refuses before reading anything."""
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


def _window_bounds(
    calendar: np.ndarray, align: str, start: date | None, end: date | None
) -> tuple[int, int]:
    """``calendar[lo:hi]``: its days between ``start`` and ``end`` (inclusive); DataError
    when there is none."""
    lo = 0 if start is None else int(np.searchsorted(calendar, np.datetime64(start)))
    hi = (
        len(calendar)
        if end is None
        else int(np.searchsorted(calendar, np.datetime64(end), side="right"))
    )
    if lo >= hi:
        raise DataError(f"{align} has no trading day between {start} and {end}")
    return lo, hi


def _widen(
    long: pd.DataFrame, window: np.ndarray, syms: list[str], field: str, ffill_limit: int
) -> pd.DataFrame:
    """The long values as a float64 window × symbols frame, prices and volume forward-filled
    over at most ``ffill_limit`` days."""
    wide = long.pivot(index="date", columns="symbol", values="value")
    wide = wide.reindex(index=date_index(window), columns=syms).astype(np.float64)
    wide.columns.name = None
    if ffill_limit and field not in ("ret", "next_ret"):
        wide = wide.ffill(limit=ffill_limit)
    return wide


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
