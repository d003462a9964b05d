"""Results as objects: :class:`RunResult` with ``.summary()`` (the text ``madness runs show``
prints) and ``.to_json()`` (the dict ``--json`` prints), the habit of ``arch``.

>>> result = load_run(engine, 7)          # doctest: +SKIP
>>> print(result.summary())               # doctest: +SKIP
>>> result.verdict.tradeable, result.significance["dsr"]   # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lstm_madness.errors import RunError
from lstm_madness.report.formats import at_finish_note

if TYPE_CHECKING:  # the formatting needs none of these: a cached `runs show` stays light
    import pandas as pd
    import sqlalchemy as sa

    from lstm_madness.evaluation.verdict import Verdict
    from lstm_madness.experiment.summary import RunEvaluation
    from lstm_madness.store.runs import Run

__all__ = ["RunResult", "at_finish_note", "format_html", "format_summary", "load_run"]


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(header)]

    def line(cells: list[str]) -> str:
        first = cells[0].ljust(widths[0])
        rest = [c.rjust(w) for c, w in zip(cells[1:], widths[1:], strict=True)]
        return "  ".join([first, *rest]).rstrip()

    return [line(header), *(line(r) for r in rows)]


def _model_rows(summary: Mapping[str, Any]) -> list[tuple[list[str], Mapping[str, Any]]]:
    """Each model's cells (name, MSE, MAE, R²_oos, hit rate, test days) with its metrics."""
    from lstm_madness.report import formats as fmt

    return [
        (
            [
                name,
                fmt.scientific(m.get("mse")),
                fmt.scientific(m.get("mae")),
                fmt.fixed(m.get("r2_oos"), 4),
                fmt.percent(m.get("hit_rate")),
                fmt.count(m.get("n")),
            ],
            m,
        )
        for name, m in summary["models"].items()
    ]


def _label(tradeable: Any) -> str:
    from lstm_madness.report.formats import verdict_label

    return verdict_label(tradeable)


def stepm_words(sig: Mapping[str, Any]) -> str:
    """This run's StepM result in words, from a summary's ``significance``."""
    from lstm_madness.report import formats as fmt

    selected = sig.get("stepm_selected")
    if selected is None:
        return "StepM –"
    return (
        f"StepM {'selects' if selected else 'does not select'} this run as beating "
        f"buy-and-hold ({fmt.count(sig.get('stepm_superior'))} of "
        f"{fmt.count(sig.get('stepm_models'))} selected, family-wise error "
        f"{fmt.percent(sig.get('fwer'), 0)})"
    )


def trial_set_words(sig: Mapping[str, Any]) -> str:
    """What the trial set as a whole says: SPA and PBO, from a summary's ``significance``."""
    from lstm_madness.report import formats as fmt

    return (
        f"trial set: SPA p = {fmt.pvalue(sig.get('spa_p'))} (H0: none of its "
        f"{fmt.count(sig.get('spa_models'))} distinct strategies beats buy-and-hold); PBO "
        f"{fmt.probability(sig.get('pbo'))}"
    )


def _training_lines(summary: Mapping[str, Any]) -> list[str]:
    """Per trained network: epochs and training samples per fold, with range and totals."""
    from lstm_madness.report import formats as fmt

    lines = []
    for name, m in summary["models"].items():
        if m.get("epochs_run") is None and not m.get("epochs_run_total"):
            continue  # a baseline, or a forecast made elsewhere
        folds = m.get("n_folds")
        epochs = fmt.per_fold(
            m.get("epochs_run"),
            m.get("epochs_run_min"),
            m.get("epochs_run_max"),
            m.get("epochs_run_total"),
            folds,
        )
        samples = fmt.per_fold(m.get("n_train"), None, None, m.get("n_train_total"), folds)
        lines.append(f"{name}: epochs {epochs}; training samples {samples}")
    return lines


