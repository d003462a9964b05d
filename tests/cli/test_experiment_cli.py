"""The experiment commands through Typer's runner (and real processes for signals)."""

import io
import json
import os
import re
import signal
import subprocess
import sys
import time
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from lstm_madness.cli import app
from lstm_madness.data.db import make_engine
from lstm_madness.store.predictions import load_folds, load_predictions
from lstm_madness.store.runs import get_run, list_runs

runner = CliRunner()
QUICK = [
    "--set",
    "model.units=[8]",
    "--set",
    "train.epochs=3",
    "--set",
    "data.target=SYN",
    "--set",
    "evaluation.bootstrap_reps=50",
]


@pytest.fixture
def _write(write_returns):
    """``_write(db_url)``: 420 days of noise for symbol SYN."""

    def write(db_url: str, n: int = 420, seed: int = 0) -> None:
        engine = make_engine(db_url)
        returns = np.random.default_rng(seed).normal(0, 0.01, n)
        write_returns(engine, "SYN", returns, "2002-01-01")
        engine.dispose()

    return write


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "exp.toml"
    path.write_text(
        'name = "cli"\n[split]\nscheme = "walk_forward"\ninitial_train_days = 250\n'
        "retrain_every_days = 80\n"
    )
    return path


def test_run_json_then_runs_list_show_report_compare_delete(db_url, config, tmp_path, _write):
    _write(db_url)
    result = runner.invoke(app, ["run", str(config), "--db", db_url, "--json", *QUICK])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)  # exactly one JSON object on stdout
    assert summary["status"] == "succeeded" and summary["n_test"] > 0
    assert set(summary["models"]) == {
        "lstm",
        "baseline:zero",
        "baseline:mean",
        "baseline:persistence",
        "baseline:ridge",
    }
    for key in ("mse", "mae", "r2_oos", "hit_rate", "n_train", "epochs_run", "train_s"):
        assert key in summary["models"]["lstm"], key
    assert set(summary["timings"]) >= {"total_s", "train_s", "predict_s"}
    assert set(summary["backtest"]) >= {
        "sharpe_net",
        "sharpe_gross",
        "buy_hold_sharpe",
        "max_drawdown",
        "turnover",
        "cost_bps",
    }
    assert set(summary["tests"]) >= {"dm_p_vs_zero", "pt_p", "hit_rate_p"}
    assert set(summary["significance"]) >= {"psr", "dsr", "trials", "spa_p"}
    assert summary["verdict"]["tradeable"] is False and summary["verdict"]["reasons"]
    run_id = summary["run_id"]

    listed = runner.invoke(app, ["runs", "list", "--db", db_url])
    assert listed.exit_code == 0 and "succeeded" in listed.output
    shown = runner.invoke(app, ["runs", "show", str(run_id), "--db", db_url, "--json"])
    assert json.loads(shown.stdout)["models"] == summary["models"]
    human = runner.invoke(app, ["runs", "show", str(run_id), "--db", db_url])
    assert "NOT TRADEABLE" in human.output and "baseline:zero" in human.output

    out = tmp_path / "report"
    reported = runner.invoke(app, ["report", str(run_id), "--db", db_url, "--out", str(out)])
    assert reported.exit_code == 0, reported.output
    html = (out / f"run-{run_id}" / "report.html").read_text()
    HTMLParser().feed(html)
    assert "NOT TRADEABLE" in html and html.count("data:image/png;base64,") >= 6

    second = runner.invoke(
        app, ["run", str(config), "--db", db_url, "--json", *QUICK, "--set", "train.seed=1"]
    )
    other = json.loads(second.stdout)["run_id"]
    assert json.loads(second.stdout)["significance"]["trials"] == 2  # the registry counts tries
    compared = runner.invoke(app, ["compare", str(run_id), str(other), "--db", db_url])
    assert compared.exit_code == 0 and f"{run_id} cli" in compared.output

    # the first run's summary is live: it now counts the second run, and says what it saw
    live = json.loads(
        runner.invoke(app, ["runs", "show", str(run_id), "--db", db_url, "--json"]).stdout
    )
    assert live["significance"]["trials"] == 2
    assert live["significance"]["trial_runs"] == 2  # V is over both runs' Sharpe ratios
    assert live["at_finish"] == {
        "trials": 1,
        "dsr": summary["significance"]["dsr"],
        "tradeable": summary["verdict"]["tradeable"],
    }
    assert get_run(make_engine(db_url), run_id).summary == summary  # read only

    csv = runner.invoke(app, ["runs", "predictions", str(other), "--db", db_url, "--csv"])
    assert csv.exit_code == 0, csv.output
    table = pd.read_csv(io.StringIO(csv.stdout))
    assert list(table.columns) == [
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
    net = table.loc[table["model"] == "lstm", "net_return"].to_numpy()
    shown = json.loads(
        runner.invoke(app, ["runs", "show", str(other), "--db", db_url, "--json"]).stdout
    )
    assert shown["backtest"]["sharpe_net"] == pytest.approx(
        net.mean() / net.std(ddof=1) * np.sqrt(252)
    )
    plain = runner.invoke(app, ["runs", "predictions", str(other), "--db", db_url])
    assert plain.exit_code == 0  # not a terminal: every row and column, as aligned text
    header, *lines = plain.stdout.splitlines()
    assert header.split() == list(table.columns) and len(lines) == len(table)

    deleted = runner.invoke(app, ["runs", "delete", str(run_id), "--db", db_url])
    assert deleted.exit_code == 0 and "tombstone" in deleted.output
    gone = runner.invoke(app, ["runs", "show", str(run_id), "--db", db_url])
    assert gone.exit_code == 1 and f"run {run_id} is deleted" in gone.output
    still = json.loads(
        runner.invoke(app, ["runs", "show", str(other), "--db", db_url, "--json"]).stdout
    )
    assert still["significance"]["trials"] == 2  # deleting a try does not lower N
    assert still["significance"]["dsr"] == shown["significance"]["dsr"]


_PROBE = """
import json, sys
from typer.testing import CliRunner
from lstm_madness.cli import app
at_start = [m for m in ("sqlalchemy", "pandas", "numpy") if m in sys.modules]
out = CliRunner().invoke(app, sys.argv[1:])
text = CliRunner().invoke(app, [a for a in sys.argv[1:] if a != "--json"]).output
stack = ("torch", "arch", "scipy", "matplotlib", "pandas", "numpy", "pyarrow")
heavy = [m for m in stack if m in sys.modules]
summary = json.loads(out.stdout)
print(json.dumps({"summary": summary, "text": text, "at_start": at_start, "heavy": heavy}))
"""


def test_runs_show_reads_a_cached_summary_without_the_numerical_stack(sqlite_url, config, _write):
    _write(sqlite_url)
    ran = runner.invoke(app, ["run", str(config), "--db", sqlite_url, "--json", *QUICK])
    run_id = json.loads(ran.stdout)["run_id"]
    show = ["runs", "show", str(run_id), "--db", sqlite_url, "--json"]
    fresh = json.loads(runner.invoke(app, show).stdout)
    fresh_text = runner.invoke(app, show[:-1]).output
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    probe = subprocess.run(
        [sys.executable, "-c", _PROBE, *show], capture_output=True, text=True, env=env, check=True
    )
    cached = json.loads(probe.stdout)
    assert cached["summary"] == fresh and cached["text"] == fresh_text
    assert cached["at_start"] == []  # building the CLI (as for --help) needs no store
    assert cached["heavy"] == []  # nor does a cached look (JSON or text): no numerical stack
    # a new trial changes the key: the next look evaluates again and counts it
    runner.invoke(app, ["run", str(config), "--db", sqlite_url, *QUICK, "--set", "train.seed=1"])
    assert json.loads(runner.invoke(app, show).stdout)["significance"]["trials"] == 2


def test_config_errors_are_one_line_messages(sqlite_url, config):
    result = runner.invoke(app, ["run", str(config), "--db", sqlite_url, "--set", "model.unit=3"])
    assert result.exit_code == 1
    assert "unknown key 'model.unit'" in result.output
    assert "Traceback" not in result.output


def test_config_error_keeps_its_section_name(sqlite_url, config):
    """Messages are printed literally: Rich must not eat ``[evaluation]`` as markup."""
    result = runner.invoke(
        app, ["run", str(config), "--db", sqlite_url, "--set", "evaluation.trails=3"]
    )
    assert result.exit_code == 1
    assert "valid keys in [evaluation]:" in result.output
    assert "unknown key 'evaluation.trails'" in result.output


def test_a_refused_run_leaves_no_run_and_runs_list_never_shows_nan(
    db_url, config, tmp_path, _write, monkeypatch
):
    """``madness run`` with an unknown target fails before registering a run; a run that
    fails in training is kept as failed; ``runs list`` shows a missing name, test period
    or error as an empty cell, never ``nan``."""
    from lstm_madness.experiment import runner as run_module

    _write(db_url)
    ok = runner.invoke(app, ["run", str(config), "--db", db_url, "--quiet", *QUICK])
    assert ok.exit_code == 0, ok.output
    refused = runner.invoke(
        app, ["run", str(config), "--db", db_url, "--quiet", *QUICK, "--set", "data.target=XLFF"]
    )
    assert refused.exit_code == 1 and "XLFF" in refused.output
    assert "Traceback" not in refused.output
    engine = make_engine(db_url)
    try:
        assert list(list_runs(engine)["status"]) == ["succeeded"]

        def broken(*args, **kwargs):
            raise RuntimeError("the network diverged")

        monkeypatch.setattr(run_module, "fit_and_predict", broken)
        unnamed = tmp_path / "unnamed.toml"
        unnamed.write_text(config.read_text().replace('name = "cli"\n', ""))
        failed = runner.invoke(app, ["run", str(unnamed), "--db", db_url, "--quiet", *QUICK])
        assert failed.exit_code == 1
        assert list(list_runs(engine)["status"]) == ["failed", "succeeded"]
    finally:
        engine.dispose()
    wide = {"COLUMNS": "200", "NO_COLOR": "1", "TERM": "dumb"}
    listed = runner.invoke(app, ["runs", "list", "--db", db_url], env=wide)
    assert listed.exit_code == 0, listed.output
    assert "nan" not in listed.output.lower()
    rows = {line.split()[0]: line for line in listed.output.splitlines() if line.strip()}
    assert "diverged" in rows["2"] and "cli" not in rows["2"]  # no name: an empty cell
    assert rows["1"].split()[-1].isdigit()  # the seed: the succeeded run's error is empty


def _sweep(db_url: str, config: Path, *extra: str) -> dict:
    result = runner.invoke(
        app, ["sweep", str(config), "--db", db_url, "--json", "--quiet", *extra, *QUICK]
    )
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_sweep_grid_seeds_and_show(sqlite_url, config, _write):
    _write(sqlite_url)
    sweep = _sweep(sqlite_url, config, "--grid", "model.time_steps=[3,5]", "--seeds", "2")
    assert sweep["n_runs"] == 4 and len(sweep["runs"]) == 4
    assert sweep["best"]["run_id"] in sweep["runs"]
    timings = sweep["timings"]
    assert set(timings) == {"total_s", "train_s", "predict_s", "store_s", "evaluate_s"} | {
        "scope",
        "total_scope",
        "batch_runs",
    }
    # the stages are summed over the runs, the total is the command's wall time
    assert (timings["scope"], timings["total_scope"], timings["batch_runs"]) == (
        "runs",
        "command",
        4,
    )
    assert 0 < timings["train_s"] + timings["store_s"] + timings["evaluate_s"] <= timings["total_s"]
    engine = make_engine(sqlite_url)
    runs = list_runs(engine, sweep_id=sweep["sweep_id"])
    assert set(runs["status"]) == {"succeeded"} and len(runs) == 4
    trials = [get_run(engine, int(i)).summary["significance"]["trials"] for i in sweep["runs"]]
    assert min(trials) == 4  # every run of the sweep counts every other one
    shown = runner.invoke(app, ["sweep", "show", str(sweep["sweep_id"]), "--db", sqlite_url])
    assert shown.exit_code == 0, shown.output
    assert "after counting 4 trials" in shown.output
    assert "net Sharpe across seeds" in shown.output
    # sweep show, runs show and compare judge against the same ledger: identical numbers
    as_json = runner.invoke(
        app, ["sweep", "show", str(sweep["sweep_id"]), "--db", sqlite_url, "--json"]
    )
    best = json.loads(as_json.stdout)["best"]
    alone = runner.invoke(app, ["runs", "show", str(best["run_id"]), "--db", sqlite_url, "--json"])
    assert json.loads(alone.stdout) == best
    assert json.loads(as_json.stdout)["pbo"]["n_strategies"] == 4


@pytest.mark.slow
def test_sweep_on_ray_matches_local(sqlite_url, config, _write):
    _write(sqlite_url)
    grid = ["--grid", "model.units=[[4],[8]]"]
    local = _sweep(sqlite_url, config, *grid)
    remote = _sweep(sqlite_url, config, *grid, "--engine", "ray", "--max-parallel", "2")
    assert remote["n_runs"] == 2
    engine = make_engine(sqlite_url)
    for a, b in zip(local["runs"], remote["runs"], strict=True):
        pa = load_predictions(engine, a, models=["lstm"])["y_pred"].to_numpy()
        pb = load_predictions(engine, b, models=["lstm"])["y_pred"].to_numpy()
        np.testing.assert_allclose(pa, pb, rtol=1e-5, atol=1e-7)


@pytest.mark.slow
def test_run_on_ray_stores_the_predictions_of_a_local_run(sqlite_url, config, _write):
    """``madness run --engine ray`` (a local Ray started and shut down by the command):
    each fold group a task, the same stored predictions, bit for bit."""
    _write(sqlite_url)
    args = ["run", str(config), "--db", sqlite_url, "--json", "--quiet", *QUICK]
    args += ["--set", "train.batch_folds=false"]  # a task per fold
    local = runner.invoke(app, args)
    remote = runner.invoke(app, [*args, "--engine", "ray"])
    assert local.exit_code == 0 and remote.exit_code == 0, remote.output
    a, b = (json.loads(r.stdout)["run_id"] for r in (local, remote))
    engine = make_engine(sqlite_url)
    assert len(load_folds(engine, b)) > 1
    pa, pb = load_predictions(engine, a), load_predictions(engine, b)
    assert len(pa) > 0
    pd.testing.assert_frame_equal(pa, pb, check_exact=True)


def test_run_refuses_an_unknown_engine_before_registering(sqlite_url, config, _write):
    _write(sqlite_url)
    result = runner.invoke(app, ["run", str(config), "--db", sqlite_url, "--engine", "spark"])
    assert result.exit_code == 1 and "--engine must be one of local, ray" in result.output
    assert list_runs(make_engine(sqlite_url)).empty


def test_optuna_search_counts_every_trial(sqlite_url, config, _write):
    _write(sqlite_url)
    sweep = _sweep(
        sqlite_url,
        config,
        "--grid",
        "model.units=[[4],[8],[12]]",
        "--search",
        "optuna",
        "--trials",
        "3",
    )
    assert sweep["n_runs"] == 3
    engine = make_engine(sqlite_url)
    runs = [get_run(engine, i) for i in sweep["runs"]]
    assert all(r.status == "succeeded" and r.sweep_id == sweep["sweep_id"] for r in runs)
    assert all(r.name == "cli" for r in runs)  # each run keeps its base config's name
    assert {tuple(r.config["model"]["units"]) for r in runs} <= {(4,), (8,), (12,)}
    # trials are asked one at a time: the last run counts the two before it, a point
    # Optuna asked for twice (the same config and seed: the same forecast) once
    sig = runs[-1].summary["significance"]
    distinct = len({tuple(r.config["model"]["units"]) for r in runs})
    assert sig["trials"] == distinct and sig["trials"] + sig["duplicates"] == 3
    # the objective is the validation loss, a training-window number, stored per run
    # when its training ends (Optuna is told it without waiting for evaluation)
    for r in runs:
        assert r.objective == pytest.approx(r.summary["timings"]["models"]["lstm"]["val_loss"])
        assert r.objective > 0


def _spawn_run(db_url: str, config: Path, epochs: int = 400, *extra: str) -> subprocess.Popen:
    cmd = [
        sys.executable,
        "-c",
        "from lstm_madness.cli import main; main()",
        "run",
        str(config),
        "--db",
        db_url,
        "--quiet",
        *QUICK,
        "--set",
        f"train.epochs={epochs}",
        "--set",
        "train.patience=0",
        *extra,
    ]
    return subprocess.Popen(
        cmd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )


def _wait_for_run(db_url: str, proc: subprocess.Popen) -> int:
    engine = make_engine(db_url)
    try:
        for _ in range(600):
            if proc.poll() is not None:
                raise AssertionError(proc.stderr.read().decode())
            from lstm_madness.data.store import init_db

            init_db(engine)
            runs = list_runs(engine)
            if len(runs) and len(load_folds(engine, int(runs["id"].iloc[0]))):
                return int(runs["id"].iloc[0])
            time.sleep(0.1)
    finally:
        engine.dispose()
    raise AssertionError("the run never started")


@pytest.mark.slow
def test_sigterm_marks_the_run_failed(sqlite_url, config, _write):
    _write(sqlite_url)
    proc = _spawn_run(sqlite_url, config)
    run_id = _wait_for_run(sqlite_url, proc)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=60) == 1
    assert b"interrupted by SIGTERM" in proc.stderr.read()
    run = get_run(make_engine(sqlite_url), run_id)
    assert run.status == "failed" and run.error == "RunInterrupted: interrupted by SIGTERM"


