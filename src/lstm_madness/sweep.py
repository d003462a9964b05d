"""Sweeps: many configurations and seeds, each a stored run sharing one sweep id.

Every point of a sweep is a run in the registry, so the Deflated Sharpe Ratio of any
result counts every configuration that was tried. Two ways to choose the points:

- ``grid``: the Cartesian product of ``--grid key=[v1, v2, ...]`` axes, times ``seeds``.
- ``optuna``: ``n_trials`` points sampled by Optuna's TPE from the same axes (as
  categorical choices), minimizing the network's mean **validation** loss — a number from
  the training windows only, so the search never looks at the test period.

Two engines run them:

- ``local``: in this process; points that share data and network shape are trained as one
  batched computation (see :mod:`lstm_madness.experiment.runner`).
- ``ray``: groups of points become Ray tasks on a local Ray instance or the cluster at
  ``address``; each task runs the same code as ``local`` against the same database URL.
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd
import sqlalchemy as sa

from lstm_madness.data import schema
from lstm_madness.data.db import make_engine
from lstm_madness.data.store import init_db
from lstm_madness.errors import ConfigError, RunError
from lstm_madness.experiment import registry
from lstm_madness.experiment.config import ExperimentConfig, apply_overrides, from_dict
from lstm_madness.experiment.config import parse_assignment as _parse
from lstm_madness.jsonable import jsonable


@dataclass(frozen=True)
class SweepSpace:
    """Axes of a sweep: dotted config key → candidate values, plus the number of seeds."""

    axes: Mapping[str, tuple[Any, ...]]
    seeds: int = 1

    @classmethod
    def parse(cls, grid: Sequence[str], seeds: int = 1) -> SweepSpace:
        """From ``--grid key=[v1,v2]`` strings (TOML lists)."""
        axes: dict[str, tuple[Any, ...]] = {}
        for item in grid:
            key, values = _parse(item)
            if not isinstance(values, list) or not values:
                raise ConfigError(f"--grid {key}: expected a non-empty list, got {values!r}")
            axes[key] = tuple(values)
        if seeds < 1:
            raise ConfigError("--seeds must be >= 1")
        return cls(axes, seeds)

    def to_dict(self) -> dict[str, Any]:
        return {"axes": {k: list(v) for k, v in self.axes.items()}, "seeds": self.seeds}


def _with_seed(base: Mapping[str, Any], point: Mapping[str, Any], seed: int) -> ExperimentConfig:
    overrides = [*point.items(), ("train.seed", seed)]
    return from_dict(apply_overrides(dict(base), overrides))


def seeds_for(base: ExperimentConfig, n: int) -> list[int]:
    """``n`` consecutive seeds starting at the base config's seed."""
    return [base.train.seed + i for i in range(n)]


def grid_configs(base: ExperimentConfig, space: SweepSpace) -> list[ExperimentConfig]:
    """Every grid point × seed, validated (a bad value fails before anything runs)."""
    keys = list(space.axes)
    raw = base.to_dict()
    configs = []
    for values in itertools.product(*(space.axes[k] for k in keys)):
        point = dict(zip(keys, values, strict=True))
        configs += [_with_seed(raw, point, s) for s in seeds_for(base, space.seeds)]
    return configs


def _label(config: ExperimentConfig, base: ExperimentConfig, space: SweepSpace) -> str:
    d = config.to_dict()
    parts = []
    for key in space.axes:
        section, name = key.split(".", 1) if "." in key else ("", key)
        value = d[section][name] if section else d[name]
        parts.append(f"{name}={json.dumps(value, separators=(',', ':'))}")
    return " ".join([*parts, f"seed={config.train.seed}"])


def create_sweep(
    engine: sa.Engine,
    base: ExperimentConfig,
    space: SweepSpace,
    *,
    engine_name: str,
    name: str | None = None,
    search: str = "grid",
) -> int:
    init_db(engine)
    with engine.begin() as conn:
        result = conn.execute(
            schema.sweeps.insert().values(
                name=name or base.name or None,
                config_json=json.dumps(base.to_dict(), sort_keys=True),
                space_json=json.dumps({**space.to_dict(), "search": search}),
                engine=engine_name,
                created_at=dt.datetime.now(dt.UTC),
            )
        )
        return int(result.inserted_primary_key[0])


