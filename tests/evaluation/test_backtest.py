"""Backtest math: hand-computed cases, a reference Python loop, and properties."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from lstm_madness.errors import ConfigError, DataError
from lstm_madness.evaluation.backtest import (
    backtest,
    break_even_cost,
    break_even_vs_benchmark,
    buy_and_hold,
    performance,
    positions_from_predictions,
    sharpe_ratio,
)

# --------------------------------------------------------------------------- reference loop


def reference_loop(pos, r, cost_bps, slippage_bps=0.0, rf=0.0):
    """Day-by-day backtest written as plainly as possible (the vectorized code must match)."""
    c = (cost_bps + slippage_bps) / 1e4
    prev, wealth, peak = 0.0, 1.0, 1.0
    net, gross, turn, dd = [], [], [], []
    for p, x in zip(pos, r, strict=True):
        t = abs(p - prev)
        g = p * x
        nr = g - t * c
        wealth *= 1 + nr
        peak = max(peak, wealth)
        net.append(nr)
        gross.append(g)
        turn.append(t)
        dd.append(wealth / peak - 1)
        prev = p
    n = len(net)
    rf_d = (1 + rf) ** (1 / 252) - 1
    ex = [v - rf_d for v in net]
    mean = sum(ex) / n
    sd = math.sqrt(sum((v - mean) ** 2 for v in ex) / (n - 1))
    down = math.sqrt(sum(min(v, 0) ** 2 for v in ex) / n)
    # deepest drawdown: its peak (last day at a high before it) and recovery
    full = [0.0, *dd]
    trough = min(range(len(full)), key=lambda i: (full[i], i))
    pk = max(i for i in range(trough + 1) if full[i] >= 0)
    rec = next((i for i in range(trough, len(full)) if full[i] >= 0), len(full) - 1)
    # holding periods: runs of identical non-zero positions
    runs, cur, length = [], None, 0
    for p in pos:
        if p == cur:
            length += 1
        else:
            if cur not in (None, 0):
                runs.append(length)
            cur, length = p, 1
    if cur not in (None, 0):
        runs.append(length)
    invested = [nr for p, nr in zip(pos, net, strict=True) if p != 0]
    total = wealth - 1
    return {
        "net": net,
        "gross": gross,
        "turnover": turn,
        "total_return": total,
        "cagr": wealth ** (252 / n) - 1,
        "volatility": math.sqrt(sum((v - sum(net) / n) ** 2 for v in net) / (n - 1) * 252),
        "sharpe": mean / sd * math.sqrt(252),
        "sortino": mean / down * math.sqrt(252),
        "max_drawdown": min(dd),
        "max_drawdown_days": (rec - pk) if min(dd) < 0 else 0,
        "win_rate": sum(v > 0 for v in invested) / len(invested),
        "mean_turnover": sum(turn) / n,
        "exposure": sum(abs(p) for p in pos) / n,
        "avg_holding_days": sum(runs) / len(runs),
    }


@pytest.mark.parametrize("seed", range(8))
@pytest.mark.parametrize("rule", ["sign", "threshold", "proportional"])
def test_matches_reference_loop(seed: int, rule: str) -> None:
    rng = np.random.default_rng(seed)
    n = 300
    r = rng.normal(0.0003, 0.012, n)
    pred = rng.normal(0, 0.01, n)
    pos = positions_from_predictions(pred, rule=rule, threshold=0.005, cap=1.5)
    res = backtest(pos, r, cost_bps=7.0, slippage_bps=2.0, risk_free=0.02)
    ref = reference_loop(pos.tolist(), r.tolist(), 7.0, 2.0, rf=0.02)
    np.testing.assert_allclose(res.net_returns, ref["net"], rtol=0, atol=1e-15)
    np.testing.assert_allclose(res.gross_returns, ref["gross"], rtol=0, atol=1e-15)
    np.testing.assert_allclose(res.turnover, ref["turnover"], rtol=0, atol=1e-15)
    p = res.net
    for key in (
        "total_return",
        "cagr",
        "volatility",
        "sharpe",
        "sortino",
        "max_drawdown",
        "win_rate",
        "exposure",
        "avg_holding_days",
    ):
        assert getattr(p, key) == pytest.approx(ref[key], rel=1e-10, abs=1e-13), key
    assert p.turnover == pytest.approx(ref["mean_turnover"], rel=1e-12)
    assert p.max_drawdown_days == ref["max_drawdown_days"]
    assert p.calmar == pytest.approx(ref["cagr"] / abs(ref["max_drawdown"]), rel=1e-10)


# --------------------------------------------------------------------------- hand-computed


def test_hand_computed_small_case() -> None:
    pos = np.array([1.0, 1.0, -1.0, 0.0])
    r = np.array([0.01, -0.02, 0.03, 0.01])
    res = backtest(pos, r, cost_bps=10.0)
    np.testing.assert_allclose(res.turnover, [1, 0, 2, 1])
    np.testing.assert_allclose(res.gross_returns, [0.01, -0.02, -0.03, 0.0])
    np.testing.assert_allclose(res.net_returns, [0.009, -0.02, -0.032, -0.001])
    total = 1.009 * 0.98 * 0.968 * 0.999 - 1
    assert res.net.total_return == pytest.approx(total)
    assert res.gross.total_return == pytest.approx(1.01 * 0.98 * 0.97 - 1)
    # peak 1.009 after day 0, never regained: drawdown lasts from day 0 to the end (3 days)
    assert res.net.max_drawdown == pytest.approx((1 + total) / 1.009 - 1)
    assert res.net.max_drawdown_days == 3
    assert res.net.exposure == pytest.approx(0.75)
    assert res.net.turnover == pytest.approx(1.0)
    assert res.net.win_rate == pytest.approx(1 / 3)  # of the 3 invested days only day 0 gains
    assert res.net.avg_holding_days == pytest.approx(1.5)  # runs: [1, 1] then [-1]


def test_drawdown_duration_with_recovery() -> None:
    r = np.array([0.10, -0.10, 0.05, 0.10, 0.01])  # 1.1, .99, 1.0395, 1.14345 (new peak)
    p = performance(r)
    assert p.max_drawdown == pytest.approx(0.99 / 1.1 - 1)
    assert p.max_drawdown_days == 3  # peak day 0 -> recovered day 3
    assert p.longest_underwater_days == 2


def test_sharpe_and_cagr_formulas() -> None:
    r = np.array([0.01, -0.005, 0.002, 0.004, -0.001])
    assert sharpe_ratio(r) == pytest.approx(r.mean() / r.std(ddof=1) * math.sqrt(252))
    rf_d = 1.03 ** (1 / 252) - 1
    assert sharpe_ratio(r, 0.03) == pytest.approx((r - rf_d).mean() / r.std(ddof=1) * 252**0.5)
    assert performance(r).cagr == pytest.approx(np.prod(1 + r) ** (252 / 5) - 1)


def test_buy_and_hold_pays_one_entry_cost() -> None:
    r = np.array([0.01, 0.02, -0.01])
    bh = buy_and_hold(r, cost_bps=10)
    np.testing.assert_allclose(bh.net_returns, [0.009, 0.02, -0.01])
    assert bh.net.exposure == 1.0
    assert bh.net.avg_holding_days == 3


# --------------------------------------------------------------------------- position rules


def test_position_rules_regression() -> None:
    pred = np.array([0.02, -0.001, 0.0, 0.004, -0.03])
    np.testing.assert_array_equal(positions_from_predictions(pred, rule="sign"), [1, -1, 0, 1, -1])
    np.testing.assert_array_equal(
        positions_from_predictions(pred, rule="long_flat"), [1, 0, 0, 1, 0]
    )
    np.testing.assert_array_equal(
        positions_from_predictions(pred, rule="threshold", threshold=0.003), [1, 0, 0, 1, -1]
    )
    np.testing.assert_allclose(
        positions_from_predictions(pred, rule="proportional", scale=0.01, cap=1.0),
        [1.0, -0.1, 0.0, 0.4, -1.0],
    )


def test_position_rules_classification() -> None:
    prob = np.array([0.7, 0.45, 0.5, 0.52])
    kw = dict(task="classification")
    np.testing.assert_array_equal(
        positions_from_predictions(prob, rule="sign", **kw), [1, -1, 0, 1]
    )
    np.testing.assert_array_equal(
        positions_from_predictions(prob, rule="long_flat", **kw), [1, 0, 0, 1]
    )
    np.testing.assert_array_equal(
        positions_from_predictions(prob, rule="threshold", threshold=0.1, **kw), [1, 0, 0, 0]
    )
    np.testing.assert_allclose(
        positions_from_predictions(prob, rule="proportional", scale=0.1, cap=1.0, **kw),
        [1.0, -0.5, 0.0, 0.2],
    )


def test_proportional_default_scale_is_causal() -> None:
    rng = np.random.default_rng(3)
    pred = rng.normal(0, 0.01, 200)
    pos = positions_from_predictions(pred, rule="proportional", cap=2.0)
    changed = pred.copy()
    changed[120:] *= 50  # the future changes ...
    pos2 = positions_from_predictions(changed, rule="proportional", cap=2.0)
    np.testing.assert_array_equal(pos[:120], pos2[:120])  # ... the past does not
    assert np.all(np.abs(pos) <= 2.0)
    rms = np.sqrt(np.cumsum(pred**2) / np.arange(1, 201))
    np.testing.assert_allclose(pos, np.clip(pred / rms, -2, 2))


def test_bad_inputs_raise() -> None:
    with pytest.raises(ConfigError):
        positions_from_predictions(np.zeros(3), rule="martingale")
    with pytest.raises(ConfigError):
        positions_from_predictions(np.zeros(3), task="ranking")
    with pytest.raises(DataError):
        positions_from_predictions(np.array([0.1, np.nan]))
    with pytest.raises(DataError):
        backtest(np.ones(3), np.ones(4))
    with pytest.raises(ConfigError):
        backtest(np.ones(3), np.ones(3), cost_bps=-1)


# --------------------------------------------------------------------------- properties

returns_st = arrays(
    np.float64,
    st.integers(5, 60),
    elements=st.floats(-0.2, 0.2, allow_nan=False, allow_subnormal=False),
)


@settings(max_examples=60, deadline=None)
@given(returns_st, st.data(), st.floats(0, 50), st.floats(0, 50))
def test_higher_costs_never_raise_net_returns(r, data, c1, c2) -> None:
    pos = data.draw(arrays(np.float64, r.size, elements=st.sampled_from([-1.0, 0.0, 0.5, 1.0])))
    lo, hi = sorted((c1, c2))
    a, b = backtest(pos, r, cost_bps=lo), backtest(pos, r, cost_bps=hi)
    assert np.all(b.net_returns <= a.net_returns)
    assert b.net.total_return <= a.net.total_return + 1e-15


@settings(max_examples=40, deadline=None)
@given(returns_st, st.floats(0, 100))
def test_zero_positions_zero_pnl(r, cost) -> None:
    res = backtest(np.zeros_like(r), r, cost_bps=cost)
    assert np.all(res.net_returns == 0) and res.net.total_return == 0
    assert res.net.turnover == 0 and math.isnan(res.net.win_rate)
    assert break_even_cost(res) == math.inf
    assert break_even_vs_benchmark(res) == math.inf


@settings(max_examples=40, deadline=None)
@given(
    arrays(np.float64, st.integers(5, 60), elements=st.floats(0.001, 0.1) | st.floats(-0.1, -0.001))
)
def test_perfect_foresight_positive_pnl(r) -> None:
    pos = positions_from_predictions(r, rule="sign")  # the prediction is the return itself
    res = backtest(pos, r, cost_bps=0.0)
    assert np.all(res.gross_returns > 0)
    assert res.gross.total_return > 0 and res.gross.win_rate == 1.0


def test_look_ahead_canary() -> None:
    """Prediction dated t = the return that ended at close t (known then). Trading it on
    ``asset_returns[t]`` (close t -> t+1) is honest; using the prediction dated t+1 for day
    t is the classic shifted-the-wrong-way bug and looks like perfect foresight."""
    rng = np.random.default_rng(11)
    ret = rng.normal(0.0, 0.01, 2001)  # ret[t]: close t-1 -> close t
    pred = ret[:-1]  # prediction dated t (t = 0..1999): "tomorrow = today" (persistence)
    asset = ret[1:]  # asset_returns[t] = ret[t+1]
    honest = backtest(positions_from_predictions(pred), asset, cost_bps=0)
    leaked = backtest(positions_from_predictions(ret[1:]), asset, cost_bps=0)  # dated t+1
    assert leaked.gross.win_rate == 1.0 and leaked.gross.sharpe > 20
    assert abs(honest.gross.win_rate - 0.5) < 0.05 and abs(honest.gross.sharpe) < 1.5
    # shifting the predictions one day later = the strategy of the lagged signal
    later = backtest(positions_from_predictions(pred[:-1]), asset[1:], cost_bps=0)
    np.testing.assert_allclose(later.gross_returns, np.sign(ret[:-2]) * ret[2:])


# --------------------------------------------------------------------------- break-even


def _beats(pos, r, c_bps) -> float:
    """Net Sharpe minus buy-and-hold's at cost ``c_bps`` (negative = a rebate)."""
    s, b = backtest(pos, r, cost_bps=0), buy_and_hold(r, cost_bps=0)
    c = c_bps / 1e4
    return sharpe_ratio(s.gross_returns - c * s.turnover) - sharpe_ratio(
        b.gross_returns - c * b.turnover
    )


