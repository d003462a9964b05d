"""From the store to model inputs: the study's feature panel, labels and samples.

Alignment (see ``docs/architecture.md``): the feature row dated t uses prices up to the
close of t; the label dated t is the target's return from close t to close t+horizon; the
trading return dated t is the target's return from close t to close t+1 (``next_ret``
from the store's ``returns`` view). Samples are the dates whose whole window of
``time_steps`` feature rows and label exist.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import sqlalchemy as sa

from lstm_madness.data.store import read_panel
from lstm_madness.errors import DataError
from lstm_madness.experiment.config import ExperimentConfig
from lstm_madness.features import (
    StandardScaler,
    feature_panel,
    make_labels,
    make_windows,
)

#: Price fields each feature needs besides ``ret``.
_FIELDS_FOR = {
    "ret": (),
    "vol_20": (),
    "log_volume_change": ("volume",),
    "range": ("high", "low", "close"),
}


@dataclass(frozen=True)
class StudyData:
    """Everything the folds are cut from, on the target's trading days."""

    symbols: tuple[str, ...]  #: input symbols actually used (target first)
    features: pd.DataFrame  #: (dates, n_features) feature rows dated t, known at close t
    labels: pd.Series  #: label dated t: target return (or direction) from t to t+horizon
    asset_returns: pd.Series  #: traded return dated t: close t -> close t+1
    sample_rows: np.ndarray  #: feature-row index of each sample's last row (its date)
    time_steps: int
    target_column: int  #: column of the target's own ``ret`` feature (for persistence)

    @property
    def sample_dates(self) -> pd.DatetimeIndex:
        return pd.DatetimeIndex(self.features.index[self.sample_rows])


def resolve_inputs(config: ExperimentConfig) -> list[str]:
    """Input symbols with the target first (the target's own history is always an input)."""
    inputs = config.data.inputs
    if isinstance(inputs, str):
        if not inputs.startswith("universe:"):
            raise DataError(f"data.inputs: expected a list or 'universe:NAME', got {inputs!r}")
        from lstm_madness.data.fetch import load_universe

        symbols = load_universe(inputs.split(":", 1)[1])
    else:
        symbols = list(inputs)
    target = config.data.target
    return [target] + [s for s in dict.fromkeys(symbols) if s != target]


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
    for name in sorted({f for feat in d.features for f in _FIELDS_FOR[feat]}):
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
        raise DataError(
            f"no complete samples for {target} between {d.start} and {d.end}: "
            "ingest its prices first (madness ingest / madness fetch)"
        )
    columns = list(features.columns)
    target_column = next(i for i, c in enumerate(columns) if _is_target_ret(c, target))
    return StudyData(tuple(symbols), features, labels, asset, sample_rows, steps, target_column)


def _is_target_ret(column: object, target: str) -> bool:
    if isinstance(column, tuple):
        return tuple(column) == (target, "ret")
    return str(column) == f"{target}:ret"


@dataclass(frozen=True)
class FoldArrays:
    """Scaled windows of one fold. X: (n, time_steps, n_features) float32."""

    X_train: np.ndarray
    y_train: np.ndarray
    dates_train: pd.DatetimeIndex
    X_test: np.ndarray
    y_test: np.ndarray
    dates_test: pd.DatetimeIndex
    asset_test: np.ndarray
    scaler: StandardScaler


def fold_arrays(data: StudyData, train: slice, test: slice) -> FoldArrays:
    """Windows of the samples in ``train`` and ``test`` (sample-index slices).

    The scaler is fitted on the feature rows up to the last training sample's date, so
    nothing dated after it (test rows, and rows inside the purge gap) shapes the inputs.
    """
    values = data.features.to_numpy(dtype=np.float64)
    train_rows, test_rows = data.sample_rows[train], data.sample_rows[test]
    scaler = StandardScaler().fit(values[: train_rows[-1] + 1])
    windows = make_windows(scaler.transform(values).astype(np.float32), data.time_steps)
    first = data.time_steps - 1  # window w ends at feature row w + steps - 1
    labels = data.labels.to_numpy(dtype=np.float64)
    index = data.features.index
    return FoldArrays(
        X_train=windows[train_rows - first],
        y_train=labels[train_rows],
        dates_train=pd.DatetimeIndex(index[train_rows]),
        X_test=windows[test_rows - first],
        y_test=labels[test_rows],
        dates_test=pd.DatetimeIndex(index[test_rows]),
        asset_test=data.asset_returns.to_numpy(dtype=np.float64)[test_rows],
        scaler=scaler,
    )
