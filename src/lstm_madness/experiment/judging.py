"""Judge forecasts made elsewhere: validate everything, store each model as an imported run,
evaluate them over their trial sets as trained runs are, finish them.

The steps of :func:`judge_forecasts`, in order; nothing is written before the last:

1. the config the runs are judged under (:func:`~lstm_madness.experiment.imported.judge_config`,
   only ``[backtest]`` and ``[evaluation]`` may be overridden) and one
   :class:`~lstm_madness.experiment.imported.ImportSpec` per model;
2. the target's stored history (:func:`~lstm_madness.data.store.read_returns`), the
   forecasts moved onto its decision dates (:func:`~lstm_madness.data.alignment.align_forecasts`,
   which rejects every date that cannot be judged), and per model the predictions with the
   tool's history baselines, labels and realized returns
   (:func:`~lstm_madness.experiment.imported.imported_models`);
3. a file already judged with the same settings (same :meth:`ImportSpec.run_hash`) is
   refused with the run that holds it, unless ``force``;
4. one ``imported`` run per model, one fold (the whole test period; the tool trained
   nothing, so ``n_train`` is 0 and the training window is the target's stored history
   before the test period), its test predictions, then one evaluation pass
   (:func:`~lstm_madness.experiment.summary.evaluate_runs`) and ``succeeded`` with the
   summary. If anything fails after the runs are registered they are marked ``failed``
   (never counted as trials).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd
import sqlalchemy as sa

from lstm_madness.data.alignment import align_forecasts
from lstm_madness.data.forecasts import ForecastFile
from lstm_madness.data.store import read_returns
from lstm_madness.errors import AlreadyJudgedError, DataError
from lstm_madness.experiment.imported import (
    ImportedModel,
    ImportSpec,
    imported_models,
    judge_config,
)
from lstm_madness.experiment.summary import RunEvaluation, evaluate_runs
from lstm_madness.store.lifecycle import create_imported_runs, fail_runs, finish_run
from lstm_madness.store.predictions import record_folds, save_folds
from lstm_madness.store.runs import imported_runs_holding

__all__ = ["MIN_DAYS", "judge_forecasts", "run_names"]

#: Fewest days a model needs to be evaluated at all (Sharpe ratios, correlations); below
#: ``evaluation.min_test_days`` the verdict says "too short to decide".
MIN_DAYS = 3


def run_names(forecasts: ForecastFile, name: str | None) -> list[str]:
    """Names of the runs of ``forecasts``' models: ``name`` for a one-model file, else
    ``name:model``; without ``name``, ``<file name>:model`` (or the model's name for pandas
    input)."""
    models = forecasts.models
    if name:
        return [name] if len(models) == 1 else [f"{name}:{m}" for m in models]
    if forecasts.source == "pandas":
        return list(models)
    stem = Path(forecasts.name).name
    return [f"{stem}:{m}" for m in models]


def _fold(model: ImportedModel, history: pd.Series) -> pd.DataFrame:
    before = history[history < model.test_start]
    first = (before.iloc[0] if len(before) else model.test_start).date()
    last = (before.iloc[-1] if len(before) else model.test_start).date()
    return pd.DataFrame(
        [
            {
                "fold": 0,
                "train_start": first,
                "train_end": last,
                "test_start": model.test_start.date(),
                "test_end": model.test_end.date(),
                "n_train": 0,
                "n_test": len(model.dates),
            }
        ]
    )


def judge_forecasts(
    engine: sa.Engine,
    forecasts: ForecastFile,
    *,
    target: str,
    name: str | None = None,
    alignment: str = "next_day",
    overrides: Sequence[str | tuple[str, Any]] = (),
    trials: int | None = None,
    allow_gaps: bool = False,
    force: bool = False,
) -> list[RunEvaluation]:
    """Store and judge every model of a validated forecast file; see the module docstring.

    Parameters
    ----------
    engine : sqlalchemy.Engine
        The store, holding the target's prices (schema initialised).
    forecasts : ForecastFile
        :func:`~lstm_madness.data.forecasts.read_forecasts` or
        :func:`~lstm_madness.data.forecasts.forecasts_from_pandas`; its ``task`` is the
        runs' task.
    target : str
        Symbol whose next-day returns the forecasts predict.
    name : str, optional
        Run name (see :func:`run_names`).
    alignment : {"next_day", "same_day"}
    overrides : sequence
        ``"section.key=value"`` strings or ``(key, value)`` pairs of ``[backtest]`` and
        ``[evaluation]``.
    trials : int, optional
        Forecasts tried outside the tool to arrive at these; added to each run's ``N``.
    allow_gaps : bool
        Accept missing trading days in a model's range (no position on those days).
    force : bool
        Judge again a file already judged with the same settings (a new run each time;
        identical forecasts still count once in their trial set).

    Returns
    -------
    list of RunEvaluation
        One per model, in file order, each with its finished summary.

    Raises
    ------
    ValidationError, DataError, ConfigError, AlreadyJudgedError
        The forecasts or settings, or the same file and settings already judged (without
        ``force``); nothing was stored.
    """
    config = judge_config(target, forecasts.task, overrides, name or "")
    read = dict(file=forecasts.name, checksum=forecasts.checksum, task=forecasts.task)
    how = dict(alignment=alignment, allow_gaps=allow_gaps, trials=trials)
    specs = [ImportSpec(model=model, **read, **how) for model in forecasts.models]
    returns = read_returns(engine, target)
    models = _aligned_models(forecasts, returns, target, alignment, allow_gaps)
    hashes = [spec.run_hash(config) for spec in specs]
    if not force:
        _refuse_a_repeat(engine, forecasts.name, specs, hashes)
    started = time.perf_counter()
    names = run_names(forecasts, name)
    run_ids = create_imported_runs(
        engine,
        [
            (config, spec.to_dict(), run_name, h)
            for spec, run_name, h in zip(specs, names, hashes, strict=True)
        ],
    )
    try:
        _store_predictions(engine, run_ids, models, returns, target)
        return _evaluate_and_finish(engine, run_ids, started)
    except BaseException as exc:
        fail_runs(engine, run_ids, f"{type(exc).__name__}: {exc}")
        raise


def _store_predictions(
    engine: sa.Engine,
    run_ids: Sequence[int],
    models: Sequence[ImportedModel],
    returns: pd.DataFrame,
    target: str,
) -> None:
    """Each imported run's one fold and its test predictions (model and baselines)."""
    history = pd.Series(pd.DatetimeIndex(returns["date"]))
    for run_id, model in zip(run_ids, models, strict=True):
        record_folds(engine, run_id, _fold(model, history))
    save_folds(
        engine,
        [
            (run_id, 0, model.prediction_rows(target))
            for run_id, model in zip(run_ids, models, strict=True)
        ],
    )


