"""From the store to model inputs: the study's feature panel, labels and samples.

Alignment (see ``docs/architecture.md``): the feature row dated t uses prices up to the
close of t; the label dated t is the target's return from close t to close t+horizon; the
trading return dated t is the target's return from close t to close t+1 (``next_ret``
from the store's ``returns`` view). Samples are the dates whose whole window of
``time_steps`` feature rows and label exist. Folds are cut on the target's trading days,
not on samples, so the test period does not depend on ``time_steps`` or on which
features need a warm-up: runs that differ only there are trials on the same test period.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd
import sqlalchemy as sa

from lstm_madness.data.store import as_date, read_panel, stored_spelling, window_days
from lstm_madness.errors import DataError
from lstm_madness.experiment.config import ExperimentConfig
from lstm_madness.experiment.folds import MIN_TRAIN_SAMPLES, Fold, plan_folds
from lstm_madness.experiment.limits import check_memory, check_time_steps, largest_fold
from lstm_madness.features import (
    FEATURE_FIELDS,
    FoldData,
    build_fold,
    column_name,
    feature_panel,
    make_labels,
    make_windows,
)
from lstm_madness.models.baselines import check_width, fit_memory


@dataclass(frozen=True)
class StudyData:
    """Everything the folds are cut from, on the target's trading days."""

    symbols: tuple[str, ...]  #: input symbols actually used (target first)
    features: pd.DataFrame  #: (dates, n_features) feature rows dated t, known at close t
    labels: pd.Series  #: label dated t: target return (or direction) from t to t+horizon
    asset_returns: pd.Series  #: traded return dated t: close t -> close t+1
    #: feature rows (dates) whose whole window, label and traded return exist: the samples
    sample_rows: np.ndarray
    time_steps: int
    horizon: int  #: label horizon in trading days
    target_column: int  #: column of the target's own ``ret`` feature (for persistence)

    @property
    def dates(self) -> pd.DatetimeIndex:
        """The target's trading days from ``data.start``: the rows folds are cut from."""
        return pd.DatetimeIndex(self.features.index)


def resolve_inputs(config: ExperimentConfig) -> list[str]:
    """Input symbols with the target first (the target's own history is always an input)."""
    inputs = config.data.inputs
    if isinstance(inputs, str):
        if not inputs.startswith("universe:"):
            raise DataError(f"data.inputs: expected a list or 'universe:NAME', got {inputs!r}")
        from lstm_madness.data.universe import load_universe

        symbols = load_universe(inputs.split(":", 1)[1])
    else:
        symbols = list(inputs)
    target = config.data.target
    return [target] + [s for s in dict.fromkeys(symbols) if s != target]


def with_stored_symbols(engine: sa.Engine, config: ExperimentConfig) -> ExperimentConfig:
    """``config`` with each symbol it names (target, members, inputs, benchmark) spelled
    as stored where the store holds it under another case only (``xlf`` → ``XLF``, when
    no other stored symbol reads ``xlf`` ignoring case); hashed and recorded that way. The
    others stay as given, for :func:`check_study_data` to refuse with its suggestions."""
    d, benchmark = config.data, config.target.benchmark
    target = d.target if isinstance(d.target, tuple) else (d.target,)
    inputs = () if isinstance(d.inputs, str) else d.inputs
    spelling = stored_spelling(engine, [*target, *inputs, *([benchmark] if benchmark else [])])
    if not spelling:
        return config
    fixed = tuple(spelling.get(s, s) for s in target)
    data = replace(
        d,
        target=fixed if isinstance(d.target, tuple) else fixed[0],
        inputs=d.inputs if isinstance(d.inputs, str) else tuple(spelling.get(s, s) for s in inputs),
    )
    bench = spelling.get(benchmark, benchmark) if benchmark else benchmark
    return replace(config, data=data, target=replace(config.target, benchmark=bench))


def no_samples_error(config: ExperimentConfig) -> DataError:
    d = config.data
    return DataError(
        f"no complete samples for {d.target} between {d.start} and {d.end}: "
        "ingest its prices first (madness ingest / madness fetch)"
    )


