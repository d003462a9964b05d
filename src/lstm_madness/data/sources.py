"""CSV price formats: detection, symbols from file names, and parsing into a bars frame.

Supported headers (matched case-insensitively, extra columns are ignored):

``yahoo``
    ``Date,Open,High,Low,Close,Adj Close,Volume`` (Yahoo Finance download).
``stooq``
    ``Date,Open,High,Low,Close[,Volume]`` and the ``<TICKER>,<PER>,<DATE>,<TIME>,<OPEN>,
    <HIGH>,<LOW>,<CLOSE>,<VOL>,<OPENINT>`` variant with ``YYYYMMDD`` dates (only ``<PER>``
    ``D`` rows are daily bars; the ticker column names the symbol).
``generic``
    ``date,open,high,low,close[,adj_close],volume`` (this project's own format).
``long``
    any of the above plus a ``symbol`` or ``ticker`` column: several symbols in one file.

Dates are ISO ``YYYY-MM-DD`` (a ``00:00:00`` time part, as pandas/yfinance exports write
it, is accepted) except in the Stooq variant. Prices are in the file's currency units and
volume in shares. Parsing is vectorized: a clean file is read once by the C parser; only a
file with problems is re-read as text to name each bad line, column and value. Many files
(:func:`parse_many`) share one C-parser pass when their header is the same.
"""

from __future__ import annotations

import io
import re
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from lstm_madness.data.validation import Problem
from lstm_madness.errors import DataError

if TYPE_CHECKING:
    from collections.abc import Sequence

FORMATS: tuple[str, ...] = ("auto", "yahoo", "stooq", "generic", "long")
NUMERIC_COLUMNS: tuple[str, ...] = ("open", "high", "low", "close", "adj_close", "volume")
#: Columns of a parsed bars frame, in order.
FRAME_COLUMNS: tuple[str, ...] = ("line", "symbol", "date", *NUMERIC_COLUMNS)

_ALIASES: dict[str, str] = {
    "date": "date",
    "open": "open",
    "high": "high",
    "low": "low",
    "close": "close",
    "adj_close": "adj_close",
    "adjclose": "adj_close",
    "adjusted_close": "adj_close",
    "volume": "volume",
    "vol": "volume",
    "symbol": "symbol",
    "ticker": "symbol",
    "per": "per",
}
_REQUIRED: dict[str, tuple[str, ...]] = {
    "yahoo": ("date", "open", "high", "low", "close", "adj_close", "volume"),
    "stooq": ("date", "open", "high", "low", "close"),
    "generic": ("date", "open", "high", "low", "close", "volume"),
    "long": ("symbol", "date", "open", "high", "low", "close"),
}
_SYMBOL_RE = re.compile(r"^\^?[A-Z0-9][A-Z0-9.\-=_]*$")
_NUMBER_RE = r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?"
_ISO_DATE_RE = r"(\d{4}-\d{2}-\d{2})(?:[ T]00:00(?::00(?:\.0+)?)?(?:Z|[+-]\d{2}:?\d{2})?)?"
_MISSING_WORDS = frozenset({"nan", "null", "na", "n/a", "none", "-"})
_STOOQ_SUFFIX = ".US"
_BOM = b"\xef\xbb\xbf"


@dataclass(frozen=True)
class ParsedFile:
    """A parsed price file, before validation.

    Attributes
    ----------
    name : str
        Display name of the source.
    format : str
        Detected or given format (``yahoo``, ``stooq``, ``generic``, ``long``).
    frame : pandas.DataFrame
        Rows that parsed, columns :data:`FRAME_COLUMNS`: ``line`` (1-based physical line),
        ``symbol``, ``date`` (datetime64), prices (float64, file units; ``adj_close`` NaN
        when absent) and ``volume`` (float64, shares).
    problems : tuple of Problem
        Unparseable or empty cells and malformed lines (those rows are not in ``frame``).
    rows_read : int
        Data lines in the file (blank lines not counted).
    has_adj_close : bool
        Whether the source has an adjusted close column.
    warnings : tuple of str
        Non-fatal remarks (e.g. no volume column).
    """

    name: str
    format: str
    frame: pd.DataFrame
    problems: tuple[Problem, ...]
    rows_read: int
    has_adj_close: bool
    warnings: tuple[str, ...] = ()


