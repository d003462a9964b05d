"""Validation rules for daily bars, vectorized; only failing rows are turned into messages.

A *bars frame* has one row per (symbol, date) candidate with the columns ``line`` (1-based
physical line in the source file, int64), ``symbol`` (str), ``date`` (datetime64[D]),
``open``, ``high``, ``low``, ``close``, ``adj_close`` (float64, price units of the file,
``adj_close`` may be NaN when the source has none) and ``volume`` (float64, shares).

Rejection rules (each rejected row becomes a :class:`Problem`):

- non-positive price in any of open/high/low/close/adj_close;
- ``high`` below ``max(open, close)`` or ``low`` above ``min(open, close)`` by more than the
  relative tolerance :data:`OHLC_RTOL`;
- negative volume;
- a date after today (UTC) plus :data:`FUTURE_SLACK_DAYS` (a bar that cannot exist yet:
  a typo, a wrong century or a day-first date read month-first);
- the same (symbol, date) on several lines with conflicting values (every such line is
  rejected); identical duplicates are collapsed onto the first line.

Unparseable dates/numbers and empty/NaN cells are rejected while parsing
(:mod:`lstm_madness.data.sources`). Warnings (the rows are kept): a one-day close move
larger than :data:`SPLIT_MOVE` when the file has no adjusted close (a suspected unadjusted
split), and gaps of more than :data:`MAX_GAP_BDAYS` business days between consecutive rows.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

PRICE_COLUMNS: tuple[str, ...] = ("open", "high", "low", "close", "adj_close")
VALUE_COLUMNS: tuple[str, ...] = (*PRICE_COLUMNS, "volume")
#: Relative tolerance of the high/low consistency checks (vendor rounding).
OHLC_RTOL = 1e-6
#: One-day |close return| above which an unadjusted split is suspected (no adj_close).
SPLIT_MOVE = 0.40
#: Gaps with more business days than this between consecutive rows are reported.
MAX_GAP_BDAYS = 5
#: Bars dated later than today (UTC) plus this many days are rejected.
FUTURE_SLACK_DAYS = 1
#: How many dates a warning lists before it says "and N more".
_LIST_LIMIT = 8


@dataclass(frozen=True)
class Problem:
    """One rejected value: where it is and why.

    Attributes
    ----------
    file : str
        Display name of the source (a path, ``"yfinance:SYM"``, ...).
    line : int or None
        1-based physical line in the file (``None`` when the source has no lines).
    column : str or None
        Canonical column name (``date``, ``open``, ...), ``None`` for whole-line problems.
    value : str or None
        The offending value as text.
    reason : str
        Why it was rejected.
    """

    file: str
    line: int | None
    column: str | None
    value: str | None
    reason: str

    def __str__(self) -> str:
        where = self.file if self.line is None else f"{self.file}, line {self.line}"
        what = "" if self.column is None else f", column {self.column}"
        value = "" if self.value is None else f", value {self.value!r}"
        return f"{where}{what}{value}: {self.reason}"


#: Problems listed in full in an error message; the rest are counted.
SHOWN_PROBLEMS = 20


def problem_lines(problems: Sequence[Problem]) -> str:
    """The first :data:`SHOWN_PROBLEMS` problems, one indented line each, then "... and N
    more" when there are others (the body of a rejection's message)."""
    shown = "\n".join(f"  {p}" for p in problems[:SHOWN_PROBLEMS])
    more = len(problems) - SHOWN_PROBLEMS
    return shown + (f"\n  ... and {more} more" if more > 0 else "")


@dataclass(frozen=True)
class CheckedBars:
    """Result of :func:`check_bars`.

    Attributes
    ----------
    frame : pandas.DataFrame
        The accepted rows, sorted by (symbol, date), one row per (symbol, date).
    problems : tuple of Problem
        One entry per rejected value, ordered by line.
    rejected_lines : int
        Number of distinct lines rejected.
    collapsed : int
        Identical duplicate lines folded into their first occurrence.
    warnings : tuple of str
        Suspected unadjusted splits and long gaps.
    """

    frame: pd.DataFrame
    problems: tuple[Problem, ...]
    rejected_lines: int
    collapsed: int
    warnings: tuple[str, ...]