def check_study_data(
    engine: sa.Engine, config: ExperimentConfig, baselines: Sequence[str] = ()
) -> None:
    """The checks of :func:`load_study_data` that need no prices, with its errors: every
    symbol it reads is stored, the target trades between ``data.start`` and ``data.end``
    on enough days for the folds (``plan_folds`` on those days; the samples are fewer, so
    what fails here fails there) and for samples of ``model.time_steps`` days in each
    (:func:`~lstm_madness.experiment.limits.check_time_steps`); the memory of its windows,
    of ``baselines`` and of the network fits this machine (:func:`check_window_memory`).
    One query on the bars' key: a run is refused before it is registered, and its data is
    read once, when it trains."""
    d, target = config.data, config.data.target
    symbols = resolve_inputs(config)
    extra = [config.target.benchmark] if config.target.kind == "excess" else []
    needed = list(dict.fromkeys([*symbols, *(s for s in extra if s)]))
    days = window_days(engine, needed, d.start, d.end, require=True)
    n = days[target]
    if n == 0:
        start, end = as_date(d.start, "start"), as_date(d.end, "end")
        raise DataError(f"{target} has no trading day between {start} and {end}")
    if d.missing == "start_later":
        empty = [s for s in symbols if days[s] == 0]
        if empty:
            raise DataError(f"no data in the window for {', '.join(empty)}")
    folds = plan_folds(n, config.split, config.target.horizon)
    # a sample dated t needs time_steps rows up to t: the folds' days must leave samples
    check_time_steps(engine, config, folds, n_days=n, calendar=[target], days_of=target)
    check_window_memory(config, folds, len(symbols) * len(d.features), baselines)


def check_window_memory(
    config: ExperimentConfig, folds: Sequence[Fold], n_features: int, baselines: Sequence[str]
) -> None:
    """:func:`~lstm_madness.experiment.limits.check_memory` of the largest fold's dense
    windows (``n_features`` per step, at most), ``baselines`` fitted on them (each within
    its width limit, :func:`~lstm_madness.models.baselines.check_width`) and the
    network."""
    n_train, n_test = largest_fold(folds, config.model.time_steps)
    dim = config.model.time_steps * n_features
    for name in baselines:
        check_width(name, n_train, dim)
    check_memory(
        config,
        n_train=n_train,
        n_test=n_test,
        n_features=n_features,
        dense_windows=True,
        baselines={name: fit_memory(name, n_train, dim) for name in baselines},
        width_keys="data.inputs, data.features",
    )


def load_study_data(engine: sa.Engine, config: ExperimentConfig) -> StudyData:
    """Read returns (and the other fields the features need) and build features and labels."""
    d, target = config.data, config.data.target
    symbols = resolve_inputs(config)
    read = dict(
        start=d.start, end=d.end, align_to=target, missing=d.missing, ffill_limit=d.ffill_limit
    )
    returns = read_panel(engine, symbols, "ret", **read)
    symbols = [s for s in symbols if s in returns.columns]
    fields = {"ret": returns}
    for name in sorted({f for feat in d.features for f in FEATURE_FIELDS[feat]} - {"ret"}):
        fields[name] = read_panel(engine, symbols, name, **read).reindex(returns.index)
    features = feature_panel(fields, symbols, d.features)

    extra = [target] + ([config.target.benchmark] if config.target.kind == "excess" else [])
    next_ret = read_panel(
        engine, list(dict.fromkeys(extra)), "next_ret", **{**read, "missing": "keep"}
    ).reindex(returns.index)
    target_ret = returns[target]
    benchmark_ret = None
    asset = next_ret[target]
    if config.target.kind == "excess":
        bench = config.target.benchmark
        benchmark_ret = read_panel(engine, [bench], "ret", **{**read, "missing": "keep"})[
            bench
        ].reindex(returns.index)
        asset = asset - next_ret[bench]
    labels = make_labels(
        target_ret, config.target.horizon, kind=config.target.kind, benchmark_returns=benchmark_ret
    )

    steps = config.model.time_steps
    values = features.to_numpy(dtype=np.float64)
    # a sample ending at row r needs rows r-steps+1..r finite, a label and a traded return
    window_ok = make_windows(np.isfinite(values).all(axis=1)[:, None], steps).all(axis=(1, 2))
    rows = np.arange(steps - 1, len(values))
    ok = window_ok & labels.iloc[rows].notna().to_numpy() & asset.iloc[rows].notna().to_numpy()
    sample_rows = rows[ok]
    if len(sample_rows) == 0:
        raise no_samples_error(config)
    columns = list(features.columns)
    target_column = next(i for i, c in enumerate(columns) if _is_target_ret(c, target))
    return StudyData(
        tuple(symbols),
        features,
        labels,
        asset,
        sample_rows,
        steps,
        config.target.horizon,
        target_column,
    )


