"""Runs as records: the frozen :class:`Run` (a row of ``runs``, its JSON decoded) and the
queries that read runs. The writes of a run's lifecycle are in
:mod:`lstm_madness.store.lifecycle`.

A run's ``status``: ``queued`` (registered by a sweep, not yet claimed), ``running``,
``succeeded``, ``failed`` or ``deleted`` (a tombstone: a deleted succeeded run keeps its
primary model's test predictions and still counts as a trial).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from lstm_madness.data import schema
from lstm_madness.errors import RunError

if TYPE_CHECKING:  # pandas is imported where frames are built: reading runs needs none
    import pandas as pd

__all__ = [
    "COUNTED",
    "DEFAULT_PRIMARY",
    "UNFINISHED",
    "Run",
    "get_run",
    "get_runs",
    "imported_runs_holding",
    "list_runs",
    "load_configs",
    "objectives",
    "seed_family",
    "utcnow",
]

#: Statuses of runs that are not finished.
UNFINISHED = ("queued", "running")

#: Statuses of runs that count as trials with their stored predictions.
COUNTED = ("succeeded", "deleted")

#: Name of the network's predictions in runs stored before runs named their primary model.
DEFAULT_PRIMARY = "lstm"

#: The JSON columns of ``runs`` that only a whole record carries (see :func:`light_columns`).
BLOBS = ("config_json", "summary_json")


@dataclass(frozen=True, slots=True)
class Run:
    """One stored run: the columns of ``runs``, with its JSON decoded.

    ``config`` and ``summary`` are read with the whole record (:func:`get_run`,
    :func:`get_runs`, :func:`~lstm_madness.store.sweeps.sweep_runs`); rows read without
    them (a trial set's members, a seed family: :func:`light_columns`) have ``config``
    None, and ``summary`` None whatever the run stored. ``summary`` is the one the run
    stored when it finished (None until then, and for a failed run).
    """

    id: int
    name: str | None
    sweep_id: int | None
    config_hash: str  #: SHA-256 of the config without its name
    family_hash: str  #: the config hash without the training seed (seeds of one config)
    target: str  #: the symbol, ``universe:name`` or ``symbols:<hash>``
    seed: int | None  #: training seed (None for an imported run)
    test_start: dt.date | None  #: first test date (None until the fold plan is stored)
    test_end: dt.date | None
    git_commit: str | None
    status: str
    started_at: dt.datetime
    finished_at: dt.datetime | None
    heartbeat_at: dt.datetime | None
    host: str | None  #: the owning process's host and pid
    pid: int | None
    error: str | None
    kind: str  #: ``trained`` | ``imported``
    primary_model: str  #: the model judged (``lstm`` for runs stored before it was named)
    objective: float | None  #: mean validation loss of the network
    checksum: str | None  #: sha256 of an imported forecast file
    trainer: str | None  #: ``torch`` / ``batched`` / ``compiled``
    baselines_run_id: int | None  #: the run whose rows hold this run's baselines
    import_spec: dict[str, Any] | None = None  #: an imported run's ``ImportSpec`` as a dict
    config: dict[str, Any] | None = None  #: the config as a dict (None: read without it)
    summary: dict[str, Any] | None = None  #: the summary stored at finish

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> Run:
        """The record of a ``runs`` row (a mapping of its columns; the JSON columns are
        decoded when present)."""
        config, summary, spec = (row.get(k) for k in ("config_json", "summary_json", "import_json"))
        return cls(
            id=int(row["id"]),
            name=row["name"],
            sweep_id=None if row["sweep_id"] is None else int(row["sweep_id"]),
            config_hash=row["config_hash"],
            family_hash=row["family_hash"],
            target=row["target"],
            seed=None if row["seed"] is None else int(row["seed"]),
            test_start=row["test_start"],
            test_end=row["test_end"],
            git_commit=row["git_commit"],
            status=row["status"],
            started_at=row["started_at"],
            finished_at=row["finished_at"],
            heartbeat_at=row["heartbeat_at"],
            host=row["host"],
            pid=None if row["pid"] is None else int(row["pid"]),
            error=row["error"],
            kind=row.get("kind") or "trained",
            primary_model=row.get("primary_model") or DEFAULT_PRIMARY,
            objective=None if row.get("objective") is None else float(row["objective"]),
            checksum=row.get("checksum"),
            trainer=row.get("trainer"),
            baselines_run_id=(
                None if row.get("baselines_run_id") is None else int(row["baselines_run_id"])
            ),
            import_spec=json.loads(spec) if spec else None,
            config=json.loads(config) if config else None,
            summary=json.loads(summary) if summary else None,
        )

    @property
    def period(self) -> tuple[str, dt.date | None, dt.date | None]:
        """``(target, test_start, test_end)``: the key of the run's trial set."""
        return self.target, self.test_start, self.test_end


def utcnow() -> dt.datetime:
    """Now, in UTC (the timestamps of ``runs`` and ``folds``)."""
    return dt.datetime.now(dt.UTC)


def light_columns() -> list[sa.Column]:
    """Every column of ``runs`` but the JSON blobs (also columns added by later schemas)."""
    return [c for c in schema.runs.c if c.name not in BLOBS]


def get_run(engine: sa.Engine, run_id: int) -> Run:
    """The whole record of a run; :class:`RunError` when there is none."""
    with engine.connect() as conn:
        row = (
            conn.execute(sa.select(schema.runs).where(schema.runs.c.id == run_id))
            .mappings()
            .first()
        )
    if row is None:
        raise RunError(f"no run with id {run_id}")
    return Run.from_row(row)


def get_runs(engine: sa.Engine, run_ids: Sequence[int]) -> dict[int, Run]:
    """Whole records of several runs (by id) in one query; a missing id raises."""
    ids = [int(i) for i in run_ids]
    with engine.connect() as conn:
        rows = conn.execute(sa.select(schema.runs).where(schema.runs.c.id.in_(ids))).mappings()
        runs = {int(r["id"]): Run.from_row(r) for r in rows}
    missing = [i for i in ids if i not in runs]
    if missing:
        raise RunError(f"no run with id {missing[0]}")
    return runs


def list_runs(
    engine: sa.Engine, *, sweep_id: int | None = None, limit: int | None = None
) -> pd.DataFrame:
    """Stored runs, newest first, as the table of ``madness runs list`` (id, name, sweep_id,
    target, seed, status, started_at, finished_at, test_start, test_end, error)."""
    import pandas as pd

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


def seed_family(engine: sa.Engine, run: Run) -> list[Run]:
    """The succeeded runs of ``run``'s family (its config but the training seed,
    ``runs.family_hash``) on its target and test period, ``run`` included, by id. One query
    (by the index on target and test period), without the JSON blobs."""
    r = schema.runs
    if run.test_start is None:
        return []
    query = (
        sa.select(*light_columns())
        .where(
            r.c.family_hash == run.family_hash,
            r.c.target == run.target,
            r.c.test_start == run.test_start,
            r.c.test_end == run.test_end,
            sa.or_(r.c.status == "succeeded", r.c.id == run.id),
        )
        .order_by(r.c.id)
    )
    with engine.connect() as conn:
        return [Run.from_row(row) for row in conn.execute(query).mappings()]


def load_configs(engine: sa.Engine, run_ids: Sequence[int]) -> dict[int, dict[str, Any]]:
    """Decoded configs of many runs in one query."""
    r = schema.runs
    ids = [int(i) for i in run_ids]
    with engine.connect() as conn:
        return {
            int(i): json.loads(c)
            for i, c in conn.execute(sa.select(r.c.id, r.c.config_json).where(r.c.id.in_(ids)))
        }


def objectives(engine: sa.Engine, run_ids: Sequence[int]) -> dict[int, float | None]:
    """Stored objectives of ``run_ids`` (None where none was stored)."""
    r = schema.runs
    ids = [int(i) for i in run_ids]
    with engine.connect() as conn:
        rows = conn.execute(sa.select(r.c.id, r.c.objective).where(r.c.id.in_(ids))).all()
    return {int(i): (None if v is None else float(v)) for i, v in rows}


def imported_runs_holding(engine: sa.Engine, run_hashes: Sequence[str]) -> dict[str, int]:
    """Imported runs (succeeded, or deleted tombstones) already holding each of
    ``run_hashes``: hash → the newest such run's id."""
    r = schema.runs
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
