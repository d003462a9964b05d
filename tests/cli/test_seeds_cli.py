"""A study of several seeds, end to end: ``madness demo --seeds N`` and a sweep's
``--seeds`` print every seed's net Sharpe, its median and range before one seed's details;
``madness report`` of a seed covers its whole family; titles name config and target."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from lstm_madness import load_run
from lstm_madness.cli import app
from lstm_madness.data.db import make_engine
from lstm_madness.report import formats as fmt

runner = CliRunner()
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
        'name = "tiny-seeds"\n[split]\nscheme = "walk_forward"\ninitial_train_days = 250\n'
        "retrain_every_days = 80\n"
    )
    return path


def _shown(db_url: str, run_id: int) -> dict:
    result = runner.invoke(app, ["runs", "show", str(run_id), "--db", db_url, "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def _seed_lines(output: str, run_ids: list[int], db_url: str) -> list[int]:
    """Where each seed's line is; checks its net Sharpe and verdict against its summary."""
    lines = output.splitlines()
    at = []
    for k, run_id in enumerate(run_ids):
        summary = _shown(db_url, run_id)
        pattern = rf"^\s+seed {k} \(run {run_id}\)\s+(\S+)\s+(.+)$"
        index, match = next(
            (i, m) for i, line in enumerate(lines) if (m := re.match(pattern, line))
        )
        assert match.group(1) == fmt.ratio(summary["backtest"]["sharpe_net"])
        assert match.group(2).strip() == summary["verdict"]["label"]
        at.append(index)
    return at


def _spread_text(db_url: str, run_ids: list[int]) -> str:
    sharpes = [_shown(db_url, i)["backtest"]["sharpe_net"] for i in run_ids]
    median = float(np.median(sharpes))
    return (
        f"median {fmt.ratio(median)}, range {fmt.ratio(min(sharpes))} to {fmt.ratio(max(sharpes))}"
    )


def _seed_table(doc: str) -> list[list[str]]:
    """Rows (cells as text) of the report's seed table, the header first."""
    start = doc.index("<tr><th>seed</th><th>run</th>")
    table = doc[start : doc.index("</table>", start)]
    return [re.findall(r"<t[hd]>(.*?)</t[hd]>", row) for row in table.split("<tr")[1:]]


