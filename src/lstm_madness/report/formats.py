"""How a number reads, in the terminal and in the report: the one owner of formats.

Every table of ``madness`` (``runs list``, ``runs show``, ``compare``, ``sweep show``,
``symbols``) and the HTML report format their cells with these functions, so a Sharpe
ratio, a p-value or a date reads the same everywhere. Missing values (``None``, NaN)
read ``–``. Inputs are plain numbers as stored (returns and rates as fractions).
"""

from __future__ import annotations

import datetime as dt
import math
from typing import Any

__all__ = [
    "MISSING",
    "bps",
    "count",
    "date",
    "fixed",
    "middle",
    "percent",
    "probability",
    "pvalue",
    "ratio",
    "scientific",
    "seconds",
    "timestamp",
    "truncate",
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
