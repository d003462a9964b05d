"""kill -9 and SIGTERM at the named stages of a run (``MADNESS_FAULT``): the run in a
child process dies there; the next command finds it (stale) and ``--resume`` stores the
predictions of an uninterrupted run, to the last bit. Nothing is ever half-written: a
fold's rows are stored exactly when the fold is completed."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest
from typer.testing import CliRunner

from lstm_madness.cli import app
from lstm_madness.data.db import make_engine
from lstm_madness.experiment.config import load_config
from lstm_madness.experiment.runner import run_experiment
from lstm_madness.store.predictions import completed_folds
from lstm_madness.store.runs import get_run, list_runs

pytestmark = pytest.mark.faults
cli = CliRunner()
_reference: dict[str, object] = {}


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "tiny.toml"
    path.write_text('name = "fault"\n')
    return path


@pytest.fixture
def reference(tmp_path_factory, write_returns, ar1_returns, predictions_of, tiny):
    """Predictions of the uninterrupted run (computed once per session, here)."""
    if "tiny" not in _reference:
        url = f"sqlite:///{tmp_path_factory.mktemp('reference') / 'reference.db'}"
        engine = make_engine(url)
        write_returns(engine, "SYN", ar1_returns(420, phi=0.3, seed=3))
        done = run_experiment(engine, load_config(None, tiny))
        _reference["tiny"] = predictions_of(engine, done["run_id"])
        engine.dispose()
    return _reference["tiny"]


def _store(url: str, write_returns, ar1_returns):
    engine = make_engine(url)
    write_returns(engine, "SYN", ar1_returns(420, phi=0.3, seed=3))
    return engine


@pytest.mark.parametrize(
    ("stage", "completed"),
    [
        ("loading", set()),
        ("training:2", {0}),  # before the second fold group trains
        ("storing:2", {0}),  # as the second fold group's transaction commits
        ("evaluating", {0, 1, 2, 3}),
        ("finishing", {0, 1, 2, 3}),  # as the succeeded status commits
    ],
)
def test_kill_9_at_a_stage_is_found_by_the_next_command_and_resumes_to_the_same_rows(
    stage,
    completed,
    sqlite_url,
    config,
    write_returns,
    ar1_returns,
    madness,
    sets,
    reference,
    predictions_of,
    ledger_check,
    rows_lost,
    fault,
    tiny,
):
    engine = _store(sqlite_url, write_returns, ar1_returns)
    killed = madness("run", str(config), "--db", sqlite_url, "-q", *sets(tiny), fault=stage)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    (run_id,) = (int(i) for i in list_runs(engine)["id"])
    assert get_run(engine, run_id).status == "running"  # as the kill left it
    assert completed_folds(engine, run_id) == completed
    assert ledger_check(engine, [run_id])[0] == 0  # no fold half-written

    listed = cli.invoke(app, ["runs", "list", "--db", sqlite_url])  # the next command
    assert listed.exit_code == 0, listed.output
    run = get_run(engine, run_id)
    assert run.status == "failed" and run.error.startswith("stale: process")

    resumed = run_experiment(engine, resume=run_id)
    assert resumed["status"] == "succeeded"
    lost = rows_lost(reference, predictions_of(engine, run_id))
    fault(rows_lost=lost, left_running=ledger_check(engine, [run_id])[1])
    assert lost == 0 and len(predictions_of(engine, run_id)) == len(reference)
    engine.dispose()


@pytest.mark.parametrize(
    "db_url", [pytest.param("postgresql", marks=pytest.mark.postgres)], indirect=True
)
def test_kill_9_while_storing_on_postgresql_commits_nothing_of_the_fold_group(
    db_url,
    config,
    write_returns,
    ar1_returns,
    madness,
    sets,
    reference,
    predictions_of,
    ledger_check,
    rows_lost,
    fault,
    tiny,
):
    """The server rolls back the transaction of a client that died before its commit."""
    engine = _store(db_url, write_returns, ar1_returns)
    killed = madness("run", str(config), "--db", db_url, "-q", *sets(tiny), fault="storing:3")
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    (run_id,) = (int(i) for i in list_runs(engine)["id"])
    assert completed_folds(engine, run_id) == {0, 1}
    assert ledger_check(engine, [run_id])[0] == 0
    shown = cli.invoke(app, ["runs", "show", str(run_id), "--db", db_url, "--json"])
    assert shown.exit_code == 0 and '"status": "failed"' in shown.output  # stale now
    assert run_experiment(engine, resume=run_id)["status"] == "succeeded"
    lost = rows_lost(reference, predictions_of(engine, run_id))
    fault(rows_lost=lost, left_running=ledger_check(engine, [run_id])[1])
    assert lost == 0
    engine.dispose()


def test_sigterm_while_storing_fails_the_run_naming_the_signal_and_it_resumes(
    sqlite_url,
    config,
    write_returns,
    ar1_returns,
    madness,
    sets,
    reference,
    predictions_of,
    ledger_check,
    rows_lost,
    fault,
    tiny,
):
    """SIGTERM as the second fold group commits: that transaction is rolled back, the run
    is failed at once with the signal's name (no next command needed), exit code 1."""
    engine = _store(sqlite_url, write_returns, ar1_returns)
    args = ("run", str(config), "--db", sqlite_url, "-q", *sets(tiny))
    stopped = madness(*args, fault="storing:2:TERM")
    assert stopped.returncode == 1 and "interrupted by SIGTERM" in stopped.stderr
    assert "Traceback" not in stopped.stderr
    (run_id,) = (int(i) for i in list_runs(engine)["id"])
    run = get_run(engine, run_id)
    assert run.status == "failed" and run.error == "RunInterrupted: interrupted by SIGTERM"
    assert completed_folds(engine, run_id) == {0}
    assert ledger_check(engine, [run_id]) == (0, 0)
    assert run_experiment(engine, resume=run_id)["status"] == "succeeded"
    lost = rows_lost(reference, predictions_of(engine, run_id))
    fault(rows_lost=lost, left_running=ledger_check(engine, [run_id])[1])
    assert lost == 0
    engine.dispose()
