"""Looking at a stored run: :func:`show_run`, the one path behind ``madness runs show``,
:func:`~lstm_madness.experiment.results.load_run` (``lstm_madness.load_run``) and
``madness report``: stale runs marked first, then the cached live summary or an
evaluation now.

Light at import (SQLAlchemy at most), so that a cached ``runs show`` loads no statistics
stack; the evaluation is imported only when a summary must be computed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import sqlalchemy as sa

    from lstm_madness.experiment.summary import RunEvaluation
    from lstm_madness.store.runs import Run

__all__ = ["ShownRun", "show_run"]


@dataclass(frozen=True)
class ShownRun:
    """A stored run as :func:`show_run` found it.

    ``summary`` is its live summary (the dict of ``madness runs show --json``), None when
    the run has not succeeded (:meth:`status_line` says why). ``evaluations`` holds what was
    evaluated now, by run id (the run, and with ``seeds`` its other succeeded seeds, in id
    order); empty when the summary was read from the cache.
    """

    run: Run
    summary: dict[str, Any] | None = None
    evaluations: Mapping[int, RunEvaluation] = field(default_factory=dict)

    @property
    def evaluation(self) -> RunEvaluation | None:
        """The run's evaluation when it was evaluated now."""
        return self.evaluations.get(self.run.id)

    def status_line(self) -> str:
        """``run 7 is failed: <reason>``: what a run without a summary is."""
        run = self.run
        reason = {
            "deleted": "deleted (a tombstone: its test predictions still count as a trial)",
            "running": "still running",
        }.get(run.status, run.status)
        return f"run {run.id} is {reason}" + (f": {run.error}" if run.error else "")


def show_run(
    engine: sa.Engine,
    run_id: int,
    *,
    trials: int | None = None,
    live: bool = False,
    seeds: bool = False,
) -> ShownRun:
    """A stored run judged against the ledger as it is now: what ``madness runs show``
    shows, also behind :func:`~lstm_madness.experiment.results.load_run` and
    ``madness report``.

    Runs whose process died are marked failed first
    (:func:`~lstm_madness.store.lifecycle.mark_stale_runs`: it writes only when one is
    stale, so a store without any is only read). A run that has not succeeded has no
    summary. A succeeded run's live summary is read from the cache while its trial set, its
    pending sweep members and ``trials`` are unchanged; otherwise, or with ``live`` (the
    caller needs the daily series, not only the summary), it is evaluated now and cached.
    ``seeds`` (with ``live``): the run's other succeeded seeds on its test period are
    evaluated in the same pass (:func:`~lstm_madness.store.runs.seed_family`). Nothing else
    is written.
    """
    from lstm_madness.experiment import cache
    from lstm_madness.store.lifecycle import mark_stale_runs
    from lstm_madness.store.runs import get_run, seed_family

    mark_stale_runs(engine)
    run = get_run(engine, run_id)
    if run.status != "succeeded":
        return ShownRun(run)
    if not live:
        summary = cache.read("summaries", cache.summary_name(engine, run, trials))
        if summary is not None:
            return ShownRun(run, summary)
    from lstm_madness.experiment.summary import evaluate_runs

    ids = [run.id]
    if live and seeds:
        family = [r.id for r in seed_family(engine, run)]
        ids = family if len(family) > 1 else ids
    evaluations = evaluate_runs(engine, ids, trials=trials)
    evaluated = evaluations[run.id]
    summary = evaluated.summary
    # keyed by the trial set it was judged against, which may have grown since the lookup
    cache.write("summaries", cache.summary_key(engine, run, evaluated.trial_set, trials), summary)
    return ShownRun(run, summary, evaluations)
