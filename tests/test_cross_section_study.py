"""End to end without a store: a planted cross-sectional reversal is found out of sample.

Synthetic universe (30 members, 1,500 days, members joining late, leaving, rejoining and
delisted): samples -> pooled scaler -> pooled ridge / baselines / a small LSTM -> long-short
backtest at zero cost -> rank IC and Sharpe tests. Pure noise finds nothing.
"""

from __future__ import annotations

import numpy as np
import pytest

from lstm_madness.cross_section import CrossSectionFold, build_cross_section_fold, build_panel
from lstm_madness.data.membership import membership_mask
from lstm_madness.evaluation.cross_section_stats import (
    panel_forecast_tests,
    quantile_returns,
    rank_ic,
)
from lstm_madness.evaluation.long_short import LongShortResult, long_short_backtest
from lstm_madness.evaluation.significance import sharpe_tstat
from lstm_madness.models.cross_section_baselines import make_cross_section_baseline
from lstm_madness.models.lstm import LSTMForecaster, fit_forecasters

SPLIT = 1000  # first test day


def _fold(make_universe, reversal: float) -> CrossSectionFold:
    fields, intervals, market = make_universe(n_symbols=30, n_days=1500, reversal=reversal)
    mask = membership_mask(intervals, fields["ret"].index, fields["ret"].columns)
    panel = build_panel(fields, mask, 10, benchmark_returns=market, standardized=True)
    d = panel.dates
    return build_cross_section_fold(panel, train=(None, d[SPLIT - 1]), test=(d[SPLIT], None))


def _evaluate(fold: CrossSectionFold, predictions: np.ndarray):
    """Test predictions -> the stored long format -> (dates, members) panels -> statistics."""
    frame = fold.predictions_frame(predictions)
    calendar = fold.panel.dates[SPLIT:]
    wide = {
        name: frame.pivot(index="date", columns="symbol", values=name).reindex(calendar)
        for name in ("y_pred", "y_true", "realized")
    }
    pred, real = wide["y_pred"].to_numpy(), wide["realized"].to_numpy()
    assert np.isfinite(pred).sum() == np.isfinite(frame["y_pred"].to_numpy()).sum()
    ic = rank_ic(pred, real)
    book = long_short_backtest(pred, real, top_k=5, cost_bps=0.0)
    tests = panel_forecast_tests(wide["y_true"].to_numpy(), pred)
    return ic, book, tests, quantile_returns(pred, real)


def _significant(book: LongShortResult) -> bool:
    return sharpe_tstat(book.net_returns).pvalue < 0.01


def test_planted_reversal_is_found_out_of_sample(make_universe) -> None:
    fold = _fold(make_universe, reversal=0.1)
    # every member with history is scored on test days; the delisted ones (S04, S05 after
    # day 1100) and the leavers (S06, S07 after day 900) are not
    assert fold.panel.scored[SPLIT:, 6:8].sum() == 0 and fold.panel.scored[1101:, 4:6].sum() == 0
    for name in ("ridge", "reversal"):
        model = make_cross_section_baseline(name).fit(fold)
        ic, book, tests, quintiles = _evaluate(fold, model.predict(fold))
        assert ic.mean > 0.05 and ic.t_stat > 4 and ic.positive_share > 0.6, name
        assert _significant(book) and book.book.net.sharpe > 2, name
        assert book.days_flat == 0 and 20 < book.members_mean <= 28
        assert quintiles[-1] > quintiles[0]
        assert book.book.lost_returns >= 0
    ridge = make_cross_section_baseline("ridge").fit(fold)
    _, _, tests, _ = _evaluate(fold, ridge.predict(fold))
    assert tests.r2_oos > 0 and tests.dm.pvalue < 0.01
    # momentum and zero find nothing here
    for name in ("momentum", "zero"):
        model = make_cross_section_baseline(name).fit(fold)
        ic, book, _, _ = _evaluate(fold, model.predict(fold))
        assert not _significant(book), name


def test_pure_noise_finds_nothing(make_universe) -> None:
    fold = _fold(make_universe, reversal=0.0)
    for name in ("ridge", "reversal"):
        model = make_cross_section_baseline(name).fit(fold)
        ic, book, tests, _ = _evaluate(fold, model.predict(fold))
        assert abs(ic.t_stat) < 3 and not _significant(book), name
        assert tests.dm.pvalue > 0.05 or tests.r2_oos < 0.001, name


@pytest.mark.slow
@pytest.mark.parametrize("reversal", [0.1, 0.0])
def test_one_shared_lstm_learns_the_reversal_and_not_noise(make_universe, reversal) -> None:
    fold = _fold(make_universe, reversal=reversal)
    params = dict(
        units=(8,), time_steps=10, epochs=4, batch_size=256, learning_rate=3e-3,
        patience=0, validation_fraction=0.0, device="cpu",
    )  # fmt: skip
    # two seeds train as one batched computation on the fold's dense training windows
    nets = fit_forecasters(
        [LSTMForecaster(seed=0, **params), LSTMForecaster(seed=1, **params)],
        [(fold.X_train, fold.y_train)] * 2,
    )
    for net in nets:
        ic, book, _, _ = _evaluate(fold, net.predict(fold.X_test))
        if reversal:
            assert ic.mean > 0.03 and ic.t_stat > 3 and _significant(book)
        else:
            assert abs(ic.t_stat) < 3 and not _significant(book)
