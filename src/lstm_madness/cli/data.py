"""Commands about prices: ``db init``, ``ingest``, ``fetch``, ``symbols``, ``prices``."""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape
from rich.table import Table

from lstm_madness.cli._app import (
    DbOption,
    MadnessTyper,
    announce_new_store,
    app,
    console,
    err_console,
    examples,
)
from lstm_madness.cli.tables import Column, fmt, print_table
from lstm_madness.errors import MadnessError

if TYPE_CHECKING:
    from lstm_madness.data.ingest import IngestResult

db_app = MadnessTyper(
    help="Create and inspect the database.",
    no_args_is_help=True,
    epilog=examples("madness db init"),
)
app.add_typer(db_app, name="db")


@db_app.command(
    "init",
    epilog=examples("madness db init", "madness db init --db madness.db"),
)
def db_init(db: DbOption = None) -> None:
    """Create the store and its schema, or upgrade an older store in place keeping its data
    (idempotent). A PostgreSQL database that does not exist is created when the server
    allows it (else the message says how: createdb)."""
    from lstm_madness.data.db import make_engine, where
    from lstm_madness.data.initdb import create_database, init_db, store_exists

    engine = make_engine(db)
    created = create_database(engine)
    new = created or not store_exists(engine, "initialize")
    version = init_db(engine)
    what = "a new store" if new else "store ready"
    if created:
        what = f"database {engine.url.database!r} created: a new store"
    console.print(
        f"{what} at {where(engine.url)} (schema version {version})",
        highlight=False,
        markup=False,
        soft_wrap=True,
    )


@db_app.command("info", epilog=examples("madness db info", "madness db info --db madness.db"))
def db_info(db: DbOption = None) -> None:
    """What the store holds: its URL (without the password), schema version and the
    number of symbols, bars, runs, sweeps and universes. Reads only: creates and upgrades
    nothing."""
    from lstm_madness.data.db import make_engine
    from lstm_madness.data.initdb import require_store, store_info

    engine = make_engine(db)
    require_store(engine)
    info = store_info(engine)
    version, current = info["schema_version"], info["current_version"]
    if version is None:
        schema = "none yet (`madness db init` creates it)"
    elif version < current:
        schema = f"{version}, older than this package's {current} (`madness db init` upgrades it)"
    else:
        schema = str(version)
    statuses = ", ".join(f"{n} {status}" for status, n in sorted(info["runs_by_status"].items()))
    lines = [
        f"store           {info['url']}",
        f"schema version  {schema}",
        f"symbols         {fmt.count(info['symbols'])}",
        f"bars            {fmt.count(info['bars'])}",
        f"runs            {fmt.count(info['runs'])}" + (f" ({statuses})" if statuses else ""),
        f"sweeps          {fmt.count(info['sweeps'])}",
        f"universes       {fmt.count(info['universes'])} stored",
    ]
    for line in lines:
        console.print(line, highlight=False, markup=False, soft_wrap=True)


def _summary(result: IngestResult) -> str:
    symbols = ",".join(result.symbols)
    head = f"{escape(result.path)} [bold]{escape(symbols)}[/]"
    if not result.changed:
        again = ""
        if result.previously_loaded is not None:
            again = f"; same file loaded {result.previously_loaded:%Y-%m-%d %H:%M}"
        text = f"{head}: no change ({result.unchanged} rows already stored{again})"
    else:
        text = (
            f"{head}: {result.rows_read} read, [green]{result.inserted} inserted[/], "
            f"{result.updated} updated, {result.unchanged} unchanged"
        )
    if result.rejected:
        text += f", [red]{result.rejected} rejected[/]"
    if result.collapsed:
        text += f", {result.collapsed} identical duplicates collapsed"
    return text + f" (sha256 {result.checksum[:12]})"


def _report(result: IngestResult) -> None:
    console.print(_summary(result), highlight=False, soft_wrap=True)
    for problem in result.problems:
        err_console.print(
            f"[yellow]rejected:[/] {escape(str(problem))}", highlight=False, soft_wrap=True
        )
    for warning in result.warnings:
        err_console.print(f"[yellow]warning:[/] {escape(warning)}", highlight=False, soft_wrap=True)


@app.command(
    "ingest", epilog=examples("madness ingest --sample sp500", "madness ingest data/*.csv")
)
def ingest(
    paths: Annotated[
        list[Path] | None, typer.Argument(help="Price CSV files.", show_default=False)
    ] = None,
    symbol: Annotated[
        str | None,
        typer.Option(
            "--symbol", metavar="SYMBOL", help="Symbol of the rows (default: from the file name)."
        ),
    ] = None,
    fmt: Annotated[
        str,
        typer.Option("--format", metavar="FORMAT", help="auto | yahoo | stooq | generic | long."),
    ] = "auto",
    skip_bad_rows: Annotated[
        bool,
        typer.Option("--skip-bad-rows", help="Load the good rows and list the rejected ones."),
    ] = False,
    sample: Annotated[
        str | None,
        typer.Option(
            "--sample", metavar="NAME", help="Load a bundled sample: sp500 (S&P 500, 1999-2018)."
        ),
    ] = None,
    db: DbOption = None,
) -> None:
    """Load daily bars from CSV files (each file all or nothing) or a bundled sample."""
    from lstm_madness.data.db import make_engine
    from lstm_madness.data.ingest import ingest_files, ingest_sample
    from lstm_madness.data.store import init_db

    paths = paths or []
    if not paths and sample is None:
        raise typer.BadParameter("give at least one PATH or --sample sp500")
    if symbol is not None and len(paths) > 1:
        raise typer.BadParameter("--symbol applies to a single file")
    engine = make_engine(db)
    with announce_new_store(engine):
        init_db(engine)
        if sample is not None:
            _report(ingest_sample(engine, sample))
        outcomes = ingest_files(engine, paths, symbol=symbol, fmt=fmt, skip_bad_rows=skip_bad_rows)
    failed = 0
    for _path, outcome in outcomes:
        if isinstance(outcome, MadnessError):
            failed += 1
            err_console.print(
                f"[bold red]error:[/] {escape(str(outcome))}", highlight=False, soft_wrap=True
            )
            continue
        _report(outcome)
    if failed:
        err_console.print(f"[bold red]{failed} of {len(paths)} file(s) not loaded[/]")
        raise typer.Exit(1)


