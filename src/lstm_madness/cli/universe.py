"""Commands about universes: ``universe add`` and ``universe show``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

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

universe_app = MadnessTyper(
    help="Point-in-time universe membership (symbol, start, end) for cross-sectional studies.",
    no_args_is_help=True,
    epilog=examples("madness universe show xlf"),
)
app.add_typer(universe_app, name="universe")


@universe_app.command(
    "add",
    epilog=examples(
        "madness universe add xlf membership.csv",
        "madness universe add xlf membership.csv --db sqlite:///madness.db",
        "madness universe add sp500 membership.csv members_without_prices.csv",
    ),
)
def universe_add(
    name: Annotated[str, typer.Argument(help="Universe name, e.g. xlf (stored in lower case).")],
    files: Annotated[
        list[Path],
        typer.Argument(
            metavar="FILE...",
            help="CSV files with the header symbol,start,end, read as one membership.",
        ),
    ],
    db: DbOption = None,
) -> None:
    """Store a universe's membership, replacing any stored under that name.

    Each row is one interval: both dates inclusive (YYYY-MM-DD), an empty end for a symbol
    that is still a member. A file with any bad row is rejected whole and nothing is
    stored. Several files are read as one (a symbol's intervals must not overlap across
    them). A stored membership wins over the bundled list of the same name. Members
    without stored prices are stored too, with a warning naming them: a study leaves them
    out, and `runs periods` counts them in its coverage (so list the members you have no
    prices for, to measure survivorship).
    """
    from rich.markup import escape

    from lstm_madness.data import schema
    from lstm_madness.data.db import make_engine
    from lstm_madness.data.initdb import init_db
    from lstm_madness.data.membership import read_memberships, store_membership, unstored_members

    intervals = read_memberships(files)  # parse everything before writing anything
    engine = make_engine(db)
    with announce_new_store(engine):
        init_db(engine)
        with engine.begin() as conn:
            n = store_membership(conn, schema.universe_members, name, intervals)
            unstored = unstored_members(conn, intervals["symbol"].tolist())
    symbols = intervals["symbol"].nunique()
    console.print(
        f"universe {name.strip().lower()}: {n} intervals of {symbols} symbols stored",
        highlight=False,
    )
    if unstored:
        more = len(unstored) - 20
        shown = ", ".join(unstored[:20]) + (f" and {more} more" if more > 0 else "")
        err_console.print(
            f"[yellow]warning:[/] {len(unstored)} member(s) have no stored prices: "
            f"{escape(shown)} (stored anyway: a study leaves them out and counts them in "
            "its coverage until their prices are ingested with madness ingest FILES or "
            "madness fetch SYMBOLS)",
            highlight=False,
            soft_wrap=True,
        )


@universe_app.command(
    "show", epilog=examples("madness universe show xlf", "madness universe show xlf --db x.db")
)
def universe_show(
    name: Annotated[str, typer.Argument(help="Universe name, e.g. xlf.")],
    db: DbOption = None,
) -> None:
    """List a universe's members: the stored ones, else the bundled list."""
    from lstm_madness.data import schema
    from lstm_madness.data.db import make_engine, where
    from lstm_madness.data.initdb import init_db, store_exists
    from lstm_madness.data.membership import (
        SURVIVORSHIP_WARNING,
        bundled_membership,
        load_membership,
    )
    from lstm_madness.data.universe import available_universes
    from lstm_madness.errors import DataError

    engine = make_engine(db)
    frame, looked = None, ""
    if store_exists(engine):  # without a store, the bundled list; nothing is created
        init_db(engine)
        with engine.connect() as conn:
            frame = load_membership(conn, schema.universe_members, name)
    else:
        looked = f" (no store at {where(engine.url)})"
    source = "stored"
    if frame is None:
        key = name.strip().lower()
        if key not in available_universes():
            raise DataError(
                f"no universe {name!r}{looked}: store one with "
                f"`madness universe add {key} FILE.csv` "
                f"(bundled: {', '.join(available_universes())})"
            )
        frame, source = bundled_membership(key), "bundled"
    columns = (Column("symbol", 0), Column("start", 0), Column("end", 0))
    rows = [
        [
            row.symbol,
            "(always)" if source == "bundled" else fmt.date(row.start),
            "(member)" if row.end is None or row.end != row.end else fmt.date(row.end),
        ]
        for row in frame.itertuples(index=False)
    ]
    console.print(
        f"universe {name.strip().lower()} ({source}): {frame['symbol'].nunique()} symbols, "
        f"{len(frame)} intervals",
        highlight=False,
    )
    print_table(console, columns, rows)
    if source == "bundled":
        console.print(SURVIVORSHIP_WARNING, highlight=False, markup=False)
