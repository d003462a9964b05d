"""The full evaluation of a universe study (cross-sectional long-short), from stored rows.

Stored predictions have one row per (date, member, model); :func:`universe_panels` pivots
them into ``(dates, members)`` panels on the test dates. :func:`evaluate_universe` then
judges the primary model's long-short book exactly as
:func:`~lstm_madness.evaluation.study.evaluate` judges a single-asset strategy, with these
substitutions:

- the strategy is the long-short book
  (:func:`~lstm_madness.evaluation.long_short.long_short_backtest`, ``top_k`` per leg)
  and buy-and-hold the equal-weight book of each day's scored members, both net of the
  same costs; the break-even costs are the book's (mean net return 0, and its Sharpe
  against the equal-weight book's);
- forecast tests are aggregated per day first
  (:func:`~lstm_madness.evaluation.cross_section_stats.panel_forecast_tests`): DM on each
  day's mean squared error across members against the zero forecast (0.5 for the
  direction label), R²_oos against zero; DM against each baseline on the same daily losses;
- the direction hit rate and the Pesaran–Timmermann test count the (member, day) pairs
  whose prediction calls a direction, with one "up" per task
  (:func:`~lstm_madness.evaluation.cross_section_stats.panel_direction_calls`): above the
  day's mean (``cross_section``) or median (``cross_section_direction``); every model's
  ``hit_rate`` uses the same definition. The hit rate's test is clustered by day
  (:func:`~lstm_madness.evaluation.cross_section_stats.panel_hit_test`: a day's calls are
  not independent); Pesaran–Timmermann pools the pairs as if they were, so it is reported
  but the verdict does not cite it;
- every model's ``mse``, ``mae`` and ``r2_oos`` are per day first, then averaged over days
  (:func:`~lstm_madness.evaluation.cross_section_stats.panel_forecast_metrics`), so
  ``r2_oos = 1 - mse / mse_zero``; each adds its rank IC (mean, HAC t, share of positive
  days).

The book's mean daily return is given in two conventions
(:attr:`~lstm_madness.evaluation.long_short.LongShortResult.mean_daily`): the book's own,
each leg 1/2 of capital, and Fischer & Krauss's long − short, each leg 100% of capital
(twice the book's, before and after costs), as ``backtest.mean_daily_*``.

PSR, DSR over the trial set, StepM, SPA and PBO use the book's daily net returns (the trial set's
members backtested by the same rule, :mod:`lstm_madness.experiment.ledger`): they, the
confidence intervals and the verdict are :func:`~lstm_madness.evaluation.judgement.judge`'s,
as for a single asset; this module supplies the book (its
:class:`~lstm_madness.evaluation.judgement.Strategy`) and the panel's
:class:`~lstm_madness.evaluation.judgement.ForecastTests`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from lstm_madness.errors import DataError
from lstm_madness.evaluation.cross_section_stats import (
    RankIC,
    daily_mse,
    panel_direction_calls,
    panel_forecast_metrics,
    panel_forecast_tests,
    panel_hit_test,
    quantile_returns,
    rank_ic,
)
from lstm_madness.evaluation.evidence import TrialEvidence, own_trial_set
from lstm_madness.evaluation.forecast_tests import (
    diebold_mariano_losses,
    pesaran_timmermann,
)
from lstm_madness.evaluation.judgement import (
    Evaluation,
    ForecastTests,
    Strategy,
    judge,
    short_name,
)
from lstm_madness.evaluation.long_short import LongShortResult
from lstm_madness.evaluation.settings import EvaluationSettings

__all__ = [
    "UniverseEvaluation",
    "UniversePanels",
    "evaluate_universe",
    "universe_panels",
    "universe_trades",
]


@dataclass(frozen=True, eq=False)
class UniversePanels:
    """Stored rows as ``(D, S)`` panels: NaN where a member has no row that day."""

    dates: pd.DatetimeIndex
    symbols: tuple[str, ...]
    predictions: dict[str, np.ndarray]
    y_true: np.ndarray
    realized: np.ndarray


def universe_panels(frame: pd.DataFrame) -> UniversePanels:
    """Pivot rows (columns date, symbol, model, y_pred and optionally y_true, realized).

    The dates are every date with a row; ``y_true`` and ``realized`` are taken from the
    rows of any model (they are the same for every model of a run).
    """
    if frame.empty:
        raise DataError("no stored predictions to evaluate")
    rows = frame.assign(date=pd.to_datetime(frame["date"]))
    dates = pd.DatetimeIndex(sorted(rows["date"].unique()), name="date")
    symbols = tuple(sorted(rows["symbol"].unique()))

    def wide(part: pd.DataFrame, column: str) -> np.ndarray:
        table = part.pivot_table(index="date", columns="symbol", values=column, aggfunc="first")
        return table.reindex(index=dates, columns=list(symbols)).to_numpy(dtype=np.float64)

    preds = {str(m): wide(part, "y_pred") for m, part in rows.groupby("model", sort=False)}
    first = rows.drop_duplicates(["date", "symbol"])
    nan = np.full((len(dates), len(symbols)), np.nan)
    y = wide(first, "y_true") if "y_true" in rows else nan
    real = wide(first, "realized") if "realized" in rows else nan
    return UniversePanels(dates, symbols, preds, y, real)


@dataclass(frozen=True, eq=False)
class UniverseEvaluation(Evaluation):
    """:class:`~lstm_madness.evaluation.study.Evaluation` of a universe study, with the
    primary model's long-short result, every model's rank IC and the primary model's
    prediction-quintile returns."""

    long_short: LongShortResult | None = None
    rank_ics: Mapping[str, RankIC] = field(default_factory=dict)
    quintiles: np.ndarray | None = None
    symbols: tuple[str, ...] = ()

    def _backtest_json(self) -> dict[str, Any]:
        out = super()._backtest_json()
        ls = self.long_short
        assert ls is not None
        out.update(
            top_k=ls.top_k,
            members_mean=ls.members_mean,
            long_sharpe=ls.long_sharpe,
            short_sharpe=ls.short_sharpe,
            days_flat=ls.days_flat,
            short_borrow_bps=ls.book.short_borrow_bps,
            lost_returns=ls.book.lost_returns,
            quintile_returns=None if self.quintiles is None else list(self.quintiles),
            **ls.mean_daily,
        )
        return out

    def summary(self) -> str:
        """:meth:`Evaluation.summary` with the book's mean daily return in both leg
        conventions."""
        ls = self.long_short
        assert ls is not None
        return "\n".join([super().summary(), *(f"  {line}" for line in ls.mean_daily_lines())])

    def rolling_rank_ic(self, window: int = 63) -> np.ndarray:
        """Mean daily rank IC of the primary model over the last ``window`` days (at least
        half of them with an IC; NaN before), shape (D,)."""
        daily = pd.Series(self.rank_ics[self.primary].daily)
        return daily.rolling(window, min_periods=max(1, window // 2)).mean().to_numpy()

    def frame(self) -> pd.DataFrame:
        """Daily series indexed by date: the primary model's rank IC, gross exposure,
        the equal-weight book's gross return, the book's gross / net returns, its long and
        short legs (net, as earned), the equal-weight book's net return, members scored."""
        ls = self.long_short
        assert ls is not None
        return pd.DataFrame(
            {
                "rank_ic": self.rank_ics[self.primary].daily,
                "position": self.positions,
                "asset_return": self.asset_returns,
                "gross_return": self.gross_returns,
                "net_return": self.net_returns,
                "long_return": ls.book.leg("long"),
                "short_return": ls.book.leg("short"),
                "buy_hold_return": self.buy_hold_returns,
                "members": ls.members,
            },
            index=pd.DatetimeIndex(pd.to_datetime(self.dates), name="date"),
        )


