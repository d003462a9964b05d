"""``madness judge`` on both backends: forecast files become imported runs that every reading
command (runs list/show/predictions, report, compare) treats as trained runs."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from lstm_madness.cli import app
from lstm_madness.data.db import make_engine
from lstm_madness.data.store import read_returns

runner = CliRunner()
ENV = {"COLUMNS": "100", "NO_COLOR": "", "FORCE_COLOR": "", "TERM": "dumb"}
FAST = ["--set", "evaluation.bootstrap_reps=200"]
ZERO_COST = [*FAST, "--set", "backtest.cost_bps=0"]


@pytest.fixture
def days(db_url, write_returns) -> pd.DataFrame:
    """The last 600 decision dates of a synthetic target SYN (with ``ret``, ``next_ret``)."""
    engine = make_engine(db_url)
    write_returns(engine, "SYN", np.random.default_rng(0).normal(0.0003, 0.012, 1200))
    history = read_returns(engine, "SYN")
    engine.dispose()
    return history.iloc[-601:-1].reset_index(drop=True)


def _write(path: Path, frame: pd.DataFrame) -> Path:
    frame = frame.copy()
    frame["date"] = pd.to_datetime(frame["date"]).dt.strftime("%Y-%m-%d")
    frame.to_csv(path, index=False, lineterminator="\n", float_format="%.17g")
    return path


def _judge(db_url: str, *args: str):
    return runner.invoke(app, ["judge", *args, "--db", db_url], env=ENV)


def _count(db_url: str, table: str) -> int:
    engine = make_engine(db_url)
    with engine.connect() as conn:
        n = conn.exec_driver_sql(f"SELECT COUNT(*) FROM {table}").scalar_one()
    engine.dispose()
    return int(n)


def test_signal_and_noise_through_the_cli(db_url, days, tmp_path) -> None:
    rng = np.random.default_rng(1)
    signal = 0.04 * (days["next_ret"] + rng.normal(0, 0.05, len(days)))
    path = _write(
        tmp_path / "signal.csv", pd.DataFrame({"date": days["date"], "prediction": signal})
    )
    out = _judge(db_url, str(path), "--target", "SYN", "--name", "planted", "--json", *ZERO_COST)
    assert out.exit_code == 0, out.output
    summary = json.loads(out.output)
    assert summary["verdict"]["tradeable"], summary["verdict"]
    assert (summary["name"], summary["primary_model"], summary["kind"]) == (
        "planted",
        "forecast",
        "imported",
    )
    # the same object as runs show --json (and madness run --json) of that run
    shown = runner.invoke(app, ["runs", "show", str(summary["run_id"]), "--json", "--db", db_url])
    assert json.loads(shown.output) == summary

    noise = _write(
        tmp_path / "noise.csv",
        pd.DataFrame({"date": days["date"], "prediction": rng.normal(0, 0.01, len(days))}),
    )
    out = _judge(db_url, str(noise), "--target", "SYN", *ZERO_COST)
    assert out.exit_code == 0, out.output
    text = " ".join(out.output.split())
    assert "verdict: NOT TRADEABLE" in text and "imported: model forecast of" in text
    assert "next_day alignment" in text and "trials 2" in text


def test_several_models_print_runs_and_every_reading_command_takes_them(
    db_url, days, tmp_path
) -> None:
    rng = np.random.default_rng(2)
    wide = pd.DataFrame(
        {
            "date": days["date"],
            "leaky": days["next_ret"],  # the classic off-by-one-day leak
            "noise": rng.normal(0, 0.01, len(days)),
        }
    )
    path = _write(tmp_path / "wide.csv", wide)
    out = _judge(db_url, str(path), "--target", "SYN", "--json", *FAST)
    assert out.exit_code == 0, out.output
    runs = json.loads(out.output)["runs"]
    assert [r["primary_model"] for r in runs] == ["leaky", "noise"]
    assert [r["name"] for r in runs] == ["wide.csv:leaky", "wide.csv:noise"]
    assert [r["significance"]["trials"] for r in runs] == [2, 2]
    leaky, noise = (r["run_id"] for r in runs)
    assert any(w.startswith("too good to be true: leaky") for w in runs[0]["verdict"]["warnings"])
    assert not any("too good" in w for w in runs[1]["verdict"]["warnings"])

    listed = runner.invoke(app, ["runs", "list", "--db", db_url], env=ENV)
    assert listed.exit_code == 0 and "wide.csv:leaky" in listed.output
    shown = runner.invoke(app, ["runs", "show", str(leaky), "--db", db_url], env=ENV)
    assert shown.exit_code == 0, shown.output
    assert "warning: too good to be true" in shown.output
    table = runner.invoke(app, ["runs", "predictions", str(noise), "--csv", "--db", db_url])
    assert table.exit_code == 0, table.output
    rows = pd.read_csv(pd.io.common.StringIO(table.output))
    assert set(rows["model"]) == {"noise", "baseline:zero", "baseline:mean", "baseline:persistence"}
    assert len(rows) == 4 * len(days)
    compared = runner.invoke(app, ["compare", str(leaky), str(noise), "--db", db_url], env=ENV)
    assert compared.exit_code == 0, compared.output
    assert "not comparable" not in compared.output  # same target, period and costs
    report = runner.invoke(
        app, ["report", str(leaky), "--db", db_url, "--out", str(tmp_path / "r")], env=ENV
    )
    assert report.exit_code == 0, report.output
    html = (tmp_path / "r" / f"run-{leaky}" / "report.html").read_text()
    assert "alignment next_day" in html and "wide.csv" in html
    assert html.index("too good to be true") < html.index("Verdict:")


def test_a_rejected_file_stores_nothing_and_rejudging_neither(db_url, days, tmp_path) -> None:
    frame = pd.DataFrame({"date": days["date"], "prediction": 0.001})
    good = _write(tmp_path / "good.csv", frame)
    bad = tmp_path / "bad.csv"
    lines = good.read_text().splitlines()
    lines[3] = lines[3].split(",")[0] + ",nan"
    bad.write_text("\n".join(lines) + "\n")
    out = _judge(db_url, str(bad), "--target", "SYN")
    assert out.exit_code == 1
    text = " ".join(out.output.split())
    assert "line 4" in text and "prediction is NaN" in text and "nothing was stored" in text
    for table in ("runs", "folds", "predictions", "metrics"):
        assert _count(db_url, table) == 0, table
    first = _judge(db_url, str(good), "--target", "SYN", "--json", *FAST)
    assert first.exit_code == 0, first.output
    run_id = json.loads(first.output)["run_id"]
    counts = {t: _count(db_url, t) for t in ("runs", "predictions")}
    again = _judge(db_url, str(good), "--target", "SYN", *FAST)
    assert again.exit_code == 1
    assert f"run {run_id}" in again.output and "already judged" in again.output
    assert {t: _count(db_url, t) for t in ("runs", "predictions")} == counts
    forced = _judge(db_url, str(good), "--target", "SYN", "--force", "--json", *FAST)
    assert forced.exit_code == 0, forced.output
    assert _count(db_url, "runs") == 2
    engine = make_engine(db_url)
    with engine.connect() as conn:
        kinds = conn.execute(sa.text("SELECT DISTINCT kind FROM runs")).scalars().all()
    engine.dispose()
    assert kinds == ["imported"]


def test_planted_losing_and_repeated_forecasts_read_alike_everywhere(
    db_url, days, tmp_path
) -> None:
    """One trial set: a planted forecast, a losing one, and the planted one again (the same
    rows re-stamped for ``--alignment same_day``). The repeat counts once; StepM selects the
    planted run and not the losing one, although the trial set's SPA rejects for both; and
    ``runs show``, ``report``, ``compare`` and the Python API say the same."""
    from lstm_madness import judge, load_run

    rng = np.random.default_rng(4)
    signal = 0.04 * (days["next_ret"] + rng.normal(0, 0.04, len(days)))
    planted = _write(tmp_path / "p.csv", pd.DataFrame({"date": days["date"], "prediction": signal}))
    losing = _write(tmp_path / "l.csv", pd.DataFrame({"date": days["date"], "prediction": -signal}))
    # dated with the day of the return each prediction is for: the next stored date
    engine = make_engine(db_url)
    stored = list(read_returns(engine, "SYN")["date"])
    engine.dispose()
    after = stored[stored.index(days["date"].iloc[0]) + 1 :][: len(days)]
    restamped = pd.DataFrame({"date": after, "prediction": signal})
    restamped_path = _write(tmp_path / "r.csv", restamped)
    ids = []
    for path, extra in ((planted, []), (losing, []), (restamped_path, ["--alignment", "same_day"])):
        out = _judge(db_url, str(path), "--target", "SYN", "--json", *extra, *ZERO_COST)
        assert out.exit_code == 0, out.output
        ids.append(json.loads(out.output)["run_id"])
    p_id, l_id, r_id = ids

    shown = {}
    for i in ids:
        out = runner.invoke(app, ["runs", "show", str(i), "--json", "--db", db_url], env=ENV)
        assert out.exit_code == 0, out.output
        shown[i] = json.loads(out.output)
    assert shown[r_id]["n_test"] == shown[p_id]["n_test"] == len(days)
    for i in ids:
        sig = shown[i]["significance"]
        assert sig["spa_p"] < 0.05  # the trial set: some strategy beats buy-and-hold
    p_sig, l_sig = shown[p_id]["significance"], shown[l_id]["significance"]
    assert [shown[i]["significance"]["trials"] for i in ids] == [2, 2, 2]
    assert [shown[i]["significance"]["duplicates"] for i in ids] == [1, 1, 1]
    assert (p_sig["stepm_selected"], l_sig["stepm_selected"]) == (True, False)
    assert p_sig["stepm_superior"] == l_sig["stepm_superior"] >= 1
    assert not shown[l_id]["verdict"]["tradeable"]
    assert any(
        r.startswith("StepM does not select this run") for r in shown[l_id]["verdict"]["reasons"]
    )
    assert not any("SPA" in m for m in shown[l_id]["verdict"]["passed"])

    engine = make_engine(db_url)
    try:
        # the API reads what the CLI shows, and knows the same forecast by the same name
        for i in ids:
            api = load_run(i, db=engine).to_json()
            assert api["significance"] == shown[i]["significance"]
            assert api["verdict"] == shown[i]["verdict"]
        again = judge(
            pd.Series(signal.to_numpy(), index=pd.DatetimeIndex(days["date"]), name="prediction"),
            target="SYN",
            db=engine,
            overrides={"backtest.cost_bps": 0.0, "evaluation.bootstrap_reps": 200},
        )
        assert again.to_json()["primary_model"] == shown[p_id]["primary_model"] == "forecast"
        assert again.significance["trials"] == 2 and again.significance["duplicates"] == 2
        assert again.significance["stepm_selected"] is True  # its twin's column
    finally:
        engine.dispose()

    compared = runner.invoke(app, ["compare", str(p_id), str(l_id), "--db", db_url], env=ENV)
    assert compared.exit_code == 0, compared.output
    lines = compared.output.splitlines()
    assert any(
        line.startswith("StepM selects this run") and "yes" in line and "no" in line
        for line in lines
    )
    report = runner.invoke(
        app, ["report", str(l_id), "--db", db_url, "--out", str(tmp_path / "rep")], env=ENV
    )
    assert report.exit_code == 0, report.output
    html = (tmp_path / "rep" / f"run-{l_id}" / "report.html").read_text()
    assert "StepM does not select this run" in html
    assert "some strategy in this trial set beats buy-and-hold? SPA p" in html
    assert "identical forecasts merged in the trial set" in html