def _group_by_shape(configs: Sequence[ExperimentConfig], max_group: int) -> list[list[int]]:
    """Indices of configs that one batched call can train together (same data and shape)."""
    from lstm_madness.experiment.runner import _shape_key

    groups: dict[str, list[int]] = {}
    for i, config in enumerate(configs):
        groups.setdefault(_shape_key(config), []).append(i)
    chunks = []
    for members in groups.values():
        size = max_group if max_group > 0 else len(members)
        chunks += [members[i : i + size] for i in range(0, len(members), size)]
    return chunks


def _run_group_task(
    db_url: str, run_ids: list[int], run_progress: Callable[..., None] | None = None
) -> list[int]:
    """Body of a Ray task (and of the local engine): carry out registered runs."""
    from lstm_madness.experiment.runner import run_experiments

    engine = make_engine(db_url)
    try:
        run_experiments(engine, [], existing=run_ids, progress=run_progress)
    finally:
        engine.dispose()
    return run_ids


def _execute(
    db_url: str,
    configs: list[ExperimentConfig],
    labels: list[str],
    sweep_id: int,
    *,
    engine_name: str,
    address: str | None,
    max_parallel: int,
    progress: Callable[[int, int], None] | None,
    run_progress: Callable[..., None] | None = None,
) -> list[int]:
    """Run every config; return their run ids in the order of ``configs``.

    ``progress(groups_done, n_groups)``; ``run_progress`` gets the runner's fold and epoch
    events (local engine only).
    """
    if engine_name not in ("local", "ray"):
        raise ConfigError(f"--engine must be local or ray, got {engine_name!r}")
    engine = make_engine(db_url)
    # register every point first: each run then counts all of the sweep's trials
    run_ids = [
        registry.create_run(engine, c, name=label, sweep_id=sweep_id)
        for c, label in zip(configs, labels, strict=True)
    ]
    engine.dispose()
    groups = [[run_ids[i] for i in g] for g in _group_by_shape(configs, max_group=0)]
    try:
        _dispatch(
            db_url,
            groups,
            engine_name=engine_name,
            address=address,
            max_parallel=max_parallel,
            progress=progress,
            run_progress=run_progress,
        )
    except BaseException as exc:
        _fail_unfinished(db_url, run_ids, f"sweep stopped: {type(exc).__name__}: {exc}")
        raise
    return run_ids


def _fail_unfinished(db_url: str, run_ids: list[int], reason: str) -> None:
    engine = make_engine(db_url)
    try:
        for run_id in run_ids:
            if registry.get_run(engine, run_id)["status"] == "running":
                registry.finish_run(engine, run_id, "failed", error=reason)
    finally:
        engine.dispose()


def _dispatch(
    db_url: str,
    groups: list[list[int]],
    *,
    engine_name: str,
    address: str | None,
    max_parallel: int,
    progress: Callable[[int, int], None] | None,
    run_progress: Callable[..., None] | None,
) -> None:
    """Carry out groups of registered runs in-process or as Ray tasks."""
    if engine_name == "local":
        for k, group in enumerate(groups):
            _run_group_task(db_url, group, run_progress)
            if progress:
                progress(k + 1, len(groups))
        return
    try:
        import ray
    except ImportError as exc:  # pragma: no cover - ray is in the dev extras
        raise ConfigError("--engine ray needs Ray: pip install 'lstm-madness[ray]'") from exc
    started = not ray.is_initialized()
    if started:
        init: dict[str, Any] = {
            "address": address,
            "include_dashboard": False,
            "log_to_driver": False,
            "configure_logging": False,
        }
        if address is None and max_parallel > 0:
            init["num_cpus"] = max_parallel
        ray.init(**init)
    try:
        task = ray.remote(num_cpus=1)(_run_group_task)
        pending = [task.remote(db_url, group) for group in groups]
        while pending:
            ready, pending = ray.wait(pending, num_returns=1)
            ray.get(ready[0])  # raises the task's error, if any
            if progress:
                progress(len(groups) - len(pending), len(groups))
    finally:
        if started:
            ray.shutdown()