def format_value(value: float) -> str:
    """Text of a parsed number as a problem shows it (integers without ``.0``)."""
    if np.isfinite(value) and float(value).is_integer() and abs(value) < 1e15:
        return str(int(value))
    return repr(float(value))


def _problems_from_mask(
    frame: pd.DataFrame, mask: np.ndarray, file: str, column: str, reason: str
) -> list[Problem]:
    """Problems for the rows where ``mask`` holds (loops only over those rows)."""
    if not mask.any():
        return []
    idx = np.flatnonzero(mask)
    lines = frame["line"].to_numpy()[idx]
    values = frame[column].to_numpy()[idx]
    return [
        Problem(file, int(line), column, format_value(value), reason)
        for line, value in zip(lines, values, strict=True)
    ]


def _value_rules(frame: pd.DataFrame) -> list[tuple[str, np.ndarray, str]]:
    """(column, mask of the rows that break it, reason) of each value rule but the date's."""
    rules = [(col, frame[col].to_numpy() <= 0, "price is not positive") for col in PRICE_COLUMNS]
    o, h, lo, c = (frame[k].to_numpy() for k in ("open", "high", "low", "close"))
    top = np.maximum(o, c)
    bottom = np.minimum(o, c)
    rules.append(("high", h < top * (1 - OHLC_RTOL), "high is below open/close"))
    rules.append(("low", lo > bottom * (1 + OHLC_RTOL), "low is above open/close"))
    rules.append(("volume", frame["volume"].to_numpy() < 0, "volume is negative"))
    return rules


def _value_problems(frame: pd.DataFrame, file: str) -> list[Problem]:
    problems: list[Problem] = []
    for column, mask, reason in _value_rules(frame):
        problems += _problems_from_mask(frame, mask, file, column, reason)
    return problems + future_problems(frame, file)


def _future_limit(today: dt.date | None) -> tuple[dt.date, np.datetime64]:
    """Today (default: today in UTC) and the last date a bar may have."""
    today = today or dt.datetime.now(dt.UTC).date()
    return today, np.datetime64(today + dt.timedelta(days=FUTURE_SLACK_DAYS), "D")


def future_problems(frame: pd.DataFrame, file: str, today: dt.date | None = None) -> list[Problem]:
    """Bars dated after ``today`` (default: today in UTC) + :data:`FUTURE_SLACK_DAYS`."""
    today, limit = _future_limit(today)
    days = frame["date"].to_numpy().astype("datetime64[D]")
    idx = np.flatnonzero(days > limit)
    lines = frame["line"].to_numpy()[idx]
    reason = f"date is in the future (after {limit}, today {today} UTC + {FUTURE_SLACK_DAYS} day)"
    return [
        Problem(file, int(line), "date", str(day), reason)
        for line, day in zip(lines, days[idx], strict=True)
    ]


