"""Sweeps: a base config and a search space (grid or Optuna), and the runs of its points
(each a stored run naming the sweep in ``runs.sweep_id``)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from lstm_madness.data import schema
from lstm_madness.store.runs import Run, utcnow

__all__ = ["create_sweep", "get_sweep", "list_sweeps", "sweep_exists", "sweep_runs"]

if TYPE_CHECKING:
    import pandas as pd

#: Run statuses that count as done (a deleted run stays as a tombstone: it was tried).
_DONE = ("succeeded", "deleted")
#: Run statuses of a sweep still in progress.
_UNFINISHED = ("queued", "running")


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
            schema.sweeps.insert().values(
                name=name,
                config_json=json.dumps(config, sort_keys=True),
                space_json=json.dumps(space),
                engine=engine_name,
                created_at=utcnow(),
            )
        )
        return int(result.inserted_primary_key[0])


def sweep_runs(engine: sa.Engine, sweep_id: int) -> list[Run]:
    """Every run of a sweep (whole records), in id order, in one query."""
    r = schema.runs
    query = sa.select(r).where(r.c.sweep_id == sweep_id).order_by(r.c.id)
    with engine.connect() as conn:
        return [Run.from_row(row) for row in conn.execute(query).mappings()]


def sweep_exists(engine: sa.Engine, sweep_id: int) -> bool:
    with engine.connect() as conn:
        query = sa.select(schema.sweeps.c.id).where(schema.sweeps.c.id == sweep_id)
        return conn.execute(query).first() is not None


def get_sweep(engine: sa.Engine, sweep_id: int) -> dict[str, Any] | None:
    """A sweep's row with its base config and search space decoded (``id``, ``name``,
    ``config``, ``space``, ``engine``, ``created_at``); None when there is none."""
    s = schema.sweeps
    with engine.connect() as conn:
        row = conn.execute(sa.select(s).where(s.c.id == sweep_id)).mappings().first()
    if row is None:
        return None
    return {
        "id": int(row["id"]),
        "name": row["name"],
        "config": json.loads(row["config_json"]),
        "space": json.loads(row["space_json"]),
        "engine": row["engine"],
        "created_at": row["created_at"],
    }


def _status(runs: int, done: int, failed: int, unfinished: int) -> str:
    """A sweep's status from its runs: running while any is queued or running; else
    succeeded (every run done), failed (none done), partly failed, or empty (no run)."""
    if unfinished:
        return "running"
    if not runs:
        return "empty"
    if not failed:
        return "succeeded"
    return "failed" if not done else "partly failed"


def _planned(space: Mapping[str, Any]) -> int:
    """Configurations a sweep's space plans (grid points, or Optuna's trials; seeds apart)."""
    if space.get("search") == "optuna":
        return int(space.get("trials") or 0)
    count = 1
    for values in (space.get("axes") or {}).values():
        count *= len(values)
    return count


def list_sweeps(engine: sa.Engine, *, limit: int | None = None) -> pd.DataFrame:
    """Sweeps, newest first, as the table of ``madness sweep list``: ``id``, ``name``,
    ``status`` (see :func:`_status`), ``search``, ``configs`` (distinct configurations but
    the seed among its runs, else as planned), ``seeds``, ``runs``, ``done`` (succeeded or
    deleted), ``failed``, ``unfinished`` (queued or running), ``engine``, ``created_at``.
    One query."""
    import pandas as pd

    s, r = schema.sweeps, schema.runs

    def count(statuses: tuple[str, ...]) -> Any:
        return sa.func.coalesce(sa.func.sum(sa.case((r.c.status.in_(statuses), 1), else_=0)), 0)

    runs = (
        sa.select(
            r.c.sweep_id,
            sa.func.count().label("runs"),
            sa.func.count(sa.distinct(r.c.family_hash)).label("configs"),
            count(_DONE).label("done"),
            count(("failed",)).label("failed"),
            count(_UNFINISHED).label("unfinished"),
        )
        .where(r.c.sweep_id.is_not(None))
        .group_by(r.c.sweep_id)
        .subquery()
    )
    query = (
        sa.select(s.c.id, s.c.name, s.c.space_json, s.c.engine, s.c.created_at, *list(runs.c)[1:])
        .outerjoin(runs, runs.c.sweep_id == s.c.id)
        .order_by(s.c.id.desc())
    )
    if limit:
        query = query.limit(limit)
    rows = []
    with engine.connect() as conn:
        for row in conn.execute(query).mappings():
            space = json.loads(row["space_json"])
            n = {k: int(row[k] or 0) for k in ("runs", "configs", "done", "failed", "unfinished")}
            rows.append(
                {
                    "id": int(row["id"]),
                    "name": row["name"],
                    "status": _status(n["runs"], n["done"], n["failed"], n["unfinished"]),
                    "search": space.get("search", "grid"),
                    **n,
                    "configs": n["configs"] or _planned(space),
                    "seeds": int(space.get("seeds") or 1),
                    "engine": row["engine"],
                    "created_at": row["created_at"],
                }
            )
    columns = ["id", "name", "status", "search", "configs", "seeds", "runs", "done", "failed"]
    return pd.DataFrame(rows, columns=[*columns, "unfinished", "engine", "created_at"])
