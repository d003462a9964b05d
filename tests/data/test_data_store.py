"""The store on both backends: schema, round trips, the ``returns`` view, reading."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from lstm_madness.data.db import make_engine
from lstm_madness.data.ingest import ingest_file
from lstm_madness.data.schema import SCHEMA_VERSION, all_tables
from lstm_madness.data.store import (
    calendar_days,
    init_db,
    list_symbols,
    read_bars,
    read_returns,
    window_days,
)
from lstm_madness.errors import DataError, StoreError

BAR_COLS = ["open", "high", "low", "close", "adj_close", "volume"]


def test_init_db_is_idempotent_and_records_version(db_url: str) -> None:
    engine = make_engine(db_url)
    assert init_db(engine) == SCHEMA_VERSION
    assert init_db(engine) == SCHEMA_VERSION
    inspector = sa.inspect(engine)
    assert set(all_tables().tables) <= set(inspector.get_table_names())
    assert "returns" in inspector.get_view_names()
    with engine.connect() as conn:
        versions = conn.exec_driver_sql("SELECT version FROM schema_version").scalars().all()
    assert versions == [SCHEMA_VERSION]
    engine.dispose()


def test_init_db_refuses_a_newer_schema(sqlite_url: str) -> None:
    engine = make_engine(sqlite_url)
    init_db(engine)
    with engine.begin() as conn:
        conn.exec_driver_sql(
            "INSERT INTO schema_version (version, applied_at) VALUES (?, '2030-01-01')",
            (SCHEMA_VERSION + 1,),
        )
    with pytest.raises(StoreError, match="newer than this"):
        init_db(engine)


def test_reading_an_uninitialized_database_says_so(sqlite_url: str) -> None:
    with pytest.raises(StoreError, match="madness db init"):
        list_symbols(make_engine(sqlite_url))


def test_round_trip_bars_equal_input(
    engine: sa.Engine, make_bars: Callable, write_generic: Callable, tmp_path: Path
) -> None:
    bars = make_bars(n=60, seed=3)
    bars.loc[5:9, "adj_close"] = np.nan  # per-row NULL adj_close survives too
    path = tmp_path / "RT.csv"
    # an empty adj_close cell is rejected, so the rows without one come from a file
    # that has no adj_close column
    with_adj = bars.loc[bars["adj_close"].notna()]
    without = bars.loc[bars["adj_close"].isna()].drop(columns="adj_close")
    write_generic(path, with_adj)
    (tmp_path / "rt2").mkdir()
    path2 = tmp_path / "rt2" / "RT.csv"
    path2.write_text(
        without.assign(date=without["date"].dt.strftime("%Y-%m-%d")).to_csv(index=False)
    )
    ingest_file(engine, path)
    ingest_file(engine, path2)
    stored = read_bars(engine, "RT")
    assert stored["date"].tolist() == bars["date"].tolist()
    for col in BAR_COLS:  # bit-exact, NaN where no adj_close
        np.testing.assert_array_equal(
            stored[col].to_numpy(np.float64), bars[col].to_numpy(np.float64)
        )
    assert stored["volume"].dtype == np.int64


def test_returns_view_equals_pct_change(
    engine: sa.Engine, make_bars: Callable, write_generic: Callable, tmp_path: Path
) -> None:
    a = make_bars(n=80, seed=1)
    b = make_bars(n=50, seed=2, adj=False, start="2020-02-03")
    ingest_file(engine, write_generic(tmp_path / "AAA.csv", a))
    ingest_file(engine, write_generic(tmp_path / "BBB.csv", b))
    for sym, bars, price_col in (("AAA", a, "adj_close"), ("BBB", b, "close")):
        got = read_returns(engine, sym)
        expected = bars[price_col].pct_change()
        assert got["date"].tolist() == bars["date"].tolist()
        assert np.isnan(got["ret"].iloc[0]) and np.isnan(got["next_ret"].iloc[-1])
        np.testing.assert_allclose(
            got["ret"].to_numpy()[1:], expected.to_numpy()[1:], rtol=0, atol=1e-12
        )
        np.testing.assert_allclose(
            got["next_ret"].to_numpy()[:-1], expected.shift(-1).to_numpy()[:-1], rtol=0, atol=1e-12
        )


def test_read_returns_window_uses_previous_close(
    engine: sa.Engine, make_bars: Callable, write_generic: Callable, tmp_path: Path
) -> None:
    bars = make_bars(n=20, seed=4)
    ingest_file(engine, write_generic(tmp_path / "AAA.csv", bars))
    got = read_returns(engine, "AAA", start=bars["date"][5].date(), end=str(bars["date"][9].date()))
    assert len(got) == 5
    expected = bars["adj_close"].iloc[5] / bars["adj_close"].iloc[4] - 1
    assert got["ret"].iloc[0] == pytest.approx(expected, abs=1e-15)


def test_list_symbols(
    engine: sa.Engine, make_bars: Callable, write_generic: Callable, tmp_path: Path
) -> None:
    ingest_file(engine, write_generic(tmp_path / "BBB.csv", make_bars(n=10, start="2021-03-01")))
    ingest_file(engine, write_generic(tmp_path / "AAA.csv", make_bars(n=7)))
    listed = list_symbols(engine)
    assert listed["symbol"].tolist() == ["AAA", "BBB"]
    assert listed["rows"].tolist() == [7, 10]
    assert listed["first_date"].tolist() == [pd.Timestamp("2020-01-01"), pd.Timestamp("2021-03-01")]
    assert listed["last_date"].iloc[1] == pd.Timestamp("2021-03-12")


def test_window_days_and_calendar_days_count_stored_days_without_reading_prices(
    engine: sa.Engine, make_bars: Callable, write_generic: Callable, tmp_path: Path
) -> None:
    ingest_file(engine, write_generic(tmp_path / "AAA.csv", make_bars(n=7)))  # 2020-01-01..09
    ingest_file(engine, write_generic(tmp_path / "BBB.csv", make_bars(n=10, start="2021-03-01")))
    assert window_days(engine, ["AAA", "BBB", "NOPE"]) == {"AAA": 7, "BBB": 10}
    assert window_days(engine, ["AAA", "BBB"], "2020-01-03", date(2021, 3, 2)) == {
        "AAA": 5,
        "BBB": 2,
    }
    assert window_days(engine, ["AAA", "BBB"], start="2022-01-01") == {"AAA": 0, "BBB": 0}
    with pytest.raises(DataError, match=r"unknown symbol\(s\): NOPE"):
        window_days(engine, ["AAA", "NOPE"], require=True)
    assert calendar_days(engine, ["AAA", "BBB"]) == 17
    assert calendar_days(engine, ["AAA", "BBB"], end="2020-01-06") == 4
    assert calendar_days(engine, ["NOPE"]) == 0


def test_unknown_symbol_and_bad_dates_are_data_errors(engine: sa.Engine) -> None:
    with pytest.raises(DataError, match=r"unknown symbol.*NOPE"):
        read_bars(engine, "NOPE")
    with pytest.raises(DataError, match=r"unknown symbol.*NOPE"):
        read_returns(engine, "NOPE")
    with pytest.raises(DataError, match="invalid start"):
        read_bars(engine, "NOPE", start="yesterday")


def test_empty_store_lists_nothing(engine: sa.Engine) -> None:
    listed = list_symbols(engine)
    assert listed.empty
    assert list(listed.columns) == ["symbol", "first_date", "last_date", "rows"]


def test_unreachable_server_is_a_store_error_without_the_password() -> None:
    engine = make_engine("postgresql+psycopg://madness:s3cret-pw@127.0.0.1:1/nowhere")
    with pytest.raises(StoreError) as info:
        init_db(engine)
    assert "cannot initialize the database" in str(info.value)
    assert "s3cret-pw" not in str(info.value)
