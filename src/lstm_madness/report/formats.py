"""How a number reads, in the terminal and in the report: the one owner of formats.

Every table of ``madness`` (``runs list``, ``runs show``, ``compare``, ``sweep show``,
``symbols``) and the HTML report format their cells with these functions, so a Sharpe
ratio, a p-value or a date reads the same everywhere. Missing values (``None``, NaN)
read ``–``. Inputs are plain numbers as stored (returns and rates as fractions).
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping
from typing import Any

__all__ = [
    "MISSING",
    "at_finish_note",
    "bps",
    "count",
    "date",
    "fixed",
    "middle",
    "per_fold",
    "percent",
    "probability",
    "pvalue",
    "ratio",
    "scientific",
    "seconds",
    "stage_scope",
    "timestamp",
    "timing_line",
    "timing_rows",
    "total_scope",
    "truncate",
    "variance_source",
    "verdict_label",
    "yes_no",
]

#: Text of a missing value.
MISSING = "–"


def _finite(x: Any) -> float | None:
    """``x`` as a float, or ``None`` when missing; infinities are kept."""
    if x is None or isinstance(x, bool):
        return None
    try:
        value = float(x)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(value) else value


def _inf(value: float) -> str:
    return "∞" if value > 0 else "−∞"


def percent(x: Any, digits: int = 1, *, signed: bool = False) -> str:
    """A fraction as a percentage: ``0.1234`` -> ``"12.3%"`` (``"+12.3%"`` if ``signed``)."""
    value = _finite(x)
    if value is None:
        return MISSING
    if math.isinf(value):
        return _inf(value)
    return f"{value:+.{digits}%}" if signed else f"{value:.{digits}%}"


def ratio(x: Any) -> str:
    """A Sharpe-like ratio (Sharpe, Sortino, Calmar, PSR, DSR, t-statistics): two decimals."""
    return fixed(x, 2)


def probability(x: Any) -> str:
    """A probability compared with a threshold (PSR, DSR, PBO): three decimals, so that
    0.947 never reads as 0.95."""
    return fixed(x, 3)


def fixed(x: Any, digits: int) -> str:
    """A number with ``digits`` decimals."""
    value = _finite(x)
    if value is None:
        return MISSING
    if math.isinf(value):
        return _inf(value)
    return f"{value:.{digits}f}"


def scientific(x: Any, digits: int = 2) -> str:
    """A small positive quantity (MSE, MAE of daily returns): ``"1.23e-04"``."""
    value = _finite(x)
    if value is None:
        return MISSING
    if math.isinf(value):
        return _inf(value)
    return f"{value:.{digits}e}"


def pvalue(x: Any) -> str:
    """A p-value to two significant digits: ``0.3`` -> ``"0.30"``, ``0.0412`` -> ``"0.041"``,
    ``3.1e-5`` -> ``"3.1e-05"``, ``1`` -> ``"1.0"``, ``0`` -> ``"0"``."""
    value = _finite(x)
    if value is None:
        return MISSING
    if value == 0:
        return "0"
    if abs(value) < 1e-3:
        return f"{value:.1e}"
    decimals = max(1, 1 - math.floor(math.log10(abs(value))))
    return f"{round(value, decimals):.{decimals}f}"


def bps(x: Any) -> str:
    """Basis points: ``5`` -> ``"5 bps"``, ``2.5`` -> ``"2.5 bps"``."""
    value = _finite(x)
    if value is None:
        return MISSING
    if math.isinf(value):
        return _inf(value)
    return f"{value:.1f} bps" if abs(value) < 100 and value != round(value) else f"{value:.0f} bps"


def seconds(x: Any) -> str:
    """Elapsed time: ``"0.42 s"``, ``"12.3 s"``, ``"4 min 05 s"``."""
    value = _finite(x)
    if value is None:
        return MISSING
    if value < 10:
        return f"{value:.2f} s"
    if value < 60:
        return f"{value:.1f} s"
    minutes, rest = divmod(round(value), 60)
    return f"{minutes} min {rest:02d} s"


#: The stages of a run's ``timings`` (``<stage>_s``), in the order they are shown.
STAGES = ("load", "train", "predict", "store", "evaluate")


def stage_scope(timings: Mapping[str, Any], run_id: Any = None) -> str:
    """What the stage times of ``timings`` cover: ``"this run"`` (its share of shared work;
    ``"run 7"`` given ``run_id``) or, for a batch's sums (``scope`` "runs"), ``"summed over
    6 runs"``. Stored before ``scope`` existed, a run's stages were its own."""
    if timings.get("scope") == "runs":
        n = timings.get("batch_runs")
        return f"summed over {n} runs" if n else "summed over the runs"
    who = f"run {run_id}" if run_id is not None else "this run"
    earlier = timings.get("folds_before_resume")
    if earlier:
        return f"{who}, every fold: {earlier} trained before it was resumed"
    return who


