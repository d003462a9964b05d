"""The run registry: runs, their folds, every prediction and per-model metrics.

A run's lifecycle (the write side):

- ``queued``: registered by a sweep driver (:func:`create_runs`), not yet executed. Its
  ``host``/``pid`` are the driver's, so it is never stale while the driver lives.
- ``running``: claimed by the process that executes it (:func:`claim_runs`: its host and
  pid), which refreshes ``heartbeat_at`` while it trains (:class:`Heartbeat`).
- ``succeeded`` (with its summary) or ``failed`` (with the reason), set by
  :func:`finish_run` / :func:`fail_runs`.

A run whose process died without a word (SIGKILL, power loss) is found by
:func:`mark_stale_runs` and marked ``failed`` with ``error = "stale: ..."``. A deleted
succeeded run stays as a tombstone (status
``deleted``) with its primary model's test predictions, so it still counts as a trial.

The *trial set* of a run (:func:`trial_set_runs`) is every succeeded or deleted run on the
same target and test period, plus the runs being evaluated with it; running members of
the same sweep, queued or running, count towards ``N`` (:func:`pending_trials`).
"""

from __future__ import annotations

import datetime as dt
import json
import math
import os
import socket
import subprocess
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from lstm_madness.errors import RunError
from lstm_madness.experiment import tables

if TYPE_CHECKING:  # pandas is imported where frames are built: reading runs needs none
    import pandas as pd

    from lstm_madness.experiment.config import ExperimentConfig

#: A running run whose heartbeat is older than this, on another host, is stale.
STALE_AFTER = dt.timedelta(minutes=30)
#: Seconds between two heartbeats of a training process (well under STALE_AFTER).
HEARTBEAT_EVERY_S = 30.0
#: Statuses of runs that are not finished.
UNFINISHED = ("queued", "running")

#: Statuses of runs that count as trials with their stored predictions.
COUNTED = ("succeeded", "deleted")

#: Name of the network's predictions in runs stored before runs named their primary model.
DEFAULT_PRIMARY = "lstm"


def primary_model(run_row: Mapping[str, Any]) -> str:
    """The model whose predictions a run is judged on (its network's ``model.kind``, e.g.
    ``"gru"``); runs stored before schema version 2 named it ``"lstm"``."""
    return run_row.get("primary_model") or DEFAULT_PRIMARY


def import_spec(run_row: Mapping[str, Any]) -> dict[str, Any] | None:
    """Where an imported run's forecasts came from (the
    :class:`~lstm_madness.experiment.imported.ImportSpec` as a dict); None for a trained run."""
    raw = run_row.get("import_json")
    return json.loads(raw) if raw else None


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
        target=config.target_key,
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
    r = tables.runs
    with engine.begin() as conn:
        result = conn.execute(r.insert().returning(r.c.id, sort_by_parameter_order=True), rows)
        return [int(i) for i in result.scalars().all()]


def create_imported_runs(
    engine: sa.Engine,
    items: Sequence[tuple[ExperimentConfig, Mapping[str, Any], str | None, str]],
) -> list[int]:
    """Register ``running`` runs of kind ``imported`` in one transaction; return their ids.

    Each item is ``(config, spec, name, run_hash)``: the config it is judged under
    (:func:`~lstm_madness.experiment.imported.judge_config`), its
    :class:`~lstm_madness.experiment.imported.ImportSpec` as a dict (stored as
    ``import_json``), its name, and :meth:`ImportSpec.run_hash`, stored as both
    ``config_hash`` and ``family_hash`` so that imported runs are never seeds of one config.
    """
    if not items:
        return []
    commit = git_commit()
    rows = []
    for config, spec, name, run_hash in items:
        row = _run_values(config, name, None, "running", commit)
        row.update(
            kind="imported",
            primary_model=spec["model"],
            checksum=spec["checksum"],
            config_hash=run_hash,
            family_hash=run_hash,
            seed=None,
            import_json=json.dumps(dict(spec), sort_keys=True),
        )
        rows.append(row)
    r = tables.runs
    with engine.begin() as conn:
        result = conn.execute(r.insert().returning(r.c.id, sort_by_parameter_order=True), rows)
        return [int(i) for i in result.scalars().all()]


