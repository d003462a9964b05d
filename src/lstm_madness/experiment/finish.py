"""Finishing trained runs: evaluated in one pass, marked ``succeeded`` with their
summaries, and those summaries cached as the live ones."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Mapping, Sequence
from typing import Any

import sqlalchemy as sa

from lstm_madness.store import lifecycle


def finish_runs(
    engine: sa.Engine,
    run_ids: Sequence[int],
    *,
    timings: Mapping[int, dict[str, Any]],
    trials: int | None = None,
    started: float | None = None,
    finished: dict[int, Any] | None = None,
) -> list[dict[str, Any]]:
    """Evaluate trained runs in one pass and mark them ``succeeded`` with their summaries.

    ``timings[run_id]`` is each run's timings dict; its ``evaluate_s`` gets the run's share
    of the pass and ``total_s`` runs until the run is finished when ``started`` (a
    ``time.perf_counter()`` value) is given (``total_scope`` "command": the whole batch,
    from its start to this run's finish). Returns the summaries in the order of
    ``run_ids``; ``finished``, if given, receives each run's finished
    :class:`~lstm_madness.experiment.summary.RunEvaluation` (with that summary) by id.
    """
    from lstm_madness.experiment.summary import evaluate_runs

    ids = [int(i) for i in run_ids]
    start = time.perf_counter()
    evaluations = evaluate_runs(engine, ids, trials=trials, timings=timings)
    share = (time.perf_counter() - start) / max(1, len(ids))
    summaries = []
    for run_id in ids:
        summary = dict(evaluations[run_id].summary)
        times = dict(summary.get("timings") or {})
        times["evaluate_s"] = share
        if started is not None:
            times["total_s"] = time.perf_counter() - started
            times["total_scope"] = "command"
        summary["timings"] = times
        summary["status"] = "succeeded"
        summaries.append(summary)
    lifecycle.finish_with_summaries(engine, {s["run_id"]: s for s in summaries})
    if finished is not None:
        for summary in summaries:
            run_id = int(summary["run_id"])
            run = dataclasses.replace(evaluations[run_id].run, status="succeeded", summary=summary)
            finished[run_id] = dataclasses.replace(evaluations[run_id], summary=summary, run=run)
    if trials is None:
        _prime_summary_cache(engine, summaries, evaluations)
    return summaries


def _prime_summary_cache(
    engine: sa.Engine, summaries: Sequence[Mapping[str, Any]], evaluations: Mapping[int, Any]
) -> None:
    """Cache each finished run's summary as the live one, so the first ``runs show`` after
    a run or a sweep is a cache read. Keyed by the trial set it was evaluated against (not
    the one read now: concurrent runs may have joined it since), so a reader whose trial
    set differs never gets it; a run that counted pending sweep members is left for ``runs
    show`` to evaluate.
    """
    from lstm_madness.experiment import cache

    for s in summaries:
        if (s.get("significance") or {}).get("trials_pending") != 0:
            continue
        evaluated = evaluations[int(s["run_id"])]
        name = cache.summary_key(engine, evaluated.run, evaluated.trial_set, None, "succeeded")
        cache.write("summaries", name, s)
