"""``madness sweep run|show|list``: sweeps of configurations × seeds, one ranked, all listed.

The forms before the subcommands still work: ``madness sweep CONFIG.toml --grid ...`` is
``sweep run`` and ``madness sweep SWEEP_ID`` is ``sweep show`` (see :class:`SweepGroup`).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from contextlib import nullcontext
from pathlib import Path
from typing import Annotated, Any

import typer

from lstm_madness.cli._app import (
    DbOption,
    MadnessGroup,
    MadnessTyper,
    announce_new_store,
    app,
    console,
    examples,
)
from lstm_madness.cli.experiment import (
    RunProgress,
    SetOption,
    mark_stale,
    print_summary,
    print_timings,
)
from lstm_madness.cli.tables import Column, fmt, print_table
from lstm_madness.errors import RunError


class SweepGroup(MadnessGroup):
    """``madness sweep``: the subcommands ``run``, ``show`` and ``list``, and the old forms.

    A group, not one command whose first argument is ``CONFIG.toml | show``: each
    subcommand has its own arguments and a ``--help`` listing only its own options. The
    forms before the group (``madness sweep CONFIG.toml ...``, ``madness sweep SWEEP_ID``)
    cost this one method: a first positional word that is no subcommand is routed to
    ``run`` when it names a config (an existing file, or a name ending in ``.toml``) and to
    ``show`` when it is an integer. Anything else stays a usage error ("No such command").
    """

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        routed = _route(args, self.commands)
        return super().parse_args(ctx, [routed, *args] if routed else args)


def _route(args: list[str], commands: Mapping[str, Any]) -> str | None:
    """The subcommand an old form means (``run``, ``show``), None for any other line."""
    valued = {  # options that take a value (not flags, not arguments)
        opt
        for command in commands.values()
        for param in command.params
        if getattr(param, "is_flag", None) is False
        for opt in param.opts
    }
    i = 0
    while i < len(args):
        word = args[i]
        if word == "--":
            return None
        if word.startswith("-"):
            i += 2 if word in valued else 1  # skip an option's value (--seeds 5)
            continue
        if word in commands:
            return None
        if word.isdigit():
            return "show"
        return "run" if word.endswith(".toml") or Path(word).is_file() else None
    return None


sweep_app = MadnessTyper(
    cls=SweepGroup,
    help="Run a sweep of configurations × seeds, rank one sweep, or list them all.\n\n"
    "The forms before these subcommands still work: madness sweep CONFIG.toml --grid ... "
    "is sweep run, madness sweep SWEEP_ID is sweep show.",
    no_args_is_help=True,
    epilog=examples(
        "madness sweep run examples/xlf/03_stacked_128_64.toml --grid model.time_steps=[2,3,4,5] "
        "--seeds 5",
        "madness sweep show 1",
        "madness sweep list",
    ),
)
app.add_typer(sweep_app, name="sweep")


class SweepProgress(RunProgress):
    """The bars of :class:`RunProgress` (folds, epochs of the training call) under a first
    line for the sweep, shown from the start: the runs planned, then what it does now
    (checking the configs, training group k of n, evaluating every run)."""

    def __init__(self, planned: str, unit: str) -> None:
        from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

        from lstm_madness.cli._app import err_console

        super().__init__()
        self.bar = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            _count_column(),
            TextColumn("{task.fields[info]}"),
            TimeElapsedColumn(),
            console=err_console,
        )
        self.unit = unit
        self.sweep = self.bar.add_task(
            "sweep", total=None, info=f"{planned}; starting (imports, config checks)"
        )

    def steps(self, done: int, total: int) -> None:
        """``run_sweep``'s ``progress(done, total)``: groups (Optuna: runs) trained."""
        one = self.unit.removesuffix("s")
        info = (
            f"training {one} {done + 1} of {total}"
            if done < total
            else f"all {total} {self.unit} trained; evaluating every run"
        )
        self.bar.update(self.sweep, completed=done, total=total, info=info)

    def __exit__(self, exc_type: object, *exc: object) -> None:
        if exc_type is None:
            self.bar.update(self.sweep, info="done")
        super().__exit__(exc_type, *exc)


def _count_column() -> Any:
    """A column of ``done/total``, empty while the total is unknown (the bar pulses)."""
    from rich.progress import ProgressColumn
    from rich.text import Text

    class Count(ProgressColumn):
        def render(self, task: Any) -> Text:
            if task.total is None:
                return Text("")
            return Text(f"{int(task.completed)}/{int(task.total)}")

    return Count()