def imported_runs_holding(engine: sa.Engine, run_hashes: Sequence[str]) -> dict[str, int]:
    """Imported runs (succeeded, or deleted tombstones) already holding each of
    ``run_hashes``: hash → the newest such run's id."""
    r = tables.runs
    query = (
        sa.select(r.c.config_hash, sa.func.max(r.c.id))
        .where(
            r.c.kind == "imported",
            r.c.config_hash.in_(list(run_hashes)),
            r.c.status.in_(COUNTED),
        )
        .group_by(r.c.config_hash)
    )
    with engine.connect() as conn:
        return {str(h): int(i) for h, i in conn.execute(query)}


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
    r = tables.runs
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
    r = tables.runs
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


def set_objectives(
    engine: sa.Engine,
    objectives: Mapping[int, float | None],
    trainers: Mapping[int, str | None] | None = None,
) -> None:
    """Store each run's optimization objective (the network's mean validation loss), the
    number a search (Optuna) minimizes, and the trainer that fitted its network
    (``torch`` / ``batched`` / ``compiled``); NaN is stored as NULL."""
    r = tables.runs
    trainers = trainers or {}
    with engine.begin() as conn:
        for run_id, value in objectives.items():
            clean = None if value is None or not math.isfinite(value) else float(value)
            values: dict[str, Any] = {"objective": clean}
            if trainers.get(run_id):
                values["trainer"] = trainers[run_id]
            conn.execute(r.update().where(r.c.id == int(run_id)).values(**values))


def objectives(engine: sa.Engine, run_ids: Sequence[int]) -> dict[int, float | None]:
    """Stored objectives of ``run_ids`` (None where none was stored)."""
    r = tables.runs
    ids = [int(i) for i in run_ids]
    with engine.connect() as conn:
        rows = conn.execute(sa.select(r.c.id, r.c.objective).where(r.c.id.in_(ids))).all()
    return {int(i): (None if v is None else float(v)) for i, v in rows}


def record_folds(engine: sa.Engine, run_id: int | Sequence[int], folds: pd.DataFrame) -> None:
    """Store the fold plan (columns fold, train_start, train_end, test_start, test_end,
    n_train, n_test) of one run or many (one transaction), unless already stored (resume).
    """
    ids = [int(run_id)] if isinstance(run_id, int) else [int(i) for i in run_id]
    f, r = tables.folds, tables.runs
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
    f = tables.folds
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
    import pandas as pd

    from lstm_madness.data.bulk import insert_frame

    if not items:
        return
    columns = ["run_id", "model", "fold", "split", "date", "symbol", "y_true", "y_pred"]
    frame = pd.concat(
        [p.assign(run_id=run_id, fold=fold) for run_id, fold, p in items], ignore_index=True
    )[[*columns, "realized"]]
    frame = frame.assign(date=pd.to_datetime(frame["date"]).dt.date)
    p, f, r = tables.predictions, tables.folds, tables.runs
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


def finish_run(
    engine: sa.Engine,
    run_id: int,
    status: str,
    *,
    error: str | None = None,
    summary: dict[str, Any] | None = None,
) -> None:
    """Set the final status. With ``summary`` (the run's summary at finish), store it and
    its per-model test metrics (``summary["models"]``) in the metrics table."""
    if status not in ("succeeded", "failed"):
        raise ValueError(status)
    if summary is not None:
        finish_with_summaries(engine, {run_id: summary}, status=status, error=error)
        return
    values: dict[str, Any] = dict(status=status, finished_at=utcnow(), error=error)
    with engine.begin() as conn:
        conn.execute(tables.runs.update().where(tables.runs.c.id == run_id).values(**values))


def finish_with_summaries(
    engine: sa.Engine,
    summaries: Mapping[int, dict[str, Any]],
    *,
    status: str = "succeeded",
    error: str | None = None,
) -> None:
    """:func:`finish_run` of many runs with their summaries, in one transaction."""
    now = utcnow()
    m = tables.metrics
    rows = [
        {"run_id": int(run_id), "model": name, "split": "test", "name": k, "value": float(v)}
        for run_id, summary in summaries.items()
        for name, vals in (summary.get("models") or {}).items()
        for k, v in vals.items()
        if isinstance(v, int | float) and not isinstance(v, bool)
    ]
    with engine.begin() as conn:
        for run_id, summary in summaries.items():
            conn.execute(
                tables.runs.update()
                .where(tables.runs.c.id == int(run_id))
                .values(
                    status=status,
                    finished_at=now,
                    error=error,
                    summary_json=json.dumps(summary, sort_keys=True, default=str),
                )
            )
        done = {int(r["run_id"]) for r in rows}
        if done:
            conn.execute(m.delete().where(m.c.run_id.in_(sorted(done))))
            conn.execute(m.insert(), rows)


