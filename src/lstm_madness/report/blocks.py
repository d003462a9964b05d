"""HTML building blocks of the reports: escaping, tables, figures.

Every piece of text that reaches the HTML goes through :func:`escape`
(:func:`html.escape`; tables through ``DataFrame.to_html(escape=True)``); every number
reads as :mod:`lstm_madness.report.formats` says. Figures are written as PNG files and
embedded as base64, so a report's HTML can be mailed or archived alone.
"""

from __future__ import annotations

import base64
import html
import math
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from lstm_madness.evaluation.performance import Performance
from lstm_madness.report import formats as fmt
from lstm_madness.report import plots

__all__ = [
    "CSS",
    "HEADERS",
    "PERF_ROWS",
    "cell_text",
    "escape",
    "frame_html",
    "image",
    "kv_table",
    "performance_table",
    "plural",
]

CSS = """
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


def escape(x: Any) -> str:
    """``x`` as text, HTML-escaped (quotes too)."""
    return html.escape(str(x), quote=True)


def cell_text(column: str, value: Any) -> str:
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


def plural(n: int, word: str) -> str:
    """``1 trial``, ``3 trials``, ``2 strategies``."""
    if n == 1:
        return f"1 {word}"
    return f"{n} {word[:-1]}ies" if word.endswith("y") else f"{n} {word}s"


def kv_table(rows: list[tuple[str, str]], header: tuple[str, str] | None = None) -> str:
    """A two-column table of (label, value) rows, with an optional header."""
    head = f"<tr><th>{escape(header[0])}</th><th>{escape(header[1])}</th></tr>" if header else ""
    body = "".join(f"<tr><td>{escape(k)}</td><td>{escape(v)}</td></tr>" for k, v in rows)
    return f"<table>{head}{body}</table>"


#: Display names of model / fold table columns.
HEADERS = {
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


def frame_html(df: pd.DataFrame | None, empty: str) -> str:
    """A model or fold table: columns renamed by :data:`HEADERS`, cells read by
    :func:`cell_text`; ``empty`` when there is no row."""
    if df is None or df.empty:
        return f"<p class='muted'>{escape(empty)}</p>"
    shown = pd.DataFrame(
        {HEADERS.get(str(c), str(c)): [cell_text(str(c), v) for v in df[c]] for c in df.columns},
        index=df.index,
    )
    return shown.to_html(
        escape=True, na_rep=fmt.MISSING, border=0, index=not isinstance(df.index, pd.RangeIndex)
    )


PERF_ROWS: list[tuple[str, str, Callable[[Any], str]]] = [
    ("total return", "total_return", fmt.percent),
    ("CAGR", "cagr", fmt.percent),
    ("volatility (annualized)", "volatility", fmt.percent),
    ("Sharpe (annualized)", "sharpe", fmt.ratio),
    ("Sortino (annualized)", "sortino", fmt.ratio),
    ("max drawdown", "max_drawdown", fmt.percent),
    ("max drawdown duration (days)", "max_drawdown_days", fmt.count),
    ("Calmar", "calmar", fmt.ratio),
    ("win rate (invested days with a positive return)", "win_rate", fmt.percent),
    ("turnover (mean per day)", "turnover", lambda v: fmt.fixed(v, 3)),
    ("exposure (mean |position|)", "exposure", lambda v: fmt.fixed(v, 2)),
    ("average holding period (days)", "avg_holding_days", lambda v: fmt.fixed(v, 1)),
]


def performance_table(columns: Mapping[str, Performance]) -> str:
    """One column per named :class:`~lstm_madness.evaluation.performance.Performance`,
    one row per figure of :data:`PERF_ROWS`."""
    head = "<tr><th>metric</th>" + "".join(f"<th>{escape(c)}</th>" for c in columns) + "</tr>"
    rows = []
    for label, attr, show in PERF_ROWS:
        cells = "".join(f"<td>{escape(show(getattr(p, attr)))}</td>" for p in columns.values())
        rows.append(f"<tr><td>{escape(label)}</td>{cells}</tr>")
    return f"<table>{head}{''.join(rows)}</table>"


def image(fig: Figure, path: Path, alt: str) -> str:
    """Save ``fig`` as the PNG ``path`` and return it embedded (base64) with a caption."""
    plots.save_figure(fig, path)
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return (
        f"<figure><img src='data:image/png;base64,{data}' alt='{escape(alt)}'>"
        f"<figcaption class='muted'>{escape(alt)} ({escape(path.name)})</figcaption></figure>"
    )
