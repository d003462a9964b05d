"""A run's summary, computed from what is stored: out-of-sample metrics per model, the
backtest, forecast tests, significance over the run's trial set, and the verdict.

Everything here reads the store and writes nothing, so ``madness runs show``, ``report``,
``compare`` and ``sweep show`` state the verdict against the ledger as it is now, and
agree. :func:`evaluate_runs` evaluates many runs in one pass: each trial set's primary
predictions are loaded in one query and turned into one matrix of net returns per
backtest setting, shared by every member (see :mod:`lstm_madness.experiment.ledger`).
What a run saw when it finished is kept in its summary as ``at_finish``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa

from lstm_madness.errors import RunError
from lstm_madness.evaluation.evidence import TrialEvidence
from lstm_madness.evaluation.judgement import Evaluation
from lstm_madness.evaluation.settings import EvaluationSettings
from lstm_madness.evaluation.verdict import VerdictThresholds
from lstm_madness.experiment import ledger
from lstm_madness.experiment.config import ExperimentConfig, from_dict
from lstm_madness.experiment.kinds import study_kind
from lstm_madness.jsonable import jsonable
from lstm_madness.store.predictions import iter_predictions, load_predictions
from lstm_madness.store.runs import Run, get_run, get_runs
from lstm_madness.store.trials import TrialSet, trial_sets

__all__ = [
    "RunEvaluation",
    "evaluate_run",
    "evaluate_runs",
    "evaluation_settings",
    "prediction_table",
    "summarize_run",
]

#: Columns of ``madness runs predictions`` (and :func:`prediction_table`).
EXPORT_COLUMNS = [
    "date",
    "symbol",
    "fold",
    "model",
    "y_true",
    "y_pred",
    "realized",
    "position",
    "gross_return",
    "net_return",
]


def evaluation_settings(config: ExperimentConfig, **overrides: Any) -> EvaluationSettings:
    """The evaluation settings of ``config``'s [backtest] and [evaluation] tables and its
    forecast horizon, with the bootstrap seed of every evaluation
    (:data:`~lstm_madness.experiment.ledger.EVIDENCE_SEED`, not the training seed: a run's
    numbers are a function of its stored predictions); ``overrides`` replace fields."""
    b, e = config.backtest, config.evaluation
    settings = EvaluationSettings(
        rule=b.rule,
        threshold=b.threshold,
        cap=b.cap,
        cost_bps=b.cost_bps,
        slippage_bps=b.slippage_bps,
        risk_free=b.risk_free,
        top_k=b.top_k,
        short_borrow_bps=b.short_borrow_bps,
        bootstrap_reps=e.bootstrap_reps,
        min_test_days=e.min_test_days,
        trials_mode=e.trials_mode,
        thresholds=VerdictThresholds(min_dsr=e.min_dsr, fwer=e.fwer, alpha=e.alpha),
        horizon=config.target.horizon,
        seed=ledger.EVIDENCE_SEED,
    )
    return dataclasses.replace(settings, **overrides) if overrides else settings


@dataclass(frozen=True, eq=False)
class RunEvaluation:
    """A stored run, evaluated against the ledger as it is now.

    ``summary`` is the dict of ``madness runs show --json`` (also :meth:`to_json`);
    ``evaluation`` keeps the daily series for plots; ``frame`` is the test period (y_true,
    realized and one column per model); ``trial_ids`` the members of its trial set with
    predictions; ``run`` the stored record.
    :class:`~lstm_madness.experiment.results.RunResult` wraps it as an object with views.
    """

    summary: dict[str, Any]
    evaluation: Evaluation
    frame: pd.DataFrame
    config: ExperimentConfig
    run: Run
    trial_ids: tuple[int, ...]
    engine: sa.Engine | None = dataclasses.field(default=None, repr=False)
    #: the trial set judged against, as it was read for this evaluation (what a cached
    #: summary is keyed by: :func:`~lstm_madness.experiment.cache.summary_key`)
    trial_set: TrialSet | None = dataclasses.field(default=None, repr=False)

    @property
    def run_id(self) -> int:
        return self.run.id

    @property
    def primary(self) -> str:
        return self.evaluation.primary

    def to_json(self) -> dict[str, Any]:
        return self.summary


def _at_finish(stored: Mapping[str, Any] | None, summary: Mapping[str, Any]) -> dict[str, Any]:
    """What the run saw when it finished: from its stored summary, or (not finished yet)
    the numbers being computed now, which are what it will store."""
    source = stored or summary
    if stored and stored.get("at_finish"):
        return dict(stored["at_finish"])
    return {
        "trials": (source.get("significance") or {}).get("trials"),
        "dsr": (source.get("significance") or {}).get("dsr"),
        "tradeable": (source.get("verdict") or {}).get("tradeable"),
    }


#: What a model's entry of a summary says about its training (see :func:`_training`).
TRAINING_KEYS = (
    "n_folds",
    "n_train",
    "n_train_total",
    "epochs_run",
    "epochs_run_min",
    "epochs_run_max",
    "epochs_run_total",
    "train_s",
)


def _training(source: Mapping[str, Any]) -> dict[str, Any]:
    """A model's training figures from its recorded timings: ``n_train`` and ``epochs_run``
    are means per fold, beside their totals, extremes and ``n_folds``; ``train_s`` is this
    run's share. Timings recorded before ``n_folds`` existed hold sums only: they become
    the totals, and the figures per fold are unknown (None)."""
    out = {k: source.get(k) for k in TRAINING_KEYS}
    if "n_folds" not in source:  # summed over folds, fold count unknown
        out["n_train_total"], out["n_train"] = source.get("n_train"), None
        out["epochs_run_total"], out["epochs_run"] = source.get("epochs_run"), None
    return out


def _model_entries(
    metrics: Mapping[str, Mapping[str, Any]],
    primary: str,
    kind: str,
    timings: Mapping[str, Any],
    previous: Mapping[str, Any],
) -> dict[str, dict[str, Any]]:
    per_model = timings.get("models", {}) if timings else {}
    out = {}
    for name, values in metrics.items():
        entry = dict(values)
        key = kind if name == primary and kind in per_model else name
        source = per_model.get(key, previous.get(name, {}))
        entry.update(_training(source))
        out[name] = entry
    return out


def _seed_sharpes(
    run: Run, ts: TrialSet, evidence: ledger.MemberEvidence, memo: dict
) -> np.ndarray | None:
    """Net Sharpe ratios of the members of ``run``'s family (its config but the seed) in
    the trial set's evidence; None without another seed. Once per family and evidence."""
    key = (id(evidence), run.family_hash)
    if key not in memo:
        found, ids = evidence.evidence, evidence.ids
        position = {i: k for k, i in enumerate(ids)}
        family = [position[i] for i in ts.families.get(run.family_hash, []) if i in position]
        memo[key] = found.sharpes[family] if len(family) > 1 else None
    return memo[key]