def normalize_symbol(raw: str) -> str:
    """Upper-case a ticker and drop Stooq's ``.US`` suffix (``xlf.us`` → ``XLF``)."""
    sym = raw.strip().upper()
    if sym.endswith(_STOOQ_SUFFIX) and len(sym) > len(_STOOQ_SUFFIX):
        sym = sym[: -len(_STOOQ_SUFFIX)]
    return sym


def check_symbol(symbol: str) -> str:
    """Return ``symbol`` if it is a valid ticker (≤ 32 chars), else raise DataError."""
    if len(symbol) > 32 or not _SYMBOL_RE.match(symbol):
        raise DataError(f"invalid symbol {symbol!r}: use letters, digits, '.', '-', '=' or '^'")
    return symbol


def symbol_from_path(path: str | Path) -> str:
    """The symbol a file name implies: ``xlf.us.txt`` → ``XLF``, ``BRK-B.csv`` → ``BRK-B``."""
    name = Path(path).name
    for ext in (".csv", ".txt"):
        if name.lower().endswith(ext):
            name = name[: -len(ext)]
            break
    return check_symbol(normalize_symbol(name))


def _canonical(raw: str) -> str:
    name = raw.strip().strip('"').strip().strip("<>").lower()
    return re.sub(r"[\s\-]+", "_", name)


def detect_format(header: list[str]) -> str:
    """The format of a header (list of raw column names); DataError if none matches."""
    names = {_ALIASES.get(_canonical(h)) for h in header}
    if not {"date", "open", "high", "low", "close"} <= names:
        raise DataError(
            f"unrecognized header {','.join(header)!r}: expected Yahoo "
            "(Date,Open,High,Low,Close,Adj Close,Volume), Stooq (Date,Open,High,Low,Close,"
            "Volume or <TICKER>,<PER>,<DATE>,...), generic (date,open,high,low,close,"
            "adj_close,volume) or long (one of those plus symbol/ticker)"
        )
    if any(h.strip().startswith("<") for h in header):
        return "stooq"
    if "symbol" in names:
        return "long"
    if any(h.strip().lower() == "adj close" for h in header):
        return "yahoo"
    if header[0].strip() == "Date" and "adj_close" not in names:
        return "stooq"
    return "generic"


@dataclass(frozen=True)
class _Layout:
    """Where things are in a file: header line, raw→canonical columns, date format."""

    header_line: int  # 1-based
    header: list[str]
    columns: dict[str, str]  # raw name -> canonical
    format: str
    compact_dates: bool  # YYYYMMDD (Stooq variant)


def _layout(data: bytes, name: str, fmt: str) -> _Layout:
    if fmt not in FORMATS:
        raise DataError(f"unknown format {fmt!r}: use one of {', '.join(FORMATS)}")
    text = data[:4096].decode("utf-8-sig", errors="replace")
    lines = text.split("\n")
    idx = next((i for i, ln in enumerate(lines) if ln.strip()), None)
    if idx is None:
        raise DataError(f"{name}: the file is empty")
    header = [h.strip() for h in lines[idx].rstrip("\r").split(",")]
    detected = detect_format(header)
    columns: dict[str, str] = {}
    for raw in header:
        canon = _ALIASES.get(_canonical(raw))
        if canon is None:
            continue
        if canon in columns.values():
            raise DataError(f"{name}: column {canon!r} appears twice in the header")
        columns[raw] = canon
    used = detected if fmt == "auto" else fmt
    missing = [c for c in _REQUIRED[used] if c not in columns.values()]
    if missing:
        raise DataError(f"{name}: not a {used} file, missing column(s) {', '.join(missing)}")
    compact = any(h.startswith("<") for h in header)
    return _Layout(idx + 1, header, columns, used, compact)


def _parse_dates(text: pd.Series, compact: bool) -> pd.Series:
    """Dates from strings; NaT where unparseable."""
    if compact:
        return pd.to_datetime(text, format="%Y%m%d", errors="coerce")
    dates = pd.to_datetime(text, format="%Y-%m-%d", errors="coerce")
    failed = dates.isna().to_numpy()
    if failed.any():  # dates with a midnight time part, as pandas/yfinance write them
        day = text[failed].str.extract(f"^{_ISO_DATE_RE}$", expand=False)
        dates[failed] = pd.to_datetime(day, format="%Y-%m-%d", errors="coerce")
    return dates


