"""Validation rules: unit tests per rule and property-based tests."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lstm_madness.data.validation import OHLC_RTOL, Problem, check_bars, future_problems

COLS = ["open", "high", "low", "close", "adj_close", "volume"]


def _frame(rows: list[tuple], symbol: str = "XLF", start_line: int = 2) -> pd.DataFrame:
    """rows: (date, open, high, low, close, adj_close, volume)."""
    frame = pd.DataFrame(rows, columns=["date", *COLS])
    frame.insert(0, "symbol", symbol)
    frame.insert(0, "line", np.arange(start_line, start_line + len(rows), dtype=np.int64))
    frame["date"] = pd.to_datetime(frame["date"]).astype("datetime64[s]")
    return frame.astype({c: np.float64 for c in COLS})


GOOD = ("2020-01-02", 10.0, 11.0, 9.0, 10.5, 10.0, 100)
GOOD2 = ("2020-01-03", 10.5, 11.0, 10.0, 10.8, 10.3, 200)


def test_valid_rows_pass() -> None:
    checked = check_bars(_frame([GOOD, GOOD2]), "f.csv", has_adj_close=True)
    assert checked.problems == ()
    assert checked.warnings == ()
    assert len(checked.frame) == 2
    assert checked.rejected_lines == 0


@pytest.mark.parametrize(
    ("row", "column", "value", "reason"),
    [
        (("2020-01-03", 0.0, 11.0, 0.0, 10.0, 10.0, 1), "open", "0", "price is not positive"),
        (("2020-01-03", 10.0, 11.0, 9.0, -10.0, 10.0, 1), "close", "-10", "price is not positive"),
        (("2020-01-03", 10.0, 11.0, 9.0, 10.0, 0.0, 1), "adj_close", "0", "price is not positive"),
        (
            ("2020-01-03", 10.0, 10.4, 9.0, 10.5, 10.0, 1),
            "high",
            "10.4",
            "high is below open/close",
        ),
        (
            ("2020-01-03", 10.6, 10.5, 9.0, 10.0, 10.0, 1),
            "high",
            "10.5",
            "high is below open/close",
        ),
        (("2020-01-03", 10.0, 11.0, 10.1, 10.5, 10.0, 1), "low", "10.1", "low is above open/close"),
        (("2020-01-03", 10.0, 11.0, 9.0, 10.5, 10.0, -5), "volume", "-5", "volume is negative"),
    ],
)
def test_each_rule_names_line_column_value(
    row: tuple, column: str, value: str, reason: str
) -> None:
    checked = check_bars(_frame([GOOD, row]), "f.csv", has_adj_close=True)
    assert Problem("f.csv", 3, column, value, reason) in checked.problems
    assert checked.frame["line"].tolist() == [2]
    assert checked.rejected_lines == 1


def test_high_low_within_tolerance_pass() -> None:
    row = ("2020-01-03", 10.0, 10.0 * (1 - OHLC_RTOL / 2), 9.0, 9.5, 9.5, 1)
    assert check_bars(_frame([row]), "f.csv", True).problems == ()


def test_identical_duplicates_are_collapsed() -> None:
    checked = check_bars(_frame([GOOD, GOOD2, GOOD]), "f.csv", True)
    assert checked.problems == ()
    assert checked.collapsed == 1
    assert checked.frame["line"].tolist() == [2, 3]


def test_conflicting_duplicates_reject_every_line_of_that_date() -> None:
    other = (GOOD[0], 10.0, 11.0, 9.0, 10.6, 10.0, 100)
    checked = check_bars(_frame([GOOD, GOOD2, other]), "f.csv", True)
    assert [(p.line, p.column, p.value) for p in checked.problems] == [
        (2, "date", "2020-01-02"),
        (4, "date", "2020-01-02"),
    ]
    assert "conflicting values (lines 2, 4)" in checked.problems[0].reason
    assert checked.frame["line"].tolist() == [3]
    assert checked.rejected_lines == 2


def test_same_date_of_different_symbols_is_no_duplicate() -> None:
    frame = pd.concat([_frame([GOOD], "AAA"), _frame([GOOD], "BBB", start_line=3)])
    checked = check_bars(frame.reset_index(drop=True), "f.csv", True)
    assert checked.problems == ()
    assert checked.frame["symbol"].tolist() == ["AAA", "BBB"]


def test_split_warning_only_without_adj_close() -> None:
    halved = ("2020-01-03", 5.0, 5.5, 4.5, 5.2, np.nan, 200)
    rows = [(*GOOD[:5], np.nan, GOOD[6]), halved]
    checked = check_bars(_frame(rows), "f.csv", has_adj_close=False)
    assert checked.problems == ()
    (warning,) = checked.warnings
    assert "XLF" in warning and "2020-01-03" in warning and "unadjusted split" in warning
    with_adj = [GOOD, (*halved[:5], 5.0, 200)]
    assert check_bars(_frame(with_adj), "f.csv", has_adj_close=True).warnings == ()


def test_gap_warning_counts_business_days() -> None:
    six_missing = ("2020-01-13", *GOOD[1:])  # Jan 3, 6, 7, 8, 9, 10 missing: 6 > 5
    five_missing = ("2020-01-10", *GOOD[1:])  # Jan 3, 6, 7, 8, 9 missing
    (warning,) = check_bars(_frame([GOOD, six_missing]), "f.csv", True).warnings
    assert "6 business days between 2020-01-02 and 2020-01-13" in warning
    assert check_bars(_frame([GOOD, five_missing]), "f.csv", True).warnings == ()


def test_output_is_sorted_by_symbol_and_date() -> None:
    checked = check_bars(_frame([GOOD2, GOOD]), "f.csv", True)
    assert checked.frame["line"].tolist() == [3, 2]


# ---------------------------------------------------------------- property-based


def test_a_bar_after_today_plus_one_day_is_rejected() -> None:
    today = dt.datetime.now(dt.UTC).date()
    tomorrow, later = today + dt.timedelta(days=1), today + dt.timedelta(days=2)
    rows = [
        (str(today), *GOOD[1:]),
        (str(tomorrow), *GOOD[1:]),  # time zones: one day of slack
        (str(later), *GOOD[1:]),
    ]
    checked = check_bars(_frame(rows), "f.csv", has_adj_close=True)
    assert [(p.file, p.line, p.column, p.value) for p in checked.problems] == [
        ("f.csv", 4, "date", str(later))
    ]
    assert "date is in the future" in checked.problems[0].reason
    assert len(checked.frame) == 2


def test_future_rule_uses_the_given_day() -> None:
    frame = _frame([GOOD, GOOD2])
    assert future_problems(frame, "f.csv", today=dt.date(2020, 1, 2)) == []
    (problem,) = future_problems(frame, "f.csv", today=dt.date(2020, 1, 1))
    assert (problem.line, problem.value) == (3, "2020-01-03")


_positive = st.floats(min_value=1e-3, max_value=1e5, allow_nan=False)


@st.composite
def _valid_bars(draw: st.DrawFn) -> list[tuple]:
    n = draw(st.integers(min_value=1, max_value=15))
    dates = pd.bdate_range("2001-01-01", periods=n)
    rows = []
    for d in dates:
        o, c = draw(_positive), draw(_positive)
        h = max(o, c) * (1 + draw(st.floats(min_value=0, max_value=0.1)))
        lo = min(o, c) * (1 - draw(st.floats(min_value=0, max_value=0.5)))
        rows.append((d, o, h, lo, c, draw(_positive), draw(st.integers(0, 10**12))))
    return rows


@settings(max_examples=80, deadline=None)
@given(rows=_valid_bars())
def test_valid_bars_are_never_rejected(rows: list[tuple]) -> None:
    checked = check_bars(_frame(rows), "f.csv", has_adj_close=True)
    assert checked.problems == ()
    assert len(checked.frame) == len(rows)


@settings(max_examples=80, deadline=None)
@given(
    rows=_valid_bars(),
    data=st.data(),
    breach=st.floats(min_value=1e-5, max_value=0.9),
)
def test_a_broken_row_is_the_only_rejected_one(
    rows: list[tuple], data: st.DataObject, breach: float
) -> None:
    i = data.draw(st.integers(0, len(rows) - 1))
    rule = data.draw(st.sampled_from(["high", "low", "volume", "price"]))
    d, o, h, lo, c, a, v = rows[i]
    if rule == "high":
        h = max(o, c) * (1 - breach)
    elif rule == "low":
        lo = min(o, c) * (1 + breach)
    elif rule == "volume":
        v = -1 - int(breach * 1000)
    else:
        a = -breach
    rows[i] = (d, o, h, lo, c, a, v)
    checked = check_bars(_frame(rows), "f.csv", has_adj_close=True)
    expected_column = {"price": "adj_close"}.get(rule, rule)
    assert {(p.line, p.column) for p in checked.problems} == {(i + 2, expected_column)}
    assert checked.rejected_lines == 1
    assert i + 2 not in checked.frame["line"].tolist()
    assert len(checked.frame) == len(rows) - 1
