"""Sub-period figures of universe books: a tiny hand-built book, computed directly."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from lstm_madness.errors import ConfigError
from lstm_madness.evaluation.cross_section_stats import panel_forecast_metrics
from lstm_madness.evaluation.long_short import long_short_backtest
from lstm_madness.evaluation.performance import sharpe_ratio
from lstm_madness.evaluation.periods import (
    COLUMNS,
    EQUAL_WEIGHT,
    MembershipCounts,
    period_figures,
)

COST, BORROW = 10.0, 50.0  # bps per unit of turnover; bps a year on the short exposure
DATES = pd.bdate_range("2015-12-28", periods=8)  # 4 days in 2015, 4 in 2016
# 3 members, top_k = 1: long the highest prediction, short the lowest
PRED = np.array(
    [
        [0.3, 0.1, 0.2],
        [0.3, 0.1, 0.2],
        [0.1, 0.3, 0.2],
        [0.1, np.nan, 0.2],  # member 1 not scored: long 2, short 0
        [0.2, 0.1, 0.3],
        [0.2, 0.1, 0.3],
        [0.3, 0.2, 0.1],
        [0.3, 0.2, 0.1],
    ]
)
REAL = np.array(
    [
        [0.010, -0.020, 0.003],
        [-0.004, 0.006, 0.001],
        [0.002, 0.011, -0.005],
        [0.007, np.nan, -0.003],
        [0.001, -0.002, 0.004],
        [-0.006, 0.003, 0.002],
        [0.005, -0.001, np.nan],  # the short's return is missing: it earns 0
        [0.003, 0.002, -0.004],
    ]
)
LONG = [0, 0, 1, 2, 2, 2, 0, 0]
SHORT = [1, 1, 0, 0, 1, 1, 2, 2]


def _hand() -> dict[str, np.ndarray]:
    """The book's daily series written out by hand (statistics.md §16, §18)."""
    w = np.zeros_like(PRED)
    for t, (lo, sh) in enumerate(zip(LONG, SHORT, strict=True)):
        w[t, lo], w[t, sh] = 0.5, -0.5
    earned = np.nan_to_num(REAL)
    gross = np.array([0.5 * earned[t, LONG[t]] - 0.5 * earned[t, SHORT[t]] for t in range(8)])
    turnover = np.abs(np.diff(w, axis=0, prepend=0.0)).sum(axis=1)
    net = gross - COST / 1e4 * turnover - BORROW / 1e4 / 252 * 0.5
    return {"w": w, "gross": gross, "net": net, "turnover": turnover}


def _figures(breaks=("2016-01-01",), membership=None):
    realized = REAL
    labels = realized - np.nanmean(realized, axis=1, keepdims=True)
    kw = dict(top_k=1, cost_bps=COST, slippage_bps=0.0, short_borrow_bps=BORROW)
    books = {
        "lstm": long_short_backtest(PRED, realized, **kw),
        "baseline:reversal": long_short_backtest(-PRED, realized, **kw),
    }
    preds = {"lstm": PRED, "baseline:reversal": -PRED}
    figures = period_figures(
        DATES.to_numpy(), books, breaks, y_true=labels, predictions=preds, membership=membership
    )
    return figures, books, labels


def _row(figures, period: str, book: str) -> dict:
    (row,) = [r for r in figures.rows if r["period"] == period and r["book"] == book]
    return row


