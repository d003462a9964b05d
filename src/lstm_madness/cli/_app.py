"""The Typer application, shared options and error handling for ``madness``."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from typer.core import TyperGroup

from lstm_madness.errors import MadnessError

#: Human-readable output; JSON output goes to plain stdout through ``typer.echo``.
console = Console()
#: Errors and warnings.
err_console = Console(stderr=True)


class _MadnessGroup(TyperGroup):
    """Turns library errors into a one-line message and exit code 1 (also under CliRunner)."""

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except MadnessError as exc:
            err_console.print(
                f"[bold red]error:[/] {escape(str(exc))}", highlight=False, soft_wrap=True
            )
            raise typer.Exit(1) from exc


app = typer.Typer(
    cls=_MadnessGroup,
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    help="Can an LSTM on past returns predict tomorrow well enough to trade? Find out honestly.",
)

DbOption = Annotated[
    str | None,
    typer.Option(
        "--db",
        help="Database URL (sqlite:///PATH or postgresql+psycopg://...). "
        "Default: $MADNESS_DB_URL, else sqlite:///./madness.db.",
        show_default=False,
    ),
]
