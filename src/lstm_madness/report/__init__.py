"""Report: plots and the self-contained HTML report of one run, and the run comparison table.

The names below are imported on first use, so that ``lstm_madness.report.formats`` (how
every number reads, used by the CLI's tables) costs no matplotlib or SciPy import.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = ["COMPARE_FORMATS", "PLOT_FILES", "comparability", "compare_table", "write_report"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        return getattr(importlib.import_module("lstm_madness.report.html"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
