"""``madness db init | ingest | fetch | symbols | prices`` through Typer's CliRunner."""

from __future__ import annotations

import io
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from lstm_madness.cli import app
from lstm_madness.data.schema import SCHEMA_VERSION

HEADER = "date,open,high,low,close,adj_close,volume"
ROWS = [
    "2020-01-02,10,11,9,10.5,10,100",
    "2020-01-03,10.5,11,10,10.8,10.3,200",
    "2020-01-06,10.8,11.5,10.6,11,10.5,300",
]


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


@pytest.fixture
def prices_file(tmp_path: Path) -> Path:
    path = tmp_path / "xlf.us.txt"
    path.write_text("\n".join([HEADER, *ROWS]) + "\n")
    return path


def test_db_init_hides_password(runner: CliRunner, sqlite_url: str) -> None:
    result = runner.invoke(app, ["db", "init", "--db", sqlite_url])
    assert result.exit_code == 0, result.output
    assert f"schema version {SCHEMA_VERSION}" in " ".join(result.output.split())


def test_ingest_then_reingest_says_no_change(
    runner: CliRunner, db_url: str, prices_file: Path
) -> None:
    first = runner.invoke(app, ["ingest", str(prices_file), "--db", db_url])
    assert first.exit_code == 0, first.output
    assert "XLF: 3 read, 3 inserted, 0 updated, 0 unchanged" in first.output
    again = runner.invoke(app, ["ingest", str(prices_file), "--db", db_url])
    assert again.exit_code == 0, again.output
    assert "no change (3 rows already stored; same file loaded" in again.output


def test_bad_file_exits_1_names_the_line_and_other_files_still_load(
    runner: CliRunner, sqlite_url: str, prices_file: Path, tmp_path: Path
) -> None:
    bad = tmp_path / "BAD.csv"
    bad.write_text("\n".join([HEADER, ROWS[0], "2020-01-03,10.5,9,10,10.8,10.3,200"]) + "\n")
    result = runner.invoke(app, ["ingest", str(bad), str(prices_file), "--db", sqlite_url])
    assert result.exit_code == 1
    assert "line 3, column high, value '9': high is below open/close" in result.output
    assert "1 of 2 file(s) not loaded" in result.output
    listed = runner.invoke(app, ["symbols", "--db", sqlite_url])
    assert "XLF" in listed.output and "BAD" not in listed.output

    skipped = runner.invoke(app, ["ingest", str(bad), "--skip-bad-rows", "--db", sqlite_url])
    assert skipped.exit_code == 0, skipped.output
    assert "1 inserted" in skipped.output and "1 rejected" in skipped.output
    assert "rejected:" in skipped.output and "line 3" in skipped.output


def test_ingest_needs_a_path_or_a_sample(runner: CliRunner, sqlite_url: str) -> None:
    result = runner.invoke(app, ["ingest", "--db", sqlite_url])
    assert result.exit_code != 0
    assert "--sample" in result.output


def test_ingest_symbol_and_format_options(
    runner: CliRunner, sqlite_url: str, prices_file: Path
) -> None:
    result = runner.invoke(
        app,
        ["ingest", str(prices_file), "--symbol", "SPY", "--format", "generic", "--db", sqlite_url],
    )
    assert result.exit_code == 0, result.output
    assert "SPY: 3 read" in result.output
    stooq = prices_file.with_name("spy.us.txt")
    stooq.write_text("Date,Open,High,Low,Close,Volume\n2020-01-02,10,11,9,10.5,100\n")
    wrong = runner.invoke(app, ["ingest", str(stooq), "--format", "yahoo", "--db", sqlite_url])
    assert wrong.exit_code == 1
    assert "not a yahoo file" in wrong.output


def test_ingest_sample_sp500(runner: CliRunner, sqlite_url: str) -> None:
    result = runner.invoke(app, ["ingest", "--sample", "sp500", "--db", sqlite_url])
    assert result.exit_code == 0, result.output
    assert "sample:sp500 ^GSPC" in result.output
    listed = runner.invoke(app, ["symbols", "--db", sqlite_url])
    assert (
        "^GSPC" in listed.output and "1999-01-04" in listed.output and "2018-12-31" in listed.output
    )


