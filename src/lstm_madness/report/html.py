"""The self-contained HTML report of a single-asset run (one asset timed), and the
run comparison's names.

:func:`write_report` writes the PNG files of :data:`PLOT_FILES` and one HTML file with the
same images embedded as base64, so the HTML can be mailed or archived alone. The page is
:func:`lstm_madness.report.page.write_page`'s, shared with the universe report
(:mod:`lstm_madness.report.universe`); this module contributes the single asset's
sections: its backtest against buy-and-hold, the forecast tests, the calibration deciles
and the plots.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd
from matplotlib.figure import Figure

from lstm_madness.evaluation.calibration import decile_table, hits
from lstm_madness.evaluation.judgement import Evaluation, short_name
from lstm_madness.evaluation.performance import drawdowns
from lstm_madness.jsonable import dig
from lstm_madness.report import formats as fmt
from lstm_madness.report import plots
from lstm_madness.report.blocks import escape, image, kv_table
from lstm_madness.report.compare import COMPARE_FORMATS, comparability, compare_table
from lstm_madness.report.page import REPORT_FILE, write_page
from lstm_madness.report.sections import (
    SEED_PLOT_FILE,
    performance_section,
    report_title,
    seeds_html,
    significance_section,
    tests_rows,
    verdict_answer,
    who,
)
from lstm_madness.report.seeds import SeedSet

__all__ = [
    "COMPARE_FORMATS",
    "PLOT_FILES",
    "REPORT_FILE",
    "SEED_PLOT_FILE",
    "answer_sentence",
    "comparability",
    "compare_table",
    "decile_frame",
    "report_title",
    "seeds_html",
    "single_asset_sections",
    "write_report",
]

#: PNG file names written next to the HTML, in report order.
PLOT_FILES = (
    "predicted_vs_actual.png",
    "calibration.png",
    "pnl_vs_buy_hold.png",
    "cumulative_predicted.png",
    "drawdown.png",
    "rolling_hit_rate.png",
    "rolling_sharpe.png",
)

_OUTCOMES_NOTE = (
    "At daily scale predictions are far smaller than outcomes, so the raw scatter is nearly "
    "a vertical line; the calibration plot beside it bins the test days by decile of the "
    "prediction. A useful forecast has the mean next-day return and the hit rate rising from "
    "the lowest decile to the highest."
)


def _forecast_figures(
    ev: Evaluation,
    test_frame: pd.DataFrame,
    train_frame: pd.DataFrame | None,
    deciles: pd.DataFrame,
) -> dict[str, tuple[str, Figure]]:
    """The figures of the forecasts against the outcomes, by PNG file name."""
    p, task = ev.primary, ev.task
    yt = test_frame["y_true"].to_numpy(dtype=float)
    yp = test_frame[p].to_numpy(dtype=float)
    tr = train_frame if train_frame is not None and p in train_frame else None
    # classification scatter: probability vs the realised return the position earned
    scatter_y = ev.asset_returns if task == "classification" else yt
    scatter_tr = None if tr is None or task == "classification" else tr["y_true"].to_numpy()
    scatter = plots.plot_predicted_vs_actual(
        scatter_y,
        yp,
        task=task,
        model=p,
        train_true=scatter_tr,
        train_pred=None if scatter_tr is None else tr[p].to_numpy(),
    )
    cumulative = plots.plot_cumulative_returns(
        test_frame.index,
        yt,
        yp,
        task=task,
        model=p,
        train_dates=None if tr is None else tr.index,
        train_true=None if tr is None else tr["y_true"].to_numpy(),
        train_pred=None if tr is None else tr[p].to_numpy(),
    )
    return {
        "predicted_vs_actual.png": ("Predicted vs actual next-day return (raw scatter)", scatter),
        "calibration.png": (
            "Calibration: next-day return and hit rate by decile of the prediction",
            plots.plot_calibration(deciles, task=task, model=p),
        ),
        "cumulative_predicted.png": (
            "Running sum of predicted returns, the original study's chart: not a P&L",
            cumulative,
        ),
    }


def _pnl_figures(ev: Evaluation) -> dict[str, tuple[str, Figure]]:
    """The figures of the strategy's P&L against buy-and-hold, by PNG file name."""
    p, bt, label = ev.primary, ev.strategy, f"{ev.primary} ({ev.settings.rule})"
    cost_bps = ev.settings.cost_bps + ev.settings.slippage_bps
    pnl = plots.plot_pnl(
        ev.dates,
        bt.net_returns,
        bt.gross_returns,
        ev.buy_hold_returns,
        label=label,
        cost_bps=cost_bps,
    )
    drawdown = plots.plot_drawdown(
        ev.dates,
        drawdowns(bt.net_returns),
        drawdowns(ev.buy_hold_returns),
        max_drawdown=bt.net.max_drawdown,
        buy_hold_max_drawdown=ev.buy_hold.net.max_drawdown,
        label=label,
    )
    hit_rate = plots.plot_rolling_hit_rate(
        ev.dates, hits(ev.y_true, ev.predictions[p], ev.task), hit_rate=ev.hit.hit_rate, model=p
    )
    sharpe = plots.plot_rolling_sharpe(ev.dates, bt.net_returns, ev.buy_hold_returns, label=label)
    return {
        "pnl_vs_buy_hold.png": ("Cumulative P&L vs buy-and-hold", pnl),
        "drawdown.png": ("Drawdown", drawdown),
        "rolling_hit_rate.png": ("Rolling one-year hit rate", hit_rate),
        "rolling_sharpe.png": ("Rolling one-year Sharpe ratio", sharpe),
    }


