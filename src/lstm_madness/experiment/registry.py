"""The run registry: runs, their folds, every prediction and per-model metrics.

A run is ``running`` while its process lives (it refreshes ``heartbeat_at``), then
``succeeded`` or ``failed`` (with the reason). A run whose process died without a word
(SIGKILL, power loss) is found by :func:`mark_stale_runs` and marked ``failed`` with
``error = "stale: ..."``. Only succeeded runs count as evidence (trials, SPA peers).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import socket
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd
import sqlalchemy as sa

from lstm_madness.data import schema
from lstm_madness.data.bulk import insert_frame
from lstm_madness.errors import RunError
from lstm_madness.experiment.config import ExperimentConfig

#: A running run whose heartbeat is older than this, on another host, is stale.
STALE_AFTER = dt.timedelta(minutes=30)


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def git_commit() -> str | None:
    """The checkout's commit when the package runs from a git work tree, else None."""
    root = Path(__file__).resolve().parents[3]
    try:
        out = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    commit = out.stdout.strip()
    return commit if len(commit) == 40 else None


def create_run(
    engine: sa.Engine,
    config: ExperimentConfig,
    *,
    name: str | None = None,
    sweep_id: int | None = None,
) -> int:
    """Insert a ``running`` run for ``config`` and return its id."""
    now = utcnow()
    values = dict(
        name=name or config.name or None,
        sweep_id=sweep_id,
        config_json=json.dumps(config.to_dict(), sort_keys=True),
        config_hash=config.hash(),
        family_hash=config.hash(without_seed=True),
        target=config.data.target,
        seed=config.train.seed,
        git_commit=git_commit(),
        status="running",
        started_at=now,
        heartbeat_at=now,
        host=socket.gethostname(),
        pid=os.getpid(),
    )
    with engine.begin() as conn:
        return int(conn.execute(schema.runs.insert().values(**values)).inserted_primary_key[0])


def claim_run(engine: sa.Engine, run_id: int) -> None:
    """Mark a failed run ``running`` again, owned by this process (for ``--resume``)."""
    now = utcnow()
    with engine.begin() as conn:
        conn.execute(
            schema.runs.update()
            .where(schema.runs.c.id == run_id)
            .values(
                status="running",
                error=None,
                finished_at=None,
                heartbeat_at=now,
                host=socket.gethostname(),
                pid=os.getpid(),
            )
        )


def heartbeat(engine: sa.Engine, run_id: int) -> None:
    with engine.begin() as conn:
        conn.execute(
            schema.runs.update().where(schema.runs.c.id == run_id).values(heartbeat_at=utcnow())
        )


def record_folds(engine: sa.Engine, run_id: int, folds: pd.DataFrame) -> None:
    """Store the fold plan (columns fold, train_start, train_end, test_start, test_end,
    n_train, n_test) unless it is already stored (resume)."""
    with engine.begin() as conn:
        have = conn.execute(
            sa.select(sa.func.count())
            .select_from(schema.folds)
            .where(schema.folds.c.run_id == run_id)
        ).scalar_one()
        if have:
            return
        rows = folds.assign(run_id=run_id).to_dict("records")
        conn.execute(schema.folds.insert(), rows)
        conn.execute(
            schema.runs.update()
            .where(schema.runs.c.id == run_id)
            .values(test_start=folds["test_start"].min(), test_end=folds["test_end"].max())
        )


def completed_folds(engine: sa.Engine, run_id: int) -> set[int]:
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(schema.folds.c.fold).where(
                schema.folds.c.run_id == run_id, schema.folds.c.completed_at.is_not(None)
            )
        )
        return {int(r[0]) for r in rows}


def save_fold(engine: sa.Engine, run_id: int, fold: int, predictions: pd.DataFrame) -> None:
    """Atomically replace fold ``fold``'s predictions and mark the fold completed.

    ``predictions`` has columns model, split, date, symbol, y_true, y_pred, realized.
    """
    frame = predictions.assign(run_id=run_id, fold=fold)[
        ["run_id", "model", "fold", "split", "date", "symbol", "y_true", "y_pred", "realized"]
    ]
    frame = frame.assign(date=pd.to_datetime(frame["date"]).dt.date)
    p = schema.predictions
    with engine.begin() as conn:
        conn.execute(p.delete().where(p.c.run_id == run_id, p.c.fold == fold))
        insert_frame(conn, p, frame)
        conn.execute(
            schema.folds.update()
            .where(schema.folds.c.run_id == run_id, schema.folds.c.fold == fold)
            .values(completed_at=utcnow())
        )
        conn.execute(
            schema.runs.update().where(schema.runs.c.id == run_id).values(heartbeat_at=utcnow())
        )


