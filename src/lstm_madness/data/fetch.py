"""Downloading daily bars from Yahoo Finance (``yfinance``) into the store.

The download sits behind an injectable :data:`Downloader` so that tests (and other
vendors) never touch the network. Downloaded bars go through the same validation and
upsert path as files (:func:`lstm_madness.data.ingest.ingest_payload`).

Survivorship bias: :func:`load_universe` returns today's members of a universe (see
:mod:`lstm_madness.data.universe`); fetching them gives the survivors' histories only.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import date, timedelta

import pandas as pd
import sqlalchemy as sa

from lstm_madness.data.ingest import IngestResult, bars_to_csv, ingest_payload
from lstm_madness.data.initdb import store_errors
from lstm_madness.data.sources import check_symbol, normalize_symbol
from lstm_madness.data.universe import load_universe
from lstm_madness.errors import FetchError, MadnessError

__all__ = [
    "Downloader",
    "fetch",
    "load_universe",
    "normalize_download",
    "yahoo_download",
]

#: ``(symbols, start, end) -> frame``: a yfinance-shaped frame (DatetimeIndex, columns
#: (ticker, field) or (field, ticker) MultiIndex, or flat fields for one symbol); ``start``
#: and ``end`` are inclusive, None = unbounded.
Downloader = Callable[[list[str], date | None, date | None], pd.DataFrame]

_FIELDS = {
    "open": "open",
    "high": "high",
    "low": "low",
    "close": "close",
    "adj close": "adj_close",
    "adj_close": "adj_close",
    "volume": "volume",
}


def yahoo_download(symbols: list[str], start: date | None, end: date | None) -> pd.DataFrame:
    """Daily bars from Yahoo via ``yfinance.download`` (unadjusted close + Adj Close).

    ``start``/``end`` are inclusive (yfinance's ``end`` is exclusive, so one day is added);
    without ``start`` the whole history (``period="max"``) is requested.
    """
    import yfinance as yf

    window: dict[str, object] = {"period": "max"} if start is None else {"start": start}
    if start is not None and end is not None:
        window["end"] = end + timedelta(days=1)
    return yf.download(
        symbols,
        auto_adjust=False,
        actions=False,
        progress=False,
        group_by="ticker",
        **window,
    )


def _field_level(columns: pd.MultiIndex) -> int:
    for level in range(columns.nlevels):
        names = {str(v).strip().lower() for v in columns.get_level_values(level)}
        if names and names <= set(_FIELDS) | {"dividends", "stock splits", "capital gains"}:
            return level
    raise FetchError(f"unexpected download columns: {list(columns)[:8]}")


def normalize_download(
    raw: pd.DataFrame, symbols: Sequence[str], start: date | None = None, end: date | None = None
) -> pd.DataFrame:
    """Long bars frame from a yfinance-shaped download.

    Returns
    -------
    pandas.DataFrame
        Columns ``symbol``, ``date``, ``open``, ``high``, ``low``, ``close``, ``adj_close``
        (float64, quote currency), ``volume`` (shares); rows where a ticker has no value at
        all (another ticker's trading day) are dropped; dates outside [start, end] too.
    """
    if isinstance(raw.columns, pd.MultiIndex):
        level = _field_level(raw.columns)
        pieces = {
            str(ticker): raw.xs(ticker, axis=1, level=1 - level)
            for ticker in raw.columns.get_level_values(1 - level).unique()
        }
    else:
        if len(symbols) != 1:
            raise FetchError("a download without ticker columns must be for one symbol")
        pieces = {symbols[0]: raw}
    frames = []
    for ticker, piece in pieces.items():
        renamed = piece.rename(columns=lambda c: _FIELDS.get(str(c).strip().lower(), "_"))
        renamed = renamed.drop(columns=[c for c in renamed.columns if c == "_"])
        values = renamed.reindex(columns=["open", "high", "low", "close", "adj_close", "volume"])
        values = values.dropna(how="all")
        index = pd.DatetimeIndex(values.index)
        if index.tz is not None:
            index = index.tz_localize(None)
        values.index = index.normalize()
        values = values.rename_axis("date").reset_index()
        values.insert(0, "symbol", normalize_symbol(ticker))
        frames.append(values)
    long = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    if len(long) and start is not None:
        long = long.loc[long["date"] >= pd.Timestamp(start)]
    if len(long) and end is not None:
        long = long.loc[long["date"] <= pd.Timestamp(end)]
    return long


def fetch(
    engine: sa.Engine,
    symbols: Sequence[str],
    start: date | None = None,
    end: date | None = None,
    downloader: Downloader | None = None,
    skip_bad_rows: bool = False,
) -> list[IngestResult]:
    """Download daily bars and upsert them, all symbols in one transaction.

    Parameters
    ----------
    engine : sqlalchemy.Engine
        The store.
    symbols : sequence of str
        Tickers as Yahoo spells them (``BRK-B``, ``^GSPC``).
    start, end : datetime.date, optional
        Inclusive date range; default the whole history.
    downloader : Downloader, optional
        Replaces :func:`yahoo_download` (tests, other vendors).
    skip_bad_rows : bool
        Write the good rows of a symbol with bad rows instead of rejecting the fetch.

    Returns
    -------
    list of IngestResult
        One per symbol (``path`` ``"yfinance:SYM"``), in the order given.

    Raises
    ------
    FetchError
        The download failed or returned no rows for some symbol; nothing is written.
    ValidationError
        Bad rows (nothing written) unless ``skip_bad_rows``.
    """
    wanted = [check_symbol(normalize_symbol(s)) for s in dict.fromkeys(symbols)]
    if not wanted:
        raise FetchError("no symbols to fetch")
    download = downloader or yahoo_download
    try:
        raw = download(wanted, start, end)
    except MadnessError:
        raise
    except Exception as exc:  # network, HTTP, parsing inside the vendor library
        raise FetchError(
            f"download of {', '.join(wanted)} failed: {type(exc).__name__}: {exc}"
        ) from exc
    if raw is None or raw.empty:
        raise FetchError(
            f"the download of {', '.join(wanted)} returned no data "
            "(network failure, unknown symbols or an empty date range); nothing written"
        )
    long = normalize_download(raw, wanted, start, end)
    have = set(long["symbol"]) if len(long) else set()
    empty = [s for s in wanted if s not in have]
    if empty:
        raise FetchError(
            f"no data downloaded for {', '.join(empty)} (unknown or delisted symbol, "
            "empty date range, or a network failure); nothing written"
        )
    results = []
    with store_errors("write to"), engine.begin() as conn:
        for sym in wanted:
            data = bars_to_csv(long.loc[long["symbol"] == sym])
            results.append(
                ingest_payload(
                    conn,
                    data,
                    f"yfinance:{sym}",
                    fmt="long",
                    skip_bad_rows=skip_bad_rows,
                    source="yfinance",
                )
            )
    return results
