"""What a user reads: tables at 80 columns without a terminal, help, examples, compare."""

import json
import re
import shlex

import numpy as np
import pytest
import typer
from typer.testing import CliRunner

from lstm_madness.cli import app
from lstm_madness.cli.tables import Column, fit_table, fmt
from lstm_madness.data.db import make_engine

runner = CliRunner()
NO_TERMINAL = {"COLUMNS": "80", "NO_COLOR": "", "FORCE_COLOR": "", "TERM": "dumb"}
ISO_DATE = re.compile(r"\b\d{4}-\d{2}-\d{2}\b")
#: Examples that need the network or train networks: parsed, not run, here.
NOT_RUN = {("fetch",), ("run",), ("demo",), ("sweep",), ("sweep", "run")}

QUICK = [
    "--set",
    "model.units=[8]",
    "--set",
    "train.epochs=3",
    "--set",
    "data.target=SYN",
    "--set",
    "evaluation.bootstrap_reps=50",
    "--quiet",
]
LONG_NAME = "xlf-05-walk-forward-components"


def _commands(command, path=()):
    """(path, click command) of every command and group, depth first."""
    yield path, command
    for name, sub in sorted(getattr(command, "commands", {}).items()):
        yield from _commands(sub, (*path, name))


def _resolve(root, words: list[str]):
    """The command an example line names, its path and the remaining arguments."""
    command, path = root, []
    while words and words[0] in getattr(command, "commands", {}):
        path.append(words[0])
        command = command.commands[words.pop(0)]
    return command, tuple(path), words


def _examples(text: str) -> list[str]:
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.strip() == "Examples:")
    return [line.strip() for line in lines[start + 1 :] if line.strip().startswith("madness ")]


