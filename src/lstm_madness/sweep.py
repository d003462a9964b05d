"""Sweeps: many configurations and seeds, each a stored run sharing one sweep id.

Every point of a sweep is a run in the ledger, so the Deflated Sharpe Ratio of any
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

import itertools
import json
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd
import sqlalchemy as sa

from lstm_madness.data.db import make_engine
from lstm_madness.data.initdb import store_errors
from lstm_madness.data.store import init_db
from lstm_madness.errors import ConfigError, RunError
from lstm_madness.experiment.config import ExperimentConfig, apply_overrides, from_dict
from lstm_madness.experiment.config import parse_assignment as _parse
from lstm_madness.experiment.hints import list_example
from lstm_madness.experiment.plan import plan_runs, shape_chunks
from lstm_madness.jsonable import jsonable
from lstm_madness.report.seeds import SeedRun, SeedSet
from lstm_madness.store import lifecycle
from lstm_madness.store import sweeps as ledger
from lstm_madness.store.runs import Run, objectives


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
                example = f"--grid {key}={list_example(values)}"
                e_g = "" if isinstance(values, list) else f", e.g. {example}"
                raise ConfigError(f"--grid {key}: expected a non-empty list{e_g}; got {values!r}")
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


def point_label(config: Mapping[str, Any], axes: Sequence[str]) -> str:
    """A configuration of a sweep named by its varied parameters, ``units=[32]
    time_steps=5`` (a key's last part, its whole dotted name where two axes share it);
    ``the base config`` when the sweep varies only the seed."""
    last = [key.rsplit(".", 1)[-1] for key in axes]
    parts = []
    for key, short in zip(axes, last, strict=True):
        value: Any = config
        for part in key.split("."):
            value = value.get(part) if isinstance(value, Mapping) else None
        name = short if last.count(short) == 1 else key
        parts.append(f"{name}={json.dumps(value, separators=(',', ':'))}")
    return " ".join(parts) or "the base config"


def sweep_axes(engine: sa.Engine, sweep_id: int) -> list[str]:
    """The dotted keys a stored sweep varies (none for a sweep of seeds only)."""
    record = ledger.get_sweep(engine, sweep_id)
    return list(((record or {}).get("space") or {}).get("axes") or {})


def create_sweep(
    engine: sa.Engine,
    base: ExperimentConfig,
    space: SweepSpace,
    *,
    engine_name: str,
    name: str | None = None,
    search: str = "grid",
    trials: int = 0,
) -> int:
    """Register a sweep (its base config and search space, with Optuna's ``trials``) and
    return its id."""
    init_db(engine)
    extra = {"trials": trials} if search == "optuna" else {}
    return ledger.create_sweep(
        engine,
        name=name or base.name or None,
        config=base.to_dict(),
        space={**space.to_dict(), "search": search, **extra},
        engine_name=engine_name,
    )


def _run_group_task(
    db_url: str,
    run_ids: list[int],
    run_progress: Callable[..., None] | None = None,
    evaluate: bool = False,
) -> list[dict[str, Any]]:
    """Body of a Ray task (and of the local engine): claim queued runs, train and store
    them; evaluate and finish them too when ``evaluate``. Returns the runner's result
    (``{"run_id", "timings"}`` per run without evaluation)."""
    from lstm_madness.experiment.runner import run_experiments

    engine = make_engine(db_url)
    try:
        return run_experiments(
            engine, [], existing=run_ids, progress=run_progress, evaluate=evaluate
        )
    finally:
        engine.dispose()


def _execute(
    db_url: str,
    configs: list[ExperimentConfig],
    sweep_id: int,
    *,
    engine_name: str,
    address: str | None,
    max_parallel: int,
    progress: Callable[[int, int], None] | None,
    run_progress: Callable[..., None] | None = None,
    timings: dict[int, dict[str, Any]] | None = None,
) -> list[int]:
    """Train and store every config as a run, left ``running`` (owned by this process)
    for :func:`_evaluate`; return their run ids in the order of ``configs``.

    Every point is registered (``queued``) first, so each run counts all of the sweep's
    trials; a run keeps its config's name (:func:`point_label` names the point from the
    sweep's axes). ``progress(groups_done, n_groups)``; ``run_progress`` gets the runner's fold
    and epoch events (local engine only). Each run's timings go into ``timings``.
    """
    if engine_name not in ("local", "ray"):
        raise ConfigError(f"--engine must be local or ray, got {engine_name!r}")
    engine = make_engine(db_url)
    try:
        run_ids = lifecycle.create_runs(engine, configs, sweep_id=sweep_id)
    finally:
        engine.dispose()
    try:
        results = _dispatch(
            db_url,
            configs,
            run_ids,
            engine_name=engine_name,
            address=address,
            max_parallel=max_parallel,
            progress=progress,
            run_progress=run_progress,
        )
    except BaseException as exc:
        _fail_unfinished(db_url, run_ids, exc)
        raise
    if timings is not None:
        timings.update({int(r["run_id"]): r["timings"] for r in results})
    return run_ids


def _evaluate(db_url: str, run_ids: list[int], timings: dict[int, dict[str, Any]]) -> float:
    """Evaluate every trained run of the sweep in one pass and finish them; return the
    seconds it took."""
    from lstm_madness.experiment.runner import finish_runs, signals_raise

    engine = make_engine(db_url)
    start = time.perf_counter()
    try:
        with signals_raise():  # SIGTERM fails the runs with the reason, as in training
            finish_runs(engine, run_ids, timings=timings)
    except BaseException as exc:
        _fail_unfinished(db_url, run_ids, exc)
        raise
    finally:
        engine.dispose()
    return time.perf_counter() - start


def _fail_unfinished(db_url: str, run_ids: list[int], exc: BaseException) -> None:
    """The sweep stopped by ``exc``: its unfinished runs failed, or kept failed for later
    when the store refuses the write (see :func:`~lstm_madness.experiment.failures.record`)."""
    from lstm_madness.experiment.failures import reason

    engine = make_engine(db_url)
    try:
        lifecycle.fail_runs_or_defer(engine, run_ids, f"sweep stopped: {reason(exc)}")
    finally:
        engine.dispose()


def _dispatch(
    db_url: str,
    configs: list[ExperimentConfig],
    run_ids: list[int],
    *,
    engine_name: str,
    address: str | None,
    max_parallel: int,
    progress: Callable[[int, int], None] | None,
    run_progress: Callable[..., None] | None,
) -> list[dict[str, Any]]:
    """Train and store queued runs: in-process (one call: the plan shares data loads and
    baselines across the whole sweep) or as one Ray task per shape group (each task loads
    its data and fits its baselines once). Runs trained by Ray workers are claimed back by
    this process as each task returns."""
    if engine_name == "local":

        def relay(event: str, **info: Any) -> None:
            if event == "group" and progress:
                progress(info["done"], info["groups"])
            if run_progress is not None:
                run_progress(event, **info)

        return _run_group_task(db_url, run_ids, relay)
    from lstm_madness.experiment import distributed
    from lstm_madness.experiment.failures import signals_raise

    url = distributed.worker_url(db_url)
    groups = [[run_ids[i] for i in chunk] for chunk in shape_chunks(configs)]
    engine = make_engine(db_url)
    done = 0

    def trained(k: int, _result: Any) -> None:
        nonlocal done
        # take the trained runs back while their worker still lives
        lifecycle.claim_runs(engine, groups[k], expect=("running",))
        done += 1
        if progress:
            progress(done, len(groups))

    try:
        # Ray's SIGTERM handler (SystemExit) replaced by ours: the runs fail naming the signal
        with distributed.ray_session(address, max_parallel), signals_raise():
            chunks = distributed.run_tasks(
                _run_group_task, [(url, group) for group in groups], on_result=trained
            )
    finally:
        engine.dispose()
    return [result for chunk in chunks for result in chunk]


@store_errors("use")  # a full disk, a lost connection: one line
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
    """Run a sweep; return ``{"sweep_id", "runs", "n_runs", "wall_s", "best", "timings"}``.

    Every point is trained and stored first, then all are evaluated in one pass.
    ``best`` is the run with the lowest mean validation loss of its network (chosen without
    the test period), with its test metrics; ``madness sweep show`` ranks by net Sharpe
    and deflates the best one by the number of runs tried. ``timings`` (seconds):
    ``total_s`` (wall, ``total_scope`` "command"), ``train_s``, ``predict_s`` and
    ``store_s`` (summed over runs, ``scope`` "runs", ``batch_runs`` of them; a
    batched training call counts once) and ``evaluate_s`` (the evaluation pass; the
    evaluation stack is imported when the sweep starts, see
    :func:`~lstm_madness.experiment.runner.load_evaluation`).
    """
    if not space.axes and space.seeds == 1 and search == "grid":
        raise ConfigError("a sweep needs at least one --grid axis or --seeds > 1")
    if search not in ("grid", "optuna"):
        raise ConfigError(f"--search must be grid or optuna, got {search!r}")
    _check_options(space, engine_name=engine_name, search=search, n_trials=n_trials)
    if engine_name == "ray":
        from lstm_madness.experiment.distributed import check_address

        check_address(address)  # fails fast, before the sweep is registered
    from lstm_madness.experiment.runner import load_evaluation

    start = time.perf_counter()
    load_evaluation()
    # every point Optuna may ask for is a point of the grid (its seeds change nothing here)
    configs = grid_configs(base, space if search == "grid" else SweepSpace(space.axes))
    engine = _checked_store(db_url, configs)
    sweep_id = create_sweep(
        engine, base, space, engine_name=engine_name, name=name, search=search, trials=n_trials
    )
    options: dict[str, Any] = dict(
        engine_name=engine_name, address=address, max_parallel=max_parallel, progress=progress
    )
    timings: dict[int, dict[str, Any]] = {}
    if progress is not None:  # planned: the bar shows its total before any training
        progress(0, _planned_steps(configs, engine_name, search, n_trials * space.seeds))
    options["run_progress"] = run_progress
    if search == "grid":
        run_ids = _execute(db_url, configs, sweep_id, timings=timings, **options)
    else:
        run_ids = _optuna(
            db_url, base, space, sweep_id, n_trials=n_trials, timings=timings, **options
        )
    evaluate_s = _evaluate(db_url, run_ids, timings)
    ranked = rank_sweep(engine, sweep_id)
    best = (
        ranked.sort_values("val_loss", na_position="last").iloc[0].to_dict()
        if len(ranked)
        else None
    )
    engine.dispose()
    wall = time.perf_counter() - start
    return {
        "sweep_id": sweep_id,
        "runs": run_ids,
        "n_runs": len(run_ids),
        "wall_s": wall,
        "best": jsonable(best) if best else None,
        "timings": _sweep_timings(timings, evaluate_s, wall, len(run_ids)),
    }


def _planned_steps(
    configs: list[ExperimentConfig], engine_name: str, search: str, optuna_runs: int
) -> int:
    """What ``progress(done, total)`` counts to: Optuna's runs; else the groups trained
    together (the data groups of the local plan, the shape groups of Ray's tasks)."""
    if search == "optuna":
        return optuna_runs
    if engine_name == "ray":
        return len(shape_chunks(configs))
    return len(plan_runs(configs).groups)


def _checked_store(db_url: str, configs: list[ExperimentConfig]) -> sa.Engine:
    """The store, initialised, once every config passed the checks that can fail before
    training (refused: neither the sweep nor a run is registered)."""
    from lstm_madness.experiment.runner import check_runs

    engine = make_engine(db_url)
    init_db(engine)
    try:
        check_runs(engine, configs)
    except BaseException:
        engine.dispose()
        raise
    return engine


def _sweep_timings(
    timings: dict[int, dict[str, Any]], evaluate_s: float, wall: float, n_runs: int
) -> dict[str, Any]:
    """The sweep's times: the stages summed over its runs, the evaluation pass, the wall."""
    totals = {
        key: float(sum(t.get(key, 0.0) for t in timings.values()))
        for key in ("train_s", "predict_s", "store_s")
    }
    return {
        "total_s": wall,
        **totals,
        "evaluate_s": evaluate_s,
        "scope": "runs",  # the stages: summed over the sweep's runs
        "total_scope": "command",
        "batch_runs": n_runs,
    }


def _check_options(space: SweepSpace, *, engine_name: str, search: str, n_trials: int) -> None:
    """The sweep's own options, checked before anything is registered."""
    if engine_name not in ("local", "ray"):
        raise ConfigError(f"--engine must be local or ray, got {engine_name!r}")
    if search == "optuna":
        if n_trials < 1:
            raise ConfigError("--search optuna needs --trials N (N >= 1)")
        if not space.axes:
            raise ConfigError("--search optuna samples from the --grid axes; give at least one")


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
    timings: dict[int, dict[str, Any]],
    run_progress: Callable[..., None] | None = None,
) -> list[int]:
    """Ask Optuna for points, train them, tell it their objective (the mean validation
    loss stored at training time: no evaluation in the loop). ``progress(runs_done,
    n_runs)`` after each batch of trials."""
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
    try:
        for start in range(0, n_trials, batch):
            trials = [study.ask() for _ in range(min(batch, n_trials - start))]
            configs, owners = [], []
            for trial in trials:
                point = {}
                for key, values in space.axes.items():
                    choices = [json.dumps(v) for v in values]
                    point[key] = json.loads(trial.suggest_categorical(key, choices))
                for seed in seeds_for(base, space.seeds):
                    configs.append(_with_seed(raw, point, seed))
                    owners.append(trial)
            ids = _execute(
                db_url,
                configs,
                sweep_id,
                engine_name=engine_name,
                address=address,
                max_parallel=max_parallel,
                progress=None,
                run_progress=run_progress,
                timings=timings,
            )
            run_ids += ids
            stored = objectives(engine, ids)
            losses: dict[int, list[float]] = {}
            for run_id, trial in zip(ids, owners, strict=True):
                loss = stored.get(run_id)
                losses.setdefault(trial.number, []).append(float("inf") if loss is None else loss)
            for trial in trials:
                study.tell(trial, sum(losses[trial.number]) / len(losses[trial.number]))
            if progress:
                progress(len(run_ids), n_trials * space.seeds)
    except BaseException as exc:
        _fail_unfinished(db_url, run_ids, exc)
        raise
    finally:
        engine.dispose()
    return run_ids


def _rank_row(run: Run, summary: dict[str, Any], axes: Sequence[str]) -> dict[str, Any]:
    primary = summary.get("primary_model") or run.primary_model
    net = summary["models"].get(primary, {})
    zero = summary["models"].get("baseline:zero", {})
    backtest = summary.get("backtest") or {}
    return {
        "run_id": run.id,
        "name": run.name,
        "point": point_label(run.config, axes),
        "seed": run.seed,
        "family": run.family_hash[:8],
        "val_loss": (
            (summary.get("timings") or {})
            .get("models", {})
            .get(run.config["model"]["kind"], {})
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
    """Succeeded runs of a sweep with their key figures, best net Sharpe first; ``point``
    names each one's configuration by the sweep's varied parameters (:func:`point_label`).

    With ``evaluations`` (:func:`~lstm_madness.experiment.summary.evaluate_runs` of the
    sweep's runs) the figures are those of the ledger now; without, those each run stored
    when it finished (cheap: the validation loss an Optuna search needs is there).
    """
    rows = []
    axes = sweep_axes(engine, sweep_id)
    for run in ledger.sweep_runs(engine, sweep_id):
        if run.status != "succeeded":
            continue
        summary = (
            evaluations[run.id].summary
            if evaluations is not None and run.id in evaluations
            else run.summary
        )
        if summary:
            rows.append(_rank_row(run, summary, axes))
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
    Sharpe across seeds of each configuration (``point``: its varied parameters)."""
    from lstm_madness.experiment.summary import evaluate_runs

    ids = [r.id for r in ledger.sweep_runs(engine, sweep_id) if r.status == "succeeded"]
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
        "seed_spread": spread.join(ranked.groupby("family")["point"].first()).reset_index(),
    }


def seed_sets(engine: sa.Engine, sweep_id: int) -> list[tuple[str, SeedSet]]:
    """The configurations of a sweep tried with several seeds: ``(point, seeds)`` each, in
    the order of their first run. Figures as each run stored them when it finished (a
    sweep's runs finish in one pass, against the same ledger)."""
    families: dict[str, list[SeedRun]] = {}
    points: dict[str, str] = {}
    axes = sweep_axes(engine, sweep_id)
    for run in ledger.sweep_runs(engine, sweep_id):
        if run.status != "succeeded" or not run.summary:
            continue
        family = run.family_hash
        families.setdefault(family, []).append(SeedRun(run.id, run.seed, run.summary))
        points.setdefault(family, point_label(run.config, axes))
    return [(points[f], SeedSet.of(runs)) for f, runs in families.items() if len(runs) > 1]


sweep_exists = ledger.sweep_exists
