"""A universe study end to end through ``madness run``: store → panel → folds → baselines
and one shared network → stored rows per (date, member, model) → long-short verdict.

Synthetic universe (``synthetic_universe`` in conftest): members joining late, leaving,
rejoining and delisted; a planted cross-sectional reversal, or pure noise.
"""

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

QUICK = [
    "--set",
    "model.units=[8]",
    "--set",
    "model.time_steps=5",
    "--set",
    "train.epochs=3",
    "--set",
    "train.patience=0",
    "--set",
    "train.batch_size=256",
    "--set",
    "train.learning_rate=0.003",
    "--set",
    "evaluation.bootstrap_reps=100",
]
CONFIG = """
[data]
target = "universe:synth"
standardized_input = true
[target]
kind = "cross_section"
benchmark = "MKT"
[split]
scheme = "walk_forward"
initial_train_days = 1000
retrain_every_days = 250
[backtest]
rule = "long_short"
top_k = 5
cost_bps = 0
"""
CANARY = 1e6  # a close after a member's last date: it must never reach any output


def _bars(symbol: str, dates: pd.DatetimeIndex, returns: np.ndarray) -> pd.DataFrame:
    close = 100.0 * np.cumprod(1.0 + np.nan_to_num(returns))
    return pd.DataFrame(
        {
            "symbol": symbol,
            "date": dates.date,
            "open": close,
            "high": close,
            "low": close,
            "close": close,
            "adj_close": close,
            "volume": 1_000_000,
            "source": "synthetic",
            "ingested_at": dt.datetime.now(dt.UTC),
        }
    )


def _store(engine, make_universe, reversal: float) -> None:
    fields, intervals, market = make_universe(n_symbols=30, n_days=1500, reversal=reversal)
    ret = fields["ret"]
    init_db(engine)
    frames = [_bars("MKT", ret.index, market.to_numpy())]
    for s in ret.columns:
        r = ret[s]
        ok = r.notna().to_numpy()
        frames.append(_bars(s, ret.index[ok], r[ok].to_numpy()))
    # canaries: S06/S07 left on day 900 but keep trading; a huge jump after they left
    for frame in frames:
        if frame["symbol"].iloc[0] in ("S06", "S07"):
            late = pd.to_datetime(frame["date"]) > ret.index[1000]
            frame.loc[late, ["open", "high", "low", "close", "adj_close"]] = CANARY
    with engine.begin() as conn:
        for frame in frames:
            insert_frame(conn, schema.bars, frame)
        store_membership(conn, schema.universe_members, "synth", intervals)


@pytest.fixture
def study(tmp_path, db_url, make_universe, request):
    engine = make_engine(db_url)
    _store(engine, make_universe, request.param)
    engine.dispose()
    path = tmp_path / "xs.toml"
    path.write_text(CONFIG)
    return db_url, path


def _run(db_url, path) -> dict:
    result = CliRunner().invoke(app, ["run", str(path), "--db", db_url, "--json", *QUICK])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


