"""Exception hierarchy. The library raises these; only the CLI turns them into messages."""

from __future__ import annotations


class MadnessError(Exception):
    """Base class of every error this package raises on purpose."""


class ConfigError(MadnessError):
    """A configuration value or key is invalid; the message names the key."""


class DataError(MadnessError):
    """Input data is missing, malformed or inconsistent."""


class ValidationError(DataError):
    """A file failed validation. ``problems`` holds one entry per rejected row/value."""

    def __init__(self, message: str, problems: list | None = None) -> None:
        super().__init__(message)
        self.problems = list(problems or [])


class StoreError(MadnessError):
    """The database cannot be reached or is not in the expected state."""


class FetchError(DataError):
    """Downloading prices failed (network, unknown symbol, empty answer)."""


class RunError(MadnessError):
    """An experiment run cannot be started, resumed or found."""


class AlreadyJudgedError(RunError):
    """Forecasts judged before with the same settings (``madness judge`` without
    ``--force``); ``held`` maps each such model to the run that holds it."""

    def __init__(self, message: str, held: dict[str, int] | None = None) -> None:
        super().__init__(message)
        self.held = dict(held or {})
