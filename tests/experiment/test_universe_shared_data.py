"""Integration: a short cross-sectional study on the real XLF components (../shared)."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from lstm_madness.cli import app
from lstm_madness.data.db import make_engine
from lstm_madness.data.ingest import ingest_file
from lstm_madness.data.store import init_db
from lstm_madness.data.universe import load_universe

pytestmark = [pytest.mark.shared_data, pytest.mark.slow]
EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "xlf" / "06_cross_section.toml"
SHORT = [
    "data.start=2016-01-04",
    "data.end=2020-12-11",
    "split.initial_train_days=500",
    "model.units=[8]",
    "train.epochs=2",
    "evaluation.bootstrap_reps=100",
]


def test_a_short_universe_study_on_the_real_components(sqlite_url, shared_prices) -> None:
    engine = make_engine(sqlite_url)
    init_db(engine)
    symbols = load_universe("xlf")  # XLF and its 30 components
    for symbol in symbols:
        ingest_file(engine, shared_prices / f"{symbol}.csv")
    engine.dispose()
    args = ["run", str(EXAMPLE), "--db", sqlite_url, "--json"]
    for item in SHORT:
        args += ["--set", item]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    bt = summary["backtest"]
    assert summary["target"] == "universe:xlf" and summary["status"] == "succeeded"
    assert 28 <= bt["members_mean"] <= 30 and bt["days_flat"] == 0 and bt["top_k"] == 5
    assert 700 < bt["n_days"] < 760  # 2018-01 .. 2020-12-10
    for name in ("lstm", "baseline:reversal", "baseline:momentum", "baseline:ridge"):
        assert -1 < summary["models"][name]["rank_ic"] < 1, name
    warnings = " ".join(summary["verdict"]["warnings"])
    assert "Survivorship bias" in warnings  # the bundled list of today's members
    csv = CliRunner().invoke(
        app, ["runs", "predictions", str(summary["run_id"]), "--db", sqlite_url, "--csv"]
    )
    rows = pd.read_csv(io.StringIO(csv.stdout))
    assert not rows.duplicated(["date", "symbol", "model"]).any()
    assert set(rows["symbol"]) <= set(symbols[1:])