def run_sweep(
    db_url: str,
    base: ExperimentConfig,
    space: SweepSpace,
    *,
    engine_name: str = "local",
    address: str | None = None,
    max_parallel: int = 0,
    search: str = "grid",
    n_trials: int = 0,
    name: str | None = None,
    progress: Callable[[int, int], None] | None = None,
    run_progress: Callable[..., None] | None = None,
) -> dict[str, Any]:
    """Run a sweep; return ``{"sweep_id", "runs", "n_runs", "wall_s", "best"}``.

    ``best`` is the run with the lowest mean validation loss of its network (chosen without
    the test period), with its test metrics; ``madness sweep show`` ranks by net Sharpe
    and deflates the best one by the number of runs tried.
    """
    if not space.axes and space.seeds == 1 and search == "grid":
        raise ConfigError("a sweep needs at least one --grid axis or --seeds > 1")
    engine = make_engine(db_url)
    start = time.perf_counter()
    sweep_id = create_sweep(engine, base, space, engine_name=engine_name, name=name, search=search)
    if search == "grid":
        configs = grid_configs(base, space)
        run_ids = _execute(
            db_url,
            configs,
            [_label(c, base, space) for c in configs],
            sweep_id,
            engine_name=engine_name,
            address=address,
            max_parallel=max_parallel,
            progress=progress,
            run_progress=run_progress,
        )
    elif search == "optuna":
        run_ids = _optuna(
            db_url,
            base,
            space,
            sweep_id,
            n_trials=n_trials,
            engine_name=engine_name,
            address=address,
            max_parallel=max_parallel,
            progress=progress,
        )
    else:
        raise ConfigError(f"--search must be grid or optuna, got {search!r}")
    ranked = rank_sweep(engine, sweep_id)
    best = (
        ranked.sort_values("val_loss", na_position="last").iloc[0].to_dict()
        if len(ranked)
        else None
    )
    engine.dispose()
    return {
        "sweep_id": sweep_id,
        "runs": run_ids,
        "n_runs": len(run_ids),
        "wall_s": time.perf_counter() - start,
        "best": _jsonable(best) if best else None,
    }


def _optuna(
    db_url: str,
    base: ExperimentConfig,
    space: SweepSpace,
    sweep_id: int,
    *,
    n_trials: int,
    engine_name: str,
    address: str | None,
    max_parallel: int,
    progress: Callable[[int, int], None] | None,
) -> list[int]:
    import optuna

    if n_trials < 1:
        raise ConfigError("--search optuna needs --trials N (N >= 1)")
    if not space.axes:
        raise ConfigError("--search optuna samples from the --grid axes; give at least one")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    sampler = optuna.samplers.TPESampler(seed=base.train.seed)
    study = optuna.create_study(direction="minimize", sampler=sampler)
    engine = make_engine(db_url)
    raw = base.to_dict()
    run_ids: list[int] = []
    batch = max(1, max_parallel) if engine_name == "ray" else 1
    for start in range(0, n_trials, batch):
        trials = [study.ask() for _ in range(min(batch, n_trials - start))]
        configs, labels, owners = [], [], []
        for trial in trials:
            point = {}
            for key, values in space.axes.items():
                choices = [json.dumps(v) for v in values]
                point[key] = json.loads(trial.suggest_categorical(key, choices))
            for seed in seeds_for(base, space.seeds):
                configs.append(_with_seed(raw, point, seed))
                labels.append(f"optuna#{trial.number} " + _label(configs[-1], base, space))
                owners.append(trial)
        ids = _execute(
            db_url,
            configs,
            labels,
            sweep_id,
            engine_name=engine_name,
            address=address,
            max_parallel=max_parallel,
            progress=None,
        )
        run_ids += ids
        losses: dict[int, list[float]] = {}
        ranked = rank_sweep(engine, sweep_id).set_index("run_id")
        for run_id, trial in zip(ids, owners, strict=True):
            loss = ranked.loc[run_id, "val_loss"] if run_id in ranked.index else None
            losses.setdefault(trial.number, []).append(
                float(loss) if loss is not None and pd.notna(loss) else float("inf")
            )
        for trial in trials:
            study.tell(trial, sum(losses[trial.number]) / len(losses[trial.number]))
        if progress:
            progress(len(run_ids), n_trials * space.seeds)
    engine.dispose()
    return run_ids


