"""Trial sets: which runs count as the trials behind a result.

The *trial set* on a target and test period is every succeeded or deleted (tombstoned)
run on them, plus the runs evaluated with it (e.g. still ``running`` at the end of a
sweep): :func:`trial_set`, one query. Runs of a member's sweep that are queued or running
are not members yet but will be: they count towards ``N`` (:meth:`TrialSet.pending`).
Forecasts tried outside the tool, declared when imported runs were judged, add to ``N``
too (:meth:`TrialSet.declared`).

What the members say together (their evidence: net Sharpe ratios, SPA, StepM, PBO, the
merging of identical forecasts) is computed in :mod:`lstm_madness.experiment.ledger`.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cached_property

import sqlalchemy as sa

from lstm_madness.data import schema
from lstm_madness.errors import DataError
from lstm_madness.store.runs import COUNTED, UNFINISHED, Run, light_columns

__all__ = ["TrialSet", "members_fingerprint", "trial_set", "trial_sets"]


@dataclass(frozen=True, eq=False)
class TrialSet:
    """Runs on one target and test period that count as trials (records without config
    and summary).

    One object serves every member evaluated in a pass, so what is derived from all the
    members is computed once (cached on the object), never once per member.
    """

    target: str
    test_start: dt.date | None  #: None only for runs without a stored fold plan
    test_end: dt.date | None
    members: tuple[Run, ...]  #: counted runs with predictions, in id order
    running: tuple[Run, ...]  #: other unfinished runs on the target (pending)

    @cached_property
    def ids(self) -> list[int]:
        return [m.id for m in self.members]

    @cached_property
    def declared_by_member(self) -> dict[int, int]:
        """Forecasts tried outside the tool, as the members' users declared them when they
        were judged (``madness judge --trials``), by member id (members declaring some)."""
        out = {}
        for m in self.members:
            n = int((m.import_spec or {}).get("trials") or 0)
            if n:
                out[m.id] = n
        return out

    def declared(self, merged: Iterable[int] = ()) -> int:
        """Declared trials on this test period, except those of ``merged`` members (a
        duplicate's declaration is its earlier twin's: counted once)."""
        skip = set(merged)
        return sum(n for i, n in self.declared_by_member.items() if i not in skip)

    @cached_property
    def families(self) -> dict[str, list[int]]:
        """Member ids by family (the config hash without the seed), in id order."""
        out: dict[str, list[int]] = {}
        for m in self.members:
            out.setdefault(m.family_hash, []).append(m.id)
        return out

    def pending(self, run: Run) -> int:
        """Runs of ``run``'s sweep, queued or running, that will be trials beside it; 0 for
        a run outside a sweep."""
        if run.sweep_id is None:
            return 0
        return sum(1 for r in self.running if r.sweep_id == run.sweep_id and r.id != run.id)

    def fingerprint(self) -> str:
        """Changes whenever a member joins or leaves (a deleted run stays a member)."""
        return self._fingerprint

    @cached_property
    def _fingerprint(self) -> str:
        return members_fingerprint(self.members)


def members_fingerprint(members: Iterable[Run]) -> str:
    """Changes whenever a member of a trial set joins or leaves (id, config hash and start
    time of each; a deleted run stays)."""
    parts = [[m.id, m.config_hash, str(m.started_at)] for m in members]
    return hashlib.sha256(json.dumps(parts).encode()).hexdigest()


def trial_set(
    engine: sa.Engine,
    *,
    target: str,
    test_start: dt.date | None,
    test_end: dt.date | None,
    include: Sequence[int] = (),
) -> TrialSet:
    """The trial set on ``target`` and a test period, in one query.

    Members are the succeeded and deleted runs on that target and period plus the runs of
    ``include`` on it (runs being evaluated, e.g. still ``running`` at the end of a sweep),
    ordered by id; ``running`` are the other unfinished runs on the target whose test
    period is the same or not known yet (candidates for :meth:`TrialSet.pending`).
    """
    r = schema.runs
    ids = [int(i) for i in include]
    same = sa.and_(r.c.test_start == test_start, r.c.test_end == test_end)
    query = (
        sa.select(*light_columns())
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
        rows = [Run.from_row(row) for row in conn.execute(query).mappings()]
    chosen = set(ids)
    members, running = [], []
    for run in rows:
        in_period = run.test_start == test_start and run.test_end == test_end
        if in_period and (run.status in COUNTED or run.id in chosen):
            members.append(run)
        elif run.status in UNFINISHED and run.id not in chosen:
            running.append(run)
    return TrialSet(target, test_start, test_end, tuple(members), tuple(running))


def trial_sets(
    engine: sa.Engine, runs: Iterable[Run], include: Iterable[int] = ()
) -> dict[int, TrialSet]:
    """The trial set of each run (keyed by run id), one query per target and test period.

    ``include``: ids of runs being evaluated now, members of their trial sets whatever
    their status (e.g. still ``running`` at the end of a sweep). A run without a test
    period (no fold plan stored) raises :class:`DataError`.
    """
    chosen = [int(i) for i in include]
    by_period: dict[tuple, list[Run]] = {}
    for run in runs:
        if run.test_start is None:
            raise DataError(f"run {run.id} has no test period (no folds recorded)")
        by_period.setdefault(run.period, []).append(run)
    out: dict[int, TrialSet] = {}
    for (target, start, end), group in by_period.items():
        ts = trial_set(engine, target=target, test_start=start, test_end=end, include=chosen)
        for run in group:
            out[run.id] = ts
    return out
