"""What a new user meets with sweeps (issue 21): ``sweep run|show|list`` beside the old
forms, configurations named by what they vary, runs named by their config, progress from
the first second."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from lstm_madness.cli import app
from lstm_madness.data.db import make_engine
from lstm_madness.data.initdb import init_db
from lstm_madness.store.runs import get_run

runner = CliRunner()
WIDE = {"COLUMNS": "200", "NO_COLOR": "1", "TERM": "dumb"}
QUICK = [
    "--set",
    "model.units=[4]",
    "--set",
    "train.epochs=2",
    "--set",
    "data.target=SYN",
    "--set",
    "evaluation.bootstrap_reps=50",
]


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "exp.toml"
    path.write_text(
        'name = "tiny"\n[split]\nscheme = "walk_forward"\ninitial_train_days = 250\n'
        "retrain_every_days = 80\n"
    )
    return path


@pytest.fixture
def stored(db_url: str, write_returns) -> str:
    """420 days of noise for SYN, on SQLite and PostgreSQL."""
    engine = make_engine(db_url)
    write_returns(engine, "SYN", np.random.default_rng(0).normal(0, 0.01, 420), "2002-01-01")
    engine.dispose()
    return db_url


@pytest.fixture
def swept(stored: str, config: Path) -> tuple[str, dict]:
    """A sweep of 2 configurations × 2 seeds, started with the old form."""
    args = ["sweep", str(config), "--db", stored, "--grid", "model.time_steps=[3,5]"]
    result = runner.invoke(app, [*args, "--seeds", "2", *QUICK, "--json", "--quiet"])
    assert result.exit_code == 0, result.output
    return stored, json.loads(result.stdout)


def test_sweep_list_then_show_names_configurations_by_what_they_vary(swept):
    db, sweep = swept
    listed = runner.invoke(app, ["sweep", "list", "--db", db], env=WIDE)
    assert listed.exit_code == 0, listed.output
    header, *rows = [line for line in listed.output.splitlines() if line.strip()]
    assert header.split() == [
        "id", "name", "status", "configs", "seeds", "runs", "done", "failed", "created", "(UTC)"
    ]  # fmt: skip
    cells = rows[1].split()  # rows[0]: the rule under the header
    assert cells[:8] == [str(sweep["sweep_id"]), "tiny", "succeeded", "2", "2", "4", "4", "0"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\d", cells[8])
    as_json = json.loads(runner.invoke(app, ["sweep", "list", "--db", db, "--json"]).stdout)
    assert as_json[0]["configs"] == 2 and as_json[0]["status"] == "succeeded"

    # runs keep their base config's name; the point is named where it is shown
    engine = make_engine(db)
    assert {get_run(engine, i).name for i in sweep["runs"]} == {"tiny"}
    assert sweep["best"]["point"] in ("time_steps=3", "time_steps=5")
    shown = runner.invoke(app, ["sweep", "show", str(sweep["sweep_id"]), "--db", db], env=WIDE)
    assert shown.exit_code == 0, shown.output
    text = shown.output
    assert "  time_steps=3: n=2 " in text and "  time_steps=5: n=2 " in text
    assert not re.search(r"config [0-9a-f]{8}", text)  # no hash stands for a configuration
    table = [line for line in text.splitlines() if re.match(r"\s*\d+\s+time_steps=", line)]
    assert len(table) == 4 and all(re.match(r"\s*\d+\s+time_steps=\d\s+[01]\s", r) for r in table)
    # the old form of show prints the same
    old = runner.invoke(app, ["sweep", str(sweep["sweep_id"]), "--db", db], env=WIDE)
    assert old.exit_code == 0 and old.output == text


def test_old_and_new_forms_route_to_the_same_commands(tmp_path, config):
    empty = f"sqlite:///{tmp_path / 'empty.db'}"
    init_db(make_engine(empty))
    for words in (["sweep", "7"], ["sweep", "--db", empty, "7"], ["sweep", "show", "7"]):
        result = runner.invoke(app, [*words, "--db", empty] if "--db" not in words else words)
        assert result.exit_code == 1 and "no sweep with id 7" in result.output, words
    # a config path is a run: refused here before anything is registered (no data)
    for words in (["sweep", str(config)], ["sweep", "run", str(config)]):
        result = runner.invoke(app, [*words, "--db", empty, "--seeds", "2", "--quiet"])
        assert result.exit_code == 1 and "unknown symbol" in result.output, words
    typo = runner.invoke(app, ["sweep", "lst"])
    assert typo.exit_code == 2 and "No such command 'lst'" in typo.output


def test_each_sweep_subcommand_lists_only_its_own_options():
    show = runner.invoke(app, ["sweep", "show", "--help"], env=WIDE)
    assert show.exit_code == 0
    for option in ("--db", "--json"):
        assert option in show.output
    for option in ("--grid", "--seeds", "--engine", "--trials", "--max-parallel", "--quiet"):
        assert option not in show.output, option
    run = runner.invoke(app, ["sweep", "run", "--help"], env=WIDE)
    # every sentinel default says what it means
    assert "0: every CPU of this machine" in run.output and "0: not set" in run.output
    group = runner.invoke(app, ["sweep", "--help"], env=WIDE)
    assert all(f"│ {name} " in group.output for name in ("run", "show", "list"))


def test_sweep_shows_what_it_plans_before_anything_trains(stored, config, monkeypatch):
    """The sweep's line is on screen before the sweep is even checked: the runs planned;
    then the group training now, from the library's first call (before any training)."""
    from lstm_madness import sweep as sweeping

    seen: dict[str, object] = {}

    def fake_run_sweep(db_url, base, space, *, progress, run_progress, **options):
        bar = run_progress.bar
        (task,) = bar.tasks
        seen["first"] = (task.description, task.total, task.fields["info"])
        progress(0, 2)  # what run_sweep reports once it has planned
        run_progress("fold", fold=0, n_folds=3)
        run_progress("epoch", epoch=1, epochs=2, active=2, models=2)
        seen["training"] = [(t.description, t.fields["info"]) for t in bar.tasks]
        raise RuntimeError("stop here")

    monkeypatch.setattr(sweeping, "run_sweep", fake_run_sweep)
    args = ["sweep", "run", str(config), "--db", stored, "--grid", "model.time_steps=[3,5]"]
    stopped = runner.invoke(app, [*args, "--seeds", "2", *QUICK])
    assert isinstance(stopped.exception, RuntimeError)
    assert seen["first"] == (
        "sweep",
        None,
        "2 configs × 2 seeds = 4 runs planned; starting (imports, config checks)",
    )
    assert seen["training"][0] == ("sweep", "training group 1 of 2")
    assert [d for d, _ in seen["training"]] == ["sweep", "folds", "epochs"]


def test_run_sweep_reports_its_plan_before_the_first_fold(stored, config):
    from lstm_madness.experiment.config import load_config
    from lstm_madness.sweep import SweepSpace, run_sweep

    events: list[tuple] = []
    base = load_config(config, QUICK[1::2])
    space = SweepSpace.parse(["model.time_steps=[3,5]"], 1)
    run_sweep(
        stored,
        base,
        space,
        progress=lambda done, total: events.append(("steps", done, total)),
        run_progress=lambda event, **info: events.append((event,)),
    )
    assert events[0] == ("steps", 0, 2)  # two data groups (time_steps differ)
    assert ("fold",) in events and events.index(("fold",)) > 0
    assert events.index(("steps", 1, 2)) < len(events) - events[::-1].index(("fold",)) - 1
    assert ("steps", 2, 2) in events
