"""The verdict: is the strategy tradeable, out of sample and net of costs?

``TRADEABLE`` requires every *required* check to pass:

1. the test period has at least ``min_test_days`` days (otherwise it is too short to decide);
2. net Sharpe > buy-and-hold's net Sharpe on the same dates;
3. it beats the no-information forecast: its forecast loss is significantly lower
   (Diebold–Mariano, one-sided p < ``alpha``) than the zero return forecast's (a return
   forecast) or, for a direction forecast, the Brier score of its calls is lower than
   both the always-up and the majority baselines' (hard probabilities both), **and** its
   net P&L over the test period is positive (a forecast without information takes no
   position: P&L 0);
4. Deflated Sharpe Ratio >= ``min_dsr`` (counting every distinct forecast tried);
5. Romano–Wolf StepM selects this run among the strategies of its trial set that beat
   buy-and-hold, with the family-wise error rate at ``fwer``.

Hansen's SPA p-value is the trial set's, not the run's: "some strategy in this trial set
beats buy-and-hold". It is stated among the verdict's :attr:`Verdict.notes`, never as a
run's pass or fail.

*Supporting* checks (the hit rate's binomial test, Pesaran–Timmermann) are reported, and
listed among the reasons of a NOT TRADEABLE verdict, but do not decide it. A check whose
number is missing (``None``/``nan``) fails and says so.

*Too good to be true*: next-day returns are nearly unpredictable (published out-of-sample R²
on daily index returns is a fraction of a percent). When any model of the run -- the judged
one or a baseline -- shows R²_oos above :data:`TOO_GOOD_R2_OOS`, or a hit rate above
:data:`TOO_GOOD_HIT_RATE` over at least :data:`TOO_GOOD_MIN_DAYS` days,
:attr:`Verdict.warnings` names the figure and the model and asks to check for the classic
off-by-one-day leak. Such warnings never change the label and are kept whatever it is.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

__all__ = [
    "TOO_GOOD_HIT_RATE",
    "TOO_GOOD_MIN_DAYS",
    "TOO_GOOD_R2_OOS",
    "Check",
    "Verdict",
    "VerdictThresholds",
    "decide",
    "spa_note",
    "too_good_warnings",
]

#: Out-of-sample R² (Campbell–Thompson, vs the historical mean) above which a next-day
#: forecast is too good to be true.
TOO_GOOD_R2_OOS = 0.05
#: Hit rate (share of correctly called directions) above which a next-day forecast is too
#: good to be true, over at least :data:`TOO_GOOD_MIN_DAYS` test days.
TOO_GOOD_HIT_RATE = 0.60
#: Fewest test days for the hit-rate warning (fewer days: a high rate is plausible luck).
TOO_GOOD_MIN_DAYS = 250
_LEAK_HINT = (
    "check that a prediction dated t uses only data up to the close of t "
    "(the classic off-by-one-day leak)"
)


@dataclass(frozen=True)
class VerdictThresholds:
    """Thresholds of the verdict (``[evaluation]`` in the experiment config)."""

    min_dsr: float = 0.95  #: Deflated Sharpe Ratio needed
    fwer: float = 0.05  #: family-wise error rate of StepM over the trial set
    alpha: float = 0.05  #: level of the forecast tests (DM, hit rate, PT)


@dataclass(frozen=True)
class Check:
    """One condition: its name, whether it passed, a plain-words message, and whether it
    decides the verdict (``required``) or only supports it."""

    name: str
    passed: bool
    message: str
    required: bool = True

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Verdict:
    """Outcome of :func:`decide`.

    ``reasons`` are the failed checks in plain words (required first, then supporting;
    empty when tradeable), ``passed`` the passing ones, ``warnings`` the ``cautions``
    (too-good-to-be-true figures, whatever the label) followed by the failed supporting
    checks of a TRADEABLE strategy (a NOT TRADEABLE one lists those among its reasons).
    ``notes`` state what the trial set as a whole says (SPA); they decide nothing.
    """

    tradeable: bool
    checks: tuple[Check, ...]
    cautions: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()

    @property
    def label(self) -> str:
        return "TRADEABLE" if self.tradeable else "NOT TRADEABLE"

    @property
    def reasons(self) -> list[str]:
        if self.tradeable:
            return []
        failed = [c for c in self.checks if not c.passed]
        return [c.message for c in sorted(failed, key=lambda c: not c.required)]

    @property
    def passed(self) -> list[str]:
        return [c.message for c in self.checks if c.passed]

    @property
    def warnings(self) -> list[str]:
        supporting = [c.message for c in self.checks if not c.passed and not c.required]
        return [*self.cautions, *(supporting if self.tradeable else [])]

    def to_dict(self) -> dict[str, Any]:
        return {
            "tradeable": self.tradeable,
            "label": self.label,
            "reasons": self.reasons,
            "passed": self.passed,
            "warnings": self.warnings,
            "notes": list(self.notes),
            "checks": [c.to_dict() for c in self.checks],
        }

    def summary(self) -> str:
        lines = [self.label]
        lines += [f"  ✗ {m}" for m in self.reasons]
        lines += [f"  ! {m}" for m in self.warnings]
        lines += [f"  ✓ {m}" for m in self.passed]
        lines += [f"  · {m}" for m in self.notes]
        return "\n".join(lines)


def _ok(x: float | None) -> bool:
    return x is not None and math.isfinite(x)


def _p(p: float) -> str:
    if p == 0:
        return "≈ 0"  # e.g. no bootstrap replication reached the statistic
    return f"{p:.2g}" if p < 0.001 else f"{p:.3f}" if p < 0.01 else f"{p:.2f}"


def _sharpe_check(sharpe_net: float | None, buy_hold: float | None) -> Check:
    if not (_ok(sharpe_net) and _ok(buy_hold)):
        return Check(
            "beats_buy_and_hold",
            False,
            f"net Sharpe ({sharpe_net}) or buy-and-hold Sharpe ({buy_hold}) is undefined",
        )
    if sharpe_net > buy_hold:
        return Check(
            "beats_buy_and_hold", True, f"net Sharpe {sharpe_net:.2f} > buy-and-hold {buy_hold:.2f}"
        )
    return Check(
        "beats_buy_and_hold", False, f"net Sharpe {sharpe_net:.2f} ≤ buy-and-hold {buy_hold:.2f}"
    )


def _beats_check(name: str, what: str, pvalues: Mapping[str, float | None], alpha: float) -> Check:
    """Passes when the forecast's loss is significantly below every benchmark forecast's
    (one-sided Diebold–Mariano p < ``alpha`` against each of ``pvalues``)."""
    if not pvalues or not all(_ok(p) for p in pvalues.values()):
        missing = ", ".join(k for k, p in pvalues.items() if not _ok(p)) or "no benchmark"
        return Check(name, False, f"{what} could not be tested (DM p-value missing: {missing})")
    ps = {k: float(p) for k, p in pvalues.items()}  # type: ignore[arg-type]
    passed = max(ps.values()) < alpha
    parts = [
        f"{k}'s ({'Diebold–Mariano ' if i == 0 else ''}p = {_p(p)})"
        for i, (k, p) in enumerate(ps.items())
    ]
    joined = " and ".join(parts)
    if len(ps) == 1:
        joined = f"{joined[:-1]} {'<' if passed else '≥'} {alpha:g})"
    else:
        joined += f"; {'all' if passed else 'each must be'} < {alpha:g}"
    word = "is significantly below" if passed else "is not significantly below"
    return Check(name, passed, f"{what} {word} {joined}")


def _forecast_checks(
    task: str,
    dm_p_vs_zero: float | None,
    dm_p_vs_direction: Mapping[str, float | None] | None,
    net_pnl: float | None,
    alpha: float,
) -> list[Check]:
    if task == "classification" and dm_p_vs_direction:
        beats = _beats_check(
            "beats_direction_baselines",
            "the Brier score of its calls",
            dict(dm_p_vs_direction),
            alpha,
        )
        flat = "a probability of 0.5 takes no position"
    else:
        what = "no-information forecast (0.5)" if task == "classification" else "zero forecast"
        beats = _beats_check(
            "beats_zero_forecast", "forecast loss", {f"the {what}": dm_p_vs_zero}, alpha
        )
        flat = "the zero baseline stays flat"
    if not _ok(net_pnl):
        pnl = Check("positive_net_pnl", False, "net P&L is undefined")
    else:
        word = ">" if net_pnl > 0 else "≤"
        pnl = Check("positive_net_pnl", net_pnl > 0, f"net P&L {net_pnl:+.2%} {word} 0 ({flat})")
    return [beats, pnl]


def _dsr_check(dsr: float | None, trials: float, min_dsr: float) -> Check:
    tr = f"{trials:.4g} trial" + ("s" if trials != 1 else "")
    if not _ok(dsr):
        return Check("deflated_sharpe", False, f"DSR could not be computed ({tr})")
    word = "≥" if dsr >= min_dsr else "<"
    return Check(
        "deflated_sharpe", dsr >= min_dsr, f"DSR {dsr:.2f} after {tr} ({word} {min_dsr:g} needed)"
    )


def _strategies(n: int | None) -> str:
    return f"{n} distinct strateg{'y' if n == 1 else 'ies'}"


def _stepm_check(
    selected: bool | None, superior: int | None, n_models: int | None, fwer: float
) -> Check:
    of = f"{superior} of {_strategies(n_models)}" if n_models else "none"
    level = f"family-wise error {fwer:.0%}"
    if selected is None or superior is None:
        return Check("stepm", False, "StepM test against buy-and-hold is missing")
    if selected:
        return Check(
            "stepm",
            True,
            f"StepM selects this run as beating buy-and-hold ({of} in its trial set "
            f"selected; {level})",
        )
    return Check(
        "stepm",
        False,
        f"StepM does not select this run as beating buy-and-hold ({of} in its trial set "
        f"selected; {level})",
    )


def spa_note(spa_p: float | None, n_models: int | None) -> str:
    """The trial set's SPA test in words (a note, never a run's pass or fail)."""
    of = f"trial set of {_strategies(n_models)}" if n_models else "trial set"
    claim = "some strategy in this trial set beats buy-and-hold"
    if not _ok(spa_p):
        return f"{of}: the SPA test is missing"
    p = _p(spa_p)
    return f"{of}: {claim}? SPA p {p if p.startswith('≈') else '= ' + p}"


def _supporting(
    hit_rate: float | None,
    hit_p: float | None,
    pt_p: float | None,
    alpha: float,
    hit_test: str = "binomial",
) -> list[Check]:
    out = []
    if _ok(hit_rate) and _ok(hit_p):
        sig = hit_p < alpha
        how = ", test clustered by day" if hit_test == "days" else ""
        word = "" if sig else "not "
        message = f"hit rate {hit_rate:.1%} is {word}significant (p = {_p(hit_p)}{how})"
        out.append(Check("hit_rate", sig, message, False))
    if pt_p is not None:
        if not _ok(pt_p):
            out.append(
                Check(
                    "pesaran_timmermann",
                    False,
                    "directional accuracy cannot be "
                    "tested: the forecast always calls the same direction",
                    False,
                )
            )
        else:
            sig = pt_p < alpha
            out.append(
                Check(
                    "pesaran_timmermann",
                    sig,
                    f"directional accuracy is {'' if sig else 'not '}better than "
                    f"chance by Pesaran–Timmermann (p = {_p(pt_p)})",
                    False,
                )
            )
    return out


def too_good_warnings(model_metrics: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """Warnings for figures too good to be true for next-day forecasts.

    Parameters
    ----------
    model_metrics : mapping of model name to its metrics
        Each with ``r2_oos`` (fraction, may be None/NaN), ``hit_rate`` (fraction) and
        ``hit_n`` (predictions that call a direction; ``n``, the test samples, if absent)
        (test days), as :func:`lstm_madness.evaluation.metrics.forecast_metrics` returns.

    Returns
    -------
    list of str
        One message per offending figure and model, in the mapping's order.
    """
    out: list[str] = []
    for model, m in model_metrics.items():
        r2, hit = m.get("r2_oos"), m.get("hit_rate")
        n = m.get("hit_n", m.get("n"))
        if _ok(r2) and r2 > TOO_GOOD_R2_OOS:
            out.append(
                f"too good to be true: {model} has an out-of-sample R² of {r2:.1%} (above "
                f"{TOO_GOOD_R2_OOS:.0%}; published figures for next-day returns are a "
                f"fraction of a percent): {_LEAK_HINT}"
            )
        if _ok(hit) and n is not None and n >= TOO_GOOD_MIN_DAYS and hit > TOO_GOOD_HIT_RATE:
            out.append(
                f"too good to be true: {model} calls the direction right on {hit:.1%} of "
                f"the {n} predictions that call one (above {TOO_GOOD_HIT_RATE:.0%}): {_LEAK_HINT}"
            )
    return out


def _length_check(n_days: int, min_test_days: int) -> Check:
    if n_days < min_test_days:
        return Check(
            "test_length",
            False,
            f"test period of {n_days} days is too short to decide (need ≥ {min_test_days})",
        )
    return Check("test_length", True, f"test period of {n_days} days (≥ {min_test_days})")


def decide(
    *,
    n_days: int,
    sharpe_net: float | None,
    buy_hold_sharpe: float | None,
    net_pnl: float | None,
    dm_p_vs_zero: float | None,
    dsr: float | None,
    trials: float,
    stepm_selected: bool | None,
    stepm_superior: int | None,
    stepm_models: int | None,
    spa_p: float | None = None,
    spa_models: int | None = None,
    task: str = "regression",
    dm_p_vs_direction: Mapping[str, float | None] | None = None,
    hit_rate: float | None = None,
    hit_rate_p: float | None = None,
    pt_p: float | None = None,
    hit_rate_test: str = "binomial",
    thresholds: VerdictThresholds = VerdictThresholds(),
    min_test_days: int = 250,
    model_metrics: Mapping[str, Mapping[str, Any]] | None = None,
) -> Verdict:
    """Decide TRADEABLE / NOT TRADEABLE from out-of-sample, net-of-cost numbers.

    Parameters
    ----------
    n_days : int
        Test days.
    sharpe_net, buy_hold_sharpe : float
        Annualized net Sharpe ratios of the strategy and of buy-and-hold (same dates).
    net_pnl : float
        Net total return of the strategy over the test period (fraction).
    dm_p_vs_zero : float
        One-sided Diebold–Mariano p-value, model vs the no-information (zero) forecast.
    dsr : float
        Deflated Sharpe Ratio after ``trials`` distinct forecasts.
    stepm_selected, stepm_superior, stepm_models : bool, int, int
        Whether StepM selects this run as beating buy-and-hold, how many of the trial
        set's ``stepm_models`` distinct strategies it selects.
    spa_p : float, optional
        The trial set's SPA consistent p-value over ``spa_models`` strategies (a note).
    task : {"regression", "classification"}
    dm_p_vs_direction : mapping, optional
        For a direction forecast: one-sided DM p-values of its Brier score against the
        always-up and majority baselines (by name); the forecast condition then requires
        both to be below ``alpha`` instead of the test against the zero forecast.
    hit_rate, hit_rate_p, pt_p : float, optional
        Supporting evidence: direction hit rate and its p-value, and the
        Pesaran–Timmermann p-value.
    hit_rate_test : {"binomial", "days"}
        How ``hit_rate_p`` was computed: the binomial test, or clustered by day (a panel);
        the message says the second.
    thresholds : VerdictThresholds
    min_test_days : int, default 250
        Shorter test periods are too short to decide (the verdict is NOT TRADEABLE).
    model_metrics : mapping of model name to metrics, optional
        Every model's forecast metrics, for the too-good-to-be-true warnings
        (:func:`too_good_warnings`); they never change the label.

    Returns
    -------
    Verdict
    """
    t = thresholds
    checks = [_length_check(n_days, min_test_days), _sharpe_check(sharpe_net, buy_hold_sharpe)]
    checks.extend(_forecast_checks(task, dm_p_vs_zero, dm_p_vs_direction, net_pnl, t.alpha))
    checks.append(_dsr_check(dsr, trials, t.min_dsr))
    checks.append(_stepm_check(stepm_selected, stepm_superior, stepm_models, t.fwer))
    checks.extend(_supporting(hit_rate, hit_rate_p, pt_p, t.alpha, hit_rate_test))
    tradeable = all(c.passed for c in checks if c.required)
    cautions = tuple(too_good_warnings(model_metrics or {}))
    return Verdict(tradeable, tuple(checks), cautions, (spa_note(spa_p, spa_models),))