def fail_runs(engine: sa.Engine, run_ids: Sequence[int], reason: str) -> list[int]:
    """Mark the unfinished (queued or running) runs among ``run_ids`` ``failed`` with
    ``reason``; return their ids. Finished runs are left alone."""
    ids = [int(i) for i in run_ids]
    if not ids:
        return []
    r = tables.runs
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
    r = tables.runs
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


def _decode(row: Mapping[str, Any]) -> dict[str, Any]:
    run = dict(row)
    run["config"] = json.loads(run.pop("config_json"))
    summary = run.pop("summary_json")
    run["summary"] = json.loads(summary) if summary else None
    return run


def get_run(engine: sa.Engine, run_id: int) -> dict[str, Any]:
    """The run's row as a dict with ``config`` and ``summary`` decoded."""
    with engine.connect() as conn:
        row = (
            conn.execute(sa.select(tables.runs).where(tables.runs.c.id == run_id))
            .mappings()
            .first()
        )
    if row is None:
        raise RunError(f"no run with id {run_id}")
    return _decode(row)


def get_runs(engine: sa.Engine, run_ids: Sequence[int]) -> dict[int, dict[str, Any]]:
    """Rows of several runs (as :func:`get_run`) in one query; a missing id raises."""
    ids = [int(i) for i in run_ids]
    with engine.connect() as conn:
        rows = conn.execute(sa.select(tables.runs).where(tables.runs.c.id.in_(ids))).mappings()
        runs = {int(r["id"]): _decode(r) for r in rows}
    missing = [i for i in ids if i not in runs]
    if missing:
        raise RunError(f"no run with id {missing[0]}")
    return runs


def list_runs(
    engine: sa.Engine, *, sweep_id: int | None = None, limit: int | None = None
) -> pd.DataFrame:
    import pandas as pd

    r = tables.runs
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


def delete_run(engine: sa.Engine, run_id: int) -> str:
    """Delete a run; return what was done: ``"tombstone"`` or ``"removed"``.

    A succeeded run was a trial, and deleting it must not lower the count: it becomes a
    tombstone (status ``deleted``) that keeps its row, folds and its primary model's test
    predictions (what its daily net returns are recomputed from), and loses the rest (other
    models' predictions, metrics). A failed run never counted and is removed with all it
    stored. A running run cannot be deleted; a tombstone stays as it is. Baselines that
    other runs of its data group read from its rows are handed over first (see
    :func:`share_baselines`), so they lose nothing.
    """
    run = get_run(engine, run_id)
    status = run["status"]
    if status == "running":
        raise RunError(f"run {run_id} is running; stop it (or wait) before deleting it")
    if status == "deleted":
        return "tombstone"
    p = tables.predictions
    with engine.begin() as conn:
        _hand_over_baselines(conn, run_id)
        if status == "succeeded":
            conn.execute(
                p.delete().where(
                    p.c.run_id == run_id,
                    sa.or_(p.c.model != primary_model(run), p.c.split != "test"),
                )
            )
            conn.execute(tables.metrics.delete().where(tables.metrics.c.run_id == run_id))
            conn.execute(
                tables.runs.update().where(tables.runs.c.id == run_id).values(status="deleted")
            )
            return "tombstone"
        for table in (tables.predictions, tables.metrics, tables.folds):
            conn.execute(table.delete().where(table.c.run_id == run_id))
        conn.execute(tables.runs.delete().where(tables.runs.c.id == run_id))
        return "removed"


#: Model names of baselines: a data group's runs share one stored copy of these.
BASELINES_LIKE = "baseline:%"


#: Columns of a run's predictions frame (:func:`load_predictions`), in order.
PREDICTION_COLUMNS = ["model", "fold", "split", "date", "symbol", "y_true", "y_pred", "realized"]


def _predictions_query(run_id: int, split: str | None, models: Sequence[str] | None) -> sa.Select:
    p = tables.predictions
    query = (
        sa.select(*(p.c[name] for name in PREDICTION_COLUMNS))
        .where(p.c.run_id == run_id)
        .order_by(p.c.model, p.c.date)
    )
    if split is not None:
        query = query.where(p.c.split == split)
    if models is not None:
        query = query.where(p.c.model.in_(list(models)))
    return query