def save_metrics(engine: sa.Engine, run_id: int, metrics: pd.DataFrame) -> None:
    """Replace the run's metrics (columns model, split, name, value)."""
    m = schema.metrics
    frame = metrics.assign(run_id=run_id)[["run_id", "model", "split", "name", "value"]]
    with engine.begin() as conn:
        conn.execute(m.delete().where(m.c.run_id == run_id))
        insert_frame(conn, m, frame)


def finish_run(
    engine: sa.Engine,
    run_id: int,
    status: str,
    *,
    error: str | None = None,
    summary: dict[str, Any] | None = None,
) -> None:
    """Set the final status. ``succeeded`` requires ``summary``."""
    if status not in ("succeeded", "failed"):
        raise ValueError(status)
    values: dict[str, Any] = dict(status=status, finished_at=utcnow(), error=error)
    if summary is not None:
        values["summary_json"] = json.dumps(summary, sort_keys=True)
    with engine.begin() as conn:
        conn.execute(schema.runs.update().where(schema.runs.c.id == run_id).values(**values))


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def mark_stale_runs(engine: sa.Engine) -> list[int]:
    """Mark ``running`` runs whose process is gone as ``failed`` (stale); return their ids.

    On this host a run is stale when its pid no longer exists; elsewhere when its heartbeat
    is older than :data:`STALE_AFTER`.
    """
    r = schema.runs
    host = socket.gethostname()
    now = utcnow()
    stale: list[int] = []
    with engine.begin() as conn:
        rows = conn.execute(
            sa.select(r.c.id, r.c.host, r.c.pid, r.c.heartbeat_at).where(r.c.status == "running")
        ).all()
        for run_id, run_host, pid, beat in rows:
            if beat is not None and beat.tzinfo is None:
                beat = beat.replace(tzinfo=dt.UTC)
            if run_host == host:
                dead = pid is None or not _pid_alive(int(pid))
            else:
                dead = beat is None or now - beat > STALE_AFTER
            if dead:
                conn.execute(
                    r.update()
                    .where(r.c.id == run_id, r.c.status == "running")
                    .values(
                        status="failed",
                        finished_at=now,
                        error=f"stale: process {pid} on {run_host} stopped without finishing "
                        "(killed?)",
                    )
                )
                stale.append(int(run_id))
    return stale


def get_run(engine: sa.Engine, run_id: int) -> dict[str, Any]:
    """The run's row as a dict with ``config`` and ``summary`` decoded."""
    with engine.connect() as conn:
        row = (
            conn.execute(sa.select(schema.runs).where(schema.runs.c.id == run_id))
            .mappings()
            .first()
        )
    if row is None:
        raise RunError(f"no run with id {run_id}")
    run = dict(row)
    run["config"] = json.loads(run.pop("config_json"))
    summary = run.pop("summary_json")
    run["summary"] = json.loads(summary) if summary else None
    return run


def list_runs(
    engine: sa.Engine, *, sweep_id: int | None = None, limit: int | None = None
) -> pd.DataFrame:
    r = schema.runs
    query = sa.select(
        r.c.id,
        r.c.name,
        r.c.sweep_id,
        r.c.target,
        r.c.seed,
        r.c.status,
        r.c.started_at,
        r.c.finished_at,
        r.c.test_start,
        r.c.test_end,
        r.c.error,
    ).order_by(r.c.id.desc())
    if sweep_id is not None:
        query = query.where(r.c.sweep_id == sweep_id)
    if limit:
        query = query.limit(limit)
    with engine.connect() as conn:
        return pd.DataFrame(
            conn.execute(query).mappings().all(), columns=[c.name for c in query.selected_columns]
        )


def delete_run(engine: sa.Engine, run_id: int) -> None:
    get_run(engine, run_id)
    with engine.begin() as conn:
        for table in (schema.predictions, schema.metrics, schema.folds):
            conn.execute(table.delete().where(table.c.run_id == run_id))
        conn.execute(schema.runs.delete().where(schema.runs.c.id == run_id))


