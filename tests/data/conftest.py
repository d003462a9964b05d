"""Fixtures of the price-data tests: an initialized store per backend and bar builders."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from lstm_madness.data.db import make_engine
from lstm_madness.data.store import init_db

BarsFactory = Callable[..., pd.DataFrame]


@pytest.fixture
def engine(db_url: str) -> Iterator[sa.Engine]:
    """An initialized store on each backend (SQLite file, PostgreSQL schema)."""
    eng = make_engine(db_url)
    init_db(eng)
    yield eng
    eng.dispose()


@pytest.fixture
def sqlite_engine(sqlite_url: str) -> Iterator[sa.Engine]:
    """An initialized SQLite store, for tests that are not about the backend."""
    eng = make_engine(sqlite_url)
    init_db(eng)
    yield eng
    eng.dispose()


def _bars(
    n: int = 30,
    start: str = "2020-01-01",
    seed: int = 0,
    adj: bool = True,
    price: float = 50.0,
) -> pd.DataFrame:
    """Valid random daily bars on consecutive business days.

    Columns ``date`` (datetime64), ``open``, ``high``, ``low``, ``close``, ``adj_close``
    (NaN when ``adj`` is False), ``volume`` (int64).
    """
    rng = np.random.default_rng(seed)
    dates = pd.bdate_range(start, periods=n)
    close = price * np.exp(np.cumsum(rng.normal(0, 0.02, n)))
    open_ = close * np.exp(rng.normal(0, 0.01, n))
    high = np.maximum(open_, close) * (1 + rng.uniform(0, 0.02, n))
    low = np.minimum(open_, close) * (1 - rng.uniform(0, 0.02, n))
    adj_close = close * 0.9 if adj else np.full(n, np.nan)
    return pd.DataFrame(
        {
            "date": dates,
            "open": open_,
            "high": high,
            "low": low,
            "close": close,
            "adj_close": adj_close,
            "volume": rng.integers(0, 10_000_000, n),
        }
    )


@pytest.fixture
def make_bars() -> BarsFactory:
    """Builder of valid random bars: ``make_bars(n=30, start=..., seed=0, adj=True)``."""
    return _bars


def _write_generic(path: Path, frame: pd.DataFrame) -> Path:
    out = frame.copy()
    out["date"] = pd.to_datetime(out["date"]).dt.strftime("%Y-%m-%d")
    cols = ["date", "open", "high", "low", "close", "adj_close", "volume"]
    if "symbol" in out:
        cols = ["symbol", *cols]
    if out["adj_close"].isna().all():
        cols.remove("adj_close")
    path.write_text(out[cols].to_csv(index=False, lineterminator="\n"))
    return path


@pytest.fixture
def write_generic() -> Callable[[Path, pd.DataFrame], Path]:
    """Write bars as this project's CSV (``date,open,...,volume``; with ``symbol`` if any)."""
    return _write_generic


@pytest.fixture
def count_rows() -> Callable[[sa.Engine, str], int]:
    """Rows in a table: ``count_rows(engine, "bars")``."""

    def count(engine: sa.Engine, table: str) -> int:
        with engine.connect() as conn:
            return int(conn.exec_driver_sql(f"SELECT COUNT(*) FROM {table}").scalar_one())

    return count