def decile_frame(ev: Evaluation) -> pd.DataFrame:
    """The primary model's :func:`~lstm_madness.evaluation.calibration.decile_table`:
    realised next-day returns of the asset, hits against the labels."""
    return decile_table(
        ev.predictions[ev.primary], ev.asset_returns, labels=ev.y_true, task=ev.task
    )


def _decile_html(deciles: pd.DataFrame, task: str) -> str:
    clf = task == "classification"
    what = "probability" if clf else "prediction"

    def show(v: Any) -> str:
        return fmt.percent(v) if clf else fmt.percent(v, 3)

    head = (
        f"<tr><th>decile</th><th>days</th><th>{escape(what)} from</th><th>to</th>"
        "<th>mean next-day return</th><th>95% band</th><th>hit rate</th></tr>"
    )
    rows = "".join(
        f"<tr><td>{escape(b)}</td><td>{escape(fmt.count(r.n))}</td>"
        f"<td>{escape(show(r.pred_low))}</td><td>{escape(show(r.pred_high))}</td>"
        f"<td>{escape(fmt.percent(r['mean'], 3))}</td>"
        f"<td>{escape(fmt.percent(r.low, 3))} to {escape(fmt.percent(r.high, 3))}</td>"
        f"<td>{escape(fmt.percent(r.hit_rate))}</td></tr>"
        for b, r in deciles.iterrows()
    )
    return f"<table>{head}{rows}</table>"


def answer_sentence(ev: Evaluation, target: str | None = None) -> str:
    """The question the report answers and its answer, in one sentence (plain text)."""
    s = ev.settings
    what = "the direction of " if ev.task == "classification" else ""
    asset = f"{target}'s" if target else "the target's"
    cost = fmt.bps(s.cost_bps + s.slippage_bps)
    question = (
        f"Does {who(ev.primary)} predict {what}{asset} next-day return well enough "
        f"to trade after {cost} of costs?"
    )
    return verdict_answer(ev, question)


def single_asset_sections(
    ev: Evaluation,
    out: Path,
    test_frame: pd.DataFrame,
    train_frame: pd.DataFrame | None = None,
) -> list[str]:
    """The single asset's sections of the page (HTML), writing the PNGs of
    :data:`PLOT_FILES` into ``out``: its backtest against buy-and-hold, the forecast
    tests, significance, the forecasts against the outcomes (scatter, calibration and the
    decile table) and the plots."""
    deciles = decile_frame(ev)
    figures = {**_forecast_figures(ev, test_frame, train_frame, deciles), **_pnl_figures(ev)}
    imgs = [image(figures[name][1], out / name, figures[name][0]) for name in PLOT_FILES]
    perf = {
        f"{ev.primary} net": ev.strategy.net,
        f"{ev.primary} gross": ev.strategy.gross,
        "buy-and-hold": ev.buy_hold.net,
    }
    perf.update({f"{short_name(k)} net": b.net for k, b in ev.baselines.items()})
    return [
        performance_section(
            "Backtest (test period, out of sample)",
            "A prediction dated t sets the position held from close t to close t+1. Net = "
            "gross − turnover × cost; buy-and-hold pays one entry cost.",
            perf,
        ),
        "<h2>Forecast tests</h2>",
        kv_table(tests_rows(ev), ("test", "result")),
        significance_section(ev),
        "<h2>Forecasts against outcomes</h2>",
        f"<p class='muted'>{escape(_OUTCOMES_NOTE)}</p>",
        f"<div class='pair'>{imgs[0]}{imgs[1]}</div>",
        _decile_html(deciles, ev.task),
        "<h2>Plots</h2>",
        *imgs[2:],
    ]


def write_report(
    out_dir: Path,
    *,
    run: Mapping[str, Any],
    evaluation: Evaluation,
    test_frame: pd.DataFrame,
    fold_table: pd.DataFrame,
    model_table: pd.DataFrame,
    train_frame: pd.DataFrame | None = None,
    seeds: SeedSet | None = None,
) -> Path:
    """Write the report of one run: the PNGs of :data:`PLOT_FILES` and ``report.html``.

    Parameters
    ----------
    out_dir : Path
        Created if missing; existing files of the same names are overwritten.
    run : mapping
        ``id``, ``name``, ``status``, ``started``, ``config`` (dict) and ``timings``
        (dict of phase -> seconds).
    evaluation : Evaluation
        From :func:`lstm_madness.evaluation.study.evaluate`.
    test_frame : DataFrame
        Index ``date`` (test dates); column ``y_true`` and one column per model's
        prediction, including ``evaluation.primary``.
    fold_table, model_table : DataFrame
        Per-fold results and the model comparison (shown as given, escaped).
    train_frame : DataFrame, optional
        Same columns on the training period; drawn grey and labelled in-sample.
    seeds : SeedSet, optional
        The seeds of the run's configuration (the run among them): a section with each
        seed's figures and the P&L of every seed (:data:`SEED_PLOT_FILE`) comes before
        this run's details.

    Returns
    -------
    Path
        The HTML file.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    ev, s = evaluation, evaluation.settings
    for col in ("y_true", ev.primary):
        if col not in test_frame:
            raise KeyError(f"test_frame lacks column {col!r}")
    start, end = pd.Timestamp(ev.dates[0]).date(), pd.Timestamp(ev.dates[-1]).date()
    target = run.get("target") or dig(run, "config.data.target")
    return write_page(
        out,
        run=run,
        evaluation=ev,
        answer=answer_sentence(ev, target),
        intro=f"Test period {start} to {end} ({ev.n_days} days), task {ev.task}, rule "
        f"{s.rule}, costs {s.cost_bps} + {s.slippage_bps} bps per unit turnover.",
        sections=single_asset_sections(ev, out, test_frame, train_frame),
        model_table=model_table,
        fold_table=fold_table,
        seeds=seeds,
    )
