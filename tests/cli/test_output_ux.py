"""What a new user reads (issue 21): ``runs predictions`` in a pipe and in a terminal,
one-line command summaries, help prose wrapped at the terminal's width."""

from __future__ import annotations

import json
import re
from io import StringIO
from pathlib import Path

import numpy as np
import pytest
from rich.console import Console
from typer.testing import CliRunner

from lstm_madness.cli import app
from lstm_madness.data.db import make_engine

runner = CliRunner()
NO_TERMINAL = {"COLUMNS": "80", "NO_COLOR": "", "FORCE_COLOR": "", "TERM": "dumb"}
ALL_COLUMNS = [
    "date",
    "symbol",
    "fold",
    "model",
    "y_true",
    "y_pred",
    "realized",
    "position",
    "gross_return",
    "net_return",
]


@pytest.fixture
def run_id(sqlite_url: str, tmp_path: Path, write_returns) -> int:
    engine = make_engine(sqlite_url)
    write_returns(engine, "SYN", np.random.default_rng(0).normal(0, 0.01, 420), "2002-01-01")
    engine.dispose()
    config = tmp_path / "exp.toml"
    config.write_text(
        '[split]\nscheme = "walk_forward"\ninitial_train_days = 250\nretrain_every_days = 80\n'
    )
    quick = ["--set", "model.units=[4]", "--set", "train.epochs=2", "--set", "data.target=SYN"]
    args = ["run", str(config), "--db", sqlite_url, "--json", "--quiet", *quick]
    result = runner.invoke(app, [*args, "--set", "evaluation.bootstrap_reps=50"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)["run_id"]


def test_predictions_in_a_pipe_print_every_column_and_row(sqlite_url, run_id):
    csv = runner.invoke(app, ["runs", "predictions", str(run_id), "--db", sqlite_url, "--csv"])
    n_rows = len(csv.stdout.splitlines()) - 1
    piped = runner.invoke(
        app, ["runs", "predictions", str(run_id), "--db", sqlite_url], env=NO_TERMINAL
    )
    assert piped.exit_code == 0, piped.output
    header, *rows = piped.stdout.splitlines()
    assert header.split() == ALL_COLUMNS  # nothing dropped at 80 columns
    assert len(rows) == n_rows > 10 and all(len(row.split()) == len(ALL_COLUMNS) for row in rows)
    assert "…" not in piped.stdout


def test_predictions_in_a_terminal_mark_what_is_elided(sqlite_url, run_id, monkeypatch):
    from lstm_madness.cli import experiment

    out = StringIO()
    terminal = Console(file=out, force_terminal=True, width=80, color_system=None)
    monkeypatch.setattr(experiment, "console", terminal)
    shown = runner.invoke(app, ["runs", "predictions", str(run_id), "--db", sqlite_url])
    assert shown.exit_code == 0, shown.output
    lines = out.getvalue().splitlines()
    assert max(len(line) for line in lines) <= 80
    assert "the first and last 5 shown (--csv for all)" in lines[0]
    header = lines[1].split()
    assert header[:2] == ["date", "model"] and {"position", "net_return"} <= set(header)
    ellipsis = [i for i, line in enumerate(lines) if re.fullmatch(r"…(\s+…)+", line.strip())]
    assert len(ellipsis) == 1 and lines[ellipsis[0] - 5 : ellipsis[0]] == lines[3:8]
    hidden = [c for c in ALL_COLUMNS if c not in header]
    note = " ".join(" ".join(lines[ellipsis[0] + 6 :]).split())
    assert hidden and note == (
        f"not shown at 80 columns: {', '.join(hidden)} (--csv prints every column)"
    )


SUMMARIES = {
    ("runs", "predictions"): "A run's test predictions, positions and daily net returns.",
    ("runs", "show"): "A run's metrics and verdict, judged against the registry now.",
    ("runs", "delete"): "Delete a run; a succeeded one still counts as a trial.",
    ("universe", "add"): "Store a universe's membership, replacing any stored under that name.",
    ("judge",): "Judge forecasts made elsewhere as trained runs are judged.",
}


@pytest.mark.parametrize("path", list(SUMMARIES), ids=" ".join)
def test_a_group_lists_each_command_by_one_whole_sentence(path):
    group = runner.invoke(app, [*path[:-1], "--help"], env=NO_TERMINAL)
    lines = group.output.splitlines()
    (row,) = [i for i, line in enumerate(lines) if line.startswith(f"│ {path[-1]} ")]
    assert lines[row].rstrip(" │").endswith(SUMMARIES[path]), lines[row]
    # the next line is the next command (or the panel's end), never the rest of a sentence
    assert re.match(r"(│ [a-z]+ |╰)", lines[row + 1]), lines[row : row + 2]


def test_help_prose_wraps_at_the_terminal_width():
    """A docstring's line breaks are not the help's: at 200 columns the paragraph after
    the summary is one line, at 60 it is cut into lines that fill the width."""
    wide = runner.invoke(app, ["runs", "show", "--help"], env={**NO_TERMINAL, "COLUMNS": "200"})
    paragraph = next(line for line in wide.output.splitlines() if "Shows the run's" in line)
    assert paragraph.strip().endswith("says what the run saw when it finished.")
    narrow = runner.invoke(app, ["runs", "show", "--help"], env={**NO_TERMINAL, "COLUMNS": "60"})
    lines = narrow.output.splitlines()
    start = next(i for i, line in enumerate(lines) if "Shows the run's" in line)
    prose = [line.rstrip() for line in lines[start : start + 4]]
    assert all(len(line) > 45 for line in prose[:-1]), prose  # filled, not ragged
    # square brackets in prose are text, not Rich markup that vanishes
    predictions = runner.invoke(app, ["runs", "predictions", "--help"], env=NO_TERMINAL)
    assert "--csv prints every row as CSV." in " ".join(predictions.output.split())