def _planned(space: Any, search: str, trials: int) -> str:
    """``2 configs × 3 seeds = 6 runs planned`` (Optuna: its trials × seeds)."""
    configs = trials if search == "optuna" else math.prod(len(v) for v in space.axes.values())
    what = "Optuna trial" if search == "optuna" else "config"
    runs = configs * space.seeds
    return (
        f"{configs} {what}{'s' if configs != 1 else ''} × {space.seeds} "
        f"seed{'s' if space.seeds != 1 else ''} = {runs} run{'s' if runs != 1 else ''} planned"
    )


GridOption = Annotated[
    list[str] | None,
    typer.Option(
        "--grid",
        metavar="KEY=[V,...]",
        help="An axis, e.g. --grid model.units=[[32],[64],[128,64]] (repeatable).",
    ),
]
MaxParallelOption = Annotated[
    int,
    typer.Option(
        "--max-parallel",
        help="Ray: CPUs of the local instance and Optuna trials asked at once. "
        "0: every CPU of this machine, one trial at a time.",
    ),
]
TrialsOption = Annotated[
    int,
    typer.Option(
        "--trials",
        help="Points Optuna samples; needed with --search optuna (0: not set; grid ignores it).",
    ),
]


@sweep_app.command(
    "run",
    epilog=examples(
        "madness sweep run examples/xlf/03_stacked_128_64.toml --grid model.time_steps=[2,3,4,5] "
        "--seeds 5",
        "madness sweep run examples/xlf/02_lstm32.toml --grid model.units=[[32],[64]] "
        "--search optuna --trials 2",
        "madness sweep run examples/xlf/02_lstm32.toml --grid model.units=[[32],[64]] "
        "--engine ray --address ray://head:10001",
    ),
)
def sweep_run(
    config: Annotated[
        Path, typer.Argument(metavar="CONFIG.toml", help="Base config of the sweep (TOML).")
    ],
    grid: GridOption = None,
    seeds: Annotated[
        int, typer.Option("--seeds", metavar="N", help="Seeds per configuration.")
    ] = 1,
    engine: Annotated[
        str, typer.Option("--engine", metavar="ENGINE", help="local (batched, in-process) or ray.")
    ] = "local",
    address: Annotated[
        str | None,
        typer.Option(
            "--address", metavar="ADDRESS", help="Ray cluster address (default: start a local Ray)."
        ),
    ] = None,
    max_parallel: MaxParallelOption = 0,
    search: Annotated[
        str, typer.Option("--search", metavar="SEARCH", help="grid or optuna.")
    ] = "grid",
    trials: TrialsOption = 0,
    set_: SetOption = None,
    name: Annotated[
        str | None, typer.Option("--name", metavar="NAME", help="Label of the sweep.")
    ] = None,
    db: DbOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars.")] = False,
) -> None:
    """Run every combination of --grid axes × --seeds as runs sharing a sweep id.

    Each run keeps the base config's name; sweep show names each configuration by the
    parameters it varies. Progress (stderr) starts at once: the runs planned, the group
    training now, its folds and epochs.
    """
    from lstm_madness.data.db import resolve_url
    from lstm_madness.experiment.config import load_config
    from lstm_madness.sweep import SweepSpace, run_sweep

    base = load_config(config, set_ or [])
    space = SweepSpace.parse(grid or [], seeds)
    unit = "runs" if search == "optuna" else "groups"
    bar = None if quiet else SweepProgress(_planned(space, search, trials), unit)
    from lstm_madness.data.db import make_engine

    with announce_new_store(make_engine(resolve_url(db))), bar or nullcontext():
        result = run_sweep(
            resolve_url(db),
            base,
            space,
            engine_name=engine,
            address=address,
            max_parallel=max_parallel,
            search=search,
            n_trials=trials,
            name=name,
            progress=bar.steps if bar else None,
            run_progress=bar,
        )
    if as_json:
        typer.echo(json.dumps(result, default=str))
        return
    _print_result(result, db, several_seeds=space.seeds > 1)


def _print_result(result: dict[str, Any], db: str | None, *, several_seeds: bool) -> None:
    """What a finished sweep prints: its runs and time, every seed, the lowest validation
    loss, and how to rank it."""
    console.print(
        f"sweep {result['sweep_id']}: {result['n_runs']} runs in "
        f"{fmt.seconds(result['wall_s'])} (runs {result['runs'][0]}–{result['runs'][-1]})",
        highlight=False,
    )
    print_timings(result.get("timings") or _stage_totals(db, result["runs"]))
    if several_seeds:
        _print_seeds(db, result["sweep_id"])
    if result["best"]:
        best = result["best"]
        console.print(
            f"lowest validation loss: run {best['run_id']} ({best['point']}, seed "
            f"{best['seed']}), test net Sharpe {fmt.ratio(best['sharpe_net'])}",
            highlight=False,
            markup=False,
        )
    console.print(f"rank and deflate with: madness sweep show {result['sweep_id']}")


