"""The plan of a batch of runs: what is loaded once, trained together and fitted once.

Pure functions of the configs (and, for fold groups, of the fold sizes): no database,
no training. The runner (:mod:`lstm_madness.experiment.runner`) and the sweep
(:mod:`lstm_madness.sweep`) carry the plan out.

- A **data group**: configs that read the same data, cut the same folds and fit the same
  baselines (equal ``[data]``, ``[target]``, ``[split]``, ``[baselines]`` and
  ``model.time_steps``). Its data is loaded once and its baselines are fitted once per
  fold; every member stores the same baseline predictions.
- A **shape group**: members of a data group whose networks have the same shape and
  training settings (all of ``[model]`` and ``[train]`` but the seed). All their folds
  and seeds can be trained as one batched computation.
- A **fold group**: consecutive folds trained together, as long as their training
  windows fit in ``train.batch_memory_mb``. A fold group is also the unit of storage
  and of ``--resume``: its predictions are stored in one transaction.
- A **training job**: one batched training call, at most ``train.batch_models``
  (config, fold) pairs of one shape group and one fold group.

Configs are referred to by their index in the list given to :func:`plan_runs`.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass

from lstm_madness.experiment.config import ExperimentConfig

#: A training job: (config index, fold index) pairs trained in one batched call.
Job = tuple[tuple[int, int], ...]


def data_key(config: ExperimentConfig) -> str:
    """Configs with equal keys read the same data, cut the same folds and fit the same
    baselines."""
    d = config.to_dict()
    return repr((d["data"], d["target"], d["split"], d["baselines"], d["model"]["time_steps"]))


def shape_key(config: ExperimentConfig) -> str:
    """Configs with equal keys can be trained as one batched computation."""
    d = config.to_dict()
    train = {k: v for k, v in d["train"].items() if k != "seed"}
    return repr((data_key(config), d["model"], train))


@dataclass(frozen=True)
class DataGroup:
    """Configs sharing data, folds and baselines; ``shapes`` partitions ``members``."""

    members: tuple[int, ...]
    shapes: tuple[tuple[int, ...], ...]


@dataclass(frozen=True)
class Plan:
    """Data groups in order of their first config."""

    groups: tuple[DataGroup, ...]

    @property
    def n_configs(self) -> int:
        return sum(len(g.members) for g in self.groups)


def _by_key(indices: Sequence[int], keys: Sequence[str]) -> list[tuple[int, ...]]:
    out: dict[str, list[int]] = {}
    for i in indices:
        out.setdefault(keys[i], []).append(i)
    return [tuple(v) for v in out.values()]


def plan_runs(configs: Sequence[ExperimentConfig]) -> Plan:
    """Data groups of ``configs`` and, inside each, their shape groups."""
    data_keys = [data_key(c) for c in configs]
    shape_keys = [shape_key(c) for c in configs]
    groups = [
        DataGroup(members, tuple(_by_key(members, shape_keys)))
        for members in _by_key(range(len(configs)), data_keys)
    ]
    return Plan(tuple(groups))


def shape_chunks(configs: Sequence[ExperimentConfig], max_group: int = 0) -> list[list[int]]:
    """Indices of configs that one batched task can train together (same data and
    shape), at most ``max_group`` per chunk (0: no limit). The sweep dispatches these."""
    shape_keys = [shape_key(c) for c in configs]
    chunks = []
    for members in _by_key(range(len(configs)), shape_keys):
        size = max_group if max_group > 0 else len(members)
        chunks += [list(members[i : i + size]) for i in range(0, len(members), size)]
    return chunks


def fold_groups(
    configs: Sequence[ExperimentConfig], n_train: Sequence[int], n_features: int
) -> list[list[int]]:
    """Positions of consecutive folds trained (and stored) together.

    ``n_train[k]`` is the number of training samples of fold ``k``. Folds join a group
    while their float32 training windows, for every config of ``configs`` (one data
    group), fit in the smallest ``train.batch_memory_mb``; one fold per group when any
    config has ``train.batch_folds`` off.
    """
    if not all(c.train.batch_folds for c in configs):
        return [[k] for k in range(len(n_train))]
    budget = min(c.train.batch_memory_mb for c in configs) * 2**20
    per_row = 4 * configs[0].model.time_steps * n_features * len(configs)
    groups: list[list[int]] = [[]]
    used = 0
    for k, rows in enumerate(n_train):
        size = int(rows) * per_row
        if groups[-1] and used + size > budget:
            groups.append([])
            used = 0
        groups[-1].append(k)
        used += size
    return [g for g in groups if g]


def training_jobs(
    configs: Sequence[ExperimentConfig],
    shape: Sequence[int],
    folds: Sequence[int],
    done: Mapping[int, Collection[int]] | None = None,
) -> list[Job]:
    """Batched training calls for one shape group over one fold group.

    Every (config, fold) pair not in ``done[config]`` (completed folds, on resume), in
    chunks of ``train.batch_models`` (0 or less: one call for all).
    """
    done = done or {}
    pairs = [(i, k) for i in shape for k in folds if k not in done.get(i, ())]
    if not pairs:
        return []
    size = configs[shape[0]].train.batch_models
    size = size if size > 0 else len(pairs)
    return [tuple(pairs[s : s + size]) for s in range(0, len(pairs), size)]
