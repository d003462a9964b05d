"""The long-short book against a slow day-by-day loop; flat days, delisting, canaries."""

from __future__ import annotations

import math

import numpy as np
import pytest

from lstm_madness.errors import ConfigError, DataError
from lstm_madness.evaluation.backtest import sharpe_ratio
from lstm_madness.evaluation.long_short import (
    BOOK_LABEL,
    LONG_MINUS_SHORT_LABEL,
    equal_weights,
    long_short_backtest,
    long_short_weights,
)


def _slow(pred, real, k, cost_bps, borrow_bps):
    """Day by day, member by member: weights, net returns, legs, buy-and-hold."""
    D, S = pred.shape
    w = np.zeros((D, S))
    hold = np.zeros((D, S))
    net, long_leg, short_leg, hold_net, flat = [], [], [], [], []
    prev, prev_hold = np.zeros(S), np.zeros(S)
    rate = cost_bps / 1e4
    for t in range(D):
        scored = [j for j in range(S) if np.isfinite(pred[t, j])]
        ranked = sorted(scored, key=lambda j: (pred[t, j], j))
        values = {pred[t, j] for j in scored}
        if len(scored) >= 2 * k and len(values) > 1:
            for j in ranked[:k]:
                w[t, j] = -1 / (2 * k)
            for j in ranked[-k:]:
                w[t, j] = 1 / (2 * k)
            flat.append(False)
        else:
            flat.append(True)
        for j in scored:
            hold[t, j] = 1 / len(scored)
        earned = [0.0 if not np.isfinite(real[t, j]) else real[t, j] for j in range(S)]
        gross_long = sum(max(w[t, j], 0) * earned[j] for j in range(S))
        gross_short = sum(min(w[t, j], 0) * earned[j] for j in range(S))
        trade_long = sum(abs(max(w[t, j], 0) - max(prev[j], 0)) for j in range(S))
        trade_short = sum(abs(min(w[t, j], 0) - min(prev[j], 0)) for j in range(S))
        borrow = borrow_bps / 1e4 / 252 * sum(max(-w[t, j], 0) for j in range(S))
        net.append(gross_long + gross_short - (trade_long + trade_short) * rate - borrow)
        long_leg.append(2 * (gross_long - trade_long * rate))
        short_leg.append(2 * (gross_short - trade_short * rate - borrow))
        hold_gross = sum(hold[t, j] * earned[j] for j in range(S))
        hold_trade = sum(abs(hold[t, j] - prev_hold[j]) for j in range(S))
        hold_net.append(hold_gross - hold_trade * rate)
        prev, prev_hold = w[t].copy(), hold[t].copy()
    return w, np.array(net), np.array(long_leg), np.array(short_leg), np.array(hold_net), flat


def _inputs(seed: int = 0, D: int = 60, S: int = 9):
    rng = np.random.default_rng(seed)
    pred = rng.normal(size=(D, S))
    pred[rng.random((D, S)) < 0.15] = np.nan  # not scored
    pred[5, :] = np.nan
    pred[5, :3] = [1.0, 2.0, 3.0]  # too few members for k = 2
    pred[9] = np.where(np.isfinite(pred[9]), 0.25, np.nan)  # no ranking
    pred[12, :4] = 7.0  # ties at the top are broken by column order
    real = rng.normal(0.0, 0.02, (D, S))
    real[20, np.flatnonzero(np.isfinite(pred[20]))[:2]] = np.nan  # delisted, last price kept
    return pred, real


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize(("k", "cost", "borrow"), [(2, 0.0, 0.0), (2, 10.0, 50.0), (3, 5.0, 0.0)])
def test_matches_slow_loop(seed: int, k: int, cost: float, borrow: float) -> None:
    pred, real = _inputs(seed)
    res = long_short_backtest(pred, real, top_k=k, cost_bps=cost, short_borrow_bps=borrow)
    w, net, long_leg, short_leg, hold_net, flat = _slow(pred, real, k, cost, borrow)
    np.testing.assert_allclose(res.book.weights, w)
    np.testing.assert_allclose(res.net_returns, net, atol=1e-15)
    np.testing.assert_allclose(res.book.leg("long"), long_leg, atol=1e-15)
    np.testing.assert_allclose(res.book.leg("short"), short_leg, atol=1e-15)
    np.testing.assert_allclose(res.buy_and_hold.net_returns, hold_net, atol=1e-15)
    assert res.flat.tolist() == flat and res.days_flat == sum(flat) >= 2
    np.testing.assert_array_equal(res.members, np.isfinite(pred).sum(axis=1))
    # the book is the mean of its legs; dollar-neutral, gross exposure 1 when positioned
    np.testing.assert_allclose(res.net_returns, (long_leg + short_leg) / 2, atol=1e-15)
    on = ~res.flat
    np.testing.assert_allclose(res.book.weights[on].sum(axis=1), 0.0, atol=1e-15)
    np.testing.assert_allclose(res.book.exposure[on], 1.0)
    assert res.long_sharpe == pytest.approx(sharpe_ratio(long_leg))
    assert res.short_sharpe == pytest.approx(sharpe_ratio(short_leg))