def _print_seeds(db: str | None, sweep_id: int) -> None:
    """Every seed of each configuration: one seed's figures never stand for the set."""
    from lstm_madness.data.db import make_engine
    from lstm_madness.sweep import seed_sets

    engine = make_engine(db)
    sets = seed_sets(engine, sweep_id)
    engine.dispose()
    if not sets:
        return
    if len(sets) == 1:
        lines = sets[0][1].lines()
    else:
        lines = ["net Sharpe of every seed of each configuration:"]
        lines += [f"  {seeds.line(point)}" for point, seeds in sets]
    for line in lines:
        console.print(line, highlight=False, markup=False, soft_wrap=True)


def _stage_totals(db: str | None, run_ids: list[int]) -> dict[str, Any]:
    """Seconds per stage (``*_s`` keys of the runs' recorded timings), summed over runs."""
    from lstm_madness.data.db import make_engine
    from lstm_madness.store.runs import get_run

    engine = make_engine(db)
    totals: dict[str, Any] = {}
    for run_id in run_ids:
        timings = (get_run(engine, run_id).summary or {}).get("timings") or {}
        for key, value in timings.items():
            if key.endswith("_s") and key != "total_s" and isinstance(value, int | float):
                totals[key] = totals.get(key, 0.0) + value
    return {**totals, "scope": "runs", "batch_runs": len(run_ids)}


SWEEP_COLUMNS = (
    Column("run", 0, "right"),
    Column("config", 1, shorten="middle", min_width=12),
    Column("seed", 2, "right"),
    Column("net Sharpe", 0, "right"),
    Column("B&H Sharpe", 1, "right"),
    Column("DSR", 1, "right"),
    Column("hit rate", 2, "right"),
    Column("R²_oos", 2, "right"),
    Column("val loss", 3, "right"),
    Column("MSE", 4, "right"),
    Column("MSE zero", 4, "right"),
)