def _frame(
    line: np.ndarray,
    symbol: pd.Series | np.ndarray | str,
    date: pd.Series,
    values: dict[str, np.ndarray],
) -> pd.DataFrame:
    n = len(line)
    out = {
        "line": line.astype(np.int64),
        "symbol": np.full(n, symbol, dtype=object) if isinstance(symbol, str) else symbol,
        "date": date.to_numpy().astype("datetime64[s]"),
    }
    for col in NUMERIC_COLUMNS:
        out[col] = values.get(col, np.full(n, np.nan if col == "adj_close" else 0.0))
    return pd.DataFrame(out)


def _file_symbol(layout: _Layout, name: str, symbol: str | None) -> str | None:
    if "symbol" in layout.columns.values():
        return None if symbol is None else check_symbol(normalize_symbol(symbol))
    if symbol is not None:
        return check_symbol(normalize_symbol(symbol))
    return symbol_from_path(name)


def _symbols_column(raw: pd.Series) -> pd.Series:
    sym = raw.astype(str).str.strip().str.upper()
    return sym.str.replace(r"\.US$", "", regex=True)


def _content_end(data: bytes) -> int:
    """Length of ``data`` without trailing whitespace (no copy, unlike ``rstrip``)."""
    end = len(data)
    while end and data[end - 1] in b" \t\r\n\x0b\x0c":
        end -= 1
    return end


def _has_blank_line(data: bytes) -> bool:
    """Whether a blank line follows the header line before the last row."""
    newline = data.find(b"\n")
    if newline < 0:
        return False
    end = _content_end(data)
    return data.find(b"\n\n", newline, end) >= 0 or data.find(b"\n\r\n", newline, end) >= 0


def _fast_parse(data: bytes, layout: _Layout, symbol: str | None) -> pd.DataFrame | None:
    """Parse a clean file in one C-parser pass; None when anything needs a closer look."""
    if layout.header_line != 1:
        return None  # leading blank lines: line numbers need the text path
    if _has_blank_line(data):
        return None  # blank lines before or between rows: line numbers need the text path
    canon = layout.columns
    dtypes = {
        raw: (str if c in ("date", "symbol", "per") else np.float64) for raw, c in canon.items()
    }
    body_bytes = data[len(_BOM) :] if data.startswith(_BOM) else data
    extra_columns = len(canon) < len(layout.header)  # usecols costs time: only if needed
    try:
        with warnings.catch_warnings():  # a ragged line: the text path names it
            warnings.simplefilter("ignore", pd.errors.ParserWarning)
            df = pd.read_csv(
                io.BytesIO(body_bytes),
                usecols=list(canon) if extra_columns else None,
                dtype=dtypes,
                index_col=False,
            )
    except (ValueError, UnicodeDecodeError, pd.errors.ParserError):
        return None
    if data.count(b",") != (len(layout.header) - 1) * (len(df) + 1):
        return None  # some line has a wrong number of fields
    df = df.rename(columns=canon)
    values = {c: df[c].to_numpy() for c in NUMERIC_COLUMNS if c in df}
    if any(not np.isfinite(v).all() for v in values.values()):
        return None
    if df["date"].isna().any():
        return None
    dates = _parse_dates(df["date"], layout.compact_dates)
    if dates.isna().any():
        return None
    if "per" in df and not (df["per"].str.strip().str.upper() == "D").all():
        return None
    if symbol is None and "symbol" in df:
        if df["symbol"].isna().any():
            return None
        syms = _symbols_column(df["symbol"])
        if not syms.str.match(_SYMBOL_RE.pattern).all() or (syms.str.len() > 32).any():
            return None
        sym: pd.Series | str = syms.to_numpy(dtype=object)
    else:
        sym = symbol or ""
    lines = np.arange(len(df)) + layout.header_line + 1
    return _frame(lines, sym, dates, values)


