"""The self-contained HTML report of one run, and the side-by-side table of several runs.

:func:`write_report` writes the PNG files and one HTML file with the same images embedded
as base64, so the HTML can be mailed or archived alone. Every piece of text that reaches
the HTML goes through :func:`html.escape` (tables through ``DataFrame.to_html(escape=True)``).
"""

from __future__ import annotations

import base64
import datetime as dt
import html
import json
import math
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from lstm_madness.evaluation.backtest import Performance, drawdowns
from lstm_madness.evaluation.calibration import decile_table, hits
from lstm_madness.evaluation.study import Evaluation, jsonable, short_name
from lstm_madness.jsonable import dig
from lstm_madness.report import formats as fmt
from lstm_madness.report import plots
from lstm_madness.report.seeds import SeedSet

__all__ = [
    "COMPARE_FORMATS",
    "PLOT_FILES",
    "answer_sentence",
    "comparability",
    "compare_table",
    "decile_frame",
    "report_title",
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
REPORT_FILE = "report.html"
#: The P&L of every seed, written beside the HTML when the report covers a seed set.
SEED_PLOT_FILE = "seeds_pnl.png"

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;max-width:1100px;
margin:2em auto;padding:0 1em;color:#222;line-height:1.45}
h1{font-size:1.6em;margin-bottom:.2em}h2{border-bottom:1px solid #ddd;padding-bottom:.2em;
margin-top:1.8em}
table{border-collapse:collapse;margin:.6em 0;font-size:.9em}
th,td{border:1px solid #ddd;padding:.25em .6em;text-align:right}
th{background:#f5f5f5}td:first-child,th:first-child{text-align:left}
.verdict{padding:1em 1.2em;border-radius:6px;margin:1em 0}
.verdict h2{margin:0;border:none;font-size:1.5em}
.no{background:#fdecea;border:2px solid #c62828}.yes{background:#e8f5e9;border:2px solid #2e7d32}
.fail{color:#b71c1c}.pass{color:#1b5e20}.warn{color:#e65100}
.warnings{background:#fff8e1;border:2px solid #e65100;color:#e65100}.warnings ul{margin:0}
img{max-width:100%;border:1px solid #eee;margin:.5em 0}
pre{background:#f7f7f7;padding:.8em;overflow-x:auto;font-size:.85em}
.muted{color:#666;font-size:.9em}
.answer{font-size:1.15em;background:#f7f7f7;border-left:4px solid #555;padding:.6em 1em}
.pair{display:flex;gap:1em;align-items:flex-start}.pair figure{flex:1;margin:0}
tr.shown td{font-weight:600;background:#f0f6ff}
"""


# ---------------------------------------------------------------------- formatting


def _e(x: Any) -> str:
    return html.escape(str(x), quote=True)


_pct = fmt.percent
_p = fmt.pvalue


def _cell(column: str, value: Any) -> str:
    """Text of a model / fold table cell, by the column's name (the CLI's formats)."""
    name = column.lower()
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return fmt.MISSING
    if isinstance(value, bool | np.bool_):
        return fmt.yes_no(value)
    is_date = ("start" in name or "end" in name) and isinstance(value, str)
    if hasattr(value, "strftime") or is_date:
        return fmt.date(value)
    if not isinstance(value, int | float | np.integer | np.floating):
        return str(value)
    if "mse" in name or "mae" in name or "loss" in name:
        return fmt.scientific(value)
    if "hit" in name:
        return fmt.percent(value)
    if "r2" in name or "r²" in name:
        return fmt.fixed(value, 4)
    if name.endswith("_s"):
        return fmt.seconds(value)
    if "sharpe" in name:
        return fmt.ratio(value)
    if isinstance(value, int | np.integer) or float(value).is_integer():
        return fmt.count(value)
    return f"{value:.4g}"


def _plural(n: int, word: str) -> str:
    if n == 1:
        return f"1 {word}"
    return f"{n} {word[:-1]}ies" if word.endswith("y") else f"{n} {word}s"


def _kv_table(rows: list[tuple[str, str]], header: tuple[str, str] | None = None) -> str:
    head = f"<tr><th>{_e(header[0])}</th><th>{_e(header[1])}</th></tr>" if header else ""
    body = "".join(f"<tr><td>{_e(k)}</td><td>{_e(v)}</td></tr>" for k, v in rows)
    return f"<table>{head}{body}</table>"


#: Display names of model / fold table columns.
_HEADERS = {
    "mse": "MSE",
    "mae": "MAE",
    "r2_oos": "R²_oos",
    "hit_rate": "hit rate",
    "n": "predictions",  # test days; member-days in a universe study
    "n_train": "training samples",  # of the fold, in the fold table
    "epochs_run": "epochs",
    "train_s": "training time (this run)",
    "train_start": "train from",
    "train_end": "train to",
    "test_start": "test from",
    "test_end": "test to",
    "n_test": "test days",
}


def _frame_html(df: pd.DataFrame | None, empty: str) -> str:
    if df is None or df.empty:
        return f"<p class='muted'>{_e(empty)}</p>"
    shown = pd.DataFrame(
        {_HEADERS.get(str(c), str(c)): [_cell(str(c), v) for v in df[c]] for c in df.columns},
        index=df.index,
    )
    return shown.to_html(
        escape=True, na_rep=fmt.MISSING, border=0, index=not isinstance(df.index, pd.RangeIndex)
    )


# ---------------------------------------------------------------------- sections

_PERF_ROWS: list[tuple[str, str, Callable[[Any], str]]] = [
    ("total return", "total_return", _pct),
    ("CAGR", "cagr", _pct),
    ("volatility (annualized)", "volatility", _pct),
    ("Sharpe (annualized)", "sharpe", fmt.ratio),
    ("Sortino (annualized)", "sortino", fmt.ratio),
    ("max drawdown", "max_drawdown", _pct),
    ("max drawdown duration (days)", "max_drawdown_days", fmt.count),
    ("Calmar", "calmar", fmt.ratio),
    ("win rate (invested days with a positive return)", "win_rate", _pct),
    ("turnover (mean per day)", "turnover", lambda v: fmt.fixed(v, 3)),
    ("exposure (mean |position|)", "exposure", lambda v: fmt.fixed(v, 2)),
    ("average holding period (days)", "avg_holding_days", lambda v: fmt.fixed(v, 1)),
]


def _performance_table(columns: Mapping[str, Performance]) -> str:
    head = "<tr><th>metric</th>" + "".join(f"<th>{_e(c)}</th>" for c in columns) + "</tr>"
    rows = []
    for label, attr, show in _PERF_ROWS:
        cells = "".join(f"<td>{_e(show(getattr(p, attr)))}</td>" for p in columns.values())
        rows.append(f"<tr><td>{_e(label)}</td>{cells}</tr>")
    return f"<table>{head}{''.join(rows)}</table>"


def _verdict_html(ev: Evaluation) -> str:
    """The verdict box, its warnings (too good to be true, ...) in a box above it."""
    v = ev.verdict
    items = [f"<li class='fail'>✗ {_e(m)}</li>" for m in v.reasons]
    items += [f"<li class='pass'>✓ {_e(m)}</li>" for m in v.passed]
    items += [f"<li class='note'>· {_e(m)}</li>" for m in v.notes]
    cls = "yes" if v.tradeable else "no"
    warnings = "".join(f"<li>! {_e(m)}</li>" for m in v.warnings)
    return (
        (f"<div class='verdict warnings'><ul>{warnings}</ul></div>" if warnings else "")
        + f"<div class='verdict {cls}'><h2>Verdict: {_e(v.label)}</h2>"
        f"<ul>{''.join(items)}</ul>"
        "<p class='muted'>TRADEABLE needs, out of sample and net of costs: a test period "
        "long enough to decide, net Sharpe above buy-and-hold, a forecast significantly "
        "better than the no-information forecast (the zero return; for a direction "
        "forecast always-up and majority) with positive net P&amp;L, a Deflated Sharpe "
        "Ratio at or above the threshold, and StepM selecting this run among the trial "
        "set's strategies that beat buy-and-hold. SPA is the trial set's test, stated "
        "as a note. Every figure is defined in the project's docs/statistics.md.</p></div>"
    )


def _tests_rows(ev: Evaluation) -> list[tuple[str, str]]:
    rows = [
        (
            f"Diebold–Mariano vs {name} ({r.loss} loss)",
            f"stat {fmt.ratio(r.statistic)}, p = {_p(r.pvalue)}",
        )
        for name, r in ev.dm.items()
    ]
    rows += [
        (
            "Pesaran–Timmermann (direction)",
            f"stat {fmt.ratio(ev.pt.statistic)}, p = {_p(ev.pt.pvalue)}",
        ),
        (
            "hit rate (binomial vs 50%; predictions that call a direction)",
            f"{_pct(ev.hit.hit_rate)} ({ev.hit.hits}/{ev.hit.n}), p = {_p(ev.hit.pvalue)}"
            if ev.hit.n
            else f"{fmt.MISSING} (no prediction calls a direction)",
        ),
        ("Campbell–Thompson R²_oos", fmt.fixed(ev.r2_oos, 4)),
    ]
    return rows


def _significance_rows(ev: Evaluation) -> list[tuple[str, str]]:
    d, sc, ec, spa, pbo = ev.dsr, ev.sharpe_ci, ev.excess_ci, ev.spa, ev.pbo
    lvl = f"{sc.level:.0%}"
    rows = [
        (
            "Sharpe t-statistic",
            f"{fmt.ratio(ev.sharpe_test.tstat)} (p = {_p(ev.sharpe_test.pvalue)})",
        ),
        ("Probabilistic Sharpe Ratio (vs 0)", fmt.probability(d.psr)),
        (
            f"Deflated Sharpe Ratio ({_plural(d.trials, 'distinct trial')})",
            f"{fmt.probability(d.dsr)} (expected max Sharpe {fmt.ratio(d.benchmark_sharpe)}; "
            f"V: {fmt.variance_source(d.variance_source)})",
        ),
        (
            "identical forecasts merged in the trial set",
            f"{ev.duplicates} (each counts once; the earliest run stands for it)",
        ),
        (
            f"net Sharpe, {lvl} stationary-bootstrap CI",
            f"{fmt.ratio(sc.estimate)} [{fmt.ratio(sc.low)}, {fmt.ratio(sc.high)}] "
            f"(mean block {sc.block_length:.1f} days, {sc.reps} reps)",
        ),
        (
            f"excess return over buy-and-hold (ann.), {lvl} stationary-bootstrap CI",
            f"{_pct(ec.estimate)} [{_pct(ec.low)}, {_pct(ec.high)}] "
            f"(mean block {ec.block_length:.1f} days, {ec.reps} reps)",
        ),
        (
            "StepM vs buy-and-hold (this run, family-wise error "
            f"{ev.settings.thresholds.fwer:.0%} over the trial set)",
            ("selected" if ev.stepm_selected else "not selected")
            + (
                f" ({len(ev.stepm.superior)} of {_plural(ev.stepm.n_models, 'strategy')}"
                f" selected; mean block {ev.stepm.block_length:.1f} days, "
                f"{ev.stepm.reps} reps)"
                if ev.stepm is not None
                else ""
            ),
        ),
        (
            f"Hansen SPA of the trial set vs buy-and-hold ({_plural(spa.n_models, 'strategy')})",
            f"p = {_p(spa.pvalue)} (H0: no strategy in the trial set beats it; mean block "
            f"{spa.block_length:.1f} days, {spa.reps} reps)",
        ),
        (
            "Probability of Backtest Overfitting (trial set)",
            fmt.probability(pbo.pbo) if pbo.reason is None else f"not computed: {pbo.reason}",
        ),
        (
            "break-even cost (bps per unit turnover: mean net return 0)",
            fmt.fixed(ev.break_even_bps, 1),
        ),
        (
            "break-even cost vs buy-and-hold (bps: net Sharpe equals buy-and-hold's)",
            fmt.fixed(ev.break_even_vs_buy_hold_bps, 1),
        ),
    ]
    if ev.seeds is not None:
        rows.append(("net Sharpe across seeds", ev.seeds.summary()))
    return rows


def _import_html(spec: Mapping[str, Any] | None) -> str:
    """Where an imported run's forecasts came from and which alignment read them."""
    if not spec:
        return ""
    meaning = {
        "next_day": "a prediction dated t is for the return from close t to close t+1",
        "same_day": "each prediction was dated with the day of the return it predicts and "
        "moved back one trading day",
    }.get(spec.get("alignment"), "")
    declared = spec.get("trials")
    return (
        f"<p class='muted'>Imported forecasts: model {_e(spec.get('model'))} of "
        f"{_e(spec.get('file'))} (sha256 {_e(str(spec.get('checksum', ''))[:12])}…), task "
        f"{_e(spec.get('task'))}, alignment {_e(spec.get('alignment'))} ({_e(meaning)})"
        + (", gaps allowed (no position on missing days)" if spec.get("allow_gaps") else "")
        + (f", {_e(declared)} trials declared outside the tool" if declared else "")
        + ".</p>"
    )


def _run_rows(run: Mapping[str, Any]) -> list[tuple[str, str]]:
    rows = [(k, str(run.get(k, "–"))) for k in ("id", "name", "status", "started")]
    timings = run.get("timings") or {}
    if isinstance(timings, Mapping):  # each time says what it covers
        rows += fmt.timing_rows(timings)
    return rows


def _at_finish_html(run: Mapping[str, Any]) -> str:
    """The note that the verdict is judged against another trial set than at the run's
    finish (``run["at_finish_note"]``), or nothing."""
    note = run.get("at_finish_note")
    return f"<p class='muted'><b>{_e(note)}</b></p>" if note else ""


def _study_name(run: Mapping[str, Any]) -> str:
    """What was run: the config's ``name``, else the run's name unless it is a sweep
    point's label, else the validation scheme and the model (``walk-forward LSTM``), or the
    imported model."""
    config = run.get("config") or {}
    if config.get("name"):
        return str(config["name"])
    if run.get("name") and run.get("sweep_id") is None:
        return str(run["name"])
    spec = run.get("import")
    if spec:
        return f"imported forecasts {spec.get('model') or ''}".strip()
    scheme = str(dig(config, "split.scheme") or "").replace("_", "-")
    kind = str(dig(config, "model.kind") or "model").upper()
    return f"{scheme} {kind}".strip()


def report_title(run: Mapping[str, Any]) -> str:
    """``<config name> — <target>, run <id>``: the report's title (the run's label, e.g. a
    sweep point's ``seed=0``, is in the run table)."""
    target = run.get("target") or dig(run, "config.data.target")
    where = f" — {target}" if target else ""
    return f"{_study_name(run)}{where}, run {run.get('id', '?')}"


def seeds_html(seeds: SeedSet | None, ev: Evaluation, shown: int, out: Path) -> str:
    """The section of a report that covers a seed set: each seed's figures (from its
    summary), their median and range, the cumulative net P&L of every seed (from its
    evaluation) and buy-and-hold's (``ev``'s, the shown run's), and which seed the rest of
    the report details. Empty without at least two seeds."""
    if seeds is None or len(seeds) < 2:
        return ""
    buy_hold = (ev.dates, ev.buy_hold_returns)
    cost_bps = ev.settings.cost_bps + ev.settings.slippage_bps
    run = seeds.get(shown)
    head = "".join(f"<th>{_e(h)}</th>" for h in seeds.headers())
    marked = " class='shown'"
    body = "".join(
        f"<tr{marked if r.run_id == shown else ''}>"
        + "".join(f"<td>{_e(c)}</td>" for c in cells)
        + "</tr>"
        for r, cells in zip(seeds.runs, seeds.rows(), strict=True)
    )
    curves = [
        (
            f"{r.name}: net Sharpe {fmt.ratio(r.figure('backtest.sharpe_net'))}",
            r.evaluation.dates,
            r.evaluation.net_returns,
        )
        for r in seeds.runs
        if r.evaluation is not None
    ]
    figure = ""
    if curves:
        drawn = [r.run_id for r in seeds.runs if r.evaluation is not None]
        fig = plots.plot_seed_pnl(
            curves,
            buy_hold,
            highlight=drawn.index(shown) if shown in drawn else None,
            benchmark=seeds.benchmark,
            cost_bps=cost_bps,
        )
        figure = _img(fig, out / SEED_PLOT_FILE, "Cumulative net P&L of every seed")
    return (
        f"<h2>All {len(seeds)} seeds of this configuration</h2>"
        "<p class='muted'>The same config and data trained with different seeds, each a "
        "stored run and a trial. Net Sharpe "
        f"{_e(seeds.spread_text())} ({_e(seeds.benchmark)} "
        f"{_e(fmt.ratio(seeds.buy_hold_sharpe))}). Every seed: "
        f"<code>{_e(seeds.compare_command())}</code>.</p>"
        f"<table><tr>{head}</tr>{body}</table>"
        f"{figure}"
        f"<p class='answer'>The rest of this report details {_e(run.name)}, "
        f"{_e(seeds.why(shown))}.</p>"
    )


def _img(fig: Figure, path: Path, alt: str) -> str:
    plots.save_figure(fig, path)
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return (
        f"<figure><img src='data:image/png;base64,{data}' alt='{_e(alt)}'>"
        f"<figcaption class='muted'>{_e(alt)} ({_e(path.name)})</figcaption></figure>"
    )


def _figures(
    ev: Evaluation,
    test_frame: pd.DataFrame,
    train_frame: pd.DataFrame | None,
    deciles: pd.DataFrame,
) -> list[tuple[str, Figure]]:
    """The report's figures in :data:`PLOT_FILES` order, drawn from the evaluation's
    numbers (drawdowns, hits, the decile table); no plot recomputes them."""
    p, task = ev.primary, ev.task
    yt = test_frame["y_true"].to_numpy(dtype=float)
    yp = test_frame[p].to_numpy(dtype=float)
    tr = train_frame if train_frame is not None and p in train_frame else None
    # classification scatter: probability vs the realised return the position earned
    scatter_y = ev.strategy.asset_returns if task == "classification" else yt
    scatter_tr = None if tr is None or task == "classification" else tr["y_true"].to_numpy()
    bt, label = ev.strategy, f"{p} ({ev.settings.rule})"
    return [
        (
            "Predicted vs actual next-day return (raw scatter)",
            plots.plot_predicted_vs_actual(
                scatter_y,
                yp,
                task=task,
                model=p,
                train_true=scatter_tr,
                train_pred=None if scatter_tr is None else tr[p].to_numpy(),
            ),
        ),
        (
            "Calibration: next-day return and hit rate by decile of the prediction",
            plots.plot_calibration(deciles, task=task, model=p),
        ),
        (
            "Cumulative P&L vs buy-and-hold",
            plots.plot_pnl(
                ev.dates,
                bt.net_returns,
                bt.gross_returns,
                ev.buy_hold_returns,
                label=label,
                cost_bps=ev.settings.cost_bps + ev.settings.slippage_bps,
            ),
        ),
        (
            "Running sum of predicted returns, the original study's chart: not a P&L",
            plots.plot_cumulative_returns(
                test_frame.index,
                yt,
                yp,
                task=task,
                model=p,
                train_dates=None if tr is None else tr.index,
                train_true=None if tr is None else tr["y_true"].to_numpy(),
                train_pred=None if tr is None else tr[p].to_numpy(),
            ),
        ),
        (
            "Drawdown",
            plots.plot_drawdown(
                ev.dates,
                drawdowns(bt.net_returns),
                drawdowns(ev.buy_hold_returns),
                max_drawdown=bt.net.max_drawdown,
                buy_hold_max_drawdown=ev.buy_hold.net.max_drawdown,
                label=label,
            ),
        ),
        (
            "Rolling one-year hit rate",
            plots.plot_rolling_hit_rate(
                ev.dates,
                hits(ev.y_true, ev.predictions[p], task),
                hit_rate=ev.hit.hit_rate,
                model=p,
            ),
        ),
        (
            "Rolling one-year Sharpe ratio",
            plots.plot_rolling_sharpe(ev.dates, bt.net_returns, ev.buy_hold_returns, label=label),
        ),
    ]


def decile_frame(ev: Evaluation) -> pd.DataFrame:
    """The primary model's :func:`~lstm_madness.evaluation.calibration.decile_table`:
    realised next-day returns of the asset, hits against the labels."""
    return decile_table(
        ev.predictions[ev.primary], ev.strategy.asset_returns, labels=ev.y_true, task=ev.task
    )


def _decile_html(deciles: pd.DataFrame, task: str) -> str:
    clf = task == "classification"
    what = "probability" if clf else "prediction"

    def show(v: Any) -> str:
        return fmt.percent(v) if clf else fmt.percent(v, 3)

    head = (
        f"<tr><th>decile</th><th>days</th><th>{_e(what)} from</th><th>to</th>"
        "<th>mean next-day return</th><th>95% band</th><th>hit rate</th></tr>"
    )
    rows = "".join(
        f"<tr><td>{_e(b)}</td><td>{_e(fmt.count(r.n))}</td>"
        f"<td>{_e(show(r.pred_low))}</td><td>{_e(show(r.pred_high))}</td>"
        f"<td>{_e(fmt.percent(r['mean'], 3))}</td>"
        f"<td>{_e(fmt.percent(r.low, 3))} to {_e(fmt.percent(r.high, 3))}</td>"
        f"<td>{_e(fmt.percent(r.hit_rate))}</td></tr>"
        for b, r in deciles.iterrows()
    )
    return f"<table>{head}{rows}</table>"


def answer_sentence(ev: Evaluation, target: str | None = None) -> str:
    """The question the report answers and its answer, in one sentence (plain text)."""
    s = ev.settings
    networks = {"lstm": "an LSTM on past returns", "gru": "a GRU on past returns"}
    who = networks.get(ev.primary, f"the forecast “{ev.primary}”")
    what = "the direction of " if ev.task == "classification" else ""
    asset = f"{target}'s" if target else "the target's"
    cost = fmt.bps(s.cost_bps + s.slippage_bps)
    question = (
        f"Does {who} predict {what}{asset} next-day return well enough "
        f"to trade after {cost} of costs?"
    )
    net, bh = ev.strategy.net.sharpe, ev.buy_hold.net.sharpe
    numbers = (
        f"net Sharpe {fmt.ratio(net)} vs buy-and-hold {fmt.ratio(bh)} over {ev.n_days} test days"
    )
    if ev.verdict.tradeable:
        answer = (
            f"Yes, on this test period: {numbers}, DSR {fmt.probability(ev.dsr.dsr)} "
            f"after {_plural(ev.dsr.trials, 'trial')}."
        )
    else:
        reasons = [r for r in ev.verdict.reasons if not r.startswith("net Sharpe")]
        why = f"; {reasons[0]}" if reasons else ""
        answer = f"No: {numbers}{why}."
    return f"{question} {answer}"


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
    ev = evaluation
    for col in ("y_true", ev.primary):
        if col not in test_frame:
            raise KeyError(f"test_frame lacks column {col!r}")
    deciles = decile_frame(ev)
    figures = _figures(ev, test_frame, train_frame, deciles)
    imgs = [
        _img(fig, out / name, alt) for name, (alt, fig) in zip(PLOT_FILES, figures, strict=True)
    ]
    perf = {
        f"{ev.primary} net": ev.strategy.net,
        f"{ev.primary} gross": ev.strategy.gross,
        "buy-and-hold": ev.buy_hold.net,
    }
    perf.update({f"{short_name(k)} net": b.net for k, b in ev.baselines.items()})
    title = report_title(run)
    start, end = pd.Timestamp(ev.dates[0]).date(), pd.Timestamp(ev.dates[-1]).date()
    config = json.dumps(jsonable(run.get("config") or {}), indent=2, sort_keys=True)
    target = run.get("target") or dig(run, "config.data.target")
    seed_section = seeds_html(seeds, ev, int(run["id"]), out)
    body = [
        f"<h1>{_e(title)}</h1>",
        f"<p class='answer'>{_e(answer_sentence(ev, target))}</p>",
        f"<p class='muted'>Test period {_e(start)} to {_e(end)} ({ev.n_days} days), task "
        f"{_e(ev.task)}, rule {_e(ev.settings.rule)}, costs {_e(ev.settings.cost_bps)} + "
        f"{_e(ev.settings.slippage_bps)} bps per unit turnover. Generated "
        f"{_e(dt.datetime.now(dt.UTC).strftime('%Y-%m-%d %H:%M UTC'))}.</p>",
        _import_html(run.get("import")),
        seed_section,
        _verdict_html(ev),
        _at_finish_html(run),
        "<h2>Backtest (test period, out of sample)</h2>",
        "<p class='muted'>A prediction dated t sets the position held from close t to close "
        "t+1. Net = gross − turnover × cost; buy-and-hold pays one entry cost.</p>",
        _performance_table(perf),
        "<h2>Forecast tests</h2>",
        _kv_table(_tests_rows(ev), ("test", "result")),
        "<h2>Significance, counting the tries</h2>",
        _kv_table(_significance_rows(ev), ("statistic", "value")),
        "<h2>Forecasts against outcomes</h2>",
        "<p class='muted'>At daily scale predictions are far smaller than outcomes, so the "
        "raw scatter is nearly a vertical line; the calibration plot beside it bins the test "
        "days by decile of the prediction. A useful forecast has the mean next-day return "
        "and the hit rate rising from the lowest decile to the highest.</p>",
        f"<div class='pair'>{imgs[0]}{imgs[1]}</div>",
        _decile_html(deciles, ev.task),
        "<h2>Plots</h2>",
        *imgs[2:],
        "<h2>Model comparison</h2>",
        _frame_html(model_table, "no model table"),
        "<h2>Per-fold results</h2>",
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
    path = out / REPORT_FILE
    path.write_text(doc, encoding="utf-8")
    return path


# ---------------------------------------------------------------------- compare

_COMPARE_ROWS: list[tuple[str, str, Callable[[Any], str]]] = [
    ("target", "target", str),
    ("status", "status", str),
    ("test start", "test_start", fmt.date),
    ("test end", "test_end", fmt.date),
    ("test days", "backtest.n_days", fmt.count),
    ("net Sharpe", "backtest.sharpe_net", fmt.ratio),
    ("gross Sharpe", "backtest.sharpe_gross", fmt.ratio),
    ("buy-and-hold Sharpe", "backtest.buy_hold_sharpe", fmt.ratio),
    ("net total return", "backtest.total_return_net", fmt.percent),
    ("max drawdown", "backtest.max_drawdown", fmt.percent),
    ("turnover / day", "backtest.turnover", lambda v: fmt.fixed(v, 2)),
    ("cost (bps)", "backtest.cost_bps", lambda v: fmt.fixed(v, 1)),
    ("slippage (bps)", "backtest.slippage_bps", lambda v: fmt.fixed(v, 1)),
    (
        "break-even cost (bps, mean net 0)",
        "backtest.break_even_cost_bps",
        lambda v: fmt.fixed(v, 1),
    ),
    (
        "break-even vs buy-and-hold (bps)",
        "backtest.break_even_vs_buy_hold_bps",
        lambda v: fmt.fixed(v, 1),
    ),
    ("DM p vs zero", "tests.dm_p_vs_zero", fmt.pvalue),
    ("PT p", "tests.pt_p", fmt.pvalue),
    ("hit rate (calls)", "tests.hit_rate", fmt.percent),
    ("hit rate p", "tests.hit_rate_p", fmt.pvalue),
    ("R²_oos", "tests.r2_oos", lambda v: fmt.fixed(v, 4)),
    # the judged model's training ("primary." reads its entry of models)
    ("epochs per fold", "primary.epochs_run", lambda v: fmt.fixed(v, 1)),
    ("epochs in all", "primary.epochs_run_total", fmt.count),
    ("training samples per fold", "primary.n_train", fmt.count),
    ("PSR", "significance.psr", fmt.probability),
    ("DSR", "significance.dsr", fmt.probability),
    ("trials", "significance.trials", fmt.count),
    ("trials at finish", "at_finish.trials", fmt.count),
    ("identical forecasts merged", "significance.duplicates", fmt.count),
    ("StepM selects this run", "significance.stepm_selected", fmt.yes_no),
    ("SPA p (trial set)", "significance.spa_p", fmt.pvalue),
    ("PBO (trial set)", "significance.pbo", fmt.probability),
    ("tradeable", "verdict.tradeable", fmt.yes_no),
]

#: How each row of :func:`compare_table` reads (label -> formatter).
COMPARE_FORMATS: dict[str, Callable[[Any], str]] = {label: f for label, _, f in _COMPARE_ROWS}


def compare_table(summaries: list[dict]) -> pd.DataFrame:
    """Side-by-side table of runs for ``madness compare``: one column per run.

    Parameters
    ----------
    summaries : list of dict
        Run summaries as in ``madness runs show --json``: ``id``, ``name`` and the
        sections ``backtest``, ``tests``, ``significance`` and ``verdict`` (missing
        values show as ``None``).

    Returns
    -------
    DataFrame
        Index: metric labels; columns: ``"<id> <name>"`` per run, in the given order.
    """
    cols: dict[str, list[Any]] = {}
    for i, s in enumerate(summaries):
        label = " ".join(str(x) for x in (s.get("id", i + 1), s.get("name")) if x)
        while label in cols:
            label += "'"
        primary = (s.get("models") or {}).get(s.get("primary_model")) or {}
        cols[label] = [
            primary.get(path.removeprefix("primary."))
            if path.startswith("primary.")
            else dig(s, path)
            for _, path, _ in _COMPARE_ROWS
        ]
    index = pd.Index([lbl for lbl, _, _ in _COMPARE_ROWS], name="metric")
    return pd.DataFrame(cols, index=index, dtype=object)


def comparability(summaries: list[dict]) -> list[str]:
    """Why figures of these runs cannot be set side by side, one sentence per difference.

    Checks the test periods, the targets and the trading costs (cost + slippage); each
    sentence names the runs' values and which figures are therefore not comparable.
    Empty when the runs agree on all three.
    """

    def ident(s: Mapping[str, Any]) -> str:
        return str(s.get("id", "?"))

    def differ(key: Callable[[Mapping[str, Any]], Any]) -> dict[Any, list[str]] | None:
        groups: dict[Any, list[str]] = {}
        for s in summaries:
            groups.setdefault(key(s), []).append(ident(s))
        return groups if len(groups) > 1 else None

    def listing(groups: dict[Any, list[str]], show: Callable[[Any], str]) -> str:
        return "; ".join(f"{show(k)} (run {', '.join(v)})" for k, v in groups.items())

    out = []
    periods = differ(lambda s: (fmt.date(s.get("test_start")), fmt.date(s.get("test_end"))))
    if periods:
        out.append(
            "test periods differ: "
            + listing(periods, lambda k: f"{k[0]} → {k[1]}")
            + ". Sharpe ratios, returns, drawdowns, hit rates and p-values are measured on "
            "different days and are not comparable; DSR, SPA and PBO count different trials."
        )
    targets = differ(lambda s: s.get("target"))
    if targets:
        out.append(
            "targets differ: "
            + listing(targets, str)
            + ". Every forecast and backtest figure is about a different asset."
        )
    costs = differ(
        lambda s: (dig(s, "backtest.cost_bps") or 0) + (dig(s, "backtest.slippage_bps") or 0)
    )
    if costs:
        out.append(
            "costs differ: "
            + listing(costs, lambda k: f"{fmt.fixed(k, 1)} bps per unit turnover")
            + ". Net Sharpe, net return, drawdown, DSR, SPA and the verdict are not comparable;"
            " gross Sharpe and the forecast tests are."
        )
    return out
