"""Point-in-time universe membership: intervals per symbol, read from CSV, as a date mask.

A *membership frame* has one row per interval with the columns ``symbol`` (str, upper
case), ``start`` and ``end`` (``datetime64[ns]``, both inclusive; ``end`` is ``NaT`` for a
symbol that is still a member) and ``line`` (1-based line of the source file, ``<NA>`` for
intervals not read from a file). A symbol is a member on date ``t`` when some interval has
``start <= t <= end``; it may have several intervals (it left and rejoined), never
overlapping ones.

The membership CSV (``madness universe add NAME FILE.csv``) has the header
``symbol,start,end`` (any order, extra columns rejected), ISO dates, an empty ``end`` for
"still a member"; blank lines and lines starting with ``#`` are skipped. A symbol is a
ticker as prices are stored under (:func:`~lstm_madness.data.sources.check_symbol`:
letters, digits, ``.``, ``-``, ``=``, ``_``, a leading ``^``; at most 32). A file with any
bad row is rejected whole (:class:`~lstm_madness.errors.ValidationError` listing every
problem with file, line, column, value and reason), so nothing of it is stored.

When no membership is stored, :func:`bundled_membership` turns a bundled universe list
(``data/universes/<name>.csv``) into open intervals: every listed stock a member on every
date. That is today's list, so the study carries survivorship bias
(:data:`SURVIVORSHIP_WARNING`, shown in every report that uses it).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import sqlalchemy as sa

from lstm_madness.data.schema import bars
from lstm_madness.data.sources import check_symbol
from lstm_madness.data.universe import universe_table
from lstm_madness.data.validation import Problem, problem_lines
from lstm_madness.errors import DataError, ValidationError

#: Columns of a membership CSV.
MEMBERSHIP_COLUMNS = ("symbol", "start", "end")
#: Start date of the open intervals of a bundled universe (the list has no dates).
OPEN_START = pd.Timestamp("1900-01-01")
#: Shown in every report of a study over a bundled (today's) member list.
SURVIVORSHIP_WARNING = (
    "Survivorship bias: the universe is the bundled list of today's members, applied to "
    "every past date. Firms that left it (failed, merged, delisted) are missing, and "
    "members are traded before they joined, so the long-short and buy-and-hold figures "
    "are likely better than a point-in-time universe would give. Load the historical "
    "membership with `madness universe add NAME FILE.csv` to remove this bias."
)
_NOT_A_SYMBOL = (
    "not a symbol: letters, digits, '.', '-', '=', '_' or a leading '^', at most 32 characters"
)


def is_symbol(symbol: str) -> bool:
    """Whether ``symbol`` (upper case) can be a stored symbol (the rule of
    :func:`~lstm_madness.data.sources.check_symbol`)."""
    try:
        check_symbol(symbol)
    except DataError:
        return False
    return True


def unstored_members(conn: sa.Connection, symbols: Sequence[str]) -> list[str]:
    """Those of ``symbols`` without a stored bar (in their order): members a study cannot
    read until their prices are ingested."""
    listed = list(dict.fromkeys(symbols))
    missing = []
    for at in range(0, len(listed), 500):  # one EXISTS per symbol: an index probe each
        chunk = listed[at : at + 500]
        query = sa.select(*(sa.exists().where(bars.c.symbol == s) for s in chunk))
        found = conn.execute(query).one()
        missing += [s for s, stored in zip(chunk, found, strict=True) if not stored]
    return missing


def _frame(symbols: list[str], starts: list, ends: list, lines: list) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "symbol": pd.Series(symbols, dtype=object),
            "start": pd.to_datetime(pd.Series(starts, dtype=object)).astype("datetime64[ns]"),
            "end": pd.to_datetime(pd.Series(ends, dtype=object)).astype("datetime64[ns]"),
            "line": pd.array(lines, dtype="Int64"),
        }
    )


def _parse_date(text: str) -> pd.Timestamp | None:
    try:
        value = pd.Timestamp(text)
    except (ValueError, TypeError):
        return None
    if value is pd.NaT or value.tz is not None or value != value.normalize():
        return None
    return value


def _overlaps(frame: pd.DataFrame, file: str) -> list[Problem]:
    """One problem per interval that overlaps an earlier-starting one of the same symbol."""
    problems = []
    ordered = frame.sort_values(["symbol", "start", "line"])
    for symbol, group in ordered.groupby("symbol", sort=False):
        reach, reach_line = None, None  # latest end seen so far (None = open) and its line
        for start, end, line in zip(group["start"], group["end"], group["line"], strict=True):
            if reach_line is not None and (reach is None or start <= reach):
                shown = "still a member" if reach is None else f"to {reach.date()}"
                problems.append(
                    Problem(
                        file,
                        int(line),
                        "start",
                        str(start.date()),
                        f"interval of {symbol} overlaps the one on line {reach_line} ({shown})",
                    )
                )
                continue
            reach, reach_line = (None if pd.isna(end) else end), int(line)
    return problems


def _header(rows: list[tuple[int, list[str]]], file: str) -> dict[str, int]:
    """Column positions from the first row; ValidationError when it is not the header."""
    if not rows:
        raise ValidationError(f"{file}: no header; expected {','.join(MEMBERSHIP_COLUMNS)}")
    line, header = rows[0]
    names = [cell.strip().lower() for cell in header]
    if sorted(names) != sorted(MEMBERSHIP_COLUMNS):
        reason = f"header must name the columns {','.join(MEMBERSHIP_COLUMNS)}"
        problem = Problem(file, line, None, ",".join(header), reason)
        raise ValidationError(f"{file}: {reason}:\n  {problem}", [problem])
    return {name: names.index(name) for name in MEMBERSHIP_COLUMNS}


def _parse_row(
    file: str, line: int, row: list[str], at: dict[str, int]
) -> tuple[tuple | None, list[Problem]]:
    """``((symbol, start, end), [])`` for a good row, ``(None, problems)`` for a bad one."""
    if len(row) != len(at):
        reason = f"expected {len(at)} fields, found {len(row)}"
        return None, [Problem(file, line, None, ",".join(row), reason)]
    symbol = row[at["symbol"]].strip().upper()
    start_text, end_text = row[at["start"]].strip(), row[at["end"]].strip()
    start = _parse_date(start_text)
    end = _parse_date(end_text) if end_text else None
    bad = []
    if not symbol:
        bad.append(Problem(file, line, "symbol", row[at["symbol"]], "empty symbol"))
    elif not is_symbol(symbol):
        bad.append(Problem(file, line, "symbol", row[at["symbol"]], _NOT_A_SYMBOL))
    if start is None:
        reason = "missing start date" if not start_text else "not a date (YYYY-MM-DD)"
        bad.append(Problem(file, line, "start", start_text, reason))
    if end_text and end is None:
        bad.append(Problem(file, line, "end", end_text, "not a date (YYYY-MM-DD)"))
    if start is not None and end is not None and end < start:
        bad.append(Problem(file, line, "end", end_text, f"end is before start {start.date()}"))
    return (None, bad) if bad else ((symbol, start, end), [])


def parse_membership(text: str, file: str = "<membership>") -> pd.DataFrame:
    """Parse membership CSV text into a membership frame (see the module docstring).

    Parameters
    ----------
    text : str
        The file's content.
    file : str
        Name shown in problems.

    Returns
    -------
    DataFrame
        Columns ``symbol``, ``start``, ``end``, ``line``; sorted by symbol, then start.

    Raises
    ------
    ValidationError
        A bad header, or any bad row (empty symbol, bad or missing date, ``end`` before
        ``start``, a repeated or overlapping interval of one symbol, a wrong field count);
        ``problems`` lists them all. Also an empty file.
    """
    rows = [
        (number, row)
        for number, row in enumerate(csv.reader(io.StringIO(text)), start=1)
        if row and any(cell.strip() for cell in row) and not row[0].lstrip().startswith("#")
    ]
    at = _header(rows, file)
    problems: list[Problem] = []
    good: list[tuple] = []
    for line, row in rows[1:]:
        interval, bad = _parse_row(file, line, row, at)
        problems.extend(bad)
        if interval is not None:
            good.append((*interval, line))
    frame = _frame(*(list(column) for column in zip(*good, strict=True))) if good else None
    if frame is not None:
        problems.extend(_overlaps(frame, file))
    if not problems and frame is None:
        raise ValidationError(f"{file}: no membership interval")
    if problems:
        problems.sort(key=lambda p: (p.line or 0, p.column or ""))
        raise ValidationError(
            f"{file}: {len(problems)} problem(s), nothing of this file was stored:\n"
            f"{problem_lines(problems)}",
            problems,
        )
    return frame.sort_values(["symbol", "start"], ignore_index=True)


def read_membership(path: str | Path) -> pd.DataFrame:
    """:func:`parse_membership` of a file (UTF-8), problems named by its path."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise DataError(f"cannot read membership file {path}: {exc}") from exc
    except UnicodeDecodeError as exc:
        raise ValidationError(f"{path}: not UTF-8 text ({exc})") from exc
    return parse_membership(text, str(path))


