"""numba, imported on first use, with its compiled functions cached on disk.

Modules of numba kernels (:mod:`lstm_madness.models._kernels`,
:mod:`lstm_madness.evaluation._resample`) import numba at their top; callers reach them
through :func:`load`, which points numba's on-disk cache at :func:`cache_dir` first, so a
process pays the compilation once per machine, not per run, and a process that never
loads a kernel module never imports numba.

The install compiles them (``make demo`` and ``make test`` run ``python -m
lstm_madness.cli.warm``), so no command waits for it. Where the cache is cold all the same
(another cache directory, an edited kernel), :func:`load` says so before the wait, through
:data:`announce` (stderr by default): "compiling the training kernels once (about 20 s);
cached in PATH".
"""

from __future__ import annotations

import importlib
import os
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

__all__ = ["KERNELS", "announce", "cache_dir", "cached", "load", "load_seconds"]

#: Every module of numba kernels, with what a person is told before its first load on a
#: machine compiles it: what it is, and about how long that takes (CPU seconds of a
#: compilation from cold on the project's machines; the first compiled fit measured
#: 20.2 s, docs/benchmarks.md).
KERNELS: dict[str, tuple[str, str]] = {
    "lstm_madness.models._kernels": ("the training kernels", "about 20 s"),
    "lstm_madness.models._lstm_kernels": ("the long-window LSTM kernels", "about 5 s"),
    "lstm_madness.evaluation._resample": ("the bootstrap kernels", "about 2 s"),
}

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
    if module in KERNELS and not cached(loaded):  # the next call compiles: say so first
        what, takes = KERNELS[module]
        announce(f"compiling {what} once ({takes}); cached in {_numba_cache_dir()}")
    load_seconds[module] = time.perf_counter() - start
    return loaded


def _to_stderr(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


#: Called with one line before a kernel module compiles (its cache is cold); writes it to
#: stderr, where a live progress display prints it above its bars. Replace it to route
#: the line elsewhere.
announce: Callable[[str], None] = _to_stderr


def _numba_cache_dir() -> str:
    import numba

    return str(numba.config.CACHE_DIR or cache_dir())


def cached(module: ModuleType) -> bool:
    """Whether numba's on-disk cache holds every kernel of the loaded ``module`` compiled
    for this machine from its current source, i.e. whether calling them loads instead of
    compiling. Kernels inlined into others (``inline="always"``) have no entry of their
    own and are not counted. Reads numba's cache index the way numba does; where that
    fails (another numba), True: the notice is a courtesy, never an error."""
    try:
        from numba.core.dispatcher import Dispatcher

        for kernel in vars(module).values():
            if not isinstance(kernel, Dispatcher):
                continue
            if kernel.py_func.__module__ != module.__name__:  # imported from another module
                continue
            if kernel.targetoptions.get("inline") == "always":
                continue
            machine = kernel.targetctx.codegen().magic_tuple()
            index = kernel._cache._cache_file._load_index()  # {} when absent or stale
            if not any(key[1] == machine for key in index):
                return False
    except Exception:  # pragma: no cover - numba's internals moved
        return True
    return True
