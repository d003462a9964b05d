"""The fault suite (issue 22): what a careful operator's fault campaign does to a run,
repeated in CI, each case small.

- kill -9 at each named stage of a run (``MADNESS_FAULT``, the hook of
  :mod:`lstm_madness.store.faults`), and SIGTERM;
- concurrent sweeps on both backends, compared with a cold recomputation;
- a full disk (SQLite's ``max_page_count``) and a store that cannot be written at all;
- a lost Ray worker on a local instance on 127.0.0.1; a driver without the cluster's token;
- a PostgreSQL connection lost mid-run (``pg_terminate_backend``).

Each case records what it found through the ``fault`` fixture (rows lost, runs left
``running`` after the fault and the next command); the session's summary prints the four
counts of the issue: fault cases survived (the ``faults`` tests that passed), bad inputs
handled cleanly (the bad-input tests of the session, ``tests/**/test_bad_input*.py`` or
marked ``bad_input``), rows lost and runs left running.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa

#: A walk-forward study of 4 folds, one fold group each, 1 epoch: a run in about a second
TINY = [
    "data.target=SYN",
    "model.units=[4]",
    "model.time_steps=5",
    "train.epochs=1",
    "train.batch_size=32",
    "train.batch_folds=false",
    "split.scheme=walk_forward",
    "split.initial_train_days=200",
    "split.retrain_every_days=70",
    "evaluation.bootstrap_reps=10",
]

_found: dict[str, dict[str, int]] = {}


@pytest.fixture(name="tiny")
def _tiny() -> list[str]:
    """The overrides of :data:`TINY`: a 4-fold walk-forward study of 1 epoch."""
    return list(TINY)


class FaultRecord:
    """What one fault case found, for the session's summary."""

    def __init__(self, nodeid: str) -> None:
        self.nodeid = nodeid
        _found[nodeid] = {"rows_lost": 0, "left_running": 0}

    def __call__(self, *, rows_lost: int = 0, left_running: int = 0) -> None:
        entry = _found[self.nodeid]
        entry["rows_lost"] += int(rows_lost)
        entry["left_running"] += int(left_running)


@pytest.fixture
def fault(request: pytest.FixtureRequest) -> FaultRecord:
    """``fault(rows_lost=n, left_running=m)``: what this case found (summed per case)."""
    return FaultRecord(request.node.nodeid)


def _outcomes(reporter: pytest.TerminalReporter, wanted) -> tuple[int, int]:
    """(passed, total) of the session's tests for which ``wanted(report)`` holds; a test
    counts as passed when no phase of it failed and it was not skipped."""
    results: dict[str, bool] = {}
    for key in ("passed", "failed", "error", "skipped"):
        for report in reporter.stats.get(key, []):
            if not hasattr(report, "nodeid") or not wanted(report):
                continue
            ok = key == "passed"
            results[report.nodeid] = results.get(report.nodeid, True) and ok
    return sum(results.values()), len(results)


def _is_fault(report) -> bool:
    return "faults" in getattr(report, "keywords", {})


def _is_bad_input(report) -> bool:
    return "bad_input" in getattr(report, "keywords", {}) or "test_bad_input" in report.nodeid


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    survived, cases = _outcomes(terminalreporter, _is_fault)
    handled, inputs = _outcomes(terminalreporter, _is_bad_input)
    if not cases and not inputs:
        return
    lost = sum(entry["rows_lost"] for entry in _found.values())
    running = sum(entry["left_running"] for entry in _found.values())
    terminalreporter.write_sep("-", "fault suite (issue 22)")
    terminalreporter.write_line(
        f"fault cases survived: {survived}/{cases}; bad inputs handled cleanly: "
        f"{handled}/{inputs}; rows lost: {lost}; runs left running after a fault: {running}"
    )


# ------------------------------------------------------------------------- helpers


@pytest.fixture
def madness(tmp_path: Path):
    """``madness(*args, fault=None, env=None, drop=(), popen=False, timeout=180)``: the CLI
    in a child process (its own pid, so a kill is a real one), with ``MADNESS_FAULT=fault``
    when given, ``env`` added to this process's environment and the variables whose name
    starts with one of ``drop`` left out. Returns the CompletedProcess (text), or with
    ``popen`` the running Popen."""

    def run(*args: str, fault=None, env=None, drop=(), popen=False, timeout=180):
        child = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
        for name in [k for k in child if k == "MADNESS_FAULT" or k.startswith(tuple(drop))]:
            del child[name]
        if fault:
            child["MADNESS_FAULT"] = fault
        cmd = [sys.executable, "-c", "from lstm_madness.cli import main; main()", *args]
        if popen:
            pipe = subprocess.PIPE
            return subprocess.Popen(cmd, stdout=pipe, stderr=pipe, text=True, env=child)
        return subprocess.run(cmd, capture_output=True, text=True, env=child, timeout=timeout)

    return run


