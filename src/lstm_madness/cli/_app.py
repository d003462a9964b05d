"""The Typer application, shared options and error handling for ``madness``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from typer.core import TyperArgument, TyperCommand, TyperGroup, TyperOption

from lstm_madness.errors import MadnessError

#: Human-readable output; JSON output goes to plain stdout through ``typer.echo``.
console = Console()
#: Errors and warnings.
err_console = Console(stderr=True)


def examples(*lines: str) -> str:
    """The epilog of a command: its examples, one command line each, runnable as written."""
    return "Examples:\n" + "\n".join(f"  {line}" for line in lines)


def _no_type(ctx: Any) -> None:
    return None


#: Value placeholders by Python type, for options declared without a ``metavar``.
_METAVARS = {int: "N", float: "X", str: "TEXT", Path: "PATH"}


def _plain_params(params: list[Any]) -> list[Any]:
    """Flags as flags and values by name: no ``<bool>`` / ``<list[str]>`` type columns.

    A flag (``--json``) shows no placeholder; an option shows its ``metavar`` (``--set
    KEY=VALUE``) or a word for its type (``N``, ``TEXT``, ``PATH``); an argument shows its
    name only.
    """
    for param in params:
        if isinstance(param, TyperOption):
            if param.is_flag:
                param.metavar = ""
            elif param.metavar is None:
                annotation = param.type_descriptor.annotation
                param.metavar = _METAVARS.get(annotation, "VALUE")
        elif isinstance(param, TyperArgument):
            param.display_type_rich = _no_type  # the name (its metavar) says what to give
    return params


def _print_examples(epilog: str | None) -> None:
    """Print the examples unwrapped, so that each line can be copied and run."""
    if not epilog:
        return
    out = Console(highlight=False, soft_wrap=True)
    for line in epilog.splitlines():
        out.print(f" {line}" if line else "", markup=False)


class _PlainHelp:
    """Help that shows flags as flags and ends with the command's examples."""

    def get_params(self, ctx: Any) -> list[Any]:
        return _plain_params(super().get_params(ctx))  # type: ignore[misc]

    def format_help(self, ctx: Any, formatter: Any) -> None:
        epilog, self.epilog = self.epilog, None  # type: ignore[attr-defined]
        try:
            super().format_help(ctx, formatter)  # type: ignore[misc]
        finally:
            self.epilog = epilog
        _print_examples(epilog)


class MadnessCommand(_PlainHelp, TyperCommand):
    """A command whose help shows flags as flags and ends with its examples."""


class MadnessGroup(_PlainHelp, TyperGroup):
    """A command group with the same help as :class:`MadnessCommand`."""


class _MadnessGroup(MadnessGroup):
    """Turns library errors into a one-line message and exit code 1 (also under CliRunner)."""

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except MadnessError as exc:
            err_console.print(
                f"[bold red]error:[/] {escape(str(exc))}", highlight=False, soft_wrap=True
            )
            raise typer.Exit(1) from exc


class MadnessTyper(typer.Typer):
    """``typer.Typer`` whose commands and sub-groups use the help of :class:`MadnessCommand`."""

    def __init__(self, *, cls: type[TyperGroup] = MadnessGroup, **kwargs: Any) -> None:
        super().__init__(cls=cls, **kwargs)

    def command(self, name: str | None = None, *, cls: Any = None, **kwargs: Any) -> Any:
        return super().command(name, cls=cls or MadnessCommand, **kwargs)


app = MadnessTyper(
    cls=_MadnessGroup,
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    help="Can an LSTM on past returns predict tomorrow well enough to trade? Find out honestly.",
    epilog=examples("madness demo", "madness runs list", "madness run --help"),
)

DbOption = Annotated[
    str | None,
    typer.Option(
        "--db",
        metavar="URL",
        help="Database URL (sqlite:///PATH or postgresql+psycopg://...). "
        "Default: $MADNESS_DB_URL, else sqlite:///./madness.db.",
        show_default=False,
    ),
]
