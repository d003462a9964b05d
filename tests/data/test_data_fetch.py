"""Fetching through an injected downloader (never the network), and universes."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from lstm_madness.data.fetch import fetch, load_universe, normalize_download
from lstm_madness.data.store import read_bars
from lstm_madness.errors import DataError, FetchError, ValidationError

FIELDS = ["Open", "High", "Low", "Close", "Adj Close", "Volume"]


def _yahoo(frames: dict[str, pd.DataFrame], group_by: str = "ticker") -> pd.DataFrame:
    """A yfinance.download-shaped frame from bars frames (outer-joined dates)."""
    pieces = {}
    for sym, bars in frames.items():
        piece = bars.set_index("date")[["open", "high", "low", "close", "adj_close", "volume"]]
        piece.columns = FIELDS
        pieces[sym] = piece
    wide = pd.concat(pieces, axis=1)  # (ticker, field), NaN where a ticker did not trade
    wide.index.name = "Date"
    if group_by == "column":
        wide = wide.swaplevel(0, 1, axis=1).sort_index(axis=1)
    return wide


class Recorder:
    """A downloader that returns a fixed frame and records its calls."""

    def __init__(self, frame: pd.DataFrame) -> None:
        self.frame = frame
        self.calls: list[tuple[list[str], date | None, date | None]] = []

    def __call__(self, symbols: list[str], start: date | None, end: date | None) -> pd.DataFrame:
        self.calls.append((symbols, start, end))
        return self.frame


@pytest.mark.parametrize("group_by", ["ticker", "column"])
def test_fetch_writes_bars_through_the_upsert_path(
    engine: sa.Engine, make_bars: Callable, group_by: str
) -> None:
    xlf = make_bars(n=12, seed=1)
    jpm = make_bars(n=10, seed=2, start="2020-01-03")
    downloader = Recorder(_yahoo({"XLF": xlf, "JPM": jpm}, group_by))
    results = fetch(engine, ["XLF", "jpm"], start=date(2020, 1, 1), downloader=downloader)
    assert downloader.calls == [(["XLF", "JPM"], date(2020, 1, 1), None)]
    assert [r.path for r in results] == ["yfinance:XLF", "yfinance:JPM"]
    assert [r.inserted for r in results] == [12, 10]
    stored = read_bars(engine, "JPM")
    np.testing.assert_array_equal(stored["adj_close"].to_numpy(), jpm["adj_close"].to_numpy())
    assert stored["date"].tolist() == jpm["date"].tolist()
    again = fetch(engine, ["XLF", "JPM"], downloader=downloader)
    assert [r.unchanged for r in again] == [12, 10]
    assert not any(r.changed for r in again)
    with engine.connect() as conn:
        assert set(conn.exec_driver_sql("SELECT source FROM bars").scalars()) == {"yfinance"}


def test_fetch_single_symbol_flat_columns_and_end_filter(
    engine: sa.Engine, make_bars: Callable
) -> None:
    bars = make_bars(n=10)
    flat = _yahoo({"SPY": bars}).droplevel(0, axis=1)
    flat.index = flat.index.tz_localize("America/New_York")
    (result,) = fetch(engine, ["SPY"], end=bars["date"][4].date(), downloader=Recorder(flat))
    assert result.inserted == 5


def test_network_error_is_a_fetch_error_and_writes_nothing(
    engine: sa.Engine, count_rows: Callable
) -> None:
    def offline(symbols: list[str], start: date | None, end: date | None) -> pd.DataFrame:
        raise ConnectionError("Failed to resolve query1.finance.yahoo.com")

    with pytest.raises(FetchError, match="download of XLF failed: ConnectionError"):
        fetch(engine, ["XLF"], downloader=offline)
    assert count_rows(engine, "bars") == 0
    assert count_rows(engine, "ingest_log") == 0


def test_empty_download_and_missing_symbol_write_nothing(
    engine: sa.Engine, make_bars: Callable, count_rows: Callable
) -> None:
    with pytest.raises(FetchError, match="returned no data"):
        fetch(engine, ["XLF"], downloader=Recorder(pd.DataFrame()))
    only_xlf = _yahoo({"XLF": make_bars(n=5), "NOPE": make_bars(n=5)}).astype(np.float64)
    only_xlf.loc[:, "NOPE"] = np.nan  # yfinance's answer for an unknown ticker
    with pytest.raises(FetchError, match="no data downloaded for NOPE"):
        fetch(engine, ["XLF", "NOPE"], downloader=Recorder(only_xlf))
    assert count_rows(engine, "bars") == 0


def test_bad_downloaded_row_rejects_the_fetch(
    engine: sa.Engine, make_bars: Callable, count_rows: Callable
) -> None:
    bars = make_bars(n=5)
    frame = _yahoo({"XLF": bars, "JPM": make_bars(n=5, seed=3)})
    frame.iloc[2, frame.columns.get_loc(("XLF", "Close"))] = np.nan
    with pytest.raises(ValidationError, match="yfinance:XLF, line 4, column close"):
        fetch(engine, ["JPM", "XLF"], downloader=Recorder(frame))
    assert count_rows(engine, "bars") == 0  # JPM was in the same transaction
    results = fetch(engine, ["JPM", "XLF"], downloader=Recorder(frame), skip_bad_rows=True)
    assert [r.inserted for r in results] == [5, 4]


def test_normalize_download_drops_days_a_ticker_did_not_trade(make_bars: Callable) -> None:
    frame = _yahoo({"A": make_bars(n=5), "B": make_bars(n=3, start="2020-01-06")})
    long = normalize_download(frame, ["A", "B"])
    assert long.groupby("symbol").size().to_dict() == {"A": 5, "B": 3}
    assert list(long.columns) == [
        "symbol",
        "date",
        "open",
        "high",
        "low",
        "close",
        "adj_close",
        "volume",
    ]


def test_load_universe_xlf() -> None:
    symbols = load_universe("xlf")
    assert symbols[0] == "XLF"
    expected = [
        "JPM", "BAC", "WFC", "C", "GS", "MS", "AXP", "USB", "PNC", "BK",
        "SCHW", "MET", "PRU", "AIG", "CB", "TRV", "ALL", "BLK", "COF", "STT",
        "MMC", "AON", "CME", "ICE", "SPGI", "BRK-B", "PGR", "MCO", "AFL", "TFC",
    ]  # fmt: skip
    assert symbols[1:] == expected
    assert load_universe("XLF") == symbols
    with pytest.raises(DataError, match=r"unknown universe 'spx'.*xlf"):
        load_universe("spx")