@pytest.fixture
def sets():
    """``sets(overrides)``: ``--set`` arguments of a list of overrides."""
    return lambda overrides: [arg for o in overrides for arg in ("--set", o)]


def predictions_of(engine: sa.Engine, run_id: int) -> pd.DataFrame:
    """A run's stored predictions, every split, in a fixed order, without its id."""
    from lstm_madness.store.predictions import load_predictions

    frame = load_predictions(engine, int(run_id), split=None)
    frame = frame.assign(date=pd.to_datetime(frame["date"]))
    keys = ["model", "split", "fold", "date", "symbol"]
    return frame.sort_values(keys).reset_index(drop=True)


@pytest.fixture(name="predictions_of")
def _predictions_of():
    """``predictions_of(engine, run_id)`` (see :func:`predictions_of`)."""
    return predictions_of


@pytest.fixture
def ledger_check():
    """``ledger_check(engine, run_ids)`` → (half-written folds, runs left unfinished): a
    fold whose rows are stored while it is not completed, or completed without rows, is
    half-written; ``queued``/``running`` runs are unfinished."""
    from lstm_madness.store.predictions import completed_folds
    from lstm_madness.store.runs import get_run

    def check(engine: sa.Engine, run_ids) -> tuple[int, int]:
        half, unfinished = 0, 0
        for run_id in run_ids:
            stored = set(predictions_of(engine, run_id)["fold"].astype(int))
            half += len(stored ^ completed_folds(engine, run_id))
            unfinished += get_run(engine, run_id).status in ("queued", "running")
        return half, unfinished

    return check


def rows_lost(reference: pd.DataFrame, frame: pd.DataFrame) -> int:
    """Rows of ``reference`` not found, equal to the last bit, in ``frame``, plus any
    duplicated row of ``frame``."""
    keys = ["model", "split", "fold", "date", "symbol"]
    merged = reference.merge(frame, on=keys, how="left", suffixes=("", "_got"))
    same = (merged["y_pred"] == merged["y_pred_got"]) & (
        (merged["y_true"] == merged["y_true_got"])
        | (merged["y_true"].isna() & merged["y_true_got"].isna())
    )
    return int((~same).sum()) + int(frame.duplicated(keys).sum())


@pytest.fixture(name="rows_lost")
def _rows_lost():
    """``rows_lost(reference, frame)`` (see :func:`rows_lost`)."""
    return rows_lost


class Disk:
    """The disk under a SQLite store, as its connections see it: ``full()`` caps the
    file at its size (SQLite's ``max_page_count``: anything that needs a new page fails
    with ``database or disk is full``); ``frozen()`` refuses every write as well
    (``query_only``: what a full disk does once not even a small write fits); ``free()``
    lifts both. Set on every checkout of a connection to that file from the pool."""

    def __init__(self, path: Path) -> None:
        self.path, self.state = str(path.resolve()), "free"

    def full(self) -> None:
        self.state = "full"

    def frozen(self) -> None:
        self.state = "frozen"

    def free(self) -> None:
        self.state = "free"

    def on_checkout(self, dbapi_connection, _record, _proxy) -> None:
        if not isinstance(dbapi_connection, sqlite3.Connection):
            return
        databases = dbapi_connection.execute("PRAGMA database_list").fetchall()
        if not any(row[2] == self.path for row in databases):
            return
        pages = dbapi_connection.execute("PRAGMA page_count").fetchone()[0]
        cap = pages if self.state != "free" else 1_073_741_823
        dbapi_connection.execute(f"PRAGMA max_page_count = {cap}").fetchone()
        frozen = "ON" if self.state == "frozen" else "OFF"
        dbapi_connection.execute(f"PRAGMA query_only = {frozen}")


@pytest.fixture
def disk(tmp_path: Path) -> Iterator[Disk]:
    """The :class:`Disk` under ``tmp_path / "full.db"`` (free at first)."""
    d = Disk(tmp_path / "full.db")
    sa.event.listen(sa.pool.Pool, "checkout", d.on_checkout)
    yield d
    sa.event.remove(sa.pool.Pool, "checkout", d.on_checkout)