@pytest.mark.slow
def test_sigterm_fails_a_run_on_ray_and_stops_its_tasks(sqlite_url, config, _write):
    """SIGTERM while the fold groups train as Ray tasks: the tasks are cancelled, the
    local Ray is shut down, and the run is failed with the signal's name."""
    _write(sqlite_url)
    proc = _spawn_run(sqlite_url, config, 400, "--engine", "ray")
    run_id = _wait_for_run(sqlite_url, proc)  # its folds are recorded once Ray is up
    time.sleep(1.0)  # the tasks are training
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=60) == 1
    assert b"interrupted by SIGTERM" in proc.stderr.read()
    run = get_run(make_engine(sqlite_url), run_id)
    assert run.status == "failed" and run.error == "RunInterrupted: interrupted by SIGTERM"


@pytest.mark.slow
def test_sigkill_is_detected_as_stale_on_the_next_command(sqlite_url, config, _write):
    _write(sqlite_url)
    proc = _spawn_run(sqlite_url, config)
    run_id = _wait_for_run(sqlite_url, proc)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=60)
    assert get_run(make_engine(sqlite_url), run_id).status == "running"
    listed = runner.invoke(app, ["runs", "list", "--db", sqlite_url])
    assert listed.exit_code == 0 and "stale" in listed.output
    run = get_run(make_engine(sqlite_url), run_id)
    assert run.status == "failed" and run.error.startswith("stale:")
    shown = runner.invoke(app, ["runs", "show", str(run_id), "--db", sqlite_url])
    assert shown.exit_code == 1 and "stale" in shown.output


