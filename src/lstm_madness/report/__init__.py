"""Report: plots and the self-contained HTML report of one run, and the run comparison table."""

from lstm_madness.report.html import (
    COMPARE_FORMATS,
    PLOT_FILES,
    comparability,
    compare_table,
    write_report,
)

__all__ = ["COMPARE_FORMATS", "PLOT_FILES", "comparability", "compare_table", "write_report"]
