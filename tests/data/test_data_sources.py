"""CSV formats: detection, symbols from file names, parsing (incl. property-based)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lstm_madness.data.sources import detect_format, parse_csv, symbol_from_path
from lstm_madness.errors import DataError

YAHOO = "Date,Open,High,Low,Close,Adj Close,Volume"
STOOQ = "Date,Open,High,Low,Close,Volume"
STOOQ_VARIANT = "<TICKER>,<PER>,<DATE>,<TIME>,<OPEN>,<HIGH>,<LOW>,<CLOSE>,<VOL>,<OPENINT>"
GENERIC = "date,open,high,low,close,adj_close,volume"


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (YAHOO, "yahoo"),
        (STOOQ, "stooq"),
        ("Date,Open,High,Low,Close", "stooq"),
        (STOOQ_VARIANT, "stooq"),
        (GENERIC, "generic"),
        ("date,open,high,low,close,volume", "generic"),
        ("symbol," + GENERIC, "long"),
        ("Ticker," + YAHOO, "long"),
        ("Date,Open,High,Low,Close,Adj Close,Volume,Dividends", "yahoo"),
    ],
)
def test_detect_format(header: str, expected: str) -> None:
    assert detect_format(header.split(",")) == expected


def test_detect_format_rejects_unknown_header() -> None:
    with pytest.raises(DataError, match="unrecognized header 'when,price'"):
        detect_format(["when", "price"])


@pytest.mark.parametrize(
    ("name", "symbol"),
    [
        ("xlf.us.txt", "XLF"),
        ("/data/BRK-B.csv", "BRK-B"),
        ("jpm.csv", "JPM"),
        ("^GSPC.csv", "^GSPC"),
        ("us.txt", "US"),
    ],
)
def test_symbol_from_path(name: str, symbol: str) -> None:
    assert symbol_from_path(name) == symbol


def test_symbol_from_path_rejects_garbage() -> None:
    with pytest.raises(DataError, match="invalid symbol"):
        symbol_from_path("my prices!.csv")


def _one(data: str, name: str = "xlf.csv", **kw: object) -> pd.DataFrame:
    parsed = parse_csv(data.encode(), name, **kw)
    assert parsed.problems == ()
    return parsed.frame


def test_parse_yahoo() -> None:
    frame = _one(f"{YAHOO}\n2020-01-02,1.5,2.25,1.25,2,1.9,1000\n2020-01-03,2,2.5,1.5,2.2,2.1,3\n")
    assert frame["symbol"].tolist() == ["XLF", "XLF"]
    assert frame["line"].tolist() == [2, 3]
    assert frame["date"].tolist() == [pd.Timestamp("2020-01-02"), pd.Timestamp("2020-01-03")]
    assert frame.loc[0, ["open", "high", "low", "close", "adj_close", "volume"]].tolist() == [
        1.5,
        2.25,
        1.25,
        2.0,
        1.9,
        1000.0,
    ]


def test_parse_stooq_without_adj_close_and_volume_warns() -> None:
    parsed = parse_csv(b"Date,Open,High,Low,Close\n2020-01-02,1,2,0.5,1.5\n", "spx.us.txt")
    assert parsed.format == "stooq"
    assert not parsed.has_adj_close
    assert math.isnan(parsed.frame.loc[0, "adj_close"])
    assert parsed.frame.loc[0, "volume"] == 0
    assert any("no volume column" in w for w in parsed.warnings)
    assert parsed.frame.loc[0, "symbol"] == "SPX"


def test_parse_stooq_variant_uses_ticker_and_compact_dates() -> None:
    text = f"{STOOQ_VARIANT}\nXLF.US,D,20200102,000000,1,2,0.5,1.5,100,0\n"
    frame = _one(text, "whatever.txt")
    assert frame.loc[0, "symbol"] == "XLF"
    assert frame.loc[0, "date"] == pd.Timestamp("2020-01-02")
    assert frame.loc[0, "volume"] == 100


def test_parse_stooq_variant_rejects_weekly_rows() -> None:
    text = (
        f"{STOOQ_VARIANT}\nXLF.US,D,20200102,000000,1,2,0.5,1.5,100,0\n"
        "XLF.US,W,20200103,000000,1,2,0.5,1.5,1,0\n"
    )
    parsed = parse_csv(text.encode(), "x.txt")
    assert [(p.line, p.column, p.value) for p in parsed.problems] == [(3, "per", "W")]
    assert len(parsed.frame) == 1


def test_parse_long_file_with_symbol_column() -> None:
    text = (
        "symbol,"
        + GENERIC
        + "\nAAA,2020-01-02,1,2,0.5,1.5,1.4,10\nbbb,2020-01-02,1,2,0.5,1.5,1.4,10\n"
    )
    frame = _one(text, "many.csv")
    assert frame["symbol"].tolist() == ["AAA", "BBB"]


def test_symbol_override_on_multi_symbol_file_is_refused() -> None:
    text = (
        "symbol,"
        + GENERIC
        + "\nAAA,2020-01-02,1,2,0.5,1.5,1.4,10\nBBB,2020-01-02,1,2,0.5,1.5,1.4,10\n"
    )
    with pytest.raises(DataError, match="several symbols"):
        parse_csv(text.encode(), "many.csv", symbol="XYZ")


def test_symbol_override_beats_file_name() -> None:
    assert _one(f"{GENERIC}\n2020-01-02,1,2,0.5,1.5,1.4,10\n", symbol="spy")["symbol"][0] == "SPY"


def test_explicit_format_must_match_columns() -> None:
    with pytest.raises(DataError, match="not a yahoo file, missing column"):
        parse_csv(b"date,open,high,low,close,volume\n", "x.csv", fmt="yahoo")
    with pytest.raises(DataError, match="unknown format"):
        parse_csv(b"date,open,high,low,close,volume\n", "x.csv", fmt="excel")


def test_bom_crlf_and_time_suffix_are_accepted() -> None:
    data = f"\ufeff{YAHOO}\r\n2020-01-02 00:00:00-05:00,1,2,0.5,1.5,1.4,10\r\n".encode()
    frame = parse_csv(data, "x.csv").frame
    assert frame.loc[0, "date"] == pd.Timestamp("2020-01-02")
    assert frame.loc[0, "volume"] == 10


def test_blank_lines_keep_physical_line_numbers() -> None:
    data = f"\n{GENERIC}\n2020-01-02,1,2,0.5,1.5,1.4,10\n\n2020-01-03,1,2,0.5,oops,1.4,10\n\n"
    parsed = parse_csv(data.encode(), "x.csv")
    assert parsed.rows_read == 2
    assert parsed.frame["line"].tolist() == [3]
    assert [(p.line, p.column, p.value) for p in parsed.problems] == [(5, "close", "oops")]


def test_empty_file() -> None:
    with pytest.raises(DataError, match="empty"):
        parse_csv(b"\n\n", "x.csv")


@pytest.mark.parametrize(
    ("row", "column", "value", "reason"),
    [
        ("2020-02-30,1,2,0.5,1.5,1.4,10", "date", "2020-02-30", "unparseable date"),
        ("02/01/2020,1,2,0.5,1.5,1.4,10", "date", "02/01/2020", "unparseable date"),
        (",1,2,0.5,1.5,1.4,10", "date", "", "empty value"),
        ("2020-01-02,1,2,0.5,1.5,,10", "adj_close", "", "empty value"),
        ("2020-01-02,1,2,0.5,null,1.4,10", "close", "null", "missing value"),
        ("2020-01-02,1,2,NaN,1.5,1.4,10", "low", "NaN", "missing value"),
        ("2020-01-02,1,2,0.5,1.5,1.4,1e999", "volume", "1e999", "not a finite number"),
        ("2020-01-02,1,2,0.5,1.5,1.4,ten", "volume", "ten", "not a number"),
        ("2020-01-02,1,2,0.5,1.5,inf,10", "adj_close", "inf", "not a number"),
    ],
)
def test_unparseable_cells_name_line_column_value(
    row: str, column: str, value: str, reason: str
) -> None:
    data = f"{GENERIC}\n2020-01-01,1,2,0.5,1.5,1.4,10\n{row}\n".encode()
    parsed = parse_csv(data, "x.csv")
    assert [(p.file, p.line, p.column, p.value, p.reason) for p in parsed.problems] == [
        ("x.csv", 3, column, value, reason)
    ]
    assert parsed.frame["line"].tolist() == [2]
    assert parsed.rows_read == 2


@pytest.mark.parametrize("row", ["2020-01-02,1,2,0.5,1.5,1.4", "2020-01-02,1,2,0.5,1.5,1.4,10,7"])
def test_wrong_field_count_is_a_problem(row: str) -> None:
    parsed = parse_csv(f"{GENERIC}\n{row}\n".encode(), "x.csv")
    (problem,) = parsed.problems
    assert problem.line == 2
    assert problem.column is None
    assert "expected 7 fields" in problem.reason
    assert parsed.frame.empty


# ---------------------------------------------------------------- property-based

_price = st.floats(min_value=1e-4, max_value=1e6, allow_nan=False, allow_infinity=False)
_bar = st.tuples(
    st.dates(
        min_value=pd.Timestamp("1970-01-01").date(), max_value=pd.Timestamp("2100-01-01").date()
    ),
    _price,
    _price,
    _price,
    _price,
    st.one_of(st.none(), _price),
    st.integers(min_value=0, max_value=2**53),
)


def _render(rows: list[tuple], fmt: str) -> str:
    header = {"yahoo": YAHOO, "generic": GENERIC}[fmt]
    lines = [header]
    for d, o, h, lo, c, a, v in rows:
        adj = "" if a is None else repr(a)
        lines.append(f"{d.isoformat()},{o!r},{h!r},{lo!r},{c!r},{adj},{v}")
    return "\n".join(lines) + "\n"


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows=st.lists(_bar, min_size=1, max_size=20), fmt=st.sampled_from(["yahoo", "generic"]))
def test_parse_round_trips_every_value(rows: list[tuple], fmt: str) -> None:
    rows = [r if r[5] is not None else (*r[:5], 1.0, r[6]) for r in rows]
    parsed = parse_csv(_render(rows, fmt).encode(), "t.csv")
    assert parsed.problems == ()
    assert parsed.format == fmt
    frame = parsed.frame
    assert frame["line"].tolist() == list(range(2, len(rows) + 2))
    assert [d.date() for d in frame["date"]] == [r[0] for r in rows]
    for i, col in enumerate(["open", "high", "low", "close", "adj_close", "volume"], start=1):
        assert frame[col].tolist() == [float(r[i]) for r in rows]  # bit-exact


_junk = st.text(
    alphabet=st.characters(
        blacklist_categories=("Cs",),  # lone surrogates cannot be written as UTF-8
        blacklist_characters=",\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029",
    ),
    min_size=1,
    max_size=8,
).filter(lambda s: not _looks_numeric(s.strip()))


def _looks_numeric(text: str) -> bool:
    try:
        return math.isfinite(float(text)) and text.lower() not in ("nan", "inf", "infinity")
    except ValueError:
        return False


@settings(max_examples=60, deadline=None)
@given(
    rows=st.lists(_bar, min_size=2, max_size=12),
    data=st.data(),
)
def test_a_bad_cell_is_reported_at_its_line_and_column(
    rows: list[tuple], data: st.DataObject
) -> None:
    rows = [r if r[5] is not None else (*r[:5], 1.0, r[6]) for r in rows]
    lines = _render(rows, "generic").split("\n")
    target = data.draw(st.integers(min_value=1, max_value=len(rows)))
    column = data.draw(st.integers(min_value=1, max_value=6))
    junk = data.draw(_junk)
    cells = lines[target].split(",")
    cells[column] = junk
    lines[target] = ",".join(cells)
    parsed = parse_csv("\n".join(lines).encode(), "t.csv")
    names = GENERIC.split(",")
    assert [(p.line, p.column) for p in parsed.problems] == [(target + 1, names[column])]
    assert parsed.problems[0].value == junk.strip()
    assert target + 1 not in parsed.frame["line"].tolist()
    assert len(parsed.frame) == len(rows) - 1


def test_parsed_frame_dtypes() -> None:
    frame = _one(f"{GENERIC}\n2020-01-02,1,2,0.5,1.5,1.4,10\n")
    assert frame["line"].dtype == np.int64
    assert frame["date"].dtype.kind == "M"
    assert all(frame[c].dtype == np.float64 for c in ("open", "adj_close", "volume"))
