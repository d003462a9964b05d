"""The universe evaluation's long-short figures: both leg conventions in its JSON, its
summary and the report's table (computed once, in evaluation)."""

from __future__ import annotations

import html
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from lstm_madness.evaluation.long_short import BOOK_LABEL, LONG_MINUS_SHORT_LABEL
from lstm_madness.evaluation.settings import EvaluationSettings
from lstm_madness.evaluation.universe_study import evaluate_universe, universe_panels

KEYS = (
    "mean_daily_book_gross",
    "mean_daily_book_net",
    "mean_daily_long_minus_short_gross",
    "mean_daily_long_minus_short_net",
)


@pytest.fixture(scope="module")
def evaluation():
    rng = np.random.default_rng(3)
    dates = pd.bdate_range("2018-01-01", periods=120)
    symbols = [f"S{j:02d}" for j in range(8)]
    realized = rng.normal(0.0003, 0.01, (len(dates), len(symbols)))
    rows = pd.DataFrame(
        [
            (d, s, model, pred, realized[t, j] - realized[t].mean(), realized[t, j])
            for t, d in enumerate(dates)
            for j, s in enumerate(symbols)
            for model, pred in (
                ("lstm", realized[t, j] + rng.normal(0, 0.02)),
                ("baseline:zero", 0.0),
            )
        ],
        columns=["date", "symbol", "model", "y_pred", "y_true", "realized"],
    )
    settings = EvaluationSettings(rule="long_short", top_k=2, cost_bps=5.0, bootstrap_reps=50)
    return evaluate_universe(
        panels=universe_panels(rows), task="regression", primary="lstm", settings=settings
    )


def test_json_has_both_conventions(evaluation) -> None:
    bt = evaluation.to_json()["backtest"]
    ls = evaluation.long_short
    for key in KEYS:
        assert bt[key] == ls.mean_daily[key]
    assert bt["mean_daily_book_gross"] == pytest.approx(evaluation.gross_returns.mean())
    assert bt["mean_daily_book_net"] == pytest.approx(evaluation.net_returns.mean())
    assert bt["mean_daily_long_minus_short_gross"] == pytest.approx(
        2 * bt["mean_daily_book_gross"], abs=1e-15
    )
    assert bt["mean_daily_long_minus_short_net"] == pytest.approx(
        2 * bt["mean_daily_book_net"], abs=1e-15
    )
    # costs of 5 bps per half-turn of each leg at 100% of capital
    legs_turnover = 2 * ls.book.turnover  # each leg's turnover at 100%, summed over legs
    costs = bt["mean_daily_long_minus_short_gross"] - bt["mean_daily_long_minus_short_net"]
    assert costs == pytest.approx(5e-4 * legs_turnover.mean(), abs=1e-15)


def test_summary_and_report_table_name_both(evaluation, tmp_path: Path) -> None:
    from lstm_madness.report.universe import universe_sections

    text = evaluation.summary()
    assert BOOK_LABEL in text and LONG_MINUS_SHORT_LABEL in text
    page = html.unescape("".join(universe_sections(evaluation, tmp_path)))
    for label in (BOOK_LABEL, LONG_MINUS_SHORT_LABEL):
        assert f"mean daily return, {label}: before / after costs" in page
    m = evaluation.long_short.mean_daily
    assert f"{m['mean_daily_long_minus_short_gross']:+.3%}" in page