def test_every_help_reads_like_help_and_its_examples_run(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    env = {**NO_TERMINAL, "MADNESS_DB_URL": f"sqlite:///{tmp_path / 'examples.db'}"}
    root = typer.main.get_command(app)
    seen = 0
    for path, _command in _commands(root):
        result = runner.invoke(app, [*path, "--help"], env=env)
        assert result.exit_code == 0, (path, result.output)
        text = result.output
        assert "<bool>" not in text and "<list" not in text and "<str>" not in text, path
        assert "``" not in text, path
        assert "\x1b[" not in text, path  # no colour codes without a terminal
        examples = _examples(text)
        assert examples, f"no example in the help of {path}"
        for line in examples:
            words = shlex.split(line)[1:]
            command, cpath, rest = _resolve(root, list(words))
            assert cpath[: len(path)] == path or not path, (path, line)
            # every example parses: it reaches the command, no usage error
            if "--help" not in rest:
                with command.make_context(" ".join(["madness", *cpath]), list(rest)) as ctx:
                    assert ctx.command is command
            if cpath in NOT_RUN and rest[:1] != ["show"]:
                continue
            ran = runner.invoke(app, words, env=env)
            assert ran.exit_code in (0, 1), (line, ran.output)
            # a user error is a message, never a crash
            assert ran.exception is None or isinstance(ran.exception, SystemExit), (line, ran)
            assert "Usage:" not in ran.output or "--help" in words, (line, ran.output)
            seen += 1
    assert seen >= 10


def test_ingest_example_then_symbols_table(tmp_path):
    env = {**NO_TERMINAL, "MADNESS_DB_URL": f"sqlite:///{tmp_path / 'x.db'}"}
    assert runner.invoke(app, ["ingest", "--sample", "sp500"], env=env).exit_code == 0
    shown = runner.invoke(app, ["symbols"], env=env)
    assert shown.exit_code == 0, shown.output
    assert "^GSPC" in shown.output and "1999-01-04" in shown.output
    assert max(len(line) for line in shown.output.splitlines()) <= 80


@pytest.fixture
def two_runs(sqlite_url, tmp_path, write_returns):
    """Two quick runs on SYN with different test periods; returns their ids."""
    engine = make_engine(sqlite_url)
    write_returns(engine, "SYN", np.random.default_rng(0).normal(0, 0.01, 420), "2002-01-01")
    engine.dispose()
    ids = []
    for initial in (250, 300):
        config = tmp_path / f"exp{initial}.toml"
        config.write_text(
            f'name = "cli"\n[split]\nscheme = "walk_forward"\ninitial_train_days = {initial}\n'
            "retrain_every_days = 80\n"
        )
        result = runner.invoke(
            app,
            ["run", str(config), "--db", sqlite_url, "--json", "--name", LONG_NAME, *QUICK],
        )
        assert result.exit_code == 0, result.output
        ids.append(json.loads(result.stdout)["run_id"])
    return ids


def test_tables_at_80_columns_without_a_terminal(sqlite_url, two_runs):
    first, second = two_runs
    listed = runner.invoke(app, ["runs", "list", "--db", sqlite_url], env=NO_TERMINAL)
    assert listed.exit_code == 0, listed.output
    lines = listed.output.splitlines()
    assert max(len(line) for line in lines) <= 80
    assert "\x1b[" not in listed.output
    rows = [line for line in lines if line.lstrip().startswith((str(first), str(second)))]
    assert len(rows) == 2
    for row in rows:
        assert " succeeded " in f"{row} "  # the whole status word, on the run's line
        assert len(ISO_DATE.findall(row)) >= 2  # the test period, whole ISO dates
        assert "xlf-05" in row  # the name, whole or shortened in the middle

    shown = runner.invoke(app, ["runs", "show", str(first), "--db", sqlite_url], env=NO_TERMINAL)
    assert shown.exit_code == 0, shown.output
    assert LONG_NAME in shown.output  # the full name
    assert "NOT TRADEABLE" in shown.output and "%" in shown.output

    compared = runner.invoke(
        app, ["compare", str(first), str(second), "--db", sqlite_url], env=NO_TERMINAL
    )
    assert compared.exit_code == 0, compared.output
    text = compared.output
    assert "test periods differ" in text and "not comparable" in text
    table = text.split("not comparable")[0]
    assert max(len(line) for line in table.splitlines()) <= 80
    net_sharpe = next(line for line in table.splitlines() if line.startswith("net Sharpe"))
    assert re.fullmatch(r"net Sharpe\s+-?\d+\.\d\d\s+-?\d+\.\d\d", net_sharpe.strip())
    total = next(line for line in table.splitlines() if line.startswith("net total return"))
    assert total.count("%") == 2  # returns as percentages, not fractions


def test_fit_table_drops_low_priority_columns_and_never_cuts_a_date():
    columns = [
        Column("id", 0, "right"),
        Column("name", 1, shorten="middle", min_width=12),
        Column("status", 0),
        Column("period", 1),
        Column("extra", 5),
    ]
    rows = [["1", LONG_NAME, "succeeded", "2003-12-31 → 2020-12-31", "x" * 30]]
    from rich.console import Console

    console = Console(width=200, record=True)
    for width in (40, 50, 60, 80):
        console.print(fit_table(columns, rows, width), width=width)
        text = console.export_text()
        assert max(len(line) for line in text.splitlines()) <= width
        assert "succeeded" in text
        # a date is shown whole or not at all
        assert "2003-12-31 → 2020-12-31" in text or "2003" not in text
        assert "2003-12-31 → 2020-12-31" in text or width < 60
        assert ("xlf-" in text and "…" in text) or LONG_NAME in text
        assert "x" * 30 not in text  # the lowest priority column went first
    assert LONG_NAME in text


def test_formats():
    assert fmt.percent(-0.4929) == "-49.3%"
    assert fmt.ratio(0.02552) == "0.03"
    assert fmt.pvalue(0.30) == "0.30" and fmt.pvalue(0.04123) == "0.041"
    assert fmt.pvalue(3.1e-5) == "3.1e-05" and fmt.pvalue(None) == fmt.MISSING
    assert fmt.middle(LONG_NAME, 17) == "xlf-05…components"
    assert fmt.date("2020-12-31T00:00:00") == "2020-12-31"
    assert fmt.seconds(75) == "1 min 15 s"
    assert fmt.percent(float("nan")) == fmt.MISSING


def test_progress_bars_end_finished():
    from lstm_madness.cli.experiment import RunProgress

    progress = RunProgress()
    progress.bar.disable = True  # state only, nothing drawn
    with progress:
        progress("fold", fold=0, n_folds=2)
        for epoch in range(1, 41):
            progress("epoch", epoch=epoch, epochs=40, active=13, models=13)
        progress("fold", fold=1, n_folds=2)
        for epoch in range(1, 26):  # every network stops early at epoch 25
            progress("epoch", epoch=epoch, epochs=40, active=0 if epoch == 25 else 5, models=13)
        progress("fold", fold=2, n_folds=2)
    folds, epochs = progress.bar.tasks
    assert folds.completed == folds.total == 2
    assert epochs.completed == epochs.total == 25
    assert epochs.fields["info"] == "13 nets, stopped early at epoch 25"
