"""The verdict: every condition, its plain-words reason, and the too-short test period."""

from __future__ import annotations

import math

import pytest

from lstm_madness.evaluation.verdict import VerdictThresholds, decide

GOOD = dict(n_days=1000, sharpe_net=1.4, buy_hold_sharpe=0.35, net_pnl=0.42,
            dm_p_vs_zero=0.001, dsr=0.98, trials=12, spa_p=0.01, spa_models=12,
            hit_rate=0.56, hit_rate_p=0.0001, pt_p=0.0002)


def test_all_conditions_met_is_tradeable() -> None:
    v = decide(**GOOD)
    assert v.tradeable and v.label == "TRADEABLE"
    assert v.reasons == [] and v.warnings == []
    assert len(v.passed) == 8
    assert any("net Sharpe 1.40 > buy-and-hold 0.35" in m for m in v.passed)


@pytest.mark.parametrize(("change", "expected"), [
    (dict(sharpe_net=0.12), "net Sharpe 0.12 ≤ buy-and-hold 0.35"),
    (dict(dm_p_vs_zero=0.41), "Diebold–Mariano p = 0.41 ≥ 0.05"),
    (dict(net_pnl=-0.031), "net P&L -3.10% ≤ 0"),
    (dict(dsr=0.41, trials=37), "DSR 0.41 after 37 trials"),
    (dict(spa_p=0.23), "SPA p-value 0.23 ≥ 0.05"),
    (dict(n_days=120), "test period of 120 days is too short to decide (need ≥ 250)"),
    (dict(dsr=math.nan), "DSR could not be computed"),
    (dict(spa_p=None), "SPA test against buy-and-hold is missing"),
])
def test_each_failed_condition_is_reported(change: dict, expected: str) -> None:
    v = decide(**{**GOOD, **change})
    assert not v.tradeable and v.label == "NOT TRADEABLE"
    assert len(v.reasons) == 1
    assert expected in v.reasons[0]


def test_supporting_checks_do_not_decide_but_are_reported() -> None:
    v = decide(**{**GOOD, "hit_rate": 0.508, "hit_rate_p": 0.31})
    assert v.tradeable
    assert v.warnings == ["hit rate 50.8% is not significant (p = 0.31)"]
    bad = decide(**{**GOOD, "hit_rate": 0.508, "hit_rate_p": 0.31, "sharpe_net": 0.1,
                    "pt_p": math.nan})
    assert not bad.tradeable
    assert bad.reasons[0].startswith("net Sharpe 0.10")  # required ones first
    assert "hit rate 50.8% is not significant (p = 0.31)" in bad.reasons
    assert any("always calls the same direction" in r for r in bad.reasons)


def test_every_failure_listed_and_passes_kept() -> None:
    v = decide(n_days=100, sharpe_net=-0.3, buy_hold_sharpe=0.4, net_pnl=-0.2,
               dm_p_vs_zero=0.9, dsr=0.02, trials=5, spa_p=0.8, hit_rate=0.49, hit_rate_p=0.7,
               pt_p=0.6)
    assert len(v.reasons) == 8 and v.passed == []
    d = v.to_dict()
    assert d["tradeable"] is False and d["reasons"] == v.reasons
    assert "NOT TRADEABLE" in v.summary()


def test_thresholds_are_configurable() -> None:
    lenient = VerdictThresholds(min_dsr=0.5, max_spa_p=0.3, alpha=0.5)
    args = {**GOOD, "dsr": 0.6, "spa_p": 0.2, "dm_p_vs_zero": 0.3}
    assert not decide(**args).tradeable
    assert decide(**args, thresholds=lenient).tradeable
    assert decide(**{**GOOD, "n_days": 120}, min_test_days=100).tradeable