@sweep_app.command("show", epilog=examples("madness sweep show 1", "madness sweep show 1 --json"))
def sweep_show(
    sweep_id: Annotated[int, typer.Argument(metavar="SWEEP_ID")],
    db: DbOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Rank a sweep's runs by test net Sharpe and deflate the best by all its trials.

    Each configuration is named by the parameters the sweep varies (units=[32]
    time_steps=5); the spread across seeds and the probability of backtest overfitting
    follow, then the runs not ranked (stale: the process died without finishing). Judged
    against the registry as it is now.
    """
    from lstm_madness.data.db import make_engine
    from lstm_madness.data.initdb import init_db, require_store
    from lstm_madness.store.sweeps import sweep_exists
    from lstm_madness.sweep import sweep_significance

    engine = make_engine(db)
    require_store(engine)  # created by nothing here, as runs show
    init_db(engine)
    if not sweep_exists(engine, sweep_id):
        raise RunError(f"no sweep with id {sweep_id}")
    mark_stale(engine)
    not_ranked, n_runs = _not_ranked(engine, sweep_id)
    if len(not_ranked) == n_runs:
        statuses = ", ".join(f"run {r['run_id']} {r['status']}" for r in not_ranked)
        raise RunError(f"sweep {sweep_id} has no succeeded runs ({statuses or 'none stored'})")
    result = sweep_significance(engine, sweep_id)
    result["not_ranked"] = not_ranked
    ranked = result["ranked"]
    if as_json:
        _print_json(sweep_id, result)
        return
    rows = [
        [
            str(row.run_id),
            row.point,
            fmt.count(row.seed),
            fmt.ratio(row.sharpe_net),
            fmt.ratio(row.buy_hold_sharpe),
            fmt.probability(row.dsr),
            fmt.percent(row.hit_rate),
            fmt.fixed(row.r2_oos, 4),
            fmt.scientific(row.val_loss),
            fmt.scientific(row.mse),
            fmt.scientific(row.mse_zero),
        ]
        for row in ranked.itertuples()
    ]
    print_table(
        console, SWEEP_COLUMNS, rows, title=f"sweep {sweep_id}: runs ranked by test net Sharpe"
    )
    _print_spread_and_pbo(result)
    _print_not_ranked(not_ranked)
    console.print(f"\nbest run {result['best_run_id']} after counting {result['trials']} trials:")
    print_summary(result["summary"])


def _not_ranked(engine: Any, sweep_id: int) -> tuple[list[dict[str, Any]], int]:
    """The sweep's runs that did not succeed, in id order, each with its status as shown:
    ``stale`` for a run whose process died without finishing (marked failed, or found so
    where the store cannot be written), else its status, with its error; and the number
    of the sweep's runs."""
    from lstm_madness.store.lifecycle import find_stale_runs
    from lstm_madness.store.sweeps import sweep_runs

    dead = set(find_stale_runs(engine))
    runs = sweep_runs(engine, sweep_id)
    out = []
    for run in runs:
        if run.status == "succeeded":
            continue
        marked = run.status == "failed" and (run.error or "").startswith("stale:")
        status = "stale" if marked or run.id in dead else run.status
        out.append({"run_id": run.id, "status": status, "error": run.error})
    return out, len(runs)


def _print_not_ranked(not_ranked: list[dict[str, Any]]) -> None:
    if not not_ranked:
        return
    n = len(not_ranked)
    console.print(f"not ranked: {n} run{'s' * (n != 1)} that did not succeed", highlight=False)
    for row in not_ranked:
        error = " ".join((row["error"] or "").split())
        console.print(
            f"  run {row['run_id']}  {row['status']}" + (f"  {error}" if error else ""),
            highlight=False,
            markup=False,
        )


def _print_json(sweep_id: int, result: dict[str, Any]) -> None:
    """``sweep show --json``: the ranked runs, the best one's summary, PBO, seed spread."""
    from lstm_madness.jsonable import jsonable

    shown = {
        "sweep_id": sweep_id,
        "runs": result["ranked"].to_dict("records"),
        "best_run_id": result["best_run_id"],
        "trials": result["trials"],
        "pbo": result["pbo"],
        "best": result["summary"],
        "seed_spread": result["seed_spread"].to_dict("records"),
        "not_ranked": result.get("not_ranked", []),
    }
    typer.echo(json.dumps(jsonable(shown), default=str))


def _print_spread_and_pbo(result: dict[str, Any]) -> None:
    """Net Sharpe across the seeds of each configuration (named by what it varies), then
    the probability of backtest overfitting."""
    spread = result["seed_spread"]
    if (spread["count"] > 1).any():
        console.print("net Sharpe across seeds of each configuration:")
        for row in spread.to_dict("records"):
            console.print(
                f"  {row['point']}: n={int(row['count'])} min {fmt.ratio(row['min'])} "
                f"median {fmt.ratio(row['50%'])} max {fmt.ratio(row['max'])} "
                f"(sd {fmt.ratio(row['std'])})",
                highlight=False,
                markup=False,
            )
    pbo = result["pbo"]
    if pbo["pbo"] is not None:
        console.print(
            f"probability of backtest overfitting (CSCV over the trial set, "
            f"{pbo['n_strategies']} runs): "
            f"{fmt.probability(pbo['pbo'])}",
            highlight=False,
        )
    else:
        console.print(f"probability of backtest overfitting: not computed ({pbo['reason']})")


SWEEPS_COLUMNS = (
    Column("id", 0, "right"),
    Column("name", 1, shorten="middle", min_width=12),
    Column("status", 0),
    Column("configs", 0, "right"),
    Column("seeds", 2, "right"),
    Column("runs", 1, "right"),
    Column("done", 0, "right"),
    Column("failed", 0, "right"),
    Column("created (UTC)", 1),
)


@sweep_app.command("list", epilog=examples("madness sweep list", "madness sweep list --json"))
def sweep_list(
    db: DbOption = None,
    limit: Annotated[int, typer.Option("--limit", help="Most recent N sweeps (0: all).")] = 50,
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON list.")] = False,
) -> None:
    """Stored sweeps, newest first, with their runs done and failed.

    status: running (a run is queued or training), succeeded (every run done), failed
    (none done), partly failed, or empty. configs: distinct configurations but the seed.
    Runs whose process died are marked failed first, as runs list does.
    """
    from lstm_madness.data.db import make_engine
    from lstm_madness.data.initdb import init_db, require_store
    from lstm_madness.store.sweeps import list_sweeps

    engine = make_engine(db)
    require_store(engine)  # created by nothing here, as runs list
    init_db(engine)
    mark_stale(engine)
    frame = list_sweeps(engine, limit=limit)
    if as_json:
        typer.echo(frame.to_json(orient="records", date_format="iso"))
        return
    rows = [
        [
            str(row.id),
            row.name if isinstance(row.name, str) else "",
            row.status,
            str(row.configs),
            str(row.seeds),
            str(row.runs),
            str(row.done),
            str(row.failed),
            fmt.timestamp(row.created_at),
        ]
        for row in frame.itertuples()
    ]
    print_table(console, SWEEPS_COLUMNS, rows)
    if frame.empty:
        console.print(
            "no sweep stored yet: madness sweep run CONFIG.toml --grid KEY=[V,...]",
            markup=False,
            highlight=False,
        )
