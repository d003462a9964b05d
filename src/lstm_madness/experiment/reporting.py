"""Glue between the ledger and :mod:`lstm_madness.report`: report and compare stored runs."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

import pandas as pd
import sqlalchemy as sa

from lstm_madness.errors import RunError
from lstm_madness.experiment.kinds import Evaluated, study_kind
from lstm_madness.experiment.show import show_run
from lstm_madness.experiment.summary import RunEvaluation, evaluate_runs
from lstm_madness.report.formats import at_finish_note
from lstm_madness.report.seeds import SeedRun, SeedSet
from lstm_madness.store.predictions import load_folds
from lstm_madness.store.runs import seed_family


def model_table(summary: dict) -> pd.DataFrame:
    """One row per model: out-of-sample MSE, MAE, R²_oos, hit rate, n, training samples
    and epochs per fold (as text: mean, range, total over the folds) and this run's
    training time."""
    from lstm_madness.report import formats as fmt

    rows = [
        {
            "model": name,
            **{k: m.get(k) for k in ("mse", "mae", "r2_oos", "hit_rate", "n")},
            "training samples per fold": fmt.per_fold(
                m.get("n_train"), None, None, m.get("n_train_total"), m.get("n_folds")
            ),
            "epochs per fold": fmt.per_fold(
                m.get("epochs_run"),
                m.get("epochs_run_min"),
                m.get("epochs_run_max"),
                m.get("epochs_run_total"),
                m.get("n_folds"),
            ),
            "train_s": m.get("train_s"),
        }
        for name, m in summary["models"].items()
    ]
    return pd.DataFrame(rows)


def seed_set(evaluations: Iterable[RunEvaluation]) -> SeedSet:
    """The evaluated seeds of one configuration as a :class:`~lstm_madness.report.seeds.SeedSet`:
    each seed's figures from its summary, its daily series from its evaluation."""
    return SeedSet.of(SeedRun(e.run_id, e.run.seed, e.summary, e.evaluation) for e in evaluations)


def family_seeds(engine: sa.Engine, result: RunEvaluation) -> SeedSet | None:
    """The seeds of ``result``'s config on its target and test period
    (:func:`~lstm_madness.store.runs.seed_family`), the others evaluated now; None when it
    has no other."""
    others = [r.id for r in seed_family(engine, result.run) if r.id != result.run_id]
    if not others:
        return None
    return seed_set([*evaluate_runs(engine, others).values(), result])


def write_evaluation_report(
    engine: sa.Engine, result: RunEvaluation, out_dir: Path, *, seeds: SeedSet | None = None
) -> Path:
    """Write the HTML report (and PNGs) of an evaluated run; return the HTML path.

    ``seeds``: the seeds of its configuration (the run among them), shown first. The run's
    study kind writes it (:meth:`~lstm_madness.experiment.kinds.base.StudyKind.write_report`:
    the single-asset page, or the universe's)."""
    run = result.run
    info = {
        "id": result.run_id,
        "target": result.config.target_key,
        "sweep_id": run.sweep_id,
        "name": run.name,
        "status": run.status,
        "started": str(run.started_at)[:19],
        "config": run.config,
        "timings": result.summary.get("timings"),
        "git_commit": run.git_commit,
        "import": run.import_spec,
        "at_finish_note": at_finish_note(result.summary),
    }
    return study_kind(result.config).write_report(
        Path(out_dir),
        run=info,
        evaluated=Evaluated(result.evaluation, result.frame),
        folds=load_folds(engine, result.run_id),
        model_table=model_table(result.summary),
        seeds=seeds,
    )


def report_dir(out: Path, run_id: int) -> Path:
    """Where the report of run ``run_id`` goes under the folder ``out``: ``out/run-N/``
    (``report.html`` and its PNGs), for ``madness report`` and ``madness demo`` alike."""
    return Path(out) / f"run-{run_id}"


def write_run_report(engine: sa.Engine, run_id: int, out_dir: Path) -> tuple[Path, dict]:
    """Write the HTML report (and PNGs) of a succeeded run.

    The run is evaluated against the ledger as it is now (:func:`show_run`, as ``madness
    runs show``), so the report states the same numbers. When other seeds of its config
    succeeded on the same target and test period
    (:func:`~lstm_madness.store.runs.seed_family`), they are evaluated in the same pass and
    the report covers them all. Returns the HTML path and the run's summary.
    """
    shown = show_run(engine, run_id, live=True, seeds=True)
    result = shown.evaluation
    if result is None:
        run = shown.run
        raise RunError(
            f"run {run_id} is {run.status}"
            + (f" ({run.error})" if run.error else "")
            + "; only succeeded runs have a report"
        )
    seeds = seed_set(shown.evaluations.values()) if len(shown.evaluations) > 1 else None
    return write_evaluation_report(engine, result, Path(out_dir), seeds=seeds), result.summary


def write_seeds_report(
    engine: sa.Engine, run_ids: Sequence[int], out_dir: Path, *, shown: int | None = None
) -> tuple[Path, RunEvaluation, SeedSet]:
    """Evaluate the seeds ``run_ids`` of one configuration in one pass and write the report
    of ``shown`` (default: the median seed by net Sharpe), covering all of them, into
    ``out_dir/run-N/`` (:func:`report_dir`). Returns the HTML path, the shown run's
    evaluation and the seed set."""
    evaluations = evaluate_runs(engine, run_ids)
    seeds = seed_set(evaluations.values())
    chosen = seeds.median_run().run_id if shown is None else int(shown)
    result = evaluations[chosen]
    path = write_evaluation_report(engine, result, report_dir(out_dir, chosen), seeds=seeds)
    return path, result, seeds
