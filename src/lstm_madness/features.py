"""Feature panels, labels, sliding windows and a scaler fitted on training rows only.

Alignment (see ``docs/architecture.md``): the feature row dated ``t`` uses data up to and
including the close of ``t``; the label dated ``t`` is the target's return from close ``t``
to close ``t + horizon``; the window of the sample dated ``t`` holds the feature rows dated
``t - time_steps + 1 .. t`` (the last row is ``t`` itself). Rows are trading days of the
panel's own index (the target's calendar); "``h`` days later" always means ``h`` rows later.

Feature columns are flat strings ``"SYMBOL:feature"`` (e.g. ``"XLF:ret"``), ordered
symbol-major: every feature of the first symbol, then every feature of the next, each in
the order of ``names``. With the target first and ``"ret"`` first, column 0 is the target's
own return.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from numpy.lib.stride_tricks import sliding_window_view

from lstm_madness.errors import ConfigError, DataError
from lstm_madness.options import FEATURE_FIELDS  # defined there: configs check names without pandas

#: Window of the rolling volatility feature ``vol_20`` (trading days).
VOL_WINDOW = 20

#: Label kinds accepted by :func:`make_labels`.
LABEL_KINDS = ("return", "direction", "excess")


def column_name(symbol: str, feature: str) -> str:
    """Flat feature column name: ``"SYMBOL:feature"``."""
    return f"{symbol}:{feature}"


# --------------------------------------------------------------------------------------
# features and labels
# --------------------------------------------------------------------------------------


def _field(
    fields: Mapping[str, pd.DataFrame],
    name: str,
    symbol: str,
    index: pd.DatetimeIndex,
    feature: str,
) -> pd.Series:
    if name not in fields:
        raise DataError(
            f"feature {feature!r} needs the {name!r} panel; fields has "
            f"{', '.join(sorted(fields)) or 'nothing'}"
        )
    frame = fields[name]
    if symbol not in frame.columns:
        raise DataError(f"feature {feature!r}: the {name!r} panel has no column {symbol!r}")
    return frame[symbol].reindex(index).astype(np.float64)


def _one_feature(
    fields: Mapping[str, pd.DataFrame], symbol: str, feature: str, index: pd.DatetimeIndex
) -> pd.Series:
    if feature == "ret":
        return _field(fields, "ret", symbol, index, feature)
    if feature == "vol_20":
        ret = _field(fields, "ret", symbol, index, feature)
        # std of ret[t-19..t] (ddof=1); NaN until 20 observations exist
        return ret.rolling(VOL_WINDOW, min_periods=VOL_WINDOW).std()
    if feature == "log_volume_change":
        vol = _field(fields, "volume", symbol, index, feature)
        vol = vol.where(vol > 0)  # zero / negative volume: undefined log change
        return np.log(vol / vol.shift(1))
    if feature == "range":
        high = _field(fields, "high", symbol, index, feature)
        low = _field(fields, "low", symbol, index, feature)
        close = _field(fields, "close", symbol, index, feature)
        return (high - low) / close.where(close != 0)
    raise ConfigError(  # pragma: no cover - names are validated by the caller
        f"unknown feature {feature!r}; valid: {', '.join(FEATURE_FIELDS)}"
    )


def feature_panel(
    fields: Mapping[str, pd.DataFrame],
    symbols: Sequence[str],
    names: Sequence[str],
) -> pd.DataFrame:
    """Per-symbol features dated ``t``, each computed from data dated ``<= t`` only.

    Parameters
    ----------
    fields : mapping of str to DataFrame
        Field panels (index ``date``, one column per symbol). ``"ret"`` is required and
        defines the output index (the target's trading days); the others are reindexed to
        it. Keys used: ``"ret"`` (simple return close t-1 -> close t), ``"volume"``,
        ``"high"``, ``"low"``, ``"close"`` (only those the requested features need).
    symbols : sequence of str
        Symbols in output order (put the target first).
    names : sequence of str
        Features per symbol, in output order, from :data:`FEATURE_FIELDS`:

        - ``ret``: ``ret[t]``.
        - ``log_volume_change``: ``log(volume[t] / volume[t-1])`` (t-1 = previous row);
          NaN where either volume is missing or not positive.
        - ``range``: ``(high[t] - low[t]) / close[t]`` (same-day bar, fraction of close).
        - ``vol_20``: sample std (ddof=1) of ``ret[t-19..t]``; NaN for the first 19 rows
          and wherever the 20-day window has a missing return.

    Returns
    -------
    DataFrame
        ``(n_dates, len(symbols) * len(names))`` float64, index = ``fields["ret"].index``
        (named ``date``), columns ``"SYMBOL:feature"`` symbol-major. Missing inputs give
        NaN (never filled here).

    Raises
    ------
    ConfigError
        An unknown feature name, or empty ``symbols`` / ``names``.
    DataError
        A needed field panel or symbol column is missing.
    """
    unknown = [n for n in names if n not in FEATURE_FIELDS]
    if unknown:
        raise ConfigError(f"unknown feature {unknown[0]!r}; valid: {', '.join(FEATURE_FIELDS)}")
    if not names or not symbols:
        raise ConfigError("feature_panel needs at least one symbol and one feature")
    if len(set(names)) != len(names) or len(set(symbols)) != len(symbols):
        raise ConfigError("feature_panel: symbols and feature names must be unique")
    if "ret" not in fields:
        raise DataError("feature_panel needs the 'ret' panel (it defines the dates)")
    index = pd.DatetimeIndex(fields["ret"].index, name="date")
    columns = {
        column_name(s, n): _one_feature(fields, s, n, index).to_numpy(dtype=np.float64)
        for s in symbols
        for n in names
    }
    out = pd.DataFrame(columns, index=index)
    return out.replace([np.inf, -np.inf], np.nan)


def _compound_forward(returns: np.ndarray, horizon: int) -> np.ndarray:
    """``out[t] = prod(1 + r[t+1 .. t+horizon]) - 1``; last ``horizon`` entries NaN."""
    out = np.full(len(returns), np.nan)
    if len(returns) > horizon:
        growth = sliding_window_view(1.0 + returns[1:], horizon)  # (T - horizon, horizon)
        out[: len(returns) - horizon] = growth.prod(axis=1) - 1.0
    return out


def make_labels(
    target_returns: pd.Series,
    horizon: int,
    kind: str = "return",
    benchmark_returns: pd.Series | None = None,
) -> pd.Series:
    """Label dated ``t``: the target's compounded return from close ``t`` to ``t + horizon``.

    Parameters
    ----------
    target_returns : Series
        ``ret[t]`` (simple return close t-1 -> close t), index ``date`` ascending.
    horizon : int
        Trading days (rows) ahead, ``>= 1``.
    kind : {"return", "direction", "excess"}
        ``return``: ``prod(1 + ret[t+1..t+h]) - 1``. ``direction``: 1.0 if that return is
        ``> 0`` else 0.0 (a zero return is "not up"). ``excess``: the target's compounded
        return minus the benchmark's over the same rows.
    benchmark_returns : Series, optional
        The benchmark's ``ret``; required for ``excess``; reindexed to the target's dates.

    Returns
    -------
    Series
        float64, same index, named ``"label"``. NaN for the last ``horizon`` dates and
        wherever a needed return is missing.
    """
    if kind not in LABEL_KINDS:
        raise ConfigError(f"label kind {kind!r} is not one of {', '.join(LABEL_KINDS)}")
    if isinstance(horizon, bool) or not isinstance(horizon, int | np.integer) or horizon < 1:
        raise ConfigError(f"horizon must be an integer >= 1, got {horizon!r}")
    values = _compound_forward(target_returns.to_numpy(dtype=np.float64), int(horizon))
    if kind == "excess":
        if benchmark_returns is None:
            raise ConfigError("label kind 'excess' needs benchmark_returns")
        bench = benchmark_returns.reindex(target_returns.index).to_numpy(dtype=np.float64)
        values = values - _compound_forward(bench, int(horizon))
    elif kind == "direction":
        values = np.where(np.isnan(values), np.nan, (values > 0).astype(np.float64))
    return pd.Series(values, index=target_returns.index, name="label")


# --------------------------------------------------------------------------------------
# windows and scaling
# --------------------------------------------------------------------------------------


def make_windows(values: np.ndarray, time_steps: int) -> np.ndarray:
    """Overlapping windows of ``time_steps`` consecutive rows, as a read-only view.

    Parameters
    ----------
    values : ndarray, shape (T, F)
        Rows in date order.
    time_steps : int
        Window length, ``>= 1``.

    Returns
    -------
    ndarray, shape (T - time_steps + 1, time_steps, F)
        ``out[i] = values[i : i + time_steps]``: window ``i`` ends at row
        ``i + time_steps - 1`` (its date). A strided view (no copy, not writeable); index it
        (``out[rows]``) to get a writeable copy. Empty (0 windows) when ``T < time_steps``.
    """
    values = np.asarray(values)
    if values.ndim != 2:
        raise DataError(f"make_windows expects a 2-D (T, F) array, got shape {values.shape}")
    if (
        isinstance(time_steps, bool)
        or not isinstance(time_steps, int | np.integer)
        or time_steps < 1
    ):
        raise ConfigError(f"time_steps must be an integer >= 1, got {time_steps!r}")
    if len(values) < time_steps:
        empty = np.empty((0, time_steps, values.shape[1]), dtype=values.dtype)
        empty.flags.writeable = False
        return empty
    windows = sliding_window_view(values, time_steps, axis=0)  # (N, F, time_steps)
    return windows.transpose(0, 2, 1)  # (N, time_steps, F)


class StandardScaler:
    """Column-wise standardization ``(x - mean_) / scale_`` fitted on training rows.

    Statistics ignore NaN (a feature's warm-up rows); ``scale_`` is the population std
    (ddof=0), set to 1.0 for constant columns so they map to 0 instead of dividing by 0.

    Attributes
    ----------
    mean_ : ndarray, shape (F,)
    scale_ : ndarray, shape (F,)
    n_samples_seen_ : ndarray, shape (F,)
        Finite values per column used in the fit.
    """

    def fit(self, X: np.ndarray) -> StandardScaler:
        """Fit on ``X`` of shape ``(rows, F)``: only the rows the model may know about.

        Raises
        ------
        DataError
            ``X`` is not 2-D, or a column has no finite value.
        """
        X = np.asarray(X, dtype=np.float64)
        if X.ndim != 2:
            raise DataError(f"StandardScaler.fit expects a 2-D (rows, F) array, got {X.shape}")
        finite = np.isfinite(X)
        counts = finite.sum(axis=0)
        if X.shape[0] == 0 or (counts == 0).any():
            bad = np.flatnonzero(counts == 0) if X.shape[0] else np.arange(X.shape[1])
            raise DataError(f"StandardScaler.fit: column(s) {bad.tolist()} have no finite value")
        Xz = np.where(finite, X, 0.0)
        mean = Xz.sum(axis=0) / counts
        var = (np.where(finite, X - mean, 0.0) ** 2).sum(axis=0) / counts
        scale = np.sqrt(var)
        scale[~(scale > 0)] = 1.0
        self.mean_ = mean
        self.scale_ = scale
        self.n_samples_seen_ = counts
        return self

    def transform(self, X: np.ndarray) -> np.ndarray:
        """Standardize ``X`` of shape ``(..., F)`` (rows or windows); NaN stays NaN. float64."""
        if not hasattr(self, "mean_"):
            raise DataError("StandardScaler is not fitted; call fit first")
        X = np.asarray(X, dtype=np.float64)
        if X.shape[-1:] != self.mean_.shape:
            raise DataError(
                f"StandardScaler: expected {self.mean_.shape[0]} columns, got shape {X.shape}"
            )
        return (X - self.mean_) / self.scale_

    def inverse_transform(self, X: np.ndarray) -> np.ndarray:
        """Undo :meth:`transform` on ``X`` of shape ``(..., F)``. float64."""
        if not hasattr(self, "mean_"):
            raise DataError("StandardScaler is not fitted; call fit first")
        return np.asarray(X, dtype=np.float64) * self.scale_ + self.mean_

    def fit_transform(self, X: np.ndarray) -> np.ndarray:
        """:meth:`fit` then :meth:`transform` on the same rows."""
        return self.fit(X).transform(X)


# --------------------------------------------------------------------------------------
# one fold
# --------------------------------------------------------------------------------------

#: Selects dates: an inclusive ``(start, end)`` pair (either may be None = open) or a
#: boolean mask aligned with the feature index.
DateSelector = tuple[Any, Any] | np.ndarray | pd.Series | Sequence[bool]


@dataclass(frozen=True)
class FoldData:
    """Scaled windows of one fold.

    ``X_*``: ``(n, time_steps, F)`` float32 (scaled); ``y_*``: ``(n,)`` float64 labels;
    ``dates_*``: each sample's date (its window's last row); ``rows_*``: each sample's
    feature-row index (to align other series, e.g. traded returns).
    """

    X_train: np.ndarray
    y_train: np.ndarray
    dates_train: pd.DatetimeIndex
    X_test: np.ndarray
    y_test: np.ndarray
    dates_test: pd.DatetimeIndex
    scaler: StandardScaler
    rows_train: np.ndarray
    rows_test: np.ndarray
    #: complete training samples dropped because their label is not known by the first
    #: test date (purge of overlapping labels)
    n_purged: int = 0
    #: dates in the train / test range dropped for an incomplete window or missing label
    n_incomplete_train: int = 0
    n_incomplete_test: int = 0
    feature_names: tuple[str, ...] = field(default=())

    @property
    def windows_train(self) -> np.ndarray:
        """What the network trains on: the dense training windows (the universe fold's
        counterpart gathers them from its panel per batch)."""
        return self.X_train

    @property
    def windows_test(self) -> np.ndarray:
        """What the network predicts: the dense test windows."""
        return self.X_test


def _select(selector: DateSelector, index: pd.DatetimeIndex, what: str) -> np.ndarray:
    if isinstance(selector, tuple) and len(selector) == 2:
        start, end = selector
        mask = np.ones(len(index), dtype=bool)
        if start is not None:
            mask &= index >= pd.Timestamp(start)
        if end is not None:
            mask &= index <= pd.Timestamp(end)
        return mask
    mask = np.asarray(selector)
    if mask.dtype != bool or mask.shape != (len(index),):
        raise ConfigError(
            f"{what}: expected a (start, end) pair or a boolean mask of length {len(index)}"
        )
    return mask


@dataclass(frozen=True)
class _FoldRows:
    train: np.ndarray  #: feature rows of the kept training samples
    test: np.ndarray  #: feature rows of the test samples
    n_purged: int
    n_incomplete_train: int
    n_incomplete_test: int


def _fold_rows(
    values: np.ndarray,
    y: np.ndarray,
    time_steps: int,
    index: pd.DatetimeIndex,
    train: DateSelector,
    test: DateSelector,
    horizon: int,
) -> _FoldRows:
    """The complete samples of the training and test ranges, after the purge (steps 1
    and 2 of :func:`build_fold`)."""
    windows_ok = make_windows(np.isfinite(values).all(axis=1)[:, None], time_steps)
    complete = np.zeros(len(index), dtype=bool)
    complete[time_steps - 1 :] = windows_ok.all(axis=(1, 2))
    complete &= np.isfinite(y)

    train_mask = _select(train, index, "train")
    test_mask = _select(test, index, "test")
    if not test_mask.any():
        raise DataError("build_fold: the test range holds no date")
    if not train_mask.any():
        raise DataError("build_fold: the training range holds no date")
    first_test = int(np.argmax(test_mask))
    if train_mask[first_test:].any():
        raise ConfigError("build_fold: every training date must precede the first test date")

    rows = np.arange(len(index))
    purge_ok = rows + horizon <= first_test
    n_purged = int((train_mask & ~purge_ok & complete).sum())
    train_kept = train_mask & purge_ok
    rows_train = rows[train_kept & complete]
    rows_test = rows[test_mask & complete]
    if len(rows_train) == 0:
        raise DataError(
            "build_fold: no complete training sample (check dates, time_steps, "
            "horizon and missing data)"
        )
    if len(rows_test) == 0:
        raise DataError("build_fold: no complete test sample")
    return _FoldRows(
        rows_train,
        rows_test,
        n_purged,
        int((train_kept & ~complete).sum()),
        int((test_mask & ~complete).sum()),
    )


def build_fold(
    features: pd.DataFrame,
    labels: pd.Series,
    time_steps: int,
    *,
    train: DateSelector,
    test: DateSelector,
    horizon: int = 1,
) -> FoldData:
    """Scaled windows of the training and test samples of one fold.

    A sample dated ``t`` (feature row ``r``) has the window of rows ``r - time_steps + 1 ..
    r`` and the label dated ``t``. Steps:

    1. Samples with a NaN anywhere in their window or label (or fewer than ``time_steps``
       earlier rows) are dropped (``n_incomplete_*``).
    2. Purge: with ``s`` the first row of the test range, a training sample at row ``r``
       is kept only if ``r + horizon <= s`` (its label is known at the close of the first
       test date), i.e. ``horizon - 1`` dates separate the train and test samples
       (``n_purged``).
    3. The scaler is fitted on every feature row up to and including the last kept
       training sample's date (rows before the training range too: they are past data),
       never on later rows; train and test windows are both scaled with it.

    Parameters
    ----------
    features : DataFrame, shape (n_dates, F)
        From :func:`feature_panel`; index ``date`` ascending.
    labels : Series
        From :func:`make_labels`; reindexed to ``features.index``.
    time_steps : int
        Window length.
    train, test : (start, end) or boolean mask
        Dates of the training and test samples: an inclusive date pair (None = open end)
        or a boolean mask over ``features.index``. Every training date must precede
        every test date.
    horizon : int
        Label horizon in trading days (rows), for the purge.

    Returns
    -------
    FoldData

    Raises
    ------
    ConfigError
        Overlapping or misordered ranges, bad ``time_steps`` / ``horizon``.
    DataError
        No complete training or test sample remains.
    """
    if isinstance(horizon, bool) or not isinstance(horizon, int | np.integer) or horizon < 1:
        raise ConfigError(f"horizon must be an integer >= 1, got {horizon!r}")
    index = pd.DatetimeIndex(features.index)
    if not index.is_monotonic_increasing or not index.is_unique:
        raise DataError("build_fold: the feature index must be unique and ascending")
    values = features.to_numpy(dtype=np.float64)  # (n_dates, F)
    y = labels.reindex(index).to_numpy(dtype=np.float64)  # (n_dates,)
    rows = _fold_rows(values, y, time_steps, index, train, test, horizon)
    rows_train, rows_test = rows.train, rows.test

    scaler = StandardScaler().fit(values[: rows_train[-1] + 1])
    windows = make_windows(scaler.transform(values).astype(np.float32), time_steps)
    first = time_steps - 1  # window w ends at row w + first
    return FoldData(
        X_train=windows[rows_train - first],  # (n_train, time_steps, F) copy
        y_train=y[rows_train],
        dates_train=pd.DatetimeIndex(index[rows_train], name="date"),
        X_test=windows[rows_test - first],  # (n_test, time_steps, F) copy
        y_test=y[rows_test],
        dates_test=pd.DatetimeIndex(index[rows_test], name="date"),
        scaler=scaler,
        rows_train=rows_train,
        rows_test=rows_test,
        n_purged=rows.n_purged,
        n_incomplete_train=rows.n_incomplete_train,
        n_incomplete_test=rows.n_incomplete_test,
        feature_names=tuple(str(c) for c in features.columns),
    )
