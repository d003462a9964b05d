"""Glue between the registry and :mod:`lstm_madness.report`: report and compare stored runs."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import sqlalchemy as sa

from lstm_madness.experiment import registry
from lstm_madness.experiment.summary import evaluate_run


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


def fold_table(engine: sa.Engine, run_id: int, frame: pd.DataFrame) -> pd.DataFrame:
    """The run's folds with the network's and the zero baseline's test MSE and hit rate."""
    folds = registry.load_folds(engine, run_id).drop(columns=["completed_at"])
    rows = []
    for fold in folds.itertuples():
        window = frame.loc[pd.Timestamp(fold.test_start) : pd.Timestamp(fold.test_end)]
        y = window["y_true"]
        row = {}
        for name in ("lstm", "baseline:zero"):
            if name in window:
                row[f"mse {name}"] = float(((window[name] - y) ** 2).mean())
        if "lstm" in window:
            row["hit rate lstm"] = float(((window["lstm"] > 0) == (y > 0)).mean())
        rows.append(row)
    return pd.concat([folds.reset_index(drop=True), pd.DataFrame(rows)], axis=1)


def write_run_report(engine: sa.Engine, run_id: int, out_dir: Path) -> tuple[Path, dict]:
    """Write the HTML report (and PNGs) of a succeeded run.

    The run is evaluated afresh from its stored predictions, so the significance counts
    every trial in the registry now (e.g. all seeds of a sweep that finished after it).
    Returns the HTML path and that summary.
    """
    from lstm_madness.errors import RunError
    from lstm_madness.report import write_report

    run = registry.get_run(engine, run_id)
    if run["status"] != "succeeded":
        raise RunError(
            f"run {run_id} is {run['status']}"
            + (f" ({run['error']})" if run["error"] else "")
            + "; only succeeded runs have a report"
        )
    result = evaluate_run(engine, run_id, timings=(run["summary"] or {}).get("timings"))
    info = {
        "id": run_id,
        "name": run["name"],
        "status": run["status"],
        "started": str(run["started_at"])[:19],
        "config": run["config"],
        "timings": result.summary.get("timings"),
        "git_commit": run["git_commit"],
    }
    frame = result.frame.drop(columns=["realized"])
    path = write_report(
        Path(out_dir),
        run=info,
        evaluation=result.evaluation,
        test_frame=frame,
        fold_table=fold_table(engine, run_id, result.frame),
        model_table=model_table(result.summary),
        train_frame=None,
    )
    return path, result.summary
