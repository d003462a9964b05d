"""Results as objects: :class:`RunResult` with ``.summary()`` (the text ``madness runs show``
prints) and ``.to_json()`` (the dict ``--json`` prints), the habit of ``arch``.

>>> result = load_run(engine, 7)          # doctest: +SKIP
>>> print(result.summary())               # doctest: +SKIP
>>> result.verdict.tradeable, result.significance["dsr"]   # doctest: +SKIP
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd
import sqlalchemy as sa

from lstm_madness.evaluation.verdict import Verdict
from lstm_madness.experiment.summary import RunEvaluation, evaluate_runs, prediction_table

__all__ = ["RunResult", "format_summary", "load_run"]


def _fmt(value: Any, spec: str = ".4g") -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    return format(value, spec) if isinstance(value, int | float) else str(value)


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(header)]

    def line(cells: list[str]) -> str:
        first = cells[0].ljust(widths[0])
        rest = [c.rjust(w) for c, w in zip(cells[1:], widths[1:], strict=True)]
        return "  ".join([first, *rest]).rstrip()

    return [line(header), *(line(r) for r in rows)]


def format_summary(summary: Mapping[str, Any]) -> str:
    """Plain-text summary of a run summary dict: out-of-sample metrics per model, the
    backtest, the trial count and DSR (with what the run saw at finish), the verdict."""
    lines = [
        f"run {summary['run_id']} {summary['status']}  target {summary.get('target', '')}  "
        f"test {summary['test_start']} → {summary['test_end']} ({summary['n_test']} days)",
        "",
        "out-of-sample forecasts",
    ]
    rows = []
    for name, m in summary["models"].items():
        hit = m.get("hit_rate")
        rows.append(
            [
                name,
                _fmt(m.get("mse"), ".3e"),
                _fmt(m.get("mae"), ".3e"),
                _fmt(m.get("r2_oos"), ".4f"),
                _fmt(hit * 100 if hit is not None else None, ".1f") + "%",
                _fmt(m.get("n")),
                _fmt(m.get("train_s"), ".2f"),
            ]
        )
    lines += _table(["model", "MSE", "MAE", "R²_oos", "hit rate", "test days", "train s"], rows)
    backtest = summary.get("backtest")
    if backtest:
        lines += [
            "",
            f"net Sharpe {_fmt(backtest.get('sharpe_net'), '.2f')} (gross "
            f"{_fmt(backtest.get('sharpe_gross'), '.2f')}) vs buy-and-hold "
            f"{_fmt(backtest.get('buy_hold_sharpe'), '.2f')} at "
            f"{_fmt(backtest.get('cost_bps'))} bps per unit turnover",
        ]
    sig = summary.get("significance")
    if sig:
        lines.append(
            f"trials {_fmt(sig.get('trials'))} "
            f"(effective {_fmt(sig.get('trials_effective'), '.3g')}"
            f", mean correlation {_fmt(sig.get('mean_correlation'), '.2f')}): DSR "
            f"{_fmt(sig.get('dsr'), '.3f')} (effective {_fmt(sig.get('dsr_effective'), '.3f')})"
            f", SPA p {_fmt(sig.get('spa_p'), '.3f')}, PBO {_fmt(sig.get('pbo'), '.2f')}"
        )
    at = summary.get("at_finish")
    if at and sig and (at.get("trials"), at.get("dsr")) != (sig.get("trials"), sig.get("dsr")):
        lines.append(
            f"at finish: trials {_fmt(at.get('trials'))}, DSR {_fmt(at.get('dsr'), '.3f')}, "
            f"{'TRADEABLE' if at.get('tradeable') else 'NOT TRADEABLE'}"
        )
    verdict = summary.get("verdict")
    if verdict:
        lines.append(f"verdict: {'TRADEABLE' if verdict['tradeable'] else 'NOT TRADEABLE'}")
        lines += [f"  • {reason}" for reason in verdict.get("reasons", [])]
    return "\n".join(lines)


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
    def run(self) -> dict[str, Any]:
        """The registry row (config, status, times, ...)."""
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
        """Write the HTML report (and PNGs) into ``out_dir``; return the HTML path."""
        from lstm_madness.experiment.reporting import write_evaluation_report

        return write_evaluation_report(self._engine(), self._ev, Path(out_dir))

    def __repr__(self) -> str:
        return f"<RunResult run {self.run_id}: {self.verdict.label}>"


def load_run(engine: sa.Engine, run_id: int, *, trials: int | None = None) -> RunResult:
    """A stored run, evaluated now."""
    return evaluate_runs(engine, [run_id], trials=trials)[int(run_id)].result()


def load_runs(
    engine: sa.Engine, run_ids: list[int], *, trials: int | None = None
) -> dict[int, RunResult]:
    """Several stored runs, evaluated in one pass."""
    return {k: v.result() for k, v in evaluate_runs(engine, run_ids, trials=trials).items()}