@dataclass(frozen=True)
class _Trials:
    """How a run's trial set counts: ``evidence`` with ``trials`` set to the DSR's ``N``;
    ``override`` (``N`` given, not counted), ``pending`` (members not finished yet) and
    ``declared`` (tried outside the tool, declared by imported members)."""

    evidence: TrialEvidence
    override: bool
    pending: int
    declared: int


def _count_trials(
    run: Run, ts: TrialSet, found: ledger.MemberEvidence, override: int, extra: int
) -> _Trials:
    """``N`` of ``run``: ``override`` when non-zero, else one trial per distinct forecast
    (merged duplicates count once) plus the pending and declared ones; never below the
    members with predictions. ``extra``: runs of its batch still in progress."""
    evidence = found.evidence
    pending = max(ts.pending(run), extra)
    declared = ts.declared(found.aliases)  # a duplicate's declaration counts once
    distinct = len(ts.members) - evidence.duplicates
    n = max(override or (distinct + pending + declared), evidence.n_members)
    return _Trials(dataclasses.replace(evidence, trials=n), bool(override), pending, declared)


def _summary(
    run: Run,
    config: ExperimentConfig,
    evaluation: Evaluation,
    frame: pd.DataFrame,
    trials: _Trials,
    timings: Mapping[str, Any],
) -> dict[str, Any]:
    """The summary dict of an evaluated run (``madness runs show --json``): who it is, its
    test period, its models with their training figures, the evaluation's sections, how
    its trials were counted, and what it saw when it finished."""
    stored = run.summary
    sections = evaluation.to_json()
    significance = {
        **sections["significance"],
        "trials_override": trials.override,
        "trials_pending": trials.pending,
        "trials_declared": trials.declared,
    }
    models = _model_entries(
        evaluation.model_metrics,
        run.primary_model,
        config.model.kind,
        timings,
        (stored or {}).get("models", {}),
    )
    imported = {} if run.import_spec is None else {"import": run.import_spec}
    return jsonable(
        {
            "run_id": run.id,
            "name": run.name,
            "status": run.status,
            "target": config.target_key,
            "primary_model": run.primary_model,
            "n_test": len(frame),
            "test_start": frame.index[0].date().isoformat(),
            "test_end": frame.index[-1].date().isoformat(),
            "models": models,
            "timings": timings,
            **sections,
            "significance": significance,
            "kind": run.kind,
            **imported,
            "at_finish": _at_finish(stored, sections),
        }
    )


def _check_rows(run: Run, predictions: pd.DataFrame) -> None:
    if predictions.empty:
        raise RunError(f"run {run.id} has no stored test predictions")
    if not (predictions["model"] == run.primary_model).any():
        raise RunError(f"run {run.id} has no test predictions of its model {run.primary_model!r}")


