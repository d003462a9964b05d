"""A test hook: a signal to this process at a named stage of a run, so that the fault
suite (``tests/faults/``) can check what a kill -9 or a SIGTERM there leaves behind.

Unset (always, outside tests), :func:`reached` reads one environment variable and
returns. ``MADNESS_FAULT=STAGE[:N][:SIGNAL]`` sends ``SIGNAL`` (``KILL``, the default,
``TERM`` or ``INT``) to this process the ``N``-th time (default 1) it reaches ``STAGE``:

- ``loading``: a data group's data is about to be loaded;
- ``training``: a fold group is about to train;
- ``storing``: a fold group's rows are being stored: the signal comes as their
  transaction commits, every row written and none committed;
- ``evaluating``: the runs are trained and stored, their evaluation about to start;
- ``finishing``: the runs' summaries are being stored (the signal at commit, as
  ``storing``).

A Ray worker reads the variable as its driver does, when its own environment has it.
"""

from __future__ import annotations

import os
import signal

import sqlalchemy as sa

__all__ = ["ENV", "STAGES", "reached"]

#: The environment variable that arms the hook.
ENV = "MADNESS_FAULT"
#: The stages a run reaches, in order.
STAGES = ("loading", "training", "storing", "evaluating", "finishing")
_AT_COMMIT = ("storing", "finishing")
_seen: dict[str, int] = {}


def reached(stage: str, engine: sa.Engine | None = None) -> None:
    """This process has reached ``stage`` (one of :data:`STAGES`); at ``storing`` and
    ``finishing``, ``engine`` is the store whose next transaction it is about to commit."""
    spec = os.environ.get(ENV)
    if not spec:
        return
    name, count, sig = _parse(spec)
    if name != stage:
        return
    _seen[stage] = _seen.get(stage, 0) + 1
    if _seen[stage] != count:
        return
    if engine is None or stage not in _AT_COMMIT:
        os.kill(os.getpid(), sig)
        return

    def at_commit(_conn: sa.Connection) -> None:
        os.kill(os.getpid(), sig)

    sa.event.listen(engine, "commit", at_commit, once=True)


def _parse(spec: str) -> tuple[str, int, signal.Signals]:
    """``STAGE[:N][:SIGNAL]`` → (stage, N, signal); ValueError naming what is wrong."""
    parts = spec.strip().split(":")
    stage, rest = parts[0], parts[1:]
    count, sig = 1, signal.SIGKILL
    for part in rest:
        if part.isdigit() and int(part) > 0:
            count = int(part)
        elif part.upper() in ("KILL", "TERM", "INT"):
            sig = signal.Signals[f"SIG{part.upper()}"]
        else:
            raise ValueError(f"{ENV}={spec!r}: {part!r} is neither a count nor KILL/TERM/INT")
    if stage not in STAGES:
        raise ValueError(f"{ENV}={spec!r}: the stage must be one of {', '.join(STAGES)}")
    return stage, count, sig