@pytest.mark.parametrize("study", [0.1], indirect=True)
def test_planted_reversal_is_found_and_members_trade_only_while_members(study, tmp_path) -> None:
    db_url, path = study
    summary = _run(db_url, path)
    assert summary["target"] == "universe:synth"
    bt, models = summary["backtest"], summary["models"]
    assert bt["top_k"] == 5 and bt["days_flat"] == 0 and 26 <= bt["members_mean"] <= 28
    for key in ("long_sharpe", "short_sharpe", "sharpe_net", "break_even_cost_bps"):
        assert key in bt
    for name in ("lstm", "baseline:reversal", "baseline:ridge"):
        m = models[name]
        assert m["rank_ic"] > 0.03 and m["rank_ic_t"] > 3, name
        assert m["rank_ic_positive_share"] > 0.55, name
    assert summary["significance"]["sharpe_tstat_p"] < 0.01
    assert summary["tests"]["dm_p_vs_zero"] < 0.05
    assert abs(models["baseline:zero"]["rank_ic"] or 0.0) < 1e-12
    # one definition of "up" and one of the loss, for every figure that names them
    assert models["lstm"]["hit_rate"] == pytest.approx(summary["tests"]["hit_rate"], abs=1e-15)
    assert models["lstm"]["hit_n"] == summary["tests"]["hit_n"]
    assert models["baseline:zero"]["hit_rate"] is None  # never calls a member above another
    for name, m in models.items():
        assert m["r2_oos"] == pytest.approx(1 - m["mse"] / m["mse_zero"], abs=1e-12), name
    assert summary["tests"]["r2_oos"] == models["lstm"]["r2_oos"]
    # one row per (date, member, model); weights and contributions sum to the book
    csv = CliRunner().invoke(
        app, ["runs", "predictions", str(summary["run_id"]), "--db", db_url, "--csv"]
    )
    assert csv.exit_code == 0, csv.output
    rows = pd.read_csv(io.StringIO(csv.stdout), parse_dates=["date"])
    assert not rows.duplicated(["date", "symbol", "model"]).any()
    lstm = rows[rows["model"] == "lstm"]
    by_day = lstm.groupby("date")
    assert by_day["position"].sum().abs().max() < 1e-12  # dollar-neutral
    assert (by_day["position"].apply(lambda p: p.abs().sum()) - 1.0).abs().max() < 1e-12
    # point in time: S06/S07 left on day 900 (before the test period), S04/S05 delisted
    # after day 1100; S00-S03 joined on day 260
    dates = pd.bdate_range("2010-01-04", periods=1500)
    assert not rows["symbol"].isin(["S06", "S07"]).any()
    assert rows.loc[rows["symbol"].isin(["S04", "S05"]), "date"].max() <= dates[1100]
    # the canary close never reaches any output
    assert rows[["realized", "y_true", "gross_return", "net_return"]].abs().max().max() < 1
    assert "Survivorship" not in " ".join(summary["verdict"]["warnings"])
    # the report: legs, rolling IC, quintiles, members per day
    out = tmp_path / "report"
    run_id = str(summary["run_id"])
    reported = CliRunner().invoke(app, ["report", run_id, "--db", db_url, "--out", str(out)])
    assert reported.exit_code == 0, reported.output
    folder = out / f"run-{run_id}"
    for name in ("report.html", "legs_pnl.png", "rolling_ic.png", "quintiles.png"):
        assert (folder / name).stat().st_size > 1000, name
    page = (folder / "report.html").read_text()
    assert "long leg net Sharpe" in page and "equal-weight book" in page


@pytest.mark.parametrize("study", [0.0], indirect=True)
def test_pure_noise_is_not_tradeable_and_the_ledger_counts_the_book(study) -> None:
    from lstm_madness.evaluation.backtest import sharpe_ratio
    from lstm_madness.evaluation.significance import deflated_sharpe_ratio

    db_url, path = study
    first = _run(db_url, path)
    assert first["verdict"]["tradeable"] is False
    assert abs(first["models"]["lstm"]["rank_ic_t"]) < 3
    # a second try on the same universe and test period is a second trial
    result = CliRunner().invoke(
        app, ["run", str(path), "--db", db_url, "--json", *QUICK, "--set", "train.seed=1"]
    )
    assert result.exit_code == 0, result.output
    second = json.loads(result.stdout)
    assert second["significance"]["trials"] == 2
    # independent computation from the exported rows: each day's book = the sum of the
    # members' contributions; Sharpe and DSR over both trials' books
    books = {}
    for run in (first, second):
        csv = CliRunner().invoke(
            app, ["runs", "predictions", str(run["run_id"]), "--db", db_url, "--csv"]
        )
        rows = pd.read_csv(io.StringIO(csv.stdout), parse_dates=["date"])
        books[run["run_id"]] = rows[rows["model"] == "lstm"].groupby("date")["net_return"].sum()
    net = books[second["run_id"]].to_numpy()
    assert sharpe_ratio(net) == pytest.approx(second["backtest"]["sharpe_net"], rel=1e-9)
    sharpes = [sharpe_ratio(b.to_numpy()) for b in books.values()]
    dsr = deflated_sharpe_ratio(net, trials=2, trial_sharpes=np.array(sharpes))
    assert dsr.dsr == pytest.approx(second["significance"]["dsr"], rel=1e-9)


