"""Commands about experiments: ``run`` and ``runs list|show|delete``."""

from __future__ import annotations

import json
from contextlib import nullcontext
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from lstm_madness.cli._app import (
    DbOption,
    MadnessTyper,
    announce_new_store,
    app,
    console,
    err_console,
    examples,
)
from lstm_madness.cli.tables import Column, fmt, print_table
from lstm_madness.errors import ConfigError

if TYPE_CHECKING:
    import sqlalchemy as sa
    from rich.progress import TaskID

runs_app = MadnessTyper(
    help="List, show and delete stored runs.",
    no_args_is_help=True,
    epilog=examples("madness runs list", "madness runs show 3"),
)
app.add_typer(runs_app, name="runs")

SetOption = Annotated[
    list[str] | None,
    typer.Option(
        "--set",
        metavar="KEY=VALUE",
        help="Override a config key, e.g. --set model.units=[64,32] (repeatable).",
    ),
]


class RunProgress:
    """Rich progress bars (stderr): folds, and epochs of the current training call.

    Bars end in a finished state: the folds bar full, the epochs bar full with "all N
    epochs" or "stopped early at epoch N" (the last epoch any network trained).
    """

    def __init__(self) -> None:
        from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

        self.bar = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            TextColumn("{task.completed}/{task.total}"),
            TextColumn("{task.fields[info]}"),
            TimeElapsedColumn(),
            console=err_console,
            transient=False,
        )
        self.folds: TaskID | None = None
        self.epochs: TaskID | None = None
        self._epoch = 0
        self._epochs = 0
        self._models = 0

    def __enter__(self) -> RunProgress:
        self.bar.__enter__()
        return self

    def __exit__(self, exc_type: object, *exc: object) -> None:
        if exc_type is None:
            self("done")
        self.bar.__exit__(exc_type, *exc)

    def _finish_epochs(self) -> None:
        """Show the last training call as finished: full bar, how it ended."""
        if self.epochs is None or self._epoch == 0:
            return
        nets = f"{self._models} net{'s' if self._models != 1 else ''}"
        if self._epoch >= self._epochs:
            text = f"{nets}, all {self._epochs} epochs"
        else:
            text = f"{nets}, stopped early at epoch {self._epoch}"
        self.bar.update(self.epochs, completed=self._epoch, total=self._epoch, info=text)
        self._epoch = 0

    def __call__(self, event: str, **info: Any) -> None:
        if event == "fold":
            self._finish_epochs()
            if self.folds is None:
                self.folds = self.bar.add_task("folds", total=info["n_folds"], info="")
            self.bar.update(self.folds, completed=info["fold"], total=info["n_folds"])
        elif event == "epoch":
            if self.epochs is None:
                self.epochs = self.bar.add_task("epochs", total=info["epochs"], info="")
            self._epoch, self._epochs = info["epoch"], info["epochs"]
            self._models = info["models"]
            if info["active"] == 0:  # every network has stopped: this call is over
                self._finish_epochs()
                return
            text = f"{info['active']}/{info['models']} nets training"
            self.bar.update(self.epochs, completed=info["epoch"], total=info["epochs"], info=text)
        elif event == "done":
            self._finish_epochs()
            if self.folds is not None:
                total = next(t.total for t in self.bar.tasks if t.id == self.folds)
                self.bar.update(self.folds, completed=total, info="done")


def print_timings(
    timings: dict[str, Any] | None, *, label: str = "time", run_id: Any = None
) -> None:
    """One line of elapsed time per stage (those recorded), then the total, each saying
    what it covers (:func:`~lstm_madness.report.formats.timing_line`)."""
    line = fmt.timing_line(timings, label=label, run_id=run_id)
    if line:
        console.print(line, highlight=False, markup=False, soft_wrap=True)


def print_summary(summary: dict[str, Any], *, full_name: bool = False) -> None:
    """Human-readable run summary (:func:`~lstm_madness.experiment.results.format_summary`,
    the text of ``RunResult.summary()``). ``full_name``: the run's name on its own line."""
    from lstm_madness.experiment.results import format_summary

    text = format_summary(summary, full_name=full_name)
    console.print(text, markup=False, highlight=False, soft_wrap=True)