def _evaluate_runs(
    engine: sa.Engine,
    run_ids: Sequence[int],
    *,
    trials: int | None,
    timings: Mapping[int, dict] | None,
    extra_trials: Mapping[int, int] | None = None,
) -> dict[int, RunEvaluation]:
    ids = list(dict.fromkeys(int(i) for i in run_ids))
    runs = get_runs(engine, ids)
    sets = trial_sets(engine, runs.values(), include=ids)
    configs = {i: from_dict(runs[i].config) for i in ids}
    run_settings = {i: evaluation_settings(configs[i]) for i in ids}
    memo: dict[Any, Any] = {}
    # each trial set's evidence first: it reads its members' primary predictions in one
    # query, and the runs evaluated here take theirs from it instead of reading them again
    evidences = {i: ledger.trial_evidence_of(engine, sets[i], run_settings[i], memo) for i in ids}
    loaded = ledger.loaded_primary_rows(memo, ids)
    seeds: dict[tuple, np.ndarray | None] = {}
    out: dict[int, RunEvaluation] = {}
    for run_id, predictions in iter_predictions(engine, ids, loaded=loaded):
        run, config, found = runs[run_id], configs[run_id], evidences[run_id]
        _check_rows(run, predictions)
        counted = _count_trials(
            run,
            sets[run_id],
            found,
            trials or config.evaluation.trials,
            (extra_trials or {}).get(run_id, 0),
        )
        settings = run_settings[run_id]
        if counted.override:
            settings = dataclasses.replace(settings, trials_mode="raw")
        evaluation, frame = study_kind(config).evaluate(
            engine,
            config,
            predictions,
            primary=run.primary_model,
            settings=settings,
            trial_set=counted.evidence,
            trial_position=found.column(run_id),
            seed_sharpes=_seed_sharpes(run, sets[run_id], found, seeds),
            memo=memo,
        )
        run_timings = (timings or {}).get(run_id) or (run.summary or {}).get("timings") or {}
        summary = _summary(run, config, evaluation, frame, counted, run_timings)
        out[run_id] = RunEvaluation(
            summary, evaluation, frame, config, run, tuple(found.ids), engine, sets[run_id]
        )
    return {run_id: out[run_id] for run_id in ids}


def evaluate_runs(
    engine: sa.Engine,
    run_ids: Sequence[int],
    *,
    trials: int | None = None,
    timings: Mapping[int, dict] | None = None,
) -> dict[int, RunEvaluation]:
    """Metrics, backtest, tests, significance and verdict of stored runs, in one pass.

    Reads only. Each run is judged over its trial set (see
    :mod:`lstm_madness.experiment.ledger`): ``N`` is ``trials`` if given, else
    ``evaluation.trials`` of its config if non-zero, else the trial set's size (this run
    and the other ``run_ids`` on its target and test period included, plus the running
    runs of its sweep); it is never below the members with predictions. ``V`` is the
    sample variance of the members' Sharpe ratios, this run's included, all backtested
    under this run's rule and costs. The forecasts tried outside the tool that the trial
    set's imported runs declared (``--trials`` of ``madness judge``) add to ``N``, not to
    ``V``.
    ``timings`` (per run id) replaces the stored timings.
    """
    return _evaluate_runs(engine, run_ids, trials=trials, timings=timings)


def evaluate_run(
    engine: sa.Engine,
    run_id: int,
    *,
    timings: dict | None = None,
    trials: int | None = None,
    extra_trials: int = 0,
) -> RunEvaluation:
    """:func:`evaluate_runs` of one run; ``extra_trials`` adds runs of its batch that are
    still in progress to ``N``."""
    return _evaluate_runs(
        engine,
        [run_id],
        trials=trials,
        timings={int(run_id): timings} if timings else None,
        extra_trials={int(run_id): extra_trials},
    )[int(run_id)]


def summarize_run(
    engine: sa.Engine,
    run_id: int,
    *,
    timings: dict | None = None,
    trials: int | None = None,
    extra_trials: int = 0,
) -> dict[str, Any]:
    """The summary dict of ``madness run --json`` / ``madness runs show --json``."""
    return evaluate_run(
        engine, run_id, timings=timings, trials=trials, extra_trials=extra_trials
    ).summary


def prediction_table(engine: sa.Engine, run_id: int, model: str | None = None) -> pd.DataFrame:
    """A run's test predictions with positions and daily gross and net returns.

    Columns :data:`EXPORT_COLUMNS`. Every model (or only ``model``) is backtested over the
    whole test period under the run's ``[backtest]`` rule and costs, exactly as in its
    summary: ``position`` is held from the close of ``date`` to the next close, earning
    ``gross_return = position × realized`` and ``net_return`` after costs.
    """
    config = from_dict(get_run(engine, run_id).config)
    settings = evaluation_settings(config)
    predictions = load_predictions(engine, run_id, models=None if model is None else [model])
    if predictions.empty:
        raise RunError(
            f"run {run_id} has no stored test predictions"
            + (f" of model {model!r}" if model is not None else "")
        )
    table = study_kind(config).trades(predictions, settings, config.task)
    table["date"] = table["date"].dt.date
    return table[EXPORT_COLUMNS]
