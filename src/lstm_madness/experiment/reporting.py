"""Glue between the registry and :mod:`lstm_madness.report`: report and compare stored runs."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import sqlalchemy as sa

from lstm_madness.errors import RunError
from lstm_madness.evaluation.metrics import hit_rate, mse
from lstm_madness.experiment import registry
from lstm_madness.experiment.summary import RunEvaluation, evaluate_runs


def model_table(summary: dict) -> pd.DataFrame:
    """One row per model: out-of-sample MSE, MAE, R²_oos, hit rate, n, training time."""
    rows = [
        {
            "model": name,
            **{
                k: m.get(k)
                for k in (
                    "mse",
                    "mae",
                    "r2_oos",
                    "hit_rate",
                    "n",
                    "n_train",
                    "epochs_run",
                    "train_s",
                )
            },
        }
        for name, m in summary["models"].items()
    ]
    return pd.DataFrame(rows)


def fold_table(
    engine: sa.Engine, run_id: int, frame: pd.DataFrame, *, primary: str = "lstm", task: str
) -> pd.DataFrame:
    """The run's folds with the network's and the zero baseline's test MSE, and the
    network's hit rate (:func:`~lstm_madness.evaluation.metrics.hit_rate`: for direction
    targets a probability above 0.5 calls "up")."""
    folds = registry.load_folds(engine, run_id).drop(columns=["completed_at"])
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


def write_evaluation_report(engine: sa.Engine, result: RunEvaluation, out_dir: Path) -> Path:
    """Write the HTML report (and PNGs) of an evaluated run; return the HTML path."""
    from lstm_madness.report import write_report

    run = result.run
    info = {
        "id": result.run_id,
        "name": run["name"],
        "status": run["status"],
        "started": str(run["started_at"])[:19],
        "config": run["config"],
        "timings": result.summary.get("timings"),
        "git_commit": run["git_commit"],
        "import": registry.import_spec(run),
    }
    if result.config.cross_section:
        from lstm_madness.report.universe import write_universe_report

        return write_universe_report(
            Path(out_dir),
            run={**info, "target": result.config.target_key},
            evaluation=result.evaluation,  # type: ignore[arg-type]
            fold_table=registry.load_folds(engine, result.run_id).drop(columns=["completed_at"]),
            model_table=model_table(result.summary),
        )
    return write_report(
        Path(out_dir),
        run=info,
        evaluation=result.evaluation,
        test_frame=result.frame.drop(columns=["realized"]),
        fold_table=fold_table(
            engine, result.run_id, result.frame, primary=result.primary, task=result.config.task
        ),
        model_table=model_table(result.summary),
        train_frame=None,
    )


def write_run_report(engine: sa.Engine, run_id: int, out_dir: Path) -> tuple[Path, dict]:
    """Write the HTML report (and PNGs) of a succeeded run.

    The run is evaluated against the registry as it is now (reading only), so the report
    states the same numbers as ``madness runs show``. Returns the HTML path and that
    summary.
    """
    run = registry.get_run(engine, run_id)
    if run["status"] != "succeeded":
        raise RunError(
            f"run {run_id} is {run['status']}"
            + (f" ({run['error']})" if run["error"] else "")
            + "; only succeeded runs have a report"
        )
    result = evaluate_runs(engine, [run_id])[run_id]
    return write_evaluation_report(engine, result, Path(out_dir)), result.summary
