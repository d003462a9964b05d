"""``read_panel``: alignment, honest returns across gaps, missing-data policies, fills."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from lstm_madness.data.ingest import ingest_file
from lstm_madness.data.store import read_panel
from lstm_madness.errors import DataError


@pytest.fixture
def store(
    engine: sa.Engine, make_bars: Callable, write_generic: Callable, tmp_path: Path
) -> tuple[sa.Engine, dict[str, pd.DataFrame]]:
    """AAA: 40 business days; BBB: same days but one missing (day 10) and one extra
    (a Saturday); LATE: starts on day 20."""
    aaa = make_bars(n=40, seed=1)
    bbb = make_bars(n=40, seed=2)
    bbb = bbb.drop(index=10)
    extra = bbb.iloc[[14]].copy()
    extra["date"] = pd.Timestamp("2020-01-25")  # a Saturday, after row 17 (Jan 24)
    bbb = pd.concat([bbb, extra]).sort_values("date").reset_index(drop=True)
    late = make_bars(n=20, seed=3, start=str(aaa["date"][20].date()))
    frames = {"AAA": aaa, "BBB": bbb, "LATE": late}
    for sym, frame in frames.items():
        ingest_file(engine, write_generic(tmp_path / f"{sym}.csv", frame))
    return engine, frames


def test_panel_shape_index_and_values(store: tuple) -> None:
    engine, frames = store
    panel = read_panel(engine, ["AAA", "BBB"], field="price")
    assert isinstance(panel.index, pd.DatetimeIndex)
    assert panel.index.name == "date"
    assert panel.index.tolist() == frames["AAA"]["date"].tolist()  # aligned on AAA
    assert list(panel.columns) == ["AAA", "BBB"]
    assert (panel.dtypes == np.float64).all()
    np.testing.assert_array_equal(panel["AAA"].to_numpy(), frames["AAA"]["adj_close"].to_numpy())
    assert np.isnan(panel["BBB"].iloc[10])  # BBB did not trade that day
    assert pd.Timestamp("2020-01-25") not in panel.index  # BBB's extra day is dropped


def test_returns_equal_pct_change_where_both_days_traded(store: tuple) -> None:
    engine, frames = store
    panel = read_panel(engine, ["AAA", "BBB"], field="ret")
    expected = frames["AAA"]["adj_close"].pct_change().to_numpy()
    np.testing.assert_allclose(
        panel["AAA"].to_numpy(), expected, rtol=0, atol=1e-12, equal_nan=True
    )


def test_returns_across_gaps_are_nan_never_multi_day(store: tuple) -> None:
    engine, frames = store
    ret = read_panel(engine, ["AAA", "BBB"], field="ret")["BBB"]
    days = frames["AAA"]["date"]
    assert np.isnan(ret[days[10]])  # missing day
    assert np.isnan(ret[days[11]])  # return from day 9 to day 11 spans two days
    assert not np.isnan(ret[days[12]])
    # the Saturday row sits between Friday (day 17) and Monday (day 18): Monday's return
    # covers Saturday -> Monday only, not the calendar's Friday -> Monday
    assert np.isnan(ret[days[18]])
    assert not np.isnan(ret[days[17]])
    nxt = read_panel(engine, ["AAA", "BBB"], field="next_ret")["BBB"]
    assert np.isnan(nxt[days[9]])  # next row is two calendar days later
    assert np.isnan(nxt[days[17]])  # next row is the Saturday
    b = frames["BBB"].set_index("date")["adj_close"]
    assert nxt[days[5]] == pytest.approx(b[days[6]] / b[days[5]] - 1, abs=1e-15)


def test_align_to_another_symbol(store: tuple) -> None:
    engine, frames = store
    panel = read_panel(engine, ["AAA"], field="close", align_to="BBB")
    assert panel.index.tolist() == frames["BBB"]["date"].tolist()
    assert np.isnan(panel.loc["2020-01-25", "AAA"])


def test_drop_symbol_warns_and_drops_late_starters(store: tuple) -> None:
    engine, frames = store
    with pytest.warns(UserWarning, match=r"LATE \(2020-01-29\)"):
        panel = read_panel(engine, ["AAA", "LATE"], field="ret")
    assert list(panel.columns) == ["AAA"]
    # a window that starts after LATE's first day keeps it, without a warning
    start = frames["LATE"]["date"][0].date()
    panel = read_panel(engine, ["AAA", "LATE"], field="price", start=start)
    assert list(panel.columns) == ["AAA", "LATE"]


def test_start_later_starts_when_every_symbol_has_data(store: tuple) -> None:
    engine, frames = store
    panel = read_panel(engine, ["AAA", "LATE"], field="ret", missing="start_later")
    assert list(panel.columns) == ["AAA", "LATE"]
    # LATE's first return is on its second day
    assert panel.index[0] == frames["LATE"]["date"][1]
    assert not panel.iloc[0].isna().any()


def test_keep_leaves_leading_nan(store: tuple) -> None:
    engine, _ = store
    panel = read_panel(engine, ["AAA", "LATE"], field="close", missing="keep")
    assert panel["LATE"].iloc[:20].isna().all()
    assert panel["LATE"].iloc[20:].notna().all()


def test_ffill_fills_prices_within_limit_never_returns_never_backwards(store: tuple) -> None:
    engine, frames = store
    days = frames["AAA"]["date"]
    filled = read_panel(engine, ["AAA", "BBB", "LATE"], "close", missing="keep", ffill_limit=1)
    b = frames["BBB"].set_index("date")["close"]
    assert filled.loc[days[10], "BBB"] == b[days[9]]  # carried forward one day
    assert filled["LATE"].iloc[:20].isna().all()  # nothing from the future
    ret = read_panel(engine, ["AAA", "BBB"], "ret", ffill_limit=5)
    assert np.isnan(ret.loc[days[10], "BBB"])


def test_window_and_errors(store: tuple) -> None:
    engine, frames = store
    days = frames["AAA"]["date"]
    panel = read_panel(engine, ["AAA"], "volume", start=days[3].date(), end=str(days[6].date()))
    assert panel.index.tolist() == days[3:7].tolist()
    assert panel["AAA"].tolist() == frames["AAA"]["volume"][3:7].astype(float).tolist()
    with pytest.raises(DataError, match=r"unknown symbol.*NOPE, ZZZ"):
        read_panel(engine, ["AAA", "NOPE", "ZZZ"])
    with pytest.raises(DataError, match="unknown field 'vwap'"):
        read_panel(engine, ["AAA"], field="vwap")
    with pytest.raises(DataError, match="missing-data policy 'bfill'"):
        read_panel(engine, ["AAA"], missing="bfill")
    with pytest.raises(DataError, match="no trading day"):
        read_panel(engine, ["AAA"], start="2030-01-01")
    with pytest.raises(DataError, match="at least one symbol"):
        read_panel(engine, [])
