"""The study-kind protocol: what differs between timing one asset and a universe's
cross-section, as a few methods that the engine calls.

The engine (the runner's fold-group loop, the summaries, the ledger's trial-set evidence,
the report glue) is one pipeline; at each step where a study kind matters it calls the
run's kind, chosen once by :func:`lstm_madness.experiment.kinds.study_kind`:

========================  =================================================================
engine step               kind method
========================  =================================================================
refuse before training    :meth:`StudyKind.check`
default baselines         :meth:`StudyKind.baseline_names`
load a data group         :meth:`StudyKind.load`
cut the folds             :meth:`StudyKind.plan_folds`, then :meth:`StudyKind.fold_data`
baselines of a fold       :meth:`StudyKind.fit_baselines`
network's early stopping  :meth:`StudyKind.validation_gap`
prediction rows to store  :meth:`StudyKind.rows`
evaluate stored rows      :meth:`StudyKind.evaluate`
export positions/returns  :meth:`StudyKind.trades`
trial-set evidence        :meth:`StudyKind.member_net_returns`,
                          :meth:`StudyKind.benchmark_net_returns`
report                    :meth:`StudyKind.write_report`
========================  =================================================================

Everything else (planning, batching and training the networks, storing, the trial set,
significance and the verdict, the page of a report) is shared.
"""

from __future__ import annotations

from collections.abc import Mapping, MutableMapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd
    import sqlalchemy as sa

    from lstm_madness.evaluation.evidence import TrialEvidence
    from lstm_madness.evaluation.judgement import Evaluation
    from lstm_madness.evaluation.settings import EvaluationSettings
    from lstm_madness.experiment.config import ExperimentConfig
    from lstm_madness.experiment.folds import Fold
    from lstm_madness.report.seeds import SeedSet

__all__ = ["Evaluated", "FoldBaselines", "FoldPlan", "StudyKind"]


@dataclass(frozen=True, eq=False)
class FoldPlan:
    """The folds of a data group that hold test samples.

    ``table`` is the runs' fold table (``fold``, ``train_start``, ``train_end``,
    ``test_start``, ``test_end``, ``n_train``, ``n_test``; stored with
    :func:`~lstm_madness.store.predictions.record_folds`), one row per kept fold;
    ``n_features`` the features per time step (for the memory budget of
    :func:`~lstm_madness.experiment.plan.fold_groups`)."""

    folds: Sequence[Fold]
    table: pd.DataFrame
    n_features: int


@dataclass(frozen=True, eq=False)
class FoldBaselines:
    """The baselines' test predictions of one fold (``"baseline:<name>"`` -> values, in
    the order of the fold's test samples) and ``keep``: the test samples every model of
    a run is stored on (all of them when None)."""

    predictions: dict[str, np.ndarray]
    keep: np.ndarray | None = field(default=None)


class Evaluated(NamedTuple):
    """A run's evaluation and its test frame (index date; what the summary's dates and
    ``n_test``, the report and the run's result read)."""

    evaluation: Evaluation
    frame: pd.DataFrame


class StudyKind(Protocol):
    """What a study kind implements (module docstring). A kind is stateless: one
    instance serves every run of its kind."""

    #: "timing" (one asset) or "cross_section" (a universe)
    name: str
    #: whether the members of a data group store one copy of the baselines' predictions
    #: (held by the first member's rows) or each its own
    shares_baselines: bool

    # -- data and training (the runner) ---------------------------------------------

    def check(self, engine: sa.Engine, config: ExperimentConfig) -> None:
        """Refuse ``config`` (DataError, ConfigError) before a run is registered, without
        reading prices: what :meth:`load` and :meth:`plan_folds` would refuse."""
        ...

    def baseline_names(self, config: ExperimentConfig) -> tuple[str, ...]:
        """The baselines a run fits: ``baselines.models``, else the kind's for its task."""
        ...

    def load(self, engine: sa.Engine, config: ExperimentConfig) -> Any:
        """The data of a data group, read once from the store."""
        ...

    def plan_folds(self, study: Any, config: ExperimentConfig) -> FoldPlan:
        """The folds of ``config.split`` on the study's calendar that hold test samples."""
        ...

    def fold_data(self, study: Any, fold: Fold) -> Any:
        """One fold's samples: ``windows_train``, ``y_train``, ``windows_test`` (what the
        networks fit and predict: arrays or :class:`~lstm_madness.windows.PanelWindows`) and
        ``X_train``/``X_test`` (dense, for the baselines), scaled on training rows only."""
        ...

    def fit_baselines(self, config: ExperimentConfig, data: Any, timings: Any) -> FoldBaselines:
        """Fit every baseline of :meth:`baseline_names` on one fold's data and predict its
        test samples, adding their training time to ``timings`` (``.add(name, ...)``)."""
        ...

    def validation_gap(self, config: ExperimentConfig, data: Any) -> int:
        """Training samples dropped between the fit set and the validation tail of a
        network trained on this fold (its early stopping)."""
        ...

    def rows(
        self,
        config: ExperimentConfig,
        data: Any,
        predictions: Mapping[str, np.ndarray],
        keep: np.ndarray | None,
    ) -> pd.DataFrame:
        """The prediction rows a run stores for one fold (columns model, split, date,
        symbol, y_true, y_pred, realized), of the test samples ``keep`` selects."""
        ...

    # -- evaluation (the summaries) ------------------------------------------------

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
        """Evaluate a run's stored test rows (those of every model) against its trial
        set's evidence."""
        ...

    def trades(
        self, predictions: pd.DataFrame, settings: EvaluationSettings, task: str
    ) -> pd.DataFrame:
        """Stored rows with ``position``, ``gross_return`` and ``net_return``: every model
        backtested under ``settings``, as in its summary (``madness runs predictions``)."""
        ...

    # -- the trial set's evidence (the ledger) -------------------------------------

    def member_net_returns(
        self, frame: pd.DataFrame, tasks: Mapping[int, str], settings: EvaluationSettings
    ) -> dict[int, pd.Series]:
        """Daily net returns (date-indexed) of each trial-set member's primary model,
        backtested under the judged run's ``settings`` over its own dates. ``frame``:
        columns run_id, date, symbol, y_pred, realized; ``tasks``: each member's task."""
        ...

    def benchmark_net_returns(
        self,
        frame: pd.DataFrame,
        first: int,
        dates: pd.DatetimeIndex,
        settings: EvaluationSettings,
    ) -> np.ndarray:
        """The benchmark of SPA and StepM on the trial set's common ``dates``: buy-and-hold
        (one asset), or the equal-weight book of the members of the member ``first``."""
        ...

    # -- the report (the report glue) ----------------------------------------------

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
        """Write the run's report (``report.html`` and its PNGs) into ``out_dir``; return
        the HTML's path. ``folds``: the run's stored fold table."""
        ...