@app.command(
    "fetch",
    epilog=examples(
        "madness fetch --universe xlf --start 1999-01-01",
        "madness fetch XLF BRK-B ^GSPC --start 2010-01-01",
    ),
)
def fetch(
    symbols: Annotated[
        list[str] | None, typer.Argument(help="Yahoo tickers, e.g. XLF BRK-B ^GSPC.")
    ] = None,
    start: Annotated[
        str | None, typer.Option("--start", metavar="DATE", help="First date, YYYY-MM-DD.")
    ] = None,
    end: Annotated[
        str | None, typer.Option("--end", metavar="DATE", help="Last date, YYYY-MM-DD.")
    ] = None,
    universe: Annotated[
        str | None,
        typer.Option(
            "--universe", metavar="NAME", help="Add a bundled universe: xlf (XLF + 30 components)."
        ),
    ] = None,
    db: DbOption = None,
) -> None:
    """Download daily bars from Yahoo Finance (yfinance) into the store."""
    from lstm_madness.data.db import make_engine
    from lstm_madness.data.fetch import fetch as fetch_bars
    from lstm_madness.data.fetch import load_universe
    from lstm_madness.data.store import as_date, init_db

    wanted = list(symbols or [])
    if universe is not None:
        wanted += load_universe(universe)
    if not wanted:
        raise typer.BadParameter("give at least one SYMBOL or --universe xlf")
    first, last = as_date(start, "--start"), as_date(end, "--end")
    engine = make_engine(db)
    with announce_new_store(engine):
        init_db(engine)
        for result in fetch_bars(engine, wanted, first, last):
            _report(result)


@app.command("symbols", epilog=examples("madness symbols"))
def symbols(db: DbOption = None) -> None:
    """List stored symbols with their first date, last date and number of rows."""
    from lstm_madness.data.db import make_engine
    from lstm_madness.data.initdb import require_store
    from lstm_madness.data.store import list_symbols

    engine = make_engine(db)
    require_store(engine)
    frame = list_symbols(engine)
    if frame.empty:
        console.print("no symbols stored yet (`madness ingest` or `madness fetch`)")
        return
    columns = (
        Column("symbol", 0),
        Column("first date", 0),
        Column("last date", 0),
        Column("rows", 0, "right"),
    )
    rows = [
        [row.symbol, fmt.date(row.first_date), fmt.date(row.last_date), fmt.count(row.rows)]
        for row in frame.itertuples(index=False)
    ]
    print_table(console, columns, rows)


def _cell(value: object, digits: int) -> str:
    """Table text of a value: dates as YYYY-MM-DD, floats with ``digits`` decimals."""
    if hasattr(value, "strftime"):
        return value.strftime("%Y-%m-%d")  # type: ignore[union-attr]
    if isinstance(value, float):  # numpy.float64 is a float
        return "" if math.isnan(value) else f"{value:.{digits}f}"
    return str(value)


@app.command(
    "prices",
    epilog=examples(
        "madness prices XLF --returns --csv",
        "madness prices ^GSPC --start 2018-01-02 --end 2018-01-31",
    ),
)
def prices(
    symbol: Annotated[str, typer.Argument(help="Stored symbol.")],
    start: Annotated[
        str | None, typer.Option("--start", metavar="DATE", help="First date, YYYY-MM-DD.")
    ] = None,
    end: Annotated[
        str | None, typer.Option("--end", metavar="DATE", help="Last date, YYYY-MM-DD.")
    ] = None,
    returns: Annotated[
        bool, typer.Option("--returns", help="Show date,ret,next_ret (simple returns).")
    ] = False,
    csv: Annotated[bool, typer.Option("--csv", help="Write CSV to stdout.")] = False,
    db: DbOption = None,
) -> None:
    """Print the stored bars of a symbol, or its daily returns with --returns."""
    from lstm_madness.data.db import make_engine
    from lstm_madness.data.initdb import require_store
    from lstm_madness.data.store import read_bars, read_returns

    engine = make_engine(db)
    require_store(engine)
    reader = read_returns if returns else read_bars
    frame = reader(engine, symbol, start, end)
    if csv:
        typer.echo(frame.to_csv(index=False, date_format="%Y-%m-%d", lineterminator="\n"), nl=False)
        return
    digits = 6 if returns else 4
    table = Table(*frame.columns, title=f"{symbol}: {len(frame)} rows")
    for row in frame.itertuples(index=False):
        table.add_row(*(_cell(v, digits) for v in row))
    console.print(table)