def read_memberships(paths: Sequence[str | Path]) -> pd.DataFrame:
    """The membership frame of several files read as one (:func:`read_membership` each).

    A universe's membership may come in parts (members with prices and members without,
    say). Each file is checked whole; then a symbol listed in two files must not have
    overlapping intervals across them. Any problem rejects them all, so nothing is stored.
    ``line`` stays the line of the interval's own file.

    Raises
    ------
    ValidationError
        The first bad file's problems, or every interval that overlaps one of another
        file (file, line, column ``start``, value, the other file and line).
    """
    frames = [(str(path), read_membership(path)) for path in paths]
    if not frames:
        raise DataError("no membership file given")
    problems: list[Problem] = []
    seen: dict[str, list[tuple[str, pd.Series]]] = {}
    for file, frame in frames:
        for row in frame.itertuples(index=False):
            end = None if pd.isna(row.end) else row.end
            for other_file, other in seen.get(row.symbol, []):
                other_end = None if pd.isna(other.end) else other.end
                if (end is None or other.start <= end) and (
                    other_end is None or row.start <= other_end
                ):
                    reason = (
                        f"interval of {row.symbol} overlaps the one on line {other.line} "
                        f"of {other_file}"
                    )
                    problems.append(
                        Problem(file, int(row.line), "start", str(row.start.date()), reason)
                    )
        for row in frame.itertuples(index=False):
            seen.setdefault(row.symbol, []).append((file, row))
    if problems:
        raise ValidationError(
            f"{len(problems)} interval(s) overlap across the files, nothing was stored:\n"
            f"{problem_lines(problems)}",
            problems,
        )
    combined = pd.concat([frame for _, frame in frames], ignore_index=True)
    return combined.sort_values(["symbol", "start"], ignore_index=True)


