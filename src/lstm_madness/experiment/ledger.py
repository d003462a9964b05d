"""What a trial set says together: the evidence of its members.

Which runs count as the trials of a run (every succeeded or deleted run on the same target
and test period, plus the runs evaluated with it) is the ledger's
:class:`~lstm_madness.store.trials.TrialSet`. Its evidence
(:class:`~lstm_madness.evaluation.study.TrialEvidence`: the members' net Sharpe ratios,
their mean correlation, SPA, StepM and PBO) is computed once per trial set and backtest
settings from one matrix of daily net returns, every member backtested under the judged
run's rule and costs from its stored predictions.

*One trial per distinct forecast*: members whose primary predictions are identical (same
target kind, same dates -- and members for a universe study -- and the same values to the last
bit) are one trial. The earliest member (lowest id) stands for the group; the others are
merged into it (:attr:`MemberEvidence.aliases`) and count neither in ``N`` nor in ``V``,
SPA, StepM or PBO: a repeated judgement, a file re-stamped with another alignment, or an
identical re-run of a config and seed.

Evidence is cached on disk (``$MADNESS_CACHE_DIR``, default ``~/.cache/lstm-madness``)
under a key made of the store, the members (id, config hash, start time) and the
settings, so it is recomputed exactly when the trial set changes. The cache holds derived
numbers only; deleting it is always safe.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, MutableMapping
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa

from lstm_madness.errors import DataError
from lstm_madness.evaluation.backtest import sharpe_ratio
from lstm_madness.evaluation.snooping import PBOResult, SPAResult, StepMResult
from lstm_madness.evaluation.study import EvaluationSettings, TrialEvidence, trial_evidence
from lstm_madness.experiment import cache
from lstm_madness.experiment.kinds import StudyKind, study_kind
from lstm_madness.jsonable import jsonable
from lstm_madness.store.predictions import load_primary_predictions
from lstm_madness.store.runs import load_configs
from lstm_madness.store.trials import TrialSet

#: Bootstrap seed of every evaluation: each run's confidence intervals and its trial set's
#: SPA and PBO. The same for every run, so the runs of a pass share the bootstrap's draws
#: and anyone can recompute a run's numbers from its stored predictions alone.
EVIDENCE_SEED = 0

__all__ = [
    "EVIDENCE_SEED",
    "MemberEvidence",
    "loaded_primary_rows",
    "trial_evidence_of",
]


@dataclass(frozen=True, eq=False)
class MemberEvidence:
    """A trial set's evidence with the member ids of its columns.

    ``ids`` are the distinct members with predictions, in id order (one column each of the
    evidence's matrices); ``aliases`` maps every merged duplicate to the earlier member
    standing for it.
    """

    evidence: TrialEvidence
    ids: list[int]
    aliases: dict[int, int]

    def column(self, run_id: int) -> int | None:
        """The column standing for ``run_id`` (its own, or its earlier twin's); None when
        the run has no predictions in the trial set."""
        rid = self.aliases.get(int(run_id), int(run_id))
        return self._columns.get(rid)

    @cached_property
    def _columns(self) -> dict[int, int]:
        return {i: k for k, i in enumerate(self.ids)}


def distinct_members(frame: pd.DataFrame, kinds: Mapping[int, str]) -> dict[int, int]:
    """Merged duplicates of a trial set's primary predictions: member id -> the earliest
    member with the identical forecast. Members that stand for themselves are not in it.

    Two members' forecasts are identical when their target kind (``target.kind``: what the
    values forecast), their dates (and members, for a
    universe study) and their values agree to the last bit, compared in (date, symbol)
    order through a digest of those bytes.
    """
    if frame.empty:
        return {}
    dates = pd.DatetimeIndex(frame["date"]).asi8
    values = np.ascontiguousarray(frame["y_pred"].to_numpy(dtype=np.float64))
    symbols = frame["symbol"].to_numpy().astype(str) if "symbol" in frame else None
    first: dict[bytes, int] = {}
    aliases: dict[int, int] = {}
    for run_id, idx in sorted(frame.groupby("run_id", sort=False).indices.items()):
        rid = int(run_id)
        idx = idx[np.lexsort((symbols[idx], dates[idx]))] if symbols is not None else idx
        if symbols is None and np.any(np.diff(dates[idx]) < 0):
            idx = idx[np.argsort(dates[idx], kind="stable")]
        h = hashlib.blake2b(kinds[rid].encode(), digest_size=20)
        h.update(dates[idx].tobytes())
        if symbols is not None:
            h.update("\x1f".join(symbols[idx]).encode())
        h.update(values[idx].tobytes())
        digest = h.digest()
        if digest in first:
            aliases[rid] = first[digest]
        else:
            first[digest] = rid
    return aliases


def members_kind(kinds: Mapping[int, str]) -> StudyKind:
    """The study kind of a trial set's members (``kinds``: each member's ``target.kind``):
    one target, so one kind (timing when there is no member)."""
    found = {study_kind(k).name: study_kind(k) for k in kinds.values()}
    if len(found) > 1:
        raise DataError(f"a trial set mixes study kinds: {', '.join(sorted(found))}")
    return next(iter(found.values()), study_kind("return"))


def _settings_key(settings: EvaluationSettings) -> list[Any]:
    s = settings
    return [
        s.rule,
        s.threshold,
        s.cap,
        s.scale,
        s.cost_bps,
        s.slippage_bps,
        s.risk_free,
        s.bootstrap_reps,
        s.block_length,
        s.top_k,
        s.short_borrow_bps,
        s.thresholds.fwer,
    ]


def _cache_key(engine: sa.Engine, ts: TrialSet, settings: EvaluationSettings) -> str:
    return cache.key(engine, "trials", ts.fingerprint(), _settings_key(settings))


def _encode(found: MemberEvidence) -> dict[str, Any]:
    # repr-exact floats: json keeps every digit, so a cached number equals a fresh one
    ev, ids = found.evidence, found.ids
    pbo = ev.pbo.to_dict()
    return {
        "ids": ids,
        "aliases": [[k, v] for k, v in found.aliases.items()],
        "stepm": ev.stepm.to_dict(),
        "sharpes": [float(x) for x in ev.sharpes],
        "mean_correlation": ev.mean_correlation,
        "n_days": ev.n_days,
        "spa": {k: float(v) if isinstance(v, float) else v for k, v in ev.spa.to_dict().items()},
        "pbo": {k: (None if isinstance(v, float) and v != v else v) for k, v in pbo.items()},
    }


def _decode(d: Mapping[str, Any]) -> MemberEvidence:
    pbo = dict(d["pbo"])
    for k in ("pbo", "degradation"):
        pbo[k] = float("nan") if pbo.get(k) is None else float(pbo[k])
    stepm = dict(d["stepm"])
    stepm["superior"] = tuple(int(i) for i in stepm["superior"])
    aliases = {int(k): int(v) for k, v in d["aliases"]}
    evidence = TrialEvidence(
        len(d["ids"]),
        np.asarray(d["sharpes"], dtype=np.float64),
        float(d["mean_correlation"]),
        SPAResult(**d["spa"]),
        PBOResult(**pbo),
        int(d["n_days"]),
        StepMResult(**stepm),
        len(aliases),
    )
    return MemberEvidence(evidence, [int(i) for i in d["ids"]], aliases)


def _compute(
    engine: sa.Engine, ts: TrialSet, settings: EvaluationSettings, frames: MutableMapping
) -> MemberEvidence:
    key = (ts.target, ts.test_start, ts.test_end, tuple(ts.ids))
    if key not in frames:
        frame = load_primary_predictions(
            engine,
            target=ts.target,
            test_start=ts.test_start,
            test_end=ts.test_end,
            members=ts.members,
        )
        configs = load_configs(engine, ts.ids)
        kinds = {i: str(c.get("target", {}).get("kind", "return")) for i, c in configs.items()}
        tasks = {
            i: "classification" if k == "direction" else "regression" for i, k in kinds.items()
        }
        frames[key] = (frame, tasks, kinds)
    frame, tasks, kinds = frames[key]
    aliases = distinct_members(frame, kinds)
    distinct = frame[~frame["run_id"].isin(list(aliases))] if aliases else frame
    kind = members_kind(kinds)
    # each member's primary model backtested under ``settings`` over its own dates
    nets = kind.member_net_returns(distinct, tasks, settings)
    ids = [i for i in ts.ids if i in nets]
    if not ids:
        raise DataError(f"no stored test predictions in the trial set on {ts.target}")
    wide = pd.DataFrame({i: nets[i] for i in ids}).sort_index()
    common = wide.dropna(how="any")
    if len(common) < 3:
        raise DataError(
            f"the {len(ids)} runs on {ts.target} {ts.test_start} → {ts.test_end} share only "
            f"{len(common)} test dates"
        )
    # buy-and-hold (one asset) or the equal-weight book of the first member's members
    bench = kind.benchmark_net_returns(frame, ids[0], common.index, settings)
    sharpes = np.array([sharpe_ratio(nets[i].to_numpy(), settings.risk_free) for i in ids])
    evidence = trial_evidence(
        common.to_numpy(),
        bench,
        sharpes=sharpes,
        trials=len(ids),
        reps=settings.bootstrap_reps,
        block=settings.block_length,
        seed=EVIDENCE_SEED,
        fwer=settings.thresholds.fwer,
        duplicates=len(aliases),
    )
    return MemberEvidence(evidence, ids, aliases)


def loaded_primary_rows(memo: Mapping[Any, Any], run_ids: Iterable[int]) -> dict[int, pd.DataFrame]:
    """The primary test predictions of the members ``run_ids`` that
    :func:`trial_evidence_of` read into ``memo`` (columns of
    :func:`~lstm_madness.store.predictions.load_predictions`), by run id, so that
    evaluating them does not read them again. Empty when the evidence came from the disk
    cache."""
    wanted = {int(i) for i in run_ids}
    out: dict[int, pd.DataFrame] = {}
    for frame, *_tasks in memo.get("frames", {}).values():
        mine = frame[frame["run_id"].isin(wanted)]
        for run_id, rows in mine.groupby("run_id", sort=False):
            out.setdefault(int(run_id), rows)
    return out


def trial_evidence_of(
    engine: sa.Engine,
    ts: TrialSet,
    settings: EvaluationSettings,
    memo: MutableMapping[Any, Any] | None = None,
) -> MemberEvidence:
    """Evidence of a trial set under ``settings``, the member ids of its columns and the
    merged duplicates.

    ``trials`` of the evidence is the number of distinct members with predictions; callers
    add the pending runs or apply an override. ``memo`` shares loaded predictions and
    results within one evaluation pass; the disk cache shares them between commands.
    """
    memo = {} if memo is None else memo
    key = _cache_key(engine, ts, settings)
    if key in memo:
        return memo[key]
    cached = cache.read("trials", key)
    if cached is not None and "stepm" in cached:  # entries from before StepM are recomputed
        result = _decode(cached)
    else:
        result = _compute(engine, ts, settings, memo.setdefault("frames", {}))
        cache.write("trials", key, jsonable(_encode(result)))
    memo[key] = result
    return result
