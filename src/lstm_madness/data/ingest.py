"""Loading price files into the store: parse → validate → upsert, each file all or nothing.

A file is all or nothing: any bad row raises :class:`~lstm_madness.errors.ValidationError`
naming file, line, column, value and reason, and nothing of the file is written, unless
``skip_bad_rows`` is set, which writes the good rows and returns the rejected ones.
Re-loading identical data changes nothing; revised values are updated and reported.
Every load is recorded in ``ingest_log`` with the sha256 of the loaded bytes.

Many files (:func:`ingest_files`, ``madness ingest *.csv``) go a batch at a time (about
:data:`BATCH_BYTES` of CSV): the batch is read, parsed and validated with vectorized
pandas/numpy over all its rows (:func:`~lstm_madness.data.sources.parse_many`,
:func:`~lstm_madness.data.validation.check_many`), and its valid files are written in one
transaction: one query of the stored rows, one binary ``COPY`` (PostgreSQL) or one
``executemany`` (SQLite), one insert into ``ingest_log``. A rejected file is left out
before anything is written, so it writes nothing. Should the store refuse the batch's
transaction (a concurrent writer, a lost connection), it rolls back and each of its files
is written again alone, in a transaction of its own, so that a failure is only that
file's. Files that share a symbol or identical bytes are written in order, in separate
transactions, so every count, revision and "same file loaded" is what loading the files
one by one says.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import date, datetime
from functools import cache
from pathlib import Path

import pandas as pd
import sqlalchemy as sa

from lstm_madness.data.initdb import store_errors
from lstm_madness.data.sources import ParsedFile, parse_csv, parse_many
from lstm_madness.data.universe import available_universes, universe_table
from lstm_madness.data.upsert import (
    last_loads,
    log_ingests,
    upsert_bars_many,
    upsert_securities,
)
from lstm_madness.data.validation import (
    CheckedBars,
    Problem,
    check_bars,
    check_many,
    problem_lines,
)
from lstm_madness.errors import DataError, MadnessError, StoreError, ValidationError

#: Samples that ship with dependencies: name → (symbol, kind, display name).
SAMPLES: dict[str, tuple[str, str, str]] = {"sp500": ("^GSPC", "index", "S&P 500 index")}
#: CSV bytes read, parsed and validated together, whose valid files share a transaction.
BATCH_BYTES = 8 * 2**20
#: Most files and symbols written in one transaction (queries list them: at most 500
#: keeps a statement under the 999 parameters of SQLite before 3.32).
_GROUP_MAX = 500
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
    return ValidationError(
        f"{name}: {lines} bad row(s), nothing of this file was written "
        f"(skip_bad_rows / --skip-bad-rows loads the good rows):\n{problem_lines(problems)}",
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


@cache
def _known_securities() -> dict[str, tuple[str | None, str | None]]:
    """(kind, name) by symbol from the bundled universes, the first universe's when several
    list a symbol: :func:`~lstm_madness.data.universe.known_security` as one lookup."""
    known: dict[str, tuple[str | None, str | None]] = {}
    for universe in available_universes():
        table = universe_table(universe)
        for sym, kind, name in zip(table["symbol"], table["kind"], table["name"], strict=True):
            known.setdefault(sym, (kind or None, name or None))
    return known


def _security(symbol: str) -> tuple[str | None, str | None]:
    """(kind, name) of a symbol: a bundled universe's, else ``index`` for ``^`` symbols."""
    hit = _known_securities().get(symbol)
    if hit is not None:
        return hit
    return ("index" if symbol.startswith("^") else None), None


@dataclass(frozen=True)
class _Ready:
    """A parsed and validated file (or payload), ready to be written."""

    name: str
    checksum: str
    format: str
    rows_read: int
    frame: pd.DataFrame
    problems: tuple[Problem, ...]
    rejected: int
    collapsed: int
    warnings: tuple[str, ...]
    symbols: tuple[str, ...]
    source: str
    kind: str | None = None
    security_name: str | None = None


