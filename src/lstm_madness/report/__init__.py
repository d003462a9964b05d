"""Report: plots and the self-contained HTML report of one run, and the run comparison table.

The names below are imported on first use, so that ``lstm_madness.report.formats`` (how
every number reads, used by the CLI's tables) costs no matplotlib or SciPy import, and the
comparison table (``madness compare``) no matplotlib.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = ["COMPARE_FORMATS", "PLOT_FILES", "comparability", "compare_table", "write_report"]

_HOMES = {
    "COMPARE_FORMATS": "lstm_madness.report.compare",
    "comparability": "lstm_madness.report.compare",
    "compare_table": "lstm_madness.report.compare",
    "PLOT_FILES": "lstm_madness.report.html",
    "write_report": "lstm_madness.report.html",
}


def __getattr__(name: str) -> Any:
    if name in _HOMES:
        return getattr(importlib.import_module(_HOMES[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
