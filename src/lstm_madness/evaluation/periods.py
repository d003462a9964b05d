"""A universe run's figures by sub-period of its test days (``madness runs periods``).

The books are the run's evaluated ones (a :class:`LongShortResult` per model and their
equal-weight book) over all test days; a sub-period slices their **daily series** by date
(its first day pays for the trade from the previous test day's weights, as in the run).
Nothing is backtested again: every figure is a mean, a share or
:func:`~lstm_madness.evaluation.performance.sharpe_ratio` of a series the books compute.
Sub-periods, with breaks ``b_1 < … < b_k``: ``[first test day, b_1)``, …, ``[b_k, last
test day]``, then ``all``; they partition the test days. Definitions: statistics.md §19.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from lstm_madness.errors import ConfigError, DataError
from lstm_madness.evaluation.book import Book
from lstm_madness.evaluation.cross_section_stats import hac_mean, panel_direction_calls
from lstm_madness.evaluation.long_short import BOOK_LABEL, LONG_MINUS_SHORT_LABEL, LongShortResult
from lstm_madness.evaluation.performance import sharpe_ratio
from lstm_madness.evaluation.universe_study import UniverseEvaluation
from lstm_madness.jsonable import jsonable

__all__ = [
    "COLUMNS",
    "EQUAL_WEIGHT",
    "MembershipCounts",
    "PeriodFigures",
    "period_figures",
    "universe_period_figures",
]

#: The row name of the equal-weight book.
EQUAL_WEIGHT = "equal_weight"
_OVER = "over the period's test days"
_LMS = f"{LONG_MINUS_SHORT_LABEL}, {_OVER}; none for {EQUAL_WEIGHT}"
_SR = f"{BOOK_LABEL}, {_OVER} (long − short's is the same at risk_free 0)"
#: (key of the JSON and the CSV, header of the text table, its format, exact label).
COLUMNS: tuple[tuple[str, str, str, str], ...] = (
    ("period", "period", "", "sub-period of the test days: [from, to) between breaks, the "
     "last one [from, last test day]; 'all' = every test day"),
    ("first_day", "first", "", "first test day in the period"),
    ("last_day", "last", "", "last test day in the period"),
    ("days", "days", "", "test days in the period"),
    ("book", "book", "", "whose book: a model's long-short book (top/bottom top_k by its "
     f"predictions), or '{EQUAL_WEIGHT}' (1/n_t on each of the primary model's n_t scored "
     "members)"),
    ("mean_daily_book_gross", "book gross", "+.3%",
     f"mean daily return before costs, {BOOK_LABEL}, {_OVER}"),
    ("mean_daily_book_net", "book net", "+.3%",
     f"mean daily return after costs, {BOOK_LABEL}, {_OVER}"),
    ("mean_daily_long_minus_short_gross", "L−S gross", "+.3%",
     f"mean daily return before costs, {_LMS}"),
    ("mean_daily_long_minus_short_net", "L−S net", "+.3%",
     f"mean daily return after costs, {_LMS}"),
    ("sharpe_gross", "Sharpe gross", ".2f", f"annualised Sharpe ratio before costs, {_SR}"),
    ("sharpe_net", "Sharpe net", ".2f", f"annualised Sharpe ratio after costs, {_SR}"),
    ("t_gross", "t gross", ".2f", "Newey–West (HAC) t-statistic of the mean daily return "
     f"before costs, {_OVER} (the same in both leg conventions)"),
    ("t_net", "t net", ".2f", "Newey–West (HAC) t-statistic of the mean daily return after "
     f"costs, {_OVER} (the same in both leg conventions)"),
    ("hit_rate", "hit rate", ".1%", "share of correct calls among the model's (member, day) "
     f"pairs of the period's test days that call a direction (statistics.md §11); none for "
     f"{EQUAL_WEIGHT}"),
    ("hit_n", "calls", "d", f"(member, day) pairs that call a direction, {_OVER}"),
    ("rank_ic", "rank IC", "+.4f", "mean daily Spearman rank correlation of the model's "
     f"predictions with the members' next-day returns, {_OVER}; none for {EQUAL_WEIGHT}"),
    ("rank_ic_t", "IC t", ".2f", "Newey–West (HAC) t-statistic of that mean over the "
     f"period's days with an IC; none for {EQUAL_WEIGHT}"),
    ("positive_net_days", "net>0 days", ".1%", "share of the period's test days on which the "
     "book's net return (each leg ½ of capital) is > 0; flat days count, as not positive"),
    ("turnover", "turnover", ".3f",
     f"mean daily turnover sum_s |w_ts − w_t−1,s| of the {BOOK_LABEL}, {_OVER}"),
    ("break_even_bps", "break-even bps", ".1f", "cost per unit of turnover (bps) at which "
     f"the book's mean daily net return {_OVER} is zero: mean(gross after borrow) / "
     f"mean(turnover); negative: it loses before costs; none for {EQUAL_WEIGHT}"),
    ("members_mean", "members", ".1f", f"mean scored members per day, {_OVER} "
     f"({EQUAL_WEIGHT}: the members it holds, the primary model's scored ones)"),
    ("coverage", "coverage", ".1%", "mean over the period's test days of (members with a "
     "stored bar that day / members that day) by the universe's membership as stored now; "
     "none when not computed"),
)  # fmt: skip


@dataclass(frozen=True, eq=False)
class MembershipCounts:
    """Members per test day by the universe's membership (``members``) and those of them
    with a stored bar that day (``priced``), shape (D,) each."""

    members: np.ndarray
    priced: np.ndarray


@dataclass(frozen=True, eq=False)
class PeriodFigures:
    """Figures per (sub-period, book): rows keyed as :data:`COLUMNS`, the breaks and the
    books' settings (``top_k``, costs, ``risk_free``)."""

    rows: tuple[dict[str, Any], ...]
    breaks: tuple[pd.Timestamp, ...]
    settings: Mapping[str, Any]

    def to_frame(self) -> pd.DataFrame:
        """One row per (period, book), the columns of :data:`COLUMNS` in order."""
        frame = pd.DataFrame(list(self.rows), columns=[c[0] for c in COLUMNS])
        return frame.astype({"hit_n": "Int64"})  # none for the equal-weight book

    def to_json(self) -> dict[str, Any]:
        """``breaks``, ``settings``, ``labels`` (column → exact label) and ``rows`` (a list
        of dicts keyed as :data:`COLUMNS`); NaN becomes ``null``."""
        return jsonable(
            {
                "breaks": [b.date().isoformat() for b in self.breaks],
                "settings": dict(self.settings),
                "labels": {c[0]: c[3] for c in COLUMNS},
                "rows": list(self.rows),
            }
        )

    def summary(self) -> str:
        """A text table, one block per period (its days and coverage in its heading), then
        the exact label of every column."""
        shown = COLUMNS[4:-1]
        cells = [[_cell(c, r[c[0]]) for c in shown] for r in self.rows]
        heads = [c[1] for c in shown]
        widths = [max(len(h), *(len(c[i]) for c in cells)) for i, h in enumerate(heads)]

        def line(values: list[str]) -> str:
            rest = [v.rjust(w) for v, w in zip(values[1:], widths[1:], strict=True)]
            return "  " + "  ".join([values[0].ljust(widths[0]), *rest]).rstrip()

        s = self.settings
        out = [
            f"top_k {s['top_k']}, costs {s['cost_bps']:g} + {s['slippage_bps']:g} bps per unit "
            f"of turnover, borrow {s['short_borrow_bps']:g} bps/yr, risk_free {s['risk_free']:g}",
            line(heads),
        ]
        for i, row in enumerate(self.rows):
            if i == 0 or row["period"] != self.rows[i - 1]["period"]:
                out.append(
                    f"{row['period']}: {row['first_day']} → {row['last_day']}, {row['days']} "
                    f"test days, coverage {_cell(COLUMNS[-1], row['coverage'])}"
                )
            out.append(line(cells[i]))
        legend = [f"  {c[1]}: {c[3]}" for c in (COLUMNS[0], *COLUMNS[4:])]
        return "\n".join([*out, "columns:", *legend])