def _ready(
    data: bytes,
    name: str,
    parsed: ParsedFile,
    checked: CheckedBars,
    skip_bad_rows: bool,
    source: str | None = None,
    kind: str | None = None,
    security_name: str | None = None,
) -> _Ready:
    """The file to write, or the rejection it deserves (see :func:`_problems`)."""
    problems, rejected = _problems(name, parsed, checked, skip_bad_rows)
    return _Ready(
        name=name,
        checksum=hashlib.sha256(data).hexdigest(),
        format=parsed.format,
        rows_read=parsed.rows_read,
        frame=checked.frame,
        problems=tuple(problems),
        rejected=rejected,
        collapsed=checked.collapsed,
        warnings=(*parsed.warnings, *checked.warnings),
        symbols=tuple(pd.unique(checked.frame["symbol"]).tolist()),
        source=source or f"csv:{parsed.format}",
        kind=kind,
        security_name=security_name,
    )


def _write(conn: sa.Connection, files: Sequence[_Ready]) -> list[IngestResult]:
    """Write files that share no symbol inside the caller's transaction: their bars (one
    upsert), their securities and one ``ingest_log`` row each."""
    previous = last_loads(conn, [f.checksum for f in files])
    counts = upsert_bars_many(conn, [f.frame for f in files], [f.source for f in files])
    securities = []
    for f in files:
        for sym in f.symbols:
            kind, label = _security(sym)
            securities.append(
                {
                    "symbol": sym,
                    "kind": f.kind or kind,
                    "name": f.security_name or label,
                    "source": f.source,
                }
            )
    upsert_securities(conn, securities)
    log_ingests(
        conn,
        [
            {
                "path": f.name,
                "format": f.format,
                "symbols": ",".join(f.symbols),
                "checksum": f.checksum,
                "rows_read": f.rows_read,
                "inserted": c.inserted,
                "updated": c.updated,
                "unchanged": c.unchanged,
                "rejected": f.rejected,
            }
            for f, c in zip(files, counts, strict=True)
        ],
    )
    return [
        IngestResult(
            path=f.name,
            format=f.format,
            symbols=f.symbols,
            checksum=f.checksum,
            rows_read=f.rows_read,
            inserted=c.inserted,
            updated=c.updated,
            unchanged=c.unchanged,
            rejected=f.rejected,
            collapsed=f.collapsed,
            rewritten=c.rewritten,
            warnings=(*f.warnings, *_rewrite_warnings(f.name, c.rewritten)),
            problems=f.problems,
            previously_loaded=previous.get(f.checksum),
        )
        for f, c in zip(files, counts, strict=True)
    ]


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
    parsed = parse_csv(data, name, symbol=symbol, fmt=fmt)
    checked = check_bars(parsed.frame, name, parsed.has_adj_close)
    ready = _ready(data, name, parsed, checked, skip_bad_rows, source, kind, security_name)
    return _write(conn, [ready])[0]


def _read_batches(paths: Sequence[str | Path]) -> Iterator[list[tuple[Path, bytes | DataError]]]:
    """The files' bytes (or why they cannot be read), about :data:`BATCH_BYTES` at a time."""
    batch: list[tuple[Path, bytes | DataError]] = []
    size = 0
    for raw in paths:
        path = Path(raw)
        try:
            data: bytes | DataError = path.read_bytes()
        except OSError as exc:
            data = DataError(f"cannot read {path}: {exc.strerror or exc}")
        batch.append((path, data))
        size += len(data) if isinstance(data, bytes) else 0
        if size >= BATCH_BYTES:
            yield batch
            batch, size = [], 0
    if batch:
        yield batch


def _groups(ready: list[tuple[int, _Ready]]) -> list[list[tuple[int, _Ready]]]:
    """Consecutive runs of files to write together: a file that shares a symbol or its
    bytes with the run (or would make it too long) starts the next one."""
    groups: list[list[tuple[int, _Ready]]] = []
    symbols: set[str] = set()
    checksums: set[str] = set()
    for item in ready:
        file = item[1]
        if (
            not groups
            or symbols.intersection(file.symbols)
            or file.checksum in checksums
            or len(checksums) >= _GROUP_MAX
            or len(symbols) + len(file.symbols) > _GROUP_MAX
        ):
            groups.append([])
            symbols, checksums = set(), set()
        groups[-1].append(item)
        symbols.update(file.symbols)
        checksums.add(file.checksum)
    return groups


