"""The Typer application, shared options and error handling for ``madness``."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console

app = typer.Typer(
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    help="Can an LSTM on past returns predict tomorrow well enough to trade? Find out honestly.",
)

#: Human-readable output; JSON output goes to plain stdout through ``typer.echo``.
console = Console()
#: Errors and warnings.
err_console = Console(stderr=True)

DbOption = Annotated[
    str | None,
    typer.Option(
        "--db",
        help="Database URL (sqlite:///PATH or postgresql+psycopg://...). "
        "Default: $MADNESS_DB_URL, else sqlite:///./madness.db.",
        show_default=False,
    ),
]
