"""Commands about experiments: ``run`` and ``runs list|show|delete``."""

from __future__ import annotations

import json
import math
from contextlib import nullcontext
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from lstm_madness.cli._app import DbOption, app, console, err_console
from lstm_madness.data.db import make_engine
from lstm_madness.errors import ConfigError

runs_app = typer.Typer(help="List, show and delete stored runs.", no_args_is_help=True)
app.add_typer(runs_app, name="runs")

SetOption = Annotated[
    list[str] | None,
    typer.Option("--set", help="Override a config key: --set model.units=[64,32] (repeatable)."),
]


class RunProgress:
    """Rich progress bars (stderr): folds, and epochs of the current fold with its loss."""

    def __init__(self) -> None:
        self.bar = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            TextColumn("{task.completed}/{task.total}"),
            TextColumn("{task.fields[info]}"),
            TimeElapsedColumn(),
            console=err_console,
            transient=False,
        )
        self.folds = None
        self.epochs = None

    def __enter__(self) -> RunProgress:
        self.bar.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.bar.__exit__(*exc)

    def __call__(self, event: str, **info: Any) -> None:
        if event == "fold":
            if self.folds is None:
                self.folds = self.bar.add_task("folds", total=info["n_folds"], info="")
            self.bar.update(self.folds, completed=info["fold"], total=info["n_folds"])
        elif event == "epoch":
            if self.epochs is None:
                self.epochs = self.bar.add_task("epochs", total=info["epochs"], info="")
            text = f"{info['active']}/{info['models']} nets training"
            self.bar.update(self.epochs, completed=info["epoch"], total=info["epochs"], info=text)
        elif event == "done" and self.folds is not None:
            self.bar.update(self.folds, completed=self.bar.tasks[self.folds].total)


def _fmt(value: Any, spec: str = ".4g") -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    return format(value, spec) if isinstance(value, int | float) else str(value)


def print_summary(summary: dict[str, Any]) -> None:
    """Human-readable run summary: out-of-sample metrics per model, then the verdict."""
    console.print(
        f"run {summary['run_id']} [bold]{summary['status']}[/]  target "
        f"{summary.get('target', '')}  test {summary['test_start']} → "
        f"{summary['test_end']} ({summary['n_test']} days)"
    )
    table = Table(title="out-of-sample forecasts", title_justify="left")
    for column in ("model", "MSE", "MAE", "R²_oos", "hit rate", "test days", "train s"):
        table.add_column(
            column, justify="left" if column == "model" else "right", no_wrap=column == "model"
        )
    for name, m in summary["models"].items():
        hit = m.get("hit_rate")
        table.add_row(
            name,
            _fmt(m.get("mse"), ".3e"),
            _fmt(m.get("mae"), ".3e"),
            _fmt(m.get("r2_oos"), ".4f"),
            _fmt(hit * 100 if hit is not None else None, ".1f") + "%",
            _fmt(m.get("n")),
            _fmt(m.get("train_s"), ".2f"),
        )
    console.print(table)
    timed = ((summary.get("timings") or {}).get("models") or {}).items()
    if trainers := {k: v["trainer"] for k, v in timed if isinstance(v, dict) and "trainer" in v}:
        console.print("trained by: " + ", ".join(f"{k} {v}" for k, v in trainers.items()))
    backtest = summary.get("backtest")
    if backtest:
        console.print(
            f"net Sharpe {_fmt(backtest.get('sharpe_net'), '.2f')} (gross "
            f"{_fmt(backtest.get('sharpe_gross'), '.2f')}) vs buy-and-hold "
            f"{_fmt(backtest.get('buy_hold_sharpe'), '.2f')} at "
            f"{_fmt(backtest.get('cost_bps'))} bps per unit turnover"
        )
    verdict = summary.get("verdict")
    if verdict:
        word = "[bold green]TRADEABLE[/]" if verdict["tradeable"] else "[bold red]NOT TRADEABLE[/]"
        console.print(f"verdict: {word}")
        for reason in verdict.get("reasons", []):
            console.print(f"  • {reason}", highlight=False, soft_wrap=True)


