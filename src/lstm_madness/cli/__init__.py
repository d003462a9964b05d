"""The ``madness`` command line.

Each concept registers its commands on the shared Typer ``app`` from its own module
(``cli/data.py``, ``cli/experiment.py``, ...). Library errors (``MadnessError``) become a
one-line message on stderr and exit code 1; there is no traceback for user errors.
"""

from __future__ import annotations

import importlib

from lstm_madness.cli._app import app

_COMMAND_MODULES = ("data", "experiment", "judging", "reporting", "sweeping", "universe")

for _name in _COMMAND_MODULES:
    try:
        importlib.import_module(f"lstm_madness.cli.{_name}")
    except ModuleNotFoundError as _exc:  # a command module not written yet
        if _exc.name != f"lstm_madness.cli.{_name}":
            raise


def main() -> None:
    """Entry point of the ``madness`` console script."""
    app()


__all__ = ["app", "main"]
