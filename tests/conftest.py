"""Shared fixtures: a fresh database on each backend, and the shared price files.

``db_url`` is parametrized over SQLite (a temporary file) and PostgreSQL (a throw-away
schema in the server named by ``MADNESS_TEST_PG_URL``). Outside CI an unreachable
PostgreSQL skips its half with a reason; with ``CI=true`` it is an error, so CI can never
pass by skipping the PostgreSQL tests. The same holds for ``../shared/data/prices``.
"""

from __future__ import annotations

import datetime as dt
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from lstm_madness.data import schema
from lstm_madness.data.bulk import insert_frame
from lstm_madness.data.store import init_db

PG_URL = os.environ.get("MADNESS_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
IN_CI = os.environ.get("CI", "").lower() == "true"
SHARED_PRICES = Path(__file__).resolve().parents[2] / "shared" / "data" / "prices"
SHARED_SP500 = SHARED_PRICES.parent / "sp500"


def _pg_admin_engine() -> sa.Engine | None:
    engine = sa.create_engine(PG_URL, isolation_level="AUTOCOMMIT", pool_pre_ping=True)
    try:
        with engine.connect() as conn:
            conn.execute(sa.text("select 1"))
    except Exception as exc:
        engine.dispose()
        if IN_CI:
            pytest.fail(f"CI=true but PostgreSQL at {PG_URL} is unreachable: {exc}")
        return None
    return engine


@pytest.fixture(scope="session")
def pg_admin() -> Iterator[sa.Engine | None]:
    engine = _pg_admin_engine()
    yield engine
    if engine is not None:
        engine.dispose()


def _fresh_pg_url(admin: sa.Engine) -> tuple[str, str]:
    schema = f"t_{uuid.uuid4().hex[:16]}"
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    url = sa.engine.make_url(PG_URL).update_query_dict({"options": f"-csearch_path={schema}"})
    return url.render_as_string(hide_password=False), schema


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """URL of an empty database, isolated from every other test; dropped afterwards."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'madness.db'}"
        return
    admin = request.getfixturevalue("pg_admin")
    if admin is None:
        pytest.skip(f"PostgreSQL not reachable at {PG_URL} (set MADNESS_TEST_PG_URL)")
    url, schema = _fresh_pg_url(admin)
    try:
        yield url
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """URL of an empty SQLite database (for tests that are not about the backend)."""
    return f"sqlite:///{tmp_path / 'madness.db'}"


@pytest.fixture(scope="session")
def shared_prices() -> Path:
    """``../shared/data/prices`` beside the project; skipped outside CI when absent."""
    if not SHARED_PRICES.is_dir() or not any(SHARED_PRICES.glob("*.csv")):
        if IN_CI:
            pytest.fail(f"CI=true but the shared price files are missing: {SHARED_PRICES}")
        pytest.skip(f"shared price files not found at {SHARED_PRICES}")
    return SHARED_PRICES


@pytest.fixture(scope="session")
def shared_sp500() -> Path:
    """``../shared/data/sp500`` (membership and prices) beside the project; skipped outside
    CI when absent."""
    if not (SHARED_SP500 / "membership.csv").is_file():
        if IN_CI:
            pytest.fail(f"CI=true but the shared S&P 500 data is missing: {SHARED_SP500}")
        pytest.skip(f"shared S&P 500 data not found at {SHARED_SP500}")
    return SHARED_SP500


@pytest.fixture(autouse=True, scope="session")
def _one_torch_thread() -> Iterator[None]:
    """Tiny test networks train faster on one thread than split over two (less sync)."""
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


# synthetic daily bars written straight into the store, for end-to-end tests


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


# ------------------------------------------------------------- a synthetic universe


def synthetic_universe(
    n_symbols: int = 30, n_days: int = 1500, reversal: float = 0.1, seed: int = 0
) -> tuple[dict[str, pd.DataFrame], pd.DataFrame, pd.Series]:
    """Returns panel, membership intervals and market returns of a synthetic universe.

    ``ret[t, s] = market[t] - reversal * (ret[t-1, s] - mean_s ret[t-1]) + noise`` (a planted
    cross-sectional reversal; 0 gives pure noise). Point in time: S00-S03 have data from
    day 200 and join on day 260; S04-S05 are delisted (data end on day 1100, membership
    open); S06-S07 leave on day 900; S08 leaves on day 500 and rejoins on day 700.
    """
    assert n_days > 1101 and n_symbols > 8, "the membership events need these"
    rng = np.random.default_rng(seed)
    dates = pd.bdate_range("2010-01-04", periods=n_days, name="date")
    symbols = [f"S{j:02d}" for j in range(n_symbols)]
    market = rng.normal(0.0003, 0.01, n_days)
    noise = rng.normal(0.0, 0.02, (n_days, n_symbols))
    ret = np.empty((n_days, n_symbols))
    ret[0] = market[0] + noise[0]
    for t in range(1, n_days):
        dev = ret[t - 1] - ret[t - 1].mean()
        ret[t] = market[t] - reversal * dev + noise[t]
    ret[:200, :4] = np.nan
    ret[1101:, 4:6] = np.nan
    frame = pd.DataFrame(ret, index=dates, columns=symbols)
    rows = [(s, dates[0], None) for s in symbols[4:]]
    rows = [r for r in rows if r[0] not in ("S06", "S07", "S08")]
    rows += [(s, dates[260], None) for s in symbols[:4]]
    rows += [(s, dates[0], dates[900]) for s in ("S06", "S07")]
    rows += [("S08", dates[0], dates[500]), ("S08", dates[700], None)]
    intervals = pd.DataFrame(rows, columns=["symbol", "start", "end"])
    intervals["start"] = pd.to_datetime(intervals["start"])
    intervals["end"] = pd.to_datetime(intervals["end"])
    return {"ret": frame}, intervals, pd.Series(market, index=dates, name="market")


@pytest.fixture
def make_universe():
    """Factory of :func:`synthetic_universe` (tests import no helper modules)."""
    return synthetic_universe


@pytest.fixture(autouse=True, scope="session")
def _trial_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Trial-set evidence is cached under a throw-away folder, never the user's cache."""
    previous = os.environ.get("MADNESS_CACHE_DIR")
    os.environ["MADNESS_CACHE_DIR"] = str(tmp_path_factory.mktemp("madness-cache"))
    yield
    if previous is None:
        os.environ.pop("MADNESS_CACHE_DIR", None)
    else:
        os.environ["MADNESS_CACHE_DIR"] = previous
