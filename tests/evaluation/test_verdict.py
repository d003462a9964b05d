"""The verdict: every condition, its plain-words reason, and the too-short test period."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from lstm_madness.evaluation.study import EvaluationSettings, evaluate
from lstm_madness.evaluation.verdict import (
    TOO_GOOD_HIT_RATE,
    TOO_GOOD_MIN_DAYS,
    TOO_GOOD_R2_OOS,
    VerdictThresholds,
    decide,
    too_good_warnings,
)

GOOD = dict(
    n_days=1000,
    sharpe_net=1.4,
    buy_hold_sharpe=0.35,
    net_pnl=0.42,
    dm_p_vs_zero=0.001,
    dsr=0.98,
    trials=12,
    stepm_selected=True,
    stepm_superior=2,
    stepm_models=12,
    spa_p=0.01,
    spa_models=12,
    hit_rate=0.56,
    hit_rate_p=0.0001,
    pt_p=0.0002,
)


def test_all_conditions_met_is_tradeable() -> None:
    v = decide(**GOOD)
    assert v.tradeable and v.label == "TRADEABLE"
    assert v.reasons == [] and v.warnings == []
    assert len(v.passed) == 8
    assert any("net Sharpe 1.40 > buy-and-hold 0.35" in m for m in v.passed)


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (dict(sharpe_net=0.12), "net Sharpe 0.12 ≤ buy-and-hold 0.35"),
        (dict(dm_p_vs_zero=0.41), "Diebold–Mariano p = 0.41 ≥ 0.05"),
        (dict(net_pnl=-0.031), "net P&L -3.10% ≤ 0"),
        (dict(dsr=0.41, trials=37), "DSR 0.41 after 37 trials"),
        (
            dict(stepm_selected=False, stepm_superior=1),
            "StepM does not select this run as beating buy-and-hold (1 of 12 distinct "
            "strategies in its trial set selected; family-wise error 5%)",
        ),
        (dict(n_days=120), "test period of 120 days is too short to decide (need ≥ 250)"),
        (dict(dsr=math.nan), "DSR could not be computed"),
        (dict(stepm_selected=None), "StepM test against buy-and-hold is missing"),
    ],
)
def test_each_failed_condition_is_reported(change: dict, expected: str) -> None:
    v = decide(**{**GOOD, **change})
    assert not v.tradeable and v.label == "NOT TRADEABLE"
    assert len(v.reasons) == 1
    assert expected in v.reasons[0]


def test_spa_is_the_trial_sets_note_never_a_runs_pass_or_fail() -> None:
    """One strong member makes the trial set's SPA reject; a losing member of the same set
    is still not tradeable on that account: StepM does not select it."""
    loser = decide(
        **{**GOOD, "stepm_selected": False, "stepm_superior": 1, "spa_p": 0.0, "dsr": 0.99}
    )
    assert not loser.tradeable
    assert [c.name for c in loser.checks if not c.passed] == ["stepm"]
    assert not any("SPA" in m for m in loser.passed + loser.reasons)
    assert loser.notes == (
        "trial set of 12 distinct strategies: some strategy in this trial set beats "
        "buy-and-hold? SPA p ≈ 0",
    )
    assert loser.to_dict()["notes"] == list(loser.notes)
    assert "  · trial set of 12" in loser.summary()


def test_a_direction_forecast_is_judged_against_always_up_and_majority() -> None:
    args = {**GOOD, "task": "classification", "dm_p_vs_zero": 0.001}
    weak = decide(**args, dm_p_vs_direction={"always-up": 0.2, "majority": 0.01})
    assert not weak.tradeable
    (reason,) = weak.reasons
    assert reason.startswith("the Brier score of its calls is not significantly below always-up's")
    assert "majority's (p = 0.01)" in reason and "zero forecast" not in reason
    strong = decide(**args, dm_p_vs_direction={"always-up": 0.01, "majority": 0.02})
    assert strong.tradeable
    assert any(m.startswith("the Brier score of its calls is significantly") for m in strong.passed)


def test_a_panels_hit_rate_says_its_test_is_clustered_by_day() -> None:
    v = decide(**{**GOOD, "hit_rate": 0.506, "hit_rate_p": 1.8e-11, "hit_rate_test": "days"})
    assert "hit rate 50.6% is significant (p = 1.8e-11, test clustered by day)" in v.passed


def test_supporting_checks_do_not_decide_but_are_reported() -> None:
    v = decide(**{**GOOD, "hit_rate": 0.508, "hit_rate_p": 0.31})
    assert v.tradeable
    assert v.warnings == ["hit rate 50.8% is not significant (p = 0.31)"]
    bad = decide(
        **{**GOOD, "hit_rate": 0.508, "hit_rate_p": 0.31, "sharpe_net": 0.1, "pt_p": math.nan}
    )
    assert not bad.tradeable
    assert bad.reasons[0].startswith("net Sharpe 0.10")  # required ones first
    assert "hit rate 50.8% is not significant (p = 0.31)" in bad.reasons
    assert any("always calls the same direction" in r for r in bad.reasons)


def test_every_failure_listed_and_passes_kept() -> None:
    v = decide(
        n_days=100,
        sharpe_net=-0.3,
        buy_hold_sharpe=0.4,
        net_pnl=-0.2,
        dm_p_vs_zero=0.9,
        dsr=0.02,
        trials=5,
        stepm_selected=False,
        stepm_superior=0,
        stepm_models=5,
        spa_p=0.8,
        hit_rate=0.49,
        hit_rate_p=0.7,
        pt_p=0.6,
    )
    assert len(v.reasons) == 8 and v.passed == []
    d = v.to_dict()
    assert d["tradeable"] is False and d["reasons"] == v.reasons
    assert "NOT TRADEABLE" in v.summary()


def test_thresholds_are_configurable() -> None:
    lenient = VerdictThresholds(min_dsr=0.5, fwer=0.3, alpha=0.5)
    args = {**GOOD, "dsr": 0.6, "dm_p_vs_zero": 0.3}
    assert not decide(**args).tradeable
    assert decide(**args, thresholds=lenient).tradeable
    assert decide(**{**GOOD, "n_days": 120}, min_test_days=100).tradeable


# ---------------------------------------------------------------- too good to be true


def _metrics(r2: float | None, hit: float, n: int) -> dict:
    return {"r2_oos": r2, "hit_rate": hit, "hit_n": n, "n": n}


def test_too_good_figures_are_named_with_the_model_and_the_leak_hint() -> None:
    metrics = {
        "gbm": _metrics(0.08, 0.55, 300),
        "baseline:mean": _metrics(0.0, 0.5, 300),
        "clf": _metrics(None, 0.62, 300),
    }
    warnings = too_good_warnings(metrics)
    assert len(warnings) == 2
    assert "gbm has an out-of-sample R² of 8.0% (above 5%" in warnings[0]
    assert (
        "clf calls the direction right on 62.0% of the 300 predictions that call one "
        "(above 60%)" in warnings[1]
    )
    assert all("prediction dated t uses only data up to the close of t" in w for w in warnings)
    assert all("off-by-one-day leak" in w for w in warnings)


def test_too_good_thresholds_are_strict_and_the_hit_rate_needs_enough_days() -> None:
    assert TOO_GOOD_R2_OOS == 0.05 and TOO_GOOD_HIT_RATE == 0.60 and TOO_GOOD_MIN_DAYS == 250
    assert too_good_warnings({"m": _metrics(0.05, 0.60, 1000)}) == []
    assert too_good_warnings({"m": _metrics(math.nan, 0.7, 249)}) == []
    assert len(too_good_warnings({"m": _metrics(0.051, 0.5, 20)})) == 1  # R²: any length
    assert len(too_good_warnings({"m": _metrics(0.0, 0.601, 250)})) == 1


def test_warnings_are_kept_whatever_the_label() -> None:
    metrics = {"lstm": _metrics(0.3, 0.7, 1000)}
    good = decide(**GOOD, model_metrics=metrics)
    assert good.tradeable and len(good.warnings) == 2
    bad = decide(
        **{**GOOD, "sharpe_net": 0.1, "hit_rate": 0.508, "hit_rate_p": 0.31}, model_metrics=metrics
    )
    assert not bad.tradeable
    assert bad.warnings == good.warnings  # too-good warnings stay on a NOT TRADEABLE verdict
    assert "hit rate 50.8% is not significant (p = 0.31)" in bad.reasons  # not duplicated
    assert bad.to_dict()["warnings"] == bad.warnings
    assert bad.summary().index("! too good to be true") > 0
    # a tradeable verdict lists the too-good warnings first, then failed supporting checks
    mixed = decide(**{**GOOD, "hit_rate": 0.508, "hit_rate_p": 0.31}, model_metrics=metrics)
    assert mixed.warnings[:2] == good.warnings
    assert mixed.warnings[2] == "hit rate 50.8% is not significant (p = 0.31)"


def _evaluate(pred: np.ndarray, r: np.ndarray):
    dates = pd.bdate_range("2012-01-02", periods=r.size).to_numpy()
    mean = np.full(r.size, 0.0003)
    return evaluate(
        dates=dates,
        asset_returns=r,
        y_true=r,
        task="regression",
        predictions={"lstm": pred, "baseline:zero": np.zeros(r.size), "baseline:mean": mean},
        settings=EvaluationSettings(bootstrap_reps=100, seed=0),
    )


def test_a_forecast_equal_to_the_realized_next_day_return_is_flagged() -> None:
    r = np.random.default_rng(0).normal(0.0003, 0.012, 600)
    ev = _evaluate(r.copy(), r)  # the classic leak: the forecast dated t *is* r(t -> t+1)
    flagged = [w for w in ev.verdict.warnings if w.startswith("too good to be true: lstm")]
    assert len(flagged) == 2  # R²_oos = 100% and a hit rate of 100%
    assert ev.to_json()["verdict"]["warnings"][:2] == flagged


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_ordinary_noise_is_not_flagged(seed: int) -> None:
    rng = np.random.default_rng(seed)
    r = rng.normal(0.0003, 0.012, 1000)
    ev = _evaluate(rng.normal(0, 0.001, r.size), r)
    assert not any("too good" in w for w in ev.verdict.warnings)
    assert not ev.verdict.tradeable
