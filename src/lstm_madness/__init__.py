"""lstm-madness: can an LSTM on past returns predict tomorrow well enough to trade?

The Python API (:mod:`lstm_madness.api`), imported on first use so that ``import
lstm_madness`` stays cheap:

- ``run(config, *, db=None, overrides=None, name=None, trials=None) -> RunResult``
- ``judge(predictions, *, target, db=None, name=None, task="return", alignment="next_day",
  overrides=None, trials=None, allow_gaps=False, force=False) -> RunResult | list[RunResult]``
- ``load_run(run_id, *, db=None) -> RunResult``
"""

from __future__ import annotations

from typing import Any

from lstm_madness.version import __version__

__all__ = ["__version__", "judge", "load_run", "run"]


def __getattr__(name: str) -> Any:
    if name in ("judge", "load_run", "run"):
        from lstm_madness import api

        return getattr(api, name)
    raise AttributeError(f"module 'lstm_madness' has no attribute {name!r}")