def total_scope(timings: Mapping[str, Any]) -> str:
    """What ``total_s`` of ``timings`` covers (``total_scope``, ``batch_runs``): the
    command's runs from start to finish (``"all 3 runs of the command, start to finish"``,
    ``"this run, start to finish"``), or the training of the runs carried out together,
    before their evaluation; ``"scope not recorded"`` for older runs."""
    scope, n = timings.get("total_scope"), timings.get("batch_runs")
    many = isinstance(n, int) and n > 1
    if scope == "command" and timings.get("folds_before_resume") and not many:
        return "the command that resumed this run, start to finish"
    if scope == "command":
        if many:
            return f"all {n} runs of the command, start to finish"
        return "this run, start to finish"
    if scope == "training":
        if many:
            return f"training of all {n} runs carried out together, before evaluation"
        return "training only, before evaluation"
    return "scope not recorded"


def _stage_times(timings: Mapping[str, Any]) -> list[tuple[str, Any]]:
    return [
        (name, timings.get(f"{name}_s"))
        for name in STAGES
        if isinstance(timings.get(f"{name}_s"), int | float)
    ]


def timing_line(
    timings: Mapping[str, Any] | None, *, label: str = "time", run_id: Any = None
) -> str | None:
    """One line of a run's (or a batch's) ``timings``, each time with what it covers:
    ``"time (this run): train 2 min 30 s · evaluate 3.10 s; total 4 min 51 s (all 3 runs
    of the command, start to finish)"``. None without times."""
    if not timings:
        return None
    parts = [f"{name} {seconds(value)}" for name, value in _stage_times(timings)]
    text = f"{label} ({stage_scope(timings, run_id)}): " + " · ".join(parts) if parts else ""
    total = timings.get("total_s")
    if isinstance(total, int | float):
        text += ("; " if parts else f"{label}: ") + (
            f"total {seconds(total)} ({total_scope(timings)})"
        )
    return text or None


def timing_rows(timings: Mapping[str, Any] | None) -> list[tuple[str, str]]:
    """``timings`` as (label, time) rows, each label saying what its time covers:
    ``("time: train (this run)", "2 min 30 s")``, ``("time: total (this run, start to
    finish)", "4 min 51 s")``."""
    if not timings:
        return []
    scope = stage_scope(timings)
    rows = [(f"time: {name} ({scope})", seconds(value)) for name, value in _stage_times(timings)]
    if isinstance(timings.get("total_s"), int | float):
        rows.append((f"time: total ({total_scope(timings)})", seconds(timings["total_s"])))
    return rows


def per_fold(
    mean: Any,
    low: Any = None,
    high: Any = None,
    total: Any = None,
    folds: Any = None,
    *,
    digits: int = 1,
) -> str:
    """A figure recorded once per fold (epochs, training samples): its mean per fold, range
    and total: ``"20.1 per fold (12–31, 161 in all over 8 folds)"``, ``"12 (one fold)"``.
    A summary that kept only the total reads ``"– per fold (161 in all)"``."""
    m, t, n = _finite(mean), _finite(total), _finite(folds)
    if m is None:
        return MISSING if t is None else f"{MISSING} per fold ({count(t)} in all)"
    text = count(m) if m.is_integer() else fixed(m, digits)
    if n == 1:
        return f"{text} (one fold)"
    extra = []
    lo, hi = _finite(low), _finite(high)
    if lo is not None and hi is not None and lo != hi:
        extra.append(f"{count(lo)}–{count(hi)}")
    if t is not None:
        extra.append(f"{count(t)} in all" + (f" over {count(n)} folds" if n else ""))
    return f"{text} per fold" + (f" ({', '.join(extra)})" if extra else "")


