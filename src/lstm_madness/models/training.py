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
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from itertools import pairwise

import torch

from lstm_madness.errors import ConfigError
from lstm_madness.models import batched, compiled, torch_trainer
from lstm_madness.models.compiled_lstm import uses_parts
from lstm_madness.models.protocol import FittedNetwork, GroupProgress, Trainer, TrainingJob
from lstm_madness.options import TRAINERS

__all__ = [
    "COMPILED_MAX_BATCH_UNITS2",
    "COMPILED_MAX_BATCH_UNITS2_WALK_FORWARD",
    "ENGINES",
    "MIN_MACS_PER_THREAD",
    "PARTS_MAX_UNITS",
    "PARTS_MIN_STEPS",
    "available_cpus",
    "fit_networks",
    "resolve_trainer",
    "torch_threads",
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
#: Widest one-layer LSTM for which ``auto`` picks the compiled parts path (measured up to
#: 64 units, ``python -m bench sp500``; wider ones keep the rule of the batch size).
PARTS_MAX_UNITS = 64
#: Shortest windows for which ``auto`` picks the parts path (measured from 60 steps).
PARTS_MIN_STEPS = 60
#: Multiply-adds of the largest matrix product of one recurrent step that each PyTorch
#: intra-op thread must get before a training call uses it (:func:`torch_threads`): about
#: 5 ms of one core's work, far above what the threads' barrier costs even beside another
#: busy process.
MIN_MACS_PER_THREAD = 1 << 27
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
    cell: str = "lstm",
) -> str:
    """The concrete trainer of a network: ``torch`` (the autograd loop), ``batched``
    (trains same-shape networks together) or ``compiled`` (numba loops, CPU only).

    ``"auto"`` is a pure function of the architecture, window length and batch size —
    never of how many networks train together, so a config trains the same way alone or
    inside a sweep. Off CUDA (``device`` not ``"cuda"``):

    1. ``compiled`` for a one-layer LSTM of at most :data:`PARTS_MAX_UNITS` units over
       windows of at least :data:`PARTS_MIN_STEPS` steps whose batches hold enough
       window-steps to train in parts on every core
       (:func:`~lstm_madness.models.compiled_lstm.uses_parts`: the 240-day sequences of
       Fischer & Krauss; ``python -m bench sp500``);
    2. else ``compiled`` when ``batch_size · max(units)² <=``
       :data:`COMPILED_MAX_BATCH_UNITS2` (for a config refitted on walk-forward folds that
       train together, ``walk_forward``, :data:`COMPILED_MAX_BATCH_UNITS2_WALK_FORWARD` or
       batch size 1), else ``batched``.
    """
    if trainer not in TRAINERS:
        raise ConfigError(f"trainer {trainer!r} is not one of {', '.join(TRAINERS)}")
    if trainer == "compiled" and device == "cuda":
        raise ConfigError("trainer 'compiled' runs on the CPU; it cannot use device 'cuda'")
    if trainer != "auto":
        return trainer
    if device == "cuda":
        return "batched"
    units = tuple(int(u) for u in units)
    if (
        time_steps
        and int(time_steps) >= PARTS_MIN_STEPS
        and max(units) <= PARTS_MAX_UNITS
        and uses_parts(cell, units, int(batch_size), int(time_steps))
    ):
        return "compiled"
    work = int(batch_size) * max(units) ** 2
    if walk_forward:
        small = int(batch_size) == 1 or work <= COMPILED_MAX_BATCH_UNITS2_WALK_FORWARD
    else:
        small = work <= COMPILED_MAX_BATCH_UNITS2
    return "compiled" if small else "batched"


def available_cpus() -> int:
    """Threads a training call may use: PyTorch's intra-op thread count, the one knob for
    every trainer (the cores by default; ``$OMP_NUM_THREADS`` or ``torch.set_num_threads``
    lower it, as Ray does for a task of one CPU), never more than the CPUs this process may
    run on."""
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return max(1, min(torch.get_num_threads(), cpus or 1))


def torch_threads(jobs: Sequence[TrainingJob], together: bool, cpus: int) -> int:
    """PyTorch's intra-op threads while the ``torch`` or ``batched`` engine trains ``jobs``
    (``together``: networks with equal settings as one computation, as the batched engine
    does): a thread per :data:`MIN_MACS_PER_THREAD` multiply-adds of the call's largest
    matrix product of one recurrent step (networks together × batch × gates·units ×
    (inputs + units)), at least 1, at most ``cpus``.

    Why not every core: a recurrent step is a chain of small operations, and the intra-op
    threads meet at a barrier after each one. On an idle machine a second thread saves
    little on them; beside another busy process a thread that waits for its core holds up
    every operation (``nn.LSTM``, 240 steps, batch 128: 2,919 sequences/s on one thread,
    101 on two, issue 21). The demo's call (45 × LSTM(32), batch 64: 12 M multiply-adds)
    gets one thread; where several networks train, the cores go to the networks instead
    (the compiled engine's thread per network). A thread count changes no result here:
    the tests train on one thread."""
    groups: dict[tuple[str, ...], list[TrainingJob]] = {}
    for job in jobs:
        groups.setdefault(job.settings.key() if together else (str(id(job)),), []).append(job)
    largest = 0
    for members in groups.values():
        s = members[0].settings
        gates = 4 if s.cell == "lstm" else 3
        widths = (int(members[0].X.shape[2]), *(int(u) for u in s.units))
        layer = max(gates * h * (i + h) for i, h in pairwise(widths))
        largest = max(largest, len(members) * int(s.batch_size) * layer)
    return max(1, min(int(cpus), largest // MIN_MACS_PER_THREAD))


@contextmanager
def _intra_op_threads(n: int) -> Iterator[None]:
    """PyTorch at ``n`` intra-op threads inside (this thread's setting), restored after."""
    before = torch.get_num_threads()
    if n != before:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        if n != before:
            torch.set_num_threads(before)


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
    equal settings as one batched computation); ``torch`` and ``batched`` run with the
    intra-op threads of :func:`torch_threads`. ``progress(epoch, n_still_training)`` after
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
        group = [jobs[i] for i in members]
        if name == "compiled":  # numba's threads, a network each; PyTorch barely runs
            done = engine(group, progress, workers)
        else:
            with _intra_op_threads(torch_threads(group, name == "batched", available_cpus())):
                done = engine(group, progress, workers)
        for i, network in zip(members, done, strict=True):
            fitted[i] = network
    return fitted  # type: ignore[return-value]
