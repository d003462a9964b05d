"""The report page, assembled once for every study kind.

:func:`write_page` lays out what every report has: the title, the one-sentence answer, a
line on the test period and costs, where imported forecasts came from, the seeds of the
configuration, the verdict, the note on the trial set at finish, then the kind's own
sections (its backtest, forecast tests, significance and plots), the model comparison, the
folds, the run and its configuration. A kind contributes only its sections, as HTML
strings built from :mod:`lstm_madness.report.blocks` and
:mod:`lstm_madness.report.sections`.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from lstm_madness.evaluation.judgement import Evaluation
from lstm_madness.jsonable import jsonable
from lstm_madness.report.blocks import CSS, escape, frame_html, kv_table
from lstm_madness.report.sections import (
    at_finish_html,
    import_html,
    report_title,
    run_rows,
    seeds_html,
    verdict_html,
)
from lstm_madness.report.seeds import SeedSet

__all__ = ["REPORT_FILE", "write_page"]

#: The HTML file of a report, beside its PNGs.
REPORT_FILE = "report.html"


def write_page(
    out: Path,
    *,
    run: Mapping[str, Any],
    evaluation: Evaluation,
    answer: str,
    intro: str,
    sections: Sequence[str],
    model_table: pd.DataFrame,
    fold_table: pd.DataFrame,
    fold_title: str = "Per-fold results",
    seeds: SeedSet | None = None,
) -> Path:
    """Write ``report.html`` into the folder ``out`` (which exists) and return its path.

    Parameters
    ----------
    run : mapping
        ``id``, ``name``, ``status``, ``started``, ``config`` (dict), ``timings``, and
        optionally ``target``, ``import`` (an imported run's spec) and
        ``at_finish_note``.
    evaluation : Evaluation
        The run's evaluation (any kind's).
    answer : str
        The question the report answers and its answer (plain text).
    intro : str
        What was tested, on which days, at which costs (plain text); the time the report
        was generated is added.
    sections : sequence of str
        The kind's sections (HTML), shown after the verdict.
    model_table, fold_table : DataFrame
        The model comparison and the folds (shown as given, escaped).
    fold_title : str
        Heading of the fold table.
    seeds : SeedSet, optional
        The seeds of the run's configuration (the run among them): a section with each
        seed's figures and the P&L of every seed comes before this run's details.
    """
    ev = evaluation
    title = report_title(run)
    config = json.dumps(jsonable(run.get("config") or {}), indent=2, sort_keys=True)
    generated = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    body = [
        f"<h1>{escape(title)}</h1>",
        f"<p class='answer'>{escape(answer)}</p>",
        f"<p class='muted'>{escape(intro)} Generated {escape(generated)}.</p>",
        import_html(run.get("import")),
        seeds_html(seeds, ev, int(run["id"]), out),
        verdict_html(ev),
        at_finish_html(run),
        *sections,
        "<h2>Model comparison</h2>",
        frame_html(model_table, "no model table"),
        f"<h2>{escape(fold_title)}</h2>",
        frame_html(fold_table, "no fold table"),
        "<h2>Run</h2>",
        kv_table(run_rows(run)),
        "<h2>Configuration</h2>",
        f"<pre>{escape(config)}</pre>",
    ]
    doc = (
        "<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
        f"<title>{escape(title)} – {escape(ev.verdict.label)}</title><style>{CSS}</style>"
        f"</head><body>{''.join(body)}</body></html>\n"
    )
    path = out / REPORT_FILE
    path.write_text(doc, encoding="utf-8")
    return path
