"""Sweeps: a base config and a search space (grid or Optuna), and the runs of its points
(each a stored run naming the sweep in ``runs.sweep_id``)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa

from lstm_madness.data import schema
from lstm_madness.store.runs import Run, utcnow

__all__ = ["create_sweep", "sweep_exists", "sweep_runs"]


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
