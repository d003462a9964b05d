"""``madness runs periods``: a stored universe run's figures by sub-period of its test days.

The run is loaded and evaluated as ``madness runs show`` evaluates it
(:func:`~lstm_madness.experiment.results.load_run`); its evaluated books are then split
by :func:`~lstm_madness.evaluation.periods.universe_period_figures`, so the ``all`` rows
are the run's own figures. Coverage reads the universe's membership as stored now
(:func:`~lstm_madness.experiment.universe_data.universe_intervals`: ``madness universe
add`` stores any symbol, with bars or without) and which members have a stored bar on
each test day. Known limit: a membership stored or replaced after the run was trained is
the one used.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa

from lstm_madness.data.membership import membership_mask
from lstm_madness.data.store import read_bars, window_days
from lstm_madness.errors import RunError
from lstm_madness.evaluation.periods import (
    MembershipCounts,
    PeriodFigures,
    universe_period_figures,
)
from lstm_madness.experiment.config import ExperimentConfig, from_dict
from lstm_madness.experiment.kinds import study_kind
from lstm_madness.experiment.results import load_run
from lstm_madness.experiment.universe_data import universe_intervals
from lstm_madness.options import CROSS_SECTION_KINDS
from lstm_madness.store.runs import get_run

__all__ = ["RunPeriods", "membership_counts", "run_periods"]


@dataclass(frozen=True, eq=False)
class RunPeriods:
    """A universe run's :class:`~lstm_madness.evaluation.periods.PeriodFigures`, with who
    it is and where its membership comes from (``stored``, ``bundled`` or ``list``)."""

    run_id: int
    target: str
    primary: str
    membership_source: str
    figures: PeriodFigures

    def to_frame(self) -> pd.DataFrame:
        return self.figures.to_frame()

    def to_json(self) -> dict[str, Any]:
        """``run_id``, ``target``, ``primary_model``, ``membership_source``, then
        :meth:`PeriodFigures.to_json` (``breaks``, ``settings``, ``labels``, ``rows``)."""
        return {
            "run_id": self.run_id,
            "target": self.target,
            "primary_model": self.primary,
            "membership_source": self.membership_source,
            **self.figures.to_json(),
        }

    def summary(self) -> str:
        head = (
            f"run {self.run_id} ({self.target}, model {self.primary}, membership "
            f"{self.membership_source}) by sub-period of its test days"
        )
        return f"{head}\n{self.figures.summary()}"


def membership_counts(
    engine: sa.Engine, config: ExperimentConfig, dates: Sequence[Any] | np.ndarray
) -> tuple[MembershipCounts, str]:
    """Members on each of ``dates`` by the universe's membership as stored now, those of
    them with a stored bar that day, and the membership's source. A listed symbol without
    any bar is a member without a price."""
    intervals, source = universe_intervals(engine, config)
    symbols = list(dict.fromkeys(intervals["symbol"]))
    days = pd.DatetimeIndex(pd.to_datetime(dates))
    member = membership_mask(intervals, days, symbols).to_numpy()  # (D, L)
    start, end = days[0].date(), days[-1].date()
    stored = window_days(engine, symbols, start, end)
    priced = np.zeros_like(member)
    for j, symbol in enumerate(symbols):
        if stored.get(symbol):
            priced[:, j] = days.isin(read_bars(engine, symbol, start, end)["date"])
    return MembershipCounts(member.sum(axis=1), (member & priced).sum(axis=1)), source


def run_periods(engine: sa.Engine, run_id: int, breaks: Sequence[Any] = ()) -> RunPeriods:
    """A succeeded universe run's figures per sub-period (``breaks``: ascending dates) and
    over all its test days; :class:`RunError` for another kind of run, or one that has not
    succeeded."""
    config = from_dict(get_run(engine, run_id).config)
    if config.target.kind not in CROSS_SECTION_KINDS:
        raise RunError(
            f"run {run_id} is a {study_kind(config).name} study (target.kind = "
            f"{config.target.kind!r}); sub-periods are for universe studies (target.kind "
            f"{' or '.join(CROSS_SECTION_KINDS)})"
        )
    result = load_run(engine, run_id)
    evaluation = result.evaluation
    counts, source = membership_counts(engine, config, evaluation.dates)
    figures = universe_period_figures(evaluation, breaks, counts)
    return RunPeriods(result.run_id, config.target_key, result.primary, source, figures)
