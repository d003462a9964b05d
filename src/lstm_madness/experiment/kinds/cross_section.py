"""The cross-section of a universe (Fischer & Krauss 2018): one network shared by every
member forecasts each member's next-day return relative to the day's members
(``target.kind`` ``cross_section`` / ``cross_section_direction``); each day the members
are ranked and the top and bottom ``top_k`` traded long and short, against the
equal-weight book of the day's members.

Data: :mod:`lstm_madness.experiment.universe_data` (membership, calendar, the panel of
:mod:`lstm_madness.cross_section`, one sample per member and date). Baselines:
:mod:`lstm_madness.models.cross_section_baselines`; every model of a run is stored on the
samples all baselines score (momentum needs 21 days of history). Evaluation:
:func:`lstm_madness.evaluation.universe_study.evaluate_universe`. Report:
:mod:`lstm_madness.report.universe`.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import sqlalchemy as sa

from lstm_madness.cross_section import CrossSectionFold, validation_gap
from lstm_madness.evaluation.settings import EvaluationSettings
from lstm_madness.experiment.config import ExperimentConfig
from lstm_madness.experiment.folds import Fold
from lstm_madness.experiment.kinds.base import Evaluated, FoldBaselines, FoldPlan
from lstm_madness.experiment.universe_data import (
    UniverseStudy,
    check_universe_study,
    load_universe_study,
    plan_universe_folds,
    survivorship_warnings,
    universe_fold,
    universe_rows,
)
from lstm_madness.options import CROSS_SECTION_BASELINES

if TYPE_CHECKING:  # the evaluation stack (arch, scipy) loads when a run is evaluated
    from lstm_madness.evaluation.evidence import TrialEvidence
    from lstm_madness.report.seeds import SeedSet

__all__ = ["CROSS_SECTION", "CrossSection", "MemberBooks"]


@dataclass(frozen=True)
class MemberBooks:
    """A trial-set member's long-short book and equal-weight book: daily net returns,
    date-indexed."""

    net_returns: pd.Series
    equal_weight: pd.Series


class CrossSection:
    """The universe study kind (module docstring); see
    :class:`~lstm_madness.experiment.kinds.base.StudyKind` for each method."""

    name = "cross_section"
    shares_baselines = False

    # -- data and training ---------------------------------------------------------

    def check(self, engine: sa.Engine, config: ExperimentConfig) -> None:
        check_universe_study(engine, config, self.baseline_names(config))

    def baseline_names(self, config: ExperimentConfig) -> tuple[str, ...]:
        return config.baselines.models or CROSS_SECTION_BASELINES

    def load(self, engine: sa.Engine, config: ExperimentConfig) -> UniverseStudy:
        return load_universe_study(engine, config)

    def plan_folds(self, study: UniverseStudy, config: ExperimentConfig) -> FoldPlan:
        folds, table = plan_universe_folds(study, config)
        return FoldPlan(folds, table, len(study.panel.feature_names))

    def fold_data(self, study: UniverseStudy, fold: Fold) -> CrossSectionFold:
        return universe_fold(study, fold)

    def fit_baselines(
        self, config: ExperimentConfig, data: CrossSectionFold, timings: Any
    ) -> FoldBaselines:
        """Every baseline on the fold's panel, timed together (``baselines``); ``keep``
        the test samples every one of them scores."""
        from lstm_madness.models.cross_section_baselines import make_cross_section_baseline

        start = time.perf_counter()
        out = {}
        for name in self.baseline_names(config):
            model = make_cross_section_baseline(name, config.task).fit(data)
            out[f"baseline:{name}"] = np.asarray(model.predict(data), dtype=np.float64)
        keep = np.ones(len(data.test[0]), dtype=bool)
        for values in out.values():
            keep &= np.isfinite(values)
        timings.add("baselines", train_s=time.perf_counter() - start, folds=1)
        return FoldBaselines(out, keep)

    def validation_gap(self, config: ExperimentConfig, data: CrossSectionFold) -> int:
        """The samples that put the validation tail on a date boundary
        (:func:`~lstm_madness.cross_section.validation_gap`)."""
        t = config.train
        return validation_gap(data, t.validation_fraction, t.patience)

    def rows(
        self,
        config: ExperimentConfig,
        data: CrossSectionFold,
        predictions: Mapping[str, np.ndarray],
        keep: np.ndarray | None = None,
    ) -> pd.DataFrame:
        if keep is None:
            keep = np.ones(len(data.test[0]), dtype=bool)
        return universe_rows(data, keep, dict(predictions))

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
        """:func:`~lstm_madness.evaluation.universe_study.evaluate_universe` of the rows'
        panels, with the survivorship warnings of the universe's membership."""
        from lstm_madness.evaluation.universe_study import evaluate_universe, universe_panels

        evaluation = evaluate_universe(
            panels=universe_panels(predictions),
            warnings=tuple(survivorship_warnings(engine, config)),
            task=config.task,
            primary=primary,
            settings=settings,
            trial_set=trial_set,
            trial_position=trial_position,
            seed_sharpes=seed_sharpes,
        )
        return Evaluated(evaluation, evaluation.frame())

    def trades(
        self, predictions: pd.DataFrame, settings: EvaluationSettings, task: str
    ) -> pd.DataFrame:
        from lstm_madness.evaluation.universe_study import universe_trades

        return universe_trades(predictions, settings)

    # -- the trial set's evidence --------------------------------------------------

    def member_books(
        self, frame: pd.DataFrame, settings: EvaluationSettings
    ) -> dict[int, MemberBooks]:
        """Each member run's long-short and equal-weight books, from rows with a
        ``symbol`` column, over its own dates."""
        from lstm_madness.evaluation.universe_study import universe_panels

        out = {}
        for run_id, rows in frame.groupby("run_id", sort=False):
            panels = universe_panels(rows.assign(model="primary"))
            result = settings.long_short(panels.predictions["primary"], panels.realized)
            out[int(run_id)] = MemberBooks(
                pd.Series(result.net_returns, index=panels.dates),
                pd.Series(result.buy_and_hold.net_returns, index=panels.dates),
            )
        return out

    def member_net_returns(
        self, frame: pd.DataFrame, tasks: Mapping[int, str], settings: EvaluationSettings
    ) -> dict[int, pd.Series]:
        return {i: books.net_returns for i, books in self.member_books(frame, settings).items()}

    def benchmark_net_returns(
        self,
        frame: pd.DataFrame,
        first: int,
        dates: pd.DatetimeIndex,
        settings: EvaluationSettings,
    ) -> np.ndarray:
        """The equal-weight book of the members scored by the member ``first``, over its
        own dates, on ``dates``."""
        books = self.member_books(frame[frame["run_id"] == first], settings)
        return books[first].equal_weight.reindex(dates).to_numpy()

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
        """:func:`~lstm_madness.report.universe.write_universe_report`, the stored folds
        as they are."""
        from lstm_madness.report.universe import write_universe_report

        return write_universe_report(
            Path(out_dir),
            run=run,
            evaluation=evaluated.evaluation,  # type: ignore[arg-type]
            fold_table=folds.drop(columns=["completed_at"], errors="ignore"),
            model_table=model_table,
            seeds=seeds,
        )


#: The one instance (a kind is stateless).
CROSS_SECTION = CrossSection()