def iter_predictions(
    engine: sa.Engine,
    run_ids: Sequence[int],
    *,
    split: str | None = "test",
    models: Sequence[str] | None = None,
    loaded: Mapping[int, pd.DataFrame] | None = None,
) -> Iterator[tuple[int, pd.DataFrame]]:
    """``(run_id, predictions)`` of each run in turn, as :func:`load_predictions`, on one
    connection; the baselines shared by runs of one data group are read once.

    ``loaded`` (only with ``split="test"`` and every model): rows already read, by run id,
    all of one model (columns of :func:`load_predictions`, e.g. a run's primary rows from
    :func:`load_primary_predictions`); that model is not read again.
    """
    import pandas as pd

    from lstm_madness.data.bulk import read_frame

    ids = [int(i) for i in run_ids]
    loaded = loaded or {}
    if loaded and (split != "test" or models is not None):
        raise ValueError("loaded rows stand in for a run's test predictions of every model")
    r = tables.runs
    wants_baselines = models is None or any(m.startswith("baseline:") for m in models)
    with engine.connect() as conn:
        owners = dict(
            conn.execute(sa.select(r.c.id, r.c.baselines_run_id).where(r.c.id.in_(ids))).all()
        )
        loaded = {i: loaded[i] for i in ids if i in loaded and len(loaded[i])}
        rest = _rest_of_loaded(conn, loaded)
        shared: dict[int, pd.DataFrame] = {}
        for run_id in ids:
            if run_id in loaded:
                frame = loaded[run_id][PREDICTION_COLUMNS].reset_index(drop=True)
                if run_id in rest:
                    frame = pd.concat([rest[run_id], frame], ignore_index=True)
                    frame = frame.sort_values(["model", "date"], kind="stable", ignore_index=True)
            else:
                query = _predictions_query(run_id, split, models)
                frame = read_frame(conn, query, date_columns=("date",))
            owner = owners.get(run_id)
            if owner is not None and wants_baselines:
                if owner not in shared:
                    query = _predictions_query(owner, split, models).where(
                        tables.predictions.c.model.like(BASELINES_LIKE)
                    )
                    shared[owner] = read_frame(conn, query, date_columns=("date",))
                theirs = shared[owner]
                if len(frame) and len(theirs) and theirs["model"].iloc[-1] < frame["model"].iloc[0]:
                    frame = pd.concat([theirs, frame], ignore_index=True)  # already in order
                else:
                    frame = pd.concat([frame, theirs], ignore_index=True)
                    frame = frame.sort_values(["model", "date"], kind="stable", ignore_index=True)
            yield run_id, frame


def _rest_of_loaded(
    conn: sa.Connection, loaded: Mapping[int, pd.DataFrame]
) -> dict[int, pd.DataFrame]:
    """The test predictions of the runs of ``loaded`` other than the model loaded for each,
    in one query per loaded model name (e.g. the baselines a data group's owner holds)."""
    import pandas as pd

    from lstm_madness.data.bulk import read_frame

    p = tables.predictions
    by_model: dict[str, list[int]] = {}
    for run_id, rows in loaded.items():
        by_model.setdefault(str(rows["model"].iloc[0]), []).append(run_id)
    parts = []
    for model, ids in by_model.items():
        query = (
            sa.select(p.c.run_id, *(p.c[name] for name in PREDICTION_COLUMNS))
            .where(p.c.run_id.in_(ids), p.c.split == "test", p.c.model != model)
            .order_by(p.c.run_id, p.c.model, p.c.date)
        )
        parts.append(read_frame(conn, query, date_columns=("date",)))
    frame = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()
    return {
        int(run_id): rows[PREDICTION_COLUMNS].reset_index(drop=True)
        for run_id, rows in (frame.groupby("run_id", sort=False) if len(frame) else ())
    }


def load_predictions(
    engine: sa.Engine,
    run_id: int,
    *,
    split: str | None = "test",
    models: Sequence[str] | None = None,
) -> pd.DataFrame:
    """Stored predictions of a run (columns model, fold, split, date, symbol, y_true,
    y_pred, realized; ordered by model and date), its shared baselines included."""
    return next(iter_predictions(engine, [run_id], split=split, models=models))[1]