def bundled_membership(name: str) -> pd.DataFrame:
    """Open intervals (``OPEN_START`` .. still a member) for the stocks of a bundled list.

    The ETF rows (``kind == "etf"``) are not members; :func:`bundled_benchmark` names it.
    Carries survivorship bias: see :data:`SURVIVORSHIP_WARNING`.
    """
    table = universe_table(name)
    stocks = table.loc[table["kind"] != "etf", "symbol"].tolist()
    n = len(stocks)
    return _frame(stocks, [OPEN_START] * n, [None] * n, [None] * n)


def bundled_benchmark(name: str) -> str | None:
    """The ETF of a bundled universe (``"XLF"`` for ``xlf``), or None when it lists none."""
    table = universe_table(name)
    etfs = table.loc[table["kind"] == "etf", "symbol"].tolist()
    return etfs[0] if etfs else None


def membership_mask(
    intervals: pd.DataFrame, dates: Sequence | pd.DatetimeIndex, symbols: Sequence[str]
) -> pd.DataFrame:
    """Whether each symbol is a member on each date.

    Parameters
    ----------
    intervals : DataFrame
        A membership frame (``symbol``, ``start``, ``end``; ``end`` NaT = open).
    dates : sequence of dates
        Ascending, unique (a panel's index).
    symbols : sequence of str
        Columns of the mask; intervals of other symbols are ignored, and a symbol with no
        interval is never a member.

    Returns
    -------
    DataFrame of bool, shape (len(dates), len(symbols))
        ``mask[t, s]`` is True when some interval of ``s`` has ``start <= t <= end``.
    """
    index = pd.DatetimeIndex(dates, name="date")
    if not (index.is_monotonic_increasing and index.is_unique):
        raise DataError("membership_mask: dates must be ascending and unique")
    columns = list(symbols)
    col_of = {s: j for j, s in enumerate(columns)}
    keep = intervals["symbol"].isin(col_of)
    cols = intervals.loc[keep, "symbol"].map(col_of).to_numpy(dtype=np.int64)
    first = index.searchsorted(pd.DatetimeIndex(intervals.loc[keep, "start"]), side="left")
    ends = pd.DatetimeIndex(intervals.loc[keep, "end"])
    stop = np.where(ends.isna(), len(index), index.searchsorted(ends, side="right"))
    # +1 where an interval starts, -1 after it ends; members where the running sum > 0
    steps = np.zeros((len(index) + 1, len(columns)), dtype=np.int64)
    np.add.at(steps, (first, cols), 1)
    np.add.at(steps, (stop, cols), -1)
    return pd.DataFrame(np.cumsum(steps, axis=0)[:-1] > 0, index=index, columns=columns)


# --------------------------------------------------------------------------------------
# storage (the table is created by the schema; these take it as an argument)
# --------------------------------------------------------------------------------------


def store_membership(
    conn: sa.Connection, table: sa.Table, universe: str, intervals: pd.DataFrame
) -> int:
    """Replace the stored membership of ``universe`` with ``intervals``; rows written.

    ``table`` has the columns ``universe``, ``symbol``, ``start``, ``end`` (nullable). Runs
    in the caller's transaction: a failure leaves the previous membership in place.
    """
    key = universe.strip().lower()
    if not key:
        raise DataError("universe name must not be empty")
    rows = [
        {
            "universe": key,
            "symbol": str(symbol),
            "start": start.date(),
            "end": None if pd.isna(end) else end.date(),
        }
        for symbol, start, end in zip(
            intervals["symbol"], intervals["start"], intervals["end"], strict=True
        )
    ]
    conn.execute(table.delete().where(table.c.universe == key))
    if rows:
        conn.execute(table.insert(), rows)
    return len(rows)


def load_membership(conn: sa.Connection, table: sa.Table, universe: str) -> pd.DataFrame | None:
    """The stored membership frame of ``universe`` (``line`` <NA>), or None if none."""
    key = universe.strip().lower()
    query = (
        sa.select(table.c.symbol, table.c.start, table.c.end)
        .where(table.c.universe == key)
        .order_by(table.c.symbol, table.c.start)
    )
    rows = conn.execute(query).all()
    if not rows:
        return None
    return _frame(
        [r.symbol for r in rows],
        [pd.Timestamp(r.start) for r in rows],
        [None if r.end is None else pd.Timestamp(r.end) for r in rows],
        [None] * len(rows),
    )
