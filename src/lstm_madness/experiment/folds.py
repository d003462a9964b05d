"""Out-of-sample folds over the target's trading days: hold-out and walk-forward.

Days are indexed 0..n-1 in date order; the sample of day i is labelled with the return
from close t_i to close t_{i+h} (days without a complete sample are skipped inside each
range). A model that predicts at the close of the first
test date t_s may only have seen labels known by then, i.e. samples with i + h <= s.
Every fold therefore ends its training range ``horizon - 1`` samples before its test
range (a purge of overlapping labels; none for one-day horizons).
"""

from __future__ import annotations

from dataclasses import dataclass

from lstm_madness.errors import ConfigError
from lstm_madness.experiment.config import SplitConfig

#: Fewest training days a planned fold may have, and fewest complete training samples a
#: fold of a study may keep (the data modules refuse a fold with fewer).
MIN_TRAIN_SAMPLES = 20


@dataclass(frozen=True)
class Fold:
    """Sample index ranges of one fold: ``train`` then, after the purge, ``test``."""

    index: int
    train: slice
    test: slice

    @property
    def n_train(self) -> int:
        return self.train.stop - self.train.start

    @property
    def n_test(self) -> int:
        return self.test.stop - self.test.start


def plan_folds(n_samples: int, split: SplitConfig, horizon: int = 1) -> list[Fold]:
    """Folds over ``n_samples`` time-ordered days.

    ``holdout``: the first ``train_fraction`` of days train, the rest test (one fold).
    ``walk_forward``: the first test block starts after ``initial_train_days`` days; each
    block has ``retrain_every_days`` days (the last may be shorter) and the model is
    refit before each block on all earlier samples (``expanding``) or on the last
    ``rolling_days`` of them (``rolling``).
    """
    purge = horizon - 1
    if split.scheme == "holdout":
        cut = int(n_samples * split.train_fraction)
        folds = [Fold(0, slice(0, max(cut - purge, 0)), slice(cut, n_samples))]
    else:
        folds = []
        start = split.initial_train_days
        while start < n_samples:
            stop = min(start + split.retrain_every_days, n_samples)
            train_stop = start - purge
            train_start = 0
            if split.window == "rolling":
                train_start = max(0, train_stop - split.rolling_days)
            folds.append(Fold(len(folds), slice(train_start, train_stop), slice(start, stop)))
            start = stop
    if not folds or folds[0].n_test < 1 or min(f.n_train for f in folds) < MIN_TRAIN_SAMPLES:
        raise ConfigError(
            f"split: {n_samples} samples are too few for scheme {split.scheme!r} "
            f"(train_fraction={split.train_fraction}, initial_train_days="
            f"{split.initial_train_days}); use more data or a smaller training window"
        )
    return folds
