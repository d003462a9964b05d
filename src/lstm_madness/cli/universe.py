"""Commands about universes: ``universe add`` and ``universe show``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from lstm_madness.cli._app import DbOption, MadnessTyper, app, console, examples
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
    ),
)
def universe_add(
    name: Annotated[str, typer.Argument(help="Universe name, e.g. xlf (stored in lower case).")],
    file: Annotated[Path, typer.Argument(help="CSV with the header symbol,start,end.")],
    db: DbOption = None,
) -> None:
    """Store a universe's membership intervals, replacing any stored for that name.

    Each row is one interval: both dates inclusive (YYYY-MM-DD), an empty end for a symbol
    that is still a member. A file with any bad row is rejected whole and nothing is
    stored. A stored membership wins over the bundled list of the same name.
    """
    from lstm_madness.data import schema
    from lstm_madness.data.db import make_engine
    from lstm_madness.data.initdb import init_db
    from lstm_madness.data.membership import read_membership, store_membership

    intervals = read_membership(file)  # parse everything before writing anything
    engine = make_engine(db)
    init_db(engine)
    with engine.begin() as conn:
        n = store_membership(conn, schema.universe_members, name, intervals)
    symbols = intervals["symbol"].nunique()
    console.print(
        f"universe {name.strip().lower()}: {n} intervals of {symbols} symbols stored",
        highlight=False,
    )


@universe_app.command(
    "show", epilog=examples("madness universe show xlf", "madness universe show xlf --db x.db")
)
def universe_show(
    name: Annotated[str, typer.Argument(help="Universe name, e.g. xlf.")],
    db: DbOption = None,
) -> None:
    """List a universe's membership intervals: the stored ones, else the bundled list."""
    from lstm_madness.data import schema
    from lstm_madness.data.db import make_engine
    from lstm_madness.data.initdb import init_db
    from lstm_madness.data.membership import (
        SURVIVORSHIP_WARNING,
        bundled_membership,
        load_membership,
    )
    from lstm_madness.data.universe import available_universes
    from lstm_madness.errors import DataError

    engine = make_engine(db)
    init_db(engine)
    with engine.connect() as conn:
        frame = load_membership(conn, schema.universe_members, name)
    source = "stored"
    if frame is None:
        key = name.strip().lower()
        if key not in available_universes():
            raise DataError(
                f"no universe {name!r}: store one with `madness universe add {key} FILE.csv` "
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