def _cell(column: tuple[str, str, str, str], value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    return format(value, column[2])


def _periods(dates: pd.DatetimeIndex, breaks: Sequence[Any]) -> list[tuple[str, np.ndarray]]:
    """(label, day mask) of each sub-period, then ``all``; ConfigError for a break that is
    not a date, breaks not ascending, or a sub-period without a test day."""
    try:
        cuts = [pd.Timestamp(b).normalize() for b in breaks]
    except (ValueError, TypeError):
        raise ConfigError(f"breaks must be dates (YYYY-MM-DD), got {list(breaks)}") from None
    if any(a >= b for a, b in itertools.pairwise(cuts)):
        raise ConfigError(f"breaks must be ascending and distinct, got {list(breaks)}")
    every = np.ones(len(dates), dtype=bool)
    out = []
    edges = [dates[0], *cuts, None]
    for lo, hi in itertools.pairwise(edges) if cuts else ():
        mask = (dates >= lo) & (dates < hi if hi is not None else every)
        label = f"[{lo:%Y-%m-%d}, " + (f"{hi:%Y-%m-%d})" if hi else f"{dates[-1]:%Y-%m-%d}]")
        if not mask.any():
            raise ConfigError(
                f"sub-period {label} has no test day (test days {dates[0]:%Y-%m-%d} → "
                f"{dates[-1]:%Y-%m-%d}): choose breaks inside the test period"
            )
        out.append((label, mask))
    return [*out, ("all", every)]


def _book_figures(
    book: Book, lms: tuple[np.ndarray, np.ndarray] | None, mask: np.ndarray
) -> dict[str, Any]:
    """A book's figures over the days of ``mask``; ``lms``: its long − short daily series
    (gross, net), None for a book without legs."""
    gross, net = book.gross_returns[mask], book.net_returns[mask]
    return {
        "mean_daily_book_gross": float(np.mean(gross)),
        "mean_daily_book_net": float(np.mean(net)),
        "mean_daily_long_minus_short_gross": None if lms is None else float(np.mean(lms[0][mask])),
        "mean_daily_long_minus_short_net": None if lms is None else float(np.mean(lms[1][mask])),
        "sharpe_gross": sharpe_ratio(gross, book.risk_free),
        "sharpe_net": sharpe_ratio(net, book.risk_free),
        "t_gross": hac_mean(gross).t_stat,
        "t_net": hac_mean(net).t_stat,
        "positive_net_days": float(np.mean(net > 0)),
        "turnover": float(np.mean(book.turnover[mask])),
        "break_even_bps": None if lms is None else _break_even(book, mask),
    }


def _break_even(book: Book, mask: np.ndarray) -> float:
    """:func:`~lstm_madness.evaluation.backtest.break_even_cost` over the days of ``mask``."""
    turnover = float(np.mean(book.turnover[mask]))
    if turnover == 0.0:
        return math.inf
    return float(np.mean(book.gross_after_borrow[mask])) / turnover * 1e4


def _hits(
    y_true: np.ndarray | None, pred: np.ndarray | None, task: str, mask: np.ndarray
) -> dict[str, Any]:
    if y_true is None or pred is None:
        return {"hit_rate": None, "hit_n": None}
    actual, called = panel_direction_calls(y_true[mask], pred[mask], task)
    rate = float(np.mean(actual == called)) if actual.size else math.nan
    return {"hit_rate": rate, "hit_n": int(actual.size)}


def _ic(daily: np.ndarray | None, mask: np.ndarray) -> dict[str, Any]:
    if daily is None:
        return {"rank_ic": None, "rank_ic_t": None}
    ic = hac_mean(daily[mask])
    return {"rank_ic": ic.mean, "rank_ic_t": ic.t_stat}


def period_figures(
    dates: np.ndarray,
    books: Mapping[str, LongShortResult],
    breaks: Sequence[Any] = (),
    *,
    task: str = "regression",
    y_true: np.ndarray | None = None,
    predictions: Mapping[str, np.ndarray] | None = None,
    membership: MembershipCounts | None = None,
    daily_rank_ic: Mapping[str, np.ndarray] | None = None,
) -> PeriodFigures:
    """Each book's figures per sub-period of the test days and over all of them.

    Parameters
    ----------
    dates : ndarray, shape (D,)
        The test days, ascending (the books' rows).
    books : mapping of str to LongShortResult
        Each model's long-short book over the ``D`` days, the primary model's first: its
        ``buy_and_hold`` is the row :data:`EQUAL_WEIGHT`.
    breaks : sequence of dates
        Ascending; the sub-periods are ``[first day, b_1)``, …, ``[b_k, last day]``.
    task : {"regression", "classification"}
        The run's task: how a prediction calls a direction (statistics.md §11).
    y_true : ndarray, shape (D, S), optional
        The labels; with ``predictions`` (each (D, S), keyed as ``books``) the hit rates.
    membership : MembershipCounts, optional
        Members per day and those with a bar; without it, ``coverage`` is None.
    daily_rank_ic : mapping of str to ndarray, optional
        Each model's daily rank IC, shape (D,), NaN on a day without one (keyed as
        ``books``); without it, ``rank_ic`` and ``rank_ic_t`` are None.
    """
    index = pd.DatetimeIndex(pd.to_datetime(dates))
    if len(index) == 0 or not books:
        raise DataError("no test days or no books to split into periods")
    first = next(iter(books.values()))
    series = {
        name: (r.book, (r.long_minus_short(net=False), r.long_minus_short(net=True)), r.members)
        for name, r in books.items()
    }
    hold = first.buy_and_hold
    series[EQUAL_WEIGHT] = (hold, None, (hold.weights != 0).sum(axis=1))
    share = None
    if membership is not None:
        with np.errstate(invalid="ignore", divide="ignore"):
            share = np.where(membership.members > 0, membership.priced / membership.members, np.nan)
    rows = []
    for label, mask in _periods(index, breaks):
        days = index[mask]
        part = None if share is None else share[mask][np.isfinite(share[mask])]
        coverage = float(part.mean()) if part is not None and part.size else None
        for name, (book, lms, members) in series.items():
            pred = None if predictions is None or name == EQUAL_WEIGHT else predictions[name]
            ic = None if daily_rank_ic is None else daily_rank_ic.get(name)
            row = {
                "period": label,
                "first_day": days[0].date().isoformat(),
                "last_day": days[-1].date().isoformat(),
                "days": int(mask.sum()),
                "book": name,
                **_book_figures(book, lms, mask),
                **_hits(y_true, pred, task, mask),
                **_ic(ic, mask),
                "members_mean": float(np.mean(members[mask])),
                "coverage": coverage,
            }
            rows.append({c[0]: row[c[0]] for c in COLUMNS})
    costs = ("cost_bps", "slippage_bps", "short_borrow_bps", "risk_free")
    settings = {"top_k": first.top_k, **{k: getattr(first.book, k) for k in costs}}
    cuts = tuple(pd.Timestamp(b).normalize() for b in breaks)
    return PeriodFigures(tuple(rows), cuts, settings)


def universe_period_figures(
    evaluation: UniverseEvaluation,
    breaks: Sequence[Any] = (),
    membership: MembershipCounts | None = None,
) -> PeriodFigures:
    """:func:`period_figures` of an evaluated universe run: the primary model's long-short
    result, each baseline's evaluated book as a long-short result beside the same
    equal-weight book (with its scored members per day), the labels and predictions."""
    main = evaluation.long_short
    if main is None:
        raise DataError("the evaluation has no long-short book")
    books = {evaluation.primary: main}
    for name, book in evaluation.baselines.items():
        members = np.isfinite(evaluation.predictions[name]).sum(axis=1)
        flat = book.exposure == 0
        books[name] = LongShortResult(book, main.buy_and_hold, main.top_k, members, flat)
    return period_figures(
        evaluation.dates,
        books,
        breaks,
        task=evaluation.task,
        y_true=evaluation.y_true,
        predictions=evaluation.predictions,
        membership=membership,
        daily_rank_ic={name: ic.daily for name, ic in evaluation.rank_ics.items()},
    )
