"""What a trial set says about each of its members, and the deflated Sharpe of one.

:class:`TrialEvidence` (the members' net Sharpe ratios, their mean correlation, SPA,
StepM and PBO on their common dates) is computed once per trial set
(:func:`trial_evidence`); every member's evaluation reads it. :func:`own_trial_set` is the
evidence of a run judged alone (with the peers it is given), :func:`deflated_sharpes` the
DSR of a run at the trial set's N and effective N.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lstm_madness.evaluation.performance import sharpe_ratio
from lstm_madness.evaluation.settings import EvaluationSettings
from lstm_madness.evaluation.significance import (
    DSRResult,
    deflated_sharpe_ratio,
    effective_trials,
    mean_pairwise_correlation,
)
from lstm_madness.evaluation.snooping import (
    PBOResult,
    SPAResult,
    StepMResult,
    probability_of_backtest_overfitting,
    spa_stepm,
)

__all__ = ["TrialEvidence", "deflated_sharpes", "own_trial_set", "trial_evidence"]


@dataclass(frozen=True, eq=False)
class TrialEvidence:
    """What a trial set says about each of its members, computed once per trial set.

    Attributes
    ----------
    trials : int
        ``N``: distinct forecasts tried, the judged run included (also runs still in
        progress and trials declared by imported forecasts).
    sharpes : ndarray
        Annualized net Sharpe ratios of every distinct member with stored predictions, the
        judged run included, all backtested under the judged run's rule and costs, each
        over its own test dates. Their variance is the DSR's ``V``.
    mean_correlation : float
        Mean pairwise correlation of the members' daily net returns on their common dates,
        clipped to [0, 1].
    spa, stepm, pbo : SPAResult, StepMResult, PBOResult
        Hansen's SPA test of every distinct member against buy-and-hold (does *some*
        member beat it?), Romano–Wolf StepM on the same draws (*which* members beat it),
        and the PBO across the members, on the common dates.
    n_days : int
        Common dates.
    duplicates : int
        Members merged into an earlier member with identical primary predictions (they
        count once: not in ``N``, ``V``, SPA, StepM or PBO).
    """

    trials: int
    sharpes: np.ndarray
    mean_correlation: float
    spa: SPAResult
    pbo: PBOResult
    n_days: int
    stepm: StepMResult
    duplicates: int = 0

    @property
    def n_members(self) -> int:
        return int(self.sharpes.size)

    @property
    def trials_effective(self) -> float:
        return effective_trials(self.trials, self.mean_correlation)


def trial_evidence(
    net_returns: np.ndarray,
    benchmark_returns: np.ndarray,
    *,
    sharpes: np.ndarray,
    trials: int,
    reps: int = 1000,
    block: float | None = None,
    seed: int | None = 0,
    fwer: float = 0.05,
    duplicates: int = 0,
) -> TrialEvidence:
    """:class:`TrialEvidence` from the members' daily net returns on their common dates.

    Parameters
    ----------
    net_returns : ndarray of shape (n_days, n_members)
        Daily net returns of every member with predictions, on common dates (no NaN).
    benchmark_returns : ndarray of shape (n_days,)
        Buy-and-hold net returns on the same dates.
    sharpes : ndarray of shape (n_members,)
        Annualized net Sharpe ratio of each member (over its own dates).
    trials : int
        ``N``; never taken below ``n_members``.
    fwer : float
        StepM's family-wise error rate.
    duplicates : int
        Members merged away before these columns were formed (recorded, not used).
    """
    m = np.asarray(net_returns, dtype=np.float64)
    m = m[:, None] if m.ndim == 1 else m
    sh = np.asarray(sharpes, dtype=np.float64).ravel()
    spa, stepm = spa_stepm(m, benchmark_returns, fwer=fwer, reps=reps, block=block, seed=seed)
    pbo = probability_of_backtest_overfitting(m, seed=seed)
    return TrialEvidence(
        max(int(trials), m.shape[1], sh.size),
        sh,
        mean_pairwise_correlation(m),
        spa,
        pbo,
        int(m.shape[0]),
        stepm,
        int(duplicates),
    )


def deflated_sharpes(
    net: np.ndarray, trial_set: TrialEvidence, settings: EvaluationSettings
) -> tuple[DSRResult, DSRResult, DSRResult]:
    """The DSR of daily net returns ``net`` at the trial set's N and at its effective N,
    and the one the verdict uses (``settings.trials_mode``): ``(dsr, dsr_effective,
    judged)``."""
    dsr = deflated_sharpe_ratio(
        net, trials=trial_set.trials, trial_sharpes=trial_set.sharpes, risk_free=settings.risk_free
    )
    dsr_eff = deflated_sharpe_ratio(
        net,
        trials=trial_set.trials_effective,
        trial_sharpes=trial_set.sharpes,
        risk_free=settings.risk_free,
    )
    return dsr, dsr_eff, dsr_eff if settings.trials_mode == "effective" else dsr


def own_trial_set(
    net: np.ndarray,
    benchmark: np.ndarray,
    settings: EvaluationSettings,
    *,
    trials: int = 1,
    trial_sharpes: np.ndarray | None = None,
    peers: np.ndarray | None = None,
) -> TrialEvidence:
    """The evidence of a run judged without its trial set: its daily net returns ``net``
    (column 0, its position in the evidence) and its ``peers``' on the same dates, against
    the buy-and-hold net returns ``benchmark``. ``trial_sharpes`` (all trials' annualized
    net Sharpe ratios, this run's included) give ``V``; else the columns' own."""
    s = settings
    candidates = net[:, None] if peers is None else np.column_stack([net, peers])
    sharpes = (
        np.asarray(trial_sharpes, dtype=np.float64).ravel()
        if trial_sharpes is not None
        else np.array([sharpe_ratio(c, s.risk_free) for c in candidates.T])
    )
    return trial_evidence(
        candidates,
        benchmark,
        sharpes=sharpes,
        trials=trials,
        fwer=s.thresholds.fwer,
        reps=s.bootstrap_reps,
        block=s.block_length,
        seed=s.seed,
    )
