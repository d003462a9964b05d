"""Exception hierarchy. The library raises these; only the CLI turns them into messages."""

from __future__ import annotations


class MadnessError(Exception):
    """Base class of every error this package raises on purpose.

    An expected error reads as one line wherever it is shown: the CLI prints
    ``error: <message>``, and IPython and Jupyter show ``<Class>: <message>`` without a
    traceback (``_render_traceback_``, IPython's hook; ``%tb`` still shows it).
    """

    def _render_traceback_(self) -> list[str]:
        return [f"{type(self).__name__}: {self}"]


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
    """Forecasts judged before with the same settings; ``held`` maps each such model to
    the run that holds it. ``hint`` says how to judge them again in the caller's terms
    (``force=True`` in Python, ``--force`` on the command line): see :meth:`hinted`."""

    def __init__(self, message: str, held: dict[str, int] | None = None, hint: str = "") -> None:
        super().__init__(f"{message}; {hint}" if hint else message)
        self.reason = message
        self.held = dict(held or {})

    def hinted(self, hint: str) -> AlreadyJudgedError:
        """The same error with ``hint`` (replacing any earlier one)."""
        return AlreadyJudgedError(self.reason, self.held, hint)