def _is_target_ret(column: object, target: str) -> bool:
    return str(column) == column_name(target, "ret")


@dataclass(frozen=True)
class FoldArrays(FoldData):
    """A fold's scaled windows (see :class:`~lstm_madness.features.FoldData`) plus the
    traded return of each test sample (close t -> close t+1) and the feature column of
    the target's own return (what the persistence baseline reads)."""

    asset_test: np.ndarray = field(default_factory=lambda: np.empty(0))
    target_column: int = 0


def rows_in(data: StudyData, rows: slice) -> np.ndarray:
    """Feature-row indices of the complete samples inside the row range ``rows``."""
    r = data.sample_rows
    return r[(r >= rows.start) & (r < rows.stop)]


def fold_arrays(data: StudyData, train: slice, test: slice) -> FoldArrays:
    """Windows of the complete samples whose dates fall in the row ranges ``train`` and
    ``test`` (indices into ``data.features``, i.e. the target's trading days).

    :func:`~lstm_madness.features.build_fold` fits the scaler on the feature rows up to
    the last training sample's date only, so nothing dated after it (test rows, rows in
    the purge gap) shapes the inputs.
    """
    n = len(data.features)
    train_mask = np.zeros(n, dtype=bool)
    train_mask[rows_in(data, train)] = True
    test_mask = np.zeros(n, dtype=bool)
    test_mask[rows_in(data, test)] = True
    fold = build_fold(
        data.features,
        data.labels,
        data.time_steps,
        train=train_mask,
        test=test_mask,
        horizon=data.horizon,
    )
    asset = data.asset_returns.to_numpy(dtype=np.float64)[fold.rows_test]
    return FoldArrays(**vars(fold), asset_test=asset, target_column=data.target_column)


def plan_study_folds(data: StudyData, config: ExperimentConfig) -> tuple[list[Fold], pd.DataFrame]:
    """The folds of ``config.split`` on the target's trading days that hold test samples,
    and their table (``fold``, the dates of the first and last training and test samples,
    ``n_train``, ``n_test``). DataError when a kept fold has fewer than
    :data:`~lstm_madness.experiment.folds.MIN_TRAIN_SAMPLES` complete training samples."""
    dates = data.dates
    kept, rows = [], []
    for fold in plan_folds(len(dates), config.split, config.target.horizon):
        train, test = rows_in(data, fold.train), rows_in(data, fold.test)
        if len(test) == 0:  # e.g. a last block of days without a known label
            continue
        if len(train) < MIN_TRAIN_SAMPLES:
            raise DataError(
                f"fold {fold.index} has {len(train)} complete training samples; "
                "start the test period later (split.*) or use more data"
            )
        kept.append(fold)
        rows.append(
            {
                "fold": fold.index,
                "train_start": dates[train[0]].date(),
                "train_end": dates[train[-1]].date(),
                "test_start": dates[test[0]].date(),
                "test_end": dates[test[-1]].date(),
                "n_train": len(train),
                "n_test": len(test),
            }
        )
    return kept, pd.DataFrame(rows)


def fold_rows(symbol: str, arrays: FoldArrays, predictions: dict[str, np.ndarray]) -> pd.DataFrame:
    """The prediction rows a run stores for one fold: one per (model, test date), with
    the label (``y_true``) and the traded return (``realized``) of each date."""
    return pd.concat(
        [
            pd.DataFrame(
                {
                    "model": name,
                    "split": "test",
                    "date": arrays.dates_test,
                    "symbol": symbol,
                    "y_true": arrays.y_test,
                    "y_pred": y_pred,
                    "realized": arrays.asset_test,
                }
            )
            for name, y_pred in predictions.items()
        ],
        ignore_index=True,
    )
