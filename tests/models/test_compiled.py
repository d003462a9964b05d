"""The compiled trainer reproduces the reference protocol of ``LSTMForecaster.fit``.

Same initial weights (the seeded ``RecurrentNet``), same batch order (the seeded
``randperm``), dropout 0, float32: training losses, validation losses and predictions agree
with the ``torch`` trainer to 1e-4 relative. Gradients are checked against torch autograd.
"""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch

from lstm_madness.errors import ConfigError
from lstm_madness.models.compiled import Buffers, fit_compiled, kernels, layout
from lstm_madness.models.lstm import LSTMForecaster, fit_forecasters
from lstm_madness.models.network import RecurrentNet, flat_parameters
from lstm_madness.models.protocol import TrainingJob, check_data, make_loss
from lstm_madness.models.training import (
    COMPILED_MAX_BATCH_UNITS2,
    COMPILED_MAX_BATCH_UNITS2_WALK_FORWARD,
    resolve_trainer,
)

RTOL = 1e-4


def _data(n: int = 500, steps: int = 3, features: int = 2, seed: int = 0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, steps, features)).astype(np.float32)
    y = 0.5 * X[:, -1, 0] - 0.3 * X[:, 0, 1] + 0.2 * rng.standard_normal(n)
    return X, y


def _targets(loss: str, y: np.ndarray) -> tuple[str, np.ndarray]:
    if loss == "bce":
        return "classification", (y > 0).astype(float)
    return "regression", (3.0 * y if loss == "huber" else y)  # huber: both branches


@pytest.mark.parametrize("cell", ["lstm", "gru"])
@pytest.mark.parametrize("units", [(8,), (8, 4), (20, 16)])
@pytest.mark.parametrize("batch_size", [1, 32])
@pytest.mark.parametrize("loss", ["mse", "huber", "bce"])
def test_compiled_equals_reference(cell, units, batch_size, loss):
    X, y = _data()
    task, target = _targets(loss, y)
    kw = dict(
        units=units,
        cell=cell,
        batch_size=batch_size,
        epochs=3,
        loss=loss,
        task=task,
        patience=5,
        seed=3,
        device="cpu",
    )
    ref = LSTMForecaster(trainer="torch", **kw).fit(X, target)
    got = LSTMForecaster(trainer="compiled", **kw).fit(X, target)
    assert (ref.trainer_, got.trainer_) == ("torch", "compiled")
    for key in ("train_loss", "val_loss"):
        assert len(got.history_[key]) == 3
        np.testing.assert_allclose(got.history_[key], ref.history_[key], rtol=RTOL)
    np.testing.assert_allclose(got.predict(X), ref.predict(X), rtol=RTOL, atol=1e-6)
    assert (got.epochs_run_, got.best_epoch_) == (ref.epochs_run_, ref.best_epoch_)
    assert (got.n_train_, got.n_val_, got.y_mean_, got.y_scale_) == (
        ref.n_train_,
        ref.n_val_,
        ref.y_mean_,
        ref.y_scale_,
    )


def test_activations_are_accurate_in_float32():
    """The kernels' vectorizable tanh and logistic functions against float64 references on
    every 2⁻¹² step of [-20, 20] and at the extremes."""
    k = kernels()
    x = np.concatenate([np.arange(-20, 20, 2.0**-12), [-1e30, -88.0, 0.0, 1e-30, 88.0, 1e30]])
    x32 = x.astype(np.float32)
    exact = np.tanh(x32.astype(np.float64))
    got = np.array([k.fast_tanh(v) for v in x32], dtype=np.float64)
    assert np.abs(got - exact).max() < 4e-7
    assert np.all(np.abs(got) <= 1.0)
    small = np.abs(x32) < 1.0
    assert np.abs((got - exact)[small] / np.where(exact[small] == 0, 1, exact[small])).max() < 4e-7
    logistic = 0.5 * (1.0 + np.tanh(x32.astype(np.float64) / 2.0))
    sig = np.array([k.fast_sigmoid(v) for v in x32], dtype=np.float64)
    assert np.abs(sig - logistic).max() < 2.5e-7
    assert np.all((sig >= 0.0) & (sig <= 1.0))


