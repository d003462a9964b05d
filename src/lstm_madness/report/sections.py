"""The sections every report shares: title, verdict, significance, seeds, run.

A report page (:mod:`lstm_madness.report.page`) is assembled from these and from the
sections of its study kind (:mod:`lstm_madness.report.html` for one asset,
:mod:`lstm_madness.report.universe` for a universe).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from lstm_madness.evaluation.judgement import Evaluation
from lstm_madness.evaluation.performance import Performance
from lstm_madness.jsonable import dig
from lstm_madness.report import formats as fmt
from lstm_madness.report import plots
from lstm_madness.report.blocks import escape, image, kv_table, performance_table, plural
from lstm_madness.report.seeds import SeedSet

__all__ = [
    "SEED_PLOT_FILE",
    "at_finish_html",
    "import_html",
    "performance_section",
    "report_title",
    "run_rows",
    "seeds_html",
    "significance_rows",
    "significance_section",
    "study_name",
    "tests_rows",
    "verdict_answer",
    "verdict_html",
    "who",
]

#: The P&L of every seed, written beside the HTML when the report covers a seed set.
SEED_PLOT_FILE = "seeds_pnl.png"


def verdict_html(ev: Evaluation) -> str:
    """The verdict box, its warnings (too good to be true, ...) in a box above it."""
    v = ev.verdict
    items = [f"<li class='fail'>✗ {escape(m)}</li>" for m in v.reasons]
    items += [f"<li class='pass'>✓ {escape(m)}</li>" for m in v.passed]
    items += [f"<li class='note'>· {escape(m)}</li>" for m in v.notes]
    cls = "yes" if v.tradeable else "no"
    warnings = "".join(f"<li>! {escape(m)}</li>" for m in v.warnings)
    return (
        (f"<div class='verdict warnings'><ul>{warnings}</ul></div>" if warnings else "")
        + f"<div class='verdict {cls}'><h2>Verdict: {escape(v.label)}</h2>"
        f"<ul>{''.join(items)}</ul>"
        "<p class='muted'>TRADEABLE needs, out of sample and net of costs: a test period "
        "long enough to decide, net Sharpe above buy-and-hold, a forecast significantly "
        "better than the no-information forecast (the zero return; for a direction "
        "forecast always-up and majority) with positive net P&amp;L, a Deflated Sharpe "
        "Ratio at or above the threshold, and StepM selecting this run among the trial "
        "set's strategies that beat buy-and-hold. SPA is the trial set's test, stated "
        "as a note. Every figure is defined in the project's docs/statistics.md.</p></div>"
    )


def tests_rows(ev: Evaluation) -> list[tuple[str, str]]:
    """Diebold–Mariano against every other forecast, Pesaran–Timmermann, the hit rate and
    R²_oos, as (label, value) rows."""
    rows = [
        (
            f"Diebold–Mariano vs {name} ({r.loss} loss)",
            f"stat {fmt.ratio(r.statistic)}, p = {fmt.pvalue(r.pvalue)}",
        )
        for name, r in ev.dm.items()
    ]
    rows += [
        (
            "Pesaran–Timmermann (direction)",
            f"stat {fmt.ratio(ev.pt.statistic)}, p = {fmt.pvalue(ev.pt.pvalue)}",
        ),
        (
            f"hit rate ({ev.hit.label})",
            f"{fmt.percent(ev.hit.hit_rate)} ({ev.hit.hits}/{ev.hit.n}), "
            f"p = {fmt.pvalue(ev.hit.pvalue)}"
            if ev.hit.n
            else f"{fmt.MISSING} (no prediction calls a direction)",
        ),
        ("Campbell–Thompson R²_oos", fmt.fixed(ev.r2_oos, 4)),
    ]
    return rows


def significance_rows(ev: Evaluation) -> list[tuple[str, str]]:
    """Sharpe t-test, PSR, DSR, merged duplicates, both bootstrap CIs, StepM, SPA, PBO,
    both break-even costs and the seed spread, as (label, value) rows."""
    d, sc, ec, spa, pbo = ev.dsr, ev.sharpe_ci, ev.excess_ci, ev.spa, ev.pbo
    lvl = f"{sc.level:.0%}"
    rows = [
        (
            "Sharpe t-statistic",
            f"{fmt.ratio(ev.sharpe_test.tstat)} (p = {fmt.pvalue(ev.sharpe_test.pvalue)})",
        ),
        ("Probabilistic Sharpe Ratio (vs 0)", fmt.probability(d.psr)),
        (
            f"Deflated Sharpe Ratio ({plural(d.trials, 'distinct trial')})",
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
            f"{fmt.percent(ec.estimate)} [{fmt.percent(ec.low)}, {fmt.percent(ec.high)}] "
            f"(mean block {ec.block_length:.1f} days, {ec.reps} reps)",
        ),
        (
            "StepM vs buy-and-hold (this run, family-wise error "
            f"{ev.settings.thresholds.fwer:.0%} over the trial set)",
            ("selected" if ev.stepm_selected else "not selected")
            + (
                f" ({len(ev.stepm.superior)} of {plural(ev.stepm.n_models, 'strategy')}"
                f" selected; mean block {ev.stepm.block_length:.1f} days, "
                f"{ev.stepm.reps} reps)"
                if ev.stepm is not None
                else ""
            ),
        ),
        (
            f"Hansen SPA of the trial set vs buy-and-hold ({plural(spa.n_models, 'strategy')})",
            f"p = {fmt.pvalue(spa.pvalue)} (H0: no strategy in the trial set beats it; mean block "
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


def import_html(spec: Mapping[str, Any] | None) -> str:
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
        f"<p class='muted'>Imported forecasts: model {escape(spec.get('model'))} of "
        f"{escape(spec.get('file'))} (sha256 {escape(str(spec.get('checksum', ''))[:12])}…), task "
        f"{escape(spec.get('task'))}, alignment {escape(spec.get('alignment'))} ({escape(meaning)})"
        + (", gaps allowed (no position on missing days)" if spec.get("allow_gaps") else "")
        + (f", {escape(declared)} trials declared outside the tool" if declared else "")
        + ".</p>"
    )


def run_rows(run: Mapping[str, Any]) -> list[tuple[str, str]]:
    """The run's id, name, status, start and timings, as (label, value) rows."""
    rows = [(k, str(run.get(k, "–"))) for k in ("id", "name", "status", "started")]
    timings = run.get("timings") or {}
    if isinstance(timings, Mapping):  # each time says what it covers
        rows += fmt.timing_rows(timings)
    return rows


