"""Many files in one go: batched parsing, validation and writing say and store what loading
the files one by one does; a rejected file writes nothing; a refused batch is retried file
by file."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from lstm_madness.cli import app
from lstm_madness.data import ingest, sources
from lstm_madness.data.ingest import IngestResult, ingest_file, ingest_files
from lstm_madness.data.sources import ParsedFile, parse_csv, parse_many
from lstm_madness.data.store import read_bars
from lstm_madness.data.validation import check_bars, check_many
from lstm_madness.errors import DataError, StoreError, ValidationError

HEADER = "date,open,high,low,close,adj_close,volume"
YAHOO = "Date,Open,High,Low,Close,Adj Close,Volume"
STOOQ = "Date,Open,High,Low,Close,Volume"
ROWS = [
    "2020-01-02,10,11,9,10.5,10,100",
    "2020-01-03,10.5,11,10,10.8,10.3,200",
    "2020-01-06,10.8,11.5,10.6,11,10.5,300",
]


def _text(rows: list[str], header: str = HEADER, end: str = "\n") -> bytes:
    return (end.join([header, *rows]) + end).encode()


# --------------------------------------------------------------- parse_many, check_many

FILES: dict[str, bytes] = {
    "AAA.csv": _text(ROWS),
    "BBB.csv": _text(ROWS[:2]),
    "yahoo.csv": _text(ROWS, YAHOO),
    "crlf.csv": _text(ROWS, end="\r\n"),
    "bom.csv": b"\xef\xbb\xbf" + _text(ROWS),
    "novol.csv": b"date,open,high,low,close\n2020-01-02,10,11,9,10.5\n",
    "extra.csv": _text(["2020-01-02,10,11,9,10.5,10,1,0.25"], HEADER + ",dividends"),
    "quoted.csv": _text(['"2020-01-02",10,11,9,"10.5",10,100']),
    "trailing.csv": _text(ROWS) + b"\n\n  \n",
    "midnight.csv": _text(["2020-01-02 00:00:00,10,11,9,10.5,10,100"]),
    # files a joint pass must leave to parse_csv, which names what is wrong
    "blank.csv": _text([ROWS[0], "", ROWS[1]]),
    "leading.csv": _text(["", *ROWS]),
    "bad.csv": _text([ROWS[0], "2020-01-03,10.5,x,10,10.8,10.3,200"]),
    "ragged.csv": _text([ROWS[0], "2020-01-03,10.5,11,10,10.8,10.3,200,7"]),
    "short.csv": _text([ROWS[0], "2020-01-03,10.5,11,10"]),
    "comma.csv": _text(['2020-01-02,"10,5",11,9,10.5,10,100']),
    "lonecr.csv": _text([ROWS[0] + "\r" + ROWS[1]]),
    "nan.csv": _text(["2020-01-02,nan,11,9,10.5,10,100"]),
    "dots.csv": _text(["2020-01-02,10,11,9,1.2.3,100", "2020-01-03,10,11,9,10,5"], STOOQ),
    "empty.csv": _text([]),
    "long.csv": _text([f"XLF,{ROWS[0]}", f"JPM,{ROWS[0]}"], "symbol," + HEADER),
    "weird.csv": b"when,price\n2020-01-02,1\n",
    "bad name!.csv": _text(ROWS),
}


def _same_parse(got: ParsedFile | DataError, want: ParsedFile | DataError) -> None:
    assert type(got) is type(want)
    if isinstance(want, DataError):
        assert str(got) == str(want)
        return
    assert isinstance(got, ParsedFile)
    assert (got.name, got.format, got.rows_read, got.has_adj_close) == (
        want.name,
        want.format,
        want.rows_read,
        want.has_adj_close,
    )
    assert (got.problems, got.warnings) == (want.problems, want.warnings)
    pd.testing.assert_frame_equal(got.frame, want.frame)


def _parse_alone(data: bytes, name: str) -> ParsedFile | DataError:
    try:
        return parse_csv(data, name)
    except DataError as exc:
        return exc


def test_parse_many_is_parse_csv_file_by_file() -> None:
    files = [(data, name) for name, data in FILES.items()]
    got = parse_many(files)
    assert len(got) == len(files)
    for (data, name), result in zip(files, got, strict=True):
        _same_parse(result, _parse_alone(data, name))


def test_parse_many_in_any_order_and_with_a_symbol() -> None:
    files = [(data, name) for name, data in reversed(FILES.items())]
    for (data, name), result in zip(files, parse_many(files), strict=True):
        _same_parse(result, _parse_alone(data, name))
    one = [(FILES["AAA.csv"], "AAA.csv")]
    (result,) = parse_many(one, symbol="spy")
    _same_parse(result, parse_csv(FILES["AAA.csv"], "AAA.csv", symbol="spy"))


def test_only_files_with_something_to_look_at_are_parsed_alone(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    alone: list[str] = []

    def spy(data: bytes, name: str, **kw: object) -> ParsedFile:
        alone.append(name)
        return parse_csv(data, name, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(sources, "parse_csv", spy)
    parse_many([(data, name) for name, data in FILES.items()])
    joint = {"AAA.csv", "BBB.csv", "yahoo.csv", "crlf.csv", "bom.csv", "novol.csv"}
    joint |= {"extra.csv", "quoted.csv", "trailing.csv"}
    assert joint.isdisjoint(alone)
    assert {"blank.csv", "leading.csv", "bad.csv", "ragged.csv", "lonecr.csv"} <= set(alone)


def test_rows_after_a_blank_line_keep_their_line_numbers() -> None:
    parsed = parse_csv(FILES["leading.csv"], "leading.csv")
    assert parsed.frame["line"].tolist() == [3, 4, 5]
    (many,) = parse_many([(FILES["leading.csv"], "leading.csv")])
    assert isinstance(many, ParsedFile) and many.frame["line"].tolist() == [3, 4, 5]


def _bars(rows: list[tuple], symbol: str = "XYZ") -> pd.DataFrame:
    """rows: (date, open, high, low, close, adj_close, volume), lines from 2."""
    cols = ["open", "high", "low", "close", "adj_close", "volume"]
    frame = pd.DataFrame(rows, columns=["date", *cols]).astype({c: np.float64 for c in cols})
    frame["date"] = pd.to_datetime(frame["date"]).astype("datetime64[s]")
    frame.insert(0, "symbol", symbol)
    frame.insert(0, "line", np.arange(2, len(rows) + 2, dtype=np.int64))
    return frame


A = ("2020-01-02", 10.0, 11.0, 9.0, 10.5, 10.0, 100)
B = ("2020-01-03", 10.5, 11.0, 10.0, 10.8, 10.3, 200)
C = ("2020-01-06", 10.8, 11.5, 10.6, 11.0, 10.5, 300)
FRAMES: dict[str, tuple[pd.DataFrame, bool]] = {
    "clean": (_bars([A, B, C]), True),
    "unsorted": (_bars([B, A, C]), True),
    "identical repeat": (_bars([A, B, B, C]), True),
    "conflicting repeat": (_bars([A, B, (B[0], 9.9, *B[2:])]), True),
    "bad high": (_bars([A, ("2020-01-03", 10.5, 9.0, 10.0, 10.8, 10.3, 200)]), True),
    "zero close": (_bars([A, ("2020-01-03", 10.5, 11.0, 0.0, 0.0, 10.3, 200)]), True),
    "future": (_bars([A, ("2999-01-04", 10.5, 11.0, 10.0, 10.8, 10.3, 200)]), True),
    "split": (_bars([A, ("2020-01-03", 5.0, 5.5, 4.9, 5.2, np.nan, 200)]), False),
    "split adjusted": (_bars([A, ("2020-01-03", 5.0, 5.5, 4.9, 5.2, 5.0, 200)]), True),
    "gap": (_bars([A, ("2020-03-02", 10.5, 11.0, 10.0, 10.8, 10.3, 200)]), True),
    "empty": (_bars([]), True),
    "two symbols": (pd.concat([_bars([A, B], "AAA"), _bars([A, C], "BBB")]), True),
}


@pytest.mark.parametrize("order", [1, -1])
def test_check_many_is_check_bars_file_by_file(order: int) -> None:
    names = list(FRAMES)[::order]
    frames = [FRAMES[n][0].reset_index(drop=True) for n in names]
    has_adj = [FRAMES[n][1] for n in names]
    got = check_many(frames, names, has_adj)
    for name, frame, adj, result in zip(names, frames, has_adj, got, strict=True):
        want = check_bars(frame, name, adj)
        assert (result.problems, result.rejected_lines, result.collapsed, result.warnings) == (
            want.problems,
            want.rejected_lines,
            want.collapsed,
            want.warnings,
        ), name
        pd.testing.assert_frame_equal(result.frame, want.frame)
    warned = {n: r.warnings for n, r in zip(names, got, strict=True)}
    assert "unadjusted split" in warned["split"][0] and warned["split adjusted"] == ()
    assert "no rows for 41 business days" in warned["gap"][0]


# --------------------------------------------------------------- writing many files


def _write(path: Path, rows: list[str], header: str = HEADER) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(_text(rows, header))
    return path


def _counts(engine: sa.Engine) -> dict[str, int]:
    with engine.connect() as conn:
        return {
            t: int(conn.exec_driver_sql(f"SELECT COUNT(*) FROM {t}").scalar_one())
            for t in ("bars", "ingest_log", "securities")
        }


def _stored(engine: sa.Engine, symbol: str) -> int:
    with engine.connect() as conn:
        query = sa.text("SELECT COUNT(*) FROM bars WHERE symbol = :s")
        return int(conn.execute(query, {"s": symbol}).scalar_one())


def test_one_bad_file_among_many_writes_nothing_and_is_named(
    engine: sa.Engine, tmp_path: Path
) -> None:
    good_a = _write(tmp_path / "AAA.csv", ROWS)
    bad = _write(tmp_path / "BAD.csv", [*ROWS[:2], "2020-01-06,10.8,10.2,10.6,11,10.5,300"])
    good_c = _write(tmp_path / "CCC.csv", ROWS[:2])
    outcomes = dict(ingest_files(engine, [good_a, bad, good_c]))
    assert list(outcomes) == [good_a, bad, good_c]
    error = outcomes[bad]
    assert isinstance(error, ValidationError)
    message = str(error)
    for part in (str(bad), "line 4", "column high", "value '10.2'", "high is below open/close"):
        assert part in message
    assert "nothing of this file was written" in message
    (problem,) = error.problems
    assert (problem.file, problem.line, problem.column, problem.value) == (
        str(bad),
        4,
        "high",
        "10.2",
    )
    assert isinstance(outcomes[good_a], IngestResult) and outcomes[good_a].inserted == 3
    assert isinstance(outcomes[good_c], IngestResult) and outcomes[good_c].inserted == 2
    assert _counts(engine) == {"bars": 5, "ingest_log": 2, "securities": 2}
    assert _stored(engine, "BAD") == 0
    with engine.connect() as conn:
        logged = conn.exec_driver_sql("SELECT path FROM ingest_log ORDER BY id").scalars().all()
    assert logged == [str(good_a), str(good_c)]


def test_many_files_say_and_store_what_one_by_one_does(
    engine: sa.Engine, tmp_path: Path, make_bars: Callable, write_generic: Callable
) -> None:
    bars = make_bars(n=20)
    first = write_generic(tmp_path / "XLF.csv", bars.iloc[:15])
    revised = bars.iloc[5:].copy()
    revised.loc[7, "adj_close"] *= 0.99
    (tmp_path / "v2").mkdir()
    second = write_generic(tmp_path / "v2" / "xlf.us.txt", revised)  # same symbol: XLF
    gap = make_bars(n=10, seed=1)
    gap.loc[5:, "date"] += pd.Timedelta(days=60)
    gapped = write_generic(tmp_path / "GAP.csv", gap)
    yahoo = _write(tmp_path / "YHO.csv", ROWS, YAHOO)
    copy = tmp_path / "copy" / "YHO.csv"
    copy.parent.mkdir()
    copy.write_bytes(yahoo.read_bytes())  # the same bytes again
    results = [r for _, r in ingest_files(engine, [first, second, gapped, yahoo, copy])]
    assert all(isinstance(r, IngestResult) for r in results)
    xlf, xlf2, gp, yh, again = results
    assert (xlf.inserted, xlf.updated, xlf.unchanged) == (15, 0, 0)
    assert (xlf2.inserted, xlf2.updated, xlf2.unchanged) == (5, 1, 9)
    assert xlf2.rewritten == (("XLF", bars["date"][7].date()),)
    assert any("rewrote stored history of XLF on 1 date(s)" in w for w in xlf2.warnings)
    assert any("has no rows for" in w for w in gp.warnings)
    assert (yh.format, yh.inserted, yh.previously_loaded) == ("yahoo", 3, None)
    assert (again.inserted, again.unchanged) == (0, 3)
    assert again.previously_loaded is not None and again.checksum == yh.checksum
    stored = read_bars(engine, "XLF")
    assert len(stored) == 20
    np.testing.assert_array_equal(stored["adj_close"].to_numpy()[5:], revised["adj_close"])
    with engine.connect() as conn:
        sources = dict(conn.exec_driver_sql("SELECT DISTINCT symbol, source FROM bars").all())
        log = conn.exec_driver_sql(
            "SELECT path, symbols, inserted, updated, unchanged FROM ingest_log ORDER BY id"
        ).all()
    assert sources == {"XLF": "csv:generic", "GAP": "csv:generic", "YHO": "csv:yahoo"}
    assert [tuple(r) for r in log] == [
        (str(first), "XLF", 15, 0, 0),
        (str(second), "XLF", 5, 1, 9),
        (str(gapped), "GAP", 10, 0, 0),
        (str(yahoo), "YHO", 3, 0, 0),
        (str(copy), "YHO", 0, 0, 3),
    ]


def test_reingesting_many_files_changes_nothing(
    engine: sa.Engine, tmp_path: Path, make_bars: Callable, write_generic: Callable
) -> None:
    paths = [
        write_generic(tmp_path / f"S{i}.csv", make_bars(n=30, seed=i, adj=i % 2 == 0))
        for i in range(6)
    ]
    first = [r for _, r in ingest_files(engine, paths)]
    assert all(isinstance(r, IngestResult) and r.inserted == 30 for r in first)
    with engine.connect() as conn:
        before = conn.exec_driver_sql("SELECT * FROM bars ORDER BY symbol, date").all()
    again = [r for _, r in ingest_files(engine, paths)]
    for result in again:
        assert isinstance(result, IngestResult) and not result.changed
        assert result.unchanged == 30 and result.previously_loaded is not None
    with engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT * FROM bars ORDER BY symbol, date").all() == before
    assert _counts(engine) == {"bars": 180, "ingest_log": 12, "securities": 6}


def test_small_batches_give_the_same_store(
    engine: sa.Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ingest, "BATCH_BYTES", 1)  # one file a batch
    paths = [_write(tmp_path / f"{s}.csv", ROWS) for s in ("AAA", "BBB", "CCC")]
    bad = _write(tmp_path / "BAD.csv", ["2020-01-02,10,11,9,10.5,10,-1"])
    outcomes = [r for _, r in ingest_files(engine, [paths[0], bad, *paths[1:]])]
    assert [type(r).__name__ for r in outcomes] == [
        "IngestResult",
        "ValidationError",
        "IngestResult",
        "IngestResult",
    ]
    assert _counts(engine) == {"bars": 9, "ingest_log": 3, "securities": 3}


def test_a_batch_the_store_refuses_is_written_file_by_file(
    engine: sa.Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = ingest.upsert_bars_many

    def flaky(conn: sa.Connection, frames: list[pd.DataFrame], sources: list[str]) -> list:
        if len(frames) > 1 or frames[0]["symbol"].iloc[0] == "BBB":
            raise sa.exc.OperationalError("INSERT", {}, Exception("database is locked"))
        return real(conn, frames, sources)

    monkeypatch.setattr(ingest, "upsert_bars_many", flaky)
    paths = [_write(tmp_path / f"{s}.csv", ROWS) for s in ("AAA", "BBB", "CCC")]
    outcomes = dict(ingest_files(engine, paths))
    assert isinstance(outcomes[paths[1]], StoreError)
    assert "database is locked" in str(outcomes[paths[1]])
    assert all(isinstance(outcomes[p], IngestResult) for p in (paths[0], paths[2]))
    assert _stored(engine, "BBB") == 0
    assert _counts(engine) == {"bars": 6, "ingest_log": 2, "securities": 2}
    with pytest.raises(StoreError, match="database is locked"):
        ingest_file(engine, paths[1])


def test_cli_ingests_many_files_and_names_the_bad_one(db_url: str, tmp_path: Path) -> None:
    paths = [_write(tmp_path / f"{s}.csv", ROWS) for s in ("AAA", "BBB")]
    bad = _write(tmp_path / "BAD.csv", [ROWS[0], "2020-01-03,10.5,11,10,10.8,10.3,abc"])
    unreadable = tmp_path / "missing.csv"
    args = ["ingest", str(paths[0]), str(bad), str(unreadable), str(paths[1]), "--db", db_url]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 1
    out = " ".join(result.output.split())
    assert "AAA: 3 read, 3 inserted" in out and "BBB: 3 read, 3 inserted" in out
    assert f"{bad}, line 3, column volume, value 'abc': not a number" in out
    assert f"cannot read {unreadable}" in out
    assert "2 of 4 file(s) not loaded" in out