def first_line(config: Any, name: str | None, path: Path | None, resume: int | None = None) -> str:
    """What ``run`` is about to do, printed before anything slow (importing PyTorch,
    loading prices): ``run NAME: loading TARGET`` (the caller adds the store), NAME being
    the run's name (``--name``, else the config's ``name``) or the config file's; or
    ``run RUN_ID: resuming``."""
    if config is None:
        return f"run {resume}: resuming"
    target = config.data.target
    target = target if isinstance(target, str) else ", ".join(target)
    label = name or config.name or (path.name if path is not None else "")
    return f"run {label}: loading {target}"


@app.command(
    "run",
    epilog=examples(
        "madness run examples/xlf/05_walk_forward_components.toml --set train.epochs=50",
        "madness run examples/xlf/02_lstm32.toml --name lstm32 --quiet --json",
        "madness run --resume 3",
        "madness run examples/xlf/05_walk_forward_components.toml --engine ray "
        "--address ray://head:10001",
    ),
)
def run(
    config_path: Annotated[
        Path | None,
        typer.Argument(metavar="CONFIG.toml", help="Experiment config (TOML). Omit with --resume."),
    ] = None,
    db: DbOption = None,
    set_: SetOption = None,
    name: Annotated[
        str | None, typer.Option("--name", metavar="NAME", help="Label of the run.")
    ] = None,
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
    engine_name: Annotated[
        str,
        typer.Option(
            "--engine",
            metavar="ENGINE",
            help="local (in-process) or ray (each fold group a Ray task; same predictions).",
        ),
    ] = "local",
    address: Annotated[
        str | None,
        typer.Option(
            "--address", metavar="ADDRESS", help="Ray cluster address (default: start a local Ray)."
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars.")] = False,
) -> None:
    """Train the network and the baselines, predict out of sample, store and evaluate."""
    from lstm_madness import api
    from lstm_madness.data.db import make_engine, where
    from lstm_madness.experiment.config import load_config

    if (config_path is None) == (resume is None):
        raise ConfigError("give either CONFIG.toml or --resume RUN_ID")
    config = load_config(config_path, set_ or []) if config_path is not None else None
    engine = make_engine(db)
    if not quiet:  # what it is about to do, before PyTorch and the data load (seconds)
        line = first_line(config, name, config_path, resume)
        err_console.print(
            f"{line} from {where(engine.url)} …", highlight=False, markup=False, soft_wrap=True
        )
    reporter = RunProgress() if not quiet else None
    with announce_new_store(engine), reporter or nullcontext():
        result = api.run(
            config,
            db=engine,
            name=name,
            resume=resume,
            progress=reporter,
            trials=trials,
            engine=engine_name,
            address=address,
        )
        if reporter is not None:
            reporter("done")
    summary = result.to_json()
    if as_json:
        typer.echo(json.dumps(summary, default=str))
    else:
        print_summary(summary)  # ends with the times, each saying what it covers


RUNS_COLUMNS = (
    Column("id", 0, "right"),
    Column("name", 1, shorten="middle", min_width=12),
    Column("status", 0),
    Column("test period", 1),
    Column("target", 2),
    Column("started (UTC)", 3),
    Column("sweep", 4, "right"),
    Column("seed", 4, "right"),
    Column("error", 1, shorten="end", min_width=16),
)


@runs_app.command(
    "list", epilog=examples("madness runs list", "madness runs list --sweep 1 --json")
)
def runs_list(
    db: DbOption = None,
    sweep: Annotated[
        int | None, typer.Option("--sweep", metavar="SWEEP_ID", help="Only runs of this sweep.")
    ] = None,
    limit: Annotated[int, typer.Option("--limit", help="Most recent N runs.")] = 50,
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON list.")] = False,
) -> None:
    """Stored runs, newest first (stale runs are marked failed first)."""
    from lstm_madness.data.db import make_engine
    from lstm_madness.data.initdb import init_db, require_store
    from lstm_madness.store.runs import list_runs

    engine = make_engine(db)
    require_store(engine)
    init_db(engine)
    mark_stale(engine)
    frame = list_runs(engine, sweep_id=sweep, limit=limit)
    if as_json:
        typer.echo(frame.to_json(orient="records", date_format="iso"))
        return
    rows = [
        [
            str(row.id),
            _text(row.name),
            row.status,
            f"{fmt.date(row.test_start)} → {fmt.date(row.test_end)}"
            if _present(row.test_start)
            else "",
            _text(row.target),
            fmt.timestamp(row.started_at),
            str(int(row.sweep_id)) if _present(row.sweep_id) else "",
            fmt.count(row.seed),
            " ".join(_text(row.error).split()),
        ]
        for row in frame.itertuples()
    ]
    print_table(console, RUNS_COLUMNS, rows)


def mark_stale(engine: sa.Engine) -> None:
    """Before a read command reads: runs whose process died marked failed (stale). A store
    that cannot be written (a full disk) is read all the same, with a note on stderr."""
    from lstm_madness.store.lifecycle import mark_stale_runs

    marked = mark_stale_runs(engine)
    if marked.unwritable:
        err_console.print(f"note: {marked.note()}", markup=False, highlight=False, soft_wrap=True)


def _present(value: Any) -> bool:
    """Not a missing cell: pandas turns a NULL into None, NaN, NaT or NA (a column of text
    and NULLs is a ``str`` column with NaN)."""
    import pandas as pd

    return not (value is None or (pd.api.types.is_scalar(value) and bool(pd.isna(value))))


def _text(value: Any) -> str:
    """A text cell: empty when missing (never ``nan``)."""
    return str(value) if _present(value) else ""


@runs_app.command("show", epilog=examples("madness runs show 3", "madness runs show 3 --json"))
def runs_show(
    run_id: Annotated[int, typer.Argument(metavar="RUN_ID")],
    db: DbOption = None,
    trials: Annotated[
        int | None,
        typer.Option(
            "--trials", metavar="N", help="Number of configurations tried (overrides the count)."
        ),
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print one JSON object (as madness run --json).")
    ] = False,
) -> None:
    """A run's metrics and verdict, judged against the registry now.

    Shows the run's full name, out-of-sample metrics, backtest and verdict against the
    registry as it is now. Reads only; at_finish in the JSON says what the run saw when
    it finished.
    """
    from lstm_madness.data.db import make_engine
    from lstm_madness.data.initdb import init_db, require_store
    from lstm_madness.experiment.show import show_run

    engine = make_engine(db)
    require_store(engine)
    init_db(engine)
    mark_stale(engine)  # a store that cannot be written is read all the same
    shown = show_run(engine, run_id, trials=trials)
    run, summary = shown.run, shown.summary
    if summary is None:
        if as_json:
            typer.echo(json.dumps({"run_id": run_id, "status": run.status, "error": run.error}))
            return
        console.print(shown.status_line() + "; no summary", highlight=False, markup=False)
        raise typer.Exit(0 if run.status in ("running", "queued") else 1)
    if as_json:
        typer.echo(json.dumps(summary, default=str))
    else:
        print_summary({"name": run.name, **summary}, full_name=True)


@runs_app.command("delete", epilog=examples("madness runs delete 3"))
def runs_delete(
    run_id: Annotated[int, typer.Argument(metavar="RUN_ID")], db: DbOption = None
) -> None:
    """Delete a run; a succeeded one still counts as a trial.

    A succeeded run stays as a tombstone (status "deleted") with its network's test
    predictions, so it still counts as a trial; a failed run is removed.
    """
    from lstm_madness.data.db import make_engine
    from lstm_madness.data.initdb import require_store
    from lstm_madness.store.lifecycle import delete_run

    engine = make_engine(db)
    require_store(engine)
    done = delete_run(engine, run_id)
    if done == "tombstone":
        console.print(f"deleted run {run_id} (kept as a tombstone: it still counts as a trial)")
    else:
        console.print(f"deleted run {run_id}")


@runs_app.command(
    "predictions",
    epilog=examples("madness runs predictions 3 --csv", "madness runs predictions 3 --model lstm"),
)
def runs_predictions(
    run_id: Annotated[int, typer.Argument(metavar="RUN_ID")],
    db: DbOption = None,
    model: Annotated[
        str | None, typer.Option("--model", help="Only this model (e.g. lstm, baseline:zero).")
    ] = None,
    as_csv: Annotated[bool, typer.Option("--csv", help="Print every row as CSV.")] = False,
) -> None:
    """A run's test predictions, positions and daily net returns.

    One row per date, symbol and model: y_true, y_pred, realized, and the position and
    gross and net returns under the run's backtest rule and costs. In a pipe every row
    and column is printed as aligned text; in a terminal the first and last rows, with
    the columns that do not fit named. --csv prints every row as CSV.
    """
    from lstm_madness.cli.tables import print_frame
    from lstm_madness.data.db import make_engine
    from lstm_madness.data.initdb import require_store
    from lstm_madness.experiment.summary import prediction_table

    engine = make_engine(db)
    require_store(engine)
    table = prediction_table(engine, run_id, model)
    if as_csv:
        typer.echo(table.to_csv(index=False, lineterminator="\n"), nl=False)
        return
    columns = [PREDICTION_COLUMNS.get(c, Column(c, 2, "right")) for c in table.columns]
    print_frame(
        console,
        table,
        columns,
        lambda c, v: str(v) if c in ("date", "symbol", "model") else f"{v:.6g}",
        title=f"run {run_id}: {len(table)} rows",
    )


#: ``runs predictions`` in a terminal: what is kept when the width runs out.
PREDICTION_COLUMNS = {
    c.header: c
    for c in (
        Column("date", 0),
        Column("symbol", 4),
        Column("fold", 4, "right"),
        Column("model", 0),
        Column("y_true", 2, "right"),
        Column("y_pred", 0, "right"),
        Column("realized", 3, "right"),
        Column("position", 1, "right"),
        Column("gross_return", 3, "right"),
        Column("net_return", 1, "right"),
    )
}


@runs_app.command(
    "periods",
    epilog=examples(
        "madness runs periods 3 --breaks 2001-01-01,2010-01-01,2016-01-01",
        "madness runs periods 3 --breaks 2010-01-01 --json",
        "madness runs periods 3 --breaks 2010-01-01 --csv",
    ),
)
def runs_periods(
    run_id: Annotated[int, typer.Argument(metavar="RUN_ID")],
    db: DbOption = None,
    breaks: Annotated[
        str,
        typer.Option(
            "--breaks",
            metavar="DATE,DATE,...",
            help="Ascending dates (YYYY-MM-DD) that start a new sub-period; none: only the total.",
        ),
    ] = "",
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
    as_csv: Annotated[
        bool, typer.Option("--csv", help="Print one CSV row per (period, book).")
    ] = False,
) -> None:
    """A universe run's figures by sub-period of its test days (from its first test day to
    the first break, ..., from the last break to its last test day, then all of them), for
    its network's book, each baseline's (same top_k and costs) and the equal-weight book:
    mean daily return before and after costs in both leg conventions, Sharpe, hit rate,
    share of positive days, turnover, members, coverage. Labels: statistics.md §19.
    """
    from lstm_madness.data.db import make_engine
    from lstm_madness.data.initdb import init_db, require_store
    from lstm_madness.experiment.periods import run_periods

    if as_json and as_csv:
        raise ConfigError("give --json or --csv, not both")
    engine = make_engine(db)
    require_store(engine)
    init_db(engine)
    cuts = [b.strip() for b in breaks.split(",") if b.strip()]
    result = run_periods(engine, run_id, cuts)
    if as_json:
        typer.echo(json.dumps(result.to_json(), default=str))
    elif as_csv:
        typer.echo(result.to_frame().to_csv(index=False, lineterminator="\n"), nl=False)
    else:
        console.print(result.summary(), markup=False, highlight=False, soft_wrap=True)