def test_sub_period_figures_equal_direct_computations_from_the_sliced_series() -> None:
    figures, _, labels = _figures()
    hand = _hand()
    assert [r["period"] for r in figures.rows[::3]] == [
        "[2015-12-28, 2016-01-01)",
        "[2016-01-01, 2016-01-06]",
        "all",
    ]
    for period, days in (("[2015-12-28, 2016-01-01)", slice(0, 4)), ("all", slice(0, 8))):
        row = _row(figures, period, "lstm")
        gross, net = hand["gross"][days], hand["net"][days]
        assert row["days"] == len(gross)
        assert row["mean_daily_book_gross"] == pytest.approx(gross.mean(), abs=1e-15)
        assert row["mean_daily_book_net"] == pytest.approx(net.mean(), abs=1e-15)
        # long − short at 100% per leg: twice the book, before and after costs (§18)
        assert row["mean_daily_long_minus_short_gross"] == pytest.approx(2 * gross.mean())
        assert row["mean_daily_long_minus_short_net"] == pytest.approx(2 * net.mean())
        sr = math.sqrt(252) * net.mean() / net.std(ddof=1)
        assert row["sharpe_net"] == pytest.approx(sr, rel=1e-12)
        # the same Sharpe in both conventions at risk_free 0
        assert sharpe_ratio(2 * net) == pytest.approx(row["sharpe_net"], rel=1e-12)
        assert row["positive_net_days"] == np.mean(net > 0)
        assert row["turnover"] == pytest.approx(hand["turnover"][days].mean(), abs=1e-15)
        # the cost per unit of turnover that sets the mean net return to zero
        after_borrow = gross - BORROW / 1e4 / 252 * 0.5
        c = after_borrow.mean() / hand["turnover"][days].mean()
        assert row["break_even_bps"] == pytest.approx(c * 1e4, rel=1e-12)
        assert (gross - c * hand["turnover"][days] - BORROW / 1e4 / 252 * 0.5).mean() == (
            pytest.approx(0.0, abs=1e-15)
        )
        assert row["members_mean"] == np.isfinite(PRED[days]).sum(axis=1).mean()
    # the second period's first day pays for the switch from the day before's weights
    late = _row(figures, "[2016-01-01, 2016-01-06]", "lstm")
    assert late["turnover"] == pytest.approx(hand["turnover"][4:].mean(), abs=1e-15)
    assert hand["turnover"][4] == 1.0  # short leg 0 -> 1; [0, 0.5] of the mean above
    # hit rate by hand (§11): called up = above the day's mean prediction over scored
    # members, actual up = label > 0; a prediction equal to the mean calls nothing
    hits = n = 0
    for t in range(4):
        ok = np.isfinite(PRED[t]) & np.isfinite(labels[t])
        centre = np.nanmean(PRED[t])
        for s in np.flatnonzero(ok & (PRED[t] != centre)):
            n += 1
            hits += (PRED[t, s] > centre) == (labels[t, s] > 0)
    first = _row(figures, "[2015-12-28, 2016-01-01)", "lstm")
    assert (first["hit_rate"], first["hit_n"]) == (pytest.approx(hits / n), n)


def _hand_hac_t(x: np.ndarray) -> float:
    """Newey–West t of the mean by hand: Bartlett weights, floor(4 (n/100)^(2/9)) lags."""
    x = x[np.isfinite(x)]
    n, m = x.size, x.mean()
    lags = math.floor(4 * (n / 100) ** (2 / 9))
    c = x - m
    lrv = sum(c[t] * c[t] for t in range(n)) / n
    for k in range(1, lags + 1):
        lrv += 2 * (1 - k / (lags + 1)) * sum(c[t] * c[t - k] for t in range(k, n)) / n
    return m / math.sqrt(lrv / n)


def test_t_statistics_and_rank_ic_by_sub_period_equal_hand_computations() -> None:
    from scipy import stats

    realized = REAL
    kw = dict(top_k=1, cost_bps=COST, slippage_bps=0.0, short_borrow_bps=BORROW)
    books = {"lstm": long_short_backtest(PRED, realized, **kw)}
    ic = np.full(len(DATES), np.nan)
    for t in range(len(DATES)):
        ok = np.isfinite(PRED[t]) & np.isfinite(REAL[t])
        if ok.sum() >= 3:
            ic[t] = stats.spearmanr(PRED[t, ok], REAL[t, ok]).statistic
    figures = period_figures(DATES.to_numpy(), books, ("2016-01-01",), daily_rank_ic={"lstm": ic})
    hand = _hand()
    for period, days in (("[2015-12-28, 2016-01-01)", slice(0, 4)), ("all", slice(0, 8))):
        row = _row(figures, period, "lstm")
        assert row["t_gross"] == pytest.approx(_hand_hac_t(hand["gross"][days]), rel=1e-10)
        assert row["t_net"] == pytest.approx(_hand_hac_t(hand["net"][days]), rel=1e-10)
        assert row["rank_ic"] == pytest.approx(np.nanmean(ic[days]), rel=1e-12)
        assert row["rank_ic_t"] == pytest.approx(_hand_hac_t(ic[days]), rel=1e-10)
    assert _row(figures, "all", EQUAL_WEIGHT)["rank_ic"] is None
    # without daily ICs the columns are empty, not invented
    assert _row(_figures()[0], "all", "lstm")["rank_ic"] is None