def _text_lines(data: bytes) -> pd.DataFrame:
    text = data.decode("utf-8-sig", errors="replace")
    raw = pd.Series(text.split("\n"), dtype=object).str.rstrip("\r")
    frame = pd.DataFrame({"line": np.arange(1, len(raw) + 1), "text": raw})
    return frame.loc[raw.str.strip() != ""]


def _slow_parse(
    data: bytes, name: str, layout: _Layout, symbol: str | None
) -> tuple[pd.DataFrame, list[Problem]]:
    """Parse as text and name every bad line, column and value."""
    lines = _text_lines(data)
    lines = lines.loc[lines["line"] > layout.header_line]
    n_fields = len(layout.header)
    counts = lines["text"].str.count(",") + 1
    problems: list[Problem] = []
    wrong = lines.loc[counts != n_fields]
    for line, text, count in zip(
        wrong["line"], wrong["text"], counts[counts != n_fields], strict=True
    ):
        shown = text if len(text) <= 80 else text[:77] + "..."
        problems.append(
            Problem(name, int(line), None, shown, f"expected {n_fields} fields, found {count}")
        )
    lines = lines.loc[counts == n_fields]
    cells = (
        lines["text"].str.split(",", expand=True)
        if len(lines)
        else pd.DataFrame(columns=range(n_fields))
    )
    cells.columns = layout.header
    line_no = lines["line"].to_numpy()
    bad = np.zeros(len(lines), dtype=bool)

    def flag(mask: np.ndarray, col: str, raw: pd.Series, reason: str) -> None:
        nonlocal bad
        idx = np.flatnonzero(mask & ~bad)
        raw_values = raw.to_numpy(dtype=object)
        problems.extend(
            Problem(name, int(line_no[i]), col, str(raw_values[i]), reason) for i in idx
        )
        bad |= mask

    parsed: dict[str, object] = {}
    for raw_name, col in layout.columns.items():
        raw = cells[raw_name].astype(object).fillna("").astype(str).str.strip()
        empty = (raw == "").to_numpy()
        flag(empty, col, raw, "empty value")
        if col == "date":
            dates = _parse_dates(raw, layout.compact_dates)
            flag(dates.isna().to_numpy(), col, raw, "unparseable date")
            parsed[col] = dates
        elif col == "per":
            flag((raw.str.upper() != "D").to_numpy(), col, raw, "not a daily bar")
        elif col == "symbol":
            syms = _symbols_column(raw)
            invalid = ~syms.str.match(_SYMBOL_RE.pattern) | (syms.str.len() > 32)
            flag(invalid.to_numpy(), col, raw, "invalid symbol")
            parsed[col] = syms
        else:
            missing = raw.str.lower().isin(_MISSING_WORDS).to_numpy()
            flag(missing, col, raw, "missing value")
            number = raw.str.fullmatch(_NUMBER_RE).to_numpy(dtype=bool)
            flag(~number, col, raw, "not a number")
            values = np.full(len(raw), np.nan)
            values[number] = raw.to_numpy(dtype=object)[number].astype(np.float64)
            flag(~np.isfinite(values), col, raw, "not a finite number")
            parsed[col] = values
    keep = ~bad
    values = {c: np.asarray(parsed[c])[keep] for c in NUMERIC_COLUMNS if c in parsed}
    dates = pd.Series(parsed["date"]).loc[keep]
    if symbol is not None:
        sym: pd.Series | str = symbol
    else:
        sym = pd.Series(parsed["symbol"]).loc[keep].to_numpy(dtype=object)
    frame = _frame(line_no[keep], sym, dates, values)
    problems.sort(key=lambda p: (p.line or 0, p.column or ""))
    return frame, problems


def _count_data_lines(data: bytes, header_line: int) -> int:
    lines = _text_lines(data)
    return int((lines["line"] > header_line).sum())


