"""The report of a universe study (cross-sectional long-short): HTML and PNGs.

Figures draw the numbers of :class:`~lstm_madness.evaluation.universe_study.UniverseEvaluation`
(daily returns of the book, its legs and the equal-weight book, the rolling rank IC, the
prediction-quintile returns, the members scored per day); none is recomputed here beyond
compounding daily returns into a curve.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import PercentFormatter

from lstm_madness.cli.tables import fmt
from lstm_madness.evaluation.study import short_name
from lstm_madness.evaluation.universe_study import UniverseEvaluation
from lstm_madness.jsonable import jsonable
from lstm_madness.report import plots
from lstm_madness.report.html import (
    _CSS,
    _at_finish_html,
    _e,
    _frame_html,
    _img,
    _kv_table,
    _performance_table,
    _run_rows,
    _significance_rows,
    _verdict_html,
    report_title,
    seeds_html,
)
from lstm_madness.report.seeds import SeedSet

#: PNG files written beside ``report.html``, in the order shown.
UNIVERSE_PLOT_FILES = (
    "legs_pnl.png",
    "rolling_ic.png",
    "quintiles.png",
    "members.png",
)
ROLLING_IC_DAYS = 63  #: one quarter


def plot_legs(dates: Any, legs: Mapping[str, np.ndarray], *, title: str) -> Figure:
    """Cumulative compounded net return of each daily return series in ``legs``."""
    fig, ax = plots._figure(title)
    d = plots._dates(dates)
    for label, r in legs.items():
        ax.plot(d, (np.cumprod(1.0 + np.asarray(r, dtype=float)) - 1.0) * 100, lw=1.2, label=label)
    ax.yaxis.set_major_formatter(PercentFormatter())
    ax.set_ylabel("cumulative net return")
    ax.legend(loc="upper left", fontsize=8)
    plots._date_axis(ax)
    return fig


def plot_rolling_ic(dates: Any, rolling: np.ndarray, mean: float, *, window: int) -> Figure:
    """The rolling mean of the daily rank IC, with the whole period's mean."""
    fig, ax = plots._figure(f"Rank IC, {window}-day rolling mean (whole period {mean:.3f})")
    ax.plot(plots._dates(dates), rolling, color=plots.COLORS["strategy"], lw=1.2)
    ax.axhline(0.0, color="black", lw=0.8)
    ax.axhline(mean, color=plots.COLORS["buy_hold"], lw=1, ls="--", label="mean")
    ax.set_ylabel("Spearman IC")
    ax.legend(loc="upper left", fontsize=8)
    plots._date_axis(ax)
    return fig


def plot_quintiles(quintiles: np.ndarray, *, model: str) -> Figure:
    """Mean next-day return of each prediction quintile (lowest predictions first)."""
    fig, ax = plots._figure(f"Mean next-day return by prediction quintile ({model})")
    q = np.asarray(quintiles, dtype=float) * 1e4
    ax.bar([f"Q{i + 1}" for i in range(len(q))], q, color=plots.COLORS["strategy"])
    ax.axhline(0.0, color="black", lw=0.8)
    ax.set_ylabel("bps a day")
    ax.set_xlabel("quintile of the day's predictions (Q1 lowest)")
    return fig


