"""A new user's first hour (issue 21): each mistake is answered with its fix in one line,
exit code 1 and nothing written; the small commands people expect exist."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from lstm_madness.cli import app
from lstm_madness.data.db import make_engine
from lstm_madness.data.schema import SCHEMA_VERSION
from lstm_madness.data.store import read_returns
from lstm_madness.store.runs import list_runs
from lstm_madness.version import __version__

runner = CliRunner()
ENV = {"COLUMNS": "100", "NO_COLOR": "", "FORCE_COLOR": "", "TERM": "dumb"}
FAST = ["--set", "evaluation.bootstrap_reps=20"]


def _invoke(*args: str, env: dict[str, str] | None = None):
    return runner.invoke(app, list(args), env={**ENV, **(env or {})})


def _one_line(text: str) -> str:
    return " ".join(text.split())


@pytest.fixture
def store(sqlite_url: str, write_returns) -> str:
    """A SQLite store holding 400 days of the synthetic symbol SYN."""
    engine = make_engine(sqlite_url)
    write_returns(engine, "SYN", np.random.default_rng(0).normal(0.0003, 0.012, 400))
    engine.dispose()
    return sqlite_url


@pytest.fixture
def forecasts(store: str, tmp_path: Path) -> Path:
    """A ``date,prediction`` file over SYN's last 300 decision dates."""
    engine = make_engine(store)
    days = read_returns(engine, "SYN")["date"].iloc[-301:-1]
    engine.dispose()
    path = tmp_path / "preds.csv"
    frame = pd.DataFrame({"date": days.dt.strftime("%Y-%m-%d"), "prediction": 0.001})
    frame.to_csv(path, index=False, lineterminator="\n")
    return path


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "exp.toml"
    path.write_text('name = "first-hour"\n')
    return path


# 1 ----------------------------------------------------------------- symbols, any case


def test_a_symbol_in_another_case_is_read_as_stored_and_a_typo_gets_a_suggestion(
    store: str, forecasts: Path, config: Path
) -> None:
    judged = _invoke("judge", str(forecasts), "--target", "syn", "--db", store, "--json", *FAST)
    assert judged.exit_code == 0, judged.output
    assert json.loads(judged.stdout)["target"] == "SYN"

    typo = _invoke("run", str(config), "--db", store, "--set", "data.target=SYNN", "--quiet")
    assert typo.exit_code == 1
    assert "unknown symbol(s): SYNN (not in the store; did you mean SYN?)" in _one_line(typo.output)
    assert len(list_runs(make_engine(store))) == 1  # the judged one; the typo stored nothing

    shown = _invoke("prices", "syn", "--db", store)
    assert shown.exit_code == 1 and "did you mean SYN?" in shown.output


# 2 ----------------------------------------------------------------- the date format


def test_us_dates_name_the_expected_format_once_with_the_first_bad_lines(
    tmp_path: Path,
) -> None:
    path = tmp_path / "us.csv"
    days = pd.bdate_range("2010-01-04", periods=30)
    path.write_text("date,prediction\n" + "".join(f"{d:%m/%d/%Y},0.001\n" for d in days))
    db = tmp_path / "new.db"
    result = _invoke("judge", str(path), "--target", "XLF", "--db", str(db))
    assert result.exit_code == 1
    text = result.output
    assert text.count("dates must be YYYY-MM-DD") == 1
    assert f"{path}, line 2, column date, value '01/04/2010'" in text
    assert "... and 27 more unparseable dates" in text
    assert len(text.strip().splitlines()) <= 6, text  # not 20 lines of the same mistake
    assert not db.exists()  # nothing written, not even a store


# 3 ----------------------------------------------------------------- --db as a path