def test_demo_end_to_end_small(sqlite_url, tmp_path):
    result = runner.invoke(
        app,
        [
            "demo",
            "--db",
            sqlite_url,
            "--out",
            str(tmp_path / "r"),
            "--seeds",
            "2",
            "--set",
            "train.epochs=2",
            "--set",
            "data.start=2010-01-04",
            "--set",
            "split.initial_train_days=500",
            "--set",
            "evaluation.bootstrap_reps=50",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "verdict: " in result.output
    assert result.output.count("created a new store at ") == 1  # it says where
    # one scheme of report paths: the demo's is the one madness report writes, DIR/run-N/
    written = re.search(r"^report: (\S+) \(every seed, then run (\d+)\)$", result.output, re.M)
    path, shown = Path(written.group(1)), int(written.group(2))
    assert path == tmp_path / "r" / f"run-{shown}" / "report.html" and path.is_file()
    again = runner.invoke(
        app, ["report", str(shown), "--db", sqlite_url, "--out", str(tmp_path / "r")]
    )
    assert again.exit_code == 0 and again.output.startswith(f"report: {path} (")
    for command in ("demo", "report"):
        shown_help = runner.invoke(app, [command, "--help"], env={"COLUMNS": "200"})
        assert "DIR/run-N/report.html" in shown_help.output
