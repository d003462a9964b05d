"""The report of a universe study (cross-sectional long-short): HTML and PNGs.

The page is :func:`lstm_madness.report.page.write_page`'s, shared with the single-asset
report; this module contributes the universe's sections. Figures draw the numbers of
:class:`~lstm_madness.evaluation.universe_study.UniverseEvaluation` (daily returns of the
book, its legs and the equal-weight book, the rolling rank IC, the prediction-quintile
returns, the members scored per day); none is recomputed here beyond compounding daily
returns into a curve.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from lstm_madness.evaluation.judgement import short_name
from lstm_madness.evaluation.long_short import BOOK_LABEL, LONG_MINUS_SHORT_LABEL
from lstm_madness.evaluation.universe_study import UniverseEvaluation
from lstm_madness.jsonable import dig
from lstm_madness.report import formats as fmt
from lstm_madness.report import plots
from lstm_madness.report.blocks import frame_html, image, kv_table
from lstm_madness.report.page import write_page
from lstm_madness.report.sections import (
    performance_section,
    significance_section,
    verdict_answer,
    who,
)
from lstm_madness.report.seeds import SeedSet

__all__ = [
    "ROLLING_IC_DAYS",
    "UNIVERSE_PLOT_FILES",
    "universe_answer",
    "universe_sections",
    "write_universe_report",
]

#: PNG files written beside ``report.html``, in the order shown.
UNIVERSE_PLOT_FILES = (
    "legs_pnl.png",
    "books_pnl.png",
    "rolling_ic.png",
    "quintiles.png",
    "members.png",
)
ROLLING_IC_DAYS = 63  #: one quarter


def _ic_table(ev: UniverseEvaluation) -> pd.DataFrame:
    rows = []
    for name, ic in ev.rank_ics.items():
        rows.append(
            {
                "model": short_name(name),
                "rank IC": ic.mean,
                "HAC t": ic.t_stat,
                "p": ic.pvalue,
                "days IC > 0": ic.positive_share,
                "days": ic.n_days,
            }
        )
    return pd.DataFrame(rows)


def _images(ev: UniverseEvaluation, out: Path) -> list[str]:
    """The universe's figures, written as the PNGs of :data:`UNIVERSE_PLOT_FILES`."""
    ls, p = ev.long_short, ev.primary
    assert ls is not None
    legs = {
        f"{p} long-short": ls.book.net_returns,
        "long leg": ls.book.leg("long"),
        "short leg (as earned)": ls.book.leg("short"),
        "equal-weight book": ls.buy_and_hold.net_returns,
    }
    books = {
        f"{p} book": ls.book.net_returns,
        **{f"{name} book": book.net_returns for name, book in ev.baselines.items()},
        "equal-weight book": ls.buy_and_hold.net_returns,
    }
    books_title = (
        f"Cumulative net return: long top {ls.top_k} / short bottom {ls.top_k} by each model,"
        " same costs"
    )
    rolling = ev.rolling_rank_ic(ROLLING_IC_DAYS)
    title = "Cumulative net return (test period, out of sample)"
    figures = [
        (
            "Cumulative net P&L: long-short book, its legs and the equal-weight book",
            plots.plot_legs(ev.dates, legs, title=title),
        ),
        (
            "Cumulative net P&L: every model's long-short book and the equal-weight book",
            plots.plot_legs(ev.dates, books, title=books_title),
        ),
        (
            "Rolling rank IC",
            plots.plot_rolling_ic(ev.dates, rolling, ev.rank_ics[p].mean, window=ROLLING_IC_DAYS),
        ),
        ("Prediction quintiles", plots.plot_quintiles(ev.quintiles, model=p)),
        ("Members scored per day", plots.plot_members(ev.dates, ls.members, ls.top_k)),
    ]
    return [
        image(fig, out / name, alt)
        for name, (alt, fig) in zip(UNIVERSE_PLOT_FILES, figures, strict=True)
    ]


