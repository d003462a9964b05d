"""The plan alone: data groups, shape groups, fold groups and training jobs."""

from lstm_madness.experiment.config import load_config
from lstm_madness.experiment.plan import (
    data_key,
    fold_groups,
    plan_runs,
    shape_chunks,
    shape_key,
    training_jobs,
)


def _config(*overrides: str):
    return load_config(None, list(overrides))


def test_configs_differing_only_in_baselines_do_not_share_a_data_group():
    """Regression: [baselines] was missing from the key, so the second config silently
    got the first config's baselines."""
    a = _config("baselines.models=['zero']")
    b = _config("baselines.models=['zero', 'ridge']")
    assert data_key(a) != data_key(b)
    plan = plan_runs([a, b])
    assert [g.members for g in plan.groups] == [(0,), (1,)]


def test_groups_by_data_then_shape():
    configs = [
        _config("train.seed=0"),
        _config("train.seed=1"),  # same shape: trained with 0
        _config("model.units=[8]"),  # same data, another shape
        _config("model.time_steps=7"),  # other windows: other data group
        _config("train.seed=5", "model.units=[8]"),
    ]
    plan = plan_runs(configs)
    assert [g.members for g in plan.groups] == [(0, 1, 2, 4), (3,)]
    assert plan.groups[0].shapes == ((0, 1), (2, 4))
    assert plan.n_configs == 5
    assert shape_key(configs[0]) == shape_key(configs[1]) != shape_key(configs[2])
    assert data_key(configs[0]) == data_key(configs[2]) != data_key(configs[3])


def test_shape_chunks_split_large_groups():
    configs = [_config(f"train.seed={s}") for s in range(5)] + [_config("model.units=[4]")]
    assert shape_chunks(configs) == [[0, 1, 2, 3, 4], [5]]
    assert shape_chunks(configs, max_group=2) == [[0, 1], [2, 3], [4], [5]]


def test_fold_groups_fill_the_memory_budget():
    config = _config("train.batch_memory_mb=1", "model.time_steps=10")
    # 4 bytes × 10 steps × 2 features × 1 config = 80 bytes per training row
    rows = 2**20 // 80  # rows of one MiB
    n_train = [rows // 2, rows // 2, rows // 2, rows * 2]
    assert fold_groups([config], n_train, n_features=2) == [[0, 1], [2], [3]]
    # two configs in the data group double the memory of each fold
    assert fold_groups([config, config], n_train, n_features=2) == [[0], [1], [2], [3]]
    off = _config("train.batch_folds=false")
    assert fold_groups([config, off], [10, 10], n_features=2) == [[0], [1]]


def test_training_jobs_skip_done_folds_and_respect_batch_models():
    configs = [_config("train.batch_models=3", f"train.seed={s}") for s in range(3)]
    jobs = training_jobs(configs, (0, 1, 2), [0, 1], done={1: {0}})
    assert jobs == [((0, 0), (0, 1), (1, 1)), ((2, 0), (2, 1))]
    assert training_jobs(configs, (0, 1), [0], done={0: {0}, 1: {0}}) == []