def test_symbols_and_prices(runner: CliRunner, db_url: str, prices_file: Path) -> None:
    empty = runner.invoke(app, ["symbols", "--db", db_url])
    assert empty.exit_code == 1  # not initialized yet
    assert "madness db init" in empty.output
    runner.invoke(app, ["ingest", str(prices_file), "--db", db_url])
    listed = runner.invoke(app, ["symbols", "--db", db_url])
    assert listed.exit_code == 0, listed.output
    assert (
        "XLF" in listed.output and "2020-01-02" in listed.output and "2020-01-06" in listed.output
    )

    table = runner.invoke(app, ["prices", "XLF", "--start", "2020-01-03", "--db", db_url])
    assert table.exit_code == 0, table.output
    assert "2020-01-03" in table.output and "2020-01-02" not in table.output
    assert "10.8000" in table.output

    csv = runner.invoke(app, ["prices", "XLF", "--returns", "--csv", "--db", db_url])
    assert csv.exit_code == 0, csv.output
    frame = pd.read_csv(io.StringIO(csv.stdout))
    assert list(frame.columns) == ["date", "ret", "next_ret"]
    assert frame["date"].tolist() == ["2020-01-02", "2020-01-03", "2020-01-06"]
    np.testing.assert_allclose(
        frame["ret"].to_numpy()[1:], [10.3 / 10 - 1, 10.5 / 10.3 - 1], atol=1e-12
    )
    assert np.isnan(frame["ret"][0]) and np.isnan(frame["next_ret"][2])

    bars = runner.invoke(app, ["prices", "XLF", "--csv", "--end", "2020-01-02", "--db", db_url])
    assert bars.stdout.splitlines() == [HEADER, "2020-01-02,10.0,11.0,9.0,10.5,10.0,100"]

    unknown = runner.invoke(app, ["prices", "NOPE", "--db", db_url])
    assert unknown.exit_code == 1
    assert "unknown symbol(s): NOPE" in unknown.output
    bad_date = runner.invoke(app, ["prices", "XLF", "--start", "soon", "--db", db_url])
    assert bad_date.exit_code == 1
    assert "invalid start 'soon'" in bad_date.output


def test_fetch_with_injected_downloader(
    runner: CliRunner, sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[tuple] = []

    def fake(symbols: list[str], start: date | None, end: date | None) -> pd.DataFrame:
        calls.append((symbols, start, end))
        index = pd.DatetimeIndex(["2020-01-02", "2020-01-03"], name="Date")
        columns = pd.MultiIndex.from_product(
            [symbols, ["Open", "High", "Low", "Close", "Adj Close", "Volume"]]
        )
        row = [10.0, 11.0, 9.0, 10.5, 10.0, 100.0] * len(symbols)
        return pd.DataFrame([row, row], index=index, columns=columns)

    monkeypatch.setattr("lstm_madness.data.fetch.yahoo_download", fake)
    result = runner.invoke(
        app,
        [
            "fetch",
            "SPY",
            "--universe",
            "xlf",
            "--start",
            "2020-01-01",
            "--end",
            "2020-01-31",
            "--db",
            sqlite_url,
        ],
    )
    assert result.exit_code == 0, result.output
    assert calls[0][0][:3] == ["SPY", "XLF", "JPM"] and len(calls[0][0]) == 32
    assert calls[0][1:] == (date(2020, 1, 1), date(2020, 1, 31))
    assert "yfinance:BRK-B BRK-B: 2 read, 2 inserted" in result.output

    def offline(symbols: list[str], start: date | None, end: date | None) -> pd.DataFrame:
        raise OSError("network is unreachable")

    monkeypatch.setattr("lstm_madness.data.fetch.yahoo_download", offline)
    failed = runner.invoke(app, ["fetch", "XLF", "--db", sqlite_url])
    assert failed.exit_code == 1
    assert "download of XLF failed" in failed.output and "network is unreachable" in failed.output


def test_errors_never_print_the_password(runner: CliRunner) -> None:
    url = "postgresql+psycopg://madness:s3cret-pw@127.0.0.1:1/nowhere"
    result = runner.invoke(app, ["db", "init", "--db", url])
    assert result.exit_code == 1
    assert "cannot initialize the database" in result.output
    assert "s3cret-pw" not in result.output
