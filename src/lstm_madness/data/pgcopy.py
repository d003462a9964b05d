"""PostgreSQL binary ``COPY`` payloads for bars, built with numpy (no per-row Python).

Each tuple is ``(symbol text, date date, open, high, low, close, adj_close float8,
volume int8)`` in PostgreSQL's binary COPY format: a 16-bit field count, then per field a
32-bit byte length (``-1`` for NULL) and the big-endian value. Rows of one symbol and one
``adj_close`` null-ness have a fixed width, so each such group is a packed numpy structured
array written with one ``tobytes()``.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

import numpy as np
import pandas as pd

HEADER = b"PGCOPY\n\xff\r\n\x00" + (0).to_bytes(4, "big") + (0).to_bytes(4, "big")
TRAILER = (-1).to_bytes(2, "big", signed=True)
#: Column list of the payload, in order (the table's columns).
COLUMNS: tuple[str, ...] = (
    "symbol",
    "date",
    "open",
    "high",
    "low",
    "close",
    "adj_close",
    "volume",
    "source",
    "ingested_at",
)
_PG_EPOCH = np.datetime64("2000-01-01", "D")
_PG_EPOCH_US = np.datetime64("2000-01-01T00:00:00", "us")
_FLOATS = ("open", "high", "low", "close")


def _group_dtype(symbol_len: int, source_len: int, with_adj: bool) -> np.dtype:
    fields: list[tuple[str, str]] = [
        ("n", ">i2"),
        ("l_symbol", ">i4"),
        ("symbol", f"S{symbol_len}"),
        ("l_date", ">i4"),
        ("date", ">i4"),
    ]
    for col in _FLOATS:
        fields += [(f"l_{col}", ">i4"), (col, ">f8")]
    fields.append(("l_adj_close", ">i4"))
    if with_adj:
        fields.append(("adj_close", ">f8"))
    fields += [("l_volume", ">i4"), ("volume", ">i8")]
    fields += [("l_source", ">i4"), ("source", f"S{source_len}")]
    fields += [("l_ingested_at", ">i4"), ("ingested_at", ">i8")]
    return np.dtype(fields)


def _group_bytes(
    symbol: bytes,
    source: bytes,
    stamp: int,
    columns: dict[str, np.ndarray],
    rows: np.ndarray,
    with_adj: bool,
) -> bytes:
    """The tuples of ``rows`` (positions into ``columns``), which share symbol, source and
    adj_close null-ness, as one packed structured array."""
    rec = np.empty(len(rows), dtype=_group_dtype(len(symbol), len(source), with_adj))
    rec["n"] = len(COLUMNS)
    rec["l_symbol"] = len(symbol)
    rec["symbol"] = symbol
    rec["l_date"] = 4
    rec["date"] = columns["date"][rows]
    for col in _FLOATS:
        rec[f"l_{col}"] = 8
        rec[col] = columns[col][rows]
    if with_adj:
        rec["l_adj_close"] = 8
        rec["adj_close"] = columns["adj_close"][rows]
    else:
        rec["l_adj_close"] = -1
    rec["l_volume"] = 8
    rec["volume"] = columns["volume"][rows]
    rec["l_source"] = len(source)
    rec["source"] = source
    rec["l_ingested_at"] = 8
    rec["ingested_at"] = stamp
    return rec.tobytes()


def encode_bars(
    frame: pd.DataFrame, source: str | Sequence[str] | np.ndarray, ingested_at: datetime
) -> bytes:
    """Binary COPY payload (header, tuples, trailer) of a bars frame.

    Rows are grouped by (symbol, source, adj_close null-ness) with one sort, each group
    encoded in one go, so the cost is linear in the rows whatever the number of symbols.

    Parameters
    ----------
    frame : pandas.DataFrame
        Columns ``symbol``, ``date`` (datetime64), ``open``, ``high``, ``low``, ``close``,
        ``adj_close`` (float64, NaN → NULL), ``volume`` (int64, shares).
    source : str or sequence of str
        Provenance written into every row, or one per row.
    ingested_at : datetime.datetime
        Timezone-aware load time written into every row (``timestamptz``).

    Returns
    -------
    bytes
        Ready for ``COPY <table> (<COLUMNS>) FROM STDIN (FORMAT BINARY)``.
    """
    n = len(frame)
    utc = ingested_at.astimezone(UTC).replace(tzinfo=None)
    stamp = int((np.datetime64(utc, "us") - _PG_EPOCH_US).astype(np.int64))
    columns = {col: frame[col].to_numpy(dtype=np.float64) for col in (*_FLOATS, "adj_close")}
    columns["volume"] = frame["volume"].to_numpy(dtype=np.int64)
    days = frame["date"].to_numpy().astype("datetime64[D]")
    columns["date"] = (days - _PG_EPOCH).astype(np.int32)
    sym_codes, symbols = pd.factorize(frame["symbol"])
    if isinstance(source, str):
        src_codes, sources = np.zeros(n, dtype=np.int64), [source]
    else:
        src_codes, sources = pd.factorize(np.asarray(source, dtype=object))
    no_adj = np.isnan(columns["adj_close"])
    key = (sym_codes.astype(np.int64) * len(sources) + src_codes) * 2 + no_adj
    order = np.argsort(key, kind="stable")
    bounds = np.flatnonzero(np.diff(key[order])) + 1
    parts = [HEADER]
    for rows in np.split(order, bounds) if n else []:
        first = rows[0]
        parts.append(
            _group_bytes(
                str(symbols[sym_codes[first]]).encode("utf-8"),
                str(sources[src_codes[first]]).encode("utf-8"),
                stamp,
                columns,
                rows,
                not no_adj[first],
            )
        )
    parts.append(TRAILER)
    return b"".join(parts)


#: Row layout of :data:`SELECT_EXISTING` in binary COPY output (fixed width: no NULLs).
_EXISTING_DTYPE = np.dtype(
    [("n", ">i2"), ("l_code", ">i4"), ("code", ">i4"), ("l_date", ">i4"), ("date", ">i4")]
    + [item for col in (*_FLOATS, "adj_close") for item in ((f"l_{col}", ">i4"), (col, ">f8"))]
    + [("l_volume", ">i4"), ("volume", ">i8")]
)
#: Stored bars of some symbols in a date range, as fixed-width binary COPY rows: the symbol
#: as its 0-based position in the first parameter, NULL adj_close as NaN.
SELECT_EXISTING = (
    'COPY (SELECT array_position(%s::text[], symbol)::int4 - 1, "date", open, high, low, '
    "close, COALESCE(adj_close, 'NaN'::float8), volume FROM bars "
    'WHERE symbol = ANY(%s) AND "date" BETWEEN %s AND %s) TO STDOUT (FORMAT BINARY)'
)


def decode_existing(payload: bytes) -> dict[str, np.ndarray]:
    """Columns of a :data:`SELECT_EXISTING` payload.

    Returns
    -------
    dict of numpy.ndarray
        ``code`` (int64, symbol position), ``date`` (datetime64[D]), prices (float64),
        ``volume`` (float64, shares).
    """
    signature = HEADER[:11]
    if not payload.startswith(signature):
        raise ValueError("not a PostgreSQL binary COPY payload")
    extension = int.from_bytes(payload[15:19], "big")
    body = payload[19 + extension : len(payload) - 2]
    rec = np.frombuffer(body, dtype=_EXISTING_DTYPE)
    if len(rec) and not (rec["n"] == 8).all():
        raise ValueError("unexpected field count in binary COPY payload")
    out = {
        "code": rec["code"].astype(np.int64),
        "date": rec["date"].astype(np.int64).astype("timedelta64[D]") + _PG_EPOCH,
    }
    for col in (*_FLOATS, "adj_close", "volume"):
        out[col] = rec[col].astype(np.float64)
    return out