def parse_csv(data: bytes, name: str, symbol: str | None = None, fmt: str = "auto") -> ParsedFile:
    """Parse the bytes of a price file.

    Parameters
    ----------
    data : bytes
        The file's content (UTF-8, optional BOM).
    name : str
        Display name (usually the path); also the symbol source when ``symbol`` is None and
        the file has no symbol column.
    symbol : str, optional
        Symbol of every row; overrides the file name or a single-ticker symbol column.
    fmt : {"auto", "yahoo", "stooq", "generic", "long"}
        Format; ``auto`` detects it from the header.

    Returns
    -------
    ParsedFile
        Parsed rows and the problems of the rows that did not parse.

    Raises
    ------
    DataError
        Unknown header/format, invalid symbol, or a symbol override on a multi-symbol file.
    """
    layout = _layout(data, name, fmt)
    file_symbol = _file_symbol(layout, name, symbol)
    if symbol is not None and "symbol" in layout.columns.values():
        _check_single_ticker(data, layout, name)
    frame = _fast_parse(data, layout, file_symbol)
    if frame is not None:
        problems: list[Problem] = []
        rows_read = len(frame)
    else:
        frame, problems = _slow_parse(data, name, layout, file_symbol)
        rows_read = _count_data_lines(data, layout.header_line)
    has_adj = "adj_close" in layout.columns.values()
    warnings: list[str] = []
    if "volume" not in layout.columns.values():
        warnings.append(f"{name}: no volume column; volume stored as 0")
    return ParsedFile(
        name, layout.format, frame, tuple(problems), rows_read, has_adj, tuple(warnings)
    )


def _check_single_ticker(data: bytes, layout: _Layout, name: str) -> None:
    raw = next(r for r, c in layout.columns.items() if c == "symbol")
    tickers = pd.read_csv(io.BytesIO(data), usecols=[raw], dtype=str, encoding="utf-8-sig")
    distinct = _symbols_column(tickers[raw].dropna()).unique()
    if len(distinct) > 1:
        raise DataError(
            f"{name}: --symbol cannot rename a file with several symbols "
            f"({', '.join(sorted(distinct)[:5])}...)"
        )


def parse_many(
    files: Sequence[tuple[bytes, str]], symbol: str | None = None, fmt: str = "auto"
) -> list[ParsedFile | DataError]:
    """Parse several files: for each, what :func:`parse_csv` returns or the DataError it raises.

    Files without a symbol column that share a header line and look plain (see
    :func:`_joinable`: no blank line, rows of digits and number or date punctuation only)
    are read together: their bodies, concatenated, in one pass of the C parser, which
    saves pandas' per-call overhead (milliseconds a file, most of the time of a few
    thousand rows). Any other file, and any file of a pass in which a cell turns out
    empty, infinite or not a date, is parsed alone by :func:`parse_csv` (a pass that fails
    as a whole leaves all its files to it); the results are the same either way.

    Parameters
    ----------
    files : sequence of (bytes, str)
        Content and display name of each file (see :func:`parse_csv`).
    symbol, fmt
        As for :func:`parse_csv`, applied to every file.

    Returns
    -------
    list of ParsedFile or DataError
        One entry per file, in order.
    """
    out: list[ParsedFile | DataError | None] = [None] * len(files)
    groups: dict[tuple[str, ...], list[tuple[int, str]]] = {}
    layouts: dict[tuple[str, ...], _Layout] = {}
    for i, (data, name) in enumerate(files):
        try:
            layout = _layout(data, name, fmt)
            file_symbol = _file_symbol(layout, name, symbol)
        except DataError as exc:
            out[i] = exc
            continue
        if file_symbol is not None and _joinable(data, layout):
            key = (layout.format, *layout.header)
            groups.setdefault(key, []).append((i, file_symbol))
            layouts[key] = layout
    for key, members in groups.items():
        parsed = _parse_joined([files[i] for i, _ in members], layouts[key], members)
        for (i, _), result in zip(members, parsed, strict=True):
            out[i] = result
    for i, (data, name) in enumerate(files):
        if out[i] is None:
            try:
                out[i] = parse_csv(data, name, symbol=symbol, fmt=fmt)
            except DataError as exc:
                out[i] = exc
    return [r for r in out if r is not None]


#: Bytes of the rows of a file fit for a joint pass: digits, number and ISO date
#: punctuation, separators. Any other (a letter: ``nan``, ``abc``, ``n/a``) sends the file
#: to :func:`parse_csv`, so that one bad cell does not fail the pass of a whole batch.
_PLAIN_BYTES = b'0123456789.,-+eE:TZ \t\r\n"'