def _trading_lines(summary: Mapping[str, Any], universe: bool) -> list[str]:
    """The backtest's lines (net against gross Sharpe and the benchmark's, both break-even
    costs, a universe book's legs) and the trial set's (distinct trials, DSR, StepM, SPA,
    PBO)."""
    from lstm_madness.report import formats as fmt

    lines: list[str] = []
    backtest = summary.get("backtest")
    if backtest:
        bench = "the equal-weight book" if universe else "buy-and-hold"
        lines += [
            "",
            f"net Sharpe {fmt.ratio(backtest.get('sharpe_net'))} (gross "
            f"{fmt.ratio(backtest.get('sharpe_gross'))}) vs {bench} "
            f"{fmt.ratio(backtest.get('buy_hold_sharpe'))} at "
            f"{fmt.bps(backtest.get('cost_bps'))} per unit turnover",
            f"break-even cost {fmt.fixed(backtest.get('break_even_cost_bps'), 1)} bps per "
            f"unit turnover (mean net return 0); "
            f"{fmt.fixed(backtest.get('break_even_vs_buy_hold_bps'), 1)} bps to match "
            f"{bench}'s Sharpe",
        ]
        if universe:
            lines.append(
                f"long-short top/bottom {backtest['top_k']}: long leg Sharpe "
                f"{fmt.ratio(backtest.get('long_sharpe'))}, short leg "
                f"{fmt.ratio(backtest.get('short_sharpe'))}, "
                f"{fmt.fixed(backtest.get('members_mean'), 1)} members a day, "
                f"{fmt.count(backtest.get('days_flat'))} days flat"
            )
    sig = summary.get("significance")
    if sig:
        lines.append(
            f"trials {fmt.count(sig.get('trials'))} distinct (effective "
            f"{fmt.fixed(sig.get('trials_effective'), 1)}, mean correlation "
            f"{fmt.fixed(sig.get('mean_correlation'), 2)}"
            + (f"; {sig['duplicates']} identical merged" if sig.get("duplicates") else "")
            + f"): DSR {fmt.probability(sig.get('dsr'))}"
            f" (effective {fmt.probability(sig.get('dsr_effective'))}); {stepm_words(sig)}"
        )
        lines.append(trial_set_words(sig))
    return lines


def format_summary(summary: Mapping[str, Any], *, full_name: bool = False) -> str:
    """Plain-text summary of a run summary dict: out-of-sample metrics per model (training
    time: this run's), epochs and training samples per fold, the backtest, the trial count
    and DSR (with what the run saw at finish when it differs), the verdict with its
    reasons and warnings, and the times, each with what it covers. Numbers read as
    everywhere else (:mod:`lstm_madness.report.formats`).

    ``full_name``: the run's name whole on its own line (``runs show``).
    """
    from lstm_madness.report import formats as fmt

    lines = [
        f"run {summary['run_id']} {summary['status']}  target {summary.get('target', '')}  "
        f"test {fmt.date(summary['test_start'])} → {fmt.date(summary['test_end'])} "
        f"({summary['n_test']} days)",
    ]
    if full_name and summary.get("name"):
        lines.append(f"name {summary['name']}")
    imported = summary.get("import")
    if imported:
        lines.append(
            f"imported: model {imported.get('model')} of {imported.get('file')}, "
            f"{imported.get('alignment')} alignment"
            + (f", {imported['trials']} trials declared" if imported.get("trials") else "")
        )
    lines += ["", "out-of-sample forecasts"]
    rows = [[*row, fmt.seconds(m.get("train_s"))] for row, m in _model_rows(summary)]
    universe = bool(summary.get("backtest", {}).get("top_k"))
    if universe:  # a universe study: rank IC per model, pairs instead of days
        rows = [
            [*row[:4], fmt.fixed(m.get("rank_ic"), 3), fmt.ratio(m.get("rank_ic_t")), row[5]]
            for row, m in zip(rows, summary["models"].values(), strict=True)
        ]
        head = ["model", "MSE", "MAE", "R²_oos", "rank IC", "IC t", "pairs"]
    else:
        head = ["model", "MSE", "MAE", "R²_oos", "hit rate", "test days", "train (this run)"]
    lines += _table(head, rows)
    timed = ((summary.get("timings") or {}).get("models") or {}).items()
    if trainers := {k: v["trainer"] for k, v in timed if isinstance(v, dict) and "trainer" in v}:
        lines.append("trained by: " + ", ".join(f"{k} {v}" for k, v in trainers.items()))
    lines += _training_lines(summary)
    lines += _trading_lines(summary, universe)
    if note := at_finish_note(summary):
        lines.append(note)
    verdict = summary.get("verdict")
    if verdict:
        for warning in verdict.get("warnings", []):
            lines.append(f"warning: {warning}")
        lines.append(f"verdict: {_label(verdict['tradeable'])}")
        lines += [f"  • {reason}" for reason in verdict.get("reasons", [])]
    if timing := fmt.timing_line(summary.get("timings")):
        lines += ["", timing]
    return "\n".join(lines)