# 9 windows x 4 steps (>= kernels.BLAS_MIN_BATCH): (5, 3) every layer by loops; (20, 16) every
# layer's products by BLAS, the second one's input gradient too; (16, 3) both. 5 windows:
# every layer by loops.
@pytest.mark.parametrize("n", [9, 5])
@pytest.mark.parametrize("units", [(5, 3), (20, 16), (16, 3)])
@pytest.mark.parametrize("cell", ["lstm", "gru"])
@pytest.mark.parametrize("loss", ["mse", "huber", "bce"])
def test_gradients_equal_autograd(cell, loss, units, n):
    X, y = _data(n=n, steps=4, features=3, seed=1)
    _task, target = _targets(loss, y)
    target = target.astype(np.float32)
    k = kernels()
    torch.manual_seed(0)
    net = RecurrentNet(3, units, cell)
    gates = 4 if cell == "lstm" else 3
    meta, head_off = layout(3, units, gates, n, 4)
    buf = Buffers(n, 4, 3, units, gates)
    params = flat_parameters(net)
    rows = np.arange(n)
    code = {"mse": 0, "huber": 1, "bce": 2}[loss]
    cell_code = k.LSTM if cell == "lstm" else k.GRU
    k.forward(cell_code, X, rows, n, params, meta, head_off, 0.0, False, buf.fwd, buf.scratch)
    loss_value = k.loss_grad(code, buf.out, target, n, buf.dout)
    grads = np.zeros_like(params)
    bwd = (*buf.fwd[:7], buf.dout)
    k.backward(cell_code, n, 4, params, grads, meta, head_off, bwd, buf.back, buf.scratch)

    ref = make_loss(loss)(net(torch.from_numpy(X)), torch.from_numpy(target))
    ref.backward()
    expected = torch.cat([p.grad.reshape(-1) for p in net.parameters()]).numpy()
    assert loss_value == pytest.approx(ref.item(), rel=1e-5)
    np.testing.assert_allclose(grads, expected, rtol=1e-4, atol=1e-6)


def test_early_stopping_and_best_weights_restored():
    X, y = _data(n=300, seed=2)
    kw = dict(units=(4,), epochs=40, patience=2, batch_size=16, learning_rate=0.05, seed=1)
    ref = LSTMForecaster(trainer="torch", device="cpu", **kw).fit(X, y)
    got = LSTMForecaster(trainer="compiled", **kw).fit(X, y)
    assert got.epochs_run_ < 40  # stopped early
    assert got.epochs_run_ == got.best_epoch_ + 2
    assert got.best_val_loss_ == min(got.history_["val_loss"])
    assert (got.epochs_run_, got.best_epoch_) == (ref.epochs_run_, ref.best_epoch_)
    # the kept network is the best epoch's: its validation loss is the best one
    Xv, yv = X[-got.n_val_ :], (y[-got.n_val_ :] - got.y_mean_) / got.y_scale_
    with torch.no_grad():
        out = got.net_(torch.from_numpy(Xv)).numpy()
    assert np.mean((out - yv) ** 2) == pytest.approx(got.best_val_loss_, rel=1e-4)


def test_dropout_is_seeded_and_trains():
    X, y = _data(n=200)
    kw = dict(units=(8, 4), dropout=0.3, epochs=2, patience=0, trainer="compiled")
    a = LSTMForecaster(seed=0, **kw).fit(X, y)
    b = LSTMForecaster(seed=0, **kw).fit(X, y)
    c = LSTMForecaster(seed=1, **kw).fit(X, y)
    no_drop = LSTMForecaster(seed=0, **{**kw, "dropout": 0.0}).fit(X, y)
    assert a.history_ == b.history_
    np.testing.assert_array_equal(a.predict(X), b.predict(X))
    assert a.history_ != c.history_
    assert a.history_ != no_drop.history_
    assert np.isfinite(a.history_["train_loss"]).all()


