"""The one backtest core: a one-asset backtest and the long-short book are both a Book."""

from __future__ import annotations

import numpy as np
import pytest

from lstm_madness.evaluation.backtest import BacktestResult, backtest, break_even_cost
from lstm_madness.evaluation.book import Book
from lstm_madness.evaluation.long_short import long_short_backtest
from lstm_madness.evaluation.performance import holding_periods, performance
from lstm_madness.evaluation.positions import positions_from_predictions
from lstm_madness.evaluation.settings import EvaluationSettings
from lstm_madness.options import DEFAULT_COST_BPS, DEFAULT_SHORT_BORROW_BPS


def test_a_one_asset_backtest_is_a_one_column_book() -> None:
    rng = np.random.default_rng(0)
    r = rng.normal(0.0003, 0.01, 300)
    pos = positions_from_predictions(rng.normal(0, 1, 300), rule="threshold", threshold=0.5)
    res = backtest(pos, r, cost_bps=7.0, slippage_bps=1.0)
    assert isinstance(res, BacktestResult) and isinstance(res, Book)
    assert res.weights.shape == (300, 1) and res.short_borrow_bps == 0.0
    np.testing.assert_array_equal(res.positions, pos)
    np.testing.assert_array_equal(res.asset_returns, r)
    # the book's figures are those of the asset's positions, to the last bit
    turnover = np.abs(np.diff(pos, prepend=0.0))
    np.testing.assert_array_equal(res.turnover, turnover)
    np.testing.assert_array_equal(res.net_returns, pos * r - turnover * 8e-4)
    assert res.net == performance(pos * r - turnover * 8e-4, pos)
    assert res.gross == performance(pos * r, pos)
    np.testing.assert_array_equal(res.gross_after_borrow, res.gross_returns)


def test_performance_of_a_weights_panel_counts_each_asset() -> None:
    w = np.array([[0.5, -0.5], [0.5, 0.0], [0.0, 0.0], [0.5, 0.5]])
    r = np.array([0.01, -0.02, 0.0, 0.03])
    p = performance(r, w)
    assert p.turnover == pytest.approx(np.mean([1.0, 0.5, 0.5, 1.0]))
    assert p.exposure == pytest.approx(np.mean([1.0, 0.5, 0.0, 1.0]))
    np.testing.assert_array_equal(holding_periods(w), [2, 1, 1, 1])
    assert p.avg_holding_days == pytest.approx(5 / 4)
    assert p.win_rate == pytest.approx(2 / 3)  # invested days: 0, 1 and 3


def test_contributions_add_up_to_the_book() -> None:
    rng = np.random.default_rng(1)
    pred = rng.normal(size=(50, 8))
    real = rng.normal(0, 0.01, size=(50, 8))
    real[10:, 3] = np.nan  # a delisted member earns 0
    res = long_short_backtest(pred, real, top_k=2, cost_bps=5.0, short_borrow_bps=80.0)
    gross, net = res.book.contributions()
    np.testing.assert_allclose(gross.sum(axis=1), res.book.gross_returns, atol=1e-16)
    np.testing.assert_allclose(net.sum(axis=1), res.book.net_returns, atol=1e-16)
    # the break-even cost keeps the borrow fee: at it, the mean net return is zero
    at = long_short_backtest(
        pred, real, top_k=2, cost_bps=break_even_cost(res.book), short_borrow_bps=80.0
    )
    assert at.book.net_returns.mean() == pytest.approx(0.0, abs=1e-15)


def test_one_set_of_cost_defaults() -> None:
    settings = EvaluationSettings()
    book = Book(np.ones((3, 1)), np.zeros((3, 1)))
    ls = long_short_backtest(np.arange(12.0).reshape(3, 4), np.zeros((3, 4)), top_k=1)
    for costs in (settings, book, ls.book, backtest(np.ones(3), np.zeros(3))):
        assert costs.cost_bps == DEFAULT_COST_BPS
        assert costs.slippage_bps == 0.0
    assert settings.short_borrow_bps == ls.book.short_borrow_bps == DEFAULT_SHORT_BORROW_BPS
