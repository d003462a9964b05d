"""Imported forecasts as test predictions of a run: the model, the tool's own baselines on
the same dates, and labels and realized returns from the target's stored history.

Each model of an aligned forecast file becomes one :class:`ImportedModel`, the content of
one imported run: its predictions dated t (decision dates, the ``next_day`` convention),
the baselines of :mod:`lstm_madness.models.history_baselines` on those dates, the label
``y_true`` dated t (the return from close t to close t+1, or 1.0 if that return is > 0 for
``direction``, as :func:`lstm_madness.features.make_labels` defines it) and ``realized``,
the same return, which a position dated t earns. Gap days (``allow_gaps``) carry the
no-information forecast (see :mod:`lstm_madness.data.alignment`).

:func:`judge_config` is the experiment config such a run is stored and evaluated under
(only ``[backtest]`` and ``[evaluation]`` may be set), and :class:`ImportSpec` records where
its forecasts came from and how they were read; its :meth:`~ImportSpec.run_hash` recognises
the same file judged again with the same settings.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd

from lstm_madness.data.alignment import ALIGNMENTS, AlignedForecasts
from lstm_madness.errors import ConfigError, DataError
from lstm_madness.evaluation.study import Evaluation, EvaluationSettings, evaluate
from lstm_madness.experiment.config import (
    ExperimentConfig,
    apply_overrides,
    from_dict,
    parse_assignment,
)
from lstm_madness.models.history_baselines import history_baselines

#: Task of a forecast file → task of the evaluation.
EVALUATION_TASKS: dict[str, str] = {"return": "regression", "direction": "classification"}
#: Config sections a judged forecast may override: the tool did not make the forecast, so
#: only how it is traded and judged is the tool's to set.
JUDGE_SECTIONS: tuple[str, ...] = ("backtest", "evaluation")
#: Columns of :meth:`ImportedModel.prediction_rows` (what ``store.predictions.save_fold`` stores).
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


def judge_config(
    target: str,
    task: str = "return",
    overrides: Sequence[str | tuple[str, Any]] = (),
    name: str = "",
) -> ExperimentConfig:
    """The experiment config an imported run is stored and evaluated under.

    The defaults, with ``data.target = target``, ``target.kind = task`` and a horizon of one
    day, plus ``overrides`` (``"section.key=value"`` strings or ``(key, value)`` pairs as
    ``madness run --set`` takes them) of :data:`JUDGE_SECTIONS` only, so that
    :func:`~lstm_madness.experiment.summary.evaluation_settings` and every reading command
    treat the run as a trained one.

    Raises
    ------
    ConfigError
        An override outside :data:`JUDGE_SECTIONS`, or an invalid value.
    """
    if task not in EVALUATION_TASKS:
        raise ConfigError(f"task must be one of {', '.join(EVALUATION_TASKS)}, got {task!r}")
    raw: dict[str, Any] = {
        "name": name,
        "data": {"target": target},
        "target": {"kind": task, "horizon": 1},
    }
    pairs = [o if isinstance(o, tuple) else parse_assignment(o) for o in overrides]
    for key, _value in pairs:
        if key.split(".")[0] not in JUDGE_SECTIONS:
            raise ConfigError(
                f"{key}: a judged forecast only takes settings of "
                f"{', '.join(f'[{s}]' for s in JUDGE_SECTIONS)}"
            )
    return from_dict(apply_overrides(raw, pairs), warn_deprecated=True)


@dataclass(frozen=True)
class ImportSpec:
    """Where an imported run's forecasts came from and how they were read.

    Attributes
    ----------
    file : str
        Display name of the source (path, ``<Series ...>``).
    checksum : str
        sha256 of the file's bytes (:attr:`~lstm_madness.data.forecasts.ForecastFile.checksum`).
    model : str
        The model of the file this run judges.
    task : str
        ``return`` or ``direction``.
    alignment : str
        ``next_day`` or ``same_day``.
    allow_gaps : bool
    trials : int or None
        Forecasts the user declares were tried outside the tool to arrive at this one.
    """

    file: str
    checksum: str
    model: str
    task: str = "return"
    alignment: str = "next_day"
    allow_gaps: bool = False
    trials: int | None = None

    def __post_init__(self) -> None:
        if self.task not in EVALUATION_TASKS:
            raise ConfigError(f"task must be one of {', '.join(EVALUATION_TASKS)}")
        if self.alignment not in ALIGNMENTS:
            raise ConfigError(f"alignment must be one of {', '.join(ALIGNMENTS)}")
        if self.trials is not None and (isinstance(self.trials, bool) or self.trials < 1):
            raise ConfigError(f"trials must be a positive integer, got {self.trials!r}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def run_hash(self, config: ExperimentConfig) -> str:
        """SHA-256 identifying "this model of these bytes, read and judged this way": the
        same file judged again with the same settings has the same hash (the display name
        does not count). Differs between imported runs that are not repeats, so that no two
        of them ever look like seeds of one configuration."""
        key = {k: v for k, v in self.to_dict().items() if k != "file"}
        key["config"] = config.hash()
        return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()
