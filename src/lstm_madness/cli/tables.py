"""Tables that fit the terminal (80 columns in a pipe), with the report's number formats.

A table is a list of :class:`Column` and rows of already formatted text (see
:mod:`lstm_madness.report.formats`, re-exported here as ``fmt``). :func:`fit_table`
keeps the columns that fit the width, dropping the lowest priority first, and shortens
only the columns marked ``shorten`` (names in the middle, messages at the end). A status
word, a date or a number is never cut. :func:`print_table` prints it on the shared
console; without a terminal there are no colour codes and the width is ``$COLUMNS`` or 80.
:func:`print_frame` prints a long data table: all of it as aligned text in a pipe, its
first and last rows in a terminal, with a "…" row and a note naming the hidden columns.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from lstm_madness.report import formats as fmt

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["Column", "fit_table", "fit_widths", "fmt", "output_width", "print_frame", "print_table"]

#: Width without a terminal (a pipe, a file, the test runner) unless ``$COLUMNS`` says more.
PIPE_WIDTH = 80


@dataclass(frozen=True)
class Column:
    """One column of a fitted table.

    Attributes
    ----------
    header : str
    priority : int
        0 = always shown; when the table is too wide, the highest numbers go first.
    justify : {"left", "right"}
    shorten : {"middle", "end"} or None
        How the cells may be shortened to fit (names: middle; messages: end). ``None``:
        never cut (numbers, dates, status words).
    min_width : int
        Narrowest a shortened column may get.
    """

    header: str
    priority: int = 0
    justify: Literal["left", "right"] = "left"
    shorten: Literal["middle", "end"] | None = None
    min_width: int = 12


def output_width(console: Console) -> int:
    """Columns available: the terminal's width, else ``$COLUMNS``, else 80."""
    if console.is_terminal:
        return console.width
    columns = os.environ.get("COLUMNS", "")
    return int(columns) if columns.isdigit() and int(columns) > 0 else PIPE_WIDTH


def _cut(text: str, width: int, how: str | None) -> str:
    if how == "middle":
        return fmt.middle(text, width)
    if how == "end":
        return fmt.truncate(text, width)
    return text


def _table(
    columns: Sequence[Column],
    rows: Sequence[Sequence[str]],
    keep: Sequence[int],
    widths: dict[int, int],
    title: str | None,
) -> Table:
    table = Table(
        title=title,
        title_justify="left",
        box=box.SIMPLE_HEAD,
        pad_edge=False,
        show_edge=False,
        padding=(0, 1),
        collapse_padding=True,
    )
    for i in keep:
        col = columns[i]
        width = widths[i]
        table.add_column(
            _cut(col.header, width, col.shorten or "end"),
            justify=col.justify,
            no_wrap=True,
            overflow="ellipsis",
            min_width=width,
            max_width=width,
        )
    for row in rows:
        table.add_row(*(Text(_cut(row[i], widths[i], columns[i].shorten)) for i in keep))
    return table


def _natural(columns: Sequence[Column], rows: Sequence[Sequence[str]], i: int) -> int:
    return max([len(columns[i].header), *(len(row[i]) for row in rows), 1])


def _overhead(n: int) -> int:
    """Characters a SIMPLE_HEAD table without edge padding adds to its cells: one space of
    padding on each side of each inner border."""
    return 2 * max(n - 1, 0)


def fit_table(
    columns: Sequence[Column],
    rows: Sequence[Sequence[str]],
    width: int,
    *,
    title: str | None = None,
) -> Table:
    """A Rich table of ``rows`` no wider than ``width`` (the columns of :func:`fit_widths`)."""
    widths = fit_widths(columns, rows, width)
    return _table(columns, rows, list(widths), widths, title)


