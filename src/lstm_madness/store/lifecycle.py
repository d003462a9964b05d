"""A run's lifecycle: the writes that move a run from one status to the next.

- ``queued``: registered by a sweep driver (:func:`create_runs`), not yet executed. Its
  ``host``/``pid`` are the driver's, so it is never stale while the driver lives.
- ``running``: claimed by the process that executes it (:func:`claim_runs`: its host and
  pid), which refreshes ``heartbeat_at`` while it trains (:class:`Heartbeat`).
- ``succeeded`` (with its summary) or ``failed`` (with the reason), set by
  :func:`finish_run` / :func:`finish_with_summaries` / :func:`fail_runs`.

A run whose process died without a word (SIGKILL, power loss) is found by
:func:`mark_stale_runs` and marked ``failed`` with ``error = "stale: ..."``. A failure
that could not be written (a full disk: :func:`fail_runs_or_defer`) is written by this
process's next :func:`mark_stale_runs` that can write, or found stale by another process
once this one has exited; a store that cannot be written is still read. A deleted
succeeded run stays as a tombstone (status ``deleted``, :func:`delete_run`) with its
primary model's test predictions, so it still counts as a trial.
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
from typing import Any, Protocol

import sqlalchemy as sa

from lstm_madness.data import schema
from lstm_madness.errors import RunError
from lstm_madness.store import faults
from lstm_madness.store.predictions import hand_over_baselines
from lstm_madness.store.runs import UNFINISHED, get_run, utcnow

__all__ = [
    "HEARTBEAT_EVERY_S",
    "STALE_AFTER",
    "Heartbeat",
    "RunConfig",
    "StaleRuns",
    "claim_run",
    "claim_runs",
    "create_imported_runs",
    "create_run",
    "create_runs",
    "delete_run",
    "fail_runs",
    "fail_runs_or_defer",
    "find_stale_runs",
    "finish_run",
    "finish_with_summaries",
    "git_commit",
    "heartbeat",
    "mark_stale_runs",
    "set_objectives",
]

#: A running run whose heartbeat is older than this, on another host, is stale.
STALE_AFTER = dt.timedelta(minutes=30)
#: Seconds between two heartbeats of a training process (well under STALE_AFTER).
HEARTBEAT_EVERY_S = 30.0


class RunConfig(Protocol):
    """What registering a run reads of its config (an
    :class:`~lstm_madness.experiment.config.ExperimentConfig`)."""

    name: str
    train: Any  #: ``.seed``: the training seed
    model: Any  #: ``.kind``: the network, the run's primary model

    @property
    def target_key(self) -> str: ...

    def to_dict(self) -> dict[str, Any]: ...

    def hash(self, *, without_seed: bool = False) -> str: ...


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
    config: RunConfig,
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


def _insert(engine: sa.Engine, rows: list[dict[str, Any]]) -> list[int]:
    r = schema.runs
    with engine.begin() as conn:
        result = conn.execute(r.insert().returning(r.c.id, sort_by_parameter_order=True), rows)
        return [int(i) for i in result.scalars().all()]


def create_run(
    engine: sa.Engine,
    config: RunConfig,
    *,
    name: str | None = None,
    sweep_id: int | None = None,
) -> int:
    """Insert a ``running`` run for ``config``, owned by this process; return its id."""
    (run_id,) = create_runs(engine, [config], names=[name], sweep_id=sweep_id, status="running")
    return run_id


def create_runs(
    engine: sa.Engine,
    configs: Sequence[RunConfig],
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
    return _insert(
        engine,
        [_run_values(c, n, sweep_id, status, commit) for c, n in zip(configs, names, strict=True)],
    )


def create_imported_runs(
    engine: sa.Engine,
    items: Sequence[tuple[RunConfig, Mapping[str, Any], str | None, str]],
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
    return _insert(engine, rows)


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


def set_objectives(
    engine: sa.Engine,
    objectives: Mapping[int, float | None],
    trainers: Mapping[int, str | None] | None = None,
) -> None:
    """Store each run's optimization objective (the network's mean validation loss), the
    number a search (Optuna) minimizes, and the trainer that fitted its network
    (``torch`` / ``batched`` / ``compiled``); NaN is stored as NULL."""
    r = schema.runs
    trainers = trainers or {}
    with engine.begin() as conn:
        for run_id, value in objectives.items():
            clean = None if value is None or not math.isfinite(value) else float(value)
            values: dict[str, Any] = {"objective": clean}
            if trainers.get(run_id):
                values["trainer"] = trainers[run_id]
            conn.execute(r.update().where(r.c.id == int(run_id)).values(**values))


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
        conn.execute(schema.runs.update().where(schema.runs.c.id == run_id).values(**values))


def finish_with_summaries(
    engine: sa.Engine,
    summaries: Mapping[int, dict[str, Any]],
    *,
    status: str = "succeeded",
    error: str | None = None,
) -> None:
    """:func:`finish_run` of many runs with their summaries, in one transaction."""
    now = utcnow()
    m = schema.metrics
    rows = [
        {"run_id": int(run_id), "model": name, "split": "test", "name": k, "value": float(v)}
        for run_id, summary in summaries.items()
        for name, vals in (summary.get("models") or {}).items()
        for k, v in vals.items()
        if isinstance(v, int | float) and not isinstance(v, bool)
    ]
    faults.reached("finishing", engine)
    with engine.begin() as conn:
        for run_id, summary in summaries.items():
            conn.execute(
                schema.runs.update()
                .where(schema.runs.c.id == int(run_id))
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


#: Failures this process could not write, by store URL: {run id: reason}
_deferred: dict[str, dict[int, str]] = {}


def _store_key(engine: sa.Engine) -> str:
    return engine.url.render_as_string(hide_password=False)


def fail_runs_or_defer(engine: sa.Engine, run_ids: Sequence[int], reason: str) -> bool:
    """:func:`fail_runs`, or, when the store refuses the write (a full disk, a lost
    connection), keep the failure and return False: this process's next
    :func:`mark_stale_runs` on the store writes it, and once this process has exited the
    runs are stale to any other. True when it was written."""
    try:
        fail_runs(engine, run_ids, reason)
    except sa.exc.DBAPIError:
        _deferred.setdefault(_store_key(engine), {}).update({int(i): reason for i in run_ids})
        return False
    return True


def _write_deferred(engine: sa.Engine) -> None:
    """Write the failures :func:`fail_runs_or_defer` kept for this store (raises as
    :func:`fail_runs` does; those written are forgotten)."""
    pending = _deferred.get(_store_key(engine), {})
    for reason in sorted(set(pending.values())):
        ids = sorted(i for i, r in pending.items() if r == reason)
        fail_runs(engine, ids, reason)
        for i in ids:
            del pending[i]


class StaleRuns(list[int]):
    """The ids :func:`mark_stale_runs` marked; ``unwritable`` is the store's reason when
    they (or any) could not be marked, else None."""

    unwritable: str | None = None

    def note(self) -> str:
        """What a read command says when the store could not be written."""
        return (
            f"the store cannot be written ({self.unwritable}): runs whose process died "
            "are not marked failed yet; showing it as it is"
        )


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


def mark_stale_runs(engine: sa.Engine) -> StaleRuns:
    """Mark unfinished runs whose process is gone as ``failed`` (stale); return their ids.

    On this host a run is stale when its owner's pid no longer exists (a ``queued`` run's
    owner is the sweep driver that registered it). On another host: a ``running`` run when
    its heartbeat is older than :data:`STALE_AFTER`; a ``queued`` run when no unfinished
    run of its sweep has had a heartbeat for that long (a sweep is alive while any member
    trains). Failures this process could not write earlier (:func:`fail_runs_or_defer`)
    are written first. Writes only when there is something to write: on a store with
    nothing stale it only reads. A store that refuses the write (a full disk, read-only)
    is not an error: nothing is marked, and the result's ``unwritable`` says why, so a
    read command still reads.
    """
    marked = StaleRuns()
    stale = _stale_runs(engine)  # what cannot be read is the caller's error
    try:
        _write_deferred(engine)
        marked.extend(_mark_stale(engine, stale))
    except sa.exc.DBAPIError as exc:
        if getattr(exc, "connection_invalidated", False):
            raise  # the store is unreachable: reading would fail as well
        lines = str(exc.orig or exc).strip().splitlines()
        marked.unwritable = lines[0] if lines else type(exc.orig or exc).__name__
    return marked


def find_stale_runs(engine: sa.Engine) -> list[int]:
    """The ids of unfinished runs whose process is gone, found as :func:`mark_stale_runs`
    finds them, without writing: what a store that cannot be written would mark."""
    return [run_id for run_id, *_ in _stale_runs(engine)]


def _stale_runs(engine: sa.Engine) -> list[tuple[int, str, int | None, str | None]]:
    """The unfinished runs whose process is gone: (id, status, pid, host) each."""
    r = schema.runs
    host = socket.gethostname()
    now = utcnow()
    stale = []
    with engine.connect() as conn:
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
            stale.append((int(run_id), status, pid, run_host))
    return stale


def _mark_stale(
    engine: sa.Engine, stale: Sequence[tuple[int, str, int | None, str | None]]
) -> list[int]:
    """Mark ``stale`` runs failed in one transaction, each only if still in the status it
    was found in (another process may have marked it first); return their ids."""
    if not stale:
        return []
    r = schema.runs
    now = utcnow()
    with engine.begin() as conn:
        for run_id, status, pid, run_host in stale:
            error = f"stale: process {pid} on {run_host} stopped without finishing (killed?)"
            conn.execute(
                r.update()
                .where(r.c.id == run_id, r.c.status == status)
                .values(status="failed", finished_at=now, error=error)
            )
    return [run_id for run_id, *_ in stale]


def delete_run(engine: sa.Engine, run_id: int) -> str:
    """Delete a run; return what was done: ``"tombstone"`` or ``"removed"``.

    A succeeded run was a trial, and deleting it must not lower the count: it becomes a
    tombstone (status ``deleted``) that keeps its row, folds and its primary model's test
    predictions (what its daily net returns are recomputed from), and loses the rest (other
    models' predictions, metrics). A failed run never counted and is removed with all it
    stored. A running run cannot be deleted, nor a queued one while its owner (the sweep
    that registered it) lives; a tombstone stays as it is. Baselines that other runs of
    its data group read from its rows are handed over first (see
    :func:`~lstm_madness.store.predictions.share_baselines`), so they lose nothing.
    """
    run = get_run(engine, run_id)
    if run.status == "queued" and run_id in mark_stale_runs(engine):
        run = get_run(engine, run_id)  # its sweep died: failed now, removed below
    if run.status == "running":
        raise RunError(f"run {run_id} is running; stop it (or wait) before deleting it")
    if run.status == "queued":
        raise RunError(
            f"run {run_id} is queued by a sweep that is still going; stop the sweep (or wait) "
            "before deleting it"
        )
    if run.status == "deleted":
        return "tombstone"
    p = schema.predictions
    with engine.begin() as conn:
        hand_over_baselines(conn, run_id)
        if run.status == "succeeded":
            conn.execute(
                p.delete().where(
                    p.c.run_id == run_id,
                    sa.or_(p.c.model != run.primary_model, p.c.split != "test"),
                )
            )
            conn.execute(schema.metrics.delete().where(schema.metrics.c.run_id == run_id))
            conn.execute(
                schema.runs.update().where(schema.runs.c.id == run_id).values(status="deleted")
            )
            return "tombstone"
        for table in (schema.predictions, schema.metrics, schema.folds):
            conn.execute(table.delete().where(table.c.run_id == run_id))
        conn.execute(schema.runs.delete().where(schema.runs.c.id == run_id))
        return "removed"
