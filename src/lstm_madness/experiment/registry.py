"""The run registry: runs, their folds, every prediction and per-model metrics.

A run's lifecycle (the write side):

- ``queued``: registered by a sweep driver (:func:`create_runs`), not yet executed. Its
  ``host``/``pid`` are the driver's, so it is never stale while the driver lives.
- ``running``: claimed by the process that executes it (:func:`claim_runs`: its host and
  pid), which refreshes ``heartbeat_at`` while it trains (:class:`Heartbeat`).
- ``succeeded`` (with its summary) or ``failed`` (with the reason), set by
  :func:`finish_run` / :func:`fail_runs`.

A run whose process died without a word (SIGKILL, power loss) is found by
:func:`mark_stale_runs` and marked ``failed`` with ``error = "stale: ..."``. Only
succeeded runs count as evidence (trials, SPA peers).
"""

from __future__ import annotations

import datetime as dt
import json
import math
import os
import socket
import subprocess
import time
from collections.abc import Mapping, Sequence
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
#: Seconds between two heartbeats of a training process (well under STALE_AFTER).
HEARTBEAT_EVERY_S = 30.0
#: Statuses of runs that are not finished.
UNFINISHED = ("queued", "running")


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


def primary_model(run: Mapping[str, Any]) -> str:
    """Name of the model a run is judged by (its network's ``model.kind``); runs stored
    before schema version 2 named it ``"lstm"``."""
    return run.get("primary_model") or "lstm"


def _run_values(
    config: ExperimentConfig,
    name: str | None,
    sweep_id: int | None,
    status: str,
    commit: str | None,
) -> dict[str, Any]:
    now = utcnow()
    return dict(
        name=name or config.name or None,
        sweep_id=sweep_id,
        config_json=json.dumps(config.to_dict(), sort_keys=True),
        config_hash=config.hash(),
        family_hash=config.hash(without_seed=True),
        target=config.data.target,
        seed=config.train.seed,
        git_commit=commit,
        status=status,
        started_at=now,
        heartbeat_at=now,
        host=socket.gethostname(),
        pid=os.getpid(),
        kind="trained",
        primary_model=config.model.kind,
    )


def create_run(
    engine: sa.Engine,
    config: ExperimentConfig,
    *,
    name: str | None = None,
    sweep_id: int | None = None,
) -> int:
    """Insert a ``running`` run for ``config``, owned by this process; return its id."""
    (run_id,) = create_runs(engine, [config], names=[name], sweep_id=sweep_id, status="running")
    return run_id


def create_runs(
    engine: sa.Engine,
    configs: Sequence[ExperimentConfig],
    *,
    names: Sequence[str | None] | None = None,
    sweep_id: int | None = None,
    status: str = "queued",
) -> list[int]:
    """Register many runs in one transaction; return their ids in the order of ``configs``.

    ``queued`` runs (a sweep's points) belong to this process until an executor claims
    them with :func:`claim_runs`.
    """
    if status not in UNFINISHED:
        raise ValueError(status)
    if not configs:
        return []
    commit = git_commit()
    names = list(names) if names is not None else [None] * len(configs)
    rows = [
        _run_values(c, n, sweep_id, status, commit) for c, n in zip(configs, names, strict=True)
    ]
    r = schema.runs
    with engine.begin() as conn:
        result = conn.execute(r.insert().returning(r.c.id, sort_by_parameter_order=True), rows)
        return [int(i) for i in result.scalars().all()]


def claim_runs(
    engine: sa.Engine, run_ids: Sequence[int], *, expect: Sequence[str] = ("queued",)
) -> None:
    """Make this process (host, pid) the owner of ``run_ids``, now ``running``.

    Only runs whose status is in ``expect`` are claimed (``("failed",)`` to resume,
    ``("running",)`` for a sweep driver taking back runs its workers trained); if any is
    not, nothing is claimed and :class:`RunError` says which.
    """
    ids = [int(i) for i in run_ids]
    if not ids:
        return
    r = schema.runs
    now = utcnow()
    with engine.begin() as conn:
        updated = conn.execute(
            r.update()
            .where(r.c.id.in_(ids), r.c.status.in_(list(expect)))
            .values(
                status="running",
                error=None,
                finished_at=None,
                heartbeat_at=now,
                host=socket.gethostname(),
                pid=os.getpid(),
            )
        ).rowcount
        if updated != len(set(ids)):
            rows = conn.execute(sa.select(r.c.id, r.c.status).where(r.c.id.in_(ids))).all()
            found = dict(rows)
            bad = [
                f"run {i} is {found[i]}" if i in found else f"no run with id {i}"
                for i in ids
                if found.get(i) not in expect
            ]
            raise RunError(f"cannot claim: {'; '.join(bad)} (expected {'/'.join(expect)})")


