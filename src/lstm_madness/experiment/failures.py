"""How runs that stop early are recorded: SIGTERM and SIGINT turned into
:class:`RunInterrupted`, the reason written into the ledger (or, when the store refuses the
write, kept until it can be: :func:`~lstm_madness.store.lifecycle.fail_runs_or_defer`),
and the store's own failures (a full disk, a lost connection) raised as one
:class:`~lstm_madness.errors.StoreError` that says what became of the runs.
"""

from __future__ import annotations

import contextlib
import signal
import sqlite3
import sys
from collections.abc import Iterator, Sequence

import sqlalchemy as sa

from lstm_madness.errors import RunError, StoreError
from lstm_madness.store import lifecycle

__all__ = ["RunInterrupted", "reason", "record", "signals_raise", "store_problem"]

#: What a store says when it cannot be written (SQLite, PostgreSQL, the OS)
_UNWRITABLE = (
    "disk is full",
    "readonly database",
    "read-only",
    "no space left",
    "could not extend file",
    "could not write",
)
#: SQLSTATE classes of PostgreSQL that mean the same: 53 insufficient resources
#: (53100 disk full), 25006 read-only transaction
_UNWRITABLE_STATES = ("53", "25006")


class RunInterrupted(RunError):
    """The run was stopped by a signal (SIGTERM, SIGINT)."""


@contextlib.contextmanager
def signals_raise() -> Iterator[None]:
    """Turn SIGTERM and SIGINT into :class:`RunInterrupted` while runs are in progress."""

    def handler(signum: int, _frame: object) -> None:
        raise RunInterrupted(f"interrupted by {signal.Signals(signum).name}")

    previous = {}
    with contextlib.suppress(ValueError):  # not the main thread: leave handlers alone
        for sig in (signal.SIGTERM, signal.SIGINT):
            previous[sig] = signal.signal(sig, handler)
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def _driver_error(exc: BaseException) -> BaseException | None:
    """The database driver's error behind ``exc``, when ``exc`` is one (SQLAlchemy's
    wrapper, or psycopg's and sqlite3's own from a bulk path), else None."""
    if isinstance(exc, sa.exc.DBAPIError):
        return exc.orig or exc
    psycopg = sys.modules.get("psycopg")
    if isinstance(exc, sqlite3.Error) or (psycopg is not None and isinstance(exc, psycopg.Error)):
        return exc
    return None


def store_problem(exc: BaseException) -> str | None:
    """What happened to the store, in words, when ``exc`` is the database's error (the
    connection lost, the store full or read-only, or else its own first line); None when
    it is not."""
    orig = _driver_error(exc)
    if orig is None:
        return None
    lines = str(orig).strip().splitlines()
    first = lines[0] if lines else type(orig).__name__
    state = str(getattr(orig, "sqlstate", None) or "")
    lost = getattr(exc, "connection_invalidated", False) or "terminating connection" in first
    if lost or "server closed the connection" in first or state.startswith("57P"):
        return f"the connection to the store was lost ({first})"
    if any(s in first.lower() for s in _UNWRITABLE) or state.startswith(_UNWRITABLE_STATES):
        return f"the store cannot be written ({first})"
    return f"the store failed ({first})"


def reason(exc: BaseException) -> str:
    """The ``error`` a run failed by ``exc`` is stored with."""
    if isinstance(exc, KeyboardInterrupt):
        return "interrupted (Ctrl-C)"
    problem = store_problem(exc)
    if problem is not None:
        return f"StoreError: {problem}"
    return f"{type(exc).__name__}: {exc}"


def record(engine: sa.Engine, run_ids: Sequence[int], exc: BaseException) -> StoreError | None:
    """Mark the unfinished runs among ``run_ids`` failed by ``exc`` (kept for later when the
    store refuses the write). Returns the error to raise in ``exc``'s place: a
    :class:`StoreError` saying what happened to the store and to the runs when ``exc`` is
    the database's; None to raise ``exc`` itself."""
    written = lifecycle.fail_runs_or_defer(engine, run_ids, reason(exc))
    problem = store_problem(exc)
    if problem is None:
        return None
    ids = [int(i) for i in run_ids]
    if not ids:
        return StoreError(problem)
    which = f"run {ids[0]}" if len(ids) == 1 else f"runs {', '.join(map(str, ids))}"
    if written:
        how = f"madness run --resume {ids[0]}" if len(ids) == 1 else "madness run --resume ID"
        return StoreError(f"{problem}; {which} failed: resume with {how}")
    return StoreError(
        f"{problem}; {which} could not be marked failed either: the next command that can "
        "write to the store marks them failed (stale)"
    )