def test_short_leg_is_reported_as_earned() -> None:
    pred = np.array([[3.0, 2.0, 1.0, 0.0]] * 3)
    real = np.array([[0.01, 0.0, 0.0, -0.02]] * 3)  # the shorted member falls 2 %
    res = long_short_backtest(pred, real, top_k=1, cost_bps=0.0)
    np.testing.assert_allclose(res.book.leg("short"), 0.02)
    np.testing.assert_allclose(res.book.leg("long"), 0.01)
    np.testing.assert_allclose(res.net_returns, 0.015)


def test_turnover_costs_and_borrow_by_hand() -> None:
    pred = np.array([[1.0, 2.0, 3.0, 4.0], [4.0, 3.0, 2.0, 1.0], [4.0, 3.0, 2.0, 1.0]])
    real = np.zeros((3, 4))
    res = long_short_backtest(pred, real, top_k=1, cost_bps=10.0, short_borrow_bps=252.0)
    # enter (1), flip both legs (2), hold (0); borrow 0.5 of capital at 1 bp a day
    np.testing.assert_allclose(res.book.turnover, [1.0, 2.0, 0.0])
    np.testing.assert_allclose(res.net_returns, [-1e-3 - 0.5e-4, -2e-3 - 0.5e-4, -0.5e-4])


def test_both_leg_conventions_by_hand() -> None:
    """Fischer & Krauss's long − short (each leg 100% of capital) is twice the book (each
    leg 1/2): before costs, and after costs of cost_bps per half-turn of each leg."""
    pred = np.array([[1.0, 2.0, 3.0, 4.0], [4.0, 3.0, 2.0, 1.0], [4.0, 3.0, 2.0, 1.0]])
    real = np.array(
        [[-0.01, 0.0, 0.0, 0.02], [0.01, 0.0, 0.0, -0.03], [0.0, 0.01, 0.01, 0.0]]
    )  # long col 3 / short col 0, then both legs flipped, then held
    res = long_short_backtest(pred, real, top_k=1, cost_bps=5.0)
    long_minus_short = np.array([0.02 - -0.01, 0.01 - -0.03, 0.0 - 0.0])
    half_turns = np.array([2.0, 4.0, 0.0])  # open both legs; replace both; hold
    np.testing.assert_allclose(res.long_minus_short(net=False), long_minus_short, atol=1e-15)
    np.testing.assert_allclose(
        res.long_minus_short(), long_minus_short - 5e-4 * half_turns, atol=1e-15
    )
    m = res.mean_daily
    assert m["mean_daily_long_minus_short_gross"] == pytest.approx(0.07 / 3, abs=1e-15)
    assert m["mean_daily_long_minus_short_net"] == pytest.approx((0.07 - 3e-3) / 3, abs=1e-15)
    assert m["mean_daily_book_gross"] == pytest.approx(0.035 / 3, abs=1e-15)
    assert m["mean_daily_book_net"] == pytest.approx((0.035 - 1.5e-3) / 3, abs=1e-15)
    assert m["mean_daily_long_minus_short_gross"] == pytest.approx(
        2 * m["mean_daily_book_gross"], abs=1e-15
    )
    # FK: 0.46 % a day before costs at full turnover is 0.46 % - 4 × 5 bps = 0.26 % after
    assert (long_minus_short - res.long_minus_short())[1] == pytest.approx(4 * 5e-4)


@pytest.mark.parametrize(("cost", "borrow"), [(0.0, 0.0), (5.0, 0.0), (10.0, 50.0)])
def test_long_minus_short_is_twice_the_book(cost: float, borrow: float) -> None:
    pred, real = _inputs(3)
    res = long_short_backtest(pred, real, top_k=2, cost_bps=cost, short_borrow_bps=borrow)
    np.testing.assert_allclose(res.long_minus_short(net=False), 2 * res.book.gross_returns)
    np.testing.assert_allclose(res.long_minus_short(), 2 * res.net_returns, atol=1e-15)
    m = res.mean_daily
    assert m["mean_daily_book_net"] == pytest.approx(res.net_returns.mean(), abs=1e-15)
    assert m["mean_daily_long_minus_short_net"] == pytest.approx(
        2 * m["mean_daily_book_net"], abs=1e-15
    )
    assert set(m) <= set(res.to_dict())
    text = res.summary()
    assert BOOK_LABEL in text and LONG_MINUS_SHORT_LABEL in text


