"""Command about forecasts made elsewhere: ``judge`` (a thin shell over
:func:`lstm_madness.api.judge`)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from lstm_madness.cli._app import DbOption, announce_new_store, app, console, examples
from lstm_madness.cli.experiment import print_summary


@app.command(
    "judge",
    epilog=examples(
        "madness judge preds.csv --target XLF",
        "madness judge preds.csv --target XLF --alignment same_day --trials 20 --json",
        "madness judge probs.csv --target XLF --task direction --set backtest.cost_bps=2",
    ),
)
def judge(
    file: Annotated[
        Path,
        typer.Argument(
            metavar="FILE",
            help="Forecasts (CSV, or Parquet with pyarrow): date,prediction or "
            "date,model,prediction or date,MODEL,MODEL...",
        ),
    ],
    target: Annotated[
        str,
        typer.Option("--target", metavar="SYMBOL", help="Symbol whose returns are forecast."),
    ],
    db: DbOption = None,
    name: Annotated[
        str | None,
        typer.Option("--name", metavar="NAME", help="Run name (several models: NAME:MODEL)."),
    ] = None,
    task: Annotated[
        str,
        typer.Option(
            "--task",
            metavar="return|direction",
            help="A prediction is a next-day return, or a probability of an up move.",
        ),
    ] = "return",
    alignment: Annotated[
        str,
        typer.Option(
            "--alignment",
            metavar="next_day|same_day",
            help="next_day: a prediction dated t is for the return from close t to close "
            "t+1. same_day: it is dated with the day of the return it predicts.",
        ),
    ] = "next_day",
    trials: Annotated[
        int | None,
        typer.Option(
            "--trials",
            metavar="N",
            help="Forecasts tried outside the tool to arrive at this one (added to the "
            "trials of the Deflated Sharpe Ratio).",
        ),
    ] = None,
    set_: Annotated[
        list[str] | None,
        typer.Option(
            "--set",
            metavar="KEY=VALUE",
            help="A backtest.* or evaluation.* key, e.g. --set backtest.cost_bps=2 (repeatable).",
        ),
    ] = None,
    allow_gaps: Annotated[
        bool,
        typer.Option("--allow-gaps", help="Accept missing trading days (no position on them)."),
    ] = False,
    force: Annotated[
        bool, typer.Option("--force", help="Judge again a file judged with the same settings.")
    ] = False,
    as_json: Annotated[
        bool,
        typer.Option(
            "--json", help='Print the JSON of madness run --json ({"runs": [...]} for several).'
        ),
    ] = False,
) -> None:
    """Judge forecasts made elsewhere as trained runs are judged.

    Each model becomes a stored run (kind imported) with the tool's baselines on the same
    dates, the same tests, backtest with costs and verdict, counted in the target's trial
    set. A rejected file stores nothing; the same file judged again with the same
    settings neither.
    """
    from lstm_madness import api
    from lstm_madness.data.db import make_engine
    from lstm_madness.errors import AlreadyJudgedError

    engine = make_engine(db)
    try:
        with announce_new_store(engine):
            out = api.judge(
                file,
                target=target,
                db=engine,
                name=name,
                task=task,
                alignment=alignment,
                overrides=set_ or [],
                trials=trials,
                allow_gaps=allow_gaps,
                force=force,
            )
    except AlreadyJudgedError as exc:  # the API says force=True; here it is --force
        raise exc.hinted("add --force to judge it again") from None
    results = out if isinstance(out, list) else [out]
    if as_json:
        payload = (
            results[0].to_json() if len(results) == 1 else {"runs": [r.to_json() for r in results]}
        )
        typer.echo(json.dumps(payload, default=str))
        return
    for k, result in enumerate(results):
        if k:
            console.print()
        print_summary(result.to_json(), full_name=True)  # with its times