def share_baselines(engine: sa.Engine, owner: int, run_ids: Sequence[int]) -> None:
    """Runs ``run_ids`` (of ``owner``'s data group, with nothing stored yet) read their
    baselines' predictions from ``owner``'s rows instead of storing their own copy."""
    ids = [int(i) for i in run_ids if int(i) != int(owner)]
    if ids:
        with engine.begin() as conn:
            conn.execute(
                tables.runs.update().where(tables.runs.c.id.in_(ids)).values(baselines_run_id=owner)
            )


def own_baselines(engine: sa.Engine, run_ids: Sequence[int]) -> None:
    """Give each of ``run_ids`` that reads shared baselines its own copy of them (before it
    resumes: its owner may not resume with it)."""
    r = tables.runs
    with engine.begin() as conn:
        rows = conn.execute(
            sa.select(r.c.id, r.c.baselines_run_id).where(
                r.c.id.in_([int(i) for i in run_ids]), r.c.baselines_run_id.is_not(None)
            )
        ).all()
        for run_id, owner in rows:
            _copy_baselines(conn, owner, run_id)
            conn.execute(r.update().where(r.c.id == run_id).values(baselines_run_id=None))


def _copy_baselines(conn: sa.Connection, owner: int, run_id: int) -> None:
    p = tables.predictions
    columns = [c for c in p.c if c.name != "run_id"]
    conn.execute(
        p.insert().from_select(
            ["run_id", *(c.name for c in columns)],
            sa.select(sa.literal(int(run_id)), *columns).where(
                p.c.run_id == owner, p.c.model.like(BASELINES_LIKE)
            ),
        )
    )


def _hand_over_baselines(conn: sa.Connection, owner: int) -> None:
    """Before ``owner`` loses its baselines' rows: they move to the first run reading them,
    which holds them for the others from then on."""
    r = tables.runs
    readers = [
        int(i)
        for (i,) in conn.execute(
            sa.select(r.c.id).where(r.c.baselines_run_id == owner).order_by(r.c.id)
        )
    ]
    if not readers:
        return
    heir = readers[0]
    p = tables.predictions
    conn.execute(
        p.update().where(p.c.run_id == owner, p.c.model.like(BASELINES_LIKE)).values(run_id=heir)
    )
    conn.execute(r.update().where(r.c.id == heir).values(baselines_run_id=None))
    conn.execute(r.update().where(r.c.baselines_run_id == owner).values(baselines_run_id=heir))


def load_folds(engine: sa.Engine, run_id: int) -> pd.DataFrame:
    import pandas as pd

    f = tables.folds
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


def _row_columns() -> list[sa.Column]:
    """Every column of ``runs`` but the JSON blobs (also columns added by later schemas)."""
    return [c for c in tables.runs.c if c.name not in ("config_json", "summary_json")]


def trial_set_runs(
    engine: sa.Engine,
    *,
    target: str,
    test_start: dt.date,
    test_end: dt.date,
    include: Sequence[int] = (),
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The trial set on ``target`` and a test period, in one query.

    Returns ``(members, running)``: members are the succeeded and deleted runs on that
    target and period plus the runs of ``include`` on it (runs being evaluated, e.g. still
    ``running`` at the end of a sweep), ordered by id; ``running`` are the other running
    runs on the target whose test period is the same or not known yet (candidates for
    :func:`pending_trials`). Rows are dicts without config and summary.
    """
    r = tables.runs
    ids = [int(i) for i in include]
    same = sa.and_(r.c.test_start == test_start, r.c.test_end == test_end)
    query = (
        sa.select(*_row_columns())
        .where(
            r.c.target == target,
            sa.or_(
                sa.and_(same, sa.or_(r.c.status.in_(COUNTED), r.c.id.in_(ids))),
                sa.and_(r.c.status.in_(UNFINISHED), sa.or_(same, r.c.test_start.is_(None))),
            ),
        )
        .order_by(r.c.id)
    )
    with engine.connect() as conn:
        rows = [dict(row) for row in conn.execute(query).mappings()]
    chosen = set(ids)
    members, running = [], []
    for row in rows:
        in_period = row["test_start"] == test_start and row["test_end"] == test_end
        if in_period and (row["status"] in COUNTED or int(row["id"]) in chosen):
            members.append(row)
        elif row["status"] in UNFINISHED and int(row["id"]) not in chosen:
            running.append(row)
    return members, running


def pending_trials(run: Mapping[str, Any], running: Sequence[Mapping[str, Any]]) -> int:
    """Runs of ``run``'s sweep, queued or running, that will be trials beside it (from the
    ``running`` rows of :func:`trial_set_runs`); 0 for a run outside a sweep."""
    sweep = run.get("sweep_id")
    if sweep is None:
        return 0
    return sum(1 for row in running if row.get("sweep_id") == sweep and row["id"] != run["id"])


def seed_family(engine: sa.Engine, run: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The succeeded runs of ``run``'s family (its config but the training seed,
    ``runs.family_hash``) on its target and test period, ``run`` included; id, seed and
    status of each, by id. One query (by the index on target and test period), without the
    JSON blobs."""
    r = tables.runs
    if run.get("test_start") is None:
        return []
    query = (
        sa.select(r.c.id, r.c.seed, r.c.status)
        .where(
            r.c.family_hash == run["family_hash"],
            r.c.target == run["target"],
            r.c.test_start == run["test_start"],
            r.c.test_end == run["test_end"],
            sa.or_(r.c.status == "succeeded", r.c.id == int(run["id"])),
        )
        .order_by(r.c.id)
    )
    with engine.connect() as conn:
        return [dict(row) for row in conn.execute(query).mappings()]