def _aligned_models(
    forecasts: ForecastFile,
    returns: pd.DataFrame,
    target: str,
    alignment: str,
    allow_gaps: bool,
) -> list[ImportedModel]:
    """Each model of the file on the target's calendar with its baselines and outcomes;
    refused (nothing stored) when a model has fewer than :data:`MIN_DAYS` trading days."""
    aligned = align_forecasts(
        forecasts.frame,
        returns["date"],
        alignment=alignment,
        allow_gaps=allow_gaps,
        file=forecasts.name,
        target=target,
    )
    models = imported_models(aligned, returns, forecasts.task)
    short = [m.name for m in models if len(m.dates) < MIN_DAYS]
    if short:
        raise DataError(
            f"{forecasts.name}: model(s) {', '.join(map(repr, short))} have fewer than "
            f"{MIN_DAYS} trading days: nothing to evaluate; nothing was stored"
        )
    return models


def _refuse_a_repeat(
    engine: sa.Engine, file: str, specs: Sequence[ImportSpec], hashes: Sequence[str]
) -> None:
    """Raise :class:`AlreadyJudgedError` when a model was judged with these settings."""
    held = imported_runs_holding(engine, hashes)
    if held:
        found = {s.model: held[h] for s, h in zip(specs, hashes, strict=True) if h in held}
        which = ", ".join(f"model {m!r} is run {i}" for m, i in found.items())
        raise AlreadyJudgedError(
            f"{file}: already judged with the same settings ({which}); nothing was stored",
            found,
            "pass force=True to judge it again",
        )


def _evaluate_and_finish(
    engine: sa.Engine, run_ids: Sequence[int], started: float
) -> list[RunEvaluation]:
    """Evaluate the stored runs in one pass and finish each with its summary and times."""
    stored = time.perf_counter()
    evaluations = evaluate_runs(engine, run_ids)
    share = (time.perf_counter() - stored) / len(run_ids)
    out = []
    for run_id in run_ids:
        ev = evaluations[run_id]
        summary = dict(ev.summary)
        summary["status"] = "succeeded"
        summary["timings"] = {  # see Timings.to_dict for the keys
            "store_s": (stored - started) / len(run_ids),
            "evaluate_s": share,
            "total_s": time.perf_counter() - started,
            "scope": "run",
            "total_scope": "command",
            "batch_runs": len(run_ids),
        }
        finish_run(engine, run_id, "succeeded", summary=summary)
        run = dataclasses.replace(ev.run, status="succeeded", summary=summary)
        out.append(dataclasses.replace(ev, summary=summary, run=run))
    return out