def _duplicate_problems(frame: pd.DataFrame, file: str) -> tuple[list[Problem], np.ndarray]:
    """Conflicting duplicates (problems) and the mask of identical repeats to drop."""
    keys = ["symbol", "date"]
    dup_any = frame.duplicated(keys, keep=False).to_numpy()
    if not dup_any.any():
        return [], np.zeros(len(frame), dtype=bool)
    dups = frame.loc[dup_any]
    # a (symbol, date) group conflicts when its rows differ in any value (NaN == NaN)
    filled = dups[list(VALUE_COLUMNS)].fillna(-np.inf)
    n_variants = filled.groupby([dups["symbol"], dups["date"]]).nunique().max(axis=1)
    conflicting = n_variants[n_variants > 1].index
    in_conflict = pd.MultiIndex.from_frame(dups[keys]).isin(conflicting)
    problems: list[Problem] = []
    bad = dups.loc[in_conflict]
    if len(bad):
        lines_by_key = bad.groupby(keys)["line"].apply(list)
        for (_sym, day), lines in lines_by_key.items():
            others = ", ".join(str(n) for n in lines)
            text = str(np.datetime64(day, "D"))
            for line in lines:
                problems.append(
                    Problem(
                        file,
                        int(line),
                        "date",
                        text,
                        f"duplicate date with conflicting values (lines {others})",
                    )
                )
    conflict_mask = np.zeros(len(frame), dtype=bool)
    conflict_mask[np.flatnonzero(dup_any)[in_conflict]] = True
    repeat_mask = frame.duplicated(keys, keep="first").to_numpy() & ~conflict_mask
    return problems, conflict_mask | repeat_mask


def _list_dates(dates: np.ndarray) -> str:
    shown = ", ".join(str(d) for d in dates[:_LIST_LIMIT])
    more = len(dates) - _LIST_LIMIT
    return shown + (f" and {more} more" if more > 0 else "")