def test_auto_is_a_function_of_the_architecture_alone():
    small = dict(units=(32,), batch_size=1, time_steps=1)
    assert resolve_trainer("auto", **small) == "compiled"
    assert resolve_trainer("auto", units=(1,), batch_size=1, time_steps=1) == "compiled"
    assert resolve_trainer("auto", units=(32,), batch_size=32, time_steps=5) == "compiled"
    assert resolve_trainer("auto", units=(128, 64), batch_size=32, time_steps=5) == "compiled"
    assert resolve_trainer("auto", units=(128, 64), batch_size=64, time_steps=5) == "batched"
    edge = COMPILED_MAX_BATCH_UNITS2 // 32**2
    for steps in (1, 5, 15, None):  # the crossover does not depend on the time steps
        assert resolve_trainer("auto", (32,), edge, steps) == "compiled"
        assert resolve_trainer("auto", (32,), edge + 1, steps) == "batched"
    # long windows: a one-layer LSTM trains by parts on every core (compiled_lstm)
    for wf in (False, True):
        assert resolve_trainer("auto", (25,), 512, 240, walk_forward=wf) == "compiled"
        assert resolve_trainer("auto", (32,), edge + 1, 60, walk_forward=wf) == "compiled"
        assert resolve_trainer("auto", (64,), 512, 240, walk_forward=wf) == "compiled"
        assert resolve_trainer("auto", (64,), 512, 240, walk_forward=wf, cell="gru") == "batched"
        assert resolve_trainer("auto", (128,), 512, 240, walk_forward=wf) == "batched"
        assert resolve_trainer("auto", (64, 64), 512, 240, walk_forward=wf) == "batched"
    assert resolve_trainer("auto", device="cuda", **small) == "batched"
    assert resolve_trainer("torch", **small) == "torch"
    with pytest.raises(ConfigError, match="trainer"):
        resolve_trainer("fast", **small)
    with pytest.raises(ConfigError, match="cuda"):
        LSTMForecaster(trainer="compiled", device="cuda").fit(*_data(n=20))
    # alone or in a group: the same trainer, the same result
    X, y = _data(n=120)
    kw = dict(units=(4,), epochs=2, batch_size=8)
    alone = LSTMForecaster(seed=0, **kw).fit(X, y)
    group = fit_forecasters([LSTMForecaster(seed=s, **kw) for s in (0, 1)], [(X, y)] * 2)
    assert alone.trainer_ == group[0].trainer_ == "compiled"
    np.testing.assert_array_equal(alone.predict(X), group[0].predict(X))
    wide = LSTMForecaster(units=(8,), batch_size=edge * 16 + 1, epochs=1, seed=0).fit(X, y)
    assert wide.trainer_ == "batched"


def test_auto_for_walk_forward_folds_that_train_together():
    wf = dict(time_steps=5, walk_forward=True)
    assert resolve_trainer("auto", (32,), 64, **wf) == "batched"  # the demo's network
    assert resolve_trainer("auto", (32,), 64, 5) == "compiled"  # the same, hold-out
    assert resolve_trainer("auto", (128,), 1, **wf) == "compiled"  # batch 1
    edge = COMPILED_MAX_BATCH_UNITS2_WALK_FORWARD // 8**2
    assert resolve_trainer("auto", (8,), edge, **wf) == "compiled"
    assert resolve_trainer("auto", (8,), edge + 1, **wf) == "batched"
    assert resolve_trainer("compiled", (32,), 64, **wf) == "compiled"  # explicit wins


def test_fit_compiled_is_usable_directly():
    """The engine alone, on a job: the same network as the estimator's compiled fit."""
    X, y = _data(n=60)
    est = LSTMForecaster(units=(3,), epochs=2, patience=0, seed=4, trainer="compiled")
    epochs: list[int] = []
    fitted = fit_compiled(
        TrainingJob(est.settings(), *check_data(X, y, est.task), seed=4),
        lambda epoch, _loss, _val: epochs.append(epoch),
    )
    assert (fitted.trainer, fitted.epochs_run, epochs) == ("compiled", 2, [1, 2])
    est.fit(X, y)
    assert np.array_equal(flat_parameters(fitted.net), flat_parameters(est.net_))
    assert fitted.history == est.history_


def test_numba_is_imported_lazily():
    code = (
        "import sys; import numpy as np\n"
        "from lstm_madness.models.lstm import LSTMForecaster\n"
        "import lstm_madness.experiment.runner, lstm_madness.models.training\n"
        "X = np.random.default_rng(0).standard_normal((40, 2, 1)).astype('float32')\n"
        "LSTMForecaster(units=(2,), epochs=1, trainer='torch').fit(X, X[:, -1, 0])\n"
        "assert 'numba' not in sys.modules, 'numba imported'\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
