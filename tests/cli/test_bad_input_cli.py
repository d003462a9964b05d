"""User errors through the CLI end in one line, exit code 1 and nothing written (issue 22,
defects 6, 7 and 8): a report folder that cannot be one, a psycopg2 URL, a Ray address
that does not answer, refused configs, a bad grid, bad universe members, passwords in
malformed URLs."""

from __future__ import annotations

import socket
import time
from pathlib import Path

import numpy as np
import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from lstm_madness.cli import app
from lstm_madness.data.db import make_engine
from lstm_madness.store.runs import list_runs

runner = CliRunner()
TINY = [
    *("--set", "model.units=[4]"),
    *("--set", "train.epochs=1"),
    *("--set", "data.target=SYN"),
    *("--set", "evaluation.bootstrap_reps=10"),
]


@pytest.fixture
def store(db_url, write_returns):
    """``db_url`` holding 300 days of SYN; yields the URL."""
    engine = make_engine(db_url)
    write_returns(engine, "SYN", np.random.default_rng(0).normal(0, 0.01, 300), "2002-01-01")
    engine.dispose()
    return db_url


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "exp.toml"
    path.write_text('name = "bad-input"\n')
    return path


def _ledger(url: str) -> tuple[int, int]:
    """(runs, sweeps) stored."""
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            sweeps = conn.execute(sa.text("select count(*) from sweeps")).scalar()
        return len(list_runs(engine)), int(sweeps or 0)
    finally:
        engine.dispose()


def _one_line_error(result) -> str:
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.output
    return lines[0]


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]  # closed again: nothing listens there


def test_report_out_that_cannot_be_a_folder(sqlite_url, write_returns, config, tmp_path):
    """Before: NotADirectoryError / FileNotFoundError tracebacks after the evaluation."""
    engine = make_engine(sqlite_url)
    write_returns(engine, "SYN", np.random.default_rng(0).normal(0, 0.01, 300), "2002-01-01")
    engine.dispose()
    ran = runner.invoke(app, ["run", str(config), "--db", sqlite_url, "-q", *TINY])
    assert ran.exit_code == 0, ran.output
    a_file = tmp_path / "notes.txt"
    a_file.write_text("mine\n")
    result = runner.invoke(app, ["report", "1", "--db", sqlite_url, "--out", str(a_file)])
    line = _one_line_error(result)
    assert f"--out {a_file}: {a_file} is a file, not a folder" in line
    assert a_file.read_text() == "mine\n"
    nested = tmp_path / "new" / "deeper"
    missing_run = runner.invoke(app, ["report", "9", "--db", sqlite_url, "--out", str(nested)])
    assert "no run with id 9" in _one_line_error(missing_run)
    assert not (tmp_path / "new").exists()  # the folders it made are gone again
    if Path("/proc/self").is_dir():  # a file system that takes no folder
        result = runner.invoke(app, ["report", "1", "--db", sqlite_url, "--out", "/proc/x"])
        assert "--out /proc/x: cannot write the report to /proc/x/run-1" in _one_line_error(result)


def test_a_psycopg2_url_says_the_project_uses_psycopg_3():
    """Before: ModuleNotFoundError: No module named 'psycopg2', with its traceback."""
    pytest.importorskip("sqlalchemy")
    try:
        import psycopg2  # noqa: F401
    except ImportError:
        pass
    else:  # pragma: no cover - not installed with this project
        pytest.skip("psycopg2 is installed here")
    url = "postgresql+psycopg2://u:S3cret@127.0.0.1:1/db"
    line = _one_line_error(runner.invoke(app, ["runs", "list", "--db", url]))
    assert "psycopg 3" in line and "postgresql+psycopg://" in line and "S3cret" not in line


