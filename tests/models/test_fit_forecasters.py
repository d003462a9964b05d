"""``fit_forecasters`` fits compiled estimators concurrently in threads, each exactly as alone.

Bit for bit: parameters, histories and predictions are compared with ``np.array_equal``
(not a tolerance) against each estimator fitted alone in the calling thread.
"""

from __future__ import annotations

import threading

import numpy as np
import pytest

from lstm_madness.errors import ConfigError, DataError
from lstm_madness.models.lstm import LSTMForecaster, fit_forecasters
from lstm_madness.models.network import flat_parameters

COMMON = dict(epochs=3, batch_size=16, patience=2, trainer="compiled")
#: LSTM and GRU, stacked, dropout (numba's per-thread generator), different seeds and data
SPECS = [
    dict(units=(8,), cell="lstm", seed=0),
    dict(units=(8,), cell="lstm", seed=1),
    dict(units=(8, 4), cell="lstm", dropout=0.3, seed=2),
    dict(units=(6,), cell="gru", seed=3),
    dict(units=(4,), cell="gru", dropout=0.2, seed=4, patience=0),
]


def _data(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, 4, 2)).astype(np.float32)
    return X, 0.5 * X[:, -1, 0] - 0.3 * X[:, 0, 1] + 0.2 * rng.standard_normal(n)


def _assert_identical(got: LSTMForecaster, alone: LSTMForecaster, X: np.ndarray) -> None:
    assert got.trainer_ == alone.trainer_ == "compiled"
    assert got.history_ == alone.history_
    assert np.array_equal(flat_parameters(got.net_), flat_parameters(alone.net_))
    assert np.array_equal(got.predict(X), alone.predict(X))
    assert (got.epochs_run_, got.best_epoch_, got.best_val_loss_) == (
        alone.epochs_run_,
        alone.best_epoch_,
        alone.best_val_loss_,
    )
    assert (got.n_train_, got.n_val_, got.y_mean_, got.y_scale_) == (
        alone.n_train_,
        alone.n_val_,
        alone.y_mean_,
        alone.y_scale_,
    )


@pytest.mark.parametrize("n_jobs", [2, 3, 1])
def test_threaded_compiled_fits_equal_fits_alone(n_jobs):
    data = [_data(200 + 40 * i, seed=i) for i in range(len(SPECS))]
    calls: list[tuple[int, int, int]] = []
    together = fit_forecasters(
        [LSTMForecaster(**{**COMMON, **spec}) for spec in SPECS],
        data,
        progress=lambda epoch, active: calls.append((epoch, active, threading.get_ident())),
        n_jobs=n_jobs,
    )
    for spec, est, (X, y) in zip(SPECS, together, data, strict=True):
        alone = LSTMForecaster(**{**COMMON, **spec}).fit(X, y)
        _assert_identical(est, alone, X)
        assert est.progress is None  # the group's callback was not left behind
    # every epoch of every fit was reported, in the calling thread
    assert len(calls) == sum(est.epochs_run_ for est in together)
    assert {ident for _, _, ident in calls} == {threading.get_ident()}
    assert {active for _, active, _ in calls} == {1}


def test_own_progress_and_other_trainers_alongside():
    """An estimator's own callback replaces the group's; torch and batched estimators in the
    same call are fitted as before."""
    X, y = _data(160, seed=9)
    own: list[tuple[int, float]] = []
    group: list[int] = []
    ests = [
        LSTMForecaster(**{**COMMON, **SPECS[0]}),
        LSTMForecaster(**{**COMMON, **SPECS[2], "trainer": "torch"}),
        LSTMForecaster(**{**COMMON, **SPECS[1]}, progress=lambda e, v, _: own.append((e, v))),
        LSTMForecaster(**{**COMMON, **SPECS[3], "trainer": "batched"}),
        LSTMForecaster(**{**COMMON, **SPECS[3]}),
    ]
    fit_forecasters(ests, [(X, y)] * len(ests), progress=lambda e, _a: group.append(e), n_jobs=2)
    assert [e.trainer_ for e in ests] == ["compiled", "torch", "compiled", "batched", "compiled"]
    assert own == [(e, loss) for e, loss in enumerate(ests[2].history_["train_loss"], start=1)]
    assert len(group) == sum(e.epochs_run_ for i, e in enumerate(ests) if i != 2)
    for i in (0, 4):
        spec = {**COMMON, **SPECS[0 if i == 0 else 3]}
        _assert_identical(ests[i], LSTMForecaster(**spec).fit(X, y), X)
    torch_alone = LSTMForecaster(**{**COMMON, **SPECS[2], "trainer": "torch"}).fit(X, y)
    assert np.array_equal(ests[1].predict(X), torch_alone.predict(X))


def test_a_failing_fit_in_a_worker_raises():
    data = [_data(120, seed=i) for i in range(4)]
    ests = [LSTMForecaster(**{**COMMON, "units": (4,), "seed": s}) for s in range(4)]
    ests[1].validation_gap = 500  # no fit samples left: fit_compiled raises in its worker
    with pytest.raises(DataError, match="too few"):
        fit_forecasters(ests, data, n_jobs=2)
    assert all(est.progress is None for est in ests)
    assert not hasattr(ests[1], "net_")


def test_a_failing_callback_raises_and_stops_the_workers():
    data = [_data(120, seed=i) for i in range(4)]
    ests = [LSTMForecaster(**{**COMMON, "units": (4,), "seed": s, "epochs": 50}) for s in range(4)]

    def progress(epoch: int, _active: int) -> None:
        raise RuntimeError(f"progress bar broke at epoch {epoch}")

    with pytest.raises(RuntimeError, match="progress bar broke at epoch 1"):
        fit_forecasters(ests, data, progress=progress, n_jobs=2)
    assert all(est.progress is None for est in ests)


def test_n_jobs_must_be_positive():
    with pytest.raises(ConfigError, match="n_jobs"):
        fit_forecasters([LSTMForecaster(**COMMON)], [_data(50, seed=0)], n_jobs=0)


def test_wide_networks_by_blas_fit_as_alone():
    """Layers of 16+ units in batches of 8+ windows take their products by BLAS (one BLAS
    thread per fit in the pool, any number alone): still the same bits as alone."""
    X, y = _data(200, seed=4)
    kw = dict(COMMON, units=(20, 16), batch_size=16)
    ests = [LSTMForecaster(**kw, seed=s) for s in (5, 6)]
    fit_forecasters(ests, [(X, y)] * 2, n_jobs=2)
    _assert_identical(ests[0], LSTMForecaster(**kw, seed=5).fit(X, y), X)
