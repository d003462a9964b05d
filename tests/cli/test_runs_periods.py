"""``madness runs periods``: a small universe run by sub-period, its text, JSON and CSV."""

from __future__ import annotations

import datetime as dt
import io
import json

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from lstm_madness.cli import app
from lstm_madness.data import schema
from lstm_madness.data.bulk import insert_frame
from lstm_madness.data.db import make_engine
from lstm_madness.data.membership import store_membership
from lstm_madness.data.store import init_db

runner = CliRunner()
N_DAYS, MEMBERS, DELISTED, LAST_BAR = 360, [f"S{j:02d}" for j in range(6)], "S05", 300
CONFIG = """
[data]
target = "universe:tiny"
[target]
kind = "cross_section"
benchmark = "MKT"
[model]
units = [4]
time_steps = 5
[train]
epochs = 2
patience = 1
batch_size = 128
[split]
scheme = "walk_forward"
initial_train_days = 200
retrain_every_days = 60
[baselines]
models = ["zero", "reversal", "momentum"]
[backtest]
rule = "long_short"
top_k = 2
cost_bps = 5
short_borrow_bps = 30
[evaluation]
bootstrap_reps = 20
"""


def _store(url: str) -> pd.DatetimeIndex:
    """Members S00-S05 and the benchmark MKT; S05's bars end on day 300 (delisted, its
    membership open) and GHOST is a member without any bar."""
    rng = np.random.default_rng(3)
    dates = pd.bdate_range("2015-01-05", periods=N_DAYS, name="date")
    ret = rng.normal(0.0003, 0.015, (N_DAYS, len(MEMBERS) + 1))
    closes = pd.DataFrame(100 * np.cumprod(1 + ret, axis=0), dates, [*MEMBERS, "MKT"])
    engine = make_engine(url)
    init_db(engine)
    with engine.begin() as conn:
        for symbol in closes.columns:
            close = closes[symbol].iloc[: LAST_BAR + 1 if symbol == DELISTED else N_DAYS]
            frame = pd.DataFrame({"symbol": symbol, "date": close.index.date})
            for field in ("open", "high", "low", "close", "adj_close"):
                frame[field] = close.to_numpy()
            frame["volume"], frame["source"] = 1_000_000, "synthetic"
            frame["ingested_at"] = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
            insert_frame(conn, schema.bars, frame)
        intervals = pd.DataFrame({"symbol": [*MEMBERS, "GHOST"], "start": dates[0]})
        intervals["end"] = pd.Series(pd.NaT, index=intervals.index, dtype="datetime64[ns]")
        store_membership(conn, schema.universe_members, "tiny", intervals)
    engine.dispose()
    return dates


@pytest.mark.slow
def test_periods_of_a_universe_run_text_json_csv(sqlite_url, tmp_path) -> None:
    dates = _store(sqlite_url)
    path = tmp_path / "tiny.toml"
    path.write_text(CONFIG)
    ran = runner.invoke(app, ["run", str(path), "--db", sqlite_url, "--json", "--quiet"])
    assert ran.exit_code == 0, ran.output
    summary = json.loads(ran.stdout)
    run_id, bt = str(summary["run_id"]), summary["backtest"]
    test_days = dates[(dates >= summary["test_start"]) & (dates <= summary["test_end"])]
    cut = [test_days[40], test_days[90]]
    breaks = ",".join(d.date().isoformat() for d in cut)
    base = ["runs", "periods", run_id, "--db", sqlite_url, "--breaks", breaks]

    text = runner.invoke(app, base)
    assert text.exit_code == 0, text.output
    assert f"[{summary['test_start']}, {cut[0].date()})" in text.output
    assert f"[{cut[1].date()}, {summary['test_end']}]" in text.output
    for words in ("book gross", "L−S net", "Sharpe net", "hit rate", "equal_weight", "coverage"):
        assert words in text.output

    shown = runner.invoke(app, [*base, "--json"])
    assert shown.exit_code == 0, shown.output
    data = json.loads(shown.stdout)
    assert data["run_id"] == int(run_id) and data["membership_source"] == "stored"
    rows = pd.DataFrame(data["rows"])
    assert list(rows["period"].unique()[-1:]) == ["all"] and rows["period"].nunique() == 4
    total = rows[rows["period"] == "all"].set_index("book")
    assert total["days"].eq(bt["n_days"]).all()
    assert rows.groupby("book")["days"].sum().eq(2 * bt["n_days"]).all()  # parts + all
    lstm = total.loc["lstm"]
    for key in ("mean_daily_book_gross", "mean_daily_book_net"):
        assert lstm[key] == bt[key], key
    for key in ("mean_daily_long_minus_short_gross", "mean_daily_long_minus_short_net"):
        assert lstm[key] == bt[key], key
    assert (lstm["sharpe_net"], lstm["sharpe_gross"]) == (bt["sharpe_net"], bt["sharpe_gross"])
    assert (lstm["turnover"], lstm["members_mean"]) == (bt["turnover"], bt["members_mean"])
    assert lstm["hit_rate"] == summary["tests"]["hit_rate"]
    assert lstm["hit_n"] == summary["tests"]["hit_n"]
    for name in ("baseline:reversal", "baseline:momentum"):
        assert total.loc[name, "sharpe_net"] == bt["strategies"][name]["sharpe"], name
        assert total.loc[name, "hit_rate"] == summary["models"][name]["hit_rate"], name
    for name in ("lstm", "baseline:reversal", "baseline:momentum"):
        m = summary["models"][name]
        assert total.loc[name, "rank_ic"] == pytest.approx(m["rank_ic"], rel=1e-12), name
        assert total.loc[name, "rank_ic_t"] == pytest.approx(m["rank_ic_t"], rel=1e-12), name
    assert pd.isna(total.loc["equal_weight", "rank_ic"])
    assert total.loc["equal_weight", "sharpe_net"] == bt["buy_hold_sharpe"]
    # coverage: 7 members a day (GHOST has no bar), 6 with a bar until S05's last bar
    priced = np.where(test_days <= dates[LAST_BAR], 6, 5) / 7
    assert total.loc["lstm", "coverage"] == pytest.approx(priced.mean(), abs=1e-12)
    last = rows[rows["period"].str.startswith(f"[{cut[1].date()}")].iloc[0]
    assert last["coverage"] == pytest.approx(priced[90:].mean(), abs=1e-12)

    csv = runner.invoke(app, [*base, "--csv"])
    assert csv.exit_code == 0, csv.output
    frame = pd.read_csv(io.StringIO(csv.stdout))
    assert list(frame.columns) == list(data["labels"]) and len(frame) == len(rows)


def test_a_run_that_is_not_a_universe_study_is_refused(sqlite_url) -> None:
    from lstm_madness.experiment.config import load_config
    from lstm_madness.store.lifecycle import create_run

    engine = make_engine(sqlite_url)
    init_db(engine)
    run_id = create_run(engine, load_config(None, ["data.target=SYN"]))
    engine.dispose()
    result = runner.invoke(app, ["runs", "periods", str(run_id), "--db", sqlite_url])
    assert result.exit_code == 1
    assert f"run {run_id} is a timing study (target.kind = 'return')" in result.output
    bad = runner.invoke(app, ["runs", "periods", "1", "--db", sqlite_url, "--json", "--csv"])
    assert bad.exit_code == 1 and "not both" in bad.output