def claim_run(engine: sa.Engine, run_id: int) -> None:
    """Mark a failed run ``running`` again, owned by this process (for ``--resume``)."""
    claim_runs(engine, [run_id], expect=("failed",))


def heartbeat(engine: sa.Engine, run_ids: int | Sequence[int]) -> None:
    """Refresh ``heartbeat_at`` of running runs."""
    ids = [int(run_ids)] if isinstance(run_ids, int) else [int(i) for i in run_ids]
    r = schema.runs
    with engine.begin() as conn:
        conn.execute(
            r.update().where(r.c.id.in_(ids), r.c.status == "running").values(heartbeat_at=utcnow())
        )


class Heartbeat:
    """Rate-limited heartbeats of the runs a process executes: call it as often as you
    like (e.g. after every epoch); it writes at most every ``every_s`` seconds."""

    def __init__(
        self, engine: sa.Engine, run_ids: Sequence[int], every_s: float = HEARTBEAT_EVERY_S
    ) -> None:
        self.engine, self.run_ids, self.every_s = engine, list(run_ids), every_s
        self.last = time.monotonic()

    def __call__(self, *_args: object, **_kwargs: object) -> None:
        now = time.monotonic()
        if now - self.last >= self.every_s:
            heartbeat(self.engine, self.run_ids)
            self.last = now


def set_objectives(engine: sa.Engine, objectives: Mapping[int, float | None]) -> None:
    """Store each run's optimization objective (the network's mean validation loss), the
    number a search (Optuna) minimizes; NaN is stored as NULL."""
    r = schema.runs
    with engine.begin() as conn:
        for run_id, value in objectives.items():
            clean = None if value is None or not math.isfinite(value) else float(value)
            conn.execute(r.update().where(r.c.id == int(run_id)).values(objective=clean))


def objectives(engine: sa.Engine, run_ids: Sequence[int]) -> dict[int, float | None]:
    """Stored objectives of ``run_ids`` (None where none was stored)."""
    r = schema.runs
    ids = [int(i) for i in run_ids]
    with engine.connect() as conn:
        rows = conn.execute(sa.select(r.c.id, r.c.objective).where(r.c.id.in_(ids))).all()
    return {int(i): (None if v is None else float(v)) for i, v in rows}


def record_folds(engine: sa.Engine, run_id: int | Sequence[int], folds: pd.DataFrame) -> None:
    """Store the fold plan (columns fold, train_start, train_end, test_start, test_end,
    n_train, n_test) of one run or many (one transaction), unless already stored (resume).
    """
    ids = [int(run_id)] if isinstance(run_id, int) else [int(i) for i in run_id]
    f, r = schema.folds, schema.runs
    with engine.begin() as conn:
        have = {
            int(i)
            for (i,) in conn.execute(sa.select(f.c.run_id).distinct().where(f.c.run_id.in_(ids)))
        }
        todo = [i for i in ids if i not in have]
        if not todo:
            return
        rows = [{**row, "run_id": i} for i in todo for row in folds.to_dict("records")]
        conn.execute(f.insert(), rows)
        conn.execute(
            r.update()
            .where(r.c.id.in_(todo))
            .values(test_start=folds["test_start"].min(), test_end=folds["test_end"].max())
        )


def completed_folds(engine: sa.Engine, run_id: int) -> set[int]:
    return completed_folds_of(engine, [run_id])[int(run_id)]


def completed_folds_of(engine: sa.Engine, run_ids: Sequence[int]) -> dict[int, set[int]]:
    """Completed folds of each run, in one query."""
    ids = [int(i) for i in run_ids]
    f = schema.folds
    out: dict[int, set[int]] = {i: set() for i in ids}
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(f.c.run_id, f.c.fold).where(
                f.c.run_id.in_(ids), f.c.completed_at.is_not(None)
            )
        )
        for run_id, fold in rows:
            out[int(run_id)].add(int(fold))
    return out


def save_fold(engine: sa.Engine, run_id: int, fold: int, predictions: pd.DataFrame) -> None:
    """Atomically replace fold ``fold``'s predictions and mark the fold completed.

    ``predictions`` has columns model, split, date, symbol, y_true, y_pred, realized.
    """
    save_folds(engine, [(run_id, fold, predictions)])


