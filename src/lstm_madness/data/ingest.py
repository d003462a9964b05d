"""Loading price files into the store: parse → validate → upsert, one transaction per file.

A file is all or nothing: any bad row raises :class:`~lstm_madness.errors.ValidationError`
naming file, line, column, value and reason, and nothing of the file is written, unless
``skip_bad_rows`` is set, which writes the good rows and returns the rejected ones.
Re-loading identical data changes nothing; revised values are updated and reported.
Every load is recorded in ``ingest_log`` with the sha256 of the loaded bytes.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path

import pandas as pd
import sqlalchemy as sa

from lstm_madness.data.initdb import store_errors
from lstm_madness.data.sources import ParsedFile, parse_csv
from lstm_madness.data.universe import known_security
from lstm_madness.data.upsert import last_load, log_ingest, upsert_bars, upsert_securities
from lstm_madness.data.validation import CheckedBars, Problem, check_bars
from lstm_madness.errors import DataError, ValidationError

#: Samples that ship with dependencies: name → (symbol, kind, display name).
SAMPLES: dict[str, tuple[str, str, str]] = {"sp500": ("^GSPC", "index", "S&P 500 index")}
_SHOWN_PROBLEMS = 20
_SHOWN_DATES = 8


@dataclass(frozen=True)
class IngestResult:
    """What loading one file (or download) did.

    Attributes
    ----------
    path : str
        File path, ``"yfinance:SYM"`` or ``"sample:sp500"``.
    format : str
        Parsed format (``yahoo``, ``stooq``, ``generic``, ``long``).
    symbols : tuple of str
        Symbols in the loaded rows.
    checksum : str
        sha256 (hex) of the loaded bytes.
    rows_read : int
        Data lines read.
    inserted, updated, unchanged, rejected : int
        New rows, rows whose stored values changed, rows already stored, rejected lines.
    collapsed : int
        Identical duplicate lines folded into one.
    rewritten : tuple of (str, datetime.date)
        (symbol, date) whose stored history was rewritten (vendor revisions).
    warnings : tuple of str
        Suspected splits, gaps, rewritten history, missing columns.
    problems : tuple of Problem
        Rejected values (only with ``skip_bad_rows``; otherwise they are raised).
    previously_loaded : datetime or None
        When bytes with the same checksum were loaded before.
    """

    path: str
    format: str
    symbols: tuple[str, ...]
    checksum: str
    rows_read: int
    inserted: int
    updated: int
    unchanged: int
    rejected: int
    collapsed: int = 0
    rewritten: tuple[tuple[str, date], ...] = ()
    warnings: tuple[str, ...] = ()
    problems: tuple[Problem, ...] = ()
    previously_loaded: datetime | None = None

    @property
    def changed(self) -> bool:
        """Whether the store changed."""
        return self.inserted + self.updated > 0


def _rejection(name: str, problems: Sequence[Problem], lines: int) -> ValidationError:
    shown = "\n".join(f"  {p}" for p in problems[:_SHOWN_PROBLEMS])
    more = len(problems) - _SHOWN_PROBLEMS
    tail = f"\n  ... and {more} more" if more > 0 else ""
    return ValidationError(
        f"{name}: {lines} bad row(s), nothing of this file was written "
        f"(skip_bad_rows / --skip-bad-rows loads the good rows):\n{shown}{tail}",
        list(problems),
    )


def _rewrite_warnings(name: str, rewritten: tuple[tuple[str, date], ...]) -> list[str]:
    by_symbol: dict[str, list[date]] = {}
    for sym, day in rewritten:
        by_symbol.setdefault(sym, []).append(day)
    out = []
    for sym, days in by_symbol.items():
        shown = ", ".join(str(d) for d in days[:_SHOWN_DATES])
        more = f" and {len(days) - _SHOWN_DATES} more" if len(days) > _SHOWN_DATES else ""
        out.append(
            f"{name}: rewrote stored history of {sym} on {len(days)} date(s): {shown}{more} "
            "(the source revised them; adjusted prices are often revised after dividends)"
        )
    return out


def _problems(
    name: str, parsed: ParsedFile, checked: CheckedBars, skip_bad_rows: bool
) -> tuple[list[Problem], int]:
    """Every problem of the file by line, and the number of rejected lines.

    Raises the rejection when there are problems and not ``skip_bad_rows``, or when no
    valid row is left (DataError when the file had no data rows at all).
    """
    problems = sorted(
        [*parsed.problems, *checked.problems], key=lambda p: (p.line or 0, p.column or "")
    )
    rejected = len({p.line for p in parsed.problems}) + checked.rejected_lines
    if problems and not skip_bad_rows:
        raise _rejection(name, problems, rejected)
    if checked.frame.empty:
        if problems:
            raise _rejection(name, problems, rejected)
        raise DataError(f"{name}: no data rows")
    return problems, rejected


def _record_securities(
    conn: sa.Connection,
    symbols: tuple[str, ...],
    source: str,
    kind: str | None,
    security_name: str | None,
) -> None:
    """Upsert the loaded symbols into ``securities`` (kind and name default to what
    :func:`~lstm_madness.data.universe.known_security` knows)."""
    known = {s: known_security(s) for s in symbols}
    upsert_securities(
        conn,
        [
            {
                "symbol": s,
                "kind": kind or known[s][0],
                "name": security_name or known[s][1],
                "source": source,
            }
            for s in symbols
        ],
    )


def ingest_payload(
    conn: sa.Connection,
    data: bytes,
    name: str,
    *,
    symbol: str | None = None,
    fmt: str = "auto",
    skip_bad_rows: bool = False,
    source: str | None = None,
    kind: str | None = None,
    security_name: str | None = None,
) -> IngestResult:
    """Parse, validate and upsert one file's bytes inside the caller's transaction.

    Parameters
    ----------
    conn : sqlalchemy.Connection
        Connection with an open transaction (the caller commits or rolls back).
    data : bytes
        File content.
    name : str
        Display name and ``ingest_log.path``; the symbol comes from it when the file has no
        symbol column and ``symbol`` is None.
    symbol, fmt, skip_bad_rows
        See :func:`ingest_file`.
    source : str, optional
        Provenance stored with each bar (default ``"csv:<format>"``).
    kind, security_name : str, optional
        Recorded in ``securities`` (default: what
        :func:`~lstm_madness.data.universe.known_security` knows).

    Raises
    ------
    ValidationError
        Bad rows without ``skip_bad_rows``, or no valid row at all.
    DataError
        Unrecognized header or symbol.
    """
    checksum = hashlib.sha256(data).hexdigest()
    parsed = parse_csv(data, name, symbol=symbol, fmt=fmt)
    checked = check_bars(parsed.frame, name, parsed.has_adj_close)
    problems, rejected = _problems(name, parsed, checked, skip_bad_rows)
    frame = checked.frame
    source = source or f"csv:{parsed.format}"
    symbols = tuple(pd.unique(frame["symbol"]).tolist())
    previous = last_load(conn, checksum)
    counts = upsert_bars(conn, frame, source)
    _record_securities(conn, symbols, source, kind, security_name)
    log_ingest(
        conn,
        path=name,
        format=parsed.format,
        symbols=",".join(symbols),
        checksum=checksum,
        rows_read=parsed.rows_read,
        inserted=counts.inserted,
        updated=counts.updated,
        unchanged=counts.unchanged,
        rejected=rejected,
    )
    warnings = [*parsed.warnings, *checked.warnings, *_rewrite_warnings(name, counts.rewritten)]
    return IngestResult(
        path=name,
        format=parsed.format,
        symbols=symbols,
        checksum=checksum,
        rows_read=parsed.rows_read,
        inserted=counts.inserted,
        updated=counts.updated,
        unchanged=counts.unchanged,
        rejected=rejected,
        collapsed=checked.collapsed,
        rewritten=counts.rewritten,
        warnings=tuple(warnings),
        problems=tuple(problems),
        previously_loaded=previous,
    )


def ingest_file(
    engine: sa.Engine,
    path: str | Path,
    symbol: str | None = None,
    fmt: str = "auto",
    skip_bad_rows: bool = False,
) -> IngestResult:
    """Load one price file in one transaction.

    Parameters
    ----------
    engine : sqlalchemy.Engine
        The store (initialized with :func:`~lstm_madness.data.initdb.init_db`).
    path : str or Path
        CSV file (see :mod:`lstm_madness.data.sources` for the formats).
    symbol : str, optional
        Symbol of the rows; default from the file name (``xlf.us.txt`` → ``XLF``) or the
        file's symbol/ticker column.
    fmt : {"auto", "yahoo", "stooq", "generic", "long"}
        File format; ``auto`` detects it from the header.
    skip_bad_rows : bool
        Write the good rows and report the bad ones instead of rejecting the file.

    Returns
    -------
    IngestResult

    Raises
    ------
    DataError
        Unreadable file, unknown header, invalid symbol.
    ValidationError
        Bad rows (nothing written), unless ``skip_bad_rows``.
    """
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise DataError(f"cannot read {path}: {exc.strerror or exc}") from exc
    with store_errors("write to"), engine.begin() as conn:
        return ingest_payload(
            conn, data, str(path), symbol=symbol, fmt=fmt, skip_bad_rows=skip_bad_rows
        )


def bars_to_csv(frame: pd.DataFrame) -> bytes:
    """Generic long CSV bytes (``symbol,date,open,...,volume``) of a bars frame.

    Floats are written with Python's shortest round-trip repr, so parsing the bytes gives
    back the same float64 values.
    """
    out = frame[["symbol", "date", "open", "high", "low", "close", "adj_close", "volume"]].copy()
    out["date"] = pd.to_datetime(out["date"]).dt.strftime("%Y-%m-%d")
    return out.to_csv(index=False, lineterminator="\n").encode("utf-8")


def sample_bytes(name: str = "sp500") -> tuple[bytes, str, str, str]:
    """CSV bytes of a bundled sample and its (symbol, kind, display name).

    ``sp500``: S&P 500 index daily bars 1999–2018 shipped by ``arch`` (``arch.data.sp500``).
    """
    if name not in SAMPLES:
        raise DataError(f"unknown sample {name!r}: available: {', '.join(SAMPLES)}")
    from arch.data import sp500

    symbol, kind, label = SAMPLES[name]
    raw = sp500.load()
    frame = raw.rename(columns=lambda c: c.strip().lower().replace(" ", "_"))
    frame = frame.rename_axis("date").reset_index()
    frame.insert(0, "symbol", symbol)
    return bars_to_csv(frame), symbol, kind, label


def ingest_sample(engine: sa.Engine, name: str = "sp500") -> IngestResult:
    """Load a bundled sample (see :func:`sample_bytes`) so that everything works offline."""
    data, _symbol, kind, label = sample_bytes(name)
    with store_errors("write to"), engine.begin() as conn:
        return ingest_payload(
            conn, data, f"sample:{name}", source=f"arch:{name}", kind=kind, security_name=label
        )
