"""Absurd input refused before anything is registered (issue 22, defects 5 and 7):
``model.time_steps`` against the data in the window, the memory a config implies against
the memory available; the message names the key, the value and what is allowed, and the
ledger stays empty. On both backends."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from lstm_madness.data.db import make_engine
from lstm_madness.errors import ConfigError, DataError
from lstm_madness.experiment import limits
from lstm_madness.experiment.config import load_config
from lstm_madness.experiment.runner import check_runs, run_experiment
from lstm_madness.store.runs import list_runs
from lstm_madness.sweep import SweepSpace, run_sweep

TINY = ["model.units=[4]", "train.epochs=1", "evaluation.bootstrap_reps=10"]


@pytest.fixture
def engine(db_url, write_returns, ar1_returns):
    """400 business days of SYN from 2001-01-02 (to 2002-07-15); two more symbols."""
    engine = make_engine(db_url)
    for k, symbol in enumerate(("SYN", "AAA", "BBB")):
        write_returns(engine, symbol, ar1_returns(400, phi=0.1, seed=k))
    yield engine
    engine.dispose()


def _sweeps(engine: sa.Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(sa.text("select count(*) from sweeps")).scalar() or 0)


def test_time_steps_longer_than_the_data_allows_is_refused_with_the_range(engine):
    """400 days, a hold-out of 0.67: the fold trains on the first 268, and the first
    sample needs time_steps days with a return before it, 20 samples a fold: time_steps
    1 to 248. Before: 'no complete samples for SYN between None and None: ingest its
    prices first' (or a failed run, from 249 to 398)."""
    for steps in (249, 300, 5000):
        config = load_config(None, [*TINY, "data.target=SYN", f"model.time_steps={steps}"])
        with pytest.raises(DataError) as refused:
            run_experiment(engine, config)
        message = str(refused.value)
        assert f"model.time_steps = {steps}" in message
        assert "SYN has 400 trading days from 2001-01-02 to 2002-07-15" in message
        assert "allowed 1 to 248" in message and "ingest" not in message
    check_runs(engine, [load_config(None, ["data.target=SYN", "model.time_steps=248"])])
    walk = ["split.scheme=walk_forward", "split.initial_train_days=100"]
    config = load_config(None, [*TINY, *walk, "data.target=SYN", "model.time_steps=90"])
    with pytest.raises(DataError, match=r"first fold trains on the first 100; .* 1 to 80 "):
        check_runs(engine, [config])
    assert list_runs(engine).empty


def test_a_universes_time_steps_are_checked_on_its_calendar(engine):
    members = ["data.target=['SYN','AAA','BBB']", "target.kind=cross_section"]
    config = load_config(None, [*members, "backtest.rule=long_short", "model.time_steps=270"])
    with pytest.raises(DataError, match=r"= 270 .* calendar of symbols:\w+ has 400 .* 1 to 261"):
        check_runs(engine, [config])  # 7 dates × 3 members make the 20 samples of a fold


def test_a_config_that_needs_more_memory_than_available_is_refused(engine, monkeypatch):
    """The estimate's largest terms, with their keys, against the memory available;
    nothing registered, neither a run nor a sweep."""
    config = load_config(
        None, [*TINY, "data.target=SYN", "data.inputs=['AAA','BBB']", "model.time_steps=200"]
    )
    check_runs(engine, [config])  # fits this machine
    monkeypatch.setattr(limits, "available_memory", lambda: 2**20)
    with pytest.raises(ConfigError) as refused:
        run_experiment(engine, config)
    message = str(refused.value)
    assert "needs about 3 MiB of memory and 1 MiB is available" in message
    assert "ridge baseline (68 samples × 600 columns)" in message
    assert "(baselines.models, model.time_steps, data.inputs, data.features)" in message
    assert list_runs(engine).empty
    # a sweep whose second point's network is too large: refused before its sweep row
    monkeypatch.setattr(limits, "available_memory", lambda: 2**30)
    base = load_config(None, [*TINY, "data.target=SYN", "model.time_steps=100"])
    space = SweepSpace.parse(["model.units=[[4],[4096,4096]]", "train.batch_size=[64]"])
    url = engine.url.render_as_string(hide_password=False)
    with pytest.raises(ConfigError, match=r"network activations .*train\.batch_size"):
        run_sweep(url, base, space)
    assert list_runs(engine).empty and _sweeps(engine) == 0


def test_the_memory_estimate_of_the_defects_config():
    """250 steps × 31 symbols × 4 features, 3,700 training and 1,800 test samples: the
    dense windows, the ridge's dual fit and the network; well under the 8 GB at which
    the primal fit died."""
    from lstm_madness.models.baselines import fit_memory

    config = load_config(None, ["model.time_steps=250", "model.units=[64]"])
    n_train, n_test, n_features = 3700, 1800, 124
    dim = 250 * n_features
    terms = limits.memory_terms(
        config,
        n_train=n_train,
        n_test=n_test,
        n_features=n_features,
        dense_windows=True,
        baselines={"ridge": fit_memory("ridge", n_train, dim), "zero": 0},
        width_keys="data.inputs, data.features",
    )
    sizes = {what.split(" (")[0]: size for what, _, size in terms}
    assert sizes["dense windows"] == 4 * (n_train + n_test) * dim
    assert sizes["ridge baseline"] == 8 * 2 * (n_train * dim + n_train**2)
    assert sizes["network activations"] == 4 * 10 * 32 * 250 * 64
    assert "zero baseline" not in sizes
    assert 2 * 2**30 < sum(sizes.values()) < 3 * 2**30 < 8 * dim * dim
    assert [size for _, _, size in terms] == sorted(sizes.values(), reverse=True)


def test_available_memory_reads_the_machine():
    available = limits.available_memory()
    assert available is None or 0 < available < 2**50


@pytest.mark.parametrize(
    ("overrides", "error", "message"),
    [
        (["data.target=ZZZZ"], DataError, "unknown symbol.*ZZZZ"),
        (["data.target='x; DROP TABLE runs;--'"], DataError, "unknown symbol"),
        (
            ["data.start=2002-01-01", "data.end=2001-06-01"],
            ConfigError,
            "data.end = 2001-06-01 is before data.start = 2002-01-01",
        ),
        (["train.seed=-5"], ConfigError, "train.seed = -5 is out of range"),
    ],
)
def test_refused_configs_leave_no_run(engine, overrides, error, message):
    """Defect 7: an unknown or SQL-text target, start after end, a negative seed: each
    refused before its run is registered (before: start > end left a failed run)."""
    with pytest.raises(error, match=message):
        run_experiment(engine, load_config(None, [*TINY, "data.target=SYN", *overrides]))
    assert list_runs(engine).empty


@pytest.mark.parametrize(
    ("axis", "message"),
    [
        ("data.target=['SYN','ZZZZ']", "unknown symbol.*ZZZZ"),
        ("model.time_steps=[2,5000]", "model.time_steps = 5000 .* allowed 1 to 248"),
        ("data.end=[2002-01-01,2000-01-01]", "data.end = 2000-01-01 is before"),
    ],
)
def test_a_bad_grid_leaves_no_sweep_row(engine, axis, message):
    """Every point is checked before the sweep is registered: no orphan sweep row, no
    queued or failed run (before: a grid point too long for the data left both)."""
    url = engine.url.render_as_string(hide_password=False)
    base = load_config(None, [*TINY, "data.target=SYN", "data.start=2001-01-01"])
    with pytest.raises((ConfigError, DataError), match=message):
        run_sweep(url, base, SweepSpace.parse([axis], seeds=2))
    assert list_runs(engine).empty and _sweeps(engine) == 0
