"""Imported forecasts as test predictions of a run: the model, the tool's own baselines on
the same dates, and labels and realized returns from the target's stored history.

Each model of an aligned forecast file becomes one :class:`ImportedModel`, the content of
one imported run: its predictions dated t (decision dates, the ``next_day`` convention),
the baselines of :mod:`lstm_madness.models.history_baselines` on those dates, the label
``y_true`` dated t (the return from close t to close t+1, or 1.0 if that return is > 0 for
``direction``, as :func:`lstm_madness.features.make_labels` defines it) and ``realized``,
the same return, which a position dated t earns. Gap days (``allow_gaps``) carry the
no-information forecast (see :mod:`lstm_madness.data.alignment`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from lstm_madness.data.alignment import AlignedForecasts
from lstm_madness.errors import ConfigError, DataError
from lstm_madness.evaluation.study import Evaluation, EvaluationSettings, evaluate
from lstm_madness.models.history_baselines import history_baselines

#: Task of a forecast file → task of the evaluation.
EVALUATION_TASKS: dict[str, str] = {"return": "regression", "direction": "classification"}
#: Columns of :meth:`ImportedModel.prediction_rows` (those ``registry.save_fold`` stores).
ROW_COLUMNS: tuple[str, ...] = ("model", "split", "date", "symbol", "y_true", "y_pred", "realized")


@dataclass(frozen=True)
class ImportedModel:
    """One imported model with everything its evaluation needs, on its decision dates.

    Attributes
    ----------
    name : str
        Model name (the run's primary model).
    task : str
        ``return`` or ``direction``.
    dates : ndarray of datetime64[ns], shape (n,)
        Decision dates t, ascending, consecutive trading days of the target.
    realized : ndarray, shape (n,)
        The target's simple return from close t to close t+1 (fraction).
    y_true : ndarray, shape (n,)
        The label forecast: ``realized``, or 1.0/0.0 (up/not up) for ``direction``.
    predictions : dict of str to ndarray
        ``name`` (gap days filled with the no-information forecast) first, then
        ``baseline:<name>`` for each history baseline.
    gaps : ndarray of bool, shape (n,)
        Days without a forecast in the file.
    """

    name: str
    task: str
    dates: np.ndarray
    realized: np.ndarray
    y_true: np.ndarray
    predictions: dict[str, np.ndarray]
    gaps: np.ndarray

    @property
    def evaluation_task(self) -> str:
        """``regression`` or ``classification``."""
        return EVALUATION_TASKS[self.task]

    @property
    def test_start(self) -> pd.Timestamp:
        return pd.Timestamp(self.dates[0])

    @property
    def test_end(self) -> pd.Timestamp:
        return pd.Timestamp(self.dates[-1])

    def prediction_rows(self, symbol: str, split: str = "test") -> pd.DataFrame:
        """Long rows for the predictions table, one per (model, date), columns
        :data:`ROW_COLUMNS`; the same ``y_true`` and ``realized`` for every model."""
        n = len(self.dates)
        return pd.concat(
            [
                pd.DataFrame(
                    {
                        "model": np.full(n, model, dtype=object),
                        "split": split,
                        "date": self.dates,
                        "symbol": symbol,
                        "y_true": self.y_true,
                        "y_pred": pred,
                        "realized": self.realized,
                    }
                )
                for model, pred in self.predictions.items()
            ],
            ignore_index=True,
        )

    def evaluate(self, settings: EvaluationSettings | None = None, **kwargs: Any) -> Evaluation:
        """:func:`lstm_madness.evaluation.study.evaluate` with this model as the primary;
        ``kwargs`` (``trials``, ``trial_sharpes``, ``peer_net_returns``, ...) pass through.
        R²_oos is against ``baseline:mean`` (return task)."""
        return evaluate(
            dates=self.dates,
            asset_returns=self.realized,
            y_true=self.y_true,
            predictions=self.predictions,
            task=self.evaluation_task,
            primary=self.name,
            settings=settings or EvaluationSettings(),
            **kwargs,
        )


def _returns_series(returns: pd.DataFrame | Mapping[str, Any]) -> tuple[pd.Series, pd.Series]:
    frame = pd.DataFrame(returns)
    missing = {"date", "ret", "next_ret"} - set(frame.columns)
    if missing:
        raise DataError(f"returns need the columns date, ret, next_ret; missing {sorted(missing)}")
    index = pd.DatetimeIndex(pd.to_datetime(frame["date"]))
    ret = pd.Series(frame["ret"].to_numpy(dtype=np.float64), index=index)
    nxt = pd.Series(frame["next_ret"].to_numpy(dtype=np.float64), index=index)
    return ret, nxt


def imported_models(
    aligned: AlignedForecasts, returns: pd.DataFrame, task: str = "return"
) -> list[ImportedModel]:
    """One :class:`ImportedModel` per model of ``aligned``, in file order.

    Parameters
    ----------
    aligned : AlignedForecasts
        Forecasts on decision dates (:func:`lstm_madness.data.alignment.align_forecasts`).
    returns : pandas.DataFrame
        The target's whole stored history as :func:`lstm_madness.data.store.read_returns`
        returns it: ``date``, ``ret`` (close t-1 → t), ``next_ret`` (close t → t+1).
    task : {"return", "direction"}

    Raises
    ------
    DataError
        A decision date without a stored next-day return (the calendar and the returns
        disagree).
    """
    if task not in EVALUATION_TASKS:
        raise ConfigError(f"task must be one of {', '.join(EVALUATION_TASKS)}, got {task!r}")
    ret, nxt = _returns_series(returns)
    filled = aligned.filled(task)
    out = []
    for name in aligned.models:
        rows = filled.loc[filled["model"] == name]
        dates = pd.DatetimeIndex(rows["date"])
        realized = nxt.reindex(dates).to_numpy()
        if not np.isfinite(realized).all():
            bad = dates[~np.isfinite(realized)][:5].strftime("%Y-%m-%d")
            raise DataError(f"no stored return to the next close for {', '.join(bad)}")
        y_true = realized if task == "return" else (realized > 0).astype(np.float64)
        predictions = {name: rows["prediction"].to_numpy(dtype=np.float64)}
        predictions.update(history_baselines(ret, dates, task))
        out.append(
            ImportedModel(
                name=name,
                task=task,
                dates=dates.to_numpy(dtype="datetime64[ns]"),
                realized=realized,
                y_true=y_true,
                predictions=predictions,
                gaps=rows["gap"].to_numpy(dtype=bool),
            )
        )
    return out
