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
  ``hit_rate`` uses the same definition;
- every model's ``mse``, ``mae`` and ``r2_oos`` are per day first, then averaged over days
  (:func:`~lstm_madness.evaluation.cross_section_stats.panel_forecast_metrics`), so
  ``r2_oos = 1 - mse / mse_zero``; each adds its rank IC (mean, HAC t, share of positive
  days).

PSR, DSR over the trial set, StepM, SPA and PBO use the book's daily net returns (the trial set's
members backtested by the same rule, :mod:`lstm_madness.experiment.ledger`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd

from lstm_madness.errors import DataError
from lstm_madness.evaluation.backtest import Performance
from lstm_madness.evaluation.cross_section_stats import (
    RankIC,
    daily_mse,
    panel_direction_calls,
    panel_forecast_metrics,
    panel_forecast_tests,
    quantile_returns,
    rank_ic,
)
from lstm_madness.evaluation.forecast_tests import (
    binomial_hit_test,
    diebold_mariano_losses,
    pesaran_timmermann,
)
from lstm_madness.evaluation.long_short import Book, LongShortResult
from lstm_madness.evaluation.significance import (
    excess_return_ci,
    seed_spread,
    sharpe_ci,
    sharpe_tstat,
)
from lstm_madness.evaluation.study import (
    Evaluation,
    EvaluationSettings,
    TrialEvidence,
    deflated_sharpes,
    short_name,
    trial_evidence,
)
from lstm_madness.evaluation.verdict import decide

__all__ = ["UniverseEvaluation", "UniversePanels", "evaluate_universe", "universe_panels"]


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


class BookResult:
    """A long-short :class:`~lstm_madness.evaluation.long_short.Book` seen as a one-asset
    backtest (what :class:`~lstm_madness.evaluation.study.Evaluation` and its JSON read):
    ``positions`` is the gross exposure (1 when trading, 0 when flat) and
    ``asset_returns`` the equal-weight book's gross return that day."""

    def __init__(self, book: Book, equal_weight: Book) -> None:
        self.book = book
        self.positions = book.exposure
        self.asset_returns = equal_weight.gross_returns
        self.turnover = book.turnover
        self.gross_returns = book.gross_returns
        self.net_returns = book.net_returns
        self.cost_bps, self.slippage_bps = book.cost_bps, book.slippage_bps
        self.risk_free, self.dates = book.risk_free, book.dates

    @property
    def n_days(self) -> int:
        return self.book.n_days

    @property
    def net(self) -> Performance:
        return self.book.net

    @property
    def gross(self) -> Performance:
        return self.book.gross


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
        )
        return out

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
                "asset_return": self.strategy.asset_returns,
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
    """Backtest, test and judge a universe study's stored predictions (module docstring)."""
    s = settings
    dates = panels.dates.to_numpy()
    if primary not in panels.predictions:
        raise DataError(f"primary model {primary!r} not among {sorted(panels.predictions)}")
    if len(dates) < 3:
        raise DataError(f"need at least 3 test days to evaluate, got {len(dates)}")
    centre = 0.5 if task == "classification" else 0.0
    y = panels.y_true
    preds = {k: np.asarray(v, dtype=np.float64) for k, v in panels.predictions.items()}
    results = {k: s.long_short(v, panels.realized, dates=dates) for k, v in preds.items()}
    main = results[primary]
    strategy = BookResult(main.book, main.buy_and_hold)
    bh = BookResult(main.buy_and_hold, main.buy_and_hold)
    baselines = {k: BookResult(r.book, r.buy_and_hold) for k, r in results.items() if k != primary}

    # forecast tests on the panel, per day first
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
    hit = binomial_hit_test(int(np.sum(actual_up == called_up)), int(actual_up.size))
    ics = {k: rank_ic(v, panels.realized) for k, v in preds.items()}
    metrics: dict[str, dict[str, Any]] = {}
    for k, v in preds.items():
        entry = panel_forecast_metrics(y, v, task)
        entry.update(ics[k].to_dict())
        metrics[k] = entry

    net = strategy.net_returns
    boot = dict(reps=s.bootstrap_reps, block=s.block_length, seed=s.seed)
    if trial_set is None:
        from lstm_madness.evaluation.backtest import sharpe_ratio

        trial_set = trial_evidence(
            net[:, None],
            bh.net_returns,
            sharpes=np.array([sharpe_ratio(net, s.risk_free)]),
            trials=1,
            fwer=s.thresholds.fwer,
            **boot,
        )
        trial_position = 0
    dsr, dsr_eff, judged = deflated_sharpes(net, trial_set, s)
    selected = trial_set.stepm.selects(trial_position)
    verdict = decide(
        n_days=len(dates),
        sharpe_net=strategy.net.sharpe,
        buy_hold_sharpe=bh.net.sharpe,
        net_pnl=strategy.net.total_return,
        dm_p_vs_zero=dm["zero"].pvalue,
        dsr=judged.dsr,
        trials=judged.trials,
        stepm_selected=selected,
        stepm_superior=len(trial_set.stepm.superior),
        stepm_models=trial_set.stepm.n_models,
        spa_p=trial_set.spa.pvalue,
        spa_models=trial_set.spa.n_models,
        task=task,
        hit_rate=hit.hit_rate,
        hit_rate_p=hit.pvalue,
        pt_p=pt.pvalue,
        thresholds=s.thresholds,
        min_test_days=s.min_test_days,
        model_metrics=metrics,
    )
    verdict = replace(verdict, cautions=(*warnings, *verdict.cautions))
    return UniverseEvaluation(
        dates=dates,
        task=task,
        primary=primary,
        settings=s,
        y_true=y,
        predictions=preds,
        strategy=strategy,  # type: ignore[arg-type]
        buy_hold=bh,  # type: ignore[arg-type]
        baselines=baselines,  # type: ignore[arg-type]
        break_even_bps=main.break_even_cost(),
        break_even_vs_buy_hold_bps=main.break_even_vs_buy_hold(),
        dm=dm,
        pt=pt,
        hit=hit,
        r2_oos=tests.r2_oos,
        model_metrics=metrics,
        sharpe_test=sharpe_tstat(net, s.risk_free),
        dsr=dsr,
        dsr_effective=dsr_eff,
        mean_correlation=trial_set.mean_correlation,
        n_trial_runs=trial_set.n_members,
        sharpe_ci=sharpe_ci(net, risk_free=s.risk_free, level=s.ci_level, **boot),
        excess_ci=excess_return_ci(net, bh.net_returns, level=s.ci_level, **boot),
        spa=trial_set.spa,
        pbo=trial_set.pbo,
        seeds=None if seed_sharpes is None else seed_spread(seed_sharpes),
        verdict=verdict,
        stepm=trial_set.stepm,
        stepm_selected=selected,
        duplicates=trial_set.duplicates,
        long_short=main,
        rank_ics=ics,
        quintiles=quantile_returns(preds[primary], panels.realized),
        symbols=panels.symbols,
    )
