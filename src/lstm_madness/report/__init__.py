"""Report: plots and the self-contained HTML report of one run, and the run comparison table."""

from lstm_madness.report.html import PLOT_FILES, compare_table, write_report

__all__ = ["PLOT_FILES", "compare_table", "write_report"]
