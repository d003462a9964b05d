"""Synthetic daily bars written straight into the store, for end-to-end tests."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from lstm_madness.data import schema
from lstm_madness.data.bulk import insert_frame
from lstm_madness.data.store import init_db


def ar1_returns(n: int, phi: float, sigma: float = 0.01, seed: int = 0) -> np.ndarray:
    """r_t = phi * r_{t-1} + e_t, e_t ~ N(0, sigma²)."""
    rng = np.random.default_rng(seed)
    eps = rng.normal(0.0, sigma, n)
    r = np.empty(n)
    r[0] = eps[0]
    for t in range(1, n):
        r[t] = phi * r[t - 1] + eps[t]
    return r


def write_returns(
    engine: sa.Engine, symbol: str, returns: np.ndarray, start: str = "2001-01-02"
) -> pd.DatetimeIndex:
    """Store bars whose close-to-close returns are ``returns[1:]`` (first close = 100)."""
    init_db(engine)
    dates = pd.bdate_range(start, periods=len(returns))
    close = 100.0 * np.cumprod(1.0 + np.asarray(returns))
    frame = pd.DataFrame(
        {
            "symbol": symbol,
            "date": dates.date,
            "open": close,
            "high": close * 1.001,
            "low": close * 0.999,
            "close": close,
            "adj_close": close,
            "volume": 1_000_000,
            "source": "synthetic",
            "ingested_at": dt.datetime.now(dt.UTC),
        }
    )
    with engine.begin() as conn:
        insert_frame(conn, schema.bars, frame)
    return dates


@pytest.fixture(name="write_returns")
def _write_returns_fixture():
    """``write_returns(engine, symbol, returns, start=...)`` (see :func:`write_returns`)."""
    return write_returns


@pytest.fixture(name="ar1_returns")
def _ar1_fixture():
    """``ar1_returns(n, phi, sigma=0.01, seed=0)`` (see :func:`ar1_returns`)."""
    return ar1_returns