def at_finish_html(run: Mapping[str, Any]) -> str:
    """The note that the verdict is judged against another trial set than at the run's
    finish (``run["at_finish_note"]``), or nothing."""
    note = run.get("at_finish_note")
    return f"<p class='muted'><b>{escape(note)}</b></p>" if note else ""


def study_name(run: Mapping[str, Any]) -> str:
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
    return f"{study_name(run)}{where}, run {run.get('id', '?')}"


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
    head = "".join(f"<th>{escape(h)}</th>" for h in seeds.headers())
    marked = " class='shown'"
    body = "".join(
        f"<tr{marked if r.run_id == shown else ''}>"
        + "".join(f"<td>{escape(c)}</td>" for c in cells)
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
        figure = image(fig, out / SEED_PLOT_FILE, "Cumulative net P&L of every seed")
    return (
        f"<h2>All {len(seeds)} seeds of this configuration</h2>"
        "<p class='muted'>The same config and data trained with different seeds, each a "
        "stored run and a trial. Net Sharpe "
        f"{escape(seeds.spread_text())} ({escape(seeds.benchmark)} "
        f"{escape(fmt.ratio(seeds.buy_hold_sharpe))}). Every seed: "
        f"<code>{escape(seeds.compare_command())}</code>.</p>"
        f"<table><tr>{head}</tr>{body}</table>"
        f"{figure}"
        f"<p class='answer'>The rest of this report details {escape(run.name)}, "
        f"{escape(seeds.why(shown))}.</p>"
    )


def verdict_answer(ev: Evaluation, question: str, *, benchmark: str = "buy-and-hold") -> str:
    """``question`` and its answer from the verdict, in one sentence (plain text): the net
    Sharpe against the ``benchmark``'s over the test days, with the DSR when tradeable,
    else the first reason beyond the Sharpe comparison."""
    net, bh = ev.strategy.net.sharpe, ev.buy_hold.net.sharpe
    numbers = (
        f"net Sharpe {fmt.ratio(net)} vs {benchmark} {fmt.ratio(bh)} over {ev.n_days} test days"
    )
    if ev.verdict.tradeable:
        answer = (
            f"Yes, on this test period: {numbers}, DSR {fmt.probability(ev.dsr.dsr)} "
            f"after {plural(ev.dsr.trials, 'trial')}."
        )
    else:
        reasons = [r for r in ev.verdict.reasons if not r.startswith("net Sharpe")]
        why = f"; {reasons[0]}" if reasons else ""
        answer = f"No: {numbers}{why}."
    return f"{question} {answer}"


def who(primary: str) -> str:
    """The judged model in words: ``an LSTM on past returns``, or the forecast's name."""
    networks = {"lstm": "an LSTM on past returns", "gru": "a GRU on past returns"}
    return networks.get(primary, f"the forecast “{primary}”")


def performance_section(title: str, note: str, columns: Mapping[str, Performance]) -> str:
    """A section of the backtest's figures: heading, a muted note, one column each."""
    head = f"<h2>{escape(title)}</h2><p class='muted'>{escape(note)}</p>"
    return head + performance_table(columns)


def significance_section(ev: Evaluation) -> str:
    """The section "Significance, counting the tries" (:func:`significance_rows`)."""
    rows = kv_table(significance_rows(ev), ("statistic", "value"))
    return f"<h2>Significance, counting the tries</h2>{rows}"