@pytest.mark.parametrize("command", ["run", "sweep"])
def test_a_ray_address_that_does_not_answer_fails_fast(sqlite_url, write_returns, config, command):
    """Before: Ray's client retried for about 25 s, then a traceback; runs (and the
    sweep) were registered first, then failed."""
    pytest.importorskip("ray")
    engine = make_engine(sqlite_url)
    write_returns(engine, "SYN", np.random.default_rng(0).normal(0, 0.01, 300), "2002-01-01")
    engine.dispose()
    address = f"ray://127.0.0.1:{_closed_port()}"
    args = [command, str(config), "--db", sqlite_url, "-q", *TINY]
    args += ["--engine", "ray", "--address", address]
    if command == "sweep":
        args += ["--grid", "model.time_steps=[2,3]"]
    started = time.perf_counter()
    line = _one_line_error(runner.invoke(app, args))
    assert time.perf_counter() - started < 20
    assert f"--address {address}: no Ray cluster answers at 127.0.0.1:" in line
    assert _ledger(sqlite_url) == (0, 0)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["data.target=ZZZZ"], "unknown symbol(s): ZZZZ"),
        (["data.target='1; DROP TABLE runs; --'"], "unknown symbol(s): 1; DROP TABLE runs; --"),
        (["data.start=2003-01-01", "data.end=2002-06-01"], "data.end = 2002-06-01 is before"),
        (["train.seed=-5"], "train.seed = -5 is out of range: allowed 0 to 4294967295"),
        (["model.time_steps=250"], "model.time_steps = 250 leaves no complete samples"),
    ],
)
def test_a_refused_run_or_sweep_leaves_nothing(store, config, overrides, message):
    """Defect 7 through the CLI, on both backends: no failed run, no orphan sweep."""
    sets = [arg for override in overrides for arg in ("--set", override)]
    # -q: without it the run's first line ("run NAME: loading SYN from STORE …") comes first
    ran = runner.invoke(app, ["run", str(config), "--db", store, "-q", *TINY, *sets])
    line = _one_line_error(ran)
    assert message in line
    grid = ["--grid", "model.units=[[4],[5]]"]
    swept = runner.invoke(app, ["sweep", str(config), "--db", store, "-q", *TINY, *sets, *grid])
    assert message in _one_line_error(swept)
    assert _ledger(store) == (0, 0)


def test_universe_add_refuses_non_symbols_and_warns_of_unstored_members(store, tmp_path):
    """Before: ``ZZZZ`` and an SQL text stored without a word."""
    bad = tmp_path / "bad.csv"
    bad.write_text("symbol,start,end\nSYN,2002-01-01,\n'; DROP TABLE bars;--,2002-01-01,\n")
    result = runner.invoke(app, ["universe", "add", "mine", str(bad), "--db", store])
    assert result.exit_code == 1 and "Traceback" not in result.output
    text = " ".join(result.output.split())
    assert "nothing of this file was stored" in text
    assert 'line 3, column symbol, value "\'; DROP TABLE bars;--": not a symbol' in text
    shown = runner.invoke(app, ["universe", "show", "mine", "--db", store])
    assert shown.exit_code == 1 and "no universe 'mine'" in shown.output

    good = tmp_path / "good.csv"
    good.write_text("symbol,start,end\nSYN,2002-01-01,\nzzzz,2002-01-01,\nQQQQ,2002-01-01,\n")
    added = runner.invoke(app, ["universe", "add", "mine", str(good), "--db", store])
    assert added.exit_code == 0, added.output
    assert "3 intervals of 3 symbols stored" in added.output
    assert "warning: 2 member(s) have no stored prices: QQQQ, ZZZZ (stored anyway" in (
        " ".join(added.output.split())
    )
    shown = runner.invoke(app, ["universe", "show", "mine", "--db", store])
    assert shown.exit_code == 0 and "ZZZZ" in shown.output


@pytest.mark.parametrize(
    "url",
    [
        "postgresql+psycopg://u:Pa55@W0rd@127.0.0.1/db",  # an '@' in the password
        "postgresql+psycopg://u:Pa55@W0rd@127.0.0.1:1/db",
        "postgresql+psycopg://u:Pa55/W0rd@127.0.0.1:1/db",  # a '/' in the password
        "postgresql+psycopg://us/er:Pa55W0rd@127.0.0.1:1/db",  # a '/' in the user name
        "postgresql+psycopg://u:Pa55:W0rd@127.0.0.1:1/db",  # a ':' in the password
        "postgresql+psycopg://u:Pa55W0rd@127.0.0.1:12ab@x/db",
        "postgresql+psycopg:/u:Pa55W0rd@127.0.0.1/db",  # one slash
        "u:Pa55W0rd@127.0.0.1/db",  # no scheme
        "postgresql+psycopg://u:Pa55W0rd/db",  # no host
        "postgresql+psycopg2://u:Pa55W0rd@127.0.0.1:1/db",
        "mysql://u:Pa55W0rd@127.0.0.1/db",
    ],
)
def test_no_part_of_a_password_is_ever_printed(url):
    """Before: ``failed to resolve host 'W0rd@127.0.0.1'`` printed the password's tail."""
    result = runner.invoke(app, ["runs", "list", "--db", url])
    line = _one_line_error(result)
    for part in ("Pa55", "W0rd", "55W", "a55", "0rd"):
        assert part not in result.output, line
