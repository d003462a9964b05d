"""Live summaries over the trial set, checked against an independent computation from the
exported predictions (plain numpy/scipy), on both backends."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa
from scipy import stats

from lstm_madness.data import schema
from lstm_madness.data.db import make_engine
from lstm_madness.data.store import init_db
from lstm_madness.errors import RunError
from lstm_madness.experiment.config import load_config
from lstm_madness.experiment.reporting import write_run_report
from lstm_madness.experiment.results import at_finish_note, load_run
from lstm_madness.experiment.show import show_run
from lstm_madness.experiment.summary import EXPORT_COLUMNS, evaluate_runs, prediction_table
from lstm_madness.report import formats as fmt
from lstm_madness.store.lifecycle import create_run, delete_run, finish_run
from lstm_madness.store.predictions import record_folds, save_fold
from lstm_madness.store.runs import get_run
from lstm_madness.sweep import SweepSpace, create_sweep

N_DAYS = 300
DATES = pd.bdate_range("2015-01-02", periods=N_DAYS)
REALIZED = np.random.default_rng(0).normal(0.0003, 0.01, N_DAYS)


@pytest.fixture
def engine(db_url):
    engine = make_engine(db_url)
    init_db(engine)
    yield engine
    engine.dispose()


def _preds(seed: int, skill: float = 0.3) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return skill * REALIZED + rng.normal(0, 0.01, N_DAYS)


def _store(
    engine,
    pred: np.ndarray,
    *,
    overrides=(),
    dates=DATES,
    sweep_id=None,
    finish: bool = True,
) -> int:
    """Register a run with these test predictions, then finish it as the runner does."""
    config = load_config(None, ["data.target=SYN", "evaluation.bootstrap_reps=50", *overrides])
    run_id = create_run(engine, config, sweep_id=sweep_id)
    folds = pd.DataFrame(
        [
            {
                "fold": 0,
                "train_start": dt(DATES[0]) - pd.Timedelta(days=400),
                "train_end": dt(DATES[0]) - pd.Timedelta(days=1),
                "test_start": dt(DATES[0]),
                "test_end": dt(DATES[-1]),
                "n_train": 250,
                "n_test": N_DAYS,
            }
        ]
    )
    record_folds(engine, run_id, folds)
    keep = np.isin(DATES, dates)
    rows = [
        pd.DataFrame(
            {
                "model": model,
                "split": "test",
                "date": DATES[keep],
                "symbol": "SYN",
                "y_true": REALIZED[keep],
                "y_pred": values[keep],
                "realized": REALIZED[keep],
            }
        )
        for model, values in {
            "lstm": pred,
            "baseline:zero": np.zeros(N_DAYS),
            "baseline:mean": np.full(N_DAYS, 0.0003),
        }.items()
    ]
    save_fold(engine, run_id, 0, pd.concat(rows, ignore_index=True))
    if finish:
        summary = evaluate_runs(engine, [run_id])[run_id].summary
        finish_run(engine, run_id, "succeeded", summary=summary)
    return run_id


def dt(ts: pd.Timestamp):
    return pd.Timestamp(ts).date()


def _independent(engine, ids: list[int], judged: int, cost_bps: float) -> dict[str, float]:
    """DSR, V, N_eff from the exported positions and realized returns, in plain numpy."""
    nets = {}
    for run_id in ids:
        table = prediction_table(engine, run_id, "lstm")
        pos, real = table["position"].to_numpy(), table["realized"].to_numpy()
        turnover = np.abs(np.diff(pos, prepend=0.0))
        nets[run_id] = pd.Series(
            pos * real - turnover * cost_bps / 1e4, index=pd.to_datetime(table["date"])
        )
    sharpes = np.array([s.mean() / s.std(ddof=1) * math.sqrt(252) for s in nets.values()])
    n = len(ids)
    v_daily = np.var(sharpes / math.sqrt(252), ddof=1)
    own = nets[judged].to_numpy()
    sr = own.mean() / own.std(ddof=1)
    skew, kurt = stats.skew(own), stats.kurtosis(own, fisher=False)

    def dsr(trials: float) -> float:
        if trials == 1:
            sr0 = 0.0
        else:
            sr0 = max(
                0.0,
                math.sqrt(v_daily)
                * (
                    (1 - np.euler_gamma) * stats.norm.ppf(1 - 1 / trials)
                    + np.euler_gamma * stats.norm.ppf(1 - 1 / (trials * math.e))
                ),
            )
        z = (sr - sr0) * math.sqrt(own.size - 1) / math.sqrt(1 - skew * sr + (kurt - 1) / 4 * sr**2)
        return float(stats.norm.cdf(z))

    common = pd.DataFrame(nets).dropna()
    corr = np.corrcoef(common.to_numpy(), rowvar=False)
    rho = min(max(corr[np.triu_indices(n, 1)].mean(), 0.0), 1.0) if n > 1 else 0.0
    n_eff = rho + (1 - rho) * n
    return {
        "sharpe": sr * math.sqrt(252),
        "variance": v_daily * 252,
        "dsr": dsr(n),
        "n_eff": n_eff,
        "dsr_eff": dsr(n_eff),
        "common_days": len(common),
    }


def test_dsr_and_effective_trials_match_an_independent_computation(engine):
    ids = [_store(engine, _preds(s)) for s in range(3)]
    ids.append(_store(engine, _preds(9), overrides=["backtest.cost_bps=20"]))
    live = evaluate_runs(engine, ids)
    for judged in ids:
        sig = live[judged].summary["significance"]
        cost = live[judged].summary["backtest"]["cost_bps"]
        ref = _independent(engine, ids, judged, cost)
        assert sig["trials"] == 4 and sig["trial_runs"] == 4
        assert live[judged].summary["backtest"]["sharpe_net"] == pytest.approx(ref["sharpe"])
        assert sig["dsr_sharpe_variance"] == pytest.approx(ref["variance"], rel=1e-9)
        assert sig["dsr"] == pytest.approx(ref["dsr"], rel=1e-9)
        assert sig["trials_effective"] == pytest.approx(ref["n_eff"], rel=1e-9)
        assert sig["dsr_effective"] == pytest.approx(ref["dsr_eff"], rel=1e-9)
        assert sig["spa_models"] == 4 and sig["pbo_strategies"] == 4
    # the judge under 20 bps sees the others under 20 bps too: V differs from the 5 bps one
    assert (
        live[ids[3]].summary["significance"]["dsr_sharpe_variance"]
        != live[ids[0]].summary["significance"]["dsr_sharpe_variance"]
    )
    # SPA and PBO belong to the trial set: every member under the same costs reports them
    assert len({live[i].summary["significance"]["spa_p"] for i in ids[:3]}) == 1


def test_summaries_are_live_read_only_and_a_deleted_run_still_counts(engine, tmp_path):
    a = _store(engine, _preds(1))
    first = evaluate_runs(engine, [a])[a].summary
    assert first["significance"]["trials"] == 1
    assert first["significance"]["dsr"] == pytest.approx(first["significance"]["psr"])
    stored_before = get_run(engine, a).summary
    assert stored_before["at_finish"] == {
        "trials": 1,
        "dsr": first["significance"]["dsr"],
        "tradeable": first["verdict"]["tradeable"],
    }

    b = _store(engine, _preds(2))
    now = evaluate_runs(engine, [a])[a].summary
    assert now["significance"]["trials"] == 2
    assert now["significance"]["dsr"] != first["significance"]["dsr"]
    assert now["at_finish"] == stored_before["at_finish"]  # what it saw when it finished
    assert now["significance"]["dsr"] == pytest.approx(_independent(engine, [a, b], a, 5)["dsr"])
    # reading writes nothing
    with engine.connect() as conn:
        metrics_before = conn.execute(
            sa.select(sa.func.count()).select_from(schema.metrics)
        ).scalar()
    again = evaluate_runs(engine, [a, b])
    assert get_run(engine, a).summary == stored_before
    with engine.connect() as conn:
        assert (
            conn.execute(sa.select(sa.func.count()).select_from(schema.metrics)).scalar()
            == metrics_before
        )
    # every reading command agrees to the last digit: the cached evidence equals a fresh one
    assert json.dumps(again[a].summary, sort_keys=True) == json.dumps(now, sort_keys=True)
    _, reported = write_run_report(engine, a, tmp_path / "r")
    assert json.dumps(reported, sort_keys=True) == json.dumps(now, sort_keys=True)
    result = load_run(engine, a)
    assert result.to_json() == now and "trials 2" in result.summary()
    assert "judged now against 2 trials; at finish: 1 (" in result.summary()

    assert delete_run(engine, b) == "tombstone"
    after = evaluate_runs(engine, [a])[a].summary
    assert after["significance"]["trials"] == 2
    assert after["significance"]["dsr"] == now["significance"]["dsr"]


def test_a_live_verdict_over_more_trials_than_at_finish_says_so(engine, tmp_path):
    a = _store(engine, _preds(1))
    assert "judged now" not in load_run(engine, a).summary()  # nothing changed since
    b = _store(engine, _preds(2))  # a later run joins a's trial set
    result = load_run(engine, a)
    sig, at = result.significance, result.at_finish
    assert (sig["trials"], at["trials"]) == (2, 1)
    note = (
        f"judged now against 2 trials; at finish: 1 (DSR then {fmt.probability(at['dsr'])}, "
        f"now {fmt.probability(sig['dsr'])})"
    )
    assert at_finish_note(result.to_json()).startswith(note)
    (line,) = [x for x in result.summary().splitlines() if x.startswith("judged now")]
    assert line.startswith(note)
    if at["tradeable"] != result.verdict.tradeable:
        assert line.endswith(" now")
    assert note in result._repr_html_()
    path, _ = write_run_report(engine, a, tmp_path / "r")
    assert note in path.read_text(encoding="utf-8")
    # b finished against both: its verdict is as at finish
    assert "judged now" not in load_run(engine, b).summary()
    assert at_finish_note(load_run(engine, b).to_json()) is None


def test_fresh_cache_gives_identical_numbers(engine, tmp_path, monkeypatch):
    ids = [_store(engine, _preds(s)) for s in range(3)]
    cached = evaluate_runs(engine, ids)
    monkeypatch.setenv("MADNESS_CACHE_DIR", str(tmp_path / "empty"))
    fresh = evaluate_runs(engine, ids)
    for i in ids:
        assert json.dumps(cached[i].summary, sort_keys=True) == json.dumps(
            fresh[i].summary, sort_keys=True
        )


def test_bootstrap_does_not_depend_on_the_training_seed(engine):
    """Every evaluation bootstraps with one seed: two runs with the same predictions state
    the same confidence intervals whatever seed trained them, equal to a recomputation."""
    from lstm_madness.evaluation.significance import sharpe_ci
    from lstm_madness.experiment.ledger import EVIDENCE_SEED

    a = _store(engine, _preds(1), overrides=["train.seed=0"])
    b = _store(engine, _preds(1), overrides=["train.seed=7"])
    live = evaluate_runs(engine, [a, b])
    sig = {i: live[i].summary["significance"] for i in (a, b)}
    assert sig[a]["sharpe_ci"] == sig[b]["sharpe_ci"]
    assert sig[a]["excess_return_ci"] == sig[b]["excess_return_ci"]
    net = live[b].evaluation.net_returns
    ci = sharpe_ci(net, reps=50, seed=EVIDENCE_SEED)
    assert sig[b]["sharpe_ci"] == pytest.approx([ci.low, ci.high], rel=1e-12)
    other = sharpe_ci(net, reps=50, seed=7)
    assert [other.low, other.high] != pytest.approx(sig[b]["sharpe_ci"], rel=1e-12)


def test_missing_dates_are_aligned_on_common_dates(engine):
    full = _store(engine, _preds(1))
    short = _store(engine, _preds(2), dates=DATES[10:])
    sig = evaluate_runs(engine, [full])[full].summary["significance"]
    assert sig["trials"] == 2 and sig["spa_p"] is not None
    ref = _independent(engine, [full, short], full, 5)
    assert ref["common_days"] == N_DAYS - 10
    assert sig["trials_effective"] == pytest.approx(ref["n_eff"])
    assert sig["dsr"] == pytest.approx(ref["dsr"])


def test_trials_mode_override_and_pending_sweep_members(engine):
    sweep = create_sweep(engine, load_config(), SweepSpace({}, 2), engine_name="local")
    a = _store(engine, _preds(1), sweep_id=sweep, overrides=["evaluation.trials_mode=effective"])
    _store(engine, _preds(2))
    waiting = create_run(engine, load_config(None, ["data.target=SYN"]), sweep_id=sweep)
    ev = evaluate_runs(engine, [a])[a].summary
    sig = ev["significance"]
    assert sig["trials"] == 3 and sig["trials_pending"] == 1  # the sweep's running member
    assert sig["trials_mode"] == "effective"
    assert any(
        f"after {sig['trials_effective']:.4g} trials" in r
        for r in ev["verdict"]["reasons"] + ev["verdict"].get("passed", [])
    )
    forced = evaluate_runs(engine, [a], trials=10)[a].summary["significance"]
    assert forced["trials"] == 10 and forced["trials_override"] and forced["trials_mode"] == "raw"
    finish_run(engine, waiting, "failed", error="x")
    assert evaluate_runs(engine, [a])[a].summary["significance"]["trials"] == 2


def test_export_has_positions_and_returns_of_the_backtest(engine):
    run_id = _store(engine, _preds(4), overrides=["backtest.cost_bps=10"])
    table = prediction_table(engine, run_id)
    assert list(table.columns) == EXPORT_COLUMNS
    assert set(table["model"]) == {"lstm", "baseline:zero", "baseline:mean"}
    lstm = table[table["model"] == "lstm"]
    np.testing.assert_array_equal(lstm["position"], np.sign(lstm["y_pred"]))
    np.testing.assert_allclose(lstm["gross_return"], lstm["position"] * lstm["realized"])
    summary = evaluate_runs(engine, [run_id])[run_id].summary
    net = lstm["net_return"].to_numpy()
    assert summary["backtest"]["sharpe_net"] == pytest.approx(
        net.mean() / net.std(ddof=1) * math.sqrt(252)
    )


def test_run_result_object(engine, tmp_path):
    run_id = _store(engine, _preds(5))
    result = load_run(engine, run_id)
    assert result.run_id == run_id and result.primary == "lstm"
    assert result.verdict.tradeable == result.to_json()["verdict"]["tradeable"]
    assert result.metrics["lstm"]["n"] == N_DAYS
    assert result.backtest["sharpe_net"] == result.to_json()["backtest"]["sharpe_net"]
    assert result.significance["trials"] == 1 and result.trial_ids == (run_id,)
    pd.testing.assert_frame_equal(result.predictions, prediction_table(engine, run_id))
    text = result.summary()
    assert text.startswith(f"run {run_id} succeeded") and "verdict: NOT TRADEABLE" in text
    path = result.report(tmp_path / "report")
    assert path.is_file() and "NOT TRADEABLE" in path.read_text()


def test_show_run_is_what_runs_show_load_run_and_report_see(engine, tmp_path, monkeypatch):
    """One look at a stored run: stale runs marked first, the cached live summary or an
    evaluation now; ``runs show``, ``load_run`` and ``report`` state the same numbers."""
    monkeypatch.setenv("MADNESS_CACHE_DIR", str(tmp_path / "cache"))
    a = _store(engine, _preds(1))
    first = show_run(engine, a)
    assert first.evaluation is not None  # nothing cached yet: evaluated now, then cached
    again = show_run(engine, a)
    assert again.evaluations == {} and again.summary == first.summary  # read from the cache
    assert again.run == get_run(engine, a) and again.run.status == "succeeded"
    assert load_run(engine, a).to_json() == first.summary  # evaluated now: the same numbers
    _, reported = write_run_report(engine, a, tmp_path / "r")
    assert reported == first.summary
    b = _store(engine, _preds(2), finish=False)  # running, owned by this process
    shown = show_run(engine, b)
    assert shown.summary is None and shown.status_line() == f"run {b} is still running"
    with pytest.raises(RunError, match=f"run {b} is still running; no summary"):
        load_run(engine, b)
    with engine.begin() as conn:  # its process died (SIGKILL): the next look marks it
        conn.execute(schema.runs.update().where(schema.runs.c.id == b).values(pid=2**22 + 7))
    with pytest.raises(RunError, match=f"run {b} is failed: stale: process"):
        load_run(engine, b)
    with pytest.raises(RunError, match=f"run {b} is failed .*only succeeded runs"):
        write_run_report(engine, b, tmp_path / "b")


def test_a_cached_summary_is_keyed_by_the_trial_set_it_was_judged_against(
    engine, tmp_path, monkeypatch
):
    """Runs finishing at once into one store (issue 22): run A is evaluated over {A}, run B
    joins the trial set before A is marked succeeded and its summary cached; ``runs show``
    of A then states what an empty cache and a fresh evaluation state (2 trials), never
    A's summary of 1 trial."""
    import threading

    from lstm_madness.experiment.runner import finish_runs
    from lstm_madness.store import lifecycle

    monkeypatch.setenv("MADNESS_CACHE_DIR", str(tmp_path / "cache"))
    a = _store(engine, _preds(1), finish=False)
    b = _store(engine, _preds(2), finish=False)
    a_evaluated, b_finished = threading.Event(), threading.Event()
    finish_with_summaries = lifecycle.finish_with_summaries

    def interleaved(engine_, summaries):
        if a in summaries:  # A was evaluated over {A}: let B finish first, then mark A
            a_evaluated.set()
            assert b_finished.wait(60)
        return finish_with_summaries(engine_, summaries)

    monkeypatch.setattr(lifecycle, "finish_with_summaries", interleaved)
    errors: list[BaseException] = []

    def finish(run_id: int, done: threading.Event | None = None) -> None:
        try:
            finish_runs(engine, [run_id], timings={run_id: {}})
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)
            a_evaluated.set()
        finally:
            if done is not None:
                done.set()

    first = threading.Thread(target=finish, args=(a,))
    first.start()
    assert a_evaluated.wait(60)
    second = threading.Thread(target=finish, args=(b, b_finished))
    second.start()
    first.join(60), second.join(60)
    assert not errors
    shown = show_run(engine, a).summary
    monkeypatch.setenv("MADNESS_CACHE_DIR", str(tmp_path / "empty"))
    cold = show_run(engine, a).summary
    assert cold["significance"]["trials"] == 2
    assert shown["significance"]["trials"] == cold["significance"]["trials"]
    assert shown["significance"]["dsr"] == cold["significance"]["dsr"]
    assert json.dumps(shown, sort_keys=True) == json.dumps(cold, sort_keys=True)