def test_the_validation_tail_starts_on_a_date_boundary(make_universe) -> None:
    from lstm_madness.cross_section import build_cross_section_fold, build_panel, validation_gap
    from lstm_madness.data.membership import membership_mask
    from lstm_madness.models.protocol import split_validation

    fields, intervals, _ = make_universe(n_symbols=30, n_days=1200)
    mask = membership_mask(intervals, fields["ret"].index, fields["ret"].columns)
    panel = build_panel(fields, mask, 5)
    d = panel.dates
    for cut in (300, 777, 1000):
        fold = build_cross_section_fold(panel, train=(None, d[cut - 1]), test=(d[cut], None))
        dates = fold.train[0]
        gap = validation_gap(fold, 0.1, patience=3)
        n_fit, n_val = split_validation(len(dates), 0.1, gap, 3)
        assert dates[n_fit - 1] < dates[len(dates) - n_val]  # no day on both sides
        assert dates[n_fit] == dates[len(dates) - n_val] or gap == 0
        assert validation_gap(fold, 0.1, patience=0) == 0


@pytest.mark.parametrize("study", [0.1], indirect=True)
def test_a_list_of_symbols_and_the_direction_label(study) -> None:
    db_url, path = study
    members = [f"S{j}" for j in range(10, 22)]
    extra = [
        "--set",
        "target.kind=cross_section_direction",
        "--set",
        f"data.target={json.dumps(members)}",
        "--set",
        "backtest.top_k=3",
        "--set",
        'data.features=["ret", "range"]',  # fields read in any order: ret sets the calendar
    ]
    result = CliRunner().invoke(app, ["run", str(path), "--db", db_url, "--json", *QUICK, *extra])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["target"].startswith("symbols:")
    assert summary["backtest"]["members_mean"] == 12 and summary["backtest"]["top_k"] == 3
    models = summary["models"]
    assert models["baseline:zero"]["mse"] == pytest.approx(0.25)  # predicts 0.5
    assert models["baseline:zero"]["r2_oos"] == 0
    # the direction label's "up" is above the day's median, for the hit rates too
    assert models["lstm"]["hit_rate"] == pytest.approx(summary["tests"]["hit_rate"], abs=1e-15)
    assert models["lstm"]["rank_ic_t"] > 3 and models["baseline:reversal"]["rank_ic_t"] > 3
    assert "fixed list of symbols" in " ".join(summary["verdict"]["warnings"])


@pytest.mark.parametrize(
    ("overrides", "error", "message"),
    [
        (['data.target=["AAA", "NOPE"]'], "DataError", "1 member"),
        (["data.target=universe:nosuch"], "DataError", "no universe 'nosuch'"),
        (["target.benchmark=NOPE"], "DataError", "target.benchmark 'NOPE'"),
        (["target.benchmark=MKT", "data.start=2030-01-02"], "DataError", "MKT has no trading"),
        (["data.start=2030-01-02"], "DataError", "AAA has no trading day"),
        (["data.benchmark_input=true"], "DataError", "benchmark_input"),
        (["data.end=2001-01-25"], "ConfigError", "too few"),
    ],
)
def test_a_universe_run_refused_before_training_leaves_no_run(
    db_url, write_returns, ar1_returns, overrides, error, message
) -> None:
    """The members, the benchmark and the calendar's days are checked before the run is
    registered: a refused study leaves the ledger empty."""
    from lstm_madness import errors
    from lstm_madness.experiment.config import load_config
    from lstm_madness.experiment.runner import run_experiment
    from lstm_madness.store.runs import list_runs

    engine = make_engine(db_url)
    for k, symbol in enumerate(("AAA", "BBB", "MKT")):
        write_returns(engine, symbol, ar1_returns(300, phi=0.1, seed=k))
    base = [
        "target.kind=cross_section",
        'data.target=["AAA", "BBB"]',
        "backtest.rule=long_short",
        "backtest.top_k=1",
        "model.units=[8]",
        "model.time_steps=5",
        "train.epochs=1",
    ]
    try:
        with pytest.raises(getattr(errors, error), match=message):
            run_experiment(engine, load_config(None, [*base, *overrides]))
        assert list_runs(engine).empty
    finally:
        engine.dispose()
