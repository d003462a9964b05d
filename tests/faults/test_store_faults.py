"""The store fails under a run (issue 22, defect 2): a full disk, a store that cannot be
written at all, a PostgreSQL connection lost mid-run; and concurrent sweeps on both
backends, whose cached verdicts must equal a cold recomputation (defect 1, end to end).

Before: a sweep into a full store ended in a raw ``database or disk is full`` traceback,
runs stayed ``running`` when the failure's own write failed, and ``runs list`` / ``runs
show`` failed while the store could not be written (they wrote stale marks first)."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from lstm_madness.cli import app
from lstm_madness.data.db import make_engine
from lstm_madness.errors import StoreError
from lstm_madness.experiment.config import from_dict, load_config
from lstm_madness.experiment.runner import run_experiment
from lstm_madness.store import faults
from lstm_madness.store.predictions import completed_folds
from lstm_madness.store.runs import get_run, list_runs
from lstm_madness.sweep import SweepSpace, run_sweep

pytestmark = pytest.mark.faults
cli = CliRunner()


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "tiny.toml"
    path.write_text('name = "fault"\n')
    return path


def _one_line(result) -> str:
    """The one ``error:`` line of a command that failed (exit code 1, no traceback)."""
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and not result.stdout.strip(), result.output
    return errors[0]


def _at(monkeypatch, stage: str, count: int, action) -> None:
    """Run ``action()`` the ``count``-th time this process reaches ``stage``."""
    seen = {"n": 0}

    def reached(name: str, engine=None) -> None:
        if name == stage:
            seen["n"] += 1
            if seen["n"] == count:
                action(engine)

    monkeypatch.setattr(faults, "reached", reached)


def _uninterrupted(tmp_path: Path, write_returns, ar1_returns, configs, predictions_of):
    """The predictions each of ``configs`` stores uninterrupted, in a store of its own."""
    engine = make_engine(f"sqlite:///{tmp_path / 'reference.db'}")
    write_returns(engine, "SYN", ar1_returns(420, phi=0.3, seed=3))
    frames = [predictions_of(engine, run_experiment(engine, c)["run_id"]) for c in configs]
    engine.dispose()
    return frames


def test_a_sweep_into_a_full_disk_fails_in_one_line_and_leaves_no_run_running(
    disk,
    config,
    write_returns,
    ar1_returns,
    monkeypatch,
    tmp_path,
    sets,
    tiny,
    predictions_of,
    ledger_check,
    rows_lost,
    fault,
):
    """The disk fills as the first fold group is stored (SQLite's max_page_count): the
    sweep ends in one line naming the full disk, its runs are failed with the reason and
    nothing is half-written; a sweep started on the full disk is refused the same way;
    once there is room, ``--resume`` stores the rows of uninterrupted runs."""
    url = f"sqlite:///{disk.path}"
    engine = make_engine(url)
    write_returns(engine, "SYN", ar1_returns(420, phi=0.3, seed=3))
    _at(monkeypatch, "storing", 1, lambda _engine: disk.full())
    args = ["sweep", str(config), "--db", url, "-q", *sets(tiny), "--seeds", "2"]
    line = _one_line(cli.invoke(app, args))
    assert "the store cannot be written (database or disk is full)" in line
    ids = [int(i) for i in list_runs(engine)["id"]]
    assert len(ids) == 2
    for run_id in ids:
        run = get_run(engine, run_id)
        assert run.status == "failed" and "database or disk is full" in run.error
    assert ledger_check(engine, ids) == (0, 0)
    again = _one_line(cli.invoke(app, [*args[:-1], "3"]))  # still full
    assert "database or disk is full" in again
    assert ledger_check(engine, [int(i) for i in list_runs(engine)["id"]])[1] == 0

    disk.free()
    configs = [from_dict(get_run(engine, i).config) for i in ids]
    expected = _uninterrupted(tmp_path, write_returns, ar1_returns, configs, predictions_of)
    lost = 0
    for run_id, reference in zip(ids, expected, strict=True):
        resumed = cli.invoke(app, ["run", "--resume", str(run_id), "--db", url, "-q"])
        assert resumed.exit_code == 0, resumed.output
        lost += rows_lost(reference, predictions_of(engine, run_id))
    left = sum(s in ("queued", "running") for s in list_runs(engine)["status"])
    fault(rows_lost=lost, left_running=left)
    assert lost == 0 and left == 0
    engine.dispose()


def test_while_nothing_can_be_written_reads_still_read_and_the_failure_is_written_later(
    disk, config, write_returns, ar1_returns, monkeypatch, sets, tiny, ledger_check, fault
):
    """Once not even the failure's own small write fits (the store refuses every write),
    the run's failure is kept and written by the next command that can write; meanwhile
    ``runs list``, ``runs show`` and ``sweep list`` read the store and say it cannot be
    written, and a succeeded run is shown as ever."""
    url = f"sqlite:///{disk.path}"
    engine = make_engine(url)
    write_returns(engine, "SYN", ar1_returns(420, phi=0.3, seed=3))
    done = cli.invoke(app, ["run", str(config), "--db", url, "-q", *sets(tiny)])
    assert done.exit_code == 0, done.output
    _at(monkeypatch, "storing", 2, lambda _engine: disk.frozen())
    line = _one_line(cli.invoke(app, ["run", str(config), "--db", url, "-q", *sets(tiny)]))
    assert "the store cannot be written (attempt to write a readonly database)" in line
    assert "run 2 could not be marked failed either" in line
    assert get_run(engine, 2).status == "running"  # as the failed write left it

    for args in (["runs", "list"], ["runs", "show", "1"], ["runs", "show", "2"], ["sweep", "list"]):
        result = cli.invoke(app, [*args, "--db", url])
        assert result.exit_code == 0, result.output  # runs show 2: still running
        assert "Traceback" not in result.output
        assert "the store cannot be written" in " ".join(result.stderr.split())
    shown = cli.invoke(app, ["runs", "show", "1", "--db", url])
    assert "verdict" in shown.stdout.lower()
    refused = _one_line(cli.invoke(app, ["run", str(config), "--db", url, "-q", *sets(tiny)]))
    assert refused == "error: cannot use the database: attempt to write a readonly database"
    assert len(list_runs(engine)) == 2  # nothing registered

    disk.free()
    listed = cli.invoke(app, ["runs", "list", "--db", url])
    assert listed.exit_code == 0 and "cannot be written" not in listed.output
    run = get_run(engine, 2)
    assert run.status == "failed"
    assert (
        run.error
        == "StoreError: the store cannot be written (attempt to write a readonly database)"
    )
    assert completed_folds(engine, 2) == {0}
    half, left = ledger_check(engine, [1, 2])
    fault(rows_lost=half, left_running=left)
    assert (half, left) == (0, 0)
    engine.dispose()


@pytest.mark.parametrize(
    "db_url", [pytest.param("postgresql", marks=pytest.mark.postgres)], indirect=True
)
def test_a_lost_postgresql_connection_fails_the_run_cleanly_or_is_retried(
    db_url,
    pg_admin,
    write_returns,
    ar1_returns,
    monkeypatch,
    tmp_path,
    tiny,
    predictions_of,
    ledger_check,
    rows_lost,
    fault,
):
    """``pg_terminate_backend`` on the run's connections: between two fold groups the
    pool reconnects (the run goes on); while the third fold group commits, the run fails
    with the reason, that transaction is rolled back by the server, and ``--resume``
    stores the rows of an uninterrupted run."""
    engine = make_engine(db_url)
    write_returns(engine, "SYN", ar1_returns(420, phi=0.3, seed=3))
    backends: set[int] = set()
    sa.event.listen(engine, "connect", lambda dbapi, _rec: backends.add(dbapi.info.backend_pid))

    def terminate(pids) -> None:
        with pg_admin.connect() as conn:
            for pid in pids:
                conn.execute(sa.text("select pg_terminate_backend(:pid)"), {"pid": pid})

    def at_commit(conn) -> None:
        terminate([conn.connection.dbapi_connection.info.backend_pid])

    def stage(name: str, engine_=None) -> None:
        if name == "training":
            seen["training"] += 1
            if seen["training"] == 2:  # idle in the pool between fold groups
                terminate(sorted(backends))
        if name == "storing":
            seen["storing"] += 1
            if seen["storing"] == 3:  # inside the fold group's transaction
                sa.event.listen(engine_, "commit", at_commit, once=True)

    seen = {"training": 0, "storing": 0}
    monkeypatch.setattr(faults, "reached", stage)
    config = load_config(None, tiny)
    with pytest.raises(StoreError, match="the connection to the store was lost") as raised:
        run_experiment(engine, config)
    (run_id,) = (int(i) for i in list_runs(engine)["id"])
    assert f"run {run_id} failed: resume with madness run --resume {run_id}" in str(raised.value)
    run = get_run(engine, run_id)
    assert run.status == "failed" and run.error.startswith("StoreError: the connection")
    assert completed_folds(engine, run_id) == {0, 1}  # the second went on after reconnecting
    assert ledger_check(engine, [run_id]) == (0, 0)

    monkeypatch.undo()
    assert run_experiment(engine, resume=run_id)["status"] == "succeeded"
    (expected,) = _uninterrupted(tmp_path, write_returns, ar1_returns, [config], predictions_of)
    lost = rows_lost(expected, predictions_of(engine, run_id))
    fault(rows_lost=lost, left_running=ledger_check(engine, [run_id])[1])
    assert lost == 0
    engine.dispose()


def test_concurrent_sweeps_state_what_a_cold_recomputation_states(
    db_url,
    write_returns,
    ar1_returns,
    tiny,
    monkeypatch,
    tmp_path,
    predictions_of,
    ledger_check,
    fault,
):
    """Three sweeps of two seeds at once into one store (threads of this process): every
    run succeeds, none is lost, and ``runs show --json`` of each sweep's first run, read
    from the cache the sweeps primed, is what an empty cache computes now (6 trials)."""
    engine = make_engine(db_url)
    write_returns(engine, "SYN", ar1_returns(420, phi=0.3, seed=3))
    results, errors = [], []

    def sweep(seed: int) -> None:
        try:
            base = load_config(None, [*tiny, f"train.seed={seed}"])
            results.append(run_sweep(db_url, base, SweepSpace({}, seeds=2)))
        except BaseException as exc:  # reported by the test's thread
            errors.append(exc)

    threads = [threading.Thread(target=sweep, args=(k * 100,)) for k in (1, 2, 3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(300)
    assert not errors and len(results) == 3
    ids = sorted(i for r in results for i in r["runs"])
    assert len(ids) == 6 and all(get_run(engine, i).status == "succeeded" for i in ids)
    counts = [len(predictions_of(engine, i)) for i in ids]
    lost = max(counts) * len(counts) - sum(counts)
    half, left = ledger_check(engine, ids)

    def shown(run_id: int) -> dict:
        result = cli.invoke(app, ["runs", "show", str(run_id), "--db", db_url, "--json"])
        assert result.exit_code == 0, result.output
        return json.loads(result.stdout)

    firsts = [r["runs"][0] for r in results]
    warm = {i: shown(i) for i in firsts}
    monkeypatch.setenv("MADNESS_CACHE_DIR", str(tmp_path / "empty"))
    cold = {i: shown(i) for i in firsts}
    fault(rows_lost=lost + half, left_running=left)
    assert (lost, half, left) == (0, 0, 0)
    for i in firsts:
        assert cold[i]["significance"]["trials"] == 6
        assert json.dumps(warm[i], sort_keys=True) == json.dumps(cold[i], sort_keys=True)
    engine.dispose()


def test_sweep_show_shows_a_run_whose_process_died_as_stale(
    disk, write_returns, ar1_returns, tiny, fault
):
    """A sweep's run whose process died: ``sweep show`` marks it and lists it as stale
    beside the ranking (in the JSON too); on a store that cannot be written it is found
    stale all the same. Before: it was not marked, and not shown."""
    url = f"sqlite:///{disk.path}"
    engine = make_engine(url)
    write_returns(engine, "SYN", ar1_returns(420, phi=0.3, seed=3))
    done = run_sweep(url, load_config(None, tiny), SweepSpace({}, seeds=3))
    dead = done["runs"][-1]
    with engine.begin() as conn:  # as a kill -9 before its finish leaves it
        conn.execute(
            sa.text(
                "update runs set status = 'running', summary_json = null, pid = :pid where id = :id"
            ),
            {"pid": 2**22 + 7, "id": dead},
        )
    disk.frozen()
    frozen = cli.invoke(app, ["sweep", "show", str(done["sweep_id"]), "--db", url, "--json"])
    assert frozen.exit_code == 0, frozen.output
    assert json.loads(frozen.stdout)["not_ranked"] == [
        {"run_id": dead, "status": "stale", "error": None}
    ]
    assert get_run(engine, dead).status == "running"  # found, not marked: nothing writes
    disk.free()
    shown = cli.invoke(app, ["sweep", "show", str(done["sweep_id"]), "--db", url])
    assert shown.exit_code == 0, shown.output
    text = " ".join(shown.output.split())
    assert "not ranked: 1 run that did not succeed" in text
    assert f"run {dead} stale stale: process {2**22 + 7}" in text
    assert get_run(engine, dead).status == "failed"
    fault(left_running=sum(s in ("queued", "running") for s in list_runs(engine)["status"]))
    engine.dispose()
