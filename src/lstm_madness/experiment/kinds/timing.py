"""Timing one asset: a network forecasts the target's next-day return (or its direction,
or its excess over a benchmark) from windows of past features; a position rule
(``sign``, ``long_flat``, ``threshold``, ``proportional``) trades the forecast against
buy-and-hold of the target.

Data: :mod:`lstm_madness.experiment.dataset` (the target's trading days, features,
labels, one sample per date). Baselines: :mod:`lstm_madness.models.baselines` on the
fold's windows. Evaluation: :func:`lstm_madness.evaluation.study.evaluate`. Report:
:mod:`lstm_madness.report.html`.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, MutableMapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import sqlalchemy as sa

from lstm_madness.evaluation.backtest import buy_and_hold
from lstm_madness.evaluation.metrics import hit_rate, mse
from lstm_madness.evaluation.settings import EvaluationSettings
from lstm_madness.experiment.config import ExperimentConfig
from lstm_madness.experiment.dataset import (
    FoldArrays,
    StudyData,
    check_study_data,
    fold_arrays,
    fold_rows,
    load_study_data,
    plan_study_folds,
)
from lstm_madness.experiment.folds import Fold
from lstm_madness.experiment.kinds.base import Evaluated, FoldBaselines, FoldPlan
from lstm_madness.options import CLASSIFICATION_BASELINES, REGRESSION_BASELINES

if TYPE_CHECKING:  # the evaluation stack (arch, scipy) loads when a run is evaluated
    from lstm_madness.evaluation.evidence import TrialEvidence
    from lstm_madness.report.seeds import SeedSet

__all__ = ["TIMING", "Timing", "fold_metrics"]


class Timing:
    """The single-asset study kind (module docstring); see
    :class:`~lstm_madness.experiment.kinds.base.StudyKind` for each method."""

    name = "timing"
    shares_baselines = True

    # -- data and training ---------------------------------------------------------

    def check(self, engine: sa.Engine, config: ExperimentConfig) -> None:
        check_study_data(engine, config, self.baseline_names(config))

    def baseline_names(self, config: ExperimentConfig) -> tuple[str, ...]:
        if config.baselines.models:
            return config.baselines.models
        if config.task == "classification":
            return CLASSIFICATION_BASELINES
        return REGRESSION_BASELINES

    def load(self, engine: sa.Engine, config: ExperimentConfig) -> StudyData:
        return load_study_data(engine, config)

    def plan_folds(self, study: StudyData, config: ExperimentConfig) -> FoldPlan:
        folds, table = plan_study_folds(study, config)
        return FoldPlan(folds, table, study.features.shape[1])

    def fold_data(self, study: StudyData, fold: Fold) -> FoldArrays:
        return fold_arrays(study, fold.train, fold.test)

    def fit_baselines(
        self, config: ExperimentConfig, data: FoldArrays, timings: Any
    ) -> FoldBaselines:
        """Each baseline fitted on the fold's training windows, timed on its own."""
        from lstm_madness.models.baselines import fold_baseline

        out = {}
        for name in self.baseline_names(config):
            start = time.perf_counter()
            model = fold_baseline(name, config.task).fit(data)
            out[f"baseline:{name}"] = model.predict(data)
            timings.add(
                f"baseline:{name}", train_s=time.perf_counter() - start, n_train=len(data.y_train)
            )
        return FoldBaselines(out)

    def validation_gap(self, config: ExperimentConfig, data: FoldArrays) -> int:
        """The labels' horizon less one: the purge of overlapping labels."""
        return config.target.horizon - 1

    def rows(
        self,
        config: ExperimentConfig,
        data: FoldArrays,
        predictions: Mapping[str, np.ndarray],
        keep: np.ndarray | None = None,
    ) -> pd.DataFrame:
        return fold_rows(config.data.target, data, dict(predictions))

    # -- evaluation ----------------------------------------------------------------

    def evaluate(
        self,
        engine: sa.Engine,
        config: ExperimentConfig,
        predictions: pd.DataFrame,
        *,
        primary: str,
        settings: EvaluationSettings,
        trial_set: TrialEvidence | None,
        trial_position: int | None,
        seed_sharpes: np.ndarray | None,
        memo: MutableMapping[Any, Any] | None = None,
    ) -> Evaluated:
        """:func:`~lstm_madness.evaluation.study.evaluate` of the rows' wide test frame
        (R²_oos against ``baseline:mean`` when the run has it)."""
        from lstm_madness.evaluation.study import evaluate, test_frame

        frame = test_frame(predictions)
        models = {name: frame[name].to_numpy() for name in frame.columns[2:]}
        evaluation = evaluate(
            dates=frame.index.to_numpy(),
            asset_returns=frame["realized"].to_numpy(),
            y_true=frame["y_true"].to_numpy(),
            predictions=models,
            y_benchmark=models.get("baseline:mean"),
            memo=memo,
            task=config.task,
            primary=primary,
            settings=settings,
            trial_set=trial_set,
            trial_position=trial_position,
            seed_sharpes=seed_sharpes,
        )
        return Evaluated(evaluation, frame)

    def trades(
        self, predictions: pd.DataFrame, settings: EvaluationSettings, task: str
    ) -> pd.DataFrame:
        from lstm_madness.evaluation.study import trades

        return trades(predictions, settings, task)

    # -- the trial set's evidence --------------------------------------------------

    def member_net_returns(
        self, frame: pd.DataFrame, tasks: Mapping[int, str], settings: EvaluationSettings
    ) -> dict[int, pd.Series]:
        out = {}
        for run_id, rows in frame.groupby("run_id", sort=False):
            result = settings.backtest(
                rows["y_pred"].to_numpy(), rows["realized"].to_numpy(), tasks[int(run_id)]
            )
            out[int(run_id)] = pd.Series(result.net_returns, index=pd.DatetimeIndex(rows["date"]))
        return out

    def benchmark_net_returns(
        self,
        frame: pd.DataFrame,
        first: int,
        dates: pd.DatetimeIndex,
        settings: EvaluationSettings,
    ) -> np.ndarray:
        """Buy-and-hold of the target on ``dates``, under the judged run's costs (one
        entry cost, on the first of them)."""
        realized = frame.drop_duplicates("date").set_index("date")["realized"]
        return buy_and_hold(
            realized.reindex(dates).to_numpy(),
            cost_bps=settings.cost_bps,
            slippage_bps=settings.slippage_bps,
            risk_free=settings.risk_free,
        ).net_returns

    # -- the report ----------------------------------------------------------------

    def write_report(
        self,
        out_dir: Path,
        *,
        run: Mapping[str, Any],
        evaluated: Evaluated,
        folds: pd.DataFrame,
        model_table: pd.DataFrame,
        seeds: SeedSet | None = None,
    ) -> Path:
        """:func:`~lstm_madness.report.html.write_report`, the folds with the network's
        and the zero baseline's test MSE and the network's hit rate
        (:func:`fold_metrics`)."""
        from lstm_madness.report.html import write_report

        ev, frame = evaluated
        return write_report(
            Path(out_dir),
            run=run,
            evaluation=ev,
            test_frame=frame.drop(columns=["realized"]),
            fold_table=fold_metrics(folds, frame, primary=ev.primary, task=ev.task),
            model_table=model_table,
            train_frame=None,
            seeds=seeds,
        )


def fold_metrics(
    folds: pd.DataFrame, frame: pd.DataFrame, *, primary: str = "lstm", task: str
) -> pd.DataFrame:
    """The stored folds (``test_start``, ``test_end``, ...) with the test MSE of the
    network and of the zero baseline, and the network's hit rate
    (:func:`~lstm_madness.evaluation.metrics.hit_rate`: for direction targets a
    probability above 0.5 calls "up"), over each fold's test dates of ``frame``."""
    folds = folds.drop(columns=["completed_at"], errors="ignore")
    rows = []
    for fold in folds.itertuples():
        window = frame.loc[pd.Timestamp(fold.test_start) : pd.Timestamp(fold.test_end)]
        y = window["y_true"].to_numpy()
        row = {}
        for name in (primary, "baseline:zero"):
            if name in window and len(window):
                row[f"mse {name}"] = mse(y, window[name].to_numpy())
        if primary in window and len(window):
            row[f"hit rate {primary}"] = hit_rate(y, window[primary].to_numpy(), task)
        rows.append(row)
    return pd.concat([folds.reset_index(drop=True), pd.DataFrame(rows)], axis=1)


#: The one instance (a kind is stateless).
TIMING = Timing()