def evaluate_universe(
    *,
    panels: UniversePanels,
    task: str,
    primary: str,
    settings: EvaluationSettings,
    trial_set: TrialEvidence | None = None,
    trial_position: int | None = 0,
    seed_sharpes: np.ndarray | None = None,
    warnings: tuple[str, ...] = (),
) -> UniverseEvaluation:
    """Backtest, test and judge a universe study's stored predictions (module docstring).

    ``warnings`` (e.g. the survivorship warnings of its membership) come first among the
    verdict's cautions."""
    dates = panels.dates.to_numpy()
    if primary not in panels.predictions:
        raise DataError(f"primary model {primary!r} not among {sorted(panels.predictions)}")
    if len(dates) < 3:
        raise DataError(f"need at least 3 test days to evaluate, got {len(dates)}")
    preds = {k: np.asarray(v, dtype=np.float64) for k, v in panels.predictions.items()}
    results = {k: settings.long_short(v, panels.realized, dates=dates) for k, v in preds.items()}
    main = results[primary]
    strategy = Strategy(
        main.book,
        main.buy_and_hold,
        {k: r.book for k, r in results.items() if k != primary},
        main.break_even_cost(),
        main.break_even_vs_buy_hold(),
    )
    ics = {k: rank_ic(v, panels.realized) for k, v in preds.items()}
    tests = _panel_tests(panels.y_true, preds, task, primary, ics)
    if trial_set is None:
        trial_set = own_trial_set(main.net_returns, main.buy_and_hold.net_returns, settings)
        trial_position = 0
    return judge(  # type: ignore[return-value]
        strategy,
        tests,
        dates=dates,
        task=task,
        primary=primary,
        settings=settings,
        y_true=panels.y_true,
        predictions=preds,
        trial_set=trial_set,
        trial_position=trial_position,
        seed_sharpes=seed_sharpes,
        cautions=warnings,
        kind=UniverseEvaluation,
        long_short=main,
        rank_ics=ics,
        quintiles=quantile_returns(preds[primary], panels.realized),
        symbols=panels.symbols,
    )