def _write_group(
    engine: sa.Engine, group: list[tuple[int, _Ready]]
) -> dict[int, IngestResult | MadnessError]:
    """Write a group in one transaction; if the store refuses it, each file in its own."""
    try:
        with store_errors("write to"), engine.begin() as conn:
            results = _write(conn, [file for _, file in group])
        return {i: result for (i, _), result in zip(group, results, strict=True)}
    except StoreError as exc:
        if len(group) == 1:
            return {group[0][0]: exc}
    out: dict[int, IngestResult | MadnessError] = {}
    for i, file in group:
        try:
            with store_errors("write to"), engine.begin() as conn:
                out[i] = _write(conn, [file])[0]
        except StoreError as exc:
            out[i] = exc
    return out


@dataclass
class _Batch:
    """Files read, parsed and validated together: what failed already, what is to write."""

    paths: list[Path]
    outcome: dict[int, IngestResult | MadnessError]
    ready: list[tuple[int, _Ready]]


def _prepare(
    batch: list[tuple[Path, bytes | DataError]] | None,
    symbol: str | None,
    fmt: str,
    skip_bad_rows: bool,
) -> _Batch | None:
    """Parse and validate a batch (no store access); None when there is none."""
    if batch is None:
        return None
    outcome: dict[int, IngestResult | MadnessError] = {}
    readable: list[tuple[int, bytes]] = []
    for i, (_, data) in enumerate(batch):
        if isinstance(data, bytes):
            readable.append((i, data))
        else:
            outcome[i] = data
    parsed_all = parse_many([(data, str(batch[i][0])) for i, data in readable], symbol, fmt)
    parsed: list[tuple[int, bytes, ParsedFile]] = []
    for (i, data), result in zip(readable, parsed_all, strict=True):
        if isinstance(result, ParsedFile):
            parsed.append((i, data, result))
        else:
            outcome[i] = result
    checked = check_many(
        [p.frame for _, _, p in parsed],
        [p.name for _, _, p in parsed],
        [p.has_adj_close for _, _, p in parsed],
    )
    ready: list[tuple[int, _Ready]] = []
    for (i, data, p), c in zip(parsed, checked, strict=True):
        try:
            ready.append((i, _ready(data, p.name, p, c, skip_bad_rows)))
        except DataError as exc:
            outcome[i] = exc
    return _Batch([path for path, _ in batch], outcome, ready)


def _store(engine: sa.Engine, batch: _Batch) -> list[tuple[Path, IngestResult | MadnessError]]:
    """Write a prepared batch: each file's outcome, in order."""
    for group in _groups(batch.ready):
        batch.outcome.update(_write_group(engine, group))
    return [(path, batch.outcome[i]) for i, path in enumerate(batch.paths)]


def ingest_files(
    engine: sa.Engine,
    paths: Sequence[str | Path],
    symbol: str | None = None,
    fmt: str = "auto",
    skip_bad_rows: bool = False,
) -> Iterator[tuple[Path, IngestResult | MadnessError]]:
    """Load price files, each all or nothing, a batch of files per transaction.

    See the module docstring for how files are batched; what each file reports, writes
    and logs is what :func:`ingest_file` of it alone, in the same order, would. The next
    batch is read, parsed and validated on a second thread while the store writes the
    current one.

    Parameters
    ----------
    engine : sqlalchemy.Engine
        The store (initialized with :func:`~lstm_madness.data.initdb.init_db`).
    paths : sequence of str or Path
        CSV files (see :mod:`lstm_madness.data.sources` for the formats).
    symbol, fmt, skip_bad_rows
        As for :func:`ingest_file`, applied to every file.

    Yields
    ------
    (Path, IngestResult or MadnessError)
        Each file in order, once its batch is written: what it did, or why nothing of it
        was written (DataError, ValidationError, StoreError).
    """
    batches = _read_batches(paths)

    def prepare_next() -> _Batch | None:
        return _prepare(next(batches, None), symbol, fmt, skip_bad_rows)

    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="madness-ingest") as pool:
        pending = pool.submit(prepare_next)
        while (batch := pending.result()) is not None:
            pending = pool.submit(prepare_next)
            yield from _store(engine, batch)


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
    StoreError
        The store refused the write.
    """
    ((_, outcome),) = ingest_files(
        engine, [path], symbol=symbol, fmt=fmt, skip_bad_rows=skip_bad_rows
    )
    if isinstance(outcome, MadnessError):
        raise outcome
    return outcome


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