def test_a_plain_path_is_a_sqlite_store_and_anything_else_names_the_accepted_forms(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    relative = _invoke("db", "init", "--db", "x.db")
    assert relative.exit_code == 0, relative.output
    assert "a new store at x.db" in relative.output and (tmp_path / "x.db").is_file()
    absolute = tmp_path / "sub" / "y.db"
    absolute.parent.mkdir()
    assert _invoke("db", "init", "--db", str(absolute)).exit_code == 0
    assert absolute.is_file()
    again = _invoke("symbols", "--db", str(absolute))
    assert again.exit_code == 0, again.output

    bad = _invoke("db", "init", "--db", "postgres:/nowhere")
    assert bad.exit_code == 1
    assert "Could not parse" not in bad.output
    message = _one_line(bad.output)
    assert "a SQLite file path (madness.db, /data/madness.db) or a URL" in message
    assert "postgresql+psycopg://USER@HOST/DBNAME" in message
    assert "SQLite file path" in _one_line(_invoke("db", "init", "--help").output)


# 4 ----------------------------------------------------------------- a missing database


@pytest.fixture
def missing_pg(pg_admin: sa.Engine | None):
    """The URL of a PostgreSQL database that does not exist (a quote and a space in its
    name); dropped afterwards if a test created it."""
    if pg_admin is None:
        pytest.skip("PostgreSQL not reachable (set MADNESS_TEST_PG_URL)")
    name = f'madness first "hour" {uuid.uuid4().hex[:8]}'
    url = pg_admin.url.set(database=name)
    yield url
    with pg_admin.connect() as conn:
        conn.execute(
            sa.text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :n"),
            {"n": name},
        )
        quoted = conn.dialect.identifier_preparer.quote_identifier(name)
        conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {quoted}")


def test_db_init_creates_a_missing_postgres_database_and_others_say_so(
    missing_pg: sa.URL, pg_admin: sa.Engine
) -> None:
    url = missing_pg.render_as_string(hide_password=False)
    secret = missing_pg.set(password="s3cret-pw").render_as_string(hide_password=False)
    listed = _invoke("runs", "list", "--db", secret)
    assert listed.exit_code == 1
    message = _one_line(listed.output)
    assert f"no database {missing_pg.database!r}" in message
    assert "create it with `madness db init --db URL`" in message
    assert "s3cret-pw" not in listed.output

    created = _invoke("db", "init", "--db", url)
    assert created.exit_code == 0, created.output
    assert f"database {missing_pg.database!r} created: a new store" in _one_line(created.output)
    with pg_admin.connect() as conn:
        names = conn.execute(sa.text("SELECT datname FROM pg_database")).scalars().all()
    assert missing_pg.database in names
    assert _invoke("runs", "list", "--db", url).exit_code == 0
    again = _invoke("db", "init", "--db", url)
    assert again.exit_code == 0 and "store ready" in again.output


def test_db_init_says_createdb_when_the_server_refuses(
    missing_pg: sa.URL, pg_admin: sa.Engine
) -> None:
    role = f"madness_nocreate_{uuid.uuid4().hex[:8]}"
    try:
        with pg_admin.connect() as conn:
            conn.exec_driver_sql(f"CREATE ROLE {role} LOGIN NOCREATEDB PASSWORD 'hunter2-pw'")
    except sa.exc.DBAPIError as exc:
        pytest.skip(f"cannot create a test role here: {exc.orig}")
    try:
        url = missing_pg.set(username=role, password="hunter2-pw")
        result = _invoke("db", "init", "--db", url.render_as_string(hide_password=False))
    finally:
        with pg_admin.connect() as conn:
            conn.exec_driver_sql(f"DROP ROLE IF EXISTS {role}")
    assert result.exit_code == 1
    message = _one_line(result.output)
    assert "does not exist" in message and "createdb" in message and f"-U {role}" in message
    assert "hunter2-pw" not in result.output


# 5, 6, 7 ------------------------------------------------------------ --set and --grid


def test_set_in_two_words_says_the_one_word_form(store: str, config: Path) -> None:
    result = _invoke("run", str(config), "--db", store, "--set", "train.epochs", "5")
    assert result.exit_code == 1
    assert "unexpected extra argument" not in result.output
    assert "--set takes KEY=VALUE as one word: --set train.epochs=5" in _one_line(result.output)


def test_a_key_without_its_section_is_found_in_the_section_that_has_it(
    store: str, config: Path
) -> None:
    result = _invoke("run", str(config), "--db", store, "--set", "epochs=5")
    assert result.exit_code == 1
    assert "unknown key 'epochs': did you mean train.epochs?" in _one_line(result.output)


def test_a_scalar_given_for_a_list_shows_the_list_form(store: str, config: Path) -> None:
    units = _invoke("run", str(config), "--db", store, "--set", "model.units=32")
    assert units.exit_code == 1
    assert "model.units: expected a list, e.g. model.units=[32]" in _one_line(units.output)
    grid = _invoke("sweep", str(config), "--db", store, "--grid", "model.time_steps=2,3")
    assert grid.exit_code == 1
    assert "e.g. --grid model.time_steps=[2,3]" in _one_line(grid.output)
    assert len(list_runs(make_engine(store))) == 0


# 8 ----------------------------------------------------------------- judged again


_REJUDGE = """
from lstm_madness import api
from lstm_madness.errors import AlreadyJudgedError
preds = {path!r}
settings = dict(target="SYN", db={db!r}, overrides={{"evaluation.bootstrap_reps": 20}})
api.judge(preds, **settings)
try:
    api.judge(preds, **settings)
except AlreadyJudgedError as exc:
    print("RENDERED", exc._render_traceback_())
api.judge(preds, **settings)  # uncaught: the traceback a notebook user would see
"""


def test_judging_again_from_python_says_force_true_and_from_the_cli_force(
    store: str, forecasts: Path
) -> None:
    script = _REJUDGE.format(path=str(forecasts), db=store)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    proc = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(script)],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert proc.returncode == 1, proc.stderr
    rendered = next(line for line in proc.stdout.splitlines() if line.startswith("RENDERED"))
    assert "AlreadyJudgedError:" in rendered and "pass force=True" in rendered
    assert "--force" not in proc.stdout + proc.stderr
    traceback = proc.stderr.strip().splitlines()
    assert len(traceback) <= 8, proc.stderr  # the call and the raise, not the internals
    assert "During handling" not in proc.stderr

    again = _invoke("judge", str(forecasts), "--target", "SYN", "--db", store, *FAST)
    assert again.exit_code == 1
    assert "add --force to judge it again" in _one_line(again.output)
    assert "force=True" not in again.output