_HTML_STYLE = "font-family:system-ui,sans-serif;padding:.6em 1em;border-radius:6px;margin:.4em 0;"
#: The model table's own style, inline: outside Jupyter's CSS (a static HTML export, a
#: viewer without a stylesheet) its headers and cells stay separate and padded.
_TABLE_STYLE = "border-collapse:collapse;margin:.4em 0;font-family:system-ui,sans-serif"
_CELL_STYLE = "padding:.25em .75em;border-bottom:1px solid #ccc;white-space:nowrap"


def format_html(summary: Mapping[str, Any]) -> str:
    """HTML of a run summary dict for a notebook: a line naming the run, its warnings, the
    verdict with its reasons, the backtest and trial count, and the out-of-sample model
    table, with the numbers of :func:`format_summary`."""
    from html import escape

    from lstm_madness.report import formats as fmt

    def e(x: Any) -> str:
        return escape(str(x))

    verdict = summary.get("verdict") or {}
    tradeable = bool(verdict.get("tradeable"))
    head = (
        f"<p><b>run {e(summary['run_id'])}</b> {e(summary.get('name') or '')} · "
        f"{e(summary['status'])} · target {e(summary.get('target', ''))} · test "
        f"{e(fmt.date(summary['test_start']))} → {e(fmt.date(summary['test_end']))} "
        f"({e(summary['n_test'])} days)"
    )
    imported = summary.get("import")
    if imported:
        head += (
            f" · imported from {e(imported.get('file'))} ({e(imported.get('alignment'))} alignment)"
        )
    parts = [head + "</p>"]
    for warning in verdict.get("warnings", []):
        parts.append(
            f"<div style='{_HTML_STYLE}background:#fff4d6;border:1px solid #e0b000'>"
            f"<b>warning:</b> {e(warning)}</div>"
        )
    colour = "#e3f6e3;border:1px solid #3a3" if tradeable else "#fde8e8;border:1px solid #c33"
    reasons = "".join(f"<li>{e(r)}</li>" for r in verdict.get("reasons", []))
    lines = []
    backtest = summary.get("backtest") or {}
    if backtest:
        lines.append(
            f"net Sharpe {fmt.ratio(backtest.get('sharpe_net'))} (gross "
            f"{fmt.ratio(backtest.get('sharpe_gross'))}) vs buy-and-hold "
            f"{fmt.ratio(backtest.get('buy_hold_sharpe'))} at {fmt.bps(backtest.get('cost_bps'))}"
            " per unit turnover"
        )
    sig = summary.get("significance") or {}
    if sig:
        lines.append(
            f"trials {fmt.count(sig.get('trials'))} distinct: DSR "
            f"{fmt.probability(sig.get('dsr'))}; {stepm_words(sig)}"
        )
        lines.append(trial_set_words(sig))
    if note := at_finish_note(summary):
        lines.append(note)
    parts.append(
        f"<div style='{_HTML_STYLE}background:{colour}'><b>verdict: {_label(tradeable)}</b>"
        f"<ul>{reasons}</ul>{''.join(f'<div>{e(x)}</div>' for x in lines)}</div>"
    )
    header = ["model", "MSE", "MAE", "R²_oos", "hit rate", "test days"]
    rows = [row for row, _ in _model_rows(summary)]
    primary = summary.get("primary_model")
    body = "".join(
        "<tr>"
        + "".join(
            f"<td style='{_CELL_STYLE};text-align:{'left' if i == 0 else 'right'}'>"
            + (f"<b>{e(c)}</b>" if i == 0 and row[0] == primary else e(c))
            + "</td>"
            for i, c in enumerate(row)
        )
        + "</tr>"
        for row in rows
    )
    parts.append(
        f"<table style='{_TABLE_STYLE}'><thead><tr>"
        + "".join(
            f"<th style='{_CELL_STYLE};border-bottom:2px solid #888;"
            f"text-align:{'left' if i == 0 else 'right'}'>{e(h)}</th>"
            for i, h in enumerate(header)
        )
        + f"</tr></thead><tbody>{body}</tbody></table>"
    )
    return "<div class='lstm-madness-run'>" + "".join(parts) + "</div>"