def plot_members(dates: Any, members: np.ndarray, top_k: int) -> Figure:
    """Members scored (ranked) per day, and the 2·top_k needed to trade."""
    fig, ax = plots._figure("Members scored per day")
    ax.plot(plots._dates(dates), members, color=plots.COLORS["strategy"], lw=1.2)
    ax.axhline(2 * top_k, color=plots.COLORS["buy_hold"], ls="--", lw=1, label="2 × top_k")
    ax.set_ylim(bottom=0)
    ax.set_ylabel("members")
    ax.legend(loc="lower right", fontsize=8)
    plots._date_axis(ax)
    return fig


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
    ev = evaluation
    ls = ev.long_short
    assert ls is not None
    p = ev.primary
    legs = {
        f"{p} long-short": ls.book.net_returns,
        "long leg": ls.book.leg("long"),
        "short leg (as earned)": ls.book.leg("short"),
        "equal-weight book": ls.buy_and_hold.net_returns,
    }
    figures = [
        ("Cumulative net P&L: long-short book, its legs and the equal-weight book",
         plot_legs(ev.dates, legs, title="Cumulative net return (test period, out of sample)")),
        ("Rolling rank IC", plot_rolling_ic(ev.dates, ev.rolling_rank_ic(ROLLING_IC_DAYS),
                                            ev.rank_ics[p].mean, window=ROLLING_IC_DAYS)),
        ("Prediction quintiles", plot_quintiles(ev.quintiles, model=p)),
        ("Members scored per day", plot_members(ev.dates, ls.members, ls.top_k)),
    ]  # fmt: skip
    imgs = [
        _img(fig, out / name, alt)
        for name, (alt, fig) in zip(UNIVERSE_PLOT_FILES, figures, strict=True)
    ]
    perf = {
        f"{p} net": ev.strategy.net,
        f"{p} gross": ev.strategy.gross,
        "equal-weight book": ev.buy_hold.net,
    }
    perf.update({f"{short_name(k)} net": b.net for k, b in ev.baselines.items()})
    title = report_title(run)
    start, end = pd.Timestamp(ev.dates[0]).date(), pd.Timestamp(ev.dates[-1]).date()
    s = ev.settings
    seed_section = seeds_html(seeds, ev, int(run["id"]), out)
    config = json.dumps(jsonable(run.get("config") or {}), indent=2, sort_keys=True)
    legs_rows = [
        ("members scored a day (mean)", fmt.fixed(ls.members_mean, 1)),
        ("days flat (fewer than 2 × top_k members)", str(ls.days_flat)),
        ("long leg net Sharpe", fmt.ratio(ls.long_sharpe)),
        ("short leg net Sharpe (as earned)", fmt.ratio(ls.short_sharpe)),
        ("positions left at their last price (delisting return lost)",
         str(ls.book.lost_returns)),
        ("DM vs zero (daily MSE across members)", f"p = {ev.dm['zero'].pvalue:.3g}"),
        ("R²_oos vs zero (demeaned label)", fmt.fixed(ev.r2_oos, 4)),
    ]  # fmt: skip
    body = [
        f"<h1>{_e(title)}</h1>",
        f"<p class='muted'>Universe study {_e(run.get('target', ''))}: each day long the "
        f"{ls.top_k} highest and short the {ls.top_k} lowest predictions of {_e(p)}, each "
        f"1/{2 * ls.top_k} of capital. Test period {_e(start)} to {_e(end)} ({ev.n_days} "
        f"days), costs {_e(s.cost_bps)} + {_e(s.slippage_bps)} bps per unit turnover, "
        f"borrow {_e(s.short_borrow_bps)} bps a year. Generated "
        f"{_e(dt.datetime.now(dt.UTC).strftime('%Y-%m-%d %H:%M UTC'))}.</p>",
        seed_section,
        _verdict_html(ev),
        _at_finish_html(run),
        "<h2>Long-short book (test period, out of sample)</h2>",
        "<p class='muted'>Predictions dated t set the weights held from close t to close "
        "t+1. Buy-and-hold is the equal-weight book of each day's scored members.</p>",
        _performance_table(perf),
        _kv_table(legs_rows, ("statistic", "value")),
        imgs[0],
        "<h2>Ranking skill</h2>",
        _frame_html(_ic_table(ev), "no rank IC"),
        f"<div class='pair'>{imgs[1]}{imgs[2]}</div>",
        "<h2>Significance, counting the tries</h2>",
        _kv_table(_significance_rows(ev), ("statistic", "value")),
        imgs[3],
        "<h2>Model comparison</h2>",
        _frame_html(model_table, "no model table"),
        "<h2>Folds</h2>",
        _frame_html(fold_table, "no fold table"),
        "<h2>Run</h2>",
        _kv_table(_run_rows(run)),
        "<h2>Configuration</h2>",
        f"<pre>{_e(config)}</pre>",
    ]
    doc = (
        "<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
        f"<title>{_e(title)} – {_e(ev.verdict.label)}</title><style>{_CSS}</style></head>"
        f"<body>{''.join(body)}</body></html>\n"
    )
    path = out / "report.html"
    path.write_text(doc, encoding="utf-8")
    return path
