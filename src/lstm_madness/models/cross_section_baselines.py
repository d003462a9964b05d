"""Baselines of a cross-sectional study, fitted on exactly the network's folds.

Each baseline is a :class:`~lstm_madness.models.baselines.FoldBaseline`, as a single
asset's: ``fit(fold) -> self`` (learning from the fold's training samples only)
and ``predict(fold, date_idx=None, symbol_idx=None) -> (n,)`` float64 forecasts for the
fold's test samples (or the given ones), in return units; a
:class:`~lstm_madness.cross_section.CrossSectionFold` carries the panel, the samples and
the scaler fitted on training rows.

- ``zero``: 0 for every member (0.5 for ``task="classification"``, the no-information
  forecast of an above-median label); the long-short rule takes no position (no ranking).
- ``reversal``: ``-ret[t]``, short-term reversal (Fischer & Krauss found it earned about
  half of their LSTM's return).
- ``momentum``: the past ``lookback``-day compounded return skipping the last ``skip``
  days, ``prod(1 + ret[t - skip - lookback + 1 .. t - skip]) - 1`` (20 and 1 by default).
  It needs ``lookback + skip`` days of history: a sample without them gets NaN (not
  ranked by momentum that day).
- ``ridge``: :class:`~lstm_madness.models.baselines.RidgeForecaster` pooled over members,
  on the same scaled windows as the network.

All signals use data dated ``<= t`` only. For ``cross_section_direction`` the forecasts
are scores, not probabilities (the ridge is a linear probability model); only their
ranking is used by the long-short rule and the rank IC.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from lstm_madness.cross_section import CrossSectionFold
from lstm_madness.errors import ConfigError, MadnessError
from lstm_madness.models.baselines import RidgeForecaster
from lstm_madness.options import CROSS_SECTION_BASELINES, TASKS

__all__ = [
    "CROSS_SECTION_BASELINES",
    "MomentumRanker",
    "PooledRidge",
    "ReversalRanker",
    "ZeroRanker",
    "make_cross_section_baseline",
    "momentum_scores",
    "reversal_scores",
]


def reversal_scores(returns: np.ndarray) -> np.ndarray:
    """``-ret[t, s]``, shape (D, S) (NaN where the return is missing)."""
    return -np.asarray(returns, dtype=np.float64)


def momentum_scores(returns: np.ndarray, lookback: int = 20, skip: int = 1) -> np.ndarray:
    """``prod(1 + ret[t - skip - lookback + 1 .. t - skip, s]) - 1``, shape (D, S).

    NaN for the first ``lookback + skip - 1`` rows and wherever a return in the window is
    missing.
    """
    if lookback < 1 or skip < 0:
        raise ConfigError(f"momentum needs lookback >= 1 and skip >= 0, got {lookback}, {skip}")
    r = np.asarray(returns, dtype=np.float64)
    out = np.full(r.shape, np.nan)
    first = lookback + skip - 1  # first row with a full window
    if len(r) > first:
        growth = sliding_window_view(1.0 + r, lookback, axis=0).prod(axis=-1)  # (D-L+1, S)
        # growth[w] covers rows w .. w + L - 1 and is the score of row w + L - 1 + skip
        out[first:] = growth[: len(r) - first] - 1.0
    return out


class _PanelBaseline:
    """Forecasts read off a (D, S) score panel of the fold's panel."""

    def _scores(self, fold: CrossSectionFold) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def fit(self, fold: CrossSectionFold) -> Any:
        self.fitted_ = True
        return self

    def predict(
        self,
        fold: CrossSectionFold,
        date_idx: np.ndarray | None = None,
        symbol_idx: np.ndarray | None = None,
    ) -> np.ndarray:
        if not hasattr(self, "fitted_"):
            raise MadnessError(f"{type(self).__name__} is not fitted; call fit first")
        d, s = fold.test if date_idx is None else (date_idx, symbol_idx)
        return self._scores(fold)[d, s]


class ZeroRanker(_PanelBaseline):
    """``level`` for every member (no ranking, no position): 0, or 0.5 for a direction
    label."""

    def __init__(self, level: float = 0.0) -> None:
        self.level = level

    def _scores(self, fold: CrossSectionFold) -> np.ndarray:
        zeros = np.zeros(fold.panel.returns.shape)
        return zeros + self.level if self.level else zeros


class ReversalRanker(_PanelBaseline):
    """Minus today's return (:func:`reversal_scores`)."""

    def _scores(self, fold: CrossSectionFold) -> np.ndarray:
        return reversal_scores(fold.panel.returns)


class MomentumRanker(_PanelBaseline):
    """Past ``lookback``-day return skipping the last ``skip`` days (:func:`momentum_scores`)."""

    def __init__(self, lookback: int = 20, skip: int = 1) -> None:
        self.lookback = lookback
        self.skip = skip

    def _scores(self, fold: CrossSectionFold) -> np.ndarray:
        return momentum_scores(fold.panel.returns, self.lookback, self.skip)


class PooledRidge:
    """Ridge on the flattened scaled windows of every member's training samples.

    Attributes
    ----------
    model_ : RidgeForecaster
    """

    def __init__(self, alpha: float = 1.0) -> None:
        self.alpha = alpha

    def fit(self, fold: CrossSectionFold) -> PooledRidge:
        self.model_ = RidgeForecaster(self.alpha).fit(fold.X_train, fold.y_train)
        return self

    def predict(
        self,
        fold: CrossSectionFold,
        date_idx: np.ndarray | None = None,
        symbol_idx: np.ndarray | None = None,
    ) -> np.ndarray:
        if not hasattr(self, "model_"):
            raise MadnessError("PooledRidge is not fitted; call fit first")
        X = fold.X_test if date_idx is None else fold.X(date_idx, symbol_idx)
        return self.model_.predict(X)


_REGISTRY: dict[str, type] = {
    "zero": ZeroRanker,
    "reversal": ReversalRanker,
    "momentum": MomentumRanker,
    "ridge": PooledRidge,
}


def make_cross_section_baseline(name: str, task: str = "regression", **kwargs: Any) -> Any:
    """An unfitted cross-sectional baseline by name (``momentum``: lookback, skip;
    ``ridge``: alpha); ``zero`` forecasts 0.5 for ``task="classification"``."""
    if name not in _REGISTRY:
        raise ConfigError(f"unknown cross-section baseline {name!r}; valid: {', '.join(_REGISTRY)}")
    if task not in TASKS:
        raise ConfigError(f"task must be one of {', '.join(TASKS)}, got {task!r}")
    if name == "zero" and task == "classification":
        kwargs.setdefault("level", 0.5)
    try:
        return _REGISTRY[name](**kwargs)
    except TypeError as exc:
        raise ConfigError(f"baseline {name!r}: {exc}") from exc