# 9, 10 ------------------------------------------------------------- --version, db info


def test_version_prints_the_package_version() -> None:
    result = _invoke("--version")
    assert result.exit_code == 0
    assert result.output.strip() == f"lstm-madness {__version__}"


def test_db_info_counts_what_the_store_holds_and_writes_nothing(store: str, tmp_path: Path) -> None:
    members = tmp_path / "members.csv"
    members.write_text("symbol,start,end\nSYN,2001-01-02,\nABC,2001-01-02,\n")
    assert _invoke("universe", "add", "mine", str(members), "--db", store).exit_code == 0
    result = _invoke("db", "info", "--db", store)
    assert result.exit_code == 0, result.output
    rows = {line.split()[0]: line.split()[-1] for line in result.output.strip().splitlines()}
    assert rows["symbols"] == "1" and rows["bars"] == "400" and rows["runs"] == "0"
    assert rows["sweeps"] == "0" and "universes       1 stored" in result.output
    assert f"schema version  {SCHEMA_VERSION}" in result.output and store in result.output

    empty = tmp_path / "empty.db"
    empty.touch()  # a database without the schema: shown as such, not initialized
    bare = _invoke("db", "info", "--db", str(empty))
    assert bare.exit_code == 0, bare.output
    assert "schema version  none yet (`madness db init` creates it)" in bare.output
    assert sa.inspect(make_engine(str(empty))).get_table_names() == []


def test_db_info_never_prints_the_password(missing_pg: sa.URL) -> None:
    url = missing_pg.set(password="s3cret-pw").render_as_string(hide_password=False)
    result = _invoke("db", "info", "--db", url)
    assert result.exit_code == 1 and "s3cret-pw" not in result.output


# 11 ---------------------------------------------------------------- no store, no file


@pytest.mark.parametrize(
    "command",
    [
        ["runs", "list"],
        ["runs", "show", "1"],
        ["runs", "predictions", "1"],
        ["runs", "delete", "1"],
        ["db", "info"],
        ["report", "1"],
        ["compare", "1", "2"],
        ["symbols"],
        ["prices", "XLF"],
    ],
)
def test_a_read_only_command_without_a_store_creates_none_and_says_how(
    command: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MADNESS_DB_URL", raising=False)
    result = _invoke(*command)
    assert result.exit_code == 1
    message = _one_line(result.output)
    assert "no store at ./madness.db (the default" in message
    assert "create one with `madness db init` or `madness ingest FILE.csv`" in message
    assert not (tmp_path / "madness.db").exists()


def test_universe_show_without_a_store_creates_none(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MADNESS_DB_URL", raising=False)
    bundled = _invoke("universe", "show", "xlf")
    assert bundled.exit_code == 0 and "(bundled)" in bundled.output
    missing = _invoke("universe", "show", "mine")
    assert missing.exit_code == 1
    assert "no universe 'mine' (no store at ./madness.db)" in _one_line(missing.output)
    assert not (tmp_path / "madness.db").exists()


def test_a_command_that_creates_the_store_says_where(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MADNESS_DB_URL", raising=False)
    prices = tmp_path / "xlf.csv"
    prices.write_text("date,open,high,low,close,adj_close,volume\n2020-01-02,10,11,9,10.5,10,100\n")
    first = _invoke("ingest", str(prices))
    assert first.exit_code == 0, first.output
    assert first.output.count("created a new store at ./madness.db") == 1
    again = _invoke("ingest", str(prices))
    assert again.exit_code == 0 and "created a new store" not in again.output
