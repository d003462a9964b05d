"""Cross-sectional samples: one per (member, date), windows as views over the panel.

The study of Fischer & Krauss (2018): one network shared by all members of a universe,
trained on every (member, date) sample; each day the members are ranked by prediction.

Alignment (as in :mod:`lstm_madness.features`): rows are the trading days of the panel's
own calendar; the feature row dated ``t`` uses data up to the close of ``t``; the sample
dated ``t`` of member ``s`` has the window of rows ``t - time_steps + 1 .. t`` of ``s``'s
features; ``realized[t, s] = ret[t + 1, s]``, the member's return from close ``t`` to close
``t + 1`` (NaN when it has no price on ``t + 1``: data ended, a gap).

Which (member, date) pairs exist:

- ``members[t, s]``: ``s`` is a member on ``t`` (point in time,
  :func:`lstm_madness.data.membership.membership_mask`).
- ``scored[t, s]``: a member on ``t`` whose whole window is finite (``time_steps`` days of
  history; days before it joined count as history: they are public prices). Scored pairs
  get a prediction and may be traded; nothing about ``t + 1`` decides it.
- ``eligible[t, s]``: scored and ``realized`` known: the training samples, and the pairs
  the labels are demeaned over.

Per-member features (``[data] features``, names of :data:`~lstm_madness.features.FEATURE_FIELDS`)
plus two optional ones:

- ``benchmark:ret`` (``benchmark_returns`` given): the benchmark's ``ret[t]``, the same
  value for every member;
- ``ret_xs_z`` (``standardized=True``): ``(ret[t, s] - m_t) / sd_t`` with ``m_t`` / ``sd_t``
  the mean and population std of ``ret[t]`` over the members on ``t`` with a return (0
  when ``sd_t`` is 0); a non-member's value is scaled by the members' statistics too, and
  never enters them.

Labels (``kind``) on eligible pairs, NaN elsewhere:

- ``cross_section``: ``realized[t, s] - mean(realized[t, eligible[t]])``;
- ``cross_section_direction``: 1.0 if ``realized[t, s]`` is above that day's median over
  the eligible members, else 0.0.

Memory: the panel holds ``(D, S, F)`` float64 values once. Windows are a strided view; a
fold's scaled panel is one ``(D, S, F)`` float32 copy, and :meth:`CrossSectionFold.X`
gathers a dense ``(n, time_steps, F)`` float32 array only for the rows asked for
(``n · time_steps · F · 4`` bytes: 30 members × 4,000 days × 10 steps × 3 features is
14 MB). The batched trainer (:func:`~lstm_madness.models.lstm.fit_forecasters`) takes
dense arrays, so a fold's training set is gathered once per fold.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np
import pandas as pd
from numpy.lib.stride_tricks import sliding_window_view

from lstm_madness.errors import ConfigError, DataError
from lstm_madness.features import StandardScaler, feature_panel
from lstm_madness.options import CROSS_SECTION_KINDS
from lstm_madness.windows import PanelWindows

__all__ = [
    "BENCHMARK_FEATURE",
    "CROSS_SECTION_KINDS",
    "ZSCORE_FEATURE",
    "CrossSectionFold",
    "CrossSectionPanel",
    "build_cross_section_fold",
    "build_panel",
    "cross_section_labels",
    "cross_sectional_zscore",
    "fit_pooled_scaler",
    "gather_windows",
    "validation_gap",
    "window_view",
]
#: Name of the benchmark's return feature and of the standardized return feature.
BENCHMARK_FEATURE = "benchmark:ret"
ZSCORE_FEATURE = "ret_xs_z"


# --------------------------------------------------------------------------------------
# pure panel functions
# --------------------------------------------------------------------------------------


def cross_sectional_zscore(returns: np.ndarray, members: np.ndarray) -> np.ndarray:
    """``(ret[t, s] - m_t) / sd_t`` over the members of each day (see the module docstring).

    Parameters
    ----------
    returns : ndarray, shape (D, S)
        ``ret[t, s]``; NaN = no return.
    members : ndarray of bool, shape (D, S)

    Returns
    -------
    ndarray, shape (D, S), float64
        NaN where ``returns`` is NaN or the day has no member with a return.
    """
    r = np.asarray(returns, dtype=np.float64)
    inside = np.asarray(members, dtype=bool) & np.isfinite(r)
    count = inside.sum(axis=1)  # (D,)
    safe = np.maximum(count, 1)
    mean = np.where(inside, r, 0.0).sum(axis=1) / safe
    var = np.where(inside, (r - mean[:, None]) ** 2, 0.0).sum(axis=1) / safe
    sd = np.sqrt(var)
    with np.errstate(invalid="ignore", divide="ignore"):
        z = np.where(sd[:, None] > 0, (r - mean[:, None]) / sd[:, None], 0.0)
    z[~np.isfinite(r) | (count == 0)[:, None]] = np.nan
    return z


def cross_section_labels(realized: np.ndarray, eligible: np.ndarray, kind: str) -> np.ndarray:
    """Labels of the eligible (member, date) pairs; NaN elsewhere (module docstring).

    Parameters
    ----------
    realized : ndarray, shape (D, S)
        Next-day returns ``ret[t + 1, s]``.
    eligible : ndarray of bool, shape (D, S)
        Pairs that are labelled (scored with a known ``realized``).
    kind : {"cross_section", "cross_section_direction"}
    """
    if kind not in CROSS_SECTION_KINDS:
        raise ConfigError(f"target.kind {kind!r} is not one of {', '.join(CROSS_SECTION_KINDS)}")
    real = np.asarray(realized, dtype=np.float64)
    ok = np.asarray(eligible, dtype=bool) & np.isfinite(real)
    masked = np.where(ok, real, np.nan)
    out = np.full(real.shape, np.nan)
    days = ok.any(axis=1)
    if kind == "cross_section":
        centre = np.nanmean(masked[days], axis=1)
        out[days] = masked[days] - centre[:, None]
    else:
        centre = np.nanmedian(masked[days], axis=1)
        out[days] = (masked[days] > centre[:, None]).astype(np.float64)
    out[~ok] = np.nan
    return out


def window_view(values: np.ndarray, time_steps: int) -> np.ndarray:
    """Read-only strided view of every window: ``out[w, s] = values[w : w + T, s]``.

    Parameters
    ----------
    values : ndarray, shape (D, S, F)
    time_steps : int
        ``T >= 1``.

    Returns
    -------
    ndarray, shape (D - T + 1, S, T, F)
        Window ``w`` ends at row ``w + T - 1``. No copy.
    """
    values = np.asarray(values)
    if values.ndim != 3:
        raise DataError(f"window_view expects (D, S, F) values, got shape {values.shape}")
    _check_steps(time_steps)
    if len(values) < time_steps:
        raise DataError(f"{len(values)} dates are fewer than time_steps = {time_steps}")
    return sliding_window_view(values, time_steps, axis=0).transpose(0, 1, 3, 2)


def gather_windows(
    values: np.ndarray, time_steps: int, date_idx: np.ndarray, symbol_idx: np.ndarray
) -> np.ndarray:
    """Dense windows of the samples ``(date_idx[i], symbol_idx[i])``.

    Returns
    -------
    ndarray, shape (n, time_steps, F), dtype of ``values``
        ``out[i] = values[date_idx[i] - T + 1 : date_idx[i] + 1, symbol_idx[i]]`` (a copy
        of just these windows).
    """
    d = np.asarray(date_idx, dtype=np.int64)
    s = np.asarray(symbol_idx, dtype=np.int64)
    if d.shape != s.shape or d.ndim != 1:
        raise DataError("date_idx and symbol_idx must be 1-D and of equal length")
    if d.size and d.min() < time_steps - 1:
        raise DataError(f"a sample dated row {d.min()} has fewer than {time_steps} rows")
    return window_view(values, time_steps)[d - (time_steps - 1), s]  # (n, T, F)


def _check_steps(time_steps: Any) -> None:
    if (
        isinstance(time_steps, bool)
        or not isinstance(time_steps, int | np.integer)
        or time_steps < 1
    ):
        raise ConfigError(f"time_steps must be an integer >= 1, got {time_steps!r}")


def _complete_windows(finite: np.ndarray, time_steps: int) -> np.ndarray:
    """``out[t, s]``: rows ``t - T + 1 .. t`` of ``s`` are all finite (False for t < T - 1)."""
    counts = np.cumsum(finite, axis=0, dtype=np.int64)  # (D, S)
    lagged = np.zeros_like(counts)
    lagged[time_steps:] = counts[:-time_steps]
    out = (counts - lagged) == time_steps
    out[: time_steps - 1] = False
    return out


# --------------------------------------------------------------------------------------
# the panel
# --------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class CrossSectionPanel:
    """Features, membership and labels of a universe on one calendar (module docstring).

    Attributes
    ----------
    dates : DatetimeIndex, shape (D,)
    symbols : tuple of str, shape (S,)
    feature_names : tuple of str, shape (F,)
    values : ndarray, shape (D, S, F), float64
        Unscaled features; NaN = missing.
    returns : ndarray, shape (D, S)
        ``ret[t, s]`` (close ``t - 1`` to ``t``).
    realized : ndarray, shape (D, S)
        ``ret[t + 1, s]``; NaN on the last date.
    members, scored, eligible : ndarray of bool, shape (D, S)
    labels : ndarray, shape (D, S)
        NaN off ``eligible``.
    time_steps : int
    kind : str
    """

    dates: pd.DatetimeIndex
    symbols: tuple[str, ...]
    feature_names: tuple[str, ...]
    values: np.ndarray = field(repr=False)
    returns: np.ndarray = field(repr=False)
    realized: np.ndarray = field(repr=False)
    members: np.ndarray = field(repr=False)
    scored: np.ndarray = field(repr=False)
    eligible: np.ndarray = field(repr=False)
    labels: np.ndarray = field(repr=False)
    time_steps: int = 1
    kind: str = "cross_section"

    @property
    def task(self) -> str:
        """``"classification"`` for direction labels, else ``"regression"``."""
        return "classification" if self.kind == "cross_section_direction" else "regression"

    def rows(self, selector: Any = None) -> np.ndarray:
        """Boolean mask over ``dates``: an inclusive ``(start, end)`` pair (None = open) or
        a boolean mask of length D; None selects every date."""
        if selector is None:
            return np.ones(len(self.dates), dtype=bool)
        if isinstance(selector, tuple) and len(selector) == 2:
            start, end = selector
            mask = np.ones(len(self.dates), dtype=bool)
            if start is not None:
                mask &= self.dates >= pd.Timestamp(start)
            if end is not None:
                mask &= self.dates <= pd.Timestamp(end)
            return mask
        mask = np.asarray(selector)
        if mask.dtype != bool or mask.shape != (len(self.dates),):
            raise ConfigError(
                f"expected a (start, end) pair or a boolean mask of length {len(self.dates)}"
            )
        return mask

    def samples(self, selector: Any = None, *, labelled: bool = True) -> tuple[np.ndarray, ...]:
        """``(date_idx, symbol_idx)`` of the samples on the selected dates, date-major.

        ``labelled=True``: the eligible pairs (training); ``False``: every scored pair
        (test: a prediction is made whether or not the next day's price will exist).
        """
        pairs = self.eligible if labelled else self.scored
        d, s = np.nonzero(pairs & self.rows(selector)[:, None])  # row-major: date, symbol
        return d, s

    def windows(self, date_idx: np.ndarray, symbol_idx: np.ndarray) -> np.ndarray:
        """Unscaled dense windows ``(n, time_steps, F)`` float64 of the given samples."""
        return gather_windows(self.values, self.time_steps, date_idx, symbol_idx)

    def frame(self, name: str) -> pd.DataFrame:
        """One (D, S) array as a DataFrame: ``returns``, ``realized``, ``labels``, ..."""
        return pd.DataFrame(getattr(self, name), index=self.dates, columns=list(self.symbols))


def build_panel(
    fields: Mapping[str, pd.DataFrame],
    members: pd.DataFrame,
    time_steps: int,
    *,
    kind: str = "cross_section",
    features: Sequence[str] = ("ret",),
    benchmark_returns: pd.Series | None = None,
    standardized: bool = False,
) -> CrossSectionPanel:
    """Build the :class:`CrossSectionPanel` of a universe.

    Parameters
    ----------
    fields : mapping of str to DataFrame
        Field panels (dates × symbols, e.g. from ``read_panel``). ``fields["ret"]`` defines
        the calendar and the columns (the candidate members); other fields are needed
        only by features that use them.
    members : DataFrame of bool
        Membership mask (from :func:`~lstm_madness.data.membership.membership_mask`),
        reindexed to the calendar and columns (missing = not a member).
    time_steps : int
        Window length.
    kind : {"cross_section", "cross_section_direction"}
    features : sequence of str
        Per-member features (``ret`` first by convention).
    benchmark_returns : Series, optional
        Adds the ``benchmark:ret`` feature (reindexed to the calendar).
    standardized : bool
        Adds the ``ret_xs_z`` feature.
    """
    _check_steps(time_steps)
    if kind not in CROSS_SECTION_KINDS:
        raise ConfigError(f"target.kind {kind!r} is not one of {', '.join(CROSS_SECTION_KINDS)}")
    if "ret" not in fields:
        raise DataError("build_panel needs the 'ret' panel (it defines the calendar)")
    ret = fields["ret"]
    dates = pd.DatetimeIndex(ret.index, name="date")
    if not (dates.is_monotonic_increasing and dates.is_unique):
        raise DataError("build_panel: the calendar must be ascending and unique")
    symbols = [str(c) for c in ret.columns]
    D, S = len(dates), len(symbols)
    own = feature_panel(fields, symbols, list(features)).to_numpy(dtype=np.float64)
    blocks = [own.reshape(D, S, len(features))]  # symbol-major columns -> (D, S, F_own)
    names = list(features)
    returns = ret.to_numpy(dtype=np.float64)  # (D, S)
    mask = members.reindex(index=dates, columns=symbols, fill_value=False)
    member = mask.to_numpy(dtype=bool)
    if benchmark_returns is not None:
        bench = benchmark_returns.reindex(dates).to_numpy(dtype=np.float64)
        blocks.append(np.broadcast_to(bench[:, None, None], (D, S, 1)))
        names.append(BENCHMARK_FEATURE)
    if standardized:
        blocks.append(cross_sectional_zscore(returns, member)[:, :, None])
        names.append(ZSCORE_FEATURE)
    values = np.concatenate(blocks, axis=2)  # (D, S, F)
    values[~np.isfinite(values)] = np.nan
    realized = np.full((D, S), np.nan)
    realized[:-1] = returns[1:]
    scored = member & _complete_windows(np.isfinite(values).all(axis=2), time_steps)
    eligible = scored & np.isfinite(realized)
    return CrossSectionPanel(
        dates=dates,
        symbols=tuple(symbols),
        feature_names=tuple(names),
        values=values,
        returns=returns,
        realized=realized,
        members=member,
        scored=scored,
        eligible=eligible,
        labels=cross_section_labels(realized, eligible, kind),
        time_steps=int(time_steps),
        kind=kind,
    )


# --------------------------------------------------------------------------------------
# one fold
# --------------------------------------------------------------------------------------


def fit_pooled_scaler(
    panel: CrossSectionPanel, last_row: int, first_row: int = 0
) -> StandardScaler:
    """A scaler fitted on the member rows dated ``first_row .. last_row`` (inclusive).

    Pooled over members: every ``(t, s)`` with ``first_row <= t <= last_row`` and ``s`` a
    member on ``t`` is one row of the fit (NaN ignored per feature).
    """
    window = slice(max(0, int(first_row)), int(last_row) + 1)
    rows = panel.values[window][panel.members[window]]  # (n_rows, F)
    return StandardScaler().fit(rows)


@dataclass(frozen=True, eq=False)
class CrossSectionFold:
    """Training and test samples of one fold, with the pooled scaler fitted on training.

    ``train`` / ``test``: ``(date_idx, symbol_idx)``, date-major. Training samples are the
    eligible pairs of the training dates; test samples every scored pair of the test dates
    (``y_test`` is NaN where the next-day price does not exist).
    """

    panel: CrossSectionPanel
    scaler: StandardScaler
    scaled: np.ndarray = field(repr=False)  # (D, S, F) float32
    train: tuple[np.ndarray, np.ndarray] = field(repr=False)
    test: tuple[np.ndarray, np.ndarray] = field(repr=False)

    def X(self, date_idx: np.ndarray, symbol_idx: np.ndarray) -> np.ndarray:
        """Scaled dense windows ``(n, time_steps, F)`` float32 (one batch, or a fold)."""
        return gather_windows(self.scaled, self.panel.time_steps, date_idx, symbol_idx)

    @property
    def windows_train(self) -> PanelWindows:
        """The training windows as views of the scaled panel (what the network trains on:
        gathered per batch, never materialised for the whole fold)."""
        return PanelWindows(self.scaled, *self.train, self.panel.time_steps)

    @property
    def windows_test(self) -> PanelWindows:
        """The test windows as views of the scaled panel (the network predicts them in
        chunks)."""
        return PanelWindows(self.scaled, *self.test, self.panel.time_steps)

    @cached_property
    def X_train(self) -> np.ndarray:
        return self.X(*self.train)

    @cached_property
    def X_test(self) -> np.ndarray:
        return self.X(*self.test)

    @property
    def y_train(self) -> np.ndarray:
        return self.panel.labels[self.train]

    @property
    def y_test(self) -> np.ndarray:
        return self.panel.labels[self.test]

    @property
    def realized_test(self) -> np.ndarray:
        """Each test sample's next-day return (NaN where none)."""
        return self.panel.realized[self.test]

    def predictions_frame(self, y_pred: np.ndarray) -> pd.DataFrame:
        """One row per test sample: ``date``, ``symbol``, ``y_true``, ``y_pred``, ``realized``.

        The long format a run stores (one row per (date, symbol, model)); ``y_true`` is
        the label, ``realized`` the member's next-day return (both NaN where the next-day
        price does not exist). ``frame.pivot(index="date", columns="symbol",
        values="y_pred")`` gives back the (dates, members) panel of the evaluation; reindex
        it on the test calendar so that days without a scored member stay in.
        """
        pred = np.asarray(y_pred, dtype=np.float64)
        d, s = self.test
        if pred.shape != d.shape:
            raise DataError(f"{pred.size} predictions for {d.size} test samples")
        return pd.DataFrame(
            {
                "date": self.panel.dates[d],
                "symbol": np.asarray(self.panel.symbols, dtype=object)[s],
                "y_true": self.panel.labels[d, s],
                "y_pred": pred,
                "realized": self.panel.realized[d, s],
            }
        )


def build_cross_section_fold(
    panel: CrossSectionPanel, *, train: Any, test: Any
) -> CrossSectionFold:
    """Samples of one walk-forward fold.

    Parameters
    ----------
    panel : CrossSectionPanel
    train, test : (start, end) or boolean mask
        Dates of the training and test samples; every training date precedes every test
        date. The labels are one day ahead, so a training sample dated before the first
        test date has its label known at that date's close: no purge is needed.

    Raises
    ------
    ConfigError
        Overlapping or misordered ranges.
    DataError
        No training or test sample.
    """
    train_rows, test_rows = panel.rows(train), panel.rows(test)
    if not test_rows.any() or not train_rows.any():
        raise DataError("build_cross_section_fold: the training or test range holds no date")
    first_test = int(np.argmax(test_rows))
    if train_rows[first_test:].any():
        raise ConfigError("every training date must precede the first test date")
    tr = panel.samples(train_rows, labelled=True)
    te = panel.samples(test_rows, labelled=False)
    if tr[0].size == 0:
        raise DataError("no complete training sample (check dates, membership, time_steps)")
    if te[0].size == 0:
        raise DataError("no scored member on the test dates")
    # the rows the training windows cover: from the first window's first day (a rolling
    # window's scaler forgets what lies before it, as a study period's in the paper)
    first_row = int(tr[0][0]) - panel.time_steps + 1
    scaler = fit_pooled_scaler(panel, int(tr[0][-1]), first_row)
    scaled = scaler.transform(panel.values).astype(np.float32)  # (D, S, F)
    return CrossSectionFold(panel, scaler, scaled, tr, te)


def validation_gap(fold: CrossSectionFold, fraction: float, patience: int) -> int:
    """Samples dropped before the network's validation tail so that it starts on a date
    boundary: no day's members are split between fitting and validation (their labels
    share that day's mean).

    :func:`~lstm_madness.models.protocol.split_validation` validates on the last
    ``n_val = max(1, ceil(fraction · n))`` training samples (date-major); the gap removes
    the samples of the tail's first date that precede it from the fit set. 0 without
    early stopping (``patience`` or ``fraction`` 0).
    """
    n = len(fold.train[0])
    if not (patience > 0 and fraction > 0) or n == 0:
        return 0
    n_val = max(1, math.ceil(fraction * n))
    dates = fold.train[0]
    first = n - n_val
    if first <= 0:
        return 0
    return int(first - np.searchsorted(dates, dates[first], side="left"))