def universe_sections(ev: UniverseEvaluation, out: Path) -> list[str]:
    """The universe's sections of the page (HTML), writing the PNGs of
    :data:`UNIVERSE_PLOT_FILES` into ``out``: the long-short book against the equal-weight
    book with its legs, every model's book (the baselines' under the same rule and costs),
    the ranking skill (rank IC, quintiles), significance and the
    members scored per day."""
    ls, p = ev.long_short, ev.primary
    assert ls is not None
    imgs = _images(ev, out)
    perf = {
        f"{p} net": ev.strategy.net,
        f"{p} gross": ev.strategy.gross,
        "equal-weight book": ev.buy_hold.net,
    }
    perf.update({f"{short_name(k)} net": b.net for k, b in ev.baselines.items()})
    mean = ls.mean_daily
    legs_rows = [
        *(
            (
                f"mean daily return, {label}: before / after costs",
                f"{fmt.percent(mean[f'mean_daily_{key}_gross'], 3, signed=True)} / "
                f"{fmt.percent(mean[f'mean_daily_{key}_net'], 3, signed=True)}",
            )
            for key, label in (("book", BOOK_LABEL), ("long_minus_short", LONG_MINUS_SHORT_LABEL))
        ),
        ("members scored a day (mean)", fmt.fixed(ls.members_mean, 1)),
        ("days flat (fewer than 2 × top_k members)", str(ls.days_flat)),
        ("long leg net Sharpe", fmt.ratio(ls.long_sharpe)),
        ("short leg net Sharpe (as earned)", fmt.ratio(ls.short_sharpe)),
        ("positions left at their last price (delisting return lost)",
         str(ls.book.lost_returns)),
        ("DM vs zero (daily MSE across members)", f"p = {ev.dm['zero'].pvalue:.3g}"),
        ("R²_oos vs zero (demeaned label)", fmt.fixed(ev.r2_oos, 4)),
    ]  # fmt: skip
    return [
        performance_section(
            "Long-short book (test period, out of sample)",
            "Predictions dated t set the weights held from close t to close t+1. Buy-and-hold "
            "is the equal-weight book of each day's scored members.",
            perf,
        ),
        kv_table(legs_rows, ("statistic", "value")),
        imgs[0],
        imgs[1],
        "<h2>Ranking skill</h2>",
        frame_html(_ic_table(ev), "no rank IC"),
        f"<div class='pair'>{imgs[2]}{imgs[3]}</div>",
        significance_section(ev),
        imgs[4],
    ]


def universe_answer(ev: UniverseEvaluation, target: str | None = None) -> str:
    """The question a universe report answers and its answer, in one sentence."""
    s, ls = ev.settings, ev.long_short
    assert ls is not None
    universe = target or "the universe"
    question = (
        f"Does {who(ev.primary)} rank the members of {universe} well enough to trade the "
        f"long-short book of the top and bottom {ls.top_k} after "
        f"{fmt.bps(s.cost_bps + s.slippage_bps)} of costs?"
    )
    return verdict_answer(ev, question, benchmark="the equal-weight book")


def write_universe_report(
    out_dir: Path,
    *,
    run: Mapping[str, Any],
    evaluation: UniverseEvaluation,
    fold_table: pd.DataFrame,
    model_table: pd.DataFrame,
    seeds: SeedSet | None = None,
) -> Path:
    """Write ``report.html`` and the PNGs of :data:`UNIVERSE_PLOT_FILES`; return the HTML.

    ``seeds``: the seeds of the run's configuration (see
    :func:`lstm_madness.report.html.write_report`)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    ev, s, ls = evaluation, evaluation.settings, evaluation.long_short
    assert ls is not None
    start, end = pd.Timestamp(ev.dates[0]).date(), pd.Timestamp(ev.dates[-1]).date()
    target = run.get("target") or dig(run, "config.data.target")
    intro = (
        f"Universe study {run.get('target', '')}: each day long the {ls.top_k} highest and "
        f"short the {ls.top_k} lowest predictions of {ev.primary}, each 1/{2 * ls.top_k} of "
        f"capital. Test period {start} to {end} ({ev.n_days} days), costs {s.cost_bps} + "
        f"{s.slippage_bps} bps per unit turnover, borrow {s.short_borrow_bps} bps a year."
    )
    return write_page(
        out,
        run=run,
        evaluation=ev,
        answer=universe_answer(ev, target),
        intro=intro,
        sections=universe_sections(ev, out),
        model_table=model_table,
        fold_table=fold_table,
        fold_title="Folds",
        seeds=seeds,
    )