def test_the_all_rows_are_the_books_own_figures() -> None:
    figures, books, labels = _figures()
    for name, result in books.items():
        row = _row(figures, "all", name)
        for key, value in result.mean_daily.items():
            assert row[key] == value, key
        assert row["sharpe_net"] == result.book.net.sharpe
        assert row["sharpe_gross"] == result.book.gross.sharpe
        assert row["turnover"] == result.book.net.turnover
        assert row["members_mean"] == result.members_mean
        assert row["break_even_bps"] == pytest.approx(result.break_even_cost(), rel=1e-12)
        metrics = panel_forecast_metrics(labels, PRED if name == "lstm" else -PRED, "regression")
        assert (row["hit_rate"], row["hit_n"]) == (metrics["hit_rate"], metrics["hit_n"])
    hold = books["lstm"].buy_and_hold
    row = _row(figures, "all", EQUAL_WEIGHT)
    assert row["sharpe_net"] == hold.net.sharpe and row["turnover"] == hold.net.turnover
    assert row["mean_daily_book_net"] == np.mean(hold.net_returns)
    assert row["mean_daily_long_minus_short_net"] is None and row["hit_rate"] is None
    assert row["break_even_bps"] is None


def test_the_sub_periods_partition_the_test_days() -> None:
    figures, _, _ = _figures(breaks=["2015-12-29", "2016-01-01"])
    frame = figures.to_frame()
    for book, rows in frame.groupby("book"):
        parts, total = rows.iloc[:-1], rows.iloc[-1]
        assert total["period"] == "all" and parts["days"].sum() == total["days"] == 8
        starts = pd.to_datetime(parts["first_day"]).to_numpy()
        ends = pd.to_datetime(parts["last_day"]).to_numpy()
        assert (starts[1:] > ends[:-1]).all()  # disjoint, in order
        inside = [DATES.to_series().between(a, b) for a, b in zip(starts, ends, strict=True)]
        covered = sum(m.sum() for m in inside)
        assert covered == 8  # every day in exactly one part
        mean = (parts["days"] * parts["mean_daily_book_net"]).sum() / 8
        assert mean == pytest.approx(total["mean_daily_book_net"], abs=1e-15), book
        if book != EQUAL_WEIGHT:
            assert parts["hit_n"].sum() == total["hit_n"]


def test_coverage_json_csv_and_text() -> None:
    members = np.array([4, 4, 4, 4, 4, 4, 4, 0])
    priced = np.array([3, 3, 4, 4, 2, 4, 4, 0])
    figures, _, _ = _figures(membership=MembershipCounts(members, priced))
    assert _row(figures, "[2015-12-28, 2016-01-01)", "lstm")["coverage"] == pytest.approx(0.875)
    assert _row(figures, "all", EQUAL_WEIGHT)["coverage"] == pytest.approx(24 / 28)  # day 8: none
    assert _figures()[0].rows[0]["coverage"] is None
    data = json.loads(json.dumps(figures.to_json(), allow_nan=False))
    assert data["breaks"] == ["2016-01-01"] and data["settings"]["top_k"] == 1
    assert list(data["labels"]) == [c[0] for c in COLUMNS] == list(figures.to_frame().columns)
    assert len(data["rows"]) == 9 and data["rows"][2]["mean_daily_long_minus_short_net"] is None
    text = figures.summary()
    for _, header, _, label in COLUMNS[4:]:
        assert f"  {header}: {label}" in text
    assert "all: 2015-12-28 → 2016-01-06, 8 test days, coverage 85.7%" in text


@pytest.mark.parametrize(
    ("breaks", "message"),
    [
        (["2016-13-01"], "must be dates"),
        (["2016-01-01", "2015-12-29"], "ascending"),
        (["2015-12-01"], r"\[2015-12-28, 2015-12-01\) has no test day"),
        (["2015-12-29", "2015-12-30", "2015-12-30"], "ascending and distinct"),
        (["2016-01-02", "2016-01-03"], r"\[2016-01-02, 2016-01-03\) has no test day"),
    ],
)
def test_bad_breaks_are_refused(breaks, message) -> None:
    with pytest.raises(ConfigError, match=message):
        _figures(breaks=breaks)