def save_folds(engine: sa.Engine, items: Sequence[tuple[int, int, pd.DataFrame]]) -> None:
    """Store the predictions of many (run, fold) pairs in one transaction and one bulk
    insert, marking those folds completed (replacing anything stored for them).

    Each item is ``(run_id, fold, predictions)`` with the columns of :func:`save_fold`.
    """
    if not items:
        return
    columns = ["run_id", "model", "fold", "split", "date", "symbol", "y_true", "y_pred"]
    frame = pd.concat(
        [p.assign(run_id=run_id, fold=fold) for run_id, fold, p in items], ignore_index=True
    )[[*columns, "realized"]]
    frame = frame.assign(date=pd.to_datetime(frame["date"]).dt.date)
    p, f, r = schema.predictions, schema.folds, schema.runs
    now = utcnow()
    by_run: dict[int, list[int]] = {}
    for run_id, fold, _ in items:
        by_run.setdefault(int(run_id), []).append(int(fold))
    with engine.begin() as conn:
        for run_id, run_folds in by_run.items():
            conn.execute(p.delete().where(p.c.run_id == run_id, p.c.fold.in_(run_folds)))
            conn.execute(
                f.update()
                .where(f.c.run_id == run_id, f.c.fold.in_(run_folds))
                .values(completed_at=now)
            )
        insert_frame(conn, p, frame)
        conn.execute(r.update().where(r.c.id.in_(list(by_run))).values(heartbeat_at=now))


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


def fail_runs(engine: sa.Engine, run_ids: Sequence[int], reason: str) -> list[int]:
    """Mark the unfinished (queued or running) runs among ``run_ids`` ``failed`` with
    ``reason``; return their ids. Finished runs are left alone."""
    ids = [int(i) for i in run_ids]
    if not ids:
        return []
    r = schema.runs
    with engine.begin() as conn:
        hit = [
            int(i)
            for (i,) in conn.execute(
                sa.select(r.c.id).where(r.c.id.in_(ids), r.c.status.in_(UNFINISHED))
            )
        ]
        if hit:
            conn.execute(
                r.update()
                .where(r.c.id.in_(hit), r.c.status.in_(UNFINISHED))
                .values(status="failed", finished_at=utcnow(), error=reason)
            )
    return hit


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _aware(value: dt.datetime | None) -> dt.datetime | None:
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=dt.UTC)
    return value


def mark_stale_runs(engine: sa.Engine) -> list[int]:
    """Mark unfinished runs whose process is gone as ``failed`` (stale); return their ids.

    On this host a run is stale when its owner's pid no longer exists (a ``queued`` run's
    owner is the sweep driver that registered it). On another host: a ``running`` run when
    its heartbeat is older than :data:`STALE_AFTER`; a ``queued`` run when no run of its
    unfinished run of its sweep has had a heartbeat for that long (a sweep is alive while
    any member trains).
    """
    r = schema.runs
    host = socket.gethostname()
    now = utcnow()
    stale: list[int] = []
    with engine.begin() as conn:
        rows = conn.execute(
            sa.select(r.c.id, r.c.status, r.c.sweep_id, r.c.host, r.c.pid, r.c.heartbeat_at).where(
                r.c.status.in_(UNFINISHED)
            )
        ).all()
        sweep_beats: dict[int, dt.datetime] = {}
        if any(row.status == "queued" and row.host != host for row in rows):
            for sweep_id, beat in conn.execute(
                sa.select(r.c.sweep_id, sa.func.max(r.c.heartbeat_at))
                .where(r.c.sweep_id.is_not(None), r.c.status.in_(UNFINISHED))
                .group_by(r.c.sweep_id)
            ):
                sweep_beats[int(sweep_id)] = _aware(beat)
        for run_id, status, sweep_id, run_host, pid, beat in rows:
            beat = _aware(beat)
            if status == "queued" and sweep_id is not None:
                beat = sweep_beats.get(int(sweep_id), beat)
            if run_host == host:
                dead = pid is None or not _pid_alive(int(pid))
            else:
                dead = beat is None or now - beat > STALE_AFTER
            if dead:
                conn.execute(
                    r.update()
                    .where(r.c.id == run_id, r.c.status == status)
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
    """Runs of the same sweep, queued or running, that will be trials beside ``run_id``: same
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
            r.c.status.in_(UNFINISHED),
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
