"""Point-in-time membership: CSV parsing with located errors, the date mask, the fallback."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from lstm_madness.data.db import make_engine
from lstm_madness.data.membership import (
    OPEN_START,
    SURVIVORSHIP_WARNING,
    bundled_benchmark,
    bundled_membership,
    load_membership,
    membership_mask,
    parse_membership,
    read_membership,
    store_membership,
)
from lstm_madness.errors import DataError, ValidationError

GOOD = """# members of a test universe
symbol,start,end
JPM,2000-01-03,
bac,2001-01-02,2005-12-30

BAC,2007-01-02,
LEH,2000-01-03,2008-09-15
"""


def test_parse_good_file() -> None:
    frame = parse_membership(GOOD, "u.csv")
    assert frame["symbol"].tolist() == ["BAC", "BAC", "JPM", "LEH"]
    assert frame["line"].tolist() == [4, 6, 3, 7]  # physical lines, comments and blanks too
    assert frame["start"].tolist()[0] == pd.Timestamp("2001-01-02")
    assert frame["end"].isna().tolist() == [False, True, True, False]


def test_columns_in_any_order() -> None:
    frame = parse_membership("end,symbol,start\n2001-01-01,C,2000-01-03\n")
    assert (frame["symbol"][0], frame["end"][0]) == ("C", pd.Timestamp("2001-01-01"))


@pytest.mark.parametrize(
    ("row", "column", "value", "reason"),
    [
        ("JPM,2000-13-01,", "start", "2000-13-01", "not a date"),
        ("JPM,,", "start", "", "missing start date"),
        ("JPM,2000-01-03,soon", "end", "soon", "not a date"),
        ("JPM,2000-01-03,1999-12-31", "end", "1999-12-31", "end is before start 2000-01-03"),
        (",2000-01-03,", "symbol", "", "empty symbol"),
        ("JPM,2000-01-03,,x", None, "JPM,2000-01-03,,x", "expected 3 fields, found 4"),
    ],
)
def test_bad_row_is_located(row: str, column: str | None, value: str, reason: str) -> None:
    with pytest.raises(ValidationError) as info:
        parse_membership(f"symbol,start,end\nC,2000-01-03,\n{row}\n", "u.csv")
    (problem,) = info.value.problems
    assert (problem.file, problem.line, problem.column, problem.value) == (
        "u.csv",
        3,
        column,
        value,
    )
    assert reason in problem.reason
    assert "u.csv, line 3" in str(info.value) and "nothing of this file was stored" in str(
        info.value
    )


def test_overlapping_intervals_name_both_lines() -> None:
    text = "symbol,start,end\nJPM,2000-01-03,2004-12-31\nC,2000-01-03,\nJPM,2004-12-31,\n"
    with pytest.raises(ValidationError) as info:
        parse_membership(text, "u.csv")
    (problem,) = info.value.problems
    assert problem.line == 4 and problem.column == "start" and problem.value == "2004-12-31"
    assert "overlaps the one on line 2 (to 2004-12-31)" in problem.reason
    # an open interval overlaps every later one; adjacent intervals do not overlap
    with pytest.raises(ValidationError, match="line 2 \\(still a member\\)"):
        parse_membership("symbol,start,end\nJPM,2000-01-03,\nJPM,2010-01-04,2011-01-03\n")
    ok = parse_membership("symbol,start,end\nJPM,2000-01-03,2004-12-30\nJPM,2004-12-31,\n")
    assert len(ok) == 2


def test_every_problem_reported_at_once() -> None:
    text = "symbol,start,end\nA,x,\nB,2000-01-01,y\nA,2000-01-01,\nA,2001-01-01,\n"
    with pytest.raises(ValidationError) as info:
        parse_membership(text)
    assert [p.line for p in info.value.problems] == [2, 3, 5]


def test_bad_header_and_empty_file() -> None:
    with pytest.raises(ValidationError, match="header must name the columns") as info:
        parse_membership("ticker,from,to\nJPM,2000-01-03,\n", "u.csv")
    assert info.value.problems[0].line == 1
    with pytest.raises(ValidationError, match="no header"):
        parse_membership("# nothing\n\n", "u.csv")
    with pytest.raises(ValidationError, match="no membership interval"):
        parse_membership("symbol,start,end\n", "u.csv")


def test_read_membership_file(tmp_path) -> None:
    path = tmp_path / "m.csv"
    path.write_text(GOOD, encoding="utf-8")
    assert len(read_membership(path)) == 4
    path.write_text("symbol,start,end\nJPM,bad,\n", encoding="utf-8")
    with pytest.raises(ValidationError, match=str(path)):
        read_membership(path)
    with pytest.raises(DataError, match="cannot read"):
        read_membership(tmp_path / "missing.csv")


def _slow_mask(intervals: pd.DataFrame, dates: pd.DatetimeIndex, symbols: list[str]):
    out = np.zeros((len(dates), len(symbols)), dtype=bool)
    for i, day in enumerate(dates):
        for j, symbol in enumerate(symbols):
            for _, row in intervals[intervals["symbol"] == symbol].iterrows():
                if row["start"] <= day and (pd.isna(row["end"]) or day <= row["end"]):
                    out[i, j] = True
    return out


def test_mask_matches_a_slow_loop() -> None:
    intervals = parse_membership(GOOD)
    dates = pd.bdate_range("2000-01-01", "2009-12-31")[::7]
    symbols = ["LEH", "BAC", "JPM", "C"]  # C has no interval: never a member
    mask = membership_mask(intervals, dates, symbols)
    assert mask.columns.tolist() == symbols and mask.index.equals(dates)
    np.testing.assert_array_equal(mask.to_numpy(), _slow_mask(intervals, dates, symbols))
    assert not mask["C"].any() and mask["BAC"].any() and not mask["BAC"]["2006"].any()


def test_mask_edges_are_inclusive() -> None:
    intervals = parse_membership("symbol,start,end\nA,2020-01-03,2020-01-07\n")
    dates = pd.bdate_range("2020-01-01", "2020-01-10")
    mask = membership_mask(intervals, dates, ["A"])["A"]
    assert mask[mask].index.strftime("%m-%d").tolist() == ["01-03", "01-06", "01-07"]
    with pytest.raises(DataError, match="ascending"):
        membership_mask(intervals, dates[::-1], ["A"])


def test_bundled_fallback() -> None:
    frame = bundled_membership("xlf")
    assert len(frame) == 30 and "XLF" not in set(frame["symbol"])
    assert (frame["start"] == OPEN_START).all() and frame["end"].isna().all()
    assert bundled_benchmark("xlf") == "XLF"
    mask = membership_mask(frame, pd.bdate_range("1999-01-04", periods=5), ["JPM", "XLF"])
    assert mask["JPM"].all() and not mask["XLF"].any()
    assert "Survivorship bias" in SURVIVORSHIP_WARNING


@pytest.fixture
def members_table(db_url: str) -> Iterator[tuple[sa.Engine, sa.Table]]:
    """The ``universe_members`` table as the schema will define it (phase B)."""
    meta = sa.MetaData()
    table = sa.Table(
        "universe_members",
        meta,
        sa.Column("universe", sa.Text, primary_key=True),
        sa.Column("symbol", sa.Text, primary_key=True),
        sa.Column("start", sa.Date, primary_key=True),
        sa.Column("end", sa.Date, nullable=True),
    )
    engine = make_engine(db_url)
    meta.create_all(engine)
    yield engine, table
    engine.dispose()


def test_store_and_load_round_trip(members_table) -> None:
    engine, table = members_table
    intervals = parse_membership(GOOD)
    with engine.begin() as conn:
        assert store_membership(conn, table, "Banks", intervals) == 4
    with engine.connect() as conn:
        back = load_membership(conn, table, "banks")
        assert load_membership(conn, table, "other") is None
    pd.testing.assert_frame_equal(
        back[["symbol", "start", "end"]],
        intervals[["symbol", "start", "end"]],
        check_dtype=False,
    )
    with engine.begin() as conn:  # replaced, not appended
        store_membership(conn, table, "banks", intervals.iloc[:1])
    with engine.connect() as conn:
        assert len(load_membership(conn, table, "banks")) == 1


def test_read_memberships_joins_files_and_rejects_overlaps_across_them(tmp_path) -> None:
    from lstm_madness.data.membership import read_memberships

    first, second = tmp_path / "a.csv", tmp_path / "b.csv"
    first.write_text(GOOD, encoding="utf-8")
    second.write_text("symbol,start,end\nWB,1996-01-02,2008-12-31\n", encoding="utf-8")
    both = read_memberships([first, second])
    assert len(both) == 5 and "WB" in set(both["symbol"])
    assert both["symbol"].is_monotonic_increasing
    # JPM is open from 2000-01-03 in a.csv: a later JPM interval in b.csv overlaps it
    second.write_text("symbol,start,end\nWB,1996-01-02,2008-12-31\nJPM,2010-01-04,\n")
    with pytest.raises(ValidationError, match="overlaps the one on line 3 of") as info:
        read_memberships([first, second])
    (problem,) = info.value.problems
    assert (problem.file, problem.line, problem.column) == (str(second), 3, "start")
    with pytest.raises(DataError, match="no membership file"):
        read_memberships([])