def load_predictions(
    engine: sa.Engine,
    run_id: int,
    *,
    split: str | None = "test",
    models: Sequence[str] | None = None,
) -> pd.DataFrame:
    """Stored predictions (columns model, fold, split, date, symbol, y_true, y_pred,
    realized)."""
    p = schema.predictions
    query = (
        sa.select(
            p.c.model,
            p.c.fold,
            p.c.split,
            p.c.date,
            p.c.symbol,
            p.c.y_true,
            p.c.y_pred,
            p.c.realized,
        )
        .where(p.c.run_id == run_id)
        .order_by(p.c.model, p.c.date)
    )
    if split is not None:
        query = query.where(p.c.split == split)
    if models is not None:
        query = query.where(p.c.model.in_(list(models)))
    with engine.connect() as conn:
        frame = pd.DataFrame(
            conn.execute(query).all(),
            columns=["model", "fold", "split", "date", "symbol", "y_true", "y_pred", "realized"],
        )
    frame["date"] = pd.to_datetime(frame["date"])
    return frame


def load_folds(engine: sa.Engine, run_id: int) -> pd.DataFrame:
    f = schema.folds
    query = (
        sa.select(
            f.c.fold,
            f.c.train_start,
            f.c.train_end,
            f.c.test_start,
            f.c.test_end,
            f.c.n_train,
            f.c.n_test,
            f.c.completed_at,
        )
        .where(f.c.run_id == run_id)
        .order_by(f.c.fold)
    )
    with engine.connect() as conn:
        return pd.DataFrame(
            conn.execute(query).all(), columns=[c.name for c in query.selected_columns]
        )


def load_metrics(engine: sa.Engine, run_id: int) -> pd.DataFrame:
    m = schema.metrics
    query = sa.select(m.c.model, m.c.split, m.c.name, m.c.value).where(m.c.run_id == run_id)
    with engine.connect() as conn:
        return pd.DataFrame(conn.execute(query).all(), columns=["model", "split", "name", "value"])


def peer_runs(
    engine: sa.Engine,
    *,
    target: str,
    test_start: dt.date,
    test_end: dt.date,
    exclude: int | None = None,
) -> pd.DataFrame:
    """Succeeded runs with the same target and test period: the trials behind a result."""
    r = schema.runs
    query = (
        sa.select(r.c.id, r.c.family_hash, r.c.seed, r.c.summary_json)
        .where(
            r.c.target == target,
            r.c.test_start == test_start,
            r.c.test_end == test_end,
            r.c.status == "succeeded",
        )
        .order_by(r.c.id)
    )
    if exclude is not None:
        query = query.where(r.c.id != exclude)
    with engine.connect() as conn:
        return pd.DataFrame(
            conn.execute(query).all(), columns=["id", "family_hash", "seed", "summary_json"]
        )


def pending_trials(engine: sa.Engine, run_id: int) -> int:
    """Runs of the same sweep, still running, that will be trials beside ``run_id``: same
    target and the same test period (or none recorded yet)."""
    r = schema.runs
    run = get_run(engine, run_id)
    if run["sweep_id"] is None:
        return 0
    same_period = sa.or_(
        r.c.test_start.is_(None),
        sa.and_(r.c.test_start == run["test_start"], r.c.test_end == run["test_end"]),
    )
    query = (
        sa.select(sa.func.count())
        .select_from(r)
        .where(
            r.c.sweep_id == run["sweep_id"],
            r.c.status == "running",
            r.c.id != run_id,
            r.c.target == run["target"],
            same_period,
        )
    )
    with engine.connect() as conn:
        return int(conn.execute(query).scalar_one())


def load_model_predictions(
    engine: sa.Engine, run_ids: Sequence[int], model: str
) -> tuple[dict[int, dict[str, Any]], pd.DataFrame]:
    """Configs and test predictions of one model for many runs, in two queries.

    Returns ``({run_id: config}, frame)`` where frame has columns run_id, date, y_pred,
    realized, ordered by run and date.
    """
    ids = [int(i) for i in run_ids]
    p, r = schema.predictions, schema.runs
    with engine.connect() as conn:
        configs = {
            int(i): json.loads(c)
            for i, c in conn.execute(sa.select(r.c.id, r.c.config_json).where(r.c.id.in_(ids)))
        }
        rows = conn.execute(
            sa.select(p.c.run_id, p.c.date, p.c.y_pred, p.c.realized)
            .where(p.c.run_id.in_(ids), p.c.model == model, p.c.split == "test")
            .order_by(p.c.run_id, p.c.date)
        ).all()
    frame = pd.DataFrame(rows, columns=["run_id", "date", "y_pred", "realized"])
    frame["date"] = pd.to_datetime(frame["date"])
    return configs, frame