def _panel_tests(
    y: np.ndarray,
    preds: Mapping[str, np.ndarray],
    task: str,
    primary: str,
    ics: Mapping[str, RankIC],
) -> ForecastTests:
    """Forecast tests on the panel, per day first (module docstring)."""
    centre = 0.5 if task == "classification" else 0.0
    tests = panel_forecast_tests(y - centre, preds[primary] - centre)
    if tests.dm is None:
        raise DataError("fewer than 3 test days with a (prediction, label) pair")
    dm = {"zero": tests.dm}
    own = daily_mse(y, preds[primary])
    for k, v in preds.items():
        if k == primary:
            continue
        other = daily_mse(y, np.where(np.isfinite(preds[primary]), v, np.nan))
        ok = np.isfinite(own) & np.isfinite(other)
        if ok.sum() >= 3:
            dm[short_name(k)] = diebold_mariano_losses(own[ok], other[ok], loss="daily_mse")
    actual_up, called_up = panel_direction_calls(y, preds[primary], task)
    pt = pesaran_timmermann(actual_up, called_up)
    hit = panel_hit_test(y, preds[primary], task)  # clustered by day: calls move together
    metrics: dict[str, dict[str, Any]] = {}
    for k, v in preds.items():
        entry = panel_forecast_metrics(y, v, task)
        entry.update(ics[k].to_dict())
        metrics[k] = entry
    # Pesaran–Timmermann pools the pairs as if independent: reported, not cited in the verdict
    return ForecastTests(dm, pt, hit, tests.r2_oos, metrics, pt_in_verdict=False)


def universe_trades(predictions: pd.DataFrame, settings: EvaluationSettings) -> pd.DataFrame:
    """Stored rows per (date, member, model) with the member's weight in the model's
    long-short book (``position``) and its contribution to the book's gross and net return
    that day (the costs of its own trade, and its share of the borrow fee when short).
    Per day they sum to the book's returns, except the cost of closing a position in a
    member that is no longer scored that day (it has no row)."""
    parts = []
    for name, rows in predictions.groupby("model", sort=True):
        panels = universe_panels(rows)
        result = settings.long_short(panels.predictions[str(name)], panels.realized)
        w = result.book.weights
        gross, net = result.book.contributions()
        d = panels.dates.get_indexer(pd.to_datetime(rows["date"]))
        col = {s: j for j, s in enumerate(panels.symbols)}
        j = rows["symbol"].map(col).to_numpy()
        parts.append(rows.assign(position=w[d, j], gross_return=gross[d, j], net_return=net[d, j]))
    return pd.concat(parts, ignore_index=True).sort_values(["model", "date", "symbol"])
