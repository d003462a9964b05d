"""The Python API: train and judge a configuration, judge forecasts made elsewhere, load a
stored run. Each returns a :class:`~lstm_madness.experiment.results.RunResult` (``.verdict``,
``.metrics``, ``.backtest``, ``.significance``, ``.predictions``, ``.summary()``,
``.to_json()``, ``.report(out_dir)``; a notebook shows its verdict and model table).

>>> from lstm_madness import run, judge, load_run
>>> result = run("examples/xlf/02_lstm32.toml", overrides={"train.epochs": 5})  # doctest: +SKIP
>>> judged = judge(my_forecasts, target="XLF")                                  # doctest: +SKIP
>>> load_run(judged.run_id).verdict.label                                       # doctest: +SKIP

The ``madness run`` and ``madness judge`` commands are thin shells over :func:`run` and
:func:`judge`. Errors are the package's exceptions (:mod:`lstm_madness.errors`): a bad
config is a ``ConfigError``, a rejected forecast file a ``ValidationError`` listing every
problem (nothing is stored), a file already judged an ``AlreadyJudgedError`` (a
``RunError``).

``db`` is a database URL (``sqlite:///PATH``, ``postgresql+psycopg://...``), a SQLAlchemy
engine, or None for ``$MADNESS_DB_URL``, else ``sqlite:///./madness.db``.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd
    import sqlalchemy as sa

    from lstm_madness.experiment.config import ExperimentConfig
    from lstm_madness.experiment.results import RunResult

__all__ = ["judge", "load_run", "run"]

Overrides = Mapping[str, Any] | Sequence[str | tuple[str, Any]] | None


@contextmanager
def _engine(db: str | sa.Engine | None) -> Iterator[sa.Engine]:
    """The store's engine, initialised. One made here from a URL has its pooled
    connections closed on the way out (a result that reads later opens new ones)."""
    import sqlalchemy as sa

    from lstm_madness.data.db import make_engine
    from lstm_madness.data.store import init_db

    if isinstance(db, sa.Engine):
        init_db(db)
        yield db
        return
    engine = make_engine(db)
    try:
        init_db(engine)
        yield engine
    finally:
        engine.dispose()


def _pairs(overrides: Overrides) -> list[str | tuple[str, Any]]:
    """``{"train.epochs": 5}`` or ``["train.epochs=5"]`` → what ``apply_overrides`` takes."""
    if overrides is None:
        return []
    if isinstance(overrides, Mapping):
        return [(str(k), v) for k, v in overrides.items()]
    if isinstance(overrides, str):
        return [overrides]
    return list(overrides)


def _config(config: str | Path | Mapping[str, Any] | ExperimentConfig, overrides: Overrides):
    from lstm_madness.errors import ConfigError
    from lstm_madness.experiment.config import (
        ExperimentConfig,
        apply_overrides,
        from_dict,
        load_config,
    )

    pairs = _pairs(overrides)
    if isinstance(config, ExperimentConfig):
        return (
            from_dict(apply_overrides(config.to_dict(), pairs), warn_deprecated=True)
            if pairs
            else config
        )
    if isinstance(config, str | Path):
        return load_config(config, pairs)
    if isinstance(config, Mapping):
        return from_dict(apply_overrides(dict(config), pairs), warn_deprecated=True)
    raise ConfigError(
        f"config must be a path to a TOML file or a dict, got {type(config).__name__}"
    )


class _Bar:
    """A run's progress for a person: its folds, with the epoch of the training call.

    ``live``: a Rich bar on stderr (in Jupyter, Rich draws it in the cell through
    ``ipywidgets``); else one plain line per fold on stderr (a notebook without
    ``ipywidgets`` shows those in the cell).
    """

    def __init__(self, live: bool) -> None:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
        )

        self.bar = Progress(
            TextColumn("[bold]folds"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[info]}"),
            TimeElapsedColumn(),
            console=Console(stderr=True),
            disable=not live,
        )
        self.live = live
        self.task: Any = None

    def __enter__(self) -> _Bar:
        self.bar.start()
        return self

    def __exit__(self, exc_type: object, *exc: object) -> None:
        if exc_type is None and self.task is not None:
            self.bar.update(self.task, info="done")
        self.bar.stop()

    def __call__(self, event: str, **info: Any) -> None:
        if event == "fold":
            fold, n = info["fold"], info["n_folds"]
            if self.task is None:
                self.task = self.bar.add_task("folds", total=n, info="")
            self.bar.update(self.task, completed=fold, total=n)
            if not self.live:
                import sys

                print(f"folds {fold}/{n}", file=sys.stderr, flush=True)
        elif event == "epoch" and self.task is not None:
            text = f"epoch {info['epoch']}/{info['epochs']}, {info['active']} nets training"
            self.bar.update(self.task, info=text)


def _progress(progress: Any) -> Any:
    """The context of ``run(progress=...)``, yielding what the runner is given: the
    callable itself, a :class:`_Bar`, or None."""
    from contextlib import nullcontext
    from importlib.util import find_spec

    from rich.console import Console

    from lstm_madness.errors import ConfigError

    if callable(progress):
        return nullcontext(progress)
    if isinstance(progress, str) and progress != "auto":
        raise ConfigError(f'progress must be "auto", True, False or a callable, got {progress!r}')
    console = Console(stderr=True)
    if progress == "auto":
        progress = console.is_jupyter or console.is_terminal
    if not progress:
        return nullcontext(None)
    return _Bar(live=not console.is_jupyter or find_spec("ipywidgets") is not None)


def run(
    config: str | Path | Mapping[str, Any] | ExperimentConfig | None,
    *,
    db: str | sa.Engine | None = None,
    overrides: Overrides = None,
    name: str | None = None,
    trials: int | None = None,
    resume: int | None = None,
    progress: Any = "auto",
    engine: str = "local",
    address: str | None = None,
) -> RunResult:
    """Train the network and the baselines, predict out of sample, store and evaluate.

    Parameters
    ----------
    config : str, Path, dict or ExperimentConfig
        A TOML file, or the same content as a nested dict (``{"data": {"target": "XLF"},
        "train": {"epochs": 20}}``). None with ``resume``.
    db : str or Engine, optional
        The store (see the module docstring).
    overrides : dict, optional
        Dotted keys, as ``--set`` takes them: ``{"model.units": [64, 32]}``.
    name : str, optional
        The run's name.
    trials : int, optional
        Configurations tried, for the Deflated Sharpe Ratio (default: the trial set).
    resume : int, optional
        Continue a failed run from its last completed fold (``config`` must be None).
    progress : "auto", bool or callable
        ``"auto"`` (default): a progress bar of the folds (with the epoch of the training
        call) in a Jupyter notebook or a terminal, none in a pipe or a log. ``True``: always
        (Rich, on stderr; in Jupyter drawn in the cell with ``ipywidgets``, else one line
        per fold); ``False`` or None: none. A callable gets the events instead:
        ``progress(event, **info)`` (``fold``, ``epoch``, ``group``), as the CLI's bars.
    engine : {"local", "ray"}
        ``ray``: each fold group (period) trains and is stored by a Ray task, on the
        cluster at ``address`` or a local instance; same predictions as ``local``. The
        workers open ``db`` themselves: a SQLite file or PostgreSQL, not ``sqlite://``.
    address : str, optional
        Ray cluster address (``ray://head:10001``); default: start a local Ray.

    Returns
    -------
    RunResult
        The finished run; ``.to_json()`` is what ``madness run --json`` prints.
    """
    from lstm_madness.errors import ConfigError
    from lstm_madness.experiment.dataset import with_stored_symbols
    from lstm_madness.experiment.results import RunResult
    from lstm_madness.experiment.runner import run_experiment

    if (config is None) == (resume is None):
        raise ConfigError("give either a config or resume=RUN_ID")
    cfg = _config(config, overrides) if config is not None else None
    finished: dict[int, Any] = {}
    with _engine(db) as store, _progress(progress) as reporter:
        cfg = with_stored_symbols(store, cfg) if cfg is not None else None
        summary = run_experiment(
            store,
            cfg,
            name=name,
            resume=resume,
            progress=reporter,
            trials=trials,
            finished=finished,
            engine_name=engine,
            address=address,
        )
    return RunResult(finished[int(summary["run_id"])])


def judge(
    predictions: pd.Series | pd.DataFrame | str | Path,
    *,
    target: str,
    db: str | sa.Engine | None = None,
    name: str | None = None,
    task: str = "return",
    alignment: str = "next_day",
    overrides: Overrides = None,
    trials: int | None = None,
    allow_gaps: bool = False,
    force: bool = False,
    model: str | None = None,
) -> RunResult | list[RunResult]:
    """Judge forecasts made elsewhere, as the tool judges its own runs, and store them.

    Parameters
    ----------
    predictions : Series, DataFrame, str or Path
        A Series with a DatetimeIndex (one model, named by ``model``, else the Series'
        name); a DataFrame with one column per model (dates in the index or a ``date``
        column; or the long ``date,model,prediction`` layout); or a CSV/Parquet file.
    target : str
        Symbol (in the store) whose next-day returns the forecasts predict; ``xlf`` is
        read as the stored ``XLF`` when no other stored symbol reads so ignoring case.
    task : {"return", "direction"}
        A prediction is a next-day return (fraction) or the probability of an up move.
    alignment : {"next_day", "same_day"}
        ``next_day``: a prediction dated t is for the return from close t to close t+1.
        ``same_day``: it is dated with the day of the return it predicts (moved back one
        trading day of the target).
    overrides : dict, optional
        ``[backtest]`` and ``[evaluation]`` keys, e.g. ``{"backtest.cost_bps": 2}``.
    trials : int, optional
        Forecasts tried outside the tool to arrive at these; they add to N of the DSR.
    allow_gaps : bool
        Accept missing trading days inside the forecasts' range (no position then).
    force : bool
        Judge again forecasts already judged with the same settings.
    model : str, optional
        Name of a one-model input.

    Returns
    -------
    RunResult or list of RunResult
        One result per model: a single result for one model, else a list in file order.

    Raises
    ------
    ValidationError
        The forecasts, with every problem (file, line, column, value, reason); nothing is
        stored.
    AlreadyJudgedError
        Judged before with the same settings; names the run, stores nothing (pass
        ``force=True`` to judge them again).
    """
    from lstm_madness.data.forecasts import forecasts_from_pandas, read_forecasts
    from lstm_madness.experiment.results import RunResult

    if isinstance(predictions, str | Path):
        forecasts = read_forecasts(predictions, task=task, model=model)
    else:
        forecasts = forecasts_from_pandas(predictions, task=task, model=model)
    with _engine(db) as engine:
        evaluations = _judged(
            engine,
            forecasts,
            target,
            name=name,
            alignment=alignment,
            overrides=_pairs(overrides),
            trials=trials,
            allow_gaps=allow_gaps,
            force=force,
        )
    results = [RunResult(ev) for ev in evaluations]
    return results[0] if len(results) == 1 else results


def _judged(engine: sa.Engine, forecasts: Any, target: str, **settings: Any) -> list[Any]:
    """``judge_forecasts`` on the stored spelling of ``target`` (``xlf`` → ``XLF``); a
    repeat is raised here, short, saying ``force=True`` (no traceback of its inside)."""
    from lstm_madness.data.store import stored_spelling
    from lstm_madness.errors import AlreadyJudgedError
    from lstm_madness.experiment.judging import judge_forecasts

    target = stored_spelling(engine, [target]).get(target, target)
    try:
        return judge_forecasts(engine, forecasts, target=target, **settings)
    except AlreadyJudgedError as exc:
        raise exc.hinted("pass force=True to judge it again") from None


def load_run(
    run_id: int, *, db: str | sa.Engine | None = None, trials: int | None = None
) -> RunResult:
    """A stored succeeded run, evaluated against the ledger as it is now, as ``madness runs
    show`` judges it (:func:`~lstm_madness.experiment.results.show_run`: runs whose process
    died are marked failed first; nothing else is written). A run that has not succeeded
    raises :class:`~lstm_madness.errors.RunError`."""
    from lstm_madness.experiment.results import load_run as _load

    with _engine(db) as engine:
        return _load(engine, int(run_id), trials=trials)