def test_delisted_position_earns_nothing_and_is_counted() -> None:
    pred = np.array([[1.0, 2.0, 3.0, 4.0]])
    real = np.array([[0.05, 0.0, 0.0, np.nan]])  # the long (col 3) has no next price
    res = long_short_backtest(pred, real, top_k=1, cost_bps=0.0)
    assert res.book.lost_returns == 1
    np.testing.assert_allclose(res.book.gross_returns, -0.5 * 0.05)


def test_zero_forecast_never_trades() -> None:
    real = np.random.default_rng(1).normal(0, 0.01, (50, 12))
    res = long_short_backtest(np.zeros((50, 12)), real, top_k=5)
    assert res.days_flat == 50 and not res.book.weights.any()
    assert res.book.net.sharpe == 0.0 and res.break_even_cost() == math.inf
    assert res.break_even_vs_buy_hold() == math.inf


def test_lookahead_canary_realized_after_t_changes_nothing_up_to_t() -> None:
    pred, real = _inputs(4, D=80)
    t = 40
    moved = real.copy()
    moved[t + 1 :] = np.random.default_rng(5).normal(0, 0.3, moved[t + 1 :].shape)
    a = long_short_backtest(pred, real, top_k=2, cost_bps=5.0, short_borrow_bps=30.0)
    b = long_short_backtest(pred, moved, top_k=2, cost_bps=5.0, short_borrow_bps=30.0)
    np.testing.assert_array_equal(a.book.weights, b.book.weights)
    np.testing.assert_array_equal(a.net_returns[: t + 1], b.net_returns[: t + 1])
    # predictions after t do not move the weights at or before t either
    later = pred.copy()
    later[t + 1 :] = -later[t + 1 :]
    np.testing.assert_array_equal(long_short_weights(later, 2)[0][: t + 1], a.book.weights[: t + 1])


def test_break_even_vs_buy_hold_equalises_sharpe_with_buy_and_hold() -> None:
    rng = np.random.default_rng(7)
    real = rng.normal(0.0003, 0.01, (600, 20))
    pred = real + rng.normal(0, 0.02, real.shape)  # an informative forecast
    res = long_short_backtest(pred, real, top_k=4, cost_bps=0.0)
    cost = res.break_even_vs_buy_hold()
    assert 0 < cost < math.inf
    at = long_short_backtest(pred, real, top_k=4, cost_bps=cost)
    assert at.book.net.sharpe == pytest.approx(at.buy_and_hold.net.sharpe, abs=1e-6)


def test_break_even_cost_zeroes_the_books_mean_net_return() -> None:
    rng = np.random.default_rng(7)
    real = rng.normal(0.0003, 0.01, (600, 20))
    pred = real + rng.normal(0, 0.02, real.shape)
    res = long_short_backtest(pred, real, top_k=4, cost_bps=0.0, short_borrow_bps=50.0)
    cost = res.break_even_cost()
    assert 0 < cost < math.inf
    at = long_short_backtest(pred, real, top_k=4, cost_bps=cost, short_borrow_bps=50.0)
    assert at.book.net_returns.mean() == pytest.approx(0.0, abs=1e-15)


def test_summary_and_dict() -> None:
    pred, real = _inputs(0)
    res = long_short_backtest(pred, real, top_k=2)
    out = res.to_dict()
    assert out["top_k"] == 2 and out["days_flat"] == res.days_flat
    assert {"long_sharpe", "short_sharpe", "members_mean", "net", "buy_and_hold"} <= set(out)
    assert out["net"]["turnover"] == pytest.approx(res.book.turnover.mean())
    assert "Long-short top/bottom 2" in res.summary()


def test_equal_weights() -> None:
    scored = np.array([[True, True, False], [False, False, False]])
    np.testing.assert_allclose(equal_weights(scored), [[0.5, 0.5, 0.0], [0.0, 0.0, 0.0]])


def test_bad_inputs() -> None:
    pred, real = _inputs(0)
    with pytest.raises(ConfigError, match="top_k"):
        long_short_backtest(pred, real, top_k=0)
    with pytest.raises(DataError, match="differ in shape"):
        long_short_backtest(pred, real[:, 1:])
    with pytest.raises(DataError, match="infinite"):
        long_short_backtest(pred, np.where(np.isnan(real), np.inf, real))
    with pytest.raises(ConfigError, match=">= 0"):
        long_short_backtest(pred, real, short_borrow_bps=-1.0)
    with pytest.raises(DataError, match="dates, members"):
        long_short_backtest(pred[0], real[0])