def count(x: Any) -> str:
    """An integer count (days, rows, trials)."""
    value = _finite(x)
    return MISSING if value is None else f"{round(value):d}"


def yes_no(x: Any) -> str:
    """A boolean as ``yes`` / ``no``."""
    return MISSING if x is None else ("yes" if x else "no")


def date(x: Any) -> str:
    """A date as ISO ``YYYY-MM-DD`` (dates, datetimes, timestamps and ISO strings)."""
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return MISSING
    if hasattr(x, "strftime"):
        try:
            return x.strftime("%Y-%m-%d")
        except ValueError:  # NaT
            return MISSING
    text = str(x)
    return text[:10] if len(text) >= 10 else text


def timestamp(x: Any) -> str:
    """A point in time as ISO ``YYYY-MM-DD HH:MM`` (UTC as stored)."""
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return MISSING
    if isinstance(x, str):
        try:
            x = dt.datetime.fromisoformat(x)
        except ValueError:
            return x
    if isinstance(x, dt.datetime) or hasattr(x, "hour"):
        try:
            return x.strftime("%Y-%m-%d %H:%M")
        except ValueError:  # NaT
            return MISSING
    return date(x)


def middle(text: str, width: int) -> str:
    """Shorten ``text`` to ``width`` characters by cutting its middle:
    ``middle("xlf-05-walk-forward-components", 17)`` -> ``"xlf-05…components"``."""
    if len(text) <= width:
        return text
    if width <= 1:
        return "…"[:width]
    keep = width - 1
    head = (keep + 1) // 2 if keep < 8 else keep - keep // 2 - 2
    tail = keep - head
    return text[:head] + "…" + (text[-tail:] if tail else "")


def truncate(text: str, width: int) -> str:
    """Shorten ``text`` to ``width`` characters by cutting its end (``"…"`` marks the cut)."""
    if len(text) <= width:
        return text
    return text[: max(width - 1, 0)] + "…" if width > 0 else ""


#: What the DSR's ``V`` was computed from, in words (``DSRResult.variance_source``).
_VARIANCE_SOURCES = {
    "trial_sharpes": "variance of the trial set's net Sharpe ratios",
    "null": "variance of a no-skill Sharpe estimate, 1/(n−1) per day",
    "single_trial": "one trial: DSR = PSR against 0",
}


def variance_source(source: str | None) -> str:
    """The DSR's variance source in words (``"+null_floor"``: floored at the no-skill
    variance)."""
    if not source:
        return MISSING
    base, _, floor = source.partition("+")
    words = _VARIANCE_SOURCES.get(base, base.replace("_", " "))
    return words + (", floored at the no-skill variance" if floor else "")


def verdict_label(tradeable: Any) -> str:
    """``TRADEABLE`` or ``NOT TRADEABLE``."""
    return "TRADEABLE" if tradeable else "NOT TRADEABLE"


def at_finish_note(summary: Mapping[str, Any]) -> str | None:
    """The line saying that the live verdict is judged against another trial set than the
    run saw when it finished (``at_finish``): "judged now against 12 trials; at finish: 4
    (DSR then 0.610, now 0.430)", with the verdict then and now when it changed. None when
    the trials, the DSR and the verdict are as at finish."""
    at, sig = summary.get("at_finish"), summary.get("significance")
    if not at or not sig:
        return None
    now = (summary.get("verdict") or {}).get("tradeable")
    then = at.get("tradeable")
    same_trials = at.get("trials") == sig.get("trials")
    same_dsr = probability(at.get("dsr")) == probability(sig.get("dsr"))
    same_verdict = then is None or now is None or bool(then) == bool(now)
    if same_trials and same_dsr and same_verdict:
        return None
    note = (
        f"judged now against {count(sig.get('trials'))} trials; at finish: "
        f"{count(at.get('trials'))} (DSR then {probability(at.get('dsr'))}, now "
        f"{probability(sig.get('dsr'))})"
    )
    if not same_verdict:
        note += f"; {verdict_label(then)} then, {verdict_label(now)} now"
    return note
