import pytest

from lstm_madness.errors import ConfigError
from lstm_madness.experiment.config import SplitConfig
from lstm_madness.experiment.folds import plan_folds


def test_holdout_split_and_purge():
    (fold,) = plan_folds(100, SplitConfig(train_fraction=0.67), horizon=1)
    assert fold.train == slice(0, 67) and fold.test == slice(67, 100)
    (fold,) = plan_folds(100, SplitConfig(train_fraction=0.67), horizon=5)
    # labels of samples 63..66 reach into the test period: purged
    assert fold.train == slice(0, 63) and fold.test == slice(67, 100)


def test_walk_forward_expanding_covers_every_test_sample_once():
    split = SplitConfig(scheme="walk_forward", initial_train_days=100, retrain_every_days=30)
    folds = plan_folds(205, split)
    assert [f.test for f in folds] == [
        slice(100, 130),
        slice(130, 160),
        slice(160, 190),
        slice(190, 205),
    ]
    assert all(f.train == slice(0, f.test.start) for f in folds)


def test_walk_forward_rolling_window():
    split = SplitConfig(
        scheme="walk_forward",
        initial_train_days=100,
        retrain_every_days=50,
        window="rolling",
        rolling_days=60,
    )
    folds = plan_folds(250, split, horizon=2)
    for f in folds:
        assert f.train.stop == f.test.start - 1
        assert f.n_train == min(60, f.train.stop)
        assert f.train.stop + 2 - 1 <= f.test.start  # last label known at the first test date


def test_too_few_samples():
    with pytest.raises(ConfigError, match="too few"):
        plan_folds(50, SplitConfig(scheme="walk_forward", initial_train_days=100))