def _rank_row(run: dict[str, Any], summary: dict[str, Any]) -> dict[str, Any]:
    primary = summary.get("primary_model") or registry.primary_model(run)
    net = summary["models"].get(primary, {})
    zero = summary["models"].get("baseline:zero", {})
    backtest = summary.get("backtest") or {}
    return {
        "run_id": int(run["id"]),
        "name": run["name"],
        "seed": run["seed"],
        "family": run["family_hash"][:8],
        "val_loss": (
            (summary.get("timings") or {})
            .get("models", {})
            .get(run["config"]["model"]["kind"], {})
            .get("val_loss")
        ),
        "mse": net.get("mse"),
        "mse_zero": zero.get("mse"),
        "r2_oos": net.get("r2_oos"),
        "hit_rate": net.get("hit_rate"),
        "sharpe_net": backtest.get("sharpe_net"),
        "buy_hold_sharpe": backtest.get("buy_hold_sharpe"),
        "dsr": (summary.get("significance") or {}).get("dsr"),
        "trials": (summary.get("significance") or {}).get("trials"),
        "tradeable": (summary.get("verdict") or {}).get("tradeable"),
    }


def rank_sweep(
    engine: sa.Engine, sweep_id: int, evaluations: Mapping[int, Any] | None = None
) -> pd.DataFrame:
    """Succeeded runs of a sweep with their key figures, best net Sharpe first.

    With ``evaluations`` (:func:`~lstm_madness.experiment.summary.evaluate_runs` of the
    sweep's runs) the figures are those of the ledger now; without, those each run stored
    when it finished (cheap: the validation loss an Optuna search needs is there).
    """
    rows = []
    for run in registry.sweep_runs(engine, sweep_id):
        if run["status"] != "succeeded":
            continue
        summary = (
            evaluations[int(run["id"])].summary
            if evaluations is not None and int(run["id"]) in evaluations
            else run["summary"]
        )
        if summary:
            rows.append(_rank_row(run, summary))
    frame = pd.DataFrame(rows)
    if frame.empty:
        return frame
    return frame.sort_values("sharpe_net", ascending=False, na_position="last").reset_index(
        drop=True
    )


def sweep_significance(engine: sa.Engine, sweep_id: int) -> dict[str, Any]:
    """The sweep judged against the ledger now: its succeeded runs evaluated in one pass
    and ranked by net Sharpe; the best one's summary (counting its whole trial set: every
    run on the same target and test period); PBO over that trial set; the spread of net
    Sharpe across seeds of each configuration."""
    from lstm_madness.experiment.summary import evaluate_runs

    ids = [
        int(r["id"]) for r in registry.sweep_runs(engine, sweep_id) if r["status"] == "succeeded"
    ]
    if not ids:
        raise RunError(f"sweep {sweep_id} has no succeeded runs")
    evaluations = evaluate_runs(engine, ids)
    ranked = rank_sweep(engine, sweep_id, evaluations)
    best_id = int(ranked.iloc[0]["run_id"])
    summary = evaluations[best_id].summary
    sig = summary["significance"]
    spread = ranked.groupby("family")["sharpe_net"].describe()[
        ["count", "min", "50%", "max", "mean", "std"]
    ]
    return {
        "best_run_id": best_id,
        "trials": sig["trials"],
        "summary": summary,
        "ranked": ranked,
        "pbo": {
            "pbo": sig.get("pbo"),
            "reason": sig.get("pbo_reason"),
            "n_strategies": sig.get("pbo_strategies"),
        },
        "seed_spread": spread.reset_index(),
    }


def _jsonable(value: Any) -> Any:
    return jsonable(value)


sweep_exists = registry.sweep_exists