@app.command("run")
def run(
    config_path: Annotated[
        Path | None,
        typer.Argument(metavar="CONFIG.toml", help="Experiment config (TOML). Omit with --resume."),
    ] = None,
    db: DbOption = None,
    set_: SetOption = None,
    name: Annotated[str | None, typer.Option("--name", help="Label of the run.")] = None,
    resume: Annotated[
        int | None,
        typer.Option(
            "--resume", metavar="RUN_ID", help="Continue a failed run from its last completed fold."
        ),
    ] = None,
    trials: Annotated[
        int | None,
        typer.Option(
            "--trials",
            help="Number of configurations tried, for the Deflated Sharpe Ratio "
            "(default: runs in the registry with the same target and test period).",
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars.")] = False,
) -> None:
    """Train the network and the baselines, predict out of sample, store and evaluate."""
    from lstm_madness.experiment.config import load_config
    from lstm_madness.experiment.runner import run_experiment

    if (config_path is None) == (resume is None):
        raise ConfigError("give either CONFIG.toml or --resume RUN_ID")
    config = load_config(config_path, set_ or []) if config_path is not None else None
    engine = make_engine(db)
    reporter = RunProgress() if not quiet else None
    with reporter or nullcontext():
        summary = run_experiment(
            engine, config, name=name, resume=resume, progress=reporter, trials=trials
        )
        if reporter is not None:
            reporter("done")
    if as_json:
        typer.echo(json.dumps(summary, default=str))
    else:
        print_summary(summary)


@runs_app.command("list")
def runs_list(
    db: DbOption = None,
    sweep: Annotated[int | None, typer.Option("--sweep", help="Only runs of this sweep.")] = None,
    limit: Annotated[int, typer.Option("--limit", help="Most recent N runs.")] = 50,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Stored runs, newest first (stale runs are marked failed first)."""
    from lstm_madness.data.store import init_db
    from lstm_madness.experiment import registry

    engine = make_engine(db)
    init_db(engine)
    registry.mark_stale_runs(engine)
    frame = registry.list_runs(engine, sweep_id=sweep, limit=limit)
    if as_json:
        typer.echo(frame.to_json(orient="records", date_format="iso"))
        return
    table = Table()
    for column in (
        "id",
        "name",
        "sweep",
        "target",
        "seed",
        "status",
        "started",
        "test period",
        "error",
    ):
        table.add_column(column)
    for row in frame.itertuples():
        period = f"{row.test_start} → {row.test_end}" if row.test_start else ""
        table.add_row(
            str(row.id),
            row.name or "",
            _fmt(row.sweep_id),
            row.target,
            _fmt(row.seed),
            row.status,
            str(row.started_at)[:19],
            period,
            (row.error or "")[:60],
        )
    console.print(table)


@runs_app.command("show")
def runs_show(
    run_id: Annotated[int, typer.Argument(metavar="RUN_ID")],
    db: DbOption = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """A run's out-of-sample metrics, backtest and verdict (same JSON as ``run --json``)."""
    from lstm_madness.data.store import init_db
    from lstm_madness.experiment import registry

    engine = make_engine(db)
    init_db(engine)
    registry.mark_stale_runs(engine)
    run = registry.get_run(engine, run_id)
    summary = run["summary"]
    if summary is None:
        message = (
            f"run {run_id} is {run['status']}"
            + (f": {run['error']}" if run["error"] else "")
            + "; no summary stored"
        )
        if as_json:
            typer.echo(
                json.dumps({"run_id": run_id, "status": run["status"], "error": run["error"]})
            )
            return
        console.print(message, highlight=False)
        raise typer.Exit(1 if run["status"] == "failed" else 0)
    summary = {**summary, "status": run["status"]}
    if as_json:
        typer.echo(json.dumps(summary, default=str))
    else:
        print_summary(summary)


@runs_app.command("delete")
def runs_delete(
    run_id: Annotated[int, typer.Argument(metavar="RUN_ID")], db: DbOption = None
) -> None:
    """Delete a run with its folds, predictions and metrics."""
    from lstm_madness.experiment import registry

    registry.delete_run(make_engine(db), run_id)
    console.print(f"deleted run {run_id}")
