"""The Typer application, shared options and error handling for ``madness``."""

from __future__ import annotations

import inspect
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from typer.core import TyperArgument, TyperCommand, TyperGroup, TyperOption

from lstm_madness.errors import ConfigError, MadnessError

if TYPE_CHECKING:
    import sqlalchemy as sa

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


def _reflow(text: str | None) -> str | None:
    """Help prose as paragraphs: a docstring's line breaks inside a paragraph become
    spaces, so that Rich wraps every paragraph at the terminal's width and a group lists
    each command by its whole first sentence. Square brackets stay text, never markup."""
    if not text:
        return text
    paragraphs = inspect.cleandoc(text).split("\n\n")
    return "\n\n".join(p if p.startswith("\b") else escape(" ".join(p.split())) for p in paragraphs)


class _PlainHelp:
    """Help that shows flags as flags, wraps its prose at the terminal's width
    (:func:`_reflow`) and ends with the command's examples."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[call-arg]
        self.help = _reflow(self.help)

    def get_params(self, ctx: Any) -> list[Any]:
        return _plain_params(super().get_params(ctx))  # type: ignore[misc]

    def format_help(self, ctx: Any, formatter: Any) -> None:
        epilog, self.epilog = self.epilog, None  # type: ignore[attr-defined]
        try:
            super().format_help(ctx, formatter)  # type: ignore[misc]
        finally:
            self.epilog = epilog
        _print_examples(epilog)


#: Options whose value is one ``KEY=VALUE`` word, with an example of each.
_ASSIGNMENTS = {"--set": "--set train.epochs=5", "--grid": "--grid model.time_steps=[2,3]"}
_OPTION = re.compile(r"^--?[A-Za-z]")


def _refuse_split_assignment(args: list[str]) -> None:
    """``--set train.epochs 5`` (two words, so ``5`` is an extra argument): say the one
    word it meant, ``--set train.epochs=5``."""
    for i, arg in enumerate(args[:-1]):
        key = args[i + 1]
        if arg in _ASSIGNMENTS and "=" not in key and not _OPTION.match(key):
            follows = args[i + 2] if i + 2 < len(args) else ""
            value = follows if follows and not _OPTION.match(follows) else "VALUE"
            if arg == "--grid" and value != "VALUE" and not value.startswith("["):
                from lstm_madness.experiment.hints import list_example

                value = list_example(value)  # 2,3 -> [2,3]
            e_g = f" (e.g. {_ASSIGNMENTS[arg]})" if value == "VALUE" else ""
            raise ConfigError(f"{arg} takes KEY=VALUE as one word: {arg} {key}={value}{e_g}")


class MadnessCommand(_PlainHelp, TyperCommand):
    """A command whose help shows flags as flags and ends with its examples."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        if not any(a in ("--help", "-h") for a in args):
            _refuse_split_assignment(args)
        return super().parse_args(ctx, args)


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


def _print_version(value: bool) -> None:
    if value:
        from lstm_madness.version import __version__

        typer.echo(f"lstm-madness {__version__}")
        raise typer.Exit()


@app.callback()
def _options(
    version: Annotated[
        bool,
        typer.Option(
            "--version", help="Print the version and exit.", callback=_print_version, is_eager=True
        ),
    ] = False,
) -> None:
    return None


DbOption = Annotated[
    str | None,
    typer.Option(
        "--db",
        metavar="URL",
        help="The store: a SQLite file path (madness.db, /data/madness.db) or a URL "
        "(sqlite:///PATH, postgresql+psycopg://USER@HOST/DBNAME). "
        "Default: $MADNESS_DB_URL, else ./madness.db.",
        show_default=False,
    ),
]


@contextmanager
def announce_new_store(engine: sa.Engine) -> Iterator[None]:
    """Say where, in one line on stderr, when the command inside creates the store (also
    when it then fails: the store stays)."""
    from lstm_madness.data.db import where
    from lstm_madness.data.initdb import store_exists

    existed = store_exists(engine)
    try:
        yield
    finally:
        if not existed and store_exists(engine):
            err_console.print(
                f"created a new store at {where(engine.url)}",
                highlight=False,
                markup=False,
                soft_wrap=True,
            )
