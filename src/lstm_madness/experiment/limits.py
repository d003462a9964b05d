"""What a config may ask of its data and of this machine, checked before a run is
registered: each study kind's ``check`` calls these after counting the days in the
window (no prices read), so a refused config leaves nothing in the ledger.

- :func:`check_time_steps`: ``model.time_steps`` against the days between ``data.start``
  and ``data.end``. A sample needs ``time_steps`` days with a return up to its date, and
  the window's first day may have none (its previous close is not stored), so each fold
  keeps training samples only from day ``time_steps`` on; every fold must keep
  :data:`~lstm_madness.experiment.folds.MIN_TRAIN_SAMPLES` (a necessary condition: the
  longer warm-up of some features and missing days, found when the data is loaded, may
  leave fewer).
- :func:`check_memory`: the memory a config implies against the memory available
  (:func:`available_memory`). The estimate (:func:`memory_terms`) adds the dominant
  allocations of the largest fold, bounded from the days alone: the dense windows where
  the kind materialises them, ``(n_train + n_test) · time_steps · F · 4`` bytes
  (float32); each baseline's fit (its module's ``fit_memory``: ridge's float64 design
  copies and Gram matrix); one network's activations and buffers, ``min(batch_size,
  n_train) · time_steps · Σ units · 10 · 4`` bytes. The refusal names the keys of the
  largest terms, the estimate and the memory available.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from datetime import date
from pathlib import Path

import sqlalchemy as sa

from lstm_madness.data.reading import as_date, date_filter
from lstm_madness.data.schema import bars
from lstm_madness.errors import ConfigError, DataError
from lstm_madness.experiment.config import ExperimentConfig
from lstm_madness.experiment.folds import MIN_TRAIN_SAMPLES, Fold

__all__ = [
    "ACTIVATION_FACTOR",
    "available_memory",
    "check_memory",
    "check_time_steps",
    "largest_fold",
    "memory_terms",
    "network_memory",
]

#: Values a recurrent network holds per sample of a batch, time step and hidden unit
#: while it trains (gates, states, their gradients, the optimizer's buffers), float32.
ACTIVATION_FACTOR = 10
_GIB = 2**30


def check_time_steps(
    engine: sa.Engine,
    config: ExperimentConfig,
    folds: Sequence[Fold],
    *,
    n_days: int,
    calendar: Sequence[str],
    days_of: str,
    min_dates: int = MIN_TRAIN_SAMPLES,
) -> None:
    """DataError naming ``model.time_steps``, its value and the range the data allows
    when a fold of ``folds`` (planned on ``n_days`` days, the days of ``calendar``'s
    symbols in the window, described as ``days_of``) would keep fewer than ``min_dates``
    training dates (module docstring)."""
    steps = config.model.time_steps
    shortest = min(f.train.stop for f in folds)  # every fold's training days start <= it
    allowed = shortest - min_dates  # the first sample is dated on day time_steps
    if steps <= allowed:
        return
    span = _span(engine, calendar, config.data.start, config.data.end)
    dates = f" from {span[0]} to {span[1]}" if span else ""
    bound = f"allowed 1 to {allowed} here" if allowed >= 1 else "too short for any value"
    raise DataError(
        f"model.time_steps = {steps} leaves no complete samples: {days_of} has {n_days} "
        f"trading days{dates} (data.start to data.end) and its first fold trains on the "
        f"first {shortest}; a sample needs time_steps days with a return before it (the "
        f"first day may have none) and each fold {min_dates} training dates, so "
        f"model.time_steps is {bound} (or use more data: data.start, data.end, split.*)"
    )


def largest_fold(folds: Sequence[Fold], time_steps: int, members: int = 1) -> tuple[int, int]:
    """``(n_train, n_test)`` of the fold with the most training samples, at most: its
    training days from day ``time_steps`` on and its test days, times ``members``."""
    first = time_steps

    def train(f: Fold) -> int:
        return max(f.train.stop - max(f.train.start, first), 0)

    fold = max(folds, key=train)
    return train(fold) * members, fold.n_test * members


def network_memory(config: ExperimentConfig, n_train: int | None = None) -> int:
    """Bytes of one network's activations and buffers while it trains:
    ``min(batch_size, n_train) · time_steps · Σ units · ACTIVATION_FACTOR · 4``."""
    batch = config.train.batch_size if n_train is None else min(config.train.batch_size, n_train)
    units = sum(config.model.units)
    return 4 * ACTIVATION_FACTOR * max(batch, 1) * config.model.time_steps * units


def memory_terms(
    config: ExperimentConfig,
    *,
    n_train: int,
    n_test: int,
    n_features: int,
    dense_windows: bool,
    baselines: Mapping[str, int],
    width_keys: str,
) -> list[tuple[str, str, int]]:
    """The estimate's terms, largest first: ``(what, the keys that set it, bytes)``.
    ``baselines``: each baseline's bytes (its module's ``fit_memory``); ``width_keys``:
    the keys that set the features per step."""
    steps = config.model.time_steps
    dim = steps * n_features
    width = f"model.time_steps, {width_keys}"
    terms = []
    if dense_windows:
        shape = f"{n_train} + {n_test} samples × {steps} steps × {n_features} features"
        what = f"dense windows ({shape})"
        terms.append((what, width, 4 * (n_train + n_test) * dim))
    for name, size in baselines.items():
        what = f"{name} baseline ({n_train} samples × {dim} columns)"
        terms.append((what, f"baselines.models, {width}", size))
    what = (
        f"network activations ({min(config.train.batch_size, n_train)} × {steps} steps × "
        f"{sum(config.model.units)} units)"
    )
    keys = "train.batch_size, model.time_steps, model.units"
    terms.append((what, keys, network_memory(config, n_train)))
    return sorted((t for t in terms if t[2] > 0), key=lambda t: -t[2])


def check_memory(
    config: ExperimentConfig,
    *,
    n_train: int,
    n_test: int,
    n_features: int,
    dense_windows: bool,
    baselines: Mapping[str, int],
    width_keys: str,
) -> None:
    """ConfigError when the estimate of :func:`memory_terms` (same arguments) exceeds
    :func:`available_memory`; the message names the keys of the largest terms, the
    estimate and the memory available. Nothing is refused where the available memory is
    unknown."""
    terms = memory_terms(
        config,
        n_train=n_train,
        n_test=n_test,
        n_features=n_features,
        dense_windows=dense_windows,
        baselines=baselines,
        width_keys=width_keys,
    )
    total = sum(size for _, _, size in terms)
    available = available_memory()
    if available is None or total <= available:
        return
    shown = "; ".join(f"{what} {_gib(size)} ({keys})" for what, keys, size in terms[:3])
    raise ConfigError(
        f"this config needs about {_gib(total)} of memory and {_gib(available)} is "
        f"available: {shown}; lower the first term's keys (or leave a baseline out: "
        "baselines.models)"
    )


def available_memory() -> int | None:
    """Bytes this process may still allocate: ``MemAvailable`` of ``/proc/meminfo``, or
    less under a cgroup (v2) memory limit; else the free physical pages; None when
    neither is known."""
    found: list[int] = []
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                found.append(int(line.split()[1]) * 1024)
    except (OSError, ValueError, IndexError):
        pass
    cgroup = Path("/sys/fs/cgroup")
    try:
        limit = (cgroup / "memory.max").read_text().strip()
        if limit != "max":
            found.append(int(limit) - int((cgroup / "memory.current").read_text()))
    except (OSError, ValueError):
        pass
    if not found:
        try:
            found.append(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
        except (AttributeError, ValueError, OSError):
            return None
    return max(min(found), 0)


def _gib(size: float) -> str:
    return f"{size / _GIB:.1f} GiB" if size >= _GIB / 10 else f"{math.ceil(size / 2**20)} MiB"


def _span(
    engine: sa.Engine, symbols: Sequence[str], start: date | None, end: date | None
) -> tuple[date, date] | None:
    """First and last stored day of ``symbols`` between ``start`` and ``end``."""
    window = date_filter(bars.c.date, as_date(start, "start"), as_date(end, "end"))
    query = sa.select(sa.func.min(bars.c.date), sa.func.max(bars.c.date)).where(
        bars.c.symbol.in_(list(symbols)), *window
    )
    with engine.connect() as conn:
        first, last = conn.execute(query).one()
    return (first, last) if first is not None else None
