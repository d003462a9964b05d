"""Put imported forecasts on the target's trading calendar, under the project's convention.

The convention everywhere in the project: a prediction *dated t* was made with data up to
the close of t and is for the return from close t to close t+1 (the next trading day of the
target). A forecast file states how its dates are meant:

``next_day`` (default)
    the file already follows the convention: the date is the decision date t.
``same_day``
    the file stamps each prediction with the date of the return it predicts (the return
    ending at that close); it is moved back one trading day of the target, to the decision
    date t.

After alignment every prediction dated t needs the close of t+1 in the store to be judged.

Rejections (every one becomes a :class:`~lstm_madness.data.validation.Problem` naming the
file's line, and :func:`align_forecasts` raises them together): a date after the last
stored price, or for ``next_day`` on it (its outcome is not stored yet); a date that is not
a trading day of the target (before its first stored price, or a day without a bar); for
``same_day`` the target's first stored day (the return ending then is not stored); a
trading day missing inside a model's range of dates, unless ``allow_gaps``.

Gaps: with ``allow_gaps`` the missing days stay in the aligned frame, flagged ``gap`` with a
NaN prediction, so nothing is hidden. :meth:`AlignedForecasts.filled` puts the
no-information forecast there (return 0, probability 0.5), which every backtest rule turns
into no position; stored that way, those days count in the forecast tests as the zero
forecast would (a conservative choice: a day without a forecast earns no hit).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

import numpy as np
import pandas as pd

from lstm_madness.data.forecasts import FORECAST_TASKS, rejection
from lstm_madness.data.validation import Problem
from lstm_madness.errors import ConfigError, DataError

ALIGNMENTS: tuple[str, ...] = ("next_day", "same_day")
#: How many missing days a gap problem lists before "and N more".
_LISTED_DAYS = 5


def no_information_forecast(task: str) -> float:
    """The forecast that carries no information: return 0, or probability 0.5."""
    if task not in FORECAST_TASKS:
        raise ConfigError(f"task must be one of {', '.join(FORECAST_TASKS)}, got {task!r}")
    return 0.5 if task == "direction" else 0.0


@dataclass(frozen=True)
class AlignedForecasts:
    """Forecasts on decision dates of the target.

    Attributes
    ----------
    frame : pandas.DataFrame
        One row per (model, trading day from the model's first to its last decision date):
        ``model`` (str), ``date`` (datetime64[ns], decision date t: the prediction is for
        the return from close t to the next close), ``prediction`` (float64, NaN on gap
        days), ``line`` (Int64: the file's line, <NA> on gap days), ``gap`` (bool).
        Models in their file order, dates ascending.
    alignment : str
        ``next_day`` or ``same_day``: how the file's dates were read.
    """

    frame: pd.DataFrame
    alignment: str

    @property
    def models(self) -> tuple[str, ...]:
        return tuple(pd.unique(self.frame["model"]).tolist())

    @property
    def n_gaps(self) -> int:
        """Gap days over all models."""
        return int(self.frame["gap"].sum())

    def filled(self, task: str) -> pd.DataFrame:
        """``frame`` with gap days' prediction set to :func:`no_information_forecast`."""
        out = self.frame.copy()
        out.loc[out["gap"], "prediction"] = no_information_forecast(task)
        return out

    def predictions(self, model: str, task: str) -> pd.Series:
        """One model's filled predictions indexed by decision date."""
        if model not in self.models:
            raise DataError(f"no model {model!r}; models: {', '.join(self.models)}")
        f = self.filled(task)
        f = f.loc[f["model"] == model]
        return pd.Series(f["prediction"].to_numpy(), index=pd.DatetimeIndex(f["date"]), name=model)


def _days(values: Sequence[object] | np.ndarray | pd.Series | pd.Index) -> np.ndarray:
    return pd.to_datetime(np.asarray(values)).to_numpy().astype("datetime64[D]")


def _list(days: np.ndarray) -> str:
    shown = ", ".join(str(d) for d in days[:_LISTED_DAYS])
    more = len(days) - _LISTED_DAYS
    return shown + (f" and {more} more" if more > 0 else "")


def align_forecasts(
    forecasts: pd.DataFrame,
    calendar: Sequence[object] | np.ndarray | pd.Series | pd.DatetimeIndex,
    *,
    last_price: date | str | np.datetime64 | None = None,
    alignment: str = "next_day",
    allow_gaps: bool = False,
    file: str = "forecasts",
    target: str = "the target",
) -> AlignedForecasts:
    """Move forecasts onto decision dates of the target and check they can be judged.

    Parameters
    ----------
    forecasts : pandas.DataFrame
        The tidy frame of :class:`~lstm_madness.data.forecasts.ForecastFile`: ``line``,
        ``date``, ``model``, ``prediction``.
    calendar : array of dates
        Trading days of the target (dates of its stored bars), ascending.
    last_price : date, optional
        Date of the target's last stored price (default: the calendar's last day).
    alignment : {"next_day", "same_day"}
        How the file's dates are meant (see the module docstring).
    allow_gaps : bool
        Keep models with trading days missing inside their range (flagged ``gap``).
    file, target : str
        Names used in the messages.

    Returns
    -------
    AlignedForecasts

    Raises
    ------
    ValidationError
        Every rejected line (see the module docstring); nothing is returned in part.
    ConfigError
        Unknown ``alignment``.
    """
    if alignment not in ALIGNMENTS:
        raise ConfigError(f"alignment must be one of {', '.join(ALIGNMENTS)}, got {alignment!r}")
    cal = np.unique(_days(calendar))
    if len(cal) == 0:
        raise DataError(f"{target} has no stored prices")
    last = cal[-1] if last_price is None else _days([last_price])[0]
    if forecasts.duplicated(["model", "date"]).any():
        raise DataError(f"{file}: duplicate (date, model) rows; parse the file first")
    days = _days(forecasts["date"])
    lines = forecasts["line"].to_numpy()
    models = forecasts["model"].to_numpy(dtype=object)
    values = forecasts["prediction"].to_numpy()
    pos = np.searchsorted(cal, days)
    bad, problems = _rejected_dates(days, lines, pos, cal, last, alignment, file, target)
    decision_pos = pos - 1 if alignment == "same_day" else pos

    pieces: list[pd.DataFrame] = []
    ok = ~bad
    for model in pd.unique(models):
        mine = ok & (models == model)
        if not mine.any():
            continue
        p = decision_pos[mine]
        span = np.arange(p.min(), p.max() + 1)
        present = np.isin(span, p)
        if not present.all() and not allow_gaps:
            file_days = cal[span[~present] + (1 if alignment == "same_day" else 0)]
            first_line = int(lines[mine].min())
            problems.append(_gap_problem(model, file_days, first_line, file, target))
            continue
        at = p - span[0]
        pieces.append(_model_frame(model, cal[span], at, present, values[mine], lines[mine]))
    if problems:
        raise rejection(file, problems)
    frame = pd.concat(pieces, ignore_index=True)
    return AlignedForecasts(frame, alignment)


def _rejected_dates(
    days: np.ndarray,
    lines: np.ndarray,
    pos: np.ndarray,
    cal: np.ndarray,
    last: np.datetime64,
    alignment: str,
    file: str,
    target: str,
) -> tuple[np.ndarray, list[Problem]]:
    """Mask of the rows whose date cannot be judged, and a problem for each (the module
    docstring lists the rules); ``pos`` is each date's position in the calendar ``cal``."""
    first = cal[0]
    problems: list[Problem] = []

    def reject(mask: np.ndarray, reason: str) -> np.ndarray:
        for i in np.flatnonzero(mask):
            problems.append(Problem(file, int(lines[i]), "date", str(days[i]), reason))
        return mask

    in_cal = (pos < len(cal)) & (cal[np.minimum(pos, len(cal) - 1)] == days)
    bad = np.zeros(len(days), dtype=bool)
    if alignment == "next_day":
        bad |= reject(
            days >= last,
            f"its outcome is not stored yet: the return from this "
            f"close to the next needs a price of {target} after {last}, the last "
            "stored one",
        )
    else:
        bad |= reject(
            days > last,
            f"its outcome is not stored yet: the last stored price of {target} is of {last}",
        )
    bad |= reject(~bad & (days < first), f"before the first stored price of {target} ({first})")
    bad |= reject(~bad & ~in_cal, f"not a trading day of {target} (no stored price that day)")
    if alignment == "same_day":
        bad |= reject(
            ~bad & (days == first),
            f"the return ending on the first stored day "
            f"of {target} is not stored: same_day needs the trading day before it",
        )
    return bad, problems


def _gap_problem(
    model: str, file_days: np.ndarray, first_line: int, file: str, target: str
) -> Problem:
    """The problem of a model whose range of dates misses trading days (``file_days``, as
    the file would date them)."""
    return Problem(
        file,
        None,
        "date",
        str(file_days[0]),
        f"model {model!r} (from line {first_line}): {len(file_days)} trading day(s) of "
        f"{target} missing inside the file's range: {_list(file_days)} "
        "(allow gaps, e.g. --allow-gaps, for no position on those days)",
    )


def _model_frame(
    model: str,
    dates: np.ndarray,
    at: np.ndarray,
    present: np.ndarray,
    values: np.ndarray,
    lines: np.ndarray,
) -> pd.DataFrame:
    """One model's rows on every trading day of its range (``dates``): its predictions and
    lines at positions ``at`` (``present``), a NaN prediction flagged ``gap`` elsewhere."""
    prediction = np.full(len(dates), np.nan)
    line = pd.array(np.full(len(dates), pd.NA), dtype="Int64")
    prediction[at] = values
    line[at] = lines
    return pd.DataFrame(
        {
            "model": np.full(len(dates), model, dtype=object),
            "date": dates.astype("datetime64[ns]"),
            "prediction": prediction,
            "line": line,
            "gap": ~present,
        }
    )
