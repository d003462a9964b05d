"""``madness report``, ``madness compare`` and ``madness demo``."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from lstm_madness.cli._app import DbOption, announce_new_store, app, console, examples
from lstm_madness.cli.experiment import SetOption, print_timings
from lstm_madness.cli.tables import Column, fmt, print_table
from lstm_madness.errors import ConfigError

#: The one scheme of report paths, said by the --out of ``report`` and ``demo``.
OUT_HELP = "Folder of reports: a run's report goes to DIR/run-N/report.html (PNGs beside it)."


@contextmanager
def _report_folder(out: Path, folder: Path) -> Iterator[None]:
    """Create ``folder`` (and its missing parents) before the run is evaluated, so that an
    ``--out`` that cannot hold it fails first, in one line (ConfigError): a file on the
    way, a folder without write permission, a file system that takes none (``/proc``).
    What it created is removed if the command then fails; an OSError while writing the
    report reads as one line too."""
    missing = [p for p in (folder, *folder.parents) if not p.exists()]  # deepest first
    blocking = next((p for p in folder.parents if p.exists()), None)
    if blocking is not None and not blocking.is_dir():
        raise ConfigError(f"--out {out}: {blocking} is a file, not a folder")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        yield
    except BaseException as exc:
        for made in missing:
            with suppress(OSError):
                made.rmdir()
        if isinstance(exc, OSError):
            reason = f"cannot write the report to {folder}: {exc.strerror or exc}"
            raise ConfigError(f"--out {out}: {reason}") from exc
        raise


@app.command("report", epilog=examples("madness report 3 --out report/"))
def report(
    run_id: Annotated[int, typer.Argument(metavar="RUN_ID")],
    out: Annotated[Path, typer.Option("--out", metavar="DIR", help=OUT_HELP)] = Path("report"),
    db: DbOption = None,
) -> None:
    """Write one self-contained HTML report (plots embedded) plus the PNGs of a run.

    The report goes to DIR/run-RUN_ID/report.html, its PNGs beside it; the path written
    is printed.
    """
    from lstm_madness.data.db import make_engine
    from lstm_madness.data.initdb import require_store
    from lstm_madness.experiment.reporting import report_dir, write_run_report

    engine = make_engine(db)
    require_store(engine)
    folder = report_dir(out, run_id)
    with _report_folder(out, folder):
        path, summary = write_run_report(engine, run_id, folder)
    verdict = summary["verdict"]
    word = "TRADEABLE" if verdict["tradeable"] else "NOT TRADEABLE"
    console.print(f"report: {path} ({word})", highlight=False, markup=False, soft_wrap=True)


@app.command("compare", epilog=examples("madness compare 3 4 5"))
def compare(
    run_ids: Annotated[list[int], typer.Argument(metavar="RUN_ID RUN_ID...")],
    db: DbOption = None,
) -> None:
    """Side-by-side table of runs: forecasts, backtest, significance, verdict.

    Says when the runs' test periods, targets or costs differ, and which figures are
    therefore not comparable.
    """
    from lstm_madness.data.db import make_engine
    from lstm_madness.data.initdb import require_store
    from lstm_madness.errors import RunError
    from lstm_madness.experiment.summary import evaluate_runs
    from lstm_madness.report import COMPARE_FORMATS, comparability, compare_table
    from lstm_madness.store.runs import get_runs

    engine = make_engine(db)
    require_store(engine)
    runs = get_runs(engine, run_ids)
    for run_id in run_ids:
        if runs[run_id].status != "succeeded":
            raise RunError(f"run {run_id} is {runs[run_id].status} and has no summary")
    evaluations = evaluate_runs(engine, run_ids)
    summaries = [{**evaluations[i].summary, "id": i, "name": runs[i].name} for i in run_ids]
    frame = compare_table(summaries)
    columns = [Column("metric", 0, min_width=8, shorten="end")]
    columns += [
        Column(str(label), 0, "right", shorten="middle", min_width=12) for label in frame.columns
    ]
    rows = [
        [str(label), *(COMPARE_FORMATS[str(label)](v) for v in row)]
        for label, row in frame.iterrows()
    ]
    print_table(console, columns, rows)
    for warning in comparability(summaries):
        console.print(f"[bold yellow]not comparable:[/] {escape(warning)}", highlight=False)


@app.command(
    "demo",
    epilog=examples("madness demo", "madness demo --seeds 1 --db sqlite:///demo.db --out report/"),
)
def demo(
    db: DbOption = None,
    out: Annotated[
        Path,
        typer.Option("--out", metavar="DIR", help=OUT_HELP + " N: the run shown, the median seed."),
    ] = Path("report"),
    seeds: Annotated[
        int, typer.Option("--seeds", metavar="N", help="Seeds of the study (each a run).")
    ] = 3,
    set_: SetOption = None,
) -> None:
    """The whole study offline on the bundled S&P 500 sample.

    Ingest, walk-forward LSTM with baselines, backtest after costs, verdict, report.
    """
    from lstm_madness.cli._app import err_console
    from lstm_madness.data.db import make_engine, where

    err_console.print(  # what it is about to do, before PyTorch loads (seconds)
        f"demo: the bundled S&P 500 sample into {where(make_engine(db).url)}, then "
        + ("1 seed" if seeds == 1 else f"{seeds} seeds")
        + " of a walk-forward LSTM …",
        highlight=False,
        markup=False,
        soft_wrap=True,
    )
    from lstm_madness.cli.experiment import RunProgress
    from lstm_madness.demo import run_demo

    started = time.perf_counter()
    with announce_new_store(make_engine(db)), RunProgress() as progress:
        result = run_demo(db, out, seeds=seeds, overrides=set_ or [], progress=progress)
        progress("done")
    whole = time.perf_counter() - started
    summary = result["summary"]
    models = summary["models"]
    console.print(
        f"S&P 500 (^GSPC), walk-forward, test {summary['test_start']} → "
        f"{summary['test_end']} ({summary['n_test']} days), "
        + ("1 seed" if seeds == 1 else f"{seeds} seeds"),
        highlight=False,
    )
    if result["seeds"] is not None:  # every seed first, then one seed's details
        for line in result["seeds"].lines(shown=result["run_id"]):
            console.print(line, highlight=False, markup=False, soft_wrap=True)
    console.print(
        f"LSTM R²_oos {fmt.fixed(models['lstm'].get('r2_oos'), 4)}, hit rate "
        f"{fmt.percent(models['lstm']['hit_rate'])}; net Sharpe "
        f"{fmt.ratio(summary['backtest']['sharpe_net'])} vs buy-and-hold "
        f"{fmt.ratio(summary['backtest']['buy_hold_sharpe'])}",
        highlight=False,
    )
    verdict = summary["verdict"]
    word = "[bold green]TRADEABLE[/]" if verdict["tradeable"] else "[bold red]NOT TRADEABLE[/]"
    console.print(f"verdict: {word}")
    for reason in verdict["reasons"]:
        console.print(f"  • {escape(reason)}", highlight=False, soft_wrap=True)
    for note in verdict.get("notes", []):  # what the trial set says: decides nothing
        console.print(f"  · {escape(note)}", highlight=False, soft_wrap=True)
    print_timings(summary.get("timings"), run_id=result["run_id"])
    console.print(
        f"whole command: {fmt.seconds(whole)} ("
        + ("1 seed" if seeds == 1 else f"all {seeds} seeds")
        + ": ingest, training, evaluation and the report)",
        highlight=False,
    )
    covers = "" if result["seeds"] is None else f" (every seed, then run {result['run_id']})"
    console.print(
        f"report: {result['report']}{covers}", highlight=False, markup=False, soft_wrap=True
    )
