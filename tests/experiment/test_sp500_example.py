"""Integration: the S&P 500 example (examples/sp500) on a slice of the real data.

The example's protocol as shipped (240-day windows, LSTM(25), RMSprop, rolling 750/250-day
study periods, top and bottom 10), cut to one short period and 40 members so that it runs
in seconds; the full study is ``madness run examples/sp500/fischer_krauss.toml``.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from lstm_madness.cli import app
from lstm_madness.experiment.config import load_config
from lstm_madness.experiment.runner import lstm_estimator

pytestmark = [pytest.mark.shared_data, pytest.mark.slow]
EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "sp500" / "fischer_krauss.toml"
MEMBERS = 40
SHORT = ["data.start=2017-06-01", "train.epochs=2", "evaluation.bootstrap_reps=100"]


def _load(url: str, sp500: Path) -> None:
    files = sorted((sp500 / "prices").glob("*.csv"))[:MEMBERS]
    runner = CliRunner()
    result = runner.invoke(app, ["ingest", *map(str, files), "--db", url])
    assert result.exit_code == 0, result.output
    _membership(url, sp500 / "membership.csv")


def _membership(url: str, *files: Path) -> None:
    result = CliRunner().invoke(app, ["universe", "add", "sp500", *map(str, files), "--db", url])
    assert result.exit_code == 0, result.output


def _lstm_rows(url: str, run_id: int) -> str:
    args = ["runs", "predictions", str(run_id), "--model", "lstm", "--csv", "--db", url]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    return result.stdout


def _coverage(url: str, run_id: int) -> float:
    result = CliRunner().invoke(app, ["runs", "periods", str(run_id), "--json", "--db", url])
    assert result.exit_code == 0, result.output
    (equal_weight,) = [r for r in json.loads(result.stdout)["rows"] if "equal" in r["book"]]
    return equal_weight["coverage"]


def _run(url: str, *extra: str) -> dict:
    args = ["run", str(EXAMPLE), "--db", url, "--json", "--quiet"]
    for item in (*SHORT, *extra):
        args += ["--set", item]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_the_example_follows_the_paper_where_the_tool_can():
    config = load_config(EXAMPLE)
    assert (config.model.units, config.model.time_steps, config.model.dropout) == ((25,), 240, 0.1)
    assert (config.train.optimizer, config.train.patience, config.train.clip_norm) == (
        "rmsprop",
        10,
        0.0,
    )
    assert (config.split.initial_train_days, config.split.rolling_days) == (750, 510)
    assert (config.split.retrain_every_days, config.backtest.top_k) == (250, 10)
    assert config.target.kind == "cross_section_direction"
    # on a CPU the one-layer LSTM over 240 days trains by parts on every core
    assert lstm_estimator(config).resolved_trainer() == "compiled"


def test_the_example_runs_on_the_real_data(sqlite_url, shared_sp500) -> None:
    _load(sqlite_url, shared_sp500)
    summary = _run(sqlite_url)
    assert summary["status"] == "succeeded" and summary["target"] == "universe:sp500"
    bt = summary["backtest"]
    assert bt["top_k"] == 10 and bt["days_flat"] == 0
    assert bt["mean_daily_long_minus_short_gross"] == pytest.approx(2 * bt["mean_daily_book_gross"])
    for name in ("lstm", "baseline:reversal", "baseline:momentum", "baseline:logistic"):
        assert name in summary["models"], name
    assert summary["timings"]["models"]["lstm"]["trainer"] == "compiled"


def test_members_without_prices_count_in_coverage_and_change_no_prediction(
    sqlite_url, shared_sp500
) -> None:
    """The example's README loads members_without_prices.csv beside membership.csv, so that
    `runs periods` measures coverage (survivorship) against the whole membership; the
    study must be the same one."""
    _load(sqlite_url, shared_sp500)
    first = _run(sqlite_url)
    priced_only = _coverage(sqlite_url, first["run_id"])
    _membership(sqlite_url, shared_sp500 / "membership.csv",
                shared_sp500 / "members_without_prices.csv")  # fmt: skip
    assert _coverage(sqlite_url, first["run_id"]) < priced_only
    second = _run(sqlite_url)
    assert _lstm_rows(sqlite_url, second["run_id"]) == _lstm_rows(sqlite_url, first["run_id"])


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device on this machine")
def test_the_example_trains_on_a_gpu(sqlite_url, shared_sp500) -> None:
    _load(sqlite_url, shared_sp500)
    summary = _run(sqlite_url, "train.device=cuda")
    assert summary["status"] == "succeeded"
    assert summary["timings"]["models"]["lstm"]["trainer"] == "batched"