def test_demo_shows_every_seed_before_the_details_of_one(sqlite_url, tmp_path):
    result = runner.invoke(
        app,
        [
            "demo",
            "--db",
            sqlite_url,
            "--out",
            str(tmp_path / "r"),
            "--seeds",
            "3",
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
    out = result.output
    lines = out.splitlines()
    seeds = _seed_lines(out, [1, 2, 3], sqlite_url)
    spread = next(i for i, line in enumerate(lines) if line.strip().startswith("median "))
    assert lines[spread].strip() == _spread_text(sqlite_url, [1, 2, 3])
    details = next(i for i, line in enumerate(lines) if line.startswith("details of seed "))
    verdict = next(i for i, line in enumerate(lines) if line.startswith("verdict: "))
    assert max(seeds) < spread < details < verdict
    shown = int(re.search(r"\(run (\d)\)", lines[details]).group(1))
    assert "madness compare 1 2 3" in lines[details]
    header = next(i for i, line in enumerate(lines) if "buy-and-hold" in line)
    bh = _shown(sqlite_url, shown)["backtest"]["buy_hold_sharpe"]
    assert header < min(seeds) and f"(buy-and-hold {fmt.ratio(bh)})" in lines[header]
    # the run shown is the median seed, and its numbers are the ones printed after
    sharpes = {i: _shown(sqlite_url, i)["backtest"]["sharpe_net"] for i in (1, 2, 3)}
    assert sharpes[shown] == sorted(sharpes.values())[1]
    assert f"net Sharpe {fmt.ratio(sharpes[shown])} vs buy-and-hold" in out
    doc = (tmp_path / "r" / f"run-{shown}" / "report.html").read_text(encoding="utf-8")
    assert f"<h1>demo-sp500-walk-forward — ^GSPC, run {shown}</h1>" in doc
    assert "seed=" not in doc.split("<h2>Run</h2>")[0]
    assert [row[1] for row in _seed_table(doc)[1:]] == ["1", "2", "3"]
    assert (tmp_path / "r" / f"run-{shown}" / "seeds_pnl.png").is_file()


def test_sweep_seeds_then_report_of_one_seed_covers_its_family(
    db_url, config, tmp_path, write_returns
):
    engine = make_engine(db_url)
    write_returns(engine, "SYN", np.random.default_rng(0).normal(0, 0.01, 420), "2002-01-01")
    engine.dispose()
    sweep = runner.invoke(app, ["sweep", str(config), "--db", db_url, "--seeds", "3", *QUICK])
    assert sweep.exit_code == 0, sweep.output
    runs = [int(i) for i in re.search(r"runs (\d+)–(\d+)", sweep.output).groups()]
    run_ids = list(range(runs[0], runs[1] + 1))
    assert len(run_ids) == 3
    seeds = _seed_lines(sweep.output, run_ids, db_url)
    lines = sweep.output.splitlines()
    best = next(i for i, line in enumerate(lines) if line.startswith("lowest validation loss"))
    assert max(seeds) < best
    assert f"  {_spread_text(db_url, run_ids)}" in lines
    # another config on the same target and test period: a trial, not a seed of the family
    other = runner.invoke(
        app,
        [
            "run",
            str(config),
            "--db",
            db_url,
            "--quiet",
            "--json",
            *QUICK,
            "--set",
            "model.time_steps=3",
        ],
    )
    assert other.exit_code == 0, other.output
    other_id = json.loads(other.stdout)["run_id"]
    # the report of the first seed (not the median one) covers every seed
    out = tmp_path / "out"
    report = runner.invoke(app, ["report", str(run_ids[0]), "--db", db_url, "--out", str(out)])
    assert report.exit_code == 0, report.output
    doc = (out / f"run-{run_ids[0]}" / "report.html").read_text(encoding="utf-8")
    assert f"<h1>tiny-seeds — SYN, run {run_ids[0]}</h1>" in doc
    assert "seed=" not in doc.split("<h2>Run</h2>")[0]
    header, *rows = _seed_table(doc)
    assert header == [
        "seed",
        "run",
        "net Sharpe",
        "gross Sharpe",
        "net total return",
        "hit rate (forecast)",
        "DSR",
        "verdict",
    ]
    assert [int(row[1]) for row in rows] == run_ids  # not the other config's run
    for row, run_id in zip(rows, run_ids, strict=True):
        summary = _shown(db_url, run_id)  # the same ledger, the same numbers
        assert row[2] == fmt.ratio(summary["backtest"]["sharpe_net"])
        assert row[3] == fmt.ratio(summary["backtest"]["sharpe_gross"])
        assert row[4] == fmt.percent(summary["backtest"]["total_return_net"])
        assert row[5] == fmt.percent(summary["tests"]["hit_rate"])
        assert row[6] == fmt.probability(summary["significance"]["dsr"])
        assert row[7] == summary["verdict"]["label"]
    assert (out / f"run-{run_ids[0]}" / "seeds_pnl.png").is_file()
    assert "alt='Cumulative net P&amp;L of every seed'" in doc
    # the Python API's report is the same page
    api_doc = load_run(run_ids[1], db=db_url).report(tmp_path / "api").read_text(encoding="utf-8")
    assert _seed_table(api_doc) == [header, *rows]
    # a run without other seeds: no seed section
    alone = runner.invoke(app, ["report", str(other_id), "--db", db_url, "--out", str(out)])
    assert alone.exit_code == 0, alone.output
    doc = (out / f"run-{other_id}" / "report.html").read_text(encoding="utf-8")
    assert "seeds of this configuration" not in doc
    assert not (out / f"run-{other_id}" / "seeds_pnl.png").exists()
