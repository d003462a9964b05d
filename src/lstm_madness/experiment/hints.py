"""What a mistaken config key or value most likely meant, for the messages of
:mod:`lstm_madness.experiment.config` and of ``--grid``.

Pure functions over the config's dataclasses (passed in, so that this module imports no
config): ``epochs`` → ``train.epochs``, ``model.unit`` → ``model.units``, ``32`` →
``[32]``.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import tomllib
import typing
from typing import Any


def _tables(root: type) -> dict[str, tuple[str, ...]]:
    """Each table's keys: ``""`` for the top level, else the section's name."""
    hints = typing.get_type_hints(root)
    tables = {"": tuple(f.name for f in dataclasses.fields(root))}
    for name in tables[""]:
        if dataclasses.is_dataclass(hints[name]):
            tables[name] = tuple(f.name for f in dataclasses.fields(hints[name]))
    return tables


def key_suggestions(root: type, key: str) -> tuple[list[str], bool]:
    """The dotted keys an unknown ``key`` of the config ``root`` most likely meant.

    Returns the suggestions and whether they are in another table: the sections that
    have a key of that name (``epochs`` or ``model.epochs`` → ``train.epochs``; True),
    else up to two close spellings in its own table (``model.unit`` → ``model.units``;
    False).
    """
    section, _, name = key.rpartition(".")
    tables = _tables(root)
    moved = [
        f"{table}.{name}" if table else name
        for table, keys in tables.items()
        if table != section and name in keys
    ]
    if moved:
        return moved, True
    prefix = f"{section}." if section else ""
    close = difflib.get_close_matches(name, tables.get(section, ()), n=2)
    return [prefix + c for c in close], False


def _toml(text: str) -> Any:
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text  # a bare word is a string, as --set reads it


def list_example(value: Any) -> str:
    """The TOML list a value given for a list most likely meant: ``32`` → ``[32]``,
    ``"2,3"`` → ``[2,3]``, ``"ret,vol_20"`` → ``["ret","vol_20"]``."""
    items = [_toml(v.strip()) for v in value.split(",")] if isinstance(value, str) else [value]
    return "[" + ",".join(json.dumps(v, default=str) for v in items) + "]"
