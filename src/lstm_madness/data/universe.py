"""Bundled symbol universes (package data ``data/universes/<name>.csv``).

Survivorship bias: a universe lists *today's* members (as of the date in the file's header
comment), with whatever pre-merger history the vendor attaches to each ticker. Firms that
left the index (failed, merged or delisted) are absent, so a study over a universe sees
only the survivors and tends to look better than a portfolio chosen back then would have.
"""

from __future__ import annotations

from functools import cache
from importlib import resources

import pandas as pd

from lstm_madness.errors import DataError


def available_universes() -> list[str]:
    """Names of the bundled universes (e.g. ``["xlf"]``)."""
    folder = resources.files("lstm_madness.data").joinpath("universes")
    return sorted(p.name[:-4] for p in folder.iterdir() if p.name.endswith(".csv"))


@cache
def universe_table(name: str) -> pd.DataFrame:
    """The universe file: columns ``symbol``, ``name``, ``kind`` (``etf`` first, then ``stock``).

    Raises
    ------
    DataError
        No universe of that name is bundled.
    """
    key = name.strip().lower()
    if key not in available_universes():
        raise DataError(f"unknown universe {name!r}: available: {', '.join(available_universes())}")
    path = resources.files("lstm_madness.data").joinpath("universes", f"{key}.csv")
    with path.open("r", encoding="utf-8") as handle:
        return pd.read_csv(handle, comment="#", dtype=str, keep_default_na=False)


def load_universe(name: str) -> list[str]:
    """Symbols of a bundled universe, the ETF first: ``load_universe("xlf")`` → XLF + 30.

    The list is the membership as of the date in the file (today's tickers), so it carries
    survivorship bias: see the module docstring.
    """
    return universe_table(name)["symbol"].tolist()


def known_security(symbol: str) -> tuple[str | None, str | None]:
    """(kind, name) of a symbol: from a bundled universe, else ``index`` for ``^`` symbols.

    Unknown symbols give ``(None, None)``.
    """
    for name in available_universes():
        table = universe_table(name)
        hit = table.loc[table["symbol"] == symbol]
        if len(hit):
            return hit["kind"].iloc[0] or None, hit["name"].iloc[0] or None
    return ("index" if symbol.startswith("^") else None), None