def fit_widths(
    columns: Sequence[Column], rows: Sequence[Sequence[str]], width: int
) -> dict[int, int]:
    """The columns shown at ``width`` (their indices, in declared order) and their widths.

    Columns are dropped from the highest ``priority`` number (the last declared first
    among equals) until the unshortenable cells fit, then while a shortened column would
    still be cut and a less important column is shown; the columns marked ``shorten``
    share what is left, up to their natural width. A column absent from the result is
    hidden: say so where it matters.
    """
    n = len(columns)
    natural = {i: _natural(columns, rows, i) for i in range(n)}
    need = {
        i: natural[i] if columns[i].shorten is None else min(natural[i], columns[i].min_width)
        for i in range(n)
    }
    keep = list(range(n))
    for i in sorted(range(n), key=lambda k: (columns[k].priority, k), reverse=True):
        if sum(need[k] for k in keep) + _overhead(len(keep)) <= width:
            break
        if columns[i].priority > 0:
            keep.remove(i)
    while True:  # a shortened column outranks the less important columns beside it
        spare = width - sum(need[k] for k in keep) - _overhead(len(keep))
        short = [k for k in keep if columns[k].shorten and natural[k] > need[k] + max(spare, 0)]
        if not short:
            break
        rank = min(columns[k].priority for k in short)
        lower = [k for k in keep if columns[k].priority > rank]
        if not lower:
            break
        keep.remove(max(lower, key=lambda k: (columns[k].priority, k)))
    widths = {i: need[i] for i in keep}
    spare = width - sum(widths.values()) - _overhead(len(keep))
    while spare > 0:  # share what is left among the shortened columns, one at a time
        hungry = [i for i in keep if columns[i].shorten is not None and widths[i] < natural[i]]
        if not hungry:
            break
        for i in hungry[:spare]:
            widths[i] += 1
            spare -= 1
    return widths


def print_table(
    console: Console,
    columns: Sequence[Column],
    rows: Sequence[Sequence[str]],
    *,
    title: str | None = None,
) -> None:
    """Fit the table to the console's width (see :func:`output_width`) and print it."""
    width = output_width(console)
    console.print(fit_table(columns, rows, width, title=title), width=width)


def _write_plain(
    out: Any, columns: Sequence[Column], cells: Sequence[Sequence[str]], chunk: int = 20_000
) -> None:
    """Every row and column as aligned text (``cells``: one sequence of strings per column):
    a header line, then one line per row, written ``chunk`` lines at a time."""
    widths = [max([len(c.header), *map(len, col)]) for c, col in zip(columns, cells, strict=True)]

    def line(row: Sequence[str]) -> str:
        return "  ".join(
            text.ljust(w) if c.justify == "left" else text.rjust(w)
            for text, w, c in zip(row, widths, columns, strict=True)
        ).rstrip()

    out.write(line([c.header for c in columns]) + "\n")
    n = len(cells[0]) if cells else 0
    for start in range(0, n, chunk):
        rows = zip(*(col[start : start + chunk] for col in cells), strict=True)
        out.write("".join(line(row) + "\n" for row in rows))


def print_frame(
    console: Console,
    frame: pd.DataFrame,
    columns: Sequence[Column],
    cell: Callable[[str, Any], str],
    *,
    title: str,
    head: int = 5,
) -> None:
    """Print a data frame that may be long and wide, hiding nothing silently.

    ``columns`` describe the frame's columns in order; ``cell(column, value)`` formats one
    value. Without a terminal (a pipe, a file): every row and every column as aligned
    text, a header line first and nothing else (data for ``grep``, ``sort``, ``awk``). In a
    terminal: ``title``, the first and last ``head`` rows with a "…" row between them,
    fitted to the width (:func:`fit_widths`), then a note naming the columns that did not
    fit and ``--csv``.
    """
    names = list(frame.columns)
    if not console.is_terminal:
        cells = [[cell(name, v) for v in frame[name].tolist()] for name in names]
        _write_plain(console.file, columns, cells)
        return

    def rows(part: pd.DataFrame) -> list[list[str]]:
        return [
            [cell(name, v) for name, v in zip(names, row, strict=True)]
            for row in part.itertuples(index=False)
        ]

    shown = rows(frame)
    if len(frame) > 2 * head:
        shown = [*rows(frame.head(head)), ["…"] * len(names), *rows(frame.tail(head))]
        title += f", the first and last {head} shown"
    width = output_width(console)
    widths = fit_widths(columns, shown, width)
    table = _table(columns, shown, list(widths), widths, f"{title} (--csv for all)")
    console.print(table, width=width)
    hidden = [c.header for i, c in enumerate(columns) if i not in widths]
    if hidden:
        console.print(
            f"not shown at {width} columns: {', '.join(hidden)} (--csv prints every column)",
            highlight=False,
            markup=False,
            width=width,
        )