def _joinable(data: bytes, layout: _Layout) -> bool:
    """Whether a file can be read in a joint pass: plain dates, no symbol column, the
    header on line 1, rows of :data:`_PLAIN_BYTES` only, and no lone carriage return
    (which the parser would take for a line break: with none, a file parses into at most
    as many rows as it has lines, so equal totals in :func:`_parse_joined` mean that every
    row is on its own line)."""
    canon = set(layout.columns.values())
    header = data[: data.find(b"\n")]
    return (
        layout.header_line == 1
        and not layout.compact_dates
        and not canon & {"symbol", "per"}
        and len(set(layout.header)) == len(layout.header)
        and len(data.translate(None, _PLAIN_BYTES)) == len(header.translate(None, _PLAIN_BYTES))
        and (b"\r" not in data or data.count(b"\r") == data.count(b"\r\n"))
    )


def _parse_joined(
    files: list[tuple[bytes, str]], layout: _Layout, members: list[tuple[int, str]]
) -> list[ParsedFile | None]:
    """Parse files of one header in one pass; None for each file that needs :func:`parse_csv`."""
    out: list[ParsedFile | None] = [None] * len(files)
    fields = len(layout.header)
    pieces: list[memoryview] = []
    take: list[int] = []
    counts: list[int] = []
    for i, (data, _) in enumerate(files):
        start = data.find(b"\n") + 1
        end = _content_end(data)
        while end > start and data[end - 1] in b"\r\n":
            end -= 1  # the lines after the header, without trailing newlines
        rows = data.count(b"\n", start, end) + 1 if end > start else 0
        if rows and data.count(b",", start, end) == (fields - 1) * rows:
            pieces += [memoryview(data)[start:end], memoryview(b"\n")]
            take.append(i)
            counts.append(rows)
    if not take:
        return out
    canon = layout.columns
    dtypes = {raw: (object if c == "date" else np.float64) for raw, c in canon.items()}
    try:
        with warnings.catch_warnings():  # a malformed cell fails the pass: parse_csv's turn
            warnings.simplefilter("ignore", pd.errors.ParserWarning)
            df = pd.read_csv(
                io.BytesIO(b"".join(pieces)),
                header=None,
                names=layout.header,
                usecols=list(canon) if len(canon) < fields else None,
                dtype=dtypes,
                index_col=False,
                low_memory=False,
            )
    except (ValueError, UnicodeDecodeError, pd.errors.ParserError):
        return out
    sizes = np.array(counts, dtype=np.int64)
    if len(df) != sizes.sum():
        return out
    frame = df.rename(columns=canon)
    part = np.repeat(np.arange(len(take)), sizes)  # (n,) position in take of each row
    dates = _parse_dates(frame["date"], compact=False)
    bad = dates.isna().to_numpy().copy()
    for col in NUMERIC_COLUMNS:
        if col in frame:
            bad |= ~np.isfinite(frame[col].to_numpy())
    starts = np.concatenate([[0], np.cumsum(sizes)])
    symbols = pd.Series([members[i][1] for i in take], dtype=object).infer_objects().array
    # the columns of _frame, built in place (no copy of the parsed numbers)
    frame["date"] = dates.to_numpy().astype("datetime64[s]")
    frame.insert(0, "line", np.arange(len(frame)) - np.repeat(starts[:-1], sizes) + 2)
    frame.insert(1, "symbol", symbols.take(part))  # a take of k strings: no per-row str
    for col in NUMERIC_COLUMNS:
        if col not in frame:
            frame[col] = np.full(len(frame), np.nan if col == "adj_close" else 0.0)
    if list(frame.columns) != list(FRAME_COLUMNS):
        frame = frame[list(FRAME_COLUMNS)]
    has_adj = "adj_close" in canon.values()
    note = None if "volume" in canon.values() else "no volume column; volume stored as 0"
    broken = set(np.unique(part[bad]).tolist())
    for j, i in enumerate(take):
        if j in broken:
            continue
        name = files[i][1]
        out[i] = ParsedFile(
            name,
            layout.format,
            frame.iloc[starts[j] : starts[j + 1]].reset_index(drop=True),
            (),
            counts[j],
            has_adj,
            () if note is None else (f"{name}: {note}",),
        )
    return out