def load_configs(engine: sa.Engine, run_ids: Sequence[int]) -> dict[int, dict[str, Any]]:
    """Decoded configs of many runs in one query."""
    r = tables.runs
    ids = [int(i) for i in run_ids]
    with engine.connect() as conn:
        return {
            int(i): json.loads(c)
            for i, c in conn.execute(sa.select(r.c.id, r.c.config_json).where(r.c.id.in_(ids)))
        }


def load_primary_predictions(
    engine: sa.Engine,
    *,
    target: str,
    test_start: dt.date,
    test_end: dt.date,
    members: Sequence[Mapping[str, Any]],
) -> pd.DataFrame:
    """Test predictions of every member's primary model, in one query over the trial set.

    Returns a frame with columns run_id and those of :func:`load_predictions`, ordered by
    run and date (a universe study has one row per date and member).
    """
    import pandas as pd

    from lstm_madness.data.bulk import read_frame

    p, r = tables.predictions, tables.runs
    primary = {int(m["id"]): primary_model(m) for m in members}
    columns = ["run_id", *PREDICTION_COLUMNS]
    if not primary:
        return pd.DataFrame(columns=columns)
    query = (
        sa.select(p.c.run_id, *(p.c[name] for name in PREDICTION_COLUMNS if name != "split"))
        .join(r, r.c.id == p.c.run_id)
        .where(
            r.c.target == target,
            r.c.test_start == test_start,
            r.c.test_end == test_end,
            p.c.split == "test",
            p.c.model.in_(sorted(set(primary.values()))),
        )
        .order_by(p.c.run_id, p.c.date)
    )
    with engine.connect() as conn:
        frame = read_frame(conn, query, date_columns=("date",))
    keep = frame["run_id"].map(primary).eq(frame["model"])
    frame = frame.loc[keep].assign(split="test")[columns]
    return frame.reset_index(drop=True)


def create_sweep(
    engine: sa.Engine,
    *,
    name: str | None,
    config: Mapping[str, Any],
    space: Mapping[str, Any],
    engine_name: str,
) -> int:
    """Insert a sweep (base config and search space as JSON) and return its id."""
    with engine.begin() as conn:
        result = conn.execute(
            tables.sweeps.insert().values(
                name=name,
                config_json=json.dumps(config, sort_keys=True),
                space_json=json.dumps(space),
                engine=engine_name,
                created_at=utcnow(),
            )
        )
        return int(result.inserted_primary_key[0])


def sweep_runs(engine: sa.Engine, sweep_id: int) -> list[dict[str, Any]]:
    """Every run of a sweep (as :func:`get_run`), in id order, in one query."""
    r = tables.runs
    query = sa.select(r).where(r.c.sweep_id == sweep_id).order_by(r.c.id)
    with engine.connect() as conn:
        return [_decode(row) for row in conn.execute(query).mappings()]


def sweep_exists(engine: sa.Engine, sweep_id: int) -> bool:
    with engine.connect() as conn:
        query = sa.select(tables.sweeps.c.id).where(tables.sweeps.c.id == sweep_id)
        return conn.execute(query).first() is not None
