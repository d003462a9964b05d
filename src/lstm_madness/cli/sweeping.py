"""``madness sweep CONFIG.toml --grid ...`` and ``madness sweep show SWEEP_ID``."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer

from lstm_madness.cli._app import DbOption, app, console, err_console, examples
from lstm_madness.cli.experiment import SetOption, print_summary, print_timings
from lstm_madness.cli.tables import Column, fmt, print_table
from lstm_madness.errors import ConfigError, RunError


@app.command(
    "sweep",
    epilog=examples(
        "madness sweep examples/xlf/03_stacked_128_64.toml --grid model.time_steps=[2,3,4,5] "
        "--seeds 5",
        "madness sweep show 1",
        "madness sweep examples/xlf/02_lstm32.toml --grid model.units=[[32],[64]] --engine ray "
        "--address ray://head:10001",
    ),
)
def sweep(
    what: Annotated[
        str,
        typer.Argument(metavar="CONFIG.toml | show", help="Base config of a new sweep, or 'show'."),
    ],
    sweep_id: Annotated[
        int | None, typer.Argument(metavar="[SWEEP_ID]", help="With 'show': the sweep to rank.")
    ] = None,
    grid: Annotated[
        list[str] | None,
        typer.Option(
            "--grid",
            metavar="KEY=[V,...]",
            help="An axis, e.g. --grid model.units=[[32],[64],[128,64]] (repeatable).",
        ),
    ] = None,
    seeds: Annotated[int, typer.Option("--seeds", metavar="N", help="Seeds per grid point.")] = 1,
    engine: Annotated[
        str, typer.Option("--engine", metavar="ENGINE", help="local (batched, in-process) or ray.")
    ] = "local",
    address: Annotated[
        str | None,
        typer.Option(
            "--address", metavar="ADDRESS", help="Ray cluster address (default: start a local Ray)."
        ),
    ] = None,
    max_parallel: Annotated[
        int,
        typer.Option(
            "--max-parallel", help="Ray: CPUs of the local instance / trials asked at once."
        ),
    ] = 0,
    search: Annotated[
        str, typer.Option("--search", metavar="SEARCH", help="grid or optuna.")
    ] = "grid",
    trials: Annotated[int, typer.Option("--trials", help="optuna: number of points.")] = 0,
    set_: SetOption = None,
    name: Annotated[
        str | None, typer.Option("--name", metavar="NAME", help="Label of the sweep.")
    ] = None,
    db: DbOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
) -> None:
    """Run every combination of --grid axes × --seeds as runs sharing a sweep id.

    With show SWEEP_ID: rank the sweep's runs, deflating the best by all its trials.
    """
    if what == "show":
        if sweep_id is None:
            raise ConfigError("usage: madness sweep show SWEEP_ID")
        show(sweep_id, db, as_json)
        return
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from lstm_madness.data.db import resolve_url
    from lstm_madness.experiment.config import load_config
    from lstm_madness.sweep import SweepSpace, run_sweep

    base = load_config(what, set_ or [])
    space = SweepSpace.parse(grid or [], seeds)
    bar = (
        None
        if quiet
        else Progress(
            TextColumn("[bold]sweep"),
            BarColumn(),
            TextColumn("{task.completed}/{task.total} groups"),
            TimeElapsedColumn(),
            console=err_console,
        )
    )
    task = None

    def progress(done: int, total: int) -> None:
        nonlocal task
        if bar is None:
            return
        if task is None:
            task = bar.add_task("sweep", total=total)
        bar.update(task, completed=done, total=total)

    if bar is not None:
        bar.start()
    try:
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
            progress=progress,
        )
    finally:
        if bar is not None:
            bar.stop()
    if as_json:
        typer.echo(json.dumps(result, default=str))
        return
    console.print(
        f"sweep {result['sweep_id']}: {result['n_runs']} runs in "
        f"{fmt.seconds(result['wall_s'])} (runs {result['runs'][0]}–{result['runs'][-1]})",
        highlight=False,
    )
    print_timings(result.get("timings") or _stage_totals(db, result["runs"]))
    if space.seeds > 1:
        _print_seeds(db, result["sweep_id"])
    if result["best"]:
        best = result["best"]
        console.print(
            f"lowest validation loss: run {best['run_id']} ({best['name']}), test "
            f"net Sharpe {fmt.ratio(best['sharpe_net'])}",
            highlight=False,
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
    Column("point", 1, shorten="middle", min_width=12),
    Column("net Sharpe", 0, "right"),
    Column("B&H Sharpe", 1, "right"),
    Column("DSR", 1, "right"),
    Column("hit rate", 2, "right"),
    Column("R²_oos", 2, "right"),
    Column("val loss", 3, "right"),
    Column("MSE", 4, "right"),
    Column("MSE zero", 4, "right"),
)


def show(sweep_id: int, db: str | None, as_json: bool) -> None:
    from lstm_madness.data.db import make_engine
    from lstm_madness.store.sweeps import sweep_exists
    from lstm_madness.sweep import sweep_significance

    engine = make_engine(db)
    if not sweep_exists(engine, sweep_id):
        raise RunError(f"no sweep with id {sweep_id}")
    result = sweep_significance(engine, sweep_id)
    ranked = result["ranked"]
    if as_json:
        from lstm_madness.jsonable import jsonable

        typer.echo(
            json.dumps(
                jsonable(
                    {
                        "sweep_id": sweep_id,
                        "runs": ranked.to_dict("records"),
                        "best_run_id": result["best_run_id"],
                        "trials": result["trials"],
                        "pbo": result["pbo"],
                        "best": result["summary"],
                        "seed_spread": result["seed_spread"].to_dict("records"),
                    }
                ),
                default=str,
            )
        )
        return
    rows = [
        [
            str(row.run_id),
            row.name or "",
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
    spread = result["seed_spread"]
    if (spread["count"] > 1).any():
        console.print("net Sharpe across seeds of each configuration:")
        for row in spread.to_dict("records"):
            console.print(
                f"  config {row['family']}: n={int(row['count'])} min {fmt.ratio(row['min'])} "
                f"median {fmt.ratio(row['50%'])} max {fmt.ratio(row['max'])} "
                f"(sd {fmt.ratio(row['std'])})",
                highlight=False,
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
    console.print(f"\nbest run {result['best_run_id']} after counting {result['trials']} trials:")
    print_summary(result["summary"])
