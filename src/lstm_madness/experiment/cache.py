"""On-disk cache of numbers derived from the ledger: trial-set evidence and live run
summaries (``$MADNESS_CACHE_DIR``, default ``~/.cache/lstm-madness``).

Every key is made of what the numbers depend on — the store, the members of the trial set
(id, config hash, start time, status), the settings, the package version — so an entry is
used exactly while its trial set is unchanged. The cache holds derived numbers only;
deleting it is always safe, and a read-only home only makes it slower. This module imports
nothing heavy, so a cached ``madness runs show`` never loads the statistics stack.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

if TYPE_CHECKING:
    from lstm_madness.store.runs import Run
    from lstm_madness.store.trials import TrialSet

#: Bump when cached numbers change meaning.
CACHE_VERSION = 2

__all__ = [
    "CACHE_VERSION",
    "cache_dir",
    "key",
    "read",
    "summary_key",
    "summary_name",
    "summary_names",
    "write",
]


def cache_dir() -> Path:
    """``$MADNESS_CACHE_DIR``, else ``lstm-madness`` in ``$XDG_CACHE_HOME`` or ``~/.cache``."""
    env = os.environ.get("MADNESS_CACHE_DIR")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "lstm-madness"


def key(engine: sa.Engine, *parts: Any) -> str:
    """Cache key of ``parts`` in the store behind ``engine`` (password never included)."""
    from lstm_madness.version import __version__

    text = json.dumps(
        [CACHE_VERSION, __version__, engine.url.render_as_string(hide_password=True), *parts],
        default=str,
    )
    return hashlib.sha256(text.encode()).hexdigest()


def read(kind: str, name: str) -> dict[str, Any] | None:
    """The cached JSON object ``name`` of ``kind`` ("trials", "summaries"), or None."""
    try:
        return json.loads((cache_dir() / kind / f"{name}.json").read_text())
    except (OSError, ValueError):
        return None


def write(kind: str, name: str, value: Mapping[str, Any]) -> None:
    """Store ``value`` atomically (a concurrent reader sees the old entry or the new one)."""
    folder = cache_dir() / kind
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=folder, suffix=".tmp")
        with os.fdopen(fd, "w") as f:
            json.dump(value, f)
        os.replace(tmp, folder / f"{name}.json")
    except OSError:
        return


def summary_names(
    engine: sa.Engine, runs: Iterable[Run], trials: int | None = None
) -> dict[int, str]:
    """Cache name of each run's live summary (keyed by run id): changes when its trial set,
    its pending sweep members, its status or the ``trials`` override change. One ledger
    query per target and test period."""
    from lstm_madness.store.trials import trial_set

    groups: dict[tuple, list[Run]] = {}
    for run in runs:
        groups.setdefault(run.period, []).append(run)
    names = {}
    for (target, start, end), group in groups.items():
        ts = trial_set(
            engine, target=target, test_start=start, test_end=end, include=[r.id for r in group]
        )
        for run in group:
            names[run.id] = summary_key(engine, run, ts, trials)
    return names


def summary_key(
    engine: sa.Engine, run: Run, ts: TrialSet, trials: int | None, status: str | None = None
) -> str:
    """Cache name of ``run``'s live summary judged over the trial set ``ts``: the one it
    was evaluated against when caching it (a set read later may have grown), the one read
    now when looking it up. ``status``: the run's status the summary is cached under (a
    run evaluated while still ``running`` is stored ``succeeded``)."""
    return key(
        engine,
        "summary",
        run.id,
        run.config_hash,
        status or run.status,
        ts.fingerprint(),
        ts.pending(run),
        trials,
    )


def summary_name(engine: sa.Engine, run: Run, trials: int | None) -> str:
    """:func:`summary_names` of one run."""
    return summary_names(engine, [run], trials)[run.id]
