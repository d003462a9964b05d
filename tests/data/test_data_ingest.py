"""Ingestion: all-or-nothing files, idempotent upserts, revisions, skip-bad-rows, log."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from lstm_madness.data.ingest import ingest_file, ingest_sample
from lstm_madness.data.store import read_bars
from lstm_madness.errors import DataError, ValidationError

HEADER = "date,open,high,low,close,adj_close,volume"
GOOD = ["2020-01-02,10,11,9,10.5,10,100", "2020-01-03,10.5,11,10,10.8,10.3,200"]


def _write(path: Path, rows: list[str], header: str = HEADER) -> Path:
    path.write_text("\n".join([header, *rows]) + "\n")
    return path


@pytest.mark.parametrize(
    ("bad_row", "column", "value", "reason"),
    [
        ("2020-01-06,10,11,9,10.5,10,abc", "volume", "abc", "not a number"),
        ("2020-1-6x,10,11,9,10.5,10,1", "date", "2020-1-6x", "unparseable date"),
        ("2020-01-06,10,11,9,,10,1", "close", "", "empty value"),
        ("2020-01-06,10,11,9,nan,10,1", "close", "nan", "missing value"),
        ("2020-01-06,-10,11,9,10.5,10,1", "open", "-10", "price is not positive"),
        ("2020-01-06,10,10.2,9,10.5,10,1", "high", "10.2", "high is below open/close"),
        ("2020-01-06,10,11,10.2,10.5,10,1", "low", "10.2", "low is above open/close"),
        ("2020-01-06,10,11,9,10.5,10,-1", "volume", "-1", "volume is negative"),
        ("2020-01-03,10.5,11,10,10.9,10.3,200", "date", "2020-01-03", "conflicting values"),
        ("2020-01-06,10,11,9,10.5,10", None, "2020-01-06,10,11,9,10.5,10", "expected 7 fields"),
        ("2999-01-06,10,11,9,10.5,10,1", "date", "2999-01-06", "date is in the future"),
    ],
)
def test_a_bad_row_rejects_the_whole_file_and_writes_nothing(
    engine: sa.Engine,
    count_rows: Callable,
    tmp_path: Path,
    bad_row: str,
    column: str | None,
    value: str,
    reason: str,
) -> None:
    path = _write(tmp_path / "XYZ.csv", [*GOOD, bad_row])
    with pytest.raises(ValidationError) as info:
        ingest_file(engine, path)
    problems = [p for p in info.value.problems if p.line == 4 and p.column == column]
    assert problems, info.value.problems
    problem = problems[0]
    assert (problem.file, problem.value) == (str(path), value)
    assert reason in problem.reason
    message = str(info.value)
    assert (
        str(path) in message
        and "line 4" in message
        and "nothing of this file was written" in message
    )
    for table in ("bars", "ingest_log", "securities"):
        assert count_rows(engine, table) == 0


def test_rejected_file_leaves_existing_data_untouched(
    engine: sa.Engine, count_rows: Callable, tmp_path: Path
) -> None:
    ingest_file(engine, _write(tmp_path / "XYZ.csv", GOOD))
    revised = ["2020-01-02,10,11,9,10.5,99,100", "2020-01-06,10,11,9,10.5,10,-5"]
    (tmp_path / "v2").mkdir()
    with pytest.raises(ValidationError):
        ingest_file(engine, _write(tmp_path / "v2" / "XYZ.csv", revised))
    assert read_bars(engine, "XYZ")["adj_close"].tolist() == [10.0, 10.3]
    assert count_rows(engine, "ingest_log") == 1


def test_reingest_changes_nothing_and_says_so(
    engine: sa.Engine,
    make_bars: Callable,
    write_generic: Callable,
    tmp_path: Path,
    count_rows: Callable,
) -> None:
    path = write_generic(tmp_path / "AAA.csv", make_bars(n=25))
    first = ingest_file(engine, path)
    assert (first.inserted, first.updated, first.unchanged, first.rejected) == (25, 0, 0, 0)
    assert first.previously_loaded is None
    with engine.connect() as conn:
        stamps = conn.exec_driver_sql("SELECT ingested_at FROM bars ORDER BY date").scalars().all()
    again = ingest_file(engine, path)
    assert (again.inserted, again.updated, again.unchanged) == (0, 0, 25)
    assert not again.changed
    assert again.previously_loaded is not None
    assert again.checksum == first.checksum == hashlib.sha256(path.read_bytes()).hexdigest()
    with engine.connect() as conn:
        assert (
            conn.exec_driver_sql("SELECT ingested_at FROM bars ORDER BY date").scalars().all()
            == stamps
        )
        log = conn.exec_driver_sql(
            "SELECT path, format, symbols, checksum, rows_read, inserted, unchanged "
            "FROM ingest_log ORDER BY id"
        ).all()
    assert [tuple(r) for r in log] == [
        (str(path), "generic", "AAA", first.checksum, 25, 25, 0),
        (str(path), "generic", "AAA", first.checksum, 25, 0, 25),
    ]
    assert count_rows(engine, "bars") == 25


def test_revised_history_is_updated_and_reported(
    engine: sa.Engine, make_bars: Callable, write_generic: Callable, tmp_path: Path
) -> None:
    bars = make_bars(n=20)
    ingest_file(engine, write_generic(tmp_path / "AAA.csv", bars.iloc[:15]))
    newer = bars.iloc[5:].copy()  # overlaps days 5..14 and adds 15..19
    newer.loc[7, "adj_close"] *= 0.99  # vendor revised two adjusted closes
    newer.loc[9, "adj_close"] *= 0.99
    newer.loc[11, "close"] *= 1 + 1e-14  # below the revision tolerance: unchanged
    (tmp_path / "v2").mkdir()
    result = ingest_file(engine, write_generic(tmp_path / "v2" / "AAA.csv", newer))
    assert (result.inserted, result.updated, result.unchanged) == (5, 2, 8)
    days = [bars["date"][7].date(), bars["date"][9].date()]
    assert result.rewritten == (("AAA", days[0]), ("AAA", days[1]))
    (warning,) = [w for w in result.warnings if "rewrote" in w]
    assert f"AAA on 2 date(s): {days[0]}, {days[1]}" in warning
    stored = read_bars(engine, "AAA")
    assert len(stored) == 20
    np.testing.assert_array_equal(stored["adj_close"].to_numpy()[5:], newer["adj_close"].to_numpy())
    assert stored["close"].iloc[11] == bars["close"].iloc[11]  # tolerance kept the old value


def test_skip_bad_rows_writes_good_rows_and_lists_rejected(
    engine: sa.Engine, tmp_path: Path, count_rows: Callable
) -> None:
    rows = [
        *GOOD,
        "2020-01-06,10,11,9,10.5,10,-1",
        "2020-01-07,x,11,9,10.5,10,1",
        "2020-01-08,10,11,9,10.5,10,7",
    ]
    result = ingest_file(engine, _write(tmp_path / "XYZ.csv", rows), skip_bad_rows=True)
    assert (result.rows_read, result.inserted, result.rejected) == (5, 3, 2)
    assert [(p.line, p.column) for p in result.problems] == [(4, "volume"), (5, "open")]
    assert read_bars(engine, "XYZ")["date"].dt.day.tolist() == [2, 3, 8]
    with engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT rejected FROM ingest_log").scalar_one() == 2


def test_skip_bad_rows_with_no_good_row_still_fails(engine: sa.Engine, tmp_path: Path) -> None:
    with pytest.raises(ValidationError):
        ingest_file(
            engine,
            _write(tmp_path / "XYZ.csv", ["2020-01-06,10,11,9,10.5,10,-1"]),
            skip_bad_rows=True,
        )


def test_long_file_records_symbols_and_kinds(engine: sa.Engine, tmp_path: Path) -> None:
    rows = [
        "XLF,2020-01-02,10,11,9,10.5,10,100",
        "JPM,2020-01-02,10,11,9,10.5,10,100",
        "^VIX,2020-01-02,10,11,9,10.5,10,100",
        "JPM,2020-01-03,10,11,9,10.5,10,100",
    ]
    result = ingest_file(engine, _write(tmp_path / "all.csv", rows, "ticker," + HEADER))
    assert result.format == "long"
    assert sorted(result.symbols) == ["JPM", "XLF", "^VIX"]
    with engine.connect() as conn:
        kinds = dict(conn.exec_driver_sql("SELECT symbol, kind FROM securities").all())
        names = dict(conn.exec_driver_sql("SELECT symbol, name FROM securities").all())
        sources = set(conn.exec_driver_sql("SELECT source FROM bars").scalars())
    assert kinds == {"XLF": "etf", "JPM": "stock", "^VIX": "index"}
    assert names == {
        "XLF": "Financial Select Sector SPDR Fund",
        "JPM": "JPMorgan Chase & Co.",
        "^VIX": None,
    }
    assert sources == {"csv:long"}


def test_symbol_override_and_stooq_name(engine: sa.Engine, tmp_path: Path) -> None:
    result = ingest_file(
        engine, _write(tmp_path / "xlf.us.txt", GOOD, "Date,Open,High,Low,Close,Adj Close,Volume")
    )
    assert result.symbols == ("XLF",)
    result = ingest_file(engine, _write(tmp_path / "other.csv", GOOD), symbol="spy")
    assert result.symbols == ("SPY",)


def test_header_only_and_missing_files(engine: sa.Engine, tmp_path: Path) -> None:
    with pytest.raises(DataError, match="no data rows"):
        ingest_file(engine, _write(tmp_path / "XYZ.csv", []))
    with pytest.raises(DataError, match="cannot read"):
        ingest_file(engine, tmp_path / "nothing.csv")


def test_sample_sp500_loads_offline(sqlite_engine: sa.Engine) -> None:
    result = ingest_sample(sqlite_engine, "sp500")
    assert result.symbols == ("^GSPC",)
    assert result.path == "sample:sp500"
    assert result.inserted == result.rows_read > 5000
    bars = read_bars(sqlite_engine, "^GSPC")
    assert bars["date"].iloc[0] == pd.Timestamp("1999-01-04")
    with sqlite_engine.connect() as conn:
        row = conn.exec_driver_sql("SELECT kind, source FROM securities").one()
    assert tuple(row) == ("index", "arch:sp500")
    with pytest.raises(DataError, match="unknown sample"):
        ingest_sample(sqlite_engine, "nasdaq")
