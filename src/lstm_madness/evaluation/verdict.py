"""The verdict: is the strategy tradeable, out of sample and net of costs?

``TRADEABLE`` requires every *required* check to pass:

1. the test period has at least ``min_test_days`` days (otherwise it is too short to decide);
2. net Sharpe > buy-and-hold's net Sharpe on the same dates;
3. it beats the zero baseline: its forecast loss is significantly lower than the
   no-information forecast's (Diebold–Mariano, one-sided p < ``alpha``) **and** its net
   P&L over the test period is positive (the zero baseline's strategy is flat: P&L 0);
4. Deflated Sharpe Ratio >= ``min_dsr`` (counting every configuration tried);
5. Hansen's SPA p-value < ``max_spa_p`` (all runs on this target and period against
   buy-and-hold).

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
    max_spa_p: float = 0.05  #: SPA p-value must be below this
    alpha: float = 0.05  #: level of the forecast tests (DM vs zero, hit rate, PT)


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
    """

    tradeable: bool
    checks: tuple[Check, ...]
    cautions: tuple[str, ...] = ()

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
            "checks": [c.to_dict() for c in self.checks],
        }

    def summary(self) -> str:
        lines = [self.label]
        lines += [f"  ✗ {m}" for m in self.reasons]
        lines += [f"  ! {m}" for m in self.warnings]
        lines += [f"  ✓ {m}" for m in self.passed]
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


def _zero_checks(dm_p: float | None, net_pnl: float | None, alpha: float) -> list[Check]:
    if not _ok(dm_p):
        dm = Check(
            "beats_zero_forecast",
            False,
            "forecast loss vs the zero forecast could not be tested (DM p-value missing)",
        )
    elif dm_p < alpha:
        dm = Check(
            "beats_zero_forecast",
            True,
            f"forecast loss is significantly below the "
            f"zero forecast's (Diebold–Mariano p = {_p(dm_p)} < {alpha:g})",
        )
    else:
        dm = Check(
            "beats_zero_forecast",
            False,
            f"forecast loss is not significantly below "
            f"the zero forecast's (Diebold–Mariano p = {_p(dm_p)} ≥ {alpha:g})",
        )
    if not _ok(net_pnl):
        pnl = Check("positive_net_pnl", False, "net P&L is undefined")
    else:
        word = ">" if net_pnl > 0 else "≤"
        pnl = Check(
            "positive_net_pnl",
            net_pnl > 0,
            f"net P&L {net_pnl:+.2%} {word} 0 (the zero baseline stays flat)",
        )
    return [dm, pnl]


def _dsr_check(dsr: float | None, trials: float, min_dsr: float) -> Check:
    tr = f"{trials:.4g} trial" + ("s" if trials != 1 else "")
    if not _ok(dsr):
        return Check("deflated_sharpe", False, f"DSR could not be computed ({tr})")
    word = "≥" if dsr >= min_dsr else "<"
    return Check(
        "deflated_sharpe", dsr >= min_dsr, f"DSR {dsr:.2f} after {tr} ({word} {min_dsr:g} needed)"
    )


def _spa_check(spa_p: float | None, n_models: int | None, max_p: float) -> Check:
    what = f" ({n_models} strateg{'y' if n_models == 1 else 'ies'})" if n_models else ""
    if not _ok(spa_p):
        return Check("spa", False, f"SPA test against buy-and-hold is missing{what}")
    if spa_p < max_p:
        return Check("spa", True, f"SPA p-value {_p(spa_p)} < {max_p:g} against buy-and-hold{what}")
    return Check(
        "spa",
        False,
        f"SPA p-value {_p(spa_p)} ≥ {max_p:g}: no strategy{what} reliably beats buy-and-hold",
    )


def _supporting(
    hit_rate: float | None, hit_p: float | None, pt_p: float | None, alpha: float
) -> list[Check]:
    out = []
    if _ok(hit_rate) and _ok(hit_p):
        sig = hit_p < alpha
        out.append(
            Check(
                "hit_rate",
                sig,
                f"hit rate {hit_rate:.1%} is {'' if sig else 'not '}significant (p = {_p(hit_p)})",
                False,
            )
        )
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
        Each with ``r2_oos`` (fraction, may be None/NaN), ``hit_rate`` (fraction) and ``n``
        (test days), as :func:`lstm_madness.evaluation.metrics.forecast_metrics` returns.

    Returns
    -------
    list of str
        One message per offending figure and model, in the mapping's order.
    """
    out: list[str] = []
    for model, m in model_metrics.items():
        r2, hit, n = m.get("r2_oos"), m.get("hit_rate"), m.get("n")
        if _ok(r2) and r2 > TOO_GOOD_R2_OOS:
            out.append(
                f"too good to be true: {model} has an out-of-sample R² of {r2:.1%} (above "
                f"{TOO_GOOD_R2_OOS:.0%}; published figures for next-day returns are a "
                f"fraction of a percent): {_LEAK_HINT}"
            )
        if _ok(hit) and n is not None and n >= TOO_GOOD_MIN_DAYS and hit > TOO_GOOD_HIT_RATE:
            out.append(
                f"too good to be true: {model} calls the direction right on {hit:.1%} of "
                f"{n} days (above {TOO_GOOD_HIT_RATE:.0%}): {_LEAK_HINT}"
            )
    return out


def decide(
    *,
    n_days: int,
    sharpe_net: float | None,
    buy_hold_sharpe: float | None,
    net_pnl: float | None,
    dm_p_vs_zero: float | None,
    dsr: float | None,
    trials: float,
    spa_p: float | None,
    spa_models: int | None = None,
    hit_rate: float | None = None,
    hit_rate_p: float | None = None,
    pt_p: float | None = None,
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
        Deflated Sharpe Ratio after ``trials`` configurations.
    spa_p : float
        Hansen's SPA consistent p-value; ``spa_models`` strategies were tested.
    hit_rate, hit_rate_p, pt_p : float, optional
        Supporting evidence: direction hit rate and its binomial p-value, and the
        Pesaran–Timmermann p-value.
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
    checks: list[Check] = []
    if n_days < min_test_days:
        checks.append(
            Check(
                "test_length",
                False,
                f"test period of {n_days} days is too short to decide (need ≥ {min_test_days})",
            )
        )
    else:
        checks.append(
            Check("test_length", True, f"test period of {n_days} days (≥ {min_test_days})")
        )
    checks.append(_sharpe_check(sharpe_net, buy_hold_sharpe))
    checks.extend(_zero_checks(dm_p_vs_zero, net_pnl, t.alpha))
    checks.append(_dsr_check(dsr, trials, t.min_dsr))
    checks.append(_spa_check(spa_p, spa_models, t.max_spa_p))
    checks.extend(_supporting(hit_rate, hit_rate_p, pt_p, t.alpha))
    tradeable = all(c.passed for c in checks if c.required)
    cautions = tuple(too_good_warnings(model_metrics or {}))
    return Verdict(tradeable, tuple(checks), cautions)
