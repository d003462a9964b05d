"""numba, imported on first use, with its compiled functions cached on disk.

Modules of numba kernels (:mod:`lstm_madness.models._kernels`,
:mod:`lstm_madness.evaluation._resample`) import numba at their top; callers reach them
through :func:`load`, which points numba's on-disk cache at :func:`cache_dir` first, so a
process pays the compilation once per machine, not per run, and a process that never
loads a kernel module never imports numba.
"""

from __future__ import annotations

import importlib
import os
import sys
import tempfile
import threading
import time
from pathlib import Path
from types import ModuleType

__all__ = ["cache_dir", "load", "load_seconds"]

#: Seconds each kernel module's first :func:`load` spent importing numba and loading or
#: compiling its functions in this process.
load_seconds: dict[str, float] = {}
_LOCK = threading.Lock()


def cache_dir() -> Path:
    """Where numba caches compiled kernels: ``$NUMBA_CACHE_DIR`` when set, else
    ``$XDG_CACHE_HOME/lstm_madness/numba`` (``~/.cache/...``), else a per-user directory
    under the system temp dir when the home cache is not writable (read-only installs, Ray
    workers without a home)."""
    if os.environ.get("NUMBA_CACHE_DIR"):
        return Path(os.environ["NUMBA_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    candidates = [
        Path(base) / "lstm_madness" / "numba",
        Path(tempfile.gettempdir()) / f"lstm_madness-numba-{os.getuid()}",
    ]
    for path in candidates:
        try:
            path.mkdir(parents=True, exist_ok=True)
        except OSError:
            continue
        if os.access(path, os.W_OK):
            return path
    return candidates[-1]


def load(module: str) -> ModuleType:
    """The kernel module ``module`` (a dotted name), importing numba with the cache
    directory set on first use. Thread-safe: concurrent first calls load it once."""
    loaded = sys.modules.get(module)
    if loaded is not None:
        return loaded
    with _LOCK:
        return _load(module)


def _load(module: str) -> ModuleType:
    loaded = sys.modules.get(module)
    if loaded is not None:  # loaded by another thread while this one waited
        return loaded
    start = time.perf_counter()
    if "numba" not in sys.modules:
        os.environ.setdefault("NUMBA_CACHE_DIR", str(cache_dir()))
    else:  # imported earlier by another library: numba reads the setting at compile time
        import numba

        if not numba.config.CACHE_DIR:
            numba.config.CACHE_DIR = str(cache_dir())
    loaded = importlib.import_module(module)
    load_seconds[module] = time.perf_counter() - start
    return loaded
