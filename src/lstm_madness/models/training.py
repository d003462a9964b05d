"""Which engine trains a network, and one entry point over the three engines.

:func:`resolve_trainer` is the ``auto`` rule (a function of the config alone);
:func:`fit_networks` hands each :class:`~lstm_madness.models.protocol.TrainingJob` to its
engine's :class:`~lstm_madness.models.protocol.Trainer`: ``torch``
(:mod:`~lstm_madness.models.torch_trainer`), ``batched``
(:mod:`~lstm_madness.models.batched`) or ``compiled``
(:mod:`~lstm_madness.models.compiled`).
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import torch

from lstm_madness.errors import ConfigError
from lstm_madness.models import batched, compiled, torch_trainer
from lstm_madness.models.protocol import FittedNetwork, GroupProgress, Trainer, TrainingJob
from lstm_madness.options import TRAINERS

__all__ = [
    "COMPILED_MAX_BATCH_UNITS2",
    "COMPILED_MAX_BATCH_UNITS2_WALK_FORWARD",
    "ENGINES",
    "available_cpus",
    "fit_networks",
    "resolve_trainer",
]

#: ``trainer="auto"`` picks the compiled loops when ``batch_size · max(units)²`` is at most
#: this, else the batched engine: where one network trains faster compiled than by either
#: PyTorch engine (``python -m bench compiled``; docs/benchmarks.md).
COMPILED_MAX_BATCH_UNITS2 = 524_288
#: A config refitted on walk-forward folds trains its folds' networks together (one batched
#: computation per fold group), so there ``auto`` keeps the compiled loops only where they
#: beat the batched engine training many networks at once: batch 1, or ``batch_size ·
#: max(units)² <=`` this (the grid's "batched×16" column, and ``python -m bench study``).
COMPILED_MAX_BATCH_UNITS2_WALK_FORWARD = 1_024
#: The engine of each concrete trainer name, in the order :func:`fit_networks` runs them.
ENGINES: dict[str, Trainer] = {
    "torch": torch_trainer.fit,
    "compiled": compiled.fit,
    "batched": batched.fit,
}


def resolve_trainer(
    trainer: str,
    units: Sequence[int],
    batch_size: int,
    time_steps: int | None,
    device: str = "auto",
    *,
    walk_forward: bool = False,
) -> str:
    """The concrete trainer of a network: ``torch`` (the autograd loop), ``batched``
    (trains same-shape networks together) or ``compiled`` (numba loops, CPU only).

    ``"auto"`` is a pure function of the architecture and batch size — never of how many
    networks train together, so a config trains the same way alone or inside a sweep:
    ``compiled`` when ``device`` is not ``"cuda"`` and ``batch_size · max(units)² <=``
    :data:`COMPILED_MAX_BATCH_UNITS2`, else ``batched``; for a config refitted on
    walk-forward folds that train together (``walk_forward``: part of the config too) the
    bound is :data:`COMPILED_MAX_BATCH_UNITS2_WALK_FORWARD` (or batch size 1). ``time_steps``
    is accepted for the record: the measured crossover does not depend on it.
    """
    if trainer not in TRAINERS:
        raise ConfigError(f"trainer {trainer!r} is not one of {', '.join(TRAINERS)}")
    if trainer == "compiled" and device == "cuda":
        raise ConfigError("trainer 'compiled' runs on the CPU; it cannot use device 'cuda'")
    if trainer != "auto":
        return trainer
    del time_steps  # every trainer's cost is linear in it (bench compiled grid)
    work = int(batch_size) * max(int(u) for u in units) ** 2
    if walk_forward:
        small = int(batch_size) == 1 or work <= COMPILED_MAX_BATCH_UNITS2_WALK_FORWARD
    else:
        small = work <= COMPILED_MAX_BATCH_UNITS2
    return "compiled" if device != "cuda" and small else "batched"


def available_cpus() -> int:
    """Threads a training call may use: PyTorch's intra-op thread count, the one knob for
    every trainer (the cores by default; ``$OMP_NUM_THREADS`` or ``torch.set_num_threads``
    lower it, as Ray does for a task of one CPU), never more than the CPUs this process may
    run on."""
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return max(1, min(torch.get_num_threads(), cpus or 1))


def fit_networks(
    jobs: Sequence[TrainingJob],
    trainers: Sequence[str],
    *,
    progress: GroupProgress | None = None,
    n_jobs: int | None = None,
) -> list[FittedNetwork]:
    """Fit ``jobs[i]`` by the engine ``trainers[i]`` (a concrete name); networks in job
    order.

    The engines run one after another: ``torch`` (one network at a time), ``compiled``
    (``n_jobs`` worker threads; None = :func:`available_cpus`, 1 = in the calling thread;
    each fit ends with exactly the result of its fit alone), then ``batched`` (jobs with
    equal settings as one batched computation). ``progress(epoch, n_still_training)`` after
    each epoch of each training call, for jobs without their own callback; callbacks run in
    the calling thread. The first error is raised.
    """
    if len(jobs) != len(trainers):
        raise ConfigError(f"{len(jobs)} jobs but {len(trainers)} trainers")
    if n_jobs is not None and int(n_jobs) < 1:
        raise ConfigError(f"n_jobs must be at least 1 (or None for every CPU), got {n_jobs}")
    unknown = set(trainers) - set(ENGINES)
    if unknown:
        raise ConfigError(f"no engine named {', '.join(sorted(unknown))}")
    fitted: list[FittedNetwork | None] = [None] * len(jobs)
    for name, engine in ENGINES.items():
        members = [i for i, trainer in enumerate(trainers) if trainer == name]
        if not members:
            continue
        workers = int(n_jobs) if n_jobs else available_cpus()
        done = engine([jobs[i] for i in members], progress, workers)
        for i, network in zip(members, done, strict=True):
            fitted[i] = network
    return fitted  # type: ignore[return-value]