def test_break_even_vs_buy_hold_is_where_sharpes_cross() -> None:
    rng = np.random.default_rng(5)
    r = rng.normal(0.0002, 0.01, 1000)
    pred = 0.3 * r + rng.normal(0, 0.01, 1000)
    pos = positions_from_predictions(pred)
    res = backtest(pos, r)
    be = break_even_vs_benchmark(res)
    assert 0 < be < math.inf
    assert _beats(pos, r, be) == pytest.approx(0.0, abs=1e-8)
    assert _beats(pos, r, be * 0.9) > 0 > _beats(pos, r, be * 1.1)


def test_break_even_vs_buy_hold_when_never_beating_is_not_positive() -> None:
    rng = np.random.default_rng(6)
    r = rng.normal(0.0005, 0.01, 1000)
    pos = -positions_from_predictions(r)  # always wrong
    be = break_even_vs_benchmark(backtest(pos, r))
    assert be <= 0
    if math.isfinite(be):  # the rebate needed makes them equal
        assert _beats(pos, r, be) == pytest.approx(0.0, abs=1e-8)


def test_break_even_cost_is_where_the_mean_net_return_is_zero() -> None:
    """The cost at which the strategy stops making money, not where it stops beating
    buy-and-hold: a book that earns before costs but less than buy-and-hold's Sharpe has a
    positive break-even cost and a negative one against buy-and-hold."""
    rng = np.random.default_rng(8)
    r = rng.normal(0.0008, 0.01, 1500)  # a strong drift: buy-and-hold is hard to beat
    pos = np.where(rng.random(r.size) < 0.7, 1.0, -1.0)  # long 70% of the days, no skill
    res = backtest(pos, r, cost_bps=5.0)
    assert res.gross.total_return > 0
    be = break_even_cost(res)
    assert 0 < be < math.inf
    at = backtest(res.positions, r, cost_bps=be)
    assert at.net_returns.mean() == pytest.approx(0.0, abs=1e-15)
    assert backtest(res.positions, r, cost_bps=0.9 * be).net_returns.mean() > 0
    assert backtest(res.positions, r, cost_bps=1.1 * be).net_returns.mean() < 0
    assert break_even_vs_benchmark(res) < 0 < be  # it does not beat buy-and-hold even free
    losing = backtest(-res.positions, r)
    assert break_even_cost(losing) == pytest.approx(-be)  # a rebate would be needed
