"""Commands about prices: ``db init``, ``ingest``, ``fetch``, ``symbols``, ``prices``."""

from __future__ import annotations

import typer

from lstm_madness.cli._app import DbOption, app, console
from lstm_madness.data.db import make_engine, redact, resolve_url

db_app = typer.Typer(help="Create and inspect the database.", no_args_is_help=True)
app.add_typer(db_app, name="db")


@db_app.command("init")
def db_init(db: DbOption = None) -> None:
    """Create the schema (idempotent) and record its version."""
    from lstm_madness.data.store import init_db

    url = resolve_url(db)
    version = init_db(make_engine(url))
    console.print(f"database ready at {redact(url)} (schema version {version})")
