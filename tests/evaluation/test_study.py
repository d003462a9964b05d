"""evaluate(): planted signal -> TRADEABLE; noise after a sweep -> NOT TRADEABLE; JSON."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from lstm_madness.errors import ConfigError, DataError
from lstm_madness.evaluation.backtest import backtest, positions_from_predictions
from lstm_madness.evaluation.study import EvaluationSettings, evaluate, jsonable
from lstm_madness.experiment.config import ExperimentConfig

FAST = EvaluationSettings(bootstrap_reps=300, seed=0)


def _market(n: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    r = rng.normal(0.0003, 0.012, n)  # asset_returns[i]: close i -> close i+1
    dates = pd.bdate_range("2012-01-02", periods=n).to_numpy()
    return rng, dates, r


def _baselines(n: int, mean: float = 0.0003) -> dict[str, np.ndarray]:
    return {"baseline:zero": np.zeros(n), "baseline:mean": np.full(n, mean)}


def test_planted_signal_is_tradeable() -> None:
    rng, dates, r = _market(1500)
    # E[r | r + noise] with equal variances: the calibrated forecast of a noisy signal
    pred = 0.5 * (r + rng.normal(0, 0.012, r.size))
    ev = evaluate(
        dates=dates,
        asset_returns=r,
        y_true=r,
        predictions={"lstm": pred, **_baselines(r.size)},
        task="regression",
        settings=FAST,
        trials=10,
    )
    assert ev.verdict.tradeable, ev.verdict.reasons
    assert ev.verdict.label == "TRADEABLE"
    js = ev.to_json()
    assert js["verdict"] == {**js["verdict"], "tradeable": True, "reasons": []}
    assert js["backtest"]["sharpe_net"] > js["backtest"]["buy_hold_sharpe"]
    assert js["tests"]["dm_p_vs_zero"] < 0.05 and js["significance"]["dsr"] >= 0.95
    assert js["significance"]["spa_p"] < 0.05


def test_a_direction_forecast_is_judged_against_always_up_and_majority_not_zero() -> None:
    """A direction task's forecast condition is Diebold–Mariano on the Brier score against
    its own baselines (always-up and majority), never a test against a zero return."""
    rng, dates, r = _market(1500)
    up = (r > 0).astype(float)
    informed = np.clip(0.5 + 0.8 * (r + rng.normal(0, 0.012, r.size)) / 0.012 * 0.1, 0.01, 0.99)
    for pred, passes in ((informed, True), (np.full(r.size, 0.52), False)):
        ev = evaluate(
            dates=dates,
            asset_returns=r,
            y_true=up,
            predictions={
                "lstm": pred,
                "baseline:always_up": np.ones(r.size),
                "baseline:majority": np.ones(r.size),
            },
            task="classification",
            settings=FAST,
        )
        check = next(c for c in ev.verdict.checks if c.name == "beats_direction_baselines")
        assert check.passed is passes, check.message
        assert check.message.startswith("the Brier score of its calls is ")
        assert "always-up's (Diebold–Mariano p = " in check.message
        assert "majority's" in check.message
        assert not any("zero forecast" in c.message for c in ev.verdict.checks)
        js = ev.to_json()["tests"]
        assert {"dm_calls_p_vs_always_up", "dm_calls_p_vs_majority"} <= set(js)
    # without stored baselines, always-up is still the benchmark
    ev = evaluate(
        dates=dates,
        asset_returns=r,
        y_true=up,
        predictions={"lstm": informed},
        task="classification",
        settings=FAST,
    )
    assert "always_up" in ev.dm and ev.verdict.checks[2].name == "beats_direction_baselines"


def test_a_forecast_that_calls_no_direction_has_no_hit_rate() -> None:
    _, dates, r = _market(400)
    for task, y, flat in (
        ("regression", r, np.zeros(r.size)),
        ("classification", (r > 0).astype(float), np.full(r.size, 0.5)),
    ):
        ev = evaluate(
            dates=dates,
            asset_returns=r,
            y_true=y,
            predictions={"lstm": flat},
            task=task,
            settings=FAST,
        )
        js = ev.to_json()
        assert js["tests"]["hit_rate"] is None and js["tests"]["hit_n"] == 0
        assert js["models"]["lstm"]["hit_rate"] is None if "models" in js else True
        assert js["tests"]["models"]["lstm"]["hit_rate"] is None
        assert js["backtest"]["break_even_kind"] == "no_trades"
        assert "hit rate – (no prediction calls a direction)" in ev.summary()


def _sweep(n: int, k: int, seed: int):
    """k noise configurations; returns their predictions and net returns (sign rule)."""
    rng, dates, r = _market(n, seed)
    preds = rng.normal(0, 0.01, (n, k))
    nets = np.column_stack(
        [backtest(positions_from_predictions(preds[:, j]), r).net_returns for j in range(k)]
    )
    return dates, r, preds, nets


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_noise_after_a_sweep_is_not_tradeable(seed: int) -> None:
    dates, r, preds, nets = _sweep(1000, 8, seed)
    sharpes = nets.mean(0) / nets.std(0, ddof=1) * np.sqrt(252)
    best = int(np.argmax(sharpes))  # the researcher picks the best-looking configuration
    peers = np.delete(nets, best, axis=1)
    ev = evaluate(
        dates=dates,
        asset_returns=r,
        y_true=r,
        predictions={"lstm": preds[:, best], **_baselines(r.size)},
        task="regression",
        settings=FAST,
        trials=8,
        trial_sharpes=sharpes,
        peer_net_returns=peers,
    )
    assert not ev.verdict.tradeable
    reasons = ev.verdict.reasons
    assert any("Diebold–Mariano" in m for m in reasons)
    assert any(m.startswith("DSR ") and "after 8 trials" in m for m in reasons)
    assert any(m.startswith("StepM does not select this run") for m in reasons)
    assert ev.to_json()["significance"]["trials"] == 8
    assert ev.to_json()["significance"]["stepm_selected"] is False
    assert ev.spa.n_models == 8 and ev.pbo.n_strategies == 8


def test_too_short_test_period() -> None:
    rng, dates, r = _market(120)
    pred = 0.5 * (r + rng.normal(0, 0.012, r.size))
    ev = evaluate(
        dates=dates,
        asset_returns=r,
        y_true=r,
        predictions={"lstm": pred},
        task="regression",
        settings=FAST,
    )
    assert not ev.verdict.tradeable
    assert ev.verdict.reasons[0] == "test period of 120 days is too short to decide (need ≥ 250)"


def test_json_keys_and_safety() -> None:
    rng, dates, r = _market(400)
    preds = {
        "lstm": rng.normal(0, 0.01, r.size),
        **_baselines(r.size),
        "baseline:persistence": np.roll(r, 1),
    }
    ev = evaluate(
        dates=dates,
        asset_returns=r,
        y_true=r,
        predictions=preds,
        task="regression",
        settings=FAST,
        seed_sharpes=np.array([0.1, -0.2, 0.4]),
    )
    js = ev.to_json()
    text = json.dumps(js, allow_nan=False)  # no NaN / inf anywhere
    assert json.loads(text) == js
    assert {"backtest", "tests", "significance", "verdict"} <= js.keys()
    assert {
        "sharpe_net",
        "sharpe_gross",
        "buy_hold_sharpe",
        "max_drawdown",
        "turnover",
        "cost_bps",
    } <= js["backtest"].keys()
    assert {"dm_p_vs_zero", "dm_p_vs_mean", "dm_p_vs_persistence", "pt_p", "hit_rate_p"} <= js[
        "tests"
    ].keys()
    assert {"psr", "dsr", "trials", "spa_p"} <= js["significance"].keys()
    assert isinstance(js["verdict"]["tradeable"], bool) and js["verdict"]["reasons"]
    assert js["backtest"]["cost_bps"] == 5.0
    assert js["backtest"]["start"] == "2012-01-02"
    assert js["significance"]["pbo"] is None and js["significance"]["pbo_reason"]
    assert js["significance"]["seed_spread"]["n"] == 3
    assert js["backtest"]["strategies"]["baseline:zero"]["total_return"] == 0.0
    # the daily series stay on the object for the report
    assert ev.net_returns.shape == ev.positions.shape == ev.buy_hold_returns.shape == (400,)
    assert list(ev.frame().columns)[:2] == ["prediction", "position"]


def test_classification_uses_probabilities() -> None:
    rng, dates, r = _market(600)
    labels = (r > 0).astype(float)
    prob = np.clip(0.5 + 20 * (r + rng.normal(0, 0.012, r.size)), 0.01, 0.99)
    ev = evaluate(
        dates=dates,
        asset_returns=r,
        y_true=labels,
        predictions={"lstm": prob, "baseline:always_up": np.full(r.size, 0.6)},
        task="classification",
        settings=FAST,
    )
    assert set(ev.dm) == {"zero", "always_up"}  # zero = the 0.5 no-information forecast
    assert ev.hit.hit_rate > 0.6
    np.testing.assert_array_equal(ev.positions, np.sign(prob - 0.5))


def test_trials_never_below_visible_runs() -> None:
    _, dates, r = _market(300, 4)
    rng = np.random.default_rng(9)
    peers = rng.normal(0, 0.01, (300, 4))
    ev = evaluate(
        dates=dates,
        asset_returns=r,
        y_true=r,
        predictions={"lstm": rng.normal(0, 0.01, 300)},
        task="regression",
        settings=FAST,
        trials=1,
        peer_net_returns=peers,
    )
    assert ev.dsr.trials == 5
    assert ev.dsr.variance_source.startswith("trial_sharpes")


def test_bad_inputs() -> None:
    _, dates, r = _market(300)
    with pytest.raises(DataError):
        evaluate(
            dates=dates, asset_returns=r, y_true=r, predictions={"lstm": r[:-1]}, task="regression"
        )
    with pytest.raises(DataError):
        evaluate(dates=dates, asset_returns=r, y_true=r, predictions={"gru": r}, task="regression")
    with pytest.raises(ConfigError):
        evaluate(dates=dates, asset_returns=r, y_true=r, predictions={"lstm": r}, task="rank")


def test_settings_from_config() -> None:
    from lstm_madness.experiment.config import load_config
    from lstm_madness.experiment.summary import evaluation_settings

    cfg = ExperimentConfig()
    s = evaluation_settings(cfg, seed=3)
    assert (s.rule, s.cost_bps, s.min_test_days, s.seed) == ("sign", 5.0, 250, 3)
    assert s.thresholds.min_dsr == cfg.evaluation.min_dsr
    assert evaluation_settings(cfg).seed == 0 and evaluation_settings(cfg).horizon == 1
    other = load_config(
        None, ["target.horizon=2", "backtest.top_k=3", "evaluation.trials_mode=effective"]
    )
    s = evaluation_settings(other)
    assert (s.horizon, s.top_k, s.trials_mode) == (2, 3, "effective")
    assert EvaluationSettings().cost_bps == cfg.backtest.cost_bps  # one default


def test_jsonable() -> None:
    out = jsonable(
        {
            "a": np.float64("nan"),
            "b": np.int64(3),
            "c": (np.inf, 1.5),
            "d": np.datetime64("2020-01-02"),
            "e": np.bool_(True),
        }
    )
    assert out == {"a": None, "b": 3, "c": [None, 1.5], "d": "2020-01-02", "e": True}


def test_memo_shares_baselines_and_changes_nothing() -> None:
    _rng, dates, r = _market(600)
    base = {**_baselines(r.size), "baseline:persistence": np.roll(r, 1)}
    memo: dict = {}
    for seed in range(3):
        pred = np.random.default_rng(seed).normal(0, 0.01, r.size)
        common = dict(dates=dates, asset_returns=r, y_true=r, task="regression", settings=FAST)
        alone = evaluate(predictions={"lstm": pred, **base}, **common).to_json()
        shared = evaluate(predictions={"lstm": pred, **base}, memo=memo, **common)
        assert json.dumps(shared.to_json(), sort_keys=True) == json.dumps(alone, sort_keys=True)
    # one buy-and-hold backtest, one backtest and one set of metrics per baseline
    assert sorted(k[0] for k in memo) == ["backtest"] * 3 + ["buy_and_hold"] + ["metrics"] * 3
    other = evaluate(
        predictions={"lstm": pred, **base, "baseline:zero": np.full(r.size, 1e-4)},
        memo=memo,
        **common,
    )
    assert other.baselines["baseline:zero"].net.total_return != 0.0  # a new entry
    assert len(memo) == 9