class RunResult:
    """A stored run judged against the ledger as it is now (see
    :func:`~lstm_madness.experiment.summary.evaluate_runs`).

    Attributes are views of one :class:`~lstm_madness.experiment.summary.RunEvaluation`:
    nothing is computed twice, and :meth:`to_json` is exactly what the CLI prints.
    """

    def __init__(self, evaluation: RunEvaluation) -> None:
        self._ev = evaluation

    @property
    def run_id(self) -> int:
        return self._ev.run_id

    @property
    def run(self) -> Run:
        """The stored record (:class:`~lstm_madness.store.runs.Run`: ``.status``,
        ``.config``, ``.started_at``, ...)."""
        return self._ev.run

    @property
    def config(self):
        return self._ev.config

    @property
    def primary(self) -> str:
        return self._ev.primary

    @property
    def evaluation(self):
        """The :class:`~lstm_madness.evaluation.study.Evaluation` (daily series, tests)."""
        return self._ev.evaluation

    @property
    def verdict(self) -> Verdict:
        return self._ev.evaluation.verdict

    @property
    def metrics(self) -> dict[str, dict[str, Any]]:
        """Out-of-sample metrics per model."""
        return self._ev.summary["models"]

    @property
    def backtest(self) -> dict[str, Any]:
        return self._ev.summary["backtest"]

    @property
    def significance(self) -> dict[str, Any]:
        return self._ev.summary["significance"]

    @property
    def at_finish(self) -> dict[str, Any]:
        return self._ev.summary["at_finish"]

    @property
    def trial_ids(self) -> tuple[int, ...]:
        """Runs of the trial set with predictions (this one included)."""
        return self._ev.trial_ids

    @property
    def frame(self) -> pd.DataFrame:
        """Test period: y_true, realized and one column per model, indexed by date."""
        return self._ev.frame

    @property
    def predictions(self) -> pd.DataFrame:
        """Every model's test predictions with positions and gross and net returns: the
        table of ``madness runs predictions`` (see
        :func:`~lstm_madness.experiment.summary.prediction_table`)."""
        from lstm_madness.experiment.summary import prediction_table

        return prediction_table(self._engine(), self.run_id)

    def _engine(self) -> sa.Engine:
        if self._ev.engine is None:
            raise RuntimeError("this result was built without a store; use load_run")
        return self._ev.engine

    def summary(self) -> str:
        return format_summary(self._ev.summary)

    def to_json(self) -> dict[str, Any]:
        return self._ev.summary

    def report(self, out_dir: str | Path) -> Path:
        """Write the HTML report (and PNGs) into ``out_dir``; return the HTML path. Other
        seeds of the run's config on its test period are evaluated and shown first, as in
        ``madness report``."""
        from lstm_madness.experiment.reporting import family_seeds, write_evaluation_report

        engine = self._engine()
        seeds = family_seeds(engine, self._ev)
        return write_evaluation_report(engine, self._ev, Path(out_dir), seeds=seeds)

    def __repr__(self) -> str:
        return f"<RunResult run {self.run_id}: {self.verdict.label}>"

    def _repr_html_(self) -> str:
        """A notebook cell's view: the verdict box (warnings first) and the model table."""
        return format_html(self._ev.summary)


def load_run(engine: sa.Engine, run_id: int, *, trials: int | None = None) -> RunResult:
    """A stored succeeded run, evaluated now as ``madness runs show`` judges it
    (:func:`~lstm_madness.experiment.show.show_run`); :class:`RunError` for a run that has
    not succeeded."""
    from lstm_madness.experiment.show import show_run

    shown = show_run(engine, run_id, trials=trials, live=True)
    if shown.evaluation is None:
        raise RunError(shown.status_line() + "; no summary")
    return RunResult(shown.evaluation)


def load_runs(
    engine: sa.Engine, run_ids: list[int], *, trials: int | None = None
) -> dict[int, RunResult]:
    """Several stored runs, evaluated in one pass."""
    from lstm_madness.experiment.summary import evaluate_runs

    return {k: RunResult(v) for k, v in evaluate_runs(engine, run_ids, trials=trials).items()}