def _warned_rows(
    same: np.ndarray, dates: np.ndarray, close: np.ndarray, unadjusted: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Split jumps and long gaps of bars sorted by (symbol, date).

    ``same`` (n,) marks rows of the same symbol as the row before; ``dates`` (n,)
    datetime64[D]; ``close`` (n,); ``unadjusted`` (n,) marks rows of a source without an
    adjusted close. Returns the masks (jump, long_gap) and the business days missing before
    each row (0 for the first row).
    """
    move = np.full(len(close), np.nan)
    with np.errstate(divide="ignore", invalid="ignore"):  # rows of rejected files may be 0
        move[1:] = close[1:] / close[:-1] - 1
    jump = same & unadjusted & (np.abs(move) > SPLIT_MOVE)
    gap = np.zeros(len(dates), dtype=np.int64)
    gap[1:] = np.busday_count(dates[:-1], dates[1:]) - 1
    return jump, same & (gap > MAX_GAP_BDAYS), gap


def bar_warnings(frame: pd.DataFrame, file: str, has_adj_close: bool) -> list[str]:
    """Suspected unadjusted splits (only without adj_close) and long gaps, per symbol.

    Parameters
    ----------
    frame : pandas.DataFrame
        Accepted bars sorted by (symbol, date).
    file : str
        Display name used in the messages.
    has_adj_close : bool
        Whether the source carries an adjusted close (then splits are adjusted already).
    """
    out: list[str] = []
    if frame.empty:
        return out
    symbols = frame["symbol"].to_numpy()
    dates = frame["date"].to_numpy().astype("datetime64[D]")
    same = np.zeros(len(frame), dtype=bool)
    same[1:] = symbols[1:] == symbols[:-1]
    unadjusted = np.full(len(frame), not has_adj_close)
    jump, long_gap, gap = _warned_rows(same, dates, frame["close"].to_numpy(), unadjusted)
    for sym in pd.unique(symbols[jump]):
        hit = dates[jump & (symbols == sym)]
        out.append(
            f"{file}: {sym} closes move more than {SPLIT_MOVE:.0%} in one day on "
            f"{_list_dates(hit)} and there is no adjusted close: unadjusted split?"
        )
    for i in np.flatnonzero(long_gap):
        out.append(
            f"{file}: {symbols[i]} has no rows for {gap[i]} business days between "
            f"{dates[i - 1]} and {dates[i]}"
        )
    return out


def _single_symbol_ascending(frame: pd.DataFrame) -> bool:
    """One symbol and strictly increasing dates (hence sorted and without duplicates)."""
    symbols = frame["symbol"].to_numpy()
    if len(symbols) and not (symbols == symbols[0]).all():
        return False
    days = frame["date"].to_numpy()
    return bool((days[1:] > days[:-1]).all())


def check_bars(frame: pd.DataFrame, file: str, has_adj_close: bool) -> CheckedBars:
    """Apply the rejection rules and collect warnings.

    Parameters
    ----------
    frame : pandas.DataFrame
        Parsed bars (see the module docstring for the columns).
    file : str
        Display name used in problems and warnings.
    has_adj_close : bool
        Whether the source has an adjusted close column.

    Returns
    -------
    CheckedBars
        Accepted rows plus problems and warnings; never raises for bad rows.
    """
    problems = _value_problems(frame, file)
    if _single_symbol_ascending(frame):  # the usual file: no duplicates, already sorted
        dup_problems, drop_mask = [], np.zeros(len(frame), dtype=bool)
    else:
        dup_problems, drop_mask = _duplicate_problems(frame, file)
    problems += dup_problems
    bad_lines = {p.line for p in problems}
    bad_mask = frame["line"].isin(list(bad_lines)).to_numpy()
    collapsed = int((drop_mask & ~bad_mask).sum())
    keep = ~(bad_mask | drop_mask)
    good = frame if keep.all() else frame.loc[keep]
    if not _single_symbol_ascending(good):
        good = good.sort_values(["symbol", "date"], kind="stable")
    good = good.reset_index(drop=True)
    problems.sort(key=lambda p: (p.line or 0, p.column or ""))
    warnings = bar_warnings(good, file, has_adj_close)
    return CheckedBars(good, tuple(problems), len(bad_lines), collapsed, tuple(warnings))


def check_many(
    frames: Sequence[pd.DataFrame], files: Sequence[str], has_adj_close: Sequence[bool]
) -> list[CheckedBars]:
    """:func:`check_bars` of several files: the same results, in order.

    The rules run once over all rows. Only a file with a rejected row, a duplicate or an
    unsorted date is checked alone (to name its problems), and only a file with a warning
    has its warnings written alone; the others, the usual case, cost no per-file work.

    Parameters
    ----------
    frames : sequence of pandas.DataFrame
        Parsed bars of each file (see the module docstring).
    files : sequence of str
        Display name of each file.
    has_adj_close : sequence of bool
        Whether each file has an adjusted close column.

    Returns
    -------
    list of CheckedBars
        One per file.
    """
    if not frames:
        return []
    sizes = np.array([len(f) for f in frames], dtype=np.int64)
    whole = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]
    part = np.repeat(np.arange(len(frames)), sizes)  # (n,) file of each row
    flagged = whole["date"].to_numpy().astype("datetime64[D]") > _future_limit(None)[1]
    for _column, mask, _reason in _value_rules(whole):
        flagged |= mask
    codes = pd.factorize(whole["symbol"])[0]
    dates = whole["date"].to_numpy().astype("datetime64[D]")
    same = np.zeros(len(whole), dtype=bool)  # same file and symbol as the row before
    same[1:] = (part[1:] == part[:-1]) & (codes[1:] == codes[:-1])
    unsorted = np.zeros(len(whole), dtype=bool)  # a new symbol or a date not after the last
    unsorted[1:] = (part[1:] == part[:-1]) & (~same[1:] | (dates[1:] <= dates[:-1]))
    alone = set(np.unique(part[flagged | unsorted]).tolist())
    unadjusted = ~np.asarray(has_adj_close, dtype=bool)[part]
    jump, long_gap, _gap = _warned_rows(same, dates, whole["close"].to_numpy(), unadjusted)
    warned = set(np.unique(part[jump | long_gap]).tolist())
    out = []
    for i, (frame, file, has_adj) in enumerate(zip(frames, files, has_adj_close, strict=True)):
        if i in alone:
            out.append(check_bars(frame, file, has_adj))
            continue
        good = frame.reset_index(drop=True)
        warnings = bar_warnings(good, file, has_adj) if i in warned else []
        out.append(CheckedBars(good, (), 0, 0, tuple(warnings)))
    return out
